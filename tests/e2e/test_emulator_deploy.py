"""The whole app, as synthesized for the session, deployed into the embedded emulator."""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from datapipe.local.deploy import CREATED, HANDLERS, NOT_EMULATED, SKIPPED
from datapipe.local.server import Emulator, EmulatorError
from datapipe.naming import Naming

pytestmark = pytest.mark.e2e
AWS_CLI = str(Path(sys.executable).with_name("aws"))


def test_every_resource_of_every_stack_is_deployed_or_reported(
    emulator: Emulator, templates: dict[str, dict[str, Any]]
) -> None:
    deployment = emulator.deployment
    assert deployment is not None
    assert {stack.artifact_id for stack in deployment.stacks} == set(templates)
    for stack in deployment.stacks:
        resources: dict[str, Any] = templates[stack.artifact_id].get("Resources", {})
        conditional = {logical_id for logical_id, r in resources.items() if "Condition" in r}
        deployed = {r.logical_id: r for r in stack.resources}
        assert set(resources) - conditional <= set(deployed), f"{stack.stack_name} lost resources"
        for logical_id, resource in deployed.items():
            assert resource.resource_type == resources[logical_id]["Type"]
            assert resource.status in (CREATED, NOT_EMULATED, SKIPPED)
            if resource.status != CREATED:
                assert resource.note, f"{logical_id} is {resource.status} without a reason"
                assert resource.resource_type not in HANDLERS or resource.status == SKIPPED


def test_deployed_state_machines_activities_functions_and_buckets_are_real(emulator: Emulator) -> None:
    deployment = emulator.deployment
    assert deployment is not None
    sfn, lambda_, s3 = emulator.client("stepfunctions"), emulator.client("lambda"), emulator.client("s3")

    machines = {m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    expected = {r.physical_id for r in deployment.resources_of_type("AWS::StepFunctions::StateMachine")}
    assert expected and expected <= machines
    workflow_arn = Naming().state_machine_arn("emr-workflow", account=emulator.account, region=emulator.region)
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=workflow_arn)["definition"])
    assert "Create_A_Cluster" in definition["States"]
    assert "${" not in json.dumps(definition), "a substitution was left in the definition"

    activities = {a["activityArn"] for a in sfn.list_activities()["activities"]}
    assert {r.physical_id for r in deployment.resources_of_type("AWS::StepFunctions::Activity")} <= activities

    functions = {f["FunctionName"] for f in lambda_.list_functions()["Functions"]}
    assert {r.physical_id for r in deployment.resources_of_type("AWS::Lambda::Function")} <= functions

    for policy in deployment.resources_of_type("AWS::S3::BucketPolicy"):
        assert "left out: Deny s3:* if aws:SecureTransport" in policy.note
    for bucket in deployment.resources_of_type("AWS::S3::Bucket"):
        s3.put_object(Bucket=bucket.physical_id, Key="e2e/probe.txt", Body=b"reachable")
        encryption = s3.get_bucket_encryption(Bucket=bucket.physical_id)["ServerSideEncryptionConfiguration"]
        assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_the_aws_cli_sees_the_state_machines_and_a_runs_history(
    emulator: Emulator, subprocess_env: dict[str, str]
) -> None:
    def aws(*arguments: str) -> Any:
        result = subprocess.run(
            [AWS_CLI, "--endpoint-url", emulator.endpoint_url, "--output", "json", *arguments],
            capture_output=True,
            text=True,
            env={**subprocess_env, "AWS_DEFAULT_REGION": emulator.region},
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    listed = {m["name"] for m in aws("stepfunctions", "list-state-machines")["stateMachines"]}
    assert Naming().state_machine("emr-workflow") in listed

    # Input without CreateCluster is rejected by the workflow's first state: a run that ends quickly.
    workflow_arn = Naming().state_machine_arn("emr-workflow", account=emulator.account, region=emulator.region)
    execution_arn = aws("stepfunctions", "start-execution", "--state-machine-arn", workflow_arn, "--input", "{}")[
        "executionArn"
    ]
    sfn = emulator.client("stepfunctions")
    deadline = time.monotonic() + 10
    while sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the rejected run never ended"
        time.sleep(0.05)
    events = aws("stepfunctions", "get-execution-history", "--execution-arn", execution_arn)["events"]
    kinds = [event["type"] for event in events]
    assert kinds[0] == "ExecutionStarted"
    assert kinds[-1] == "ExecutionFailed"
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
    assert entered[0] == "Validate_Input"


def test_clients_built_from_the_environment_reach_the_emulator(emulator: Emulator) -> None:
    """Code that builds its own boto3 clients (Lambda handlers, datapipe commands) reaches the emulator."""
    assert os.environ["AWS_ENDPOINT_URL"] == emulator.endpoint_url
    plain = boto3.client("stepfunctions")
    names = {m["name"] for m in plain.list_state_machines()["stateMachines"]}
    assert Naming().state_machine("emr-workflow") in names


def test_a_second_emulator_in_the_same_process_is_refused(emulator: Emulator) -> None:
    with pytest.raises(EmulatorError, match=f"an emulator already runs in this process at {emulator.endpoint_url}"):
        Emulator().start()
    assert emulator.client("sts").get_caller_identity()["Account"] == emulator.account


def test_deploying_twice_into_one_emulator_is_refused(emulator: Emulator, assembly_dir: Path) -> None:
    with pytest.raises(EmulatorError, match="already holds a deployment; start a new one"):
        emulator.deploy(assembly_dir)


def test_runs_started_without_a_name_or_a_scheduled_time_reach_the_worker_group(emulator: Emulator) -> None:
    """As EventBridge and Scheduler start them: no name, no scheduledStartTime (issue 12, item 1).

    Each run is named with a UUID (moto named both `None`: the second collided), the worker-group task gets that
    name as its `execution`, and the imported pipeline's run time comes from `$$.Execution.StartTime` (moto's
    datetime failed `States.StringSplit` with States.Runtime).
    """
    sfn = emulator.client("stepfunctions")
    arn = Naming().state_machine_arn(
        "pipeline-shell-with-dependencies", account=emulator.account, region=emulator.region
    )
    activity = next(a["activityArn"] for a in sfn.list_activities()["activities"] if a["name"].endswith("wg-12345"))
    runs = [sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"] for _ in range(2)]
    try:
        described = [sfn.describe_execution(executionArn=run) for run in runs]
        names = {d["name"] for d in described}
        assert len(names) == 2
        assert all(re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", name) for name in names), names
        tasks: dict[str, dict[str, Any]] = {}
        for _ in runs:
            task = sfn.get_activity_task(activityArn=activity, workerName="e2e-unnamed-runs")
            assert task["taskToken"], "no worker-group task arrived"
            task_input = json.loads(task["input"])
            tasks[task_input["execution"]] = task_input
            sfn.send_task_failure(taskToken=task["taskToken"], error="E2E.Checked", cause="only the input matters")
        assert set(tasks) == names
        for run in described:
            # The definition's #{format(@scheduledStartTime,'YYYY-MM-dd')} reaches the command as data: the date's
            # parts in the task's environment.
            started = run["startDate"].astimezone(datetime.UTC)
            environment = tasks[run["name"]]["environment"]
            assert (environment["SCHEDULED_START_YEAR"], environment["SCHEDULED_START_MONTH"],
                    environment["SCHEDULED_START_DAY"]) == (f"{started:%Y}", f"{started:%m}", f"{started:%d}")
    finally:
        for run in runs:
            if sfn.describe_execution(executionArn=run)["status"] == "RUNNING":
                sfn.stop_execution(executionArn=run)


def test_the_emr_workflow_reusing_an_unknown_cluster_fails_at_once_naming_it(emulator: Emulator) -> None:
    """The README's reuse example names no real cluster (issue 12, item 2).

    moto answered DescribeCluster and SetTerminationProtection with an HTML 500 page (a KeyError), which boto3
    retried seven times. Now EMR's InvalidRequestException reaches the workflow's cluster check, and the run fails
    at once, before any call that changes a cluster, with datapipe.ClusterUnavailable naming the cluster.
    """
    sfn = emulator.client("stepfunctions")
    arn = Naming().state_machine_arn("emr-workflow", account=emulator.account, region=emulator.region)
    reuse = {"CreateCluster": False, "TerminateCluster": False, "ClusterId": "j-1A2B3C4D5E6F7"}
    started = time.monotonic()
    run = sfn.start_execution(stateMachineArn=arn, input=json.dumps(reuse))["executionArn"]
    while (described := sfn.describe_execution(executionArn=run))["status"] == "RUNNING":
        assert time.monotonic() - started < 30, "the run still waits after 30 s"
        time.sleep(0.1)
    assert described["status"] == "FAILED"
    assert described["error"] == "datapipe.ClusterUnavailable", described
    assert "j-1A2B3C4D5E6F7" in described["cause"] and "not found" in described["cause"], described["cause"]
    events = sfn.get_execution_history(executionArn=run, maxResults=1000)["events"]
    text = json.dumps(events, default=str)
    assert "Internal Server Error" not in text and "<html" not in text.lower()
    entered = {e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e}
    assert not entered & {"Enable_Termination_Protection", "Add_Steps_Parallel", "Step_One"}, entered
