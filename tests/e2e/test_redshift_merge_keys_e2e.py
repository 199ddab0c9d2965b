"""The corpus pipeline S3TsvFilesToRedshiftTablesIfReady on the emulator: two RedshiftCopyActivity loads with insertMode
OVERWRITE_EXISTING into RedshiftDataNodes that name no primaryKeys and no createTableSql. As in Data Pipeline, each run
reads the table's own primary key from the cluster's catalog (the emulator's PostgreSQL), then merges on it.

Deployed as shipped, with a values file naming this test's tables and objects; the S3KeyExists preconditions find the
objects the test puts. Tables are created beforehand and counted with boto3 `redshift-data` calls.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from datapipe.naming import Naming
from tests.e2e.helpers import ended_execution, finished_statement, start_execution, synth_pipelines
from tests.importer.conftest import CORPUS_DIR, samples_absent

pytestmark = pytest.mark.e2e

NAMING = Naming(stage="mergekeys")
SAMPLE = CORPUS_DIR / "S3TsvFilesToRedshiftTablesIfReady" / "S3TsvFilesToRedshiftTablesIfReady.json"
BUCKET = "datapipe-e2e-merge-keys"
SIGN_IN = {"ClusterIdentifier": "local", "Database": "dev", "DbUser": "loader"}  # as the values file gives them
NO_KEY = ("RedshiftLoadActivity_2: table PUBLIC.mk_orders has no primary key (or does not exist), and the definition "
          "names none: give the RedshiftDataNode primaryKeys")


@pytest.fixture(scope="module")
def merge_pipeline(emulator: Any, tmp_path_factory: pytest.TempPathFactory,
                   cdk_json_context: dict[str, object]) -> str:
    if not SAMPLE.is_file():
        samples_absent()
    from datapipe.local.deploy import Deployer

    started = time.perf_counter()
    folder = tmp_path_factory.mktemp("mergekeys")
    (folder / "definitions").mkdir()
    (folder / "definitions" / "mergekeys.json").write_text(SAMPLE.read_text())
    values = {"myRedshiftDbName": "dev", "myDestRedshiftTable_1": "mk_items", "myDestRedshiftTable_2": "mk_orders",
              "myRedshiftJdbcConnectStr": "jdbc:redshift://local.abc123xyz.us-east-1.redshift.amazonaws.com:5439/dev",
              "myInputTsvFilesS3Loc_1": f"s3://{BUCKET}/items.tsv", "myInputTsvFilesS3Loc_2": f"s3://{BUCKET}/orders.tsv",
              "myRedshiftUsername": "loader", "*myRedshiftPassword": "ssm:/mergekeys/redshift-password"}
    (folder / "definitions" / "mergekeys.values.json").write_text(json.dumps({"values": values}))
    synth_pipelines(emulator, cdk_json_context, folder / "definitions", folder / "out", naming=NAMING)
    Deployer(emulator.client, account=emulator.account, region=emulator.region).deploy(folder / "out")
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": emulator.region})
    s3.put_object(Bucket=BUCKET, Key="items.tsv", Body=b"1\tnew\n3\tadded\n")
    s3.put_object(Bucket=BUCKET, Key="orders.tsv", Body=b"eu\t2\t200\nus\t2\t40\n")
    print(f"merge-keys pipeline synthesized and deployed in {time.perf_counter() - started:.1f} s")
    return NAMING.state_machine_arn("pipeline-mergekeys", account=emulator.account, region=emulator.region)


def run_sql(data: Any, *sqls: str) -> str:
    statement = data.batch_execute_statement(Sqls=list(sqls), **SIGN_IN)
    return str(finished_statement(data, statement, f"statements {sqls[0][:40]}")["Id"])


def rows(data: Any, sql: str) -> list[list[Any]]:
    statement = finished_statement(data, data.execute_statement(Sql=sql, **SIGN_IN), f"query {sql[:40]}")
    records = data.get_statement_result(Id=statement["Id"])["Records"]
    return [[next(iter(field.values())) for field in record] for record in records]


def run(emulator: Any, arn: str) -> dict[str, Any]:
    sfn = emulator.client("stepfunctions")
    started = time.perf_counter()
    result = ended_execution(sfn, start_execution(sfn, arn, {"scheduledStartTime": "2026-11-30T06:00:00Z"}),
                             timeout=90)
    print(f"merge-keys run: {time.perf_counter() - started:.1f} s")
    return result


def tables(orders: str) -> list[str]:
    """Both tables afresh: mk_items keyed on id, mk_orders as `orders` defines it."""
    return ["DROP TABLE IF EXISTS mk_items", "CREATE TABLE mk_items (id int PRIMARY KEY, v varchar(20))",
            "INSERT INTO mk_items VALUES (1, 'old'), (2, 'kept')",
            "DROP TABLE IF EXISTS mk_orders", f"CREATE TABLE mk_orders {orders}",
            "INSERT INTO mk_orders VALUES ('eu', 1, 10), ('eu', 2, 20), ('us', 1, 30)"]


def test_each_load_merges_on_the_primary_key_its_table_has(emulator: Any, merge_pipeline: str) -> None:
    data = emulator.client("redshift-data")
    run_sql(data, *tables("(region varchar(8), day int, n int, PRIMARY KEY (region, day))"))
    result = run(emulator, merge_pipeline)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    # OVERWRITE_EXISTING, worked by hand: staged keys 1 and 3 delete row 1; both staged rows go in; row 2 stays.
    assert rows(data, "SELECT id, v FROM mk_items ORDER BY id") == [[1, "new"], [2, "kept"], [3, "added"]]
    # the composite key (region, day): (eu, 2) is replaced, (us, 2) added, (eu, 1) and (us, 1) stay.
    assert rows(data, "SELECT region, day, n FROM mk_orders ORDER BY region, day") == [
        ["eu", 1, 10], ["eu", 2, 200], ["us", 1, 30], ["us", 2, 40]]


@pytest.mark.parametrize(("definition", "message"), [
    ("(region varchar(8), day int, n int)", NO_KEY),
    ('("a""b" varchar(8), day int, n int, PRIMARY KEY ("a""b", day))',
     "RedshiftLoadActivity_2: table PUBLIC.mk_orders has the key column 'a\"b', which is not a plain name (a letter "
     "or _, then letters, digits, _ or $): give the RedshiftDataNode primaryKeys"),
])
def test_a_table_without_a_usable_key_fails_the_run_in_one_line_and_keeps_its_rows(
    emulator: Any, merge_pipeline: str, definition: str, message: str
) -> None:
    data = emulator.client("redshift-data")
    run_sql(data, *tables(definition))
    result = run(emulator, merge_pipeline)
    assert result["status"] == "FAILED"
    assert result.get("cause") == message and result.get("error") == "Redshift.MergeKeyRefused", result
    assert rows(data, "SELECT count(*) FROM mk_orders") == [[3]]


def test_a_copy_from_dynamodb_without_read_throughput_runs_with_the_default_read_ratio(emulator: Any) -> None:
    """The importer's statements for a DynamoDBDataNode without readThroughputPercent, on the emulator's Redshift (which
    requires READRATIO, as Redshift does) and DynamoDB: both items load."""
    from tests.importer.test_databases import HOST, KEYLESS_ORDERS, LOAD, WAREHOUSE, plan_of

    dynamodb, data = emulator.client("dynamodb"), emulator.client("redshift-data")
    dynamodb.create_table(TableName="MkEvents", BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
                          KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    for number, name in ((1, "a"), (2, "b")):
        dynamodb.put_item(TableName="MkEvents", Item={"id": {"N": str(number)}, "name": {"S": name}})
    events = {**KEYLESS_ORDERS, "tableName": "mk_events"}
    plan = plan_of(WAREHOUSE, {"id": "Input", "type": "DynamoDBDataNode", "tableName": "MkEvents"}, events,
                   {**LOAD, "insertMode": "APPEND"}, HOST)
    statements = plan.activities[0].sql.redshift.sqls  # type: ignore[union-attr]
    run_sql(data, "DROP TABLE IF EXISTS mk_events", "CREATE TABLE mk_events (id int, name varchar(8))")
    run_sql(data, *statements)
    assert rows(data, "SELECT id, name FROM mk_events ORDER BY id") == [[1, "a"], [2, "b"]]
