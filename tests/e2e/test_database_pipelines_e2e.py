"""Imported database pipelines on the emulator, end to end against a real PostgreSQL.

The corpus pipeline LoadTsvFilesInS3ToRedshift (RedshiftCopyActivity, insertMode OVERWRITE_EXISTING) is deployed
after the migration docs/databases.md describes (a `secretId` instead of `username` and `*password`; `primaryKeys`
on the data node, the key OVERWRITE_EXISTING merges on) with a values file for its parameters, and run: the state
machine calls the Redshift Data API, which the emulator runs on its PostgreSQL, COPY reading the emulator's S3.
Rows are counted with plain boto3 `redshift-data` calls, as a user would.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from datapipe.naming import Naming
from tests.e2e.helpers import ended_execution, start_execution, wait_for
from tests.importer.conftest import CORPUS_DIR

pytestmark = pytest.mark.e2e

NAMING = Naming(stage="databases")
CORPUS_PIPELINE = CORPUS_DIR / "LoadTsvFilesInS3ToRedshift" / "LoadTsvFilesInS3ToRedshift.json"
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


@pytest.fixture(scope="module")
def redshift_pipeline(
    emulator: Any, tmp_path_factory: pytest.TempPathFactory, cdk_json_context: dict[str, object]
) -> str:
    """The migrated corpus pipeline deployed under a stage of its own (the session's app is not touched)."""
    if not CORPUS_PIPELINE.is_file():
        pytest.skip(f"the Data Pipeline samples are not at {CORPUS_DIR}")
    import aws_cdk as cdk

    from datapipe.local.deploy import Deployer
    from stacks.common import encrypt_log_groups
    from stacks.config import PipelineSettings, WorkerGroupSettings
    from stacks.pipelines import add_pipeline_stacks

    folder = tmp_path_factory.mktemp("redshift")
    (folder / "definitions").mkdir()
    migrated_corpus_pipeline(folder / "definitions")
    app = cdk.App(context=cdk_json_context, outdir=str(folder / "out"))
    env = cdk.Environment(account=emulator.account, region=emulator.region)

    def stack_props(unit: str, description: str) -> dict[str, Any]:
        return {"stack_name": NAMING.stack(unit), "description": description, "env": env, "naming": NAMING,
                "removal_policy": cdk.RemovalPolicy.DESTROY}

    add_pipeline_stacks(app, stack_props=stack_props, naming=NAMING, settings=PipelineSettings(),
                        worker_groups=WorkerGroupSettings(), definitions_dir=folder / "definitions")
    for stack in app.node.children:
        if isinstance(stack, cdk.Stack):
            encrypt_log_groups(stack, removal_policy=cdk.RemovalPolicy.DESTROY)
    app.synth()
    Deployer(emulator.client, account=emulator.account, region=emulator.region).deploy(folder / "out")
    return NAMING.state_machine_arn("pipeline-load-tsv-to-redshift", account=emulator.account,
                                    region=emulator.region)


@pytest.fixture(scope="module")
def input_bucket(emulator: Any) -> str:
    emulator.client("s3").create_bucket(Bucket=BUCKET,
                                        CreateBucketConfiguration={"LocationConstraint": emulator.region})
    return BUCKET


def run_sql(data: Any, sql: str) -> dict[str, Any]:
    """One statement through the Data API, as a user runs it with boto3: submit, poll, read the result."""
    statement = data.execute_statement(Sql=sql, **CLUSTER)

    def ended() -> dict[str, Any] | None:
        described = data.describe_statement(Id=statement["Id"])
        return described if described["Status"] in ("FINISHED", "FAILED", "ABORTED") else None

    described: dict[str, Any] = wait_for(f"statement {sql[:40]}", ended, timeout=60)
    assert described["Status"] == "FINISHED", described.get("Error")
    return described


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
