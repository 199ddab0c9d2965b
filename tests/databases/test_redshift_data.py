"""The emulator's Redshift Data API against the real PostgreSQL, with S3 from moto; RedshiftCopyActivity end to end."""

from __future__ import annotations

import datetime
import gzip
import time
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pytest
from psycopg import conninfo

from datapipe.databases.redshift_copy import RedshiftCopy, copy_statements
from datapipe.errors import DatapipeError
from datapipe.local.redshift_data import OPERATIONS, DataApiError, RedshiftDataApi
from tests.databases.conftest import PASSWORD, USER, Server

CLUSTER = {
    "ClusterIdentifier": "analytics",
    "Database": "dev",
    "SecretArn": "arn:aws:secretsmanager:eu-west-1:1:secret:r",
}
ROLE = "arn:aws:iam::123456789012:role/redshift-copy"


@pytest.fixture(scope="module")
def dev_dsn(postgres_server: Server) -> str:
    """A `dev` database, Redshift's default, created once."""
    dsn = conninfo.make_conninfo(host=postgres_server.host, port=postgres_server.port, user=USER, password=PASSWORD)
    with psycopg.connect(dsn, dbname="postgres", autocommit=True) as connection:
        if connection.execute("select 1 from pg_database where datname = 'dev'").fetchone() is None:
            connection.execute("create database dev")
    return dsn


@pytest.fixture
def api(dev_dsn: str, aws: dict[str, Any]) -> Iterator[RedshiftDataApi]:
    data_api = RedshiftDataApi(dsn=dev_dsn, s3=aws["s3"])
    yield data_api
    data_api.wait()


def ended(api: RedshiftDataApi, statement_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = api.describe_statement({"Id": statement_id})
        if described["Status"] in ("FINISHED", "FAILED", "ABORTED"):
            return described
        assert time.monotonic() < deadline, f"still {described['Status']}"
        time.sleep(0.02)


def run(api: RedshiftDataApi, sql: str, **extra: Any) -> dict[str, Any]:
    return ended(api, api.execute_statement({**CLUSTER, "Sql": sql, **extra})["Id"])


def rows(api: RedshiftDataApi, sql: str) -> list[list[Any]]:
    described = run(api, sql)
    assert described["Status"] == "FINISHED", described["Error"]
    records = api.get_statement_result({"Id": described["Id"]})["Records"]
    return [[None if field.get("isNull") else next(iter(field.values())) for field in record] for record in records]


def test_execute_describe_and_typed_result(api: RedshiftDataApi) -> None:
    submitted = api.execute_statement(
        {
            **CLUSTER,
            "Sql": "select 7::int as a, 'x' as b, null as c, 2.5::float8 as d, true as e from generate_series(1, 2)",
        }
    )
    assert submitted["ClusterIdentifier"] == "analytics" and submitted["Database"] == "dev"
    described = ended(api, submitted["Id"])
    assert (described["Status"], described["HasResultSet"], described["ResultRows"]) == ("FINISHED", True, 2)
    result = api.get_statement_result({"Id": submitted["Id"]})
    assert result["TotalNumRows"] == 2
    assert result["Records"][0] == [
        {"longValue": 7},
        {"stringValue": "x"},
        {"isNull": True},
        {"doubleValue": 2.5},
        {"booleanValue": True},
    ]
    assert [column["name"] for column in result["ColumnMetadata"]] == ["a", "b", "c", "d", "e"]
    assert result["ColumnMetadata"][0]["typeName"] == "int4"


def test_failure_carries_the_database_message(api: RedshiftDataApi) -> None:
    described = run(api, "select * from no_such_table")
    assert described["Status"] == "FAILED"
    assert 'relation "no_such_table" does not exist' in described["Error"]
    with pytest.raises(DataApiError) as caught:
        api.get_statement_result({"Id": described["Id"]})
    assert caught.value.code == "ResourceNotFoundException"


def test_named_parameters_are_values(api: RedshiftDataApi) -> None:
    hostile = "'; drop table x; --"
    described = run(
        api,
        "select :v::int + 1 as n, :s as s, '50%' as p",
        Parameters=[{"name": "v", "value": "41"}, {"name": "s", "value": hostile}],
    )
    assert described["Status"] == "FINISHED", described["Error"]
    record = api.get_statement_result({"Id": described["Id"]})["Records"][0]
    assert record == [{"longValue": 42}, {"stringValue": hostile}, {"stringValue": "50%"}]
    missing = run(api, "select :nope", Parameters=[{"name": "v", "value": "1"}])
    assert missing["Status"] == "FAILED" and "nope" in missing["Error"]


def test_batch_is_one_transaction(api: RedshiftDataApi) -> None:
    submitted = api.batch_execute_statement(
        {
            **CLUSTER,
            "Sqls": [
                "create table batch_t (id int)",
                "insert into batch_t values (1)",
                "select * from no_such_table",
                "insert into batch_t values (2)",
            ],
            "StatementName": "nightly-load",
        }
    )
    described = ended(api, submitted["Id"])
    assert described["Status"] == "FAILED" and len(described["SubStatements"]) == 4
    assert [sub["Status"] for sub in described["SubStatements"]] == ["FINISHED", "FINISHED", "FAILED", "ABORTED"]
    assert described["SubStatements"][2]["Id"] == f"{submitted['Id']}:3"
    assert run(api, "select * from batch_t")["Status"] == "FAILED"  # the create was rolled back too
    listed = api.list_statements({"StatementName": "nightly", "Status": "FAILED"})["Statements"]
    assert [entry["Id"] for entry in listed] == [submitted["Id"]]
    assert listed[0]["QueryStrings"][0] == "create table batch_t (id int)"


def test_batch_sub_statements_start_one_by_one(api: RedshiftDataApi) -> None:
    submitted = api.batch_execute_statement({**CLUSTER, "Sqls": ["select pg_sleep(1)", "select 2"]})
    deadline = time.monotonic() + 10
    while (described := api.describe_statement({"Id": submitted["Id"]}))["Status"] != "STARTED":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert described["SubStatements"][1]["Status"] == "SUBMITTED"
    assert described["RedshiftPid"] > 0
    assert ended(api, submitted["Id"])["Status"] == "FINISHED"


def test_batch_sub_statement_results(api: RedshiftDataApi) -> None:
    submitted = api.batch_execute_statement({**CLUSTER, "Sqls": ["select 1", "select 'two'"]})
    assert ended(api, submitted["Id"])["Status"] == "FINISHED"
    assert api.get_statement_result({"Id": f"{submitted['Id']}:2"})["Records"] == [[{"stringValue": "two"}]]
    with pytest.raises(DataApiError):
        api.get_statement_result({"Id": f"{submitted['Id']}:3"})


def test_cancel(api: RedshiftDataApi) -> None:
    submitted = api.execute_statement({**CLUSTER, "Sql": "select pg_sleep(30)"})
    deadline = time.monotonic() + 10
    while api.describe_statement({"Id": submitted["Id"]})["Status"] != "STARTED":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.2)
    started = time.monotonic()
    assert api.cancel_statement({"Id": submitted["Id"]}) == {"Status": True}
    described = ended(api, submitted["Id"], timeout=10)
    assert described["Status"] == "ABORTED"
    assert time.monotonic() - started < 5
    with pytest.raises(DataApiError, match="already in ABORTED state"):
        api.cancel_statement({"Id": submitted["Id"]})


def test_bad_requests(api: RedshiftDataApi) -> None:
    with pytest.raises(DataApiError, match="Sql is required"):
        api.execute_statement({**CLUSTER})
    with pytest.raises(DataApiError, match="Either ClusterIdentifier or WorkgroupName needs to be specified"):
        api.execute_statement({"Database": "dev", "Sql": "select 1"})
    with pytest.raises(DataApiError) as caught:
        api.describe_statement({"Id": "00000000-0000-0000-0000-000000000000"})
    assert caught.value.code == "ResourceNotFoundException"


def test_copy_from_an_s3_prefix(api: RedshiftDataApi, aws: dict[str, Any]) -> None:
    aws["s3"].put_object(Bucket="data", Key="in/part-0.csv", Body=b'id,name\n1,"a, b"\n2,\n')
    aws["s3"].put_object(Bucket="data", Key="in/part-1.csv.gz", Body=gzip.compress(b"id,name\n3,c\n"))
    assert run(api, "create table copied (id int, name varchar(20))")["Status"] == "FINISHED"
    plain = run(api, f"COPY copied FROM 's3://data/in/part-0' IAM_ROLE '{ROLE}' CSV IGNOREHEADER 1")
    assert plain["Status"] == "FINISHED", plain["Error"]
    assert plain["ResultRows"] == 2
    zipped = run(api, f"copy copied from 's3://data/in/part-1' iam_role '{ROLE}' format as csv ignoreheader as 1 gzip")
    assert zipped["Status"] == "FINISHED", zipped["Error"]
    assert rows(api, "select id, name from copied order by id") == [[1, "a, b"], [2, None], [3, "c"]]


def test_copy_pipe_delimited_and_errors(api: RedshiftDataApi, aws: dict[str, Any]) -> None:
    aws["s3"].put_object(Bucket="data", Key="pipes.txt", Body=b"1|x\n\n2|y\n")
    assert run(api, "create table piped (id int, v text)")["Status"] == "FINISHED"
    described = run(api, f"copy piped from 's3://data/pipes.txt' iam_role '{ROLE}' ignoreblanklines")
    assert described["Status"] == "FINISHED", described["Error"]
    assert rows(api, "select count(*) from piped") == [[2]]
    missing = run(api, f"copy piped from 's3://data/nothing-here' iam_role '{ROLE}'")
    assert missing["Status"] == "FAILED" and "no object under s3://data/nothing-here" in missing["Error"]
    unknown = run(api, f"copy piped from 's3://data/pipes.txt' iam_role '{ROLE}' manifest")
    assert unknown["Status"] == "FAILED" and "option MANIFEST is not supported" in unknown["Error"]
    bad_value = run(api, f"copy piped from 's3://data/pipes.txt' iam_role '{ROLE}' delimiter ','")
    assert bad_value["Status"] == "FAILED" and "\n" not in bad_value["Error"]


EXISTING = "insert into {table} values (1, 'old'), (2, 'old')"
INPUT = b"2,new\n3,new\n"
# Worked by hand from the insertMode descriptions of RedshiftCopyActivity's reference: existing rows 1 and 2 (old),
# input rows 2 and 3 (new), merged on the primary key id.
EXPECTED = {
    "KEEP_EXISTING": [[1, "old"], [2, "old"], [3, "new"]],
    "OVERWRITE_EXISTING": [[1, "old"], [2, "new"], [3, "new"]],
    "TRUNCATE": [[2, "new"], [3, "new"]],
    "APPEND": [[1, "old"], [2, "new"], [2, "old"], [3, "new"]],
}


@pytest.mark.parametrize("mode", list(EXPECTED))
def test_redshift_copy_activity_insert_modes(api: RedshiftDataApi, aws: dict[str, Any], mode: str) -> None:
    table = f"orders_{mode.lower()}"
    # APPEND keeps duplicates, which PostgreSQL (unlike Redshift) would refuse under a PRIMARY KEY
    key = "" if mode == "APPEND" else " PRIMARY KEY DISTKEY SORTKEY"
    create = f"create table {table} (id int{key}, v varchar(10) ENCODE zstd) DISTSTYLE KEY"
    assert run(api, create)["Status"] == "FINISHED"
    assert run(api, EXISTING.format(table=table))["Status"] == "FINISHED"
    aws["s3"].put_object(Bucket="data", Key=f"{mode}/input.csv", Body=INPUT)
    copy = RedshiftCopy(
        object_id="S3ToRedshift",
        insert_mode=mode,
        table=f"public.{table}",
        source=f"s3://data/{mode}/",
        iam_role=ROLE,
        data_format="CSV",
        create_table_sql=create,
    )
    described = ended(api, api.batch_execute_statement({**CLUSTER, "Sqls": copy_statements(copy)})["Id"])
    assert described["Status"] == "FINISHED", described["Error"]
    assert rows(api, f"select id, v from {table} order by id, v") == EXPECTED[mode]


def test_redshift_copy_creates_the_table_and_transforms(api: RedshiftDataApi, aws: dict[str, Any]) -> None:
    aws["s3"].put_object(Bucket="data", Key="logs.tsv", Body=b"a\thost-1\nb\thost-2\n")
    copy = RedshiftCopy(
        object_id="Load",
        insert_mode="OVERWRITE_EXISTING",
        table="structured_logs",
        source="s3://data/logs.tsv",
        iam_role=ROLE,
        data_format="TSV",
        create_table_sql="create table structured_logs (request CHAR(30) PRIMARY KEY DISTKEY SORTKEY, "
        "hostname varchar(100))",
        transform_sql="select request, upper(hostname) as hostname from staging",
    )
    for _ in range(2):  # the second run overwrites the same keys: still two rows
        described = ended(api, api.batch_execute_statement({**CLUSTER, "Sqls": copy_statements(copy)})["Id"])
        assert described["Status"] == "FINISHED", described["Error"]
    assert rows(api, "select trim(request), hostname from structured_logs order by 1") == [
        ["a", "HOST-1"],
        ["b", "HOST-2"],
    ]


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"insert_mode": "MERGE"}, "S3ToRedshift.insertMode: 'MERGE' is not one of"),
        ({"insert_mode": "KEEP_EXISTING", "create_table_sql": None}, "KEEP_EXISTING merges on a key"),
        ({"table": "x; drop table y"}, "S3ToRedshift.output tableName: "),
        ({"source": "s3://b/k' iam_role 'x"}, "S3ToRedshift.input: "),
        ({"command_options": ("CSV; drop table y",)}, "S3ToRedshift.commandOptions: "),
        ({"data_format": "JSON"}, "S3ToRedshift.input dataFormat: 'JSON'"),
        ({"iam_role": "x' --"}, "must be a role ARN"),
    ],
)
def test_redshift_copy_refuses_bad_input(changes: dict[str, Any], needle: str) -> None:
    fields: dict[str, Any] = {
        "object_id": "S3ToRedshift",
        "insert_mode": "APPEND",
        "table": "t",
        "source": "s3://b/k",
        "iam_role": ROLE,
        **changes,
    }
    with pytest.raises(DatapipeError) as caught:
        copy_statements(RedshiftCopy(**fields))
    assert needle in str(caught.value)


def test_boto3_client_through_moto_dispatch(api: RedshiftDataApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook the emulator will use: moto's redshift-data response class hands every action to `handle`."""
    from moto.redshiftdata.responses import RedshiftDataAPIServiceResponse

    def route(action: str) -> Any:
        def answer(self: Any) -> tuple[int, dict[str, int], str]:
            status, body = api.handle(action, self.body)
            return status, {"status": status}, body  # moto takes the status from the headers

        return answer

    for action, method in OPERATIONS.items():
        monkeypatch.setattr(RedshiftDataAPIServiceResponse, method, route(action), raising=False)
    client = boto3.client("redshift-data", region_name="eu-west-1")
    statement_id = client.execute_statement(**CLUSTER, Sql="select 'hello' as greeting")["Id"]
    deadline = time.monotonic() + 30
    while (described := client.describe_statement(Id=statement_id))["Status"] not in ("FINISHED", "FAILED"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert described["Status"] == "FINISHED" and described["CreatedAt"].year >= 2026
    assert client.get_statement_result(Id=statement_id)["Records"] == [[{"stringValue": "hello"}]]
    batch = client.batch_execute_statement(**CLUSTER, Sqls=["select 1", "select 2"])
    assert any(entry["Id"] == batch["Id"] for entry in client.list_statements(Status="ALL")["Statements"])
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_statement(Id="00000000-0000-0000-0000-000000000000")


def test_statements_are_forgotten_a_day_after_they_end(dev_dsn: str, aws: dict[str, Any]) -> None:
    now = [datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)]
    api = RedshiftDataApi(dsn=dev_dsn, s3=aws["s3"], clock=lambda: now[0])
    old = api.execute_statement({**CLUSTER, "Sql": "select 1"})["Id"]
    assert ended(api, old)["Status"] == "FINISHED"
    now[0] += datetime.timedelta(hours=23)
    api.execute_statement({**CLUSTER, "Sql": "select 2"})
    assert api.describe_statement({"Id": old})["Status"] == "FINISHED"  # 23 h: still there
    now[0] += datetime.timedelta(hours=2)
    recent = api.execute_statement({**CLUSTER, "Sql": "select 3"})["Id"]
    with pytest.raises(DataApiError) as caught:
        api.describe_statement({"Id": old})
    assert caught.value.code == "ResourceNotFoundException"
    assert ended(api, recent)["Status"] == "FINISHED"
    api.wait()


def test_redshift_copy_from_definition_objects(api: RedshiftDataApi, aws: dict[str, Any]) -> None:
    """The objects of the reference's example (a gzipped CSV directory into a RedshiftDataNode), run end to end."""
    aws["s3"].put_object(
        Bucket="data",
        Key="logs/2026-11-30/part-0.csv.gz",
        Body=gzip.compress(b"t1,t2,host-a,2026-11-30\nt3,t4,host-b,2026-11-30\n"),
    )
    activity = {
        "id": "RedshiftCopyActivityId1",
        "type": "RedshiftCopyActivity",
        "insertMode": "OVERWRITE_EXISTING",
        "commandOptions": ["EMPTYASNULL", "IGNOREBLANKLINES"],
    }
    s3_node = {
        "id": "S3DataNodeId1",
        "type": "S3DataNode",
        "directoryPath": "s3://data/logs/2026-11-30",
        "compression": "gzip",
    }
    redshift_node = {
        "id": "RedshiftDataNodeId1",
        "type": "RedshiftDataNode",
        "tableName": "structuredlogs",
        "schemaName": "public",
        "createTableSql": "create table public.StructuredLogs (requestBeginTime CHAR(30) PRIMARY KEY DISTKEY SORTKEY, "
        "requestEndTime CHAR(30), hostname CHAR(100), requestDate varchar(20));",
        "primaryKeys": "requestBeginTime",
    }
    copy = RedshiftCopy.from_objects(activity, s3_node, redshift_node, iam_role=ROLE, data_format="csv")
    assert copy.command_options == ("EMPTYASNULL", "IGNOREBLANKLINES", "GZIP")
    for _ in range(2):
        described = ended(api, api.batch_execute_statement({**CLUSTER, "Sqls": copy_statements(copy)})["Id"])
        assert described["Status"] == "FINISHED", described["Error"]
    assert rows(api, "select trim(requestbegintime), trim(hostname) from structuredlogs order by 1") == [
        ["t1", "host-a"],
        ["t3", "host-b"],
    ]


def test_redshift_copy_from_dynamodb_statement() -> None:
    copy = RedshiftCopy.from_objects(
        {"id": "A", "insertMode": "APPEND"},
        {"id": "D", "type": "DynamoDBDataNode", "tableName": "events", "readThroughputPercent": "0.25"},
        {"id": "R", "type": "RedshiftDataNode", "tableName": "events"},
        iam_role=ROLE,
        data_format="CSV",  # a format the node may carry: Redshift refuses CSV or DELIMITER on a DynamoDB source
    )
    assert f"COPY staging FROM 'dynamodb://events' IAM_ROLE '{ROLE}' READRATIO 25" in copy_statements(copy)


@pytest.mark.parametrize(
    ("activity", "input_node", "output_node", "needle"),
    [
        (
            {"id": "A"},
            {"id": "S", "type": "S3DataNode", "filePath": "s3://b/k"},
            {"id": "R", "type": "RedshiftDataNode", "tableName": "t"},
            "A.insertMode: required",
        ),
        (
            {"id": "A", "insertMode": "APPEND"},
            {"id": "S", "type": "S3DataNode"},
            {"id": "R", "type": "RedshiftDataNode", "tableName": "t"},
            "S.filePath: give exactly one",
        ),
        (
            {"id": "A", "insertMode": "APPEND"},
            {"id": "S", "type": "S3DataNode", "filePath": "s3://b/k", "compression": "zip"},
            {"id": "R", "type": "RedshiftDataNode", "tableName": "t"},
            "S.compression: 'zip'",
        ),
        (
            {"id": "A", "insertMode": "APPEND"},
            {"id": "D", "type": "DynamoDBDataNode", "tableName": "e", "readThroughputPercent": "2"},
            {"id": "R", "type": "RedshiftDataNode", "tableName": "t"},
            "D.readThroughputPercent",
        ),
        (
            {"id": "A", "insertMode": "APPEND"},
            {"id": "S", "type": "S3DataNode", "filePath": "s3://b/k"},
            {"id": "R", "type": "SqlDataNode", "table": "t"},
            "A.output: 'SqlDataNode' is not a RedshiftDataNode",
        ),
        (
            {"id": "A", "insertMode": "APPEND", "commandOptions": [1]},
            {"id": "S", "type": "S3DataNode", "filePath": "s3://b/k"},
            {"id": "R", "type": "RedshiftDataNode", "tableName": "t"},
            "A.commandOptions: expected a string or a list",
        ),
    ],
)
def test_redshift_copy_objects_refused(
    activity: dict[str, object], input_node: dict[str, object], output_node: dict[str, object], needle: str
) -> None:
    with pytest.raises(DatapipeError) as caught:
        RedshiftCopy.from_objects(activity, input_node, output_node, iam_role=ROLE)
    assert needle in str(caught.value)
