"""Imported database pipelines on the emulator, end to end against real database servers.

The corpus pipeline LoadTsvFilesInS3ToRedshift (RedshiftCopyActivity, insertMode OVERWRITE_EXISTING) is deployed
after the migration docs/databases.md describes (a `secretId` instead of `username` and `*password`; `primaryKeys`
on the data node, the key OVERWRITE_EXISTING merges on) with a values file for its parameters, and run: the state
machine calls the Redshift Data API, which the emulator runs on its PostgreSQL, COPY reading the emulator's S3.
Rows are counted with plain boto3 `redshift-data` calls, as a user would.

The corpus pipeline RDStoS3 (CopyActivity from a MySqlDataNode to S3) keeps its `username` and `*password:
#{*myRDSPassword}`: its values file names a Secrets Manager secret holding the password as the value of *myRDSPassword.
Moved from its Ec2Resource to a worker group, it hands its worker group exactly the task of the SQL contract
(docs/taskrunner.md: the username and the password's reference, never the password); run by the task runner against a
MariaDB started by the test, which reads the password from that secret, its CSV is checked line by line.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datapipe.naming import Naming
from stacks.config import WorkerGroupSettings
from tests.database_servers import PASSWORD, USER, Server
from tests.e2e.helpers import ended_execution, finished_statement, start_execution, synth_pipelines
from tests.importer.conftest import CORPUS_DIR, samples_absent

pytestmark = pytest.mark.e2e

NAMING = Naming(stage="databases")
CORPUS_PIPELINE = CORPUS_DIR / "LoadTsvFilesInS3ToRedshift" / "LoadTsvFilesInS3ToRedshift.json"
RDS_PIPELINE = CORPUS_DIR / "RDStoS3" / "RDStoS3Pipeline.json"
WORKER_GROUP = "wg-databases"
OUTPUT_BUCKET = "datapipe-e2e-rds-output"
PASSWORD_SECRET = "rds/shop-password"
RUN_TIME = "2026-11-21T06:00:00Z"
# A SqlActivity on Redshift whose argument is given when the run starts: it reaches SQL as a bound parameter.
AUDIT_PIPELINE = {
    "objects": [
        {"id": "Default", "scheduleType": "ondemand"},
        {"id": "Warehouse", "type": "RedshiftDatabase", "clusterId": "local", "secretId": "redshift/loader"},
        {"id": "Audit", "type": "SqlActivity", "database": {"ref": "Warehouse"},
         "script": "INSERT INTO audit_log VALUES (?, ?)", "scriptArgument": ["#{myBatch}", "loaded"]},
    ],
    "parameters": [{"id": "myBatch", "type": "String"}],
}
BUCKET = "datapipe-e2e-redshift-input"
CLUSTER = {"ClusterIdentifier": "local", "Database": "dev", "SecretArn": "redshift/loader"}


def migrated_corpus_pipeline(folder: Path) -> None:
    definition = json.loads(CORPUS_PIPELINE.read_text())
    for obj in definition["objects"]:
        if obj["id"] == "RedshiftCluster":  # credentials: a Secrets Manager secret, never a password
            del obj["username"], obj["*password"]
            obj["secretId"] = "redshift/loader"
        if obj["id"] == "DestRedshiftTable":
            obj["primaryKeys"] = "id"
    (folder / "load-tsv-to-redshift.json").write_text(json.dumps(definition))
    values = {"myRedshiftJdbcConnectStr": "jdbc:redshift://local.abc123xyz.us-east-1.redshift.amazonaws.com:5439/dev",
              "myRedshiftDbName": "dev", "myInputTsvFilesS3Loc": f"s3://{BUCKET}/incoming/orders.tsv"}
    (folder / "load-tsv-to-redshift.values.json").write_text(json.dumps({"values": values}))


def migrated_rds_pipeline(folder: Path, database_port: int) -> None:
    definition = json.loads(RDS_PIPELINE.read_text())
    for obj in definition["objects"]:
        if obj["id"] == "RDStoS3CopyActivity":  # the database is reachable from the worker group's servers
            del obj["runsOn"]
            obj["workerGroup"] = WORKER_GROUP
    (folder / "rds-to-s3.json").write_text(json.dumps(definition))
    values = {"myRDSConnectStr": f"jdbc:mysql://127.0.0.1:{database_port}/datapipe", "myRDSTableName": "orders",
              "myOutputS3Path": f"s3://{OUTPUT_BUCKET}/exports", "myRDSUsername": USER,
              "*myRDSPassword": f"secretsmanager:{PASSWORD_SECRET}"}  # a reference: the definition keeps *password
    (folder / "rds-to-s3.values.json").write_text(json.dumps({"values": values}))


@pytest.fixture(scope="module")
def rds_port(request: pytest.FixtureRequest) -> int:
    """The MariaDB the RDS pipeline names."""
    server: Server = request.getfixturevalue("mariadb_server")
    return server.port


@pytest.fixture(scope="module")
def database_pipelines(
    emulator: Any, tmp_path_factory: pytest.TempPathFactory, cdk_json_context: dict[str, object], rds_port: int
) -> dict[str, str]:
    """Both migrated corpus pipelines deployed under a stage of their own (the session's app is not touched)."""
    if not (CORPUS_PIPELINE.is_file() and RDS_PIPELINE.is_file()):
        samples_absent()

    from datapipe.local.deploy import Deployer

    started = time.perf_counter()
    folder = tmp_path_factory.mktemp("redshift")
    (folder / "definitions").mkdir()
    migrated_corpus_pipeline(folder / "definitions")
    migrated_rds_pipeline(folder / "definitions", rds_port)
    (folder / "definitions" / "redshift-audit.json").write_text(json.dumps(AUDIT_PIPELINE))
    synth_pipelines(emulator, cdk_json_context, folder / "definitions", folder / "out", naming=NAMING,
                    worker_groups=(WORKER_GROUP,))
    Deployer(emulator.client, account=emulator.account, region=emulator.region).deploy(folder / "out")
    # The worker group's activity belongs to the worker-groups stack, which this stage does not deploy.
    emulator.client("stepfunctions").create_activity(name=NAMING.activity(WORKER_GROUP))
    print(f"database pipelines synthesized and deployed in {time.perf_counter() - started:.1f} s")
    return {name: NAMING.state_machine_arn(f"pipeline-{name}", account=emulator.account, region=emulator.region)
            for name in ("load-tsv-to-redshift", "rds-to-s3", "redshift-audit")}


@pytest.fixture(scope="module")
def redshift_pipeline(database_pipelines: dict[str, str]) -> str:
    return database_pipelines["load-tsv-to-redshift"]


@pytest.fixture(scope="module")
def input_bucket(emulator: Any) -> str:
    emulator.client("s3").create_bucket(Bucket=BUCKET,
                                        CreateBucketConfiguration={"LocationConstraint": emulator.region})
    return BUCKET


@pytest.fixture(scope="module", autouse=True)
def loader_secret(emulator: Any) -> None:
    """The secret CLUSTER and the pipelines name, as Secrets Manager holds one for a Redshift cluster: the emulator's
    Data API, like AWS's, refuses a SecretArn that does not exist."""
    emulator.client("secretsmanager").create_secret(Name="redshift/loader", SecretString=json.dumps(
        {"username": "loader", "password": "loader-pa55", "dbClusterIdentifier": "local"}))


def run_sql(data: Any, sql: str) -> dict[str, Any]:
    """One statement through the Data API, as a user runs it with boto3: submit, poll, read the result."""
    return finished_statement(data, data.execute_statement(Sql=sql, **CLUSTER), f"statement {sql[:40]}")


def test_the_corpus_s3_to_redshift_pipeline_loads_the_rows(
    emulator: Any, redshift_pipeline: str, input_bucket: str
) -> None:
    s3, data = emulator.client("s3"), emulator.client("redshift-data")
    # Two tab-separated rows; id 2 is in the table already.
    s3.put_object(Bucket=BUCKET, Key="incoming/orders.tsv", Body=b"2\tpear\t200\n3\tplum\t300\n")
    run_sql(data, "CREATE SCHEMA schemaNameInRedshift")
    run_sql(data, "CREATE TABLE schemaNameInRedshift.DestRedshiftTableName (id int, name varchar(20), amount int)")
    run_sql(data, "INSERT INTO schemaNameInRedshift.DestRedshiftTableName VALUES (1, 'apple', 10), (2, 'old', 20)")

    sfn = emulator.client("stepfunctions")
    started = time.perf_counter()
    result = ended_execution(sfn, start_execution(sfn, redshift_pipeline, {}), timeout=90)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    print(f"S3-to-Redshift run: {time.perf_counter() - started:.1f} s")

    # OVERWRITE_EXISTING, worked by hand: id 1 kept, id 2 replaced by the file's row, id 3 added.
    rows = data.get_statement_result(Id=run_sql(
        data, "SELECT id, name, amount FROM schemaNameInRedshift.DestRedshiftTableName ORDER BY id")["Id"])
    assert [[next(iter(field.values())) for field in record] for record in rows["Records"]] == [
        [1, "apple", 10], [2, "pear", 200], [3, "plum", 300]]


def test_a_failing_statement_fails_the_run_with_its_error(
    emulator: Any, redshift_pipeline: str, input_bucket: str
) -> None:
    s3 = emulator.client("s3")
    # A third column that is not a number: COPY fails, and the run with it, naming the database's error.
    s3.put_object(Bucket=BUCKET, Key="incoming/orders.tsv", Body=b"4\tfig\tmany\n")
    sfn = emulator.client("stepfunctions")
    result = ended_execution(sfn, start_execution(sfn, redshift_pipeline, {}), timeout=90)
    assert result["status"] == "FAILED" and result.get("error") == "Redshift.StatementFailed", result
    assert "invalid input syntax for type integer" in result["cause"]


def test_plain_boto3_calls_answer_as_aws_does(emulator: Any) -> None:
    data = emulator.client("redshift-data")
    described = run_sql(data, "SELECT 1 AS one, 'two' AS two")
    assert described["HasResultSet"] is True and described["ResultRows"] == 1
    result = data.get_statement_result(Id=described["Id"])
    assert result["Records"] == [[{"longValue": 1}, {"stringValue": "two"}]]
    with pytest.raises(data.exceptions.ResourceNotFoundException):
        data.describe_statement(Id="00000000-0000-0000-0000-000000000000")


def expected_task(execution_name: str, workflow: str, port: int) -> dict[str, Any]:
    """The SqlActivity/CopyActivity task of the contract, written out by hand from the migrated definition."""
    return {
        "type": "CopyActivity", "workflow": workflow, "execution": execution_name,
        "activityId": "RDStoS3CopyActivity", "attempt": 0,
        "heartbeatSeconds": WorkerGroupSettings().heartbeat_seconds,
        "activity": {"id": "RDStoS3CopyActivity", "type": "CopyActivity"},
        # selectQuery's #{table} is the node's own table
        "input": {"id": "SourceRDSTable", "type": "MySqlDataNode", "table": "orders",
                  "selectQuery": "select * from orders"},
        # format(@scheduledStartTime, 'YYYY-MM-dd-HH-mm-ss') of 2026-11-21T06:00:00Z
        "output": {"id": "S3OutputLocation", "type": "S3DataNode",
                   "directoryPath": f"s3://{OUTPUT_BUCKET}/exports/2026-11-21-06-00-00"},
        # a MySqlDataNode carries its own connection: the JdbcDatabase it stands for
        "database": {"id": "SourceRDSTable", "type": "JdbcDatabase", "connectionString":
                     f"jdbc:mysql://127.0.0.1:{port}/datapipe", "username": USER, "passwordSecret": PASSWORD_SECRET,
                     "jdbcDriverClass": "com.mysql.jdbc.Driver"},
    }


def test_the_corpus_rds_to_s3_pipeline_sends_its_worker_group_the_contract_task(
    emulator: Any, database_pipelines: dict[str, str], rds_port: int
) -> None:
    sfn = emulator.client("stepfunctions")
    execution = start_execution(sfn, database_pipelines["rds-to-s3"], {"scheduledStartTime": RUN_TIME})
    activity = NAMING.activity_arn(WORKER_GROUP, account=emulator.account, region=emulator.region)
    polled = sfn.get_activity_task(activityArn=activity, workerName="e2e")  # a long poll: returns with the task
    assert polled.get("taskToken"), "the activity received no task"
    name = execution.rsplit(":", 1)[-1]
    assert json.loads(polled["input"]) == expected_task(name, NAMING.state_machine("pipeline-rds-to-s3"), rds_port)
    sfn.send_task_success(taskToken=polled["taskToken"], output=json.dumps({"rowsCopied": 2}))
    assert ended_execution(sfn, execution, timeout=30)["status"] == "SUCCEEDED"


@pytest.fixture()
def sql_task_runner(emulator: Any, subprocess_env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    runner = subprocess.Popen(
        [sys.executable, "-m", "datapipe.cli", "taskrunner", "--workerGroup", WORKER_GROUP, "--stage",
         NAMING.stage, "--endpoint", emulator.endpoint_url, "--region", emulator.region],
        env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    yield runner
    runner.terminate()
    runner.wait(timeout=30)


def test_the_runner_copies_the_mariadb_table_to_s3_as_csv(
    emulator: Any, database_pipelines: dict[str, str], rds_port: int, sql_task_runner: subprocess.Popen[str]
) -> None:
    import pymysql

    with pymysql.connect(host="127.0.0.1", port=rds_port, user=USER, password=PASSWORD, database="datapipe",
                         autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS orders")
        cursor.execute("CREATE TABLE orders (id int PRIMARY KEY, name varchar(40), amount int)")
        cursor.execute("INSERT INTO orders VALUES (1, 'apple', 10), (2, %s, NULL)", ('pear, "green"',))
    emulator.client("secretsmanager").create_secret(Name=PASSWORD_SECRET, SecretString=PASSWORD)  # the password alone
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket=OUTPUT_BUCKET, CreateBucketConfiguration={"LocationConstraint": emulator.region})
    sfn = emulator.client("stepfunctions")
    execution = start_execution(sfn, database_pipelines["rds-to-s3"], {"scheduledStartTime": RUN_TIME})
    assert ended_execution(sfn, execution, timeout=60)["status"] == "SUCCEEDED"
    body = s3.get_object(Bucket=OUTPUT_BUCKET, Key="exports/2026-11-21-06-00-00/RDStoS3CopyActivity.csv")["Body"]
    # As PostgreSQL's COPY ... CSV writes them (docs/databases.md): NULL unquoted empty, quotes doubled, no header.
    assert body.read().decode().splitlines() == ["1,apple,10", '2,"pear, ""green""",']
    assert list(csv.reader(io.StringIO('2,"pear, ""green""",'))) == [["2", 'pear, "green"', ""]]


def test_a_run_parameter_reaches_redshift_sql_as_data(emulator: Any, database_pipelines: dict[str, str]) -> None:
    data = emulator.client("redshift-data")
    run_sql(data, "CREATE TABLE audit_log (batch varchar(80), note varchar(20))")
    hostile = "b1'); DROP TABLE audit_log; --"
    sfn = emulator.client("stepfunctions")
    result = ended_execution(sfn, start_execution(sfn, database_pipelines["redshift-audit"],
                                                  {"parameters": {"myBatch": hostile}}), timeout=60)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    rows = data.get_statement_result(Id=run_sql(data, "SELECT batch, note FROM audit_log")["Id"])["Records"]
    assert rows == [[{"stringValue": hostile}, {"stringValue": "loaded"}]]
