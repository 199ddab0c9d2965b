"""An imported HiveCopyActivity on the emulator: its cluster is created, its generated Hive script runs as one step
with the run's time filled in, and the cluster is terminated at the end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import ended_execution, imported_state_machine, start_execution

pytestmark = pytest.mark.e2e

# The reference page's example (DynamoDB to DynamoDB, filtered on the scheduled start), started on demand.
DEFINITION = {"objects": [
    {"id": "Default", "scheduleType": "ondemand"},
    {"id": "DataFormat.1", "type": "DynamoDBExportDataFormat", "column": "timeStamp BIGINT"},
    {"id": "DataFormat.2", "type": "DynamoDBExportDataFormat"},
    {"id": "DynamoDBDataNode.1", "type": "DynamoDBDataNode", "tableName": "item_mapped_table_restore_temp",
     "dataFormat": {"ref": "DataFormat.1"}},
    {"id": "DynamoDBDataNode.2", "type": "DynamoDBDataNode", "tableName": "restore_table", "region": "us_west_1",
     "dataFormat": {"ref": "DataFormat.2"}},
    {"id": "EmrCluster.1", "type": "EmrCluster", "releaseLabel": "emr-6.15.0", "coreInstanceCount": "1"},
    {"id": "HiveTransform.1", "name": "Hive Copy Transform.1", "type": "HiveCopyActivity",
     "input": {"ref": "DynamoDBDataNode.1"}, "output": {"ref": "DynamoDBDataNode.2"},
     "runsOn": {"ref": "EmrCluster.1"},
     "filterSql": "`timeStamp` > unix_timestamp(\"#{@scheduledStartTime}\", \"yyyy-MM-dd'T'HH:mm:ss\")"},
]}
HANDLER = "STORED BY 'org.apache.hadoop.hive.dynamodb.DynamoDBStorageHandler'"
SCRIPT = (  # written by hand for the run of 2013-06-04T00:00:00Z
    "DROP TABLE IF EXISTS copy_hivetransform_1_input; CREATE EXTERNAL TABLE copy_hivetransform_1_input "
    f'(`timeStamp` bigint) {HANDLER} TBLPROPERTIES ("dynamodb.table.name" = "item_mapped_table_restore_temp", '
    '"dynamodb.column.mapping" = "timeStamp:timeStamp"); '
    "DROP TABLE IF EXISTS copy_hivetransform_1_output; CREATE EXTERNAL TABLE copy_hivetransform_1_output "
    f'(`timeStamp` bigint) {HANDLER} TBLPROPERTIES ("dynamodb.table.name" = "restore_table", '
    '"dynamodb.column.mapping" = "timeStamp:timeStamp"); '
    "INSERT OVERWRITE TABLE copy_hivetransform_1_output SELECT * FROM copy_hivetransform_1_input WHERE "
    "`timeStamp` > unix_timestamp(\"2013-06-04T00:00:00\", \"yyyy-MM-dd'T'HH:mm:ss\");"
)


def test_a_hive_copy_runs_its_generated_script_on_its_cluster_which_is_then_terminated(
    emulator: Any, tmp_path: Path
) -> None:
    sfn = emulator.client("stepfunctions")
    machine = imported_state_machine(emulator, tmp_path, "hive-copy", DEFINITION)
    ended = ended_execution(sfn, start_execution(sfn, machine, {"scheduledStartTime": "2013-06-04T00:00:00Z"}),
                            timeout=90)
    assert ended["status"] == "SUCCEEDED", ended.get("cause")

    cluster_id = json.loads(ended["output"])["clusters"]["EmrCluster_1"]["ClusterId"]
    emr = emulator.client("emr")
    [step] = emr.list_steps(ClusterId=cluster_id)["Steps"]
    assert step["Name"] == "HiveTransform.1" and step["Status"]["State"] == "COMPLETED"
    assert step["Config"]["Jar"] == "command-runner.jar"
    assert step["Config"]["Args"] == ["hive", "-e", SCRIPT]
    assert emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"] == "TERMINATED"
