"""The states that preconditions, actions, lateness, reportProgressTimeout and CASCADE become (pipeline_checks.py).

Two definitions are built by the pipelines' construct in one stack, with cdk-nag (synthesis fails on a finding); each
test reads the synthesized state machine. (cfn-lint and checkov, run by hand on this template, report nothing: they
are left out of the suite for their time.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from datapipe.importer.asl import flatten_definition
from datapipe.naming import Naming

NAMING = Naming()
ACCOUNT, REGION = "123456789012", "eu-west-1"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:ops"
TELL = {"id": "Tell", "type": "SnsAlarm", "topicArn": TOPIC, "subject": "#{node.@id}", "message": "#{node.@id}"}

CHECKS = {"objects": [
    {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "Daily"}, "failureAndRerunMode": "CASCADE"}, TELL,
    {"id": "Daily", "type": "Schedule", "period": "1 day", "startDateTime": "2026-11-01T06:00:00"},
    {"id": "Stop", "type": "Terminate"},
    {"id": "Host", "type": "Ec2Resource", "role": "R", "resourceRole": "RR"},
    {"id": "KeyReady", "type": "S3KeyExists", "s3Key": "s3://landing/ready/_SUCCESS", "retryDelay": "1 minutes",
     "preconditionTimeout": "5 minutes", "onFail": {"ref": "Tell"}, "lateAfterTimeout": "20 minutes",
     "onLateAction": {"ref": "Tell"}},
    {"id": "PrefixReady", "type": "S3PrefixNotEmpty", "s3Prefix": "s3://landing/parts/", "maximumRetries": "2"},
    {"id": "TableThere", "type": "DynamoDBTableExists", "tableName": "orders"},
    {"id": "TableFull", "type": "DynamoDBDataExists", "tableName": "orders", "onSuccess": {"ref": "Tell"}},
    {"id": "NodeThere", "type": "Exists"},
    {"id": "ShellCheck", "type": "ShellCommandPrecondition", "command": "test -s /data/ready"},
    {"id": "Landing", "type": "S3DataNode", "directoryPath": "s3://landing/in/", "precondition": {"ref": "NodeThere"},
     "onFail": {"ref": "Tell"}, "onSuccess": {"ref": "Tell"}, "lateAfterTimeout": "1 hour",
     "onLateAction": [{"ref": "Tell"}, {"ref": "Stop"}]},
    {"id": "Load", "type": "ShellCommandActivity", "workerGroup": "wg-12345", "command": "echo load",
     "input": {"ref": "Landing"}, "lateAfterTimeout": "30 minutes", "onLateAction": [{"ref": "Tell"}, {"ref": "Stop"}],
     "reportProgressTimeout": "10 minutes", "onFail": {"ref": "Tell"},
     "precondition": [{"ref": "KeyReady"}, {"ref": "PrefixReady"}, {"ref": "ShellCheck"}, {"ref": "TableThere"},
                      {"ref": "TableFull"}]},
    {"id": "Publish", "type": "ShellCommandActivity", "runsOn": {"ref": "Host"}, "command": "echo publish",
     "dependsOn": {"ref": "Load"}, "precondition": {"ref": "ShellCheck"}},
]}

ON_CLUSTER = {"objects": [
    {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "Daily"}}, TELL, {"id": "Stop", "type": "Terminate"},
    {"id": "Daily", "type": "Schedule", "period": "1 day", "startDateTime": "2026-11-01T06:00:00"},
    {"id": "Cluster", "type": "EmrCluster", "releaseLabel": "emr-7.5.0", "onFail": {"ref": "Tell"},
     "onSuccess": {"ref": "Tell"}, "lateAfterTimeout": "40 minutes",
     "onLateAction": [{"ref": "Tell"}, {"ref": "Stop"}]},
    {"id": "Count", "type": "HadoopActivity", "runsOn": {"ref": "Cluster"}, "jarUri": "s3://code-bucket/count.jar",
     "lateAfterTimeout": "2 hours", "onLateAction": {"ref": "Stop"}},
]}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, cdk_json_context: dict[str, object]) -> Path:
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    from cdk_nag import AwsSolutionsChecks

    from datapipe.importer import import_file
    from stacks.common import encrypt_log_groups
    from stacks.config import PipelineSettings, WorkerGroupSettings
    from stacks.pipelines import PipelineEmrRoles, PipelineWorkflow, emr_buckets

    folder = tmp_path_factory.mktemp("checks")
    app = cdk.App(context=cdk_json_context, outdir=str(folder / "out"))
    stack = cdk.Stack(app, "Checks", env=cdk.Environment(account=ACCOUNT, region=REGION))
    plans = []
    for name, definition in (("checks", CHECKS), ("on-cluster", ON_CLUSTER)):
        (folder / f"{name}.json").write_text(json.dumps(definition))
        plans.append(import_file(folder / f"{name}.json"))
        assert plans[-1].deployable, plans[-1].errors
    roles = PipelineEmrRoles(stack, "Roles", naming=NAMING, buckets=emr_buckets(plans))
    for name, plan in zip(("checks", "on-cluster"), plans, strict=True):
        PipelineWorkflow(stack, name, naming=NAMING, plan=plan, settings=PipelineSettings(), emr_roles=roles,
                         worker_groups=WorkerGroupSettings(),
                         log_bucket=s3.Bucket.from_bucket_name(stack, f"Logs-{name}", "logs"),
                         job_queue_arn=f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/q", job_definition_arn="jobs")
    encrypt_log_groups(stack, removal_policy=cdk.RemovalPolicy.DESTROY)  # as app.py does for every stack
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()  # cdk-nag clean, or this raises
    return folder / "out" / "Checks.template.json"


def states_of(template: Path, name: str) -> dict[str, Any]:
    machines = Template.from_json(json.loads(template.read_text())).find_resources(
        "AWS::StepFunctions::StateMachine", {"Properties": {"StateMachineName": NAMING.state_machine(name)}})
    [machine] = machines.values()
    asl = json.loads(flatten_definition(machine["Properties"]["DefinitionString"]))
    found: dict[str, Any] = {}
    pending = [asl["States"]]
    while pending:
        states = pending.pop()
        found.update(states)
        pending.extend(branch["States"] for state in states.values() for branch in state.get("Branches", []))
    return found


@pytest.fixture(scope="module")
def checks(template: Path) -> dict[str, Any]:
    return states_of(template, "pipeline-checks")


def test_each_precondition_is_its_own_check(checks: dict[str, Any]) -> None:
    key, prefix = checks["Check_KeyReady_Load"], checks["Check_PrefixReady_Load"]
    assert key["Resource"] == "arn:aws:states:::aws-sdk:s3:headObject"
    assert key["Parameters"] == {"Bucket": "landing", "Key": "ready/_SUCCESS"}
    assert prefix["Resource"] == "arn:aws:states:::aws-sdk:s3:listObjectsV2"
    assert prefix["Parameters"] == {"Bucket": "landing", "Prefix": "parts/", "MaxKeys": 1}
    assert checks["Does_It_Hold_PrefixReady_Load"]["Choices"][0]["NumericGreaterThan"] == 0
    table, rows = checks["Check_TableThere_Load"], checks["Check_TableFull_Load"]
    assert (table["Resource"], table["Parameters"]) == ("arn:aws:states:::aws-sdk:dynamodb:describeTable",
                                                        {"TableName": "orders"})
    assert (rows["Resource"], rows["Parameters"]) == ("arn:aws:states:::aws-sdk:dynamodb:scan",
                                                      {"TableName": "orders", "Limit": 1, "Select": "COUNT"})
    # Exists on an S3 directory: a key under it.
    assert checks["Check_NodeThere_Load"]["Parameters"] == {"Bucket": "landing", "Prefix": "in/", "MaxKeys": 1}
    # ShellCommandPrecondition on the worker group: a task of that type, whose answer `holds` decides.
    shell = checks["Check_ShellCheck_Load"]
    assert shell["Resource"].endswith(":activity:" + NAMING.name("activity-wg-12345"))
    assert shell["Parameters"]["type"] == "ShellCommandPrecondition"
    assert shell["Parameters"]["command"] == "test -s /data/ready"
    assert checks["Does_It_Hold_ShellCheck_Load"]["Choices"][0] == {
        "Variable": "$.Check_ShellCheck_Load.holds", "BooleanEquals": True, "Next": "Holds_ShellCheck_Load"}
    # ... and for an activity on an Ec2Resource, a Batch job whose failure means "not yet".
    batch = checks["Run_ShellCheck_Publish"]
    assert batch["Resource"] == "arn:aws:states:::batch:submitJob.sync"
    assert batch["Catch"][0]["Next"] == "Count_Check_ShellCheck_Publish"
    assert batch["Next"] == "Run_Publish"


def test_every_loop_is_bounded_and_gives_up_naming_the_precondition(checks: dict[str, Any]) -> None:
    bounds = {name.removeprefix("Check_Again_"): state["Choices"][0]["NumericLessThan"]
              for name, state in checks.items() if name.startswith("Check_Again_")}
    # 5 minutes / 1 minute; maximumRetries 2 = 3 checks; the settings' 60 checks otherwise.
    assert bounds == {"KeyReady_Load": 5, "PrefixReady_Load": 3, "ShellCheck_Load": 60, "TableThere_Load": 60,
                      "TableFull_Load": 60, "NodeThere_Load": 60, "ShellCheck_Publish": 60}
    for where in bounds:
        assert checks[f"Wait_Before_Checking_{where}"]["Next"] in (f"Check_{where}", f"Run_{where}")
        failed = checks[f"Precondition_Failed_{where}"]
        assert failed["ResultPath"] == "$.error" and failed["Result"]["Error"] == "PreconditionFailed"
        assert failed["Result"]["Cause"].startswith(f"precondition {where.split('_')[0]} ")
    # The activity's Fail reports what $.error holds: the task's own error, or the precondition's.
    # A Fail state may not raise a `States.` error: a task's such error becomes ActivityFailed, its cause kept.
    assert checks["Publish_Failed"]["Choices"] == [{"Variable": "$.error.Error", "StringMatches": "States.*",
                                                    "Next": "Publish_Failed_In_Its_Task"}]
    assert checks["Publish_Failed_In_Its_Task"] == {"Type": "Fail", "Error": "ActivityFailed",
                                                    "CausePath": "$.error.Cause"}
    assert checks["Publish_Failed_With_Error"] == {"Type": "Fail", "ErrorPath": "$.error.Error",
                                                   "CausePath": "$.error.Cause"}


def test_alarms_fire_for_preconditions_and_data_nodes(checks: dict[str, Any]) -> None:
    # KeyReady gives up: its own onFail, then the activity's (Load's onFail), then CASCADE's note, then the Fail.
    assert checks["Precondition_Failed_KeyReady_Load"]["Next"] == "Notify_Tell_KeyReady_on_fail_Load"
    # (KeyReady is watched for lateness: from inside its watch, through a Fail that the watch hands on.)
    assert checks["Notify_Tell_KeyReady_on_fail_Load"]["Next"] == "KeyReady_Load_Gave_Up"
    assert checks["Watch_Lateness_Of_KeyReady_Load"]["Catch"][1]["Next"] == "Notify_Tell_Load_on_fail"
    # Landing's precondition gives up: Landing's onFail first.
    assert checks["Precondition_Failed_NodeThere_Load"]["Next"] == "Notify_Tell_Landing_on_fail_Load"
    # TableFull holds: its onSuccess; Landing's last precondition holds: Landing's onSuccess.
    assert checks["Holds_TableFull_Load"]["Next"] == "Notify_Tell_TableFull_on_success_Load"
    assert checks["Holds_NodeThere_Load"]["Next"] == "Notify_Tell_Landing_on_success_Load"
    notify = checks["Notify_Tell_Landing_on_success_Load"]
    assert notify["Resource"] == "arn:aws:states:::sns:publish" and notify["Parameters"]["TopicArn"] == TOPIC
    # node.@id is the data node in its own alarm (the activity in its precondition's alarm)
    assert notify["Parameters"]["Message"] == "Landing"
    assert notify["Next"] == "Landing_Load_Finished_Before_Late_Watch_Ends"  # Landing is watched: its watch ends
    assert checks["Notify_Tell_KeyReady_on_fail_Load"]["Parameters"]["Message"] == "Load"


def test_a_late_activity_is_watched_in_parallel_and_terminated(checks: dict[str, Any]) -> None:
    watch = checks["Watch_Lateness_Of_Load"]
    assert watch["Type"] == "Parallel"
    assert watch["Catch"][0] == {"ErrorEquals": ["Datapipe.Finished"], "ResultPath": "$.lateWatch",
                                 "Next": "Load_Done"}
    part, watcher = watch["Branches"]
    assert part["StartAt"] == "Watch_Lateness_Of_KeyReady_Load"  # its first check, watched on its own
    assert checks["Load"]["Next"] == "Load_Finished_Before_Late_Watch_Ends"  # ending the part ends the watch
    assert checks["Load_Finished_Before_Late_Watch_Ends"]["Error"] == "Datapipe.Finished"
    # Only a run with a scheduledStartTime is watched (Data Pipeline: never an on-demand run), once: not a rerun
    # (started anew by `datapipe rerun`, or redriven) ...
    assert watcher["StartAt"] == "Is_Load_Run_Scheduled"
    assert checks["Is_Load_Run_Scheduled"]["Choices"] == [{"And": [
        {"Variable": "$.scheduledStartTime", "IsPresent": True},
        {"Not": {"Variable": "$$.Execution.Name", "StringMatches": "*-rerun-*"}},
        {"Or": [{"Variable": "$$.Execution.RedriveCount", "IsPresent": False},
                {"Variable": "$$.Execution.RedriveCount", "NumericEquals": 0}]}],
        "Next": "Wait_Until_Load_Is_Late"}]
    assert checks["No_Lateness_On_Demand_Load"]["Type"] == "Succeed"
    # ... until the deadline the run-values function gives (the run's scheduled start + lateAfterTimeout).
    wait = checks["Wait_Until_Load_Is_Late"]
    assert set(wait) == {"Type", "TimestampPath", "Next"} and wait["TimestampPath"].startswith("$.runtime.value")
    assert wait["Next"] == "Notify_Tell_Load_late"
    assert checks["Notify_Tell_Load_late"]["Next"] == "Terminate_Load_Late"
    assert checks["Terminate_Load_Late"]["Error"] == "Terminated"
    assert "not finished 30 minutes after the run's scheduled start" in checks["Terminate_Load_Late"]["Cause"]
    assert checks["Load_Done"]["Next"] == "Start_Checking_ShellCheck_Publish"


def test_a_late_data_node_and_precondition_are_watched_while_they_are_checked(checks: dict[str, Any]) -> None:
    # KeyReady (a precondition of Load): its check loop beside its watcher; giving up re-raises out of the watch.
    key_watch = checks["Watch_Lateness_Of_KeyReady_Load"]
    assert key_watch["Branches"][0]["StartAt"] == "Start_Checking_KeyReady_Load"
    assert [c["Next"] for c in key_watch["Catch"]] == ["KeyReady_Load_Done", "Notify_Tell_Load_on_fail"]
    assert checks["Notify_Tell_KeyReady_on_fail_Load"]["Next"] == "KeyReady_Load_Gave_Up"
    assert checks["KeyReady_Load_Gave_Up"] == {"Type": "Fail", "ErrorPath": "$.error.Error",
                                               "CausePath": "$.error.Cause"}
    assert checks["Wait_Until_KeyReady_Load_Is_Late"]["TimestampPath"].startswith("$.runtime.value")
    # Landing (a data node Load reads): late while its preconditions have not all held; a Terminate ends Load.
    node_watch = checks["Watch_Lateness_Of_Landing_Load"]
    assert node_watch["Branches"][0]["StartAt"] == "Start_Checking_NodeThere_Load"
    assert checks["Notify_Tell_Landing_on_success_Load"]["Next"] == "Landing_Load_Finished_Before_Late_Watch_Ends"
    assert [c["Next"] for c in node_watch["Catch"]] == ["Landing_Load_Done", "Notify_Tell_Load_on_fail"]
    assert checks["Notify_Tell_Landing_Load_late"]["Next"] == "Terminate_Landing_Load_Late"
    assert checks["Terminate_Landing_Load_Late"]["Cause"] == (
        "data node Landing (read by Load) was not ready 1 hour after the run's scheduled start: terminated by Stop")
    assert checks["Landing_Load_Done"]["Next"] == "Load"
    # Three deadlines: one run value per period.
    deadlines = {checks[f"Wait_Until_{name}_Is_Late"]["TimestampPath"] for name in ("Load", "KeyReady_Load",
                                                                                   "Landing_Load")}
    assert len(deadlines) == 3


def test_report_progress_timeout_is_the_heartbeat_and_cascade_names_the_consumers(checks: dict[str, Any]) -> None:
    load = checks["Load"]
    assert load["HeartbeatSeconds"] == 600 and load["Parameters"]["heartbeatSeconds"] == 600
    assert load["Parameters"]["type"] == "ShellCommandActivity"
    cascade = checks["Cascade_Failed_After_Load"]
    assert "cascade-failed, not run: Publish" in cascade["Parameters"]["Cause.$"]
    assert cascade["Next"] == "Load_Failed"


def test_cluster_alarms_and_a_late_terminate_go_through_the_cleanup(template: Path) -> None:
    states = states_of(template, "pipeline-on-cluster")
    watch = states["Watch_Lateness_Of_Count"]
    assert [c["Next"] for c in watch["Catch"]] == ["Count_Done", "Cleanup_Protection_Cluster_after_failure"]
    assert states["Terminate_Count_Late"]["Error"] == "Terminated"
    assert states["Terminate_Cluster_Cluster_end"]["Next"] == "Notify_Tell_Cluster_on_success"


def test_a_late_cluster_is_watched_while_it_is_created_and_keeps_its_id(template: Path) -> None:
    states = states_of(template, "pipeline-on-cluster")
    watch = states["Watch_Lateness_Of_Cluster"]
    assert watch["Branches"][0]["StartAt"] == "Create_Cluster_Cluster"
    # A creation that fails leaves the watch through a Fail, to the cluster's onFail (no cluster exists yet).
    assert states["Create_Cluster_Cluster"]["Catch"][0]["Next"] == "Create_Cluster_Gave_Up"
    assert [c["Next"] for c in watch["Catch"]] == ["Cluster_Cluster_Running", "Notify_Tell_Cluster_on_fail"]
    assert states["Notify_Tell_Cluster_on_fail"]["Next"] == "Pipeline_Failed"
    # The created cluster's id leaves the branch as the cause of Datapipe.Finished, and is put back.
    assert states["Cluster_Finished_Before_Late_Watch_Ends"]["CausePath"] == "$.clusters.Cluster.ClusterId"
    assert watch["Catch"][0]["ResultPath"] == "$.clusters.Cluster"
    assert states["Cluster_Cluster_Running"]["Parameters"] == {"ClusterId.$": "$.clusters.Cluster.Cause"}
    assert states["Cluster_Cluster_Running"]["ResultPath"] == "$.clusters.Cluster"
    assert "was not running 40 minutes after" in states["Terminate_Cluster_Late"]["Cause"]


def test_each_check_may_read_only_what_it_names(template: Path) -> None:
    policies = Template.from_json(json.loads(template.read_text())).find_resources("AWS::IAM::Policy")
    statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    by_action: dict[str, list[Any]] = {}
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            by_action.setdefault(action, []).append(statement["Resource"])
    text = json.dumps
    assert "landing/*" in text(by_action["s3:GetObject"]) and "landing\"" in text(by_action["s3:ListBucket"])
    assert f":dynamodb:{REGION}:{ACCOUNT}:table/orders" in text(by_action["dynamodb:DescribeTable"])
    assert f":dynamodb:{REGION}:{ACCOUNT}:table/orders" in text(by_action["dynamodb:Scan"])
    assert "*" not in text(by_action["dynamodb:DescribeTable"] + by_action["dynamodb:Scan"])
    assert by_action["sns:Publish"] and all(r == TOPIC for r in by_action["sns:Publish"])

