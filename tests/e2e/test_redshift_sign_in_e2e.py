"""The corpus pipeline billing/template.json on the emulator: a RedshiftCopyActivity that signs in with `username` and
`*password` (the Data API's temporary credentials: ClusterIdentifier + Database + DbUser, no secret read) and COPYs
from a prefix holding the run's scheduled time, `#{myS3StagingLoc}/#{format(@scheduledStartTime,
'YYYY-MM-dd-HH-mm-ss')}`, computed and checked by the run-values Lambda.

Deployed as shipped with a values file, but for its two shell activities on an Ec2Resource (unzipping the billing
report into the staging prefix, removing it afterwards: Batch jobs, not what this test is about): the test puts the
gzipped CSV where the unzip step would. Rows are counted with boto3 `redshift-data` calls signed in the same way.
"""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import pytest

from datapipe.naming import Naming
from tests.e2e.helpers import ended_execution, finished_statement, start_execution, synth_pipelines
from tests.importer.conftest import CORPUS_DIR, samples_absent

pytestmark = pytest.mark.e2e

NAMING = Naming(stage="billing")
BILLING = CORPUS_DIR / "billing" / "template.json"
BUCKET = "datapipe-e2e-billing-staging"
TABLE = "billing_e2e"
SIGN_IN = {"ClusterIdentifier": "local", "Database": "dev", "DbUser": "loader"}  # as the definition gives them
SHELL_ACTIVITIES = ("ZipFormatConversionActivity", "S3StagingCleanupActivity")
COLUMNS = 20  # the createTableSql of the sample's DestRedshiftTable


def row(invoice: str, cost: float) -> str:
    texts = [invoice, *(f"{invoice}-{n}" for n in range(2, 16))]
    return ",".join([*texts, "1", "0.5", str(cost), "0.5", str(cost)])


@pytest.fixture(scope="module")
def billing_pipeline(emulator: Any, tmp_path_factory: pytest.TempPathFactory,
                     cdk_json_context: dict[str, object]) -> str:
    if not BILLING.is_file():
        samples_absent()
    from datapipe.local.deploy import Deployer

    started = time.perf_counter()
    folder = tmp_path_factory.mktemp("billing")
    (folder / "definitions").mkdir()
    definition = json.loads(BILLING.read_text())
    definition["objects"] = [o for o in definition["objects"] if o["id"] not in SHELL_ACTIVITIES]
    (folder / "definitions" / "billing.json").write_text(json.dumps(definition))
    values = {"myS3StagingLoc": f"s3://{BUCKET}/staging", "myS3BillingLogLoc": f"s3://{BUCKET}/reports",
              "myRedshiftJdbcConnectStr": "jdbc:redshift://local.abc123xyz.us-east-1.redshift.amazonaws.com:5439/dev",
              "myRedshiftDbName": "dev", "myRedshiftUsername": "loader", "myRedshiftTableName": TABLE,
              "*myRedshiftPassword": "ssm:/billing/redshift-password"}  # a reference, never read: DbUser signs in
    (folder / "definitions" / "billing.values.json").write_text(json.dumps({"values": values}))
    synth_pipelines(emulator, cdk_json_context, folder / "definitions", folder / "out", naming=NAMING)
    Deployer(emulator.client, account=emulator.account, region=emulator.region).deploy(folder / "out")
    emulator.client("s3").create_bucket(Bucket=BUCKET,
                                        CreateBucketConfiguration={"LocationConstraint": emulator.region})
    print(f"billing pipeline synthesized and deployed in {time.perf_counter() - started:.1f} s")
    return NAMING.state_machine_arn("pipeline-billing", account=emulator.account, region=emulator.region)


def run_sql(data: Any, sql: str) -> dict[str, Any]:
    return finished_statement(data, data.execute_statement(Sql=sql, **SIGN_IN), f"statement {sql[:40]}")


def test_the_billing_copy_signs_in_as_its_user_and_reads_the_prefix_of_its_scheduled_time(
    emulator: Any, billing_pipeline: str
) -> None:
    s3, data, sfn = emulator.client("s3"), emulator.client("redshift-data"), emulator.client("stepfunctions")
    header = ",".join(f"c{n}" for n in range(COLUMNS))
    # format(2026-11-21T06:30:45Z, 'YYYY-MM-dd-HH-mm-ss'), worked by hand: 2026-11-21-06-30-45
    s3.put_object(Bucket=BUCKET, Key="staging/2026-11-21-06-30-45/report.csv.gz",
                  Body=gzip.compress(f"{header}\n{row('inv-1', 2.5)}\n{row('inv-2', 4.0)}\n".encode()))
    # the day before's prefix: not this run's
    s3.put_object(Bucket=BUCKET, Key="staging/2026-11-20-06-30-45/report.csv.gz",
                  Body=gzip.compress(f"{header}\n{row('inv-0', 1.0)}\n".encode()))
    started = time.perf_counter()
    result = ended_execution(sfn, start_execution(sfn, billing_pipeline,
                                                  {"scheduledStartTime": "2026-11-21T06:30:45Z"}), timeout=90)
    print(f"billing run: {time.perf_counter() - started:.1f} s")
    assert result["status"] == "SUCCEEDED", result.get("cause")
    rows = data.get_statement_result(Id=run_sql(data, f"SELECT invoice_id, unblended_cost FROM {TABLE} "
                                                      "ORDER BY invoice_id")["Id"])["Records"]
    assert [[next(iter(field.values())) for field in record] for record in rows] == [["inv-1", 2.5], ["inv-2", 4.0]]


@pytest.mark.parametrize("hostile", ["2026-11-21T06:30:45Z'; DROP TABLE billing_e2e; --", "9" * 100_000,
                                     "not a time"])
def test_a_hostile_scheduled_time_fails_the_run_in_one_line_and_runs_no_sql(
    emulator: Any, billing_pipeline: str, hostile: str
) -> None:
    sfn = emulator.client("stepfunctions")
    execution = start_execution(sfn, billing_pipeline, {"scheduledStartTime": hostile})
    result = ended_execution(sfn, execution, timeout=30)
    assert result["status"] == "FAILED" and "\n" not in result.get("cause", "") and len(result.get("cause", "")) < 300
    assert hostile[:20] not in result.get("cause", "")
    entered = {event["stateEnteredEventDetails"]["name"]
               for event in sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
               if "stateEnteredEventDetails" in event}
    assert not {name for name in entered if name.startswith(("Submit_", "Evaluate_Run_Time"))}, entered
