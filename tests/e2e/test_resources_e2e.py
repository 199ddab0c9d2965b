"""An imported EmrCluster's resource fields on the emulator: the On-Demand creation after a failed Spot one
(useOnDemandOnLastAttempt), the core group's resize before an activity (resizeClusterBeforeRunning), and the
cluster terminated at the end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import ended_execution, imported_state_machine, start_execution

pytestmark = pytest.mark.e2e

DEFINITION = {"objects": [
    {"id": "Default", "scheduleType": "ondemand"},
    {"id": "Spotty", "type": "EmrCluster", "releaseLabel": "emr-6.15.0", "coreInstanceCount": "2",
     "coreInstanceType": "m5.xlarge", "coreInstanceBidPrice": "0.30", "useOnDemandOnLastAttempt": "true"},
    {"id": "Count", "type": "EmrActivity", "runsOn": {"ref": "Spotty"}, "step": "command-runner.jar,echo,hello",
     "resizeClusterBeforeRunning": "true", "resizeClusterMaxInstances": "5"},
]}


def test_a_failed_spot_creation_falls_back_to_on_demand_and_the_core_group_is_resized(
    emulator: Any, tmp_path: Path
) -> None:
    sfn = emulator.client("stepfunctions")
    machine = imported_state_machine(emulator, tmp_path, "spotty", DEFINITION)
    # Spot capacity is not there: the first creation fails as a .sync creation does when its cluster fails.
    emulator.faults.fail_emr_call("createCluster", error="States.TaskFailed", cause="no Spot capacity", times=1)
    execution = start_execution(sfn, machine, {})
    ended = ended_execution(sfn, execution, timeout=90)
    assert ended["status"] == "SUCCEEDED", ended.get("cause")

    history = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered.index("Create_Cluster_Spotty") < entered.index("Create_Cluster_Spotty_On_Demand") \
        < entered.index("Resize_Core_Before_Count") < entered.index("Run_Count_1")
    cluster_id = json.loads(ended["output"])["clusters"]["Spotty"]["ClusterId"]
    emr = emulator.client("emr")
    groups = {g["InstanceGroupType"]: g for g in emr.list_instance_groups(ClusterId=cluster_id)["InstanceGroups"]}
    assert {g["Market"] for g in groups.values()} == {"ON_DEMAND"}
    assert groups["CORE"]["RequestedInstanceCount"] == 5
    assert emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"] == "TERMINATED"
