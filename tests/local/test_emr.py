"""EMR through the Step Functions interpreter: lifecycles, results, errors, faults, concurrency, StopExecution."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from datapipe.local.emr import next_sync_check
from datapipe.local.extensions import Extensions
from datapipe.local.faults import EMR_CALLS

from .conftest import history, run_state_machine, wait_for_execution
from .test_lambda import code_zip, lambda_role

EMR = "arn:aws:states:::elasticmapreduce"

CLUSTER_PARAMETERS: dict[str, Any] = {
    "Name": "WorkflowCluster",
    "VisibleToAllUsers": True,
    "ReleaseLabel": "emr-7.5.0",
    "Applications": [{"Name": "Hive"}],
    "ServiceRole": "EMR_DefaultRole",
    "JobFlowRole": "EMR_EC2_DefaultRole",
    "LogUri": "s3://test-logs/emr/",
    "StepConcurrencyLevel": 1,
    "AutoTerminationPolicy": {"IdleTimeout": 3600},
    "Tags": [{"Key": "datapipe:workflow", "Value": "emr"}],
    "Instances": {
        "KeepJobFlowAliveWhenNoSteps": True,
        "InstanceFleets": [
            {"Name": "Master", "InstanceFleetType": "MASTER", "TargetOnDemandCapacity": 1,
             "InstanceTypeConfigs": [{"InstanceType": "m5.xlarge"}]},
            {"Name": "Core", "InstanceFleetType": "CORE", "TargetOnDemandCapacity": 1,
             "InstanceTypeConfigs": [{"InstanceType": "m5.xlarge"}]},
        ],
    },
}  # fmt: skip


def step(name: str, action_on_failure: str = "CONTINUE") -> dict[str, Any]:
    return {
        "Name": name,
        "ActionOnFailure": action_on_failure,
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["hive-script", "--run-hive-script"]},
    }


def task(resource: str, parameters: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": f"{EMR}:{resource}", "Parameters": parameters, **fields}


def seed_flow() -> dict[str, Any]:
    """The seed's workflow (state names and integrations), with its 10-second waits shortened."""
    cluster = {"ClusterId.$": "$.ClusterId"}
    return {
        "StartAt": "Should_Create_Cluster",
        "States": {
            "Should_Create_Cluster": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.CreateCluster", "BooleanEquals": True, "Next": "Create_A_Cluster"},
                    {"Variable": "$.CreateCluster", "BooleanEquals": False, "Next": "Enable_Termination_Protection"},
                ],
                "Default": "Create_A_Cluster",
            },
            "Create_A_Cluster": task(
                "createCluster.sync", CLUSTER_PARAMETERS, ResultPath="$.CreateClusterResult", Next="Merge_Results"
            ),
            "Merge_Results": {
                "Type": "Pass",
                "Parameters": {
                    "CreateCluster.$": "$.CreateCluster",
                    "TerminateCluster.$": "$.TerminateCluster",
                    "ClusterId.$": "$.CreateClusterResult.ClusterId",
                },
                "Next": "Enable_Termination_Protection",
            },
            "Enable_Termination_Protection": task(
                "setClusterTerminationProtection",
                {**cluster, "TerminationProtected": True},
                ResultPath=None,
                Next="Add_Steps_Parallel",
            ),
            "Add_Steps_Parallel": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "Step_One",
                        "States": {
                            "Step_One": task("addStep.sync", {**cluster, "Step": step("The first step")}, End=True)
                        },
                    },
                    {
                        "StartAt": "Wait_10_Seconds",
                        "States": {
                            "Wait_10_Seconds": {"Type": "Wait", "Seconds": 0, "Next": "Step_Two (async)"},
                            "Step_Two (async)": task(
                                "addStep",
                                {**cluster, "Step": step("The second step")},
                                ResultPath="$.AddStepsResult",
                                Next="Wait_Another_10_Seconds",
                            ),
                            "Wait_Another_10_Seconds": {"Type": "Wait", "Seconds": 0, "Next": "Cancel_Step_Two"},
                            "Cancel_Step_Two": task(
                                "cancelStep", {**cluster, "StepId.$": "$.AddStepsResult.StepId"}, End=True
                            ),
                        },
                    },
                ],
                "ResultPath": "$.ParallelResult",
                "Next": "Step_Three",
            },
            "Step_Three": task(
                "addStep.sync", {**cluster, "Step": step("The third step")}, ResultPath="$.StepThree", Next="Disable"
            ),
            "Disable": task(
                "setClusterTerminationProtection",
                {**cluster, "TerminationProtected": False},
                ResultPath=None,
                Next="Should_Terminate_Cluster",
            ),
            "Should_Terminate_Cluster": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.TerminateCluster", "BooleanEquals": True, "Next": "Terminate_Cluster"}],
                "Default": "Wrapping_Up",
            },
            "Terminate_Cluster": task("terminateCluster.sync", cluster, ResultPath="$.Terminated", Next="Wrapping_Up"),
            "Wrapping_Up": {"Type": "Pass", "End": True},
        },
    }


def create_cluster_directly(aws: Callable[[str], Any], *, concurrency: int = 1, protected: bool = False) -> str:
    response = aws("emr").run_job_flow(
        Name="direct",
        ReleaseLabel="emr-7.5.0",
        LogUri="s3://test-logs/emr/",
        StepConcurrencyLevel=concurrency,
        Instances={
            "MasterInstanceType": "m5.xlarge",
            "SlaveInstanceType": "m5.xlarge",
            "InstanceCount": 2,
            "KeepJobFlowAliveWhenNoSteps": True,
            "TerminationProtected": protected,
        },
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )
    return str(response["JobFlowId"])


def wait_for_cluster(aws: Callable[[str], Any], cluster_id: str, states: tuple[str, ...], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while aws("emr").describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"] not in states:
        assert time.monotonic() < deadline, f"cluster {cluster_id} never reached {states}"
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def _sync_checks_at_a_small_scale(emulator: Extensions) -> None:
    """A .sync task checks EMR when Step Functions does, every 60 s and later 300 s, times wait_scale: 0.12 s here."""
    emulator.configure(dataclasses.replace(emulator.options, wait_scale=0.002))


@pytest.mark.parametrize(
    ("elapsed", "next_check"),
    [(0, 60), (59.9, 60), (60, 120), (599, 600), (600, 900), (899, 900), (900, 1200), (3600, 3900)],
)
def test_sync_checks_follow_step_functions_cadence(elapsed: float, next_check: float) -> None:
    """Every 60 s for the first 10 minutes, then every 300 s (Step Functions developer guide, "Create and manage
    Amazon EMR clusters with Step Functions")."""
    assert next_sync_check(elapsed) == next_check


@pytest.mark.parametrize(
    ("boot_seconds", "scale", "cadence"),
    # time_scale 0.2: a boot of 1 s ends 0.2 s after the call, 20 s at Step Functions' scale (wait_scale 0.01), within
    # the first 10 minutes, when checks come every 60 s; one of 10 s ends after 2 s, 1000 s at wait_scale 0.002, when
    # they come every 300 s.
    [(1.0, 0.01, 60), (10.0, 0.002, 300)],
)
def test_a_sync_wait_notices_a_change_at_the_next_scaled_check(
    aws: Callable[[str], Any], emulator: Extensions, boot_seconds: float, scale: float, cadence: int
) -> None:
    emulator.configure(dataclasses.replace(emulator.options, wait_scale=scale, emr_boot_seconds=boot_seconds))
    definition = {"StartAt": "Create", "States": {"Create": task("createCluster.sync", CLUSTER_PARAMETERS, End=True)}}
    _, execution_arn = run_state_machine(aws, definition)
    described = wait_for_execution(aws, execution_arn)
    assert described["status"] == "SUCCEEDED"
    when = {e["type"]: e["timestamp"].timestamp() for e in history(aws, execution_arn)}
    ready = json.loads(described["output"])["Status"]["Timeline"]["ReadyDateTime"] / 1000
    # The first check at or after the change, on the cadence counted from the submission.
    changed_after = (ready - when["TaskSubmitted"]) / scale
    first_check = ((changed_after - 600) // cadence + 1) * cadence + 600 if cadence == 300 else (
        (changed_after // cadence + 1) * cadence)
    noticed_after = when["TaskSucceeded"] - when["TaskSubmitted"]
    # Never before Step Functions would look, and not as late as the check after (the check's own reads take time).
    assert first_check * scale - 0.01 <= noticed_after < (first_check + cadence) * scale, (changed_after, noticed_after)


def test_seed_flow_runs_to_success_and_emr_sees_the_same_cluster(aws: Callable[[str], Any]) -> None:
    started = time.monotonic()
    _, execution_arn = run_state_machine(aws, seed_flow(), {"CreateCluster": True, "TerminateCluster": True})
    described = wait_for_execution(aws, execution_arn)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert time.monotonic() - started < 10

    output = json.loads(described["output"])
    cluster_id = output["ClusterId"]
    assert cluster_id.startswith("j-")
    assert output["StepThree"]["Status"]["State"] == "COMPLETED"
    assert output["Terminated"]["Status"]["State"] == "TERMINATED"

    emr = aws("emr")
    cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    assert cluster["Status"]["State"] == "TERMINATED"
    assert cluster["Name"] == "WorkflowCluster"
    assert cluster["LogUri"] == "s3://test-logs/emr/"
    assert cluster["InstanceCollectionType"] == "INSTANCE_FLEET"
    assert {"Key": "datapipe:workflow", "Value": "emr"} in cluster["Tags"]
    steps = {s["Name"]: s["Status"]["State"] for s in emr.list_steps(ClusterId=cluster_id)["Steps"]}
    assert steps == {"The first step": "COMPLETED", "The second step": "CANCELLED", "The third step": "COMPLETED"}
    assert cluster_id in {c["Id"] for c in emr.list_clusters()["Clusters"]}


def test_create_cluster_sync_waits_for_the_cluster_lifecycle(aws: Callable[[str], Any]) -> None:
    definition = {"StartAt": "Create", "States": {"Create": task("createCluster.sync", CLUSTER_PARAMETERS, End=True)}}
    _, execution_arn = run_state_machine(aws, definition)
    described = wait_for_execution(aws, execution_arn)
    assert described["status"] == "SUCCEEDED"
    result = json.loads(described["output"])
    assert result["Status"]["State"] == "WAITING"
    timeline = result["Status"]["Timeline"]
    assert timeline["ReadyDateTime"] >= timeline["CreationDateTime"]
    assert result["StepConcurrencyLevel"] == 1


def test_request_response_create_cluster_returns_at_once_with_the_cluster_starting(
    aws: Callable[[str], Any], emulator: Extensions
) -> None:
    emulator.configure(dataclasses.replace(emulator.options, emr_boot_seconds=5.0))
    definition = {"StartAt": "Create", "States": {"Create": task("createCluster", CLUSTER_PARAMETERS, End=True)}}
    _, execution_arn = run_state_machine(aws, definition)
    output = json.loads(wait_for_execution(aws, execution_arn)["output"])
    assert set(output) == {"ClusterId", "ClusterArn"}
    state = aws("emr").describe_cluster(ClusterId=output["ClusterId"])["Cluster"]["Status"]["State"]
    assert state in ("STARTING", "BOOTSTRAPPING")
    wait_for_cluster(aws, output["ClusterId"], ("WAITING",))


def test_terminating_a_protected_cluster_fails_with_the_emr_error(aws: Callable[[str], Any]) -> None:
    cluster_id = create_cluster_directly(aws, protected=True)
    definition = {
        "StartAt": "Terminate",
        "States": {
            "Terminate": task(
                "terminateCluster.sync",
                {"ClusterId": cluster_id},
                Catch=[{"ErrorEquals": ["EMR.AmazonElasticMapReduceException"], "Next": "Caught"}],
                End=True,
            ),
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    _, execution_arn = run_state_machine(aws, definition)
    described = wait_for_execution(aws, execution_arn)
    assert described["status"] == "SUCCEEDED"
    caught = json.loads(described["output"])
    assert caught["Error"] == "EMR.AmazonElasticMapReduceException"
    assert "termination protected" in caught["Cause"]
    wait_for_cluster(aws, cluster_id, ("WAITING",))


def test_create_cluster_without_keep_alive_is_rejected(aws: Callable[[str], Any]) -> None:
    parameters = {**CLUSTER_PARAMETERS, "Instances": {**CLUSTER_PARAMETERS["Instances"]}}
    parameters["Instances"]["KeepJobFlowAliveWhenNoSteps"] = False
    definition = {"StartAt": "Create", "States": {"Create": task("createCluster.sync", parameters, End=True)}}
    _, execution_arn = run_state_machine(aws, definition)
    described = wait_for_execution(aws, execution_arn)
    assert described["status"] == "FAILED"
    assert described["error"] == "EMR.AmazonElasticMapReduceException"
    assert "KeepJobFlowAliveWhenNoSteps" in described["cause"]


def _call_for(fault: str, cluster_id: str) -> dict[str, Any]:
    cluster = {"ClusterId": cluster_id}
    return {
        "createCluster": task("createCluster.sync", CLUSTER_PARAMETERS),
        "addStep": task("addStep.sync", {**cluster, "Step": step("faulty")}),
        "cancelStep": task("cancelStep", {**cluster, "StepId": "s-NOTHING"}),
        "terminateCluster": task("terminateCluster.sync", cluster),
        "setClusterTerminationProtection": task(
            "setClusterTerminationProtection", {**cluster, "TerminationProtected": True}
        ),
        "modifyInstanceFleetByName": task(
            "modifyInstanceFleetByName",
            {**cluster, "InstanceFleetName": "Core", "InstanceFleet": {"TargetOnDemandCapacity": 2}},
        ),
        "modifyInstanceGroupByName": task(
            "modifyInstanceGroupByName",
            {**cluster, "InstanceGroupName": "slave", "InstanceGroup": {"InstanceCount": 3}},
        ),
    }[fault]


def test_every_injected_emr_fault_is_caught_by_a_catch(aws: Callable[[str], Any], emulator: Extensions) -> None:
    cluster_id = create_cluster_directly(aws)
    branches = []
    for call in EMR_CALLS:
        emulator.faults.fail_emr_call(call, error="EMR.AmazonElasticMapReduceException", cause=f"{call} broke")
        branches.append(
            {
                "StartAt": call,
                "States": {
                    call: {
                        **_call_for(call, cluster_id),
                        "Catch": [{"ErrorEquals": ["EMR.AmazonElasticMapReduceException"], "Next": f"{call}-caught"}],
                        "End": True,
                    },
                    f"{call}-caught": {"Type": "Pass", "End": True},
                },
            }
        )
    definition = {"StartAt": "All", "States": {"All": {"Type": "Parallel", "Branches": branches, "End": True}}}
    _, execution_arn = run_state_machine(aws, definition)
    described = wait_for_execution(aws, execution_arn)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    outputs = json.loads(described["output"])
    assert [o["Cause"] for o in outputs] == [f"{call} broke" for call in EMR_CALLS]
    assert {o["Error"] for o in outputs} == {"EMR.AmazonElasticMapReduceException"}


def test_a_failed_step_fails_the_sync_task_with_its_log_location(
    aws: Callable[[str], Any], emulator: Extensions
) -> None:
    cluster_id = create_cluster_directly(aws)
    emulator.faults.fail_emr_step("broken step", reason="Hive query failed")
    definition = {
        "StartAt": "Run",
        "States": {
            "Run": task(
                "addStep.sync",
                {"ClusterId": cluster_id, "Step": step("broken step")},
                Catch=[{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}],
                End=True,
            ),
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    _, execution_arn = run_state_machine(aws, definition)
    described = wait_for_execution(aws, execution_arn)
    caught = json.loads(described["output"])
    assert caught["Error"] == "States.TaskFailed"
    failed_step = json.loads(caught["Cause"])
    assert failed_step["Status"]["State"] == "FAILED"
    details = failed_step["Status"]["FailureDetails"]
    assert details["Reason"] == "Hive query failed"
    assert details["LogFile"] == f"s3://test-logs/emr/{cluster_id}/steps/{failed_step['Id']}/stderr.gz"
    listed = aws("emr").list_steps(ClusterId=cluster_id)["Steps"][0]
    assert listed["Status"]["FailureDetails"]["Reason"] == "Hive query failed"


def test_steps_beyond_the_concurrency_level_wait_pending(aws: Callable[[str], Any], emulator: Extensions) -> None:
    emulator.configure(dataclasses.replace(emulator.options, emr_step_duration=15.0))
    emr = aws("emr")
    cluster_id = create_cluster_directly(aws, concurrency=2)
    wait_for_cluster(aws, cluster_id, ("WAITING",))
    ids = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step(f"s{i}") for i in range(3)])["StepIds"]
    time.sleep(0.15)
    states = {s["Id"]: s["Status"]["State"] for s in emr.list_steps(ClusterId=cluster_id)["Steps"]}
    assert [states[i] for i in ids] == ["RUNNING", "RUNNING", "PENDING"]
    assert emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"] == "RUNNING"

    # cancelStep cancels a RUNNING step and a PENDING one.
    definition = {
        "StartAt": "Cancel",
        "States": {
            "Cancel": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "C",
                        "States": {"C": task("cancelStep", {"ClusterId": cluster_id, "StepId": i}, End=True)},
                    }
                    for i in (ids[0], ids[2])
                ],
                "End": True,
            }
        },
    }
    _, execution_arn = run_state_machine(aws, definition)
    results = json.loads(wait_for_execution(aws, execution_arn)["output"])
    assert [r["CancelStepsInfoList"][0]["Status"] for r in results] == ["SUBMITTED", "SUBMITTED"]
    states = {s["Id"]: s["Status"]["State"] for s in emr.list_steps(ClusterId=cluster_id)["Steps"]}
    assert [states[i] for i in ids] == ["CANCELLED", "RUNNING", "CANCELLED"]


def test_stop_execution_during_a_sync_wait_aborts_promptly_and_emits_the_event(
    aws: Callable[[str], Any], emulator: Extensions
) -> None:
    emulator.configure(dataclasses.replace(emulator.options, emr_boot_seconds=60.0))
    sqs = aws("sqs")
    queue_url = sqs.create_queue(QueueName="aborted-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = aws("events")
    events.put_rule(
        Name="aborted",
        EventPattern=json.dumps({"source": ["aws.states"], "detail": {"status": ["ABORTED"]}}),
    )
    events.put_targets(Rule="aborted", Targets=[{"Id": "q", "Arn": queue_arn}])
    try:
        _stop_during_sync(aws, sqs, queue_url)
    finally:
        events.remove_targets(Rule="aborted", Ids=["q"])
        events.delete_rule(Name="aborted")


def _stop_during_sync(aws: Callable[[str], Any], sqs: Any, queue_url: str) -> None:
    definition = {"StartAt": "Create", "States": {"Create": task("createCluster.sync", CLUSTER_PARAMETERS, End=True)}}
    _, execution_arn = run_state_machine(aws, definition)
    time.sleep(0.3)
    sfn = aws("stepfunctions")
    stopped_at = time.monotonic()
    sfn.stop_execution(executionArn=execution_arn)
    assert sfn.describe_execution(executionArn=execution_arn)["status"] == "ABORTED"
    time.sleep(0.3)  # the interpreter unwinds: it must not turn ABORTED into something else
    assert sfn.describe_execution(executionArn=execution_arn)["status"] == "ABORTED"
    assert time.monotonic() - stopped_at < 2
    assert history(aws, execution_arn)[-1]["type"] == "ExecutionAborted"
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    details = [json.loads(m["Body"])["detail"] for m in messages]
    assert [d["status"] for d in details if d["executionArn"] == execution_arn] == ["ABORTED"]


def test_cluster_and_step_events_follow_the_lifecycle(aws: Callable[[str], Any]) -> None:
    sqs = aws("sqs")
    queue_url = sqs.create_queue(QueueName="emr-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = aws("events")
    events.put_rule(Name="emr", EventPattern=json.dumps({"source": ["aws.emr"]}))
    events.put_targets(Rule="emr", Targets=[{"Id": "q", "Arn": queue_arn}])
    try:
        cluster_id = create_cluster_directly(aws)
        aws("emr").add_job_flow_steps(JobFlowId=cluster_id, Steps=[step("only")])
        deadline = time.monotonic() + 10
        seen: list[tuple[str, str]] = []
        details: dict[str, list[dict[str, Any]]] = {}
        while ("EMR Step Status Change", "COMPLETED") not in seen:
            assert time.monotonic() < deadline, seen
            for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
                event = json.loads(message["Body"])
                if event["detail"]["clusterId"] == cluster_id:
                    seen.append((event["detail-type"], event["detail"]["state"]))
                    details.setdefault(event["detail-type"], []).append(event["detail"])
                    assert (event["source"], event["resources"]) == ("aws.emr", [])
            time.sleep(0.05)
        # The fields of EMR's events as the Amazon EMR Management Guide shows them ("Monitoring Amazon EMR events").
        for detail in details["EMR Cluster State Change"]:
            assert set(detail) == {"severity", "stateChangeReason", "name", "clusterId", "state", "message"}
            assert isinstance(json.loads(detail["stateChangeReason"]), dict)  # a JSON object as text
        completed = details["EMR Step Status Change"][-1]
        assert set(completed) == {"severity", "actionOnFailure", "stepId", "name", "clusterId", "state", "message"}
        assert (completed["name"], completed["severity"], completed["actionOnFailure"]) == ("only", "INFO", "CONTINUE")
        assert completed["message"].startswith(f"Step {completed['stepId']} (only) in Amazon EMR cluster {cluster_id} "
                                               "(direct)")
        cluster_states = [state for kind, state in seen if kind == "EMR Cluster State Change"]
        assert cluster_states[:3] == ["STARTING", "BOOTSTRAPPING", "WAITING"]
        assert "RUNNING" in cluster_states
        step_states = [state for kind, state in seen if kind == "EMR Step Status Change"]
        assert step_states == ["PENDING", "RUNNING", "COMPLETED"]
    finally:
        events.remove_targets(Rule="emr", Ids=["q"])
        events.delete_rule(Name="emr")


@pytest.mark.parametrize("action", ["modifyInstanceFleetByName", "modifyInstanceGroupByName"])
def test_modify_by_name_changes_the_cluster_or_names_what_is_missing(aws: Callable[[str], Any], action: str) -> None:
    cluster_id = create_cluster_directly(aws)
    definition = {"StartAt": "Modify", "States": {"Modify": {**_call_for(action, cluster_id), "End": True}}}
    _, execution_arn = run_state_machine(aws, definition)
    described = wait_for_execution(aws, execution_arn)
    if action == "modifyInstanceGroupByName":
        assert described["status"] == "SUCCEEDED"
        groups = aws("emr").list_instance_groups(ClusterId=cluster_id)["InstanceGroups"]
        assert {g["Name"]: g["RequestedInstanceCount"] for g in groups}["slave"] == 3
    else:  # a cluster made of instance groups has no fleet named Core
        assert described["status"] == "FAILED"
        assert "Instance fleet 'Core' does not exist" in described["cause"]


def test_a_failed_step_inside_parallel_and_map_reaches_their_catch(
    aws: Callable[[str], Any], emulator: Extensions
) -> None:
    """AWS passes a branch's States.TaskFailed to the Parallel's (and an iteration's to the Map's) Catch."""
    cluster_id = create_cluster_directly(aws)
    emulator.faults.fail_emr_step("doomed", reason="Spark driver exited with 3")
    failing = {
        "StartAt": "Run",
        "States": {"Run": task("addStep.sync", {"ClusterId": cluster_id, "Step": step("doomed")}, End=True)},
    }
    caught = {"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.caught", "Next": "Done"}
    definition = {
        "StartAt": "Branches",
        "States": {
            "Branches": {
                "Type": "Parallel",
                "Branches": [failing],
                "Catch": [{**caught, "Next": "Each"}],
                "ResultPath": None,
                "Next": "Each",
            },
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "Iterator": failing,
                "Catch": [{**caught, "ResultPath": "$.caught_in_map"}],
                "Next": "Done",
            },
            "Done": {"Type": "Pass", "End": True},
        },
    }
    _, execution_arn = run_state_machine(aws, definition, {"items": [1]})
    described = wait_for_execution(aws, execution_arn)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    output = json.loads(described["output"])
    assert output["caught"]["Error"] == "States.TaskFailed"
    assert output["caught_in_map"]["Error"] == "States.TaskFailed"


UNKNOWN_CLUSTER = "j-1A2B3C4D5E6F7"  # the README's reuse example: no such cluster


@pytest.mark.parametrize(
    ("call", "code", "message"),
    [
        ("describe_cluster", "InvalidRequestException", f"Cluster id '{UNKNOWN_CLUSTER}' is not valid."),
        ("list_steps", "InvalidRequestException", f"Cluster id '{UNKNOWN_CLUSTER}' is not valid."),
        ("set_termination_protection", "InvalidRequestException", f"Cluster id '{UNKNOWN_CLUSTER}' is not valid."),
        ("terminate_job_flows", "InvalidRequestException", f"Cluster id '{UNKNOWN_CLUSTER}' is not valid."),
        ("list_instance_groups", "InvalidRequestException", f"Cluster id '{UNKNOWN_CLUSTER}' is not valid."),
        ("add_job_flow_steps", "ValidationException", "Specified job flow ID does not exist."),
    ],
)
def test_an_unknown_cluster_is_a_client_error_not_a_server_error(
    aws: Callable[[str], Any], call: str, code: str, message: str
) -> None:
    every_call: dict[str, dict[str, Any]] = {
        "describe_cluster": {"ClusterId": UNKNOWN_CLUSTER},
        "list_steps": {"ClusterId": UNKNOWN_CLUSTER},
        "list_instance_groups": {"ClusterId": UNKNOWN_CLUSTER},
        "set_termination_protection": {"JobFlowIds": [UNKNOWN_CLUSTER], "TerminationProtected": True},
        "terminate_job_flows": {"JobFlowIds": [UNKNOWN_CLUSTER]},
        "add_job_flow_steps": {"JobFlowId": UNKNOWN_CLUSTER, "Steps": [step("lost")]},
    }
    arguments = every_call[call]
    with pytest.raises(ClientError) as raised:
        getattr(aws("emr"), call)(**arguments)
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["Error"]["Message"] == message


def test_an_unknown_step_and_an_ended_cluster_answer_as_emr(aws: Callable[[str], Any]) -> None:
    cluster_id = create_cluster_directly(aws)
    with pytest.raises(ClientError) as unknown_step:
        aws("emr").describe_step(ClusterId=cluster_id, StepId="s-NOSUCHSTEP")
    assert unknown_step.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "s-NOSUCHSTEP" in unknown_step.value.response["Error"]["Message"]
    aws("emr").terminate_job_flows(JobFlowIds=[cluster_id])
    wait_for_cluster(aws, cluster_id, ("TERMINATED",))
    for call, arguments in (
        ("set_termination_protection", {"JobFlowIds": [cluster_id], "TerminationProtected": False}),
        ("add_job_flow_steps", {"JobFlowId": cluster_id, "Steps": [step("late")]}),
    ):
        with pytest.raises(ClientError) as ended:
            getattr(aws("emr"), call)(**arguments)
        assert ended.value.response["Error"]["Code"] == "ValidationException"
        assert "terminated" in ended.value.response["Error"]["Message"]
    aws("emr").terminate_job_flows(JobFlowIds=[cluster_id])  # terminating again is accepted, as in EMR


def test_the_workflow_sees_emr_s_error_for_an_unknown_cluster(aws: Callable[[str], Any]) -> None:
    definition = {
        "StartAt": "Protect",
        "States": {
            "Protect": task(
                "setClusterTerminationProtection",
                {"ClusterId": UNKNOWN_CLUSTER, "TerminationProtected": True},
                Catch=[{"ErrorEquals": ["EMR.AmazonElasticMapReduceException"], "Next": "Caught"}],
                End=True,
            ),
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    started = time.monotonic()
    _, execution_arn = run_state_machine(aws, definition)
    described = wait_for_execution(aws, execution_arn)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    caught = json.loads(described["output"])
    assert caught["Error"] == "EMR.AmazonElasticMapReduceException"
    assert caught["Cause"].startswith(f"Cluster id '{UNKNOWN_CLUSTER}' is not valid. (Service: AmazonElasticMapReduce")
    assert "Error Code: InvalidRequestException" in caught["Cause"]
    assert time.monotonic() - started < 5  # answered at once, not after retries of a server error


def test_cancel_steps_cancels_a_pending_step_and_reports_the_others(aws: Callable[[str], Any]) -> None:
    emr = aws("emr")
    cluster_id = create_cluster_directly(aws)
    running, pending = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step("first"), step("second")])["StepIds"]
    answer = emr.cancel_steps(ClusterId=cluster_id, StepIds=[pending, "s-NOSUCHSTEP"])["CancelStepsInfoList"]
    assert answer[0] == {"StepId": pending, "Status": "SUBMITTED", "Reason": ""}
    assert answer[1]["StepId"] == "s-NOSUCHSTEP" and answer[1]["Status"] == "FAILED"
    assert emr.describe_step(ClusterId=cluster_id, StepId=pending)["Step"]["Status"]["State"] == "CANCELLED"
    with pytest.raises(ClientError) as unknown:
        emr.cancel_steps(ClusterId=UNKNOWN_CLUSTER, StepIds=[running])
    assert unknown.value.response["Error"]["Code"] == "InvalidRequestException"


def test_a_lost_event_is_caught_by_the_bounded_recheck_of_an_event_driven_wait(
    aws: Callable[[str], Any], emulator: Extensions
) -> None:
    """The EMR workflow's event-driven wait with no EventBridge rule (every event lost) and a 1 s timeout: the
    re-invoked emr_waits function reads the step once and answers; a step that never ends fails the wait with
    States.Timeout once the retries are spent, rather than hang."""
    emulator.configure(dataclasses.replace(emulator.options, emr_step_duration=5.0))  # 1 s at time_scale 0.2
    table = f"waits-{uuid.uuid4().hex[:8]}"
    aws("dynamodb").create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "WaitFor", "KeyType": "HASH"}, {"AttributeName": "Waiter", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "WaitFor", "AttributeType": "S"},
                              {"AttributeName": "Waiter", "AttributeType": "S"}],
    )
    function = f"emr-waits-{uuid.uuid4().hex[:8]}"
    handler = (Path(__file__).resolve().parents[2] / "lambdas" / "emr_waits" / "handler.py").read_text()
    aws("lambda").create_function(
        FunctionName=function, Runtime="python3.13", Role=lambda_role(aws), Handler="handler.handler",
        Code={"ZipFile": code_zip({"handler.py": handler})}, Timeout=30,
        Environment={"Variables": {"WAITS_TABLE": table, "POWERTOOLS_TRACE_DISABLED": "true"}},
    )
    cluster_id = create_cluster_directly(aws)
    ending = aws("emr").add_job_flow_steps(JobFlowId=cluster_id, Steps=[step("ends")])["StepIds"][0]

    def waiting(until: str, attempts: int) -> dict[str, Any]:
        payload = {"Action": "Await", "TaskToken.$": "$$.Task.Token", "Until": until, "ClusterId": cluster_id,
                   "StepId": ending, "Execution.$": "$$.Execution.Id", "State.$": "$$.State.Name"}
        return {"StartAt": "Wait_For_EMR", "States": {"Wait_For_EMR": {
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": function, "Payload": payload}, "TimeoutSeconds": 1,
            "Retry": [{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1, "MaxAttempts": attempts,
                       "BackoffRate": 1.0}],
            "End": True}}}

    _, found = run_state_machine(aws, waiting("StepEnded", attempts=3))
    _, never = run_state_machine(aws, waiting("ClusterTerminated", attempts=1))  # the cluster keeps running
    found_result, never_result = wait_for_execution(aws, found), wait_for_execution(aws, never)
    assert found_result["status"] == "SUCCEEDED", found_result
    assert json.loads(found_result["output"])["StepId"] == ending
    assert "TaskTimedOut" in [e["type"] for e in history(aws, found)]  # answered by a re-check, not by an event
    assert (never_result["status"], never_result["error"]) == ("FAILED", "States.Timeout")
    assert [e["type"] for e in history(aws, never)].count("TaskTimedOut") == 2  # the wait, then its one re-check
