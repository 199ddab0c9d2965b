"""The emulator's Redshift Data API as a user reaches it: plain boto3 and the AWS CLI against the emulator's endpoint.

Expected values come from the API's reference (botocore's model of redshift-data, AWS's API and COPY documentation)
and from errors AWS is known to answer; they are written here by hand, not read from the code under test.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from psycopg import conninfo

from datapipe.local.extensions import Extensions
from tests.database_servers import PASSWORD, USER, Server
from tests.local.conftest import run_state_machine, wait_for_execution

CLUSTER = "analytics"
SECRET_NAME = "redshift/analytics-loader"
# DescribeStatement's members (botocore's model), and the ones a finished, plain ExecuteStatement has.
DESCRIBED = {"Id", "Status", "QueryString", "CreatedAt", "UpdatedAt", "Duration", "HasResultSet", "ResultRows",
             "ResultSize", "RedshiftPid", "RedshiftQueryId", "Database", "ClusterIdentifier", "SecretArn"}
SUB_STATEMENT = {"Id", "Status", "QueryString", "CreatedAt", "UpdatedAt", "Duration", "HasResultSet", "ResultRows",
                 "ResultSize", "RedshiftQueryId"}
STATEMENT_DATA = {"Id", "QueryString", "QueryStrings", "SecretArn", "Status", "StatementName", "CreatedAt",
                  "UpdatedAt", "QueryParameters", "IsBatchStatement", "ResultFormat", "SessionId"}
AWS_CLI = Path(sys.executable).with_name("aws")


@pytest.fixture(scope="module", autouse=True)
def _on_the_tests_postgres(extensions: Extensions, postgres_server: Server) -> Iterator[None]:
    """The emulator's Data API on the session's PostgreSQL, running already when the database tests ran first."""
    dsn = conninfo.make_conninfo(host=postgres_server.host, port=postgres_server.port, user=USER, password=PASSWORD,
                                 dbname="postgres")
    extensions.redshift_data.use_database(dsn)
    yield
    extensions.redshift_data.use_database(None)


@pytest.fixture()
def data(aws: Callable[[str], Any]) -> Any:
    return aws("redshift-data")


@pytest.fixture()
def secret(aws: Callable[[str], Any]) -> str:
    """A secret as the console's "Credentials for Redshift cluster" makes it; its ARN."""
    secrets = aws("secretsmanager")
    value = json.dumps({"username": "loader", "password": "pa55-word", "dbClusterIdentifier": CLUSTER})
    try:
        return str(secrets.create_secret(Name=SECRET_NAME, SecretString=value)["ARN"])
    except secrets.exceptions.ResourceExistsException:
        return str(secrets.describe_secret(SecretId=SECRET_NAME)["ARN"])


def ended(data: Any, statement_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (described := data.describe_statement(Id=statement_id))["Status"] not in ("FINISHED", "FAILED", "ABORTED"):
        assert time.monotonic() < deadline, f"still {described['Status']}"
        time.sleep(0.02)
    described.pop("ResponseMetadata")
    return dict(described)


def run(data: Any, sql: str, **sign_in: str) -> dict[str, Any]:
    sign_in = sign_in or {"ClusterIdentifier": CLUSTER, "Database": "dev"}
    return ended(data, data.execute_statement(Sql=sql, **sign_in)["Id"])


def values(data: Any, sql: str) -> list[list[Any]]:
    described = run(data, sql)
    assert described["Status"] == "FINISHED", described.get("Error")
    records = data.get_statement_result(Id=described["Id"])["Records"]
    return [[None if field.get("isNull") else next(iter(field.values())) for field in record] for record in records]


def refused(call: Callable[..., Any], **request: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**request)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def test_each_way_to_sign_in_is_accepted_and_echoed(data: Any, secret: str) -> None:
    """ExecuteStatement's answer echoes the parameters the caller signed in with, and nothing else of them."""
    ways = [
        ({"ClusterIdentifier": CLUSTER, "Database": "dev", "SecretArn": secret}, {"ClusterIdentifier", "SecretArn"}),
        ({"ClusterIdentifier": CLUSTER, "Database": "dev", "DbUser": "analyst"}, {"ClusterIdentifier", "DbUser"}),
        ({"ClusterIdentifier": CLUSTER, "Database": "dev"}, {"ClusterIdentifier"}),
        ({"WorkgroupName": "reporting", "Database": "dev"}, {"WorkgroupName"}),
        ({"WorkgroupName": "reporting", "Database": "dev", "SecretArn": SECRET_NAME}, {"WorkgroupName", "SecretArn"}),
        ({"Database": "dev", "SecretArn": SECRET_NAME}, {"SecretArn"}),  # the cluster is the secret's
    ]
    for sign_in, echoed in ways:
        answer = data.execute_statement(Sql="select 1", **sign_in)
        answer.pop("ResponseMetadata")
        assert set(answer) == {"Id", "CreatedAt", "Database", *echoed}, sign_in
        assert all(answer[key] == sign_in[key] for key in echoed)
        assert ended(data, answer["Id"])["Status"] == "FINISHED"


@pytest.mark.parametrize(
    ("sign_in", "message"),
    [
        ({"Database": "dev"}, "Either ClusterIdentifier or WorkgroupName needs to be specified."),
        ({"Database": "dev", "ClusterIdentifier": CLUSTER, "WorkgroupName": "reporting"},
         "ClusterIdentifier and WorkgroupName can't both be specified"),
        ({"Database": "dev", "ClusterIdentifier": CLUSTER, "SecretArn": SECRET_NAME, "DbUser": "analyst"},
         "SecretArn and DbUser can't both be specified"),
        ({"Database": "dev", "WorkgroupName": "reporting", "DbUser": "analyst"}, "DbUser is for a cluster"),
        ({"Database": "dev", "ClusterIdentifier": CLUSTER, "SecretArn": "redshift/no-such-secret"},
         "Secrets Manager can't find the specified secret: 'redshift/no-such-secret'"),
        ({"Database": "dev", "ClusterIdentifier": CLUSTER, "SecretArn": "redshift/password-only"},
         "username and password in secret cannot be empty"),
        ({"Database": "dev", "ClusterIdentifier": CLUSTER, "SecretArn": "redshift/not-json"},
         "username and password in secret cannot be empty"),
        ({"Database": "dev", "ClusterIdentifier": "other-cluster", "SecretArn": SECRET_NAME},
         "ClusterIdentifier 'other-cluster' is not the cluster of the secret ('analytics')"),
        ({"Database": "dev", "ClusterIdentifier": CLUSTER, "DbUser": "1analyst; drop table t"},
         "DbUser '1analyst; drop table t' is not a database user name"),
        ({"Database": "dev", "ClusterIdentifier": CLUSTER, "DbUser": "public"}, "not PUBLIC"),
        ({"Database": "dev", "ClusterIdentifier": CLUSTER, "DbUser": "a" * 65}, "64 characters at most"),
        ({"Database": "dev", "ClusterIdentifier": "Analytics_Cluster"},
         "Value 'Analytics_Cluster' at 'clusterIdentifier' failed to satisfy constraint"),
        ({"Database": "dev", "ClusterIdentifier": "a" * 64}, "at 'clusterIdentifier' failed to satisfy constraint"),
        ({"Database": "dev", "WorkgroupName": "Reporting_WG"}, "at 'workgroupName' failed to satisfy constraint"),
    ],
)
def test_wrong_ways_to_sign_in_are_refused(
    data: Any, aws: Callable[[str], Any], secret: str, sign_in: dict[str, str], message: str
) -> None:
    secrets = aws("secretsmanager")
    for name, value in (("redshift/password-only", '{"password": "x"}'), ("redshift/not-json", "pa55")):
        with contextlib.suppress(secrets.exceptions.ResourceExistsException):
            secrets.create_secret(Name=name, SecretString=value)
    code, text = refused(data.execute_statement, Sql="select 1", **sign_in)
    assert code == "ValidationException" and message in text
    code, text = refused(data.batch_execute_statement, Sqls=["select 1"], **sign_in)
    assert code == "ValidationException" and message in text


def test_a_finished_statement_is_described_as_aws_describes_it(data: Any, secret: str) -> None:
    started = time.monotonic_ns()
    submitted = data.execute_statement(Sql="select 'ab' as t, 7 as n union all select 'cde', null",
                                       ClusterIdentifier=CLUSTER, Database="dev", SecretArn=secret)
    described = ended(data, submitted["Id"])
    elapsed = time.monotonic_ns() - started
    assert set(described) == DESCRIBED  # no Error: the statement had none
    assert (described["Status"], described["HasResultSet"], described["ResultRows"]) == ("FINISHED", True, 2)
    assert described["ResultSize"] == len("ab") + len("7") + len("cde")  # the values' bytes; a null has none
    assert 0 < described["Duration"] < elapsed  # nanoseconds the statement ran
    assert described["RedshiftPid"] > 0 and described["RedshiftQueryId"] > 0
    assert (described["SecretArn"], described["ClusterIdentifier"], described["Database"]) == (secret, CLUSTER, "dev")

    failed = run(data, "select * from no_such_table")
    assert failed["Status"] == "FAILED" and 'relation "no_such_table" does not exist' in failed["Error"]
    assert (failed["ResultRows"], failed["ResultSize"]) == (-1, -1)  # the API's null


def test_a_batch_is_described_with_its_sub_statements(data: Any) -> None:
    submitted = data.batch_execute_statement(
        Sqls=["create temp table fruit (name varchar(10))", "insert into fruit values ('fig'), ('kiwi')",
              "select name from fruit order by name"],
        ClusterIdentifier=CLUSTER, Database="dev", DbUser="analyst", StatementName="fruit-batch",
    )
    described = ended(data, submitted["Id"])
    assert described["Status"] == "FINISHED" and "Error" not in described
    assert described["HasResultSet"] is True  # true when any sub-statement has a result set
    assert (described["ResultRows"], described["ResultSize"], described["DbUser"]) == (-1, -1, "analyst")
    subs = described["SubStatements"]
    assert all(set(sub) == SUB_STATEMENT for sub in subs)
    assert [sub["Id"] for sub in subs] == [f"{submitted['Id']}:{n}" for n in (1, 2, 3)]
    assert [(sub["HasResultSet"], sub["ResultRows"]) for sub in subs] == [(False, -1), (False, 2), (True, 2)]
    assert subs[2]["ResultSize"] == len("fig") + len("kiwi")
    assert len({sub["RedshiftQueryId"] for sub in subs}) == 3
    result = data.get_statement_result(Id=f"{submitted['Id']}:3")
    assert (result["TotalNumRows"], result["Records"][0]) == (2, [{"stringValue": "fig"}])


def test_the_aws_cli_sees_the_same_description(data: Any, endpoint: str) -> None:
    """`aws redshift-data describe-statement` (the CLI in the environment, as a user runs it)."""
    statement_id = run(data, "select 1")["Id"]
    environment = {**os.environ, "AWS_DEFAULT_REGION": "eu-west-1"}
    shown = subprocess.run(
        [str(AWS_CLI), "redshift-data", "describe-statement", "--id", statement_id, "--endpoint-url", endpoint,
         "--output", "json"], capture_output=True, text=True, timeout=60, env=environment, check=False,
    )
    assert shown.returncode == 0, shown.stderr
    described = json.loads(shown.stdout)
    assert described["Status"] == "FINISHED" and "Error" not in described and described["ResultRows"] == 1


def test_results_lists_and_cancel_answer_the_documented_errors(data: Any) -> None:
    unknown = str(uuid.uuid4())
    for call in (data.describe_statement, data.get_statement_result, data.cancel_statement):
        assert refused(call, Id=unknown)[0] == "ResourceNotFoundException"
        code, message = refused(call, Id="not-a-statement-id")
        assert code == "ValidationException" and "at 'id' failed to satisfy constraint" in message
    insert = run(data, "create temp table t (n int)")
    assert refused(data.get_statement_result, Id=insert["Id"]) == (
        "ResourceNotFoundException", "Query does not have result. Please check query status.")
    assert refused(data.get_statement_result, Id=run(data, "select 1")["Id"], NextToken="x")[0] == "ValidationException"

    running = data.execute_statement(Sql="select pg_sleep(5)", WorkgroupName="listing-wg", Database="dev")["Id"]
    named = data.execute_statement(Sql="select 2", WorkgroupName="listing-wg", Database="dev",
                                   StatementName="listed-one")["Id"]
    ended(data, named)
    listed = data.list_statements(WorkgroupName="listing-wg")["Statements"]  # by default: finished ones only
    assert [entry["Id"] for entry in listed] == [named]
    assert set(listed[0]) <= STATEMENT_DATA and listed[0]["StatementName"] == "listed-one"
    every = data.list_statements(WorkgroupName="listing-wg", Status="ALL")["Statements"]
    assert {entry["Id"] for entry in every} == {named, running}
    assert data.list_statements(StatementName="listed-", Status="ALL", WorkgroupName="listing-wg")["Statements"][0][
        "Id"] == named
    assert refused(data.list_statements, ClusterIdentifier=CLUSTER, WorkgroupName="listing-wg")[0] == \
        "ValidationException"
    assert data.cancel_statement(Id=running)["Status"] is True
    assert ended(data, running)["Status"] == "ABORTED"
    assert refused(data.cancel_statement, Id=named) == (
        "ValidationException", f"Could not cancel a query that is already in FINISHED state with ID: {named}")


def test_hostile_requests_are_refused_with_the_api_limits(data: Any) -> None:
    sign_in = {"ClusterIdentifier": CLUSTER, "Database": "dev"}
    assert refused(data.execute_statement, Sql="select 1 -- " + "x" * 200_000, **sign_in) == (
        "ValidationException", "Cannot process query string larger than 100kB")
    at_limit = "select 1 --" + "x" * (100 * 1024 - len("select 1 --"))
    assert ended(data, data.execute_statement(Sql=at_limit, **sign_in)["Id"])["Status"] == "FINISHED"
    code, message = refused(data.execute_statement, Sql="select 1", StatementName="n" * 2049, **sign_in)
    assert code == "ValidationException" and "'statementName'" in message and "less than or equal to 2048" in message
    code, message = refused(data.batch_execute_statement, Sqls=["select 1"] * 41, **sign_in)
    assert code == "ValidationException" and "less than or equal to 40" in message
    assert refused(data.batch_execute_statement, Sqls=["select 1"], ExecutionMode="AUTO_COMMIT", **sign_in)[1] == \
        "ExecutionMode: not emulated (see docs/emulator.md)"
    batch = data.batch_execute_statement(Sqls=["select 1"] * 40, ExecutionMode="TRANSACTION", **sign_in)
    assert len(ended(data, batch["Id"])["SubStatements"]) == 40
    assert refused(data.batch_execute_statement, Sqls=["select 1", "select 1 --" + "x" * 200_000], **sign_in)[1] == \
        "Cannot process query string larger than 100kB"
    for unemulated in ({"ResultFormat": "CSV"}, {"WaitTimeSeconds": 5}, {"SessionKeepAliveSeconds": 60},
                       {"WithEvent": True}):
        assert refused(data.execute_statement, Sql="select 1", **unemulated, **sign_in) == (
            "ValidationException", f"{next(iter(unemulated))}: not emulated (see docs/emulator.md)")
    assert ended(data, data.execute_statement(Sql="select 1", ResultFormat="JSON", **sign_in)["Id"])["Status"] == \
        "FINISHED"


def test_copy_from_dynamodb_scans_the_table(data: Any, aws: Callable[[str], Any]) -> None:
    """Columns match attributes whatever their case; an attribute without a column is dropped; a column without an
    attribute is NULL, or empty text without EMPTYASNULL; NUMBER and STRING load."""
    dynamodb, table = aws("dynamodb"), f"fruit-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(TableName=table, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
                          BillingMode="PAY_PER_REQUEST")
    items = [
        {"id": {"N": "1"}, "Name": {"S": "apple"}, "amount": {"N": "10.5"}, "grown": {"S": "ignored"}},
        {"id": {"N": "2"}, "NAME": {"S": "pear"}},  # no amount
        {"id": {"N": "3"}, "name": {"S": "fig"}, "AMOUNT": {"N": "-7"}},
    ]
    for item in items:
        dynamodb.put_item(TableName=table, Item=item)
    create = "create table {} (id int, name varchar(10), amount numeric(6, 2))"
    for target in ("fruit_plain", "fruit_nulls"):
        assert run(data, f"drop table if exists {target}")["Status"] == "FINISHED"
        assert run(data, create.format(target))["Status"] == "FINISHED"
    copied = run(data, f"COPY fruit_plain FROM 'dynamodb://{table}' IAM_ROLE default READRATIO 50")
    assert (copied["Status"], copied["ResultRows"]) == ("FINISHED", 3), copied.get("Error")
    assert values(data, "select id, name, amount from fruit_plain order by id") == [
        [1, "apple", "10.50"], [2, "pear", None], [3, "fig", "-7.00"]]
    run(data, f"COPY fruit_nulls (id, amount) FROM 'dynamodb://{table}' READRATIO 100 EMPTYASNULL")
    assert values(data, "select count(*), count(name), count(amount) from fruit_nulls") == [[3, 0, 2]]
    run(data, f"COPY fruit_plain (id, name) FROM 'dynamodb://{table}' READRATIO 1")
    assert values(data, "select count(*) from fruit_plain where amount is null") == [[4]]


@pytest.mark.parametrize(
    ("copy", "item", "message"),
    [
        ("COPY {target} FROM 'dynamodb://{table}'", None, "READRATIO is required"),
        ("COPY {target} FROM 'dynamodb://{table}' READRATIO 201", None, "READRATIO '201' is not an integer from 1"),
        ("COPY {target} FROM 'dynamodb://{table}' READRATIO 50 CSV", None, "CSV is not an option of a DynamoDB"),
        ("COPY {target} FROM 'dynamodb://no-such-table' READRATIO 50", None, "table 'no-such-table' does not exist"),
        ("COPY {target} FROM 'dynamodb://{table}' READRATIO 50", {"name": {"BOOL": True}},
         "attribute 'name' is of DynamoDB type BOOL"),
        ("COPY {target} FROM 'dynamodb://{table}' READRATIO 50", {"Name": {"S": "a"}, "NAME": {"S": "b"}},
         "differ only in case: Name, NAME"),
        ("COPY {target} FROM 's3://bucket/key' READRATIO 50", None, "READRATIO is an option of a DynamoDB source"),
    ],
)
def test_copy_from_dynamodb_refusals_fail_the_statement(
    data: Any, aws: Callable[[str], Any], copy: str, item: dict[str, Any] | None, message: str
) -> None:
    dynamodb, table = aws("dynamodb"), f"odd-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(TableName=table, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST")
    dynamodb.put_item(TableName=table, Item={"id": {"S": "k"}, **(item or {})})
    target = f"odd_{uuid.uuid4().hex[:8]}"
    assert run(data, f"create table {target} (id varchar(5), name varchar(5))")["Status"] == "FINISHED"
    failed = run(data, copy.format(target=target, table=table))
    assert failed["Status"] == "FAILED" and message in failed["Error"]
    assert values(data, f"select count(*) from {target}") == [[0]]


def test_differences_from_aws_that_the_emulator_keeps(data: Any) -> None:
    """Documented in docs/emulator.md: every statement runs as the server's one user, whoever signed in, and a
    cluster or workgroup is not looked up (no Redshift holds `nowhere-cluster`; AWS would refuse it)."""
    as_user = values(data, "select current_user")[0][0]
    signed_in = data.execute_statement(Sql="select current_user", ClusterIdentifier="nowhere-cluster",
                                       Database="dev", DbUser="analyst")
    assert ended(data, signed_in["Id"])["Status"] == "FINISHED"
    assert data.get_statement_result(Id=signed_in["Id"])["Records"] == [[{"stringValue": as_user}]]
    assert as_user != "analyst"


def test_a_refused_request_fails_a_step_functions_task_with_the_api_error(aws: Callable[[str], Any]) -> None:
    """An aws-sdk:redshiftdata task whose secret does not exist fails as a task (catchable), not the interpreter."""
    task = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:redshiftdata:executeStatement", "End": True,
            "Parameters": {"ClusterIdentifier": CLUSTER, "Database": "dev", "SecretArn": "redshift/no-such-secret",
                           "Sql": "select 1"}}
    _, execution = run_state_machine(aws, {"StartAt": "Submit", "States": {"Submit": task}})
    ended_execution = wait_for_execution(aws, execution)
    assert ended_execution["status"] == "FAILED"
    # the casing of the service prefix is not settled by the documentation (see docs/emulator.md)
    assert ended_execution["error"].lower() == "redshiftdata.validationexception"
    assert "Secrets Manager can't find the specified secret" in ended_execution["cause"]


def test_a_request_nested_past_reason_is_refused_in_one_line(endpoint: str) -> None:
    """A raw JSON 1.1 request (as any SDK sends it) whose body nests 100,000 levels deep: a 400, not a server error."""
    body = ('{"Sql": ' + "[" * 100_000 + "]" * 100_000 + "}").encode()
    request = urllib.request.Request(endpoint, data=body, method="POST", headers={
        "X-Amz-Target": "RedshiftData.ExecuteStatement", "Content-Type": "application/x-amz-json-1.1",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261130/eu-west-1/redshift-data/aws4_request, "
                         "SignedHeaders=host, Signature=0"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 400
    assert json.loads(caught.value.read()) == {"__type": "ValidationException",
                                               "message": "the request body is not JSON"}


def test_statements_and_secrets_belong_to_their_region(endpoint: str, data: Any, secret: str) -> None:
    """A statement is found only in the region that ran it; a secret only from its own region."""
    statement_id = run(data, "select 1", ClusterIdentifier=CLUSTER, Database="dev", SecretArn=secret)["Id"]
    elsewhere = boto3.session.Session().client("redshift-data", region_name="us-east-1", endpoint_url=endpoint)
    assert refused(elsewhere.describe_statement, Id=statement_id)[0] == "ResourceNotFoundException"
    code, message = refused(elsewhere.execute_statement, Sql="select 1", ClusterIdentifier=CLUSTER, Database="dev",
                            SecretArn=SECRET_NAME)
    assert code == "ValidationException" and "can't find the specified secret" in message
    # the difference docs/emulator.md states: every region's Data API runs on the one server, tables and all
    assert run(data, "create table if not exists seen_from_every_region (n int)")["Status"] == "FINISHED"
    assert run(elsewhere, "select count(*) from seen_from_every_region")["Status"] == "FINISHED"
