"""The synthesized EMR workflow: seed parity, cleanup on every failure, validation, safety nets and scoped IAM, in
both wait modes: `events` (the default, the session's app) and `sync` (this stack alone, checked by cdk-nag and
cfn-lint here)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks.config import SettingsError, load_settings

STACK = "EmrWorkflow"
CLEANUP_ENTRY = "Describe_Failure"
CLEANUP_STATES = {
    "Describe_Failure",
    "Has_Failure_Report",
    "Use_Failure_Report",
    "Cleanup_Disable_Termination_Protection",
    "Created_By_This_Execution",
    "Cleanup_Terminate_Cluster",
    "Workflow_Failed",
}
EMR = "arn:TOKEN:states:::elasticmapreduce:"

# The seed's states and transitions (the contract): Next, Choice rules (value -> next) and Default.
# Two seed transitions go through states added for safety, because the seed protected, then unprotected, a cluster
# it was handed: CreateCluster false leads to Check_Handed_In_Cluster (not Enable_Termination_Protection), and
# Step_Three to Should_Disable_Termination_Protection (not Disable_Termination_Protection).
SEED_NEXT = {
    "Create_A_Cluster": "Merge_Results",
    "Merge_Results": "Enable_Termination_Protection",
    "Enable_Termination_Protection": "Add_Steps_Parallel",
    "Add_Steps_Parallel": "Step_Three",
    "Step_Three": "Should_Disable_Termination_Protection",
    "Disable_Termination_Protection": "Should_Terminate_Cluster",
    "Terminate_Cluster": "Wrapping_Up",
}
SEED_CHOICES = {
    "Should_Create_Cluster": ("$.CreateCluster", {True: "Create_A_Cluster", False: "Check_Handed_In_Cluster"},
                              "Create_A_Cluster"),
    "Should_Terminate_Cluster": ("$.TerminateCluster", {True: "Terminate_Cluster", False: "Wrapping_Up"},
                                 "Wrapping_Up"),
}
SEED_RESOURCES = {
    "Create_A_Cluster": "createCluster.sync",
    "Enable_Termination_Protection": "setClusterTerminationProtection",
    "Step_One": "addStep.sync",
    "Step_Two (async)": "addStep",
    "Cancel_Step_Two": "cancelStep",
    "Step_Three": "addStep.sync",
    "Disable_Termination_Protection": "setClusterTerminationProtection",
    "Terminate_Cluster": "terminateCluster.sync",
}
# Events mode: each task that the seed ran with .sync runs request-response, and the state after it waits for the
# emr_waits Lambda's answer (what it waits for: the Lambda's `Until`).
WAITS = {
    "Create_A_Cluster": ("Wait_For_Cluster_Ready", "ClusterReady"),
    "Step_One": ("Wait_For_Step_One", "StepEnded"),
    "Step_Three": ("Wait_For_Step_Three", "StepEnded"),
    "Terminate_Cluster": ("Wait_For_Cluster_Termination", "ClusterTerminated"),
    "Cleanup_Terminate_Cluster": ("Cleanup_Wait_For_Termination", "ClusterTerminated"),
}
LAMBDA_WAIT = "arn:TOKEN:states:::lambda:invoke.waitForTaskToken"


def after(states: Mapping[str, Any], name: str) -> str:
    """The state after `name`, through its Wait_For_* state in events mode."""
    following = str(states[name].get("Next"))
    if name in WAITS and following == WAITS[name][0]:
        following = str(states[following].get("Next"))
    return following


def flatten(value: Any) -> str:
    """A CloudFormation string (Fn::Join of text and intrinsics) as text, every intrinsic shown as TOKEN."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(flatten(p) for p in parts)
    return "TOKEN"


def definition_of(template: Mapping[str, Any]) -> dict[str, Any]:
    machines = [r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    assert len(machines) == 1
    return dict(json.loads(flatten(machines[0]["Properties"]["DefinitionString"])))


def all_states(machine: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in machine["States"].items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from all_states(branch)


def successors(state: dict[str, Any]) -> list[str]:
    found = [state["Next"]] if "Next" in state else []
    found += [rule["Next"] for rule in state.get("Choices", [])]
    found += [state["Default"]] if "Default" in state else []
    return found


@pytest.fixture(scope="module")
def definition(templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return definition_of(templates[STACK])


@pytest.fixture(scope="module")
def states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(all_states(definition))


@pytest.fixture(scope="module")
def template(template_of: Callable[[str], Template]) -> Template:
    return template_of(STACK)


# ---------------------------------------------------------------------------------------------------------------------
# Seed parity


@pytest.fixture(scope="module")
def sync_template(cdk_json_context: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This stack alone with `emr.waitMode=sync`, synthesized with cdk-nag (synthesis fails on a finding)."""
    from cdk_nag import AwsSolutionsChecks

    from datapipe.naming import Naming
    from stacks.emr_workflow import EmrWorkflow

    outdir = tmp_path_factory.mktemp("sync")
    app = cdk.App(context=cdk_json_context, outdir=str(outdir))
    stack = cdk.Stack(app, "SyncWaits", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    EmrWorkflow(stack, "EmrWorkflow", naming=Naming(), settings=load_settings({"emr.waitMode": "sync"}).emr,
                removal_policy=cdk.RemovalPolicy.DESTROY)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    return outdir / "SyncWaits.template.json"


@pytest.fixture(scope="module")
def sync_states(sync_template: Path) -> dict[str, dict[str, Any]]:
    return dict(all_states(definition_of(json.loads(sync_template.read_text()))))


@pytest.mark.parametrize("mode", ["events", "sync"])
def test_every_seed_state_keeps_its_transitions(
    mode: str, states: dict[str, dict[str, Any]], sync_states: dict[str, dict[str, Any]]
) -> None:
    states = sync_states if mode == "sync" else states
    for name, following in SEED_NEXT.items():
        assert after(states, name) == following, name
    for name, (variable, by_value, default) in SEED_CHOICES.items():
        choice = states[name]
        assert choice["Type"] == "Choice"
        assert {r["BooleanEquals"]: r["Next"] for r in choice["Choices"] if r["Variable"] == variable} == by_value
        assert choice["Default"] == default
    for name, integration in SEED_RESOURCES.items():
        if mode == "events":
            integration = integration.removesuffix(".sync")
        assert states[name]["Resource"] == EMR + integration, name
    assert states["Merge_Results"]["Parameters"] == {
        "CreateCluster.$": "$.CreateCluster",
        "TerminateCluster.$": "$.TerminateCluster",
        "ClusterId.$": "$.CreateClusterResult.ClusterId",
    }
    assert states["Enable_Termination_Protection"]["Parameters"]["TerminationProtected"] is True
    assert states["Disable_Termination_Protection"]["Parameters"]["TerminationProtected"] is False
    assert states["Wrapping_Up"]["Type"] == "Pass"


def test_the_parallel_runs_step_one_beside_the_async_step_two_that_is_cancelled(states: dict[str, Any]) -> None:
    branches = states["Add_Steps_Parallel"]["Branches"]
    assert [b["StartAt"] for b in branches] == ["Step_One", "Wait_10_Seconds"]
    assert states["Step_One"]["Next"] == "Wait_For_Step_One"
    assert states["Wait_For_Step_One"]["End"] is True
    assert (states["Wait_10_Seconds"]["Seconds"], states["Wait_10_Seconds"]["Next"]) == (10, "Step_Two (async)")
    assert states["Step_Two (async)"]["ResultPath"] == "$.AddStepsResult"
    assert states["Step_Two (async)"]["Next"] == "Wait_Another_10_Seconds"
    assert states["Wait_Another_10_Seconds"]["Next"] == "Cancel_Step_Two"
    assert states["Cancel_Step_Two"]["Parameters"]["StepId.$"] == "$.AddStepsResult.StepId"
    assert states["Cancel_Step_Two"]["End"] is True


def test_default_steps_run_the_sample_hive_query_into_our_data_bucket(states: dict[str, Any]) -> None:
    for name, title, folder in (
        ("Step_One", "The first step", "step-one"),
        ("Step_Two (async)", "The second step", "step-two"),
        ("Step_Three", "The third step", "step-three"),
    ):
        step = states[name]["Parameters"]["Step"]
        assert step["Name"] == title
        assert step["ActionOnFailure"] == "CONTINUE"
        assert step["HadoopJarStep"]["Jar"] == "command-runner.jar"
        args = step["HadoopJarStep"]["Args"]
        assert args[:4] == ["hive-script", "--run-hive-script", "--args", "-f"]
        assert args[4] == "s3://TOKEN.elasticmapreduce.samples/cloudfront/code/Hive_CloudFront.q"
        assert args[-1] == f"OUTPUT=s3://datapipe-dev-data-TOKEN-TOKEN/emr-workflow/{folder}/"


# ---------------------------------------------------------------------------------------------------------------------
# Safety


def test_input_is_validated_before_any_emr_call(definition: dict[str, Any], states: dict[str, Any]) -> None:
    assert definition["StartAt"] == "Validate_Input"
    validate = states["Validate_Input"]
    assert validate["Default"] == "Should_Create_Cluster"
    rejects = {rule["Next"] for rule in validate["Choices"]}
    assert rejects == {"Reject_CreateCluster", "Reject_TerminateCluster", "Reject_ClusterId"}
    for target in rejects:
        field = target.removeprefix("Reject_")
        assert states[target]["Type"] == "Fail"
        assert states[target]["Error"] == "datapipe.InvalidInput"
        assert f"'{field}'" in states[target]["Cause"]
    # Presence is checked before type: a comparison on a missing field would be a runtime error, not a rejection.
    first_two = validate["Choices"][:2]
    assert first_two[0] == {"Not": {"Variable": "$.CreateCluster", "IsPresent": True}, "Next": "Reject_CreateCluster"}
    assert first_two[1] == {"Not": {"Variable": "$.CreateCluster", "IsBoolean": True}, "Next": "Reject_CreateCluster"}


def test_every_task_after_create_a_cluster_is_caught_into_the_cleanup_path(states: dict[str, Any]) -> None:
    reachable, frontier = set(), ["Create_A_Cluster"]
    while frontier:
        name = frontier.pop()
        if name in reachable or name in CLEANUP_STATES:
            continue
        reachable.add(name)
        frontier += successors(states[name])
    # The cluster is not ready (a failed start fails the run, as .sync does; the reaper acts on the execution's tag).
    reachable -= {"Create_A_Cluster", "Wait_For_Cluster_Ready"}
    assert states["Wait_For_Cluster_Ready"]["Catch"][0]["Next"] == "Workflow_Failed"
    guarded = {n for n in reachable if states[n]["Type"] in ("Task", "Parallel") and n != "Summarize_Run"}
    assert guarded >= {"Enable_Termination_Protection", "Add_Steps_Parallel", "Step_Three", "Wait_For_Step_Three",
                       "Disable_Termination_Protection", "Terminate_Cluster", "Wait_For_Cluster_Termination"}
    for name in guarded:
        catches = states[name].get("Catch", [])
        assert [(c["ErrorEquals"], c["Next"], c["ResultPath"]) for c in catches] == [
            (["States.ALL"], CLEANUP_ENTRY, "$.Failure")
        ], name
    # Tasks inside the Parallel are covered by the Parallel's Catch.
    for branch in states["Add_Steps_Parallel"]["Branches"]:
        assert all("Catch" not in s for s in branch["States"].values())


def test_cleanup_unprotects_and_terminates_only_a_cluster_this_execution_created_then_fails_with_the_cause(
    states: dict[str, Any],
) -> None:
    assert states["Describe_Failure"]["Parameters"]["Action"] == "DescribeFailure"
    assert states["Describe_Failure"]["Next"] == "Has_Failure_Report"
    assert states["Describe_Failure"]["Catch"][0]["Next"] == "Created_By_This_Execution"
    assert states["Has_Failure_Report"]["Default"] == "Created_By_This_Execution"
    assert states["Use_Failure_Report"]["Next"] == "Created_By_This_Execution"
    assert states["Use_Failure_Report"]["Parameters"]["Cause.$"] == "$.FailureReport.result.Message"
    decide = states["Created_By_This_Execution"]
    assert decide["Choices"] == [
        {"Variable": "$.CreateCluster", "BooleanEquals": True, "Next": "Cleanup_Disable_Termination_Protection"}
    ]
    assert decide["Default"] == "Workflow_Failed"  # a cluster handed in keeps its protection and is not terminated
    disable = states["Cleanup_Disable_Termination_Protection"]
    assert disable["Parameters"]["TerminationProtected"] is False
    assert disable["Next"] == disable["Catch"][0]["Next"] == "Cleanup_Terminate_Cluster"
    terminate = states["Cleanup_Terminate_Cluster"]
    assert terminate["Resource"] == EMR + "terminateCluster"
    assert terminate["Next"] == "Cleanup_Wait_For_Termination"
    terminated = states["Cleanup_Wait_For_Termination"]
    assert terminate["Catch"][0]["Next"] == terminated["Next"] == terminated["Catch"][0]["Next"] == "Workflow_Failed"
    failed = states["Workflow_Failed"]
    assert (failed["Type"], failed["CausePath"]) == ("Fail", "$.Failure.Cause")
    assert failed["Error"] == "datapipe.WorkflowFailed"  # a caught States.* name may not be raised again
    # A failed create has no cluster id to clean up: it fails directly, and the reaper removes tagged leftovers.
    assert states["Create_A_Cluster"]["Catch"][0]["Next"] == "Workflow_Failed"


def test_a_handed_in_cluster_is_checked_before_the_first_emr_call(states: dict[str, Any]) -> None:
    check = states["Check_Handed_In_Cluster"]
    assert check["Resource"] == states["Summarize_Run"]["Resource"]  # the reader function
    assert check["Parameters"] == {
        "Action": "CheckCluster",
        "ClusterId.$": "$.ClusterId",
        "CreatedBy": {"Key": "datapipe:workflow", "Value": "datapipe-dev-emr-workflow"},
        "OptIn": {"Key": "datapipe:reuse", "Value": "datapipe-dev"},
    }
    assert (check["ResultPath"], check["Next"]) == ("$.ClusterCheck", "Is_Cluster_Allowed")
    # Throttling of the reader's DescribeCluster is raised as ClientError: retried with backoff, like EMR calls.
    assert [(r["ErrorEquals"], r["BackoffRate"]) for r in check["Retry"]][-1] == (["ClientError"], 2)
    verdict = states["Is_Cluster_Allowed"]
    assert verdict["Choices"] == [
        {"Variable": "$.ClusterCheck.ok", "BooleanEquals": False, "Next": "Reject_Malformed_ClusterId"},
        {"Variable": "$.ClusterCheck.result.Verdict", "StringEquals": "Allowed", "Next": "Add_Steps_Parallel"},
        {"Variable": "$.ClusterCheck.result.Verdict", "StringEquals": "Unavailable", "Next": "Cluster_Unavailable"},
    ]
    assert verdict["Default"] == "Cluster_Not_Allowed"
    for name, error, cause in (
        ("Reject_Malformed_ClusterId", "datapipe.InvalidInput", "$.ClusterCheck.error.message"),
        ("Cluster_Unavailable", "datapipe.ClusterUnavailable", "$.ClusterCheck.result.Message"),
        ("Cluster_Not_Allowed", "datapipe.ClusterNotAllowed", "$.ClusterCheck.result.Message"),
    ):
        assert (states[name]["Type"], states[name]["Error"], states[name]["CausePath"]) == ("Fail", error, cause)


def test_protection_changes_only_on_a_created_cluster_or_one_the_input_asks_to_terminate(
    states: dict[str, Any],
) -> None:
    # Enable_Termination_Protection is reached only from Merge_Results, after Create_A_Cluster.
    pointing = {name for name, state in states.items() if "Enable_Termination_Protection" in successors(state)}
    assert pointing == {"Merge_Results"}
    decide = states["Should_Disable_Termination_Protection"]
    assert decide["Choices"] == [
        {"Variable": "$.CreateCluster", "BooleanEquals": True, "Next": "Disable_Termination_Protection"},
        {"Variable": "$.TerminateCluster", "BooleanEquals": True, "Next": "Disable_Termination_Protection"},
    ]
    assert decide["Default"] == "Should_Terminate_Cluster"
    setters = {n for n, s in states.items() if s.get("Resource", "").endswith("setClusterTerminationProtection")}
    assert setters == {"Enable_Termination_Protection", "Disable_Termination_Protection",
                       "Cleanup_Disable_Termination_Protection"}


def test_emr_calls_retry_with_backoff(states: dict[str, Any]) -> None:
    for name in ("Enable_Termination_Protection", "Step_One", "Step_Two (async)", "Cancel_Step_Two", "Step_Three",
                 "Disable_Termination_Protection", "Terminate_Cluster", "Cleanup_Terminate_Cluster"):
        (retry,) = states[name]["Retry"]
        assert "EMR.AmazonElasticMapReduceException" in retry["ErrorEquals"], name
        assert retry["BackoffRate"] == 2 and retry["MaxAttempts"] >= 2, name


def test_the_created_cluster_is_safe_by_construction(states: dict[str, Any]) -> None:
    create = states["Create_A_Cluster"]["Parameters"]
    assert create["ReleaseLabel"].startswith("emr-7.")
    assert create["StepConcurrencyLevel"] >= 2  # Step_One and Step_Two run side by side
    assert create["AutoTerminationPolicy"]["IdleTimeout"] == 3600
    assert create["LogUri"] == "s3://datapipe-dev-logs-TOKEN-TOKEN/emr/"
    assert create["Instances"]["KeepJobFlowAliveWhenNoSteps"] is True
    fleets = {f["Name"]: f for f in create["Instances"]["InstanceFleets"]}
    assert fleets["Primary"]["InstanceFleetType"] == "MASTER"
    assert fleets["Core"]["InstanceFleetType"] == "CORE"
    assert len(fleets["Core"]["InstanceTypeConfigs"]) > 1
    tags = {t["Key"]: t.get("Value", t.get("Value.$")) for t in create["Tags"]}
    assert tags["datapipe:execution"] == "$$.Execution.Id"
    assert tags["datapipe:workflow"] == "datapipe-dev-emr-workflow"
    assert tags["for-use-with-amazon-emr-managed-policies"] == "true"  # what the v2 service policy acts on


def test_the_run_ends_with_a_summary_that_cannot_fail_it(states: dict[str, Any]) -> None:
    assert states["Wrapping_Up"]["Next"] == "Summarize_Run"
    summarize = states["Summarize_Run"]
    assert summarize["Parameters"] == {"Action": "Summarize", "ClusterId.$": "$.ClusterId"}
    assert summarize["Next"] == summarize["Catch"][0]["Next"] == "Done"
    assert states["Done"]["Type"] == "Succeed"


def test_state_machine_logs_traces_and_times_out(template: Template, definition: dict[str, Any]) -> None:
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineName": "datapipe-dev-emr-workflow",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": {"Level": "ALL", "IncludeExecutionData": True},
        },
    )
    assert definition["TimeoutSeconds"] == 360 * 60


def test_the_reaper_hears_about_stopped_timed_out_and_failed_executions(template: Template) -> None:
    rules = template.find_resources("AWS::Events::Rule")
    (rule,) = [r for r in rules.values() if r["Properties"].get("Name") == "datapipe-dev-emr-cluster-reaper"]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
    machine = next(iter(template.find_resources("AWS::StepFunctions::StateMachine")))
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": machine}]
    functions = template.find_resources("AWS::Lambda::Function")
    reaper = next(k for k, v in functions.items() if v["Properties"]["FunctionName"] == "datapipe-dev-cluster-reaper")
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [reaper, "Arn"]}


def test_functions_use_the_managed_powertools_layer_and_ship_only_their_folder(
    template: Template, assembly_dir: Path
) -> None:
    functions = template.find_resources("AWS::Lambda::Function")
    assert {f["Properties"]["FunctionName"] for f in functions.values()} == {
        "datapipe-dev-emr-reader", "datapipe-dev-cluster-reaper", "datapipe-dev-emr-waits"
    }
    for function in functions.values():
        props = function["Properties"]
        assert props["Runtime"] == "python3.13"
        assert props["Handler"] == "handler.handler"
        assert props["TracingConfig"] == {"Mode": "Active"}
        (layer,) = props["Layers"]
        assert "017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-x86_64:" in json.dumps(layer)
        asset = assembly_dir / f"asset.{props['Code']['S3Key'].removesuffix('.zip')}"
        assert sorted(p.name for p in asset.iterdir()) == ["__init__.py", "handler.py"]


# ---------------------------------------------------------------------------------------------------------------------
# Event-driven waits (emr.waitMode=events, the default) and the native .sync (emr.waitMode=sync)


def function_id(template: Mapping[str, Any], name: str) -> str:
    functions = template["Resources"]
    return next(k for k, v in functions.items()
                if v["Type"] == "AWS::Lambda::Function" and v["Properties"]["FunctionName"] == name)


def test_each_seed_wait_waits_for_the_callback_of_the_emr_waits_function(
    states: dict[str, Any], templates: dict[str, Any]
) -> None:
    waiter = function_id(templates[STACK], "datapipe-dev-emr-waits")
    for task, (wait_name, until) in WAITS.items():
        assert states[task]["Next"] == wait_name, task
        wait = states[wait_name]
        assert wait["Resource"] == LAMBDA_WAIT
        assert wait["Parameters"]["FunctionName"] == "TOKEN"  # the waits function's ARN: see below
        payload = wait["Parameters"]["Payload"]
        cluster_path = "$.CreateClusterResult.ClusterId" if task == "Create_A_Cluster" else "$.ClusterId"
        expected = {"Action": "Await", "Task": task, "TaskToken.$": "$$.Task.Token", "Until": until,
                    "ClusterId.$": cluster_path,
                    "Execution.$": "$$.Execution.Id", "State.$": "$$.State.Name"}
        if until == "StepEnded":
            expected["StepId.$"] = "$.AddedStep.StepId"
            assert states[task]["ResultPath"] == "$.AddedStep"
        assert payload == expected, wait_name
        # A lost event: after 300 s without an answer the function is invoked again (one Describe); 360 minutes of
        # execution timeout / 300 s = 72 re-checks at most.
        assert wait["TimeoutSeconds"] == 300
        retries = {tuple(r["ErrorEquals"]): r for r in wait["Retry"]}
        assert (retries[("States.Timeout",)]["MaxAttempts"], retries[("States.Timeout",)]["BackoffRate"]) == (72, 1)
        assert retries[("ClientError",)]["MaxAttempts"] == 3  # the function's throttled reads
    (machine,) = [r for r in templates[STACK]["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    assert parts.count({"Fn::GetAtt": [waiter, "Arn"]}) == len(WAITS)
    # The cluster wait hands on what createCluster.sync did: the described cluster, with ClusterId for Merge_Results.
    assert states["Wait_For_Cluster_Ready"]["ResultPath"] == "$.CreateClusterResult"
    for wait_name in ("Wait_For_Step_One", "Wait_For_Step_Three", "Wait_For_Cluster_Termination"):
        assert states[wait_name]["ResultPath"] is None, wait_name  # discarded, as the .sync results were


def test_the_waits_table_is_encrypted_expires_its_tokens_and_can_be_recovered(template: Template) -> None:
    (table,) = template.find_resources("AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["TableName"] == "datapipe-dev-emr-waits"
    assert props["KeySchema"] == [{"AttributeName": "WaitFor", "KeyType": "HASH"},
                                  {"AttributeName": "Waiter", "KeyType": "RANGE"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ExpiresAt", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    sse = props["SSESpecification"]
    assert (sse["SSEEnabled"], sse["SSEType"]) == (True, "KMS")
    key = sse["KMSMasterKeyId"]["Fn::GetAtt"][0]
    assert template.to_json()["Resources"][key]["Properties"]["EnableKeyRotation"] is True


def test_emr_state_changes_that_can_end_a_wait_reach_the_function(template: Template) -> None:
    rules = template.find_resources("AWS::Events::Rule")
    (rule,) = [r for r in rules.values() if r["Properties"].get("Name") == "datapipe-dev-emr-wait-events"]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.emr"]
    assert sorted(pattern["detail-type"]) == ["EMR Cluster State Change", "EMR Step Status Change"]
    # Every state that ends one of the waits (sync's outcomes), and no state a cluster or step passes through.
    assert sorted(pattern["detail"]["state"]) == sorted([
        "WAITING", "RUNNING", "TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS",
        "COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED"])
    waiter = function_id(template.to_json(), "datapipe-dev-emr-waits")
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [waiter, "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    permissions = template.find_resources("AWS::Lambda::Permission")
    assert [p["Properties"]["Principal"] for p in permissions.values()
            if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [waiter, "Arn"]}] == ["events.amazonaws.com"]


def test_the_waits_function_answers_only_this_workflow_and_touches_only_its_own_table(
    templates: dict[str, Any],
) -> None:
    template = templates[STACK]
    resources = template["Resources"]
    waiter = function_id(template, "datapipe-dev-emr-waits")
    role = resources[waiter]["Properties"]["Role"]["Fn::GetAtt"][0]
    table = next(k for k, v in resources.items() if v["Type"] == "AWS::DynamoDB::Table")
    key = resources[table]["Properties"]["SSESpecification"]["KMSMasterKeyId"]["Fn::GetAtt"][0]
    assert resources[waiter]["Properties"]["Environment"]["Variables"]["WAITS_TABLE"] == {"Ref": table}
    granted = []
    for policy in resources.values():
        if policy["Type"] == "AWS::IAM::Policy" and {"Ref": role} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                granted.append((sorted(as_list(statement["Action"])), [flatten(r) if not isinstance(r, dict) or
                                "Fn::Join" in r else r for r in as_list(statement["Resource"])],
                                statement.get("Condition")))
    assert sorted(granted, key=json.dumps) == sorted([
        (["xray:PutTelemetryRecords", "xray:PutTraceSegments"], ["*"], None),
        (["dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Query"], [{"Fn::GetAtt": [table, "Arn"]}], None),
        (["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"], [{"Fn::GetAtt": [key, "Arn"]}],
         None),
        (["states:SendTaskFailure", "states:SendTaskSuccess"],
         ["arn:aws:states:eu-west-1:123456789012:stateMachine:datapipe-dev-emr-workflow"], None),
        (["elasticmapreduce:DescribeCluster", "elasticmapreduce:DescribeStep"], ["arn:aws:elasticmapreduce:eu-west-1:"
         "123456789012:cluster/*"], {"StringEquals": {"elasticmapreduce:ResourceTag/datapipe:workflow":
                                               "datapipe-dev-emr-workflow"}}),
        (["elasticmapreduce:DescribeCluster", "elasticmapreduce:DescribeStep"], ["arn:aws:elasticmapreduce:eu-west-1:"
         "123456789012:cluster/*"], {"StringEquals": {"elasticmapreduce:ResourceTag/datapipe:reuse": "datapipe-dev"}}),
    ], key=json.dumps)


def test_a_huge_execution_timeout_keeps_the_rechecks_within_the_history_limit(resized: dict[str, Any]) -> None:
    """525,600 minutes: a re-check every 31,536 s (the timeout / 1000), 1000 at most; at four history events each,
    4,000 of a Standard workflow's 25,000."""
    wait = resized["Wait_For_Step_Three"]
    assert wait["TimeoutSeconds"] == 31536
    (timeout_retry,) = [r for r in wait["Retry"] if r["ErrorEquals"] == ["States.Timeout"]]
    assert timeout_retry["MaxAttempts"] == 1000


def test_sync_mode_keeps_the_native_sync_states_and_no_event_resources(sync_template: Path) -> None:
    template = json.loads(sync_template.read_text())
    states = dict(all_states(definition_of(template)))
    assert not {wait for wait, _ in WAITS.values()} & set(states)
    assert states["Cleanup_Terminate_Cluster"]["Resource"] == EMR + "terminateCluster.sync"
    assert states["Step_One"]["End"] is True
    types = {r["Type"] for r in template["Resources"].values()}
    assert "AWS::DynamoDB::Table" not in types
    names = {r["Properties"].get("FunctionName") for r in template["Resources"].values()
             if r["Type"] == "AWS::Lambda::Function"}
    assert names == {"datapipe-dev-emr-reader", "datapipe-dev-cluster-reaper"}
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), "--format", "parseable", str(sync_template)], capture_output=True,
                            text=True)
    assert result.returncode in (0, 8), result.stdout + result.stderr  # 8: informational only


# ---------------------------------------------------------------------------------------------------------------------
# IAM


def statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                yield logical_id, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_emr_wildcard_beyond_what_the_integrations_require(templates: dict[str, dict[str, Any]]) -> None:
    # RunJobFlow creates the cluster (no ARN yet); ListClusters has no resource-level permission.
    allowed_on_everything = {"elasticmapreduce:RunJobFlow", "elasticmapreduce:ListClusters"}
    for logical_id, statement in statements(templates[STACK]):
        actions = set(as_list(statement["Action"]))
        assert not any(a in ("*", "elasticmapreduce:*") for a in actions), logical_id
        if "*" in as_list(statement["Resource"]):
            assert {a for a in actions if a.startswith("elasticmapreduce:")} <= allowed_on_everything, logical_id


def state_machine_policies(template: dict[str, Any]) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    """(state machine name, policy, statements) for the policies attached to the role of every state machine."""
    resources = template["Resources"]
    for machine in resources.values():
        if machine["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
        for policy_id, policy in resources.items():
            if policy["Type"] == "AWS::IAM::Policy" and {"Ref": role} in policy["Properties"]["Roles"]:
                yield machine["Properties"]["StateMachineName"], policy_id, policy["Properties"]["PolicyDocument"][
                    "Statement"]


def test_every_emr_action_of_every_state_machine_role_of_the_app_carries_a_tag_condition(
    templates: dict[str, dict[str, Any]],
) -> None:
    checked = set()
    for stack, template in templates.items():
        for machine, policy, policy_statements in state_machine_policies(template):
            for statement in policy_statements:
                emr_actions = [a for a in as_list(statement["Action"]) if a.startswith("elasticmapreduce:")]
                if not emr_actions:
                    continue
                checked.add((stack, machine))
                assert statement["Effect"] == "Allow"
                (operator, keys), = statement["Condition"].items()
                (key, value), = keys.items()
                assert operator == "StringEquals", (stack, policy, statement)
                if "elasticmapreduce:RunJobFlow" in emr_actions:  # the cluster does not exist yet: the request's tags
                    assert emr_actions == ["elasticmapreduce:RunJobFlow"] and statement["Resource"] == "*"
                    assert key == "aws:RequestTag/datapipe:workflow", (stack, policy)
                else:
                    assert flatten(statement["Resource"]).endswith(":cluster/*"), (stack, policy, statement)
                    assert key.startswith(("elasticmapreduce:ResourceTag/", "aws:RequestTag/")), (stack, policy)
                # The tag the machine puts on the clusters it creates, or (the EMR workflow only) the opt-in tag.
                if key.endswith("/datapipe:reuse"):
                    assert (machine, value) == ("datapipe-dev-emr-workflow", "datapipe-dev")
                else:
                    assert key.endswith("/datapipe:workflow") and value == machine, (stack, policy, statement)
    # The EMR workflow and the imported EMR pipeline were both looked at.
    assert {stack for stack, _ in checked} >= {STACK, "Pipeline-emr-word-count"}
    assert ("Pipeline-emr-word-count", "datapipe-dev-pipeline-emr-word-count") in checked


def test_the_workflow_role_reaches_clusters_it_created_or_that_were_opted_in(templates: dict[str, Any]) -> None:
    ((_, _, policy_statements),) = list(state_machine_policies(templates[STACK]))
    emr = sorted(
        ((sorted(a for a in as_list(s["Action"]) if a.startswith("elasticmapreduce:")), s["Condition"]["StringEquals"])
        for s in policy_statements
        if any(a.startswith("elasticmapreduce:") for a in as_list(s["Action"]))),
        key=json.dumps,
    )
    on_clusters = ["elasticmapreduce:AddJobFlowSteps", "elasticmapreduce:CancelSteps",
                   "elasticmapreduce:DescribeCluster", "elasticmapreduce:DescribeStep",
                   "elasticmapreduce:SetTerminationProtection", "elasticmapreduce:TerminateJobFlows"]
    created = "datapipe-dev-emr-workflow"
    # One statement per tag: IAM ORs statements, and would AND two tag conditions of one statement.
    assert emr == sorted([
        (["elasticmapreduce:AddTags"], {"aws:RequestTag/datapipe:workflow": created}),
        (["elasticmapreduce:RunJobFlow"], {"aws:RequestTag/datapipe:workflow": created}),
        (on_clusters, {"elasticmapreduce:ResourceTag/datapipe:reuse": "datapipe-dev"}),
        (on_clusters, {"elasticmapreduce:ResourceTag/datapipe:workflow": created}),
    ], key=json.dumps)


def test_the_cluster_instance_role_reaches_only_our_buckets_and_the_samples(templates: dict[str, Any]) -> None:
    template = templates[STACK]
    role_policy = next(k for k in template["Resources"] if k.startswith("EmrWorkflowClusterInstanceRoleDefaultPolicy"))
    resources = {flatten(r) for _, s in statements(template) if _ == role_policy for r in as_list(s["Resource"])}
    assert resources == {
        "arn:TOKEN:s3:::TOKEN.elasticmapreduce.samples",
        "arn:TOKEN:s3:::TOKEN.elasticmapreduce.samples/*",
        "arn:TOKEN:s3:::datapipe-dev-logs-TOKEN-TOKEN",
        "arn:TOKEN:s3:::datapipe-dev-logs-TOKEN-TOKEN/emr/*",
        "arn:TOKEN:s3:::datapipe-dev-data-TOKEN-TOKEN",
        "arn:TOKEN:s3:::datapipe-dev-data-TOKEN-TOKEN/*",
    }
    profiles = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::InstanceProfile"]
    assert len(profiles) == 1


def test_the_service_role_uses_the_v2_managed_policy(template: Template) -> None:
    roles = template.find_resources("AWS::IAM::Role")
    emr_roles = [
        r for r in roles.values()
        if "elasticmapreduce.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
    ]
    assert len(emr_roles) == 1
    assert "service-role/AmazonEMRServicePolicy_v2" in json.dumps(emr_roles[0]["Properties"]["ManagedPolicyArns"])


def test_the_reaper_may_only_terminate_clusters_of_this_workflow(templates: dict[str, Any]) -> None:
    template = templates[STACK]
    reaper_policy = next(k for k in template["Resources"] if k.startswith("EmrWorkflowClusterReaperServiceRoleDefault"))
    (terminate,) = [
        s for k, s in statements(template)
        if k == reaper_policy and "elasticmapreduce:TerminateJobFlows" in as_list(s["Action"])
    ]
    assert terminate["Condition"] == {
        "StringEquals": {"elasticmapreduce:ResourceTag/datapipe:workflow": "datapipe-dev-emr-workflow"}
    }


# ---------------------------------------------------------------------------------------------------------------------
# Configuration


@pytest.fixture(scope="module")
def resized(cdk_json_context: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Only this stack, with a resize before Step_Three and a custom Spark step (not the whole app again)."""
    from datapipe.naming import Naming
    from stacks.emr_workflow import EmrWorkflow

    settings = load_settings(
        {
            "emr.resizeBefore": "Step_Three",
            "emr.resizeCoreOnDemandCapacity": "4",
            "emr.stepThree.name": "Heavy Spark job",
            "emr.stepThree.args": '["spark-submit", "s3://{data_bucket}/jobs/heavy.py", "--conf", "{\\"a\\": 1}"]',
            "emr.stepThree.actionOnFailure": "CANCEL_AND_WAIT",
            "emr.stepConcurrencyLevel": "4",
            "emr.executionTimeoutMinutes": "525600",
        }
    ).emr
    app = cdk.App(context=cdk_json_context)
    stack = cdk.Stack(app, "Resized", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    EmrWorkflow(stack, "EmrWorkflow", naming=Naming(), settings=settings, removal_policy=cdk.RemovalPolicy.DESTROY)
    return dict(all_states(definition_of(Template.from_stack(stack).to_json())))


def test_a_fleet_resize_can_precede_the_heavy_step(resized: dict[str, Any]) -> None:
    assert resized["Add_Steps_Parallel"]["Next"] == "Resize_Core_Fleet"
    resize = resized["Resize_Core_Fleet"]
    assert resize["Resource"] == EMR + "modifyInstanceFleetByName"
    assert resize["Parameters"]["InstanceFleetName"] == "Core"
    assert resize["Parameters"]["InstanceFleet"] == {"TargetOnDemandCapacity": 4, "TargetSpotCapacity": 0}
    assert resize["Next"] == "Step_Three"
    assert resize["Catch"][0]["Next"] == CLEANUP_ENTRY


def test_steps_come_from_settings(resized: dict[str, Any]) -> None:
    step = resized["Step_Three"]["Parameters"]["Step"]
    assert step["Name"] == "Heavy Spark job"
    assert step["ActionOnFailure"] == "CANCEL_AND_WAIT"
    assert step["HadoopJarStep"]["Args"] == [
        "spark-submit", "s3://datapipe-dev-data-TOKEN-TOKEN/jobs/heavy.py", "--conf", '{"a": 1}'
    ]


@pytest.mark.parametrize(
    ("context", "key"),
    [
        ({"emr.stepConcurrencyLevel": "1"}, "emr.stepConcurrencyLevel"),
        ({"emr.resizeBefore": "Step_Two"}, "emr.resizeBefore"),
        ({"emr.releaseLabel": "7.12"}, "emr.releaseLabel"),
        ({"emr.stepOne.actionOnFailure": "IGNORE"}, "emr.stepOne.actionOnFailure"),
        ({"emr.stepTwo.asynchronous": "false"}, "emr.stepTwo.asynchronous"),
        ({"emr.coreOnDemandCapacity": "0"}, "emr.coreOnDemandCapacity"),
        ({"emr.idleTimeoutMinutes": "0"}, "emr.idleTimeoutMinutes"),
    ],
)
def test_bad_emr_settings_name_the_key(context: dict[str, str], key: str) -> None:
    with pytest.raises(SettingsError, match=key.replace(".", r"\.")):
        load_settings(context)


def test_the_scoped_role_splits_mixed_statements_and_keeps_conditioned_or_deny_ones(
    cdk_json_context: dict[str, Any],
) -> None:
    from aws_cdk import aws_iam as iam

    from stacks.emr_workflow import ClusterTagScopedRole

    app = cdk.App(context=cdk_json_context)
    stack = cdk.Stack(app, "Scoped", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    role = ClusterTagScopedRole(stack, "Role", created_by=("owner", "me"), opted_in=None, description="test")
    role.add_to_policy(iam.PolicyStatement(actions=["elasticmapreduce:CancelSteps", "s3:GetObject"], resources=["*"]))
    kept = {"StringEquals": {"elasticmapreduce:ResourceTag/team": "x"}}
    role.add_to_policy(iam.PolicyStatement(actions=["elasticmapreduce:ListSteps"], resources=["*"], conditions=kept))
    role.add_to_policy(iam.PolicyStatement(effect=iam.Effect.DENY, actions=["elasticmapreduce:TerminateJobFlows"],
                                           resources=["*"]))
    resources = Template.from_stack(stack).to_json()["Resources"].values()
    (policy,) = [r for r in resources if r["Type"] == "AWS::IAM::Policy"]
    found = sorted(
        ((s["Effect"], s["Action"], flatten(s["Resource"]), s.get("Condition")) for s in
         policy["Properties"]["PolicyDocument"]["Statement"]),
        key=json.dumps,
    )
    assert found == sorted([
        ("Allow", "elasticmapreduce:CancelSteps", "arn:aws:elasticmapreduce:eu-west-1:123456789012:cluster/*",
         {"StringEquals": {"elasticmapreduce:ResourceTag/owner": "me"}}),
        ("Allow", "s3:GetObject", "*", None),
        ("Allow", "elasticmapreduce:ListSteps", "*", kept),
        ("Deny", "elasticmapreduce:TerminateJobFlows", "*", None),
    ], key=json.dumps)
