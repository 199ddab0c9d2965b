"""Imported pipelines wait on EMR's events (emr.waitMode=events, the default) like the EMR workflow: no `.sync` EMR
task, one waits function, table and rule in the shared pipelines stack; with emr.waitMode=sync the `.sync` tasks
as before.

Expected values are worked from Step Functions' and EMR's documented behaviour: `.sync` is the integration whose
resource ends in `.sync`; a step's addStep.sync bound (terminateAfter 2 hours of the example's cluster: 7,200 s) is
the wait's bound in events mode: re-checks every 300 s, so 23 re-checks after the first wait (24 x 300 s = 7,200 s).
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from datapipe.importer.asl import flatten_definition
from datapipe.naming import Naming

from .test_pipelines import ACCOUNT, REGION, all_states, definition, pipeline_app

NAMING = Naming()
PROJECT_DIR = Path(__file__).resolve().parents[2]
EMR_PREFIX = "arn:aws:states:::elasticmapreduce:"
WAITS_FUNCTION = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:datapipe-dev-pipeline-emr-waits"
WAIT_RESOURCE = "arn:aws:states:::lambda:invoke.waitForTaskToken"


def emr_states(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in states.items() if str(s.get("Resource", "")).startswith(EMR_PREFIX)}


@pytest.fixture(scope="module")
def events_asl(template_of: Callable[[str], Template]) -> dict[str, Any]:
    return definition(template_of("Pipeline-emr-word-count"), "pipeline-emr-word-count")


@pytest.fixture(scope="module")
def sync_templates(tmp_path_factory: pytest.TempPathFactory, cdk_json_context: dict[str, object]
                   ) -> dict[str, dict[str, Any]]:
    """The EMR example alone, with its shared stack, under emr.waitMode=sync."""
    folder = tmp_path_factory.mktemp("sync")
    (folder / "definitions").mkdir()
    (folder / "definitions" / "emr-word-count.json").write_bytes(
        (PROJECT_DIR / "pipelines" / "emr-word-count.json").read_bytes())
    pipeline_app(folder / "definitions", folder / "out", cdk_json_context, emr_wait_mode="sync").synth()
    return {path.name.removesuffix(".template.json"): json.loads(path.read_text())
            for path in (folder / "out").glob("*.template.json")}


def test_no_emr_task_of_the_imported_pipeline_waits_with_sync(events_asl: dict[str, Any]) -> None:
    states = all_states(events_asl["States"])
    emr = emr_states(states)
    assert emr and not [name for name, s in emr.items() if s["Resource"].endswith(".sync")]
    waits = {name: s for name, s in states.items() if s.get("Resource") == WAIT_RESOURCE}
    # Each task that .sync waited on is followed by a wait naming it; the others (protection) wait for nothing.
    waited = {s["Parameters"]["Payload"]["Task"]: s["Parameters"]["Payload"]["Until"] for s in waits.values()}
    assert waited == {
        "Create_Cluster_WordCountCluster": "ClusterReady",
        "Run_WordCount_pre_1": "StepEnded", "Run_WordCount_1": "StepEnded", "Run_WordCount_post_1": "StepEnded",
        "Run_ListOutput": "StepEnded",
        "Terminate_Cluster_WordCountCluster_end": "ClusterTerminated",
        "Cleanup_Terminate_WordCountCluster_after_failure": "ClusterTerminated",
    }
    for task, wait in ((name, waits[f"Wait_For_{name}"]) for name in waited):
        assert emr[task]["Next"] == f"Wait_For_{task}"
        assert wait["Parameters"]["FunctionName"] == WAITS_FUNCTION
        assert wait["Parameters"]["Payload"]["TaskToken.$"] == "$$.Task.Token"


def test_a_step_and_its_wait_are_retried_and_caught_together_within_the_activity_bound(
    events_asl: dict[str, Any]
) -> None:
    unit = events_asl["States"]["Run_WordCount_1_Until_Ended"]
    assert unit["Type"] == "Parallel" and unit["ResultPath"] is None
    [branch] = unit["Branches"]
    assert branch["StartAt"] == "Run_WordCount_1"
    assert branch["States"]["Run_WordCount_1"]["ResultPath"] == "$.addedStep"
    wait = branch["States"]["Wait_For_Run_WordCount_1"]
    assert wait["Parameters"]["Payload"]["StepId.$"] == "$.addedStep.StepId"
    assert wait["TimeoutSeconds"] == 300
    [recheck] = [r for r in wait["Retry"] if r["ErrorEquals"] == ["States.Timeout"]]
    assert recheck["MaxAttempts"] == 23  # 24 waits of 300 s: the 7,200 s addStep.sync had
    # The example's activity has no maximumRetries; its failure goes to the cleanup that terminates the cluster.
    assert unit["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                              "Next": "Cleanup_Protection_WordCountCluster_after_failure"}]


def test_the_cluster_is_created_and_waited_for_as_one_state_that_keeps_its_id(events_asl: dict[str, Any]) -> None:
    unit = events_asl["States"]["Create_Cluster_WordCountCluster_Until_Ready"]
    assert unit["ResultSelector"] == {"ClusterId.$": "$[0].clusters.WordCountCluster.ClusterId"}
    assert unit["ResultPath"] == "$.clusters.WordCountCluster"
    wait = unit["Branches"][0]["States"]["Wait_For_Create_Cluster_WordCountCluster"]
    assert wait["Parameters"]["Payload"]["ClusterId.$"] == "$.clusters.WordCountCluster.ClusterId"
    # No activity bound reaches a cluster wait: a week, re-checked every 605 s (1,000 waits).
    assert wait["TimeoutSeconds"] == 605
    assert [r["MaxAttempts"] for r in wait["Retry"] if r["ErrorEquals"] == ["States.Timeout"]] == [999]


def test_the_pipeline_may_invoke_only_the_shared_waits_function_and_stays_small(
    template_of: Callable[[str], Template]
) -> None:
    template = template_of("Pipeline-emr-word-count").to_json()
    assert len(template["Resources"]) <= 5
    kinds = {r["Type"] for r in template["Resources"].values()}
    assert not kinds & {"AWS::Lambda::Function", "AWS::DynamoDB::Table", "AWS::Events::Rule"}
    statements = [s for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"
                  for s in r["Properties"]["PolicyDocument"]["Statement"]]
    invokes = [s["Resource"] for s in statements if "lambda:InvokeFunction" in json.dumps(s["Action"])]
    assert invokes == [[WAITS_FUNCTION, f"{WAITS_FUNCTION}:*"]]


def test_the_shared_stack_has_the_one_waits_function_answering_only_pipelines(
    template_of: Callable[[str], Template]
) -> None:
    shared = template_of("Pipelines")
    functions = shared.find_resources("AWS::Lambda::Function",
                                      {"Properties": {"FunctionName": "datapipe-dev-pipeline-emr-waits"}})
    [(function_id, function)] = functions.items()
    assert function["Properties"]["Handler"] == "handler.handler"
    environment = function["Properties"]["Environment"]["Variables"]
    tables = shared.find_resources("AWS::DynamoDB::Table",
                                   {"Properties": {"TableName": "datapipe-dev-pipeline-emr-waits"}})
    [(table_id, table)] = tables.items()
    assert environment["WAITS_TABLE"] == {"Ref": table_id}
    assert table["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "ExpiresAt", "Enabled": True}
    assert table["Properties"]["SSESpecification"]["SSEEnabled"] is True
    [rule] = shared.find_resources("AWS::Events::Rule", {"Properties": {"Name": "datapipe-dev-pipeline-emr-wait-events"}
                                                         }).values()
    assert rule["Properties"]["EventPattern"]["source"] == ["aws.emr"]
    assert sorted(rule["Properties"]["EventPattern"]["detail-type"]) == ["EMR Cluster State Change",
                                                                         "EMR Step Status Change"]
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [s for p in shared.find_resources("AWS::IAM::Policy").values() if p["Properties"]["Roles"] ==
                  [{"Ref": role}] for s in p["Properties"]["PolicyDocument"]["Statement"]]
    answers = [{**s, "Action": sorted(s["Action"])} for s in statements if "states:SendTaskSuccess" in s["Action"]]
    assert answers == [{"Action": ["states:SendTaskFailure", "states:SendTaskSuccess"], "Effect": "Allow",
                        "Resource": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:datapipe-dev-pipeline-*"}]
    reads = [s for s in statements if "elasticmapreduce:DescribeStep" in s["Action"]]
    assert reads == [{"Action": ["elasticmapreduce:DescribeCluster", "elasticmapreduce:DescribeStep"],
                      "Effect": "Allow", "Resource": f"arn:aws:elasticmapreduce:{REGION}:{ACCOUNT}:cluster/*",
                      "Condition": {"StringLike": {"elasticmapreduce:ResourceTag/datapipe:workflow":
                                                   "datapipe-dev-pipeline-*"}}}]


def test_with_sync_mode_the_pipeline_keeps_its_sync_tasks_and_shares_no_waits(
    sync_templates: dict[str, dict[str, Any]]
) -> None:
    asl = definition(Template.from_json(sync_templates["Pipeline-emr-word-count"]), "pipeline-emr-word-count")
    states = all_states(asl["States"])
    emr = emr_states(states)
    synced = sorted(name for name, s in emr.items() if s["Resource"].endswith(".sync"))
    assert synced == ["Cleanup_Terminate_WordCountCluster_after_failure", "Create_Cluster_WordCountCluster",
                      "Run_ListOutput", "Run_WordCount_1", "Run_WordCount_post_1", "Run_WordCount_pre_1",
                      "Terminate_Cluster_WordCountCluster_end"]
    assert all(emr[name]["TimeoutSeconds"] == 2 * 3600 for name in synced if name.startswith("Run_"))
    assert all(emr[name]["Catch"][0]["Next"] == "Cleanup_Protection_WordCountCluster_after_failure"
               for name in synced if name.startswith("Run_"))
    assert not [s for s in states.values() if s.get("Resource") == WAIT_RESOURCE or s["Type"] == "Parallel"]
    assert "lambda:InvokeFunction" not in json.dumps(sync_templates["Pipeline-emr-word-count"])
    shared_kinds = [r["Type"] for r in sync_templates["Pipelines"]["Resources"].values()]
    assert shared_kinds.count("AWS::Lambda::Function") == 1 and "AWS::DynamoDB::Table" not in shared_kinds


@pytest.fixture(scope="module")
def spot_asl(tmp_path_factory: pytest.TempPathFactory, cdk_json_context: dict[str, object]) -> dict[str, Any]:
    """test_pipeline_resources.py's cluster (Spot, maximumRetries 2, useOnDemandOnLastAttempt) in events mode."""
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    from cdk_nag import AwsSolutionsChecks

    from datapipe.importer import import_file
    from stacks.config import PipelineSettings, WorkerGroupSettings
    from stacks.pipelines import ImportedEmrRoles, PipelineWorkflow

    from .test_pipeline_resources import EVERYTHING

    folder = tmp_path_factory.mktemp("spot-events")
    (folder / "everything.json").write_text(json.dumps({"objects": EVERYTHING}))
    plan = import_file(folder / "everything.json")
    app = cdk.App(context=cdk_json_context, outdir=str(folder / "out"))
    stack = cdk.Stack(app, "Spot", env=cdk.Environment(account=ACCOUNT, region=REGION))
    workflow = PipelineWorkflow(
        stack, "Spot", naming=NAMING, plan=plan, settings=PipelineSettings(), worker_groups=WorkerGroupSettings(),
        log_bucket=s3.Bucket.from_bucket_name(stack, "L", "logs"), emr_roles=ImportedEmrRoles.by_name(stack, NAMING),
        job_queue_arn=f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/q",
        job_definition_arn=f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/d", emr_wait_mode="events")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    template = app.synth().get_stack_by_name("Spot").template  # cdk-nag clean, or this raises
    machine_id = stack.get_logical_id(typing.cast(cdk.CfnElement, workflow.state_machine.node.default_child))
    machine = template["Resources"][stack.resolve(machine_id)]
    result: dict[str, Any] = json.loads(flatten_definition(machine["Properties"]["DefinitionString"]))
    return result


def test_a_failed_spot_creation_is_retried_then_created_on_demand_on_the_wait_s_error_too(
    spot_asl: dict[str, Any]
) -> None:
    states = spot_asl["States"]
    spot = states["Create_Cluster_Cluster_Until_Ready"]
    on_demand = states["Create_Cluster_Cluster_On_Demand_Until_Ready"]
    failed = ["States.TaskFailed", "datapipe.EmrTaskFailed"]  # .sync's error and the wait's, for the same outcome
    # maximumRetries 2: three attempts, two with Spot (one retry, 5 minutes later), the last On-Demand
    assert spot["Retry"] == [{"ErrorEquals": failed, "IntervalSeconds": 300, "MaxAttempts": 1, "BackoffRate": 1}]
    assert spot["Catch"][0] == {"ErrorEquals": failed, "ResultPath": "$.spotCreationError",
                                "Next": "Create_Cluster_Cluster_On_Demand_Until_Ready"}
    assert spot["Next"] == on_demand["Next"] == "Cluster_Cluster_Ready"
    assert on_demand["Catch"][0]["ErrorEquals"] == ["States.ALL"] and "Retry" not in on_demand
    for unit in (spot, on_demand):
        [branch] = unit["Branches"]
        assert all_states(branch["States"])[branch["StartAt"]]["Resource"] == f"{EMR_PREFIX}createCluster"
