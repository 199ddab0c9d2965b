"""The template of imported pipelines' schedules: one Scheduler schedule per Schedule object, the states a timeseries
schedule and maxActiveInstances put in front of a run, and the schedule record `datapipe schedule catch-up` reads.

One small stack (synthesized once for the module) holds a pipeline with a daily cron and an hourly timeseries
schedule, one with maxActiveInstances 2 and one whose two schedules run three and two
times from its deployment.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from datapipe.importer.asl import flatten_definition
from datapipe.naming import Naming

NAMING = Naming()
ACCOUNT, REGION = "123456789012", "eu-west-1"
TWO_SCHEDULES = {"objects": [
    {"id": "Default", "scheduleType": "cron", "workerGroup": "wg-12345", "schedule": {"ref": "Daily"}},
    {"id": "Daily", "type": "Schedule", "period": "1 day", "startDateTime": "2024-01-01T00:00:00",
     "occurrences": "10"},
    {"id": "Hourly", "type": "Schedule", "period": "1 hour", "startAt": "FIRST_ACTIVATION_DATE_TIME"},
    {"id": "A", "type": "ShellCommandActivity", "command": "echo a"},
    {"id": "B", "type": "ShellCommandActivity", "command": "echo b", "schedule": {"ref": "Hourly"},
     "scheduleType": "timeseries"},
]}
COUNTED = {"objects": [
    {"id": "Default", "scheduleType": "cron", "workerGroup": "wg-12345", "schedule": {"ref": "Thrice"}},
    {"id": "Thrice", "type": "Schedule", "period": "5 minutes", "startAt": "FIRST_ACTIVATION_DATE_TIME",
     "occurrences": "3"},
    {"id": "Hourly", "type": "Schedule", "period": "1 hour", "startAt": "FIRST_ACTIVATION_DATE_TIME",
     "occurrences": "2"},
    {"id": "Only", "type": "ShellCommandActivity", "command": "echo only"},
    {"id": "Later", "type": "ShellCommandActivity", "command": "echo later", "schedule": {"ref": "Hourly"},
     "scheduleType": "timeseries"},
]}
GATED = {"objects": [
    {"id": "Default", "scheduleType": "ondemand", "workerGroup": "wg-12345", "maxActiveInstances": "2"},
    {"id": "Only", "type": "ShellCommandActivity", "command": "echo only"},
]}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, cdk_json_context: dict[str, object]) -> Template:
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3

    from datapipe.importer import import_file
    from stacks.config import PipelineSettings, WorkerGroupSettings
    from stacks.pipelines import PipelineWorkflow

    folder: Path = tmp_path_factory.mktemp("schedule-templates")
    app = cdk.App(context=cdk_json_context, outdir=str(folder / "out"))
    stack = cdk.Stack(app, "Schedules", env=cdk.Environment(account=ACCOUNT, region=REGION))
    for name, definition in (("two-schedules", TWO_SCHEDULES), ("gated", GATED), ("counted", COUNTED)):
        path = folder / f"{name}.json"
        path.write_text(json.dumps(definition))
        plan = import_file(path)
        PipelineWorkflow(stack, name, naming=NAMING, plan=plan, settings=PipelineSettings(catch_up="last"),
                         worker_groups=WorkerGroupSettings(),
                         log_bucket=s3.Bucket.from_bucket_name(stack, f"Logs{name}", "logs"),
                         removal_policy=cdk.RemovalPolicy.DESTROY)
    return Template.from_stack(stack)


def definition_of(template: Template, workflow: str) -> dict[str, Any]:
    [machine] = template.find_resources("AWS::StepFunctions::StateMachine", {
        "Properties": {"StateMachineName": NAMING.state_machine(workflow)}}).values()
    result: dict[str, Any] = json.loads(flatten_definition(machine["Properties"]["DefinitionString"]))
    return result


def every_state(states: dict[str, Any]) -> dict[str, Any]:
    """The states of a definition with those of its Parallel branches."""
    found = dict(states)
    for state in states.values():
        for branch in state.get("Branches", []):
            found.update(every_state(branch["States"]))
    return found


def test_each_schedule_object_is_a_scheduler_schedule_naming_itself_in_the_run_input(template: Template) -> None:
    schedules = {s["Properties"]["Name"]: s["Properties"]
                 for s in template.find_resources("AWS::Scheduler::Schedule").values()}
    daily = schedules[NAMING.name("pipeline-two-schedules-Daily")]
    hourly = schedules[NAMING.name("pipeline-two-schedules-Hourly")]
    assert len(schedules) == 4  # the ondemand pipeline has none
    # Ten daily occurrences from 2024-01-01: the last starts on 2024-01-10 (the end is a second after it).
    assert (daily["ScheduleExpression"], daily["StartDate"], daily["EndDate"]) == (
        "rate(1 day)", "2024-01-01T00:00:00.000Z", "2024-01-10T00:00:01.000Z")
    assert json.loads(daily["Target"]["Input"]) == {"scheduledStartTime": "<aws.scheduler.scheduled-time>",
                                                    "schedule": "Daily"}
    assert hourly["ScheduleExpression"] == "rate(1 hour)" and "StartDate" not in hourly  # from the deployment
    assert json.loads(hourly["Target"]["Input"])["schedule"] == "Hourly"


def test_a_run_does_the_activities_of_its_schedule_and_a_timeseries_run_waits_out_its_hour(
    template: Template,
) -> None:
    states = every_state(definition_of(template, "pipeline-two-schedules")["States"])
    choices = states["Which_Schedule"]["Choices"]
    assert choices[0] == {"Variable": "$.schedule", "IsPresent": False, "Next": "On_Demand_Run"}
    timeseries = next(c for c in choices if c["Next"] == "Wait_For_End_Of_Hourly")
    assert timeseries["And"] == [{"Variable": "$.schedule", "StringEquals": "Hourly"},
                                 {"Variable": "$.catchUp", "IsPresent": False}]
    assert states["Wait_For_End_Of_Hourly"]["Seconds"] == 3600
    assert states["Which_Schedule"]["Default"] == "Unknown_Schedule"
    assert states["Is_A_On_This_Schedule"]["Choices"] == [
        {"Or": [{"Variable": "$.schedule", "StringEquals": "Hourly"}], "Next": "Skip_A"}]
    assert states["Is_B_On_This_Schedule"]["Choices"][0]["Or"] == [{"Variable": "$.schedule",
                                                                    "StringEquals": "Daily"}]


def test_max_active_instances_lists_the_runs_of_its_own_state_machine_only(template: Template) -> None:
    asl = definition_of(template, "pipeline-gated")
    states = asl["States"]
    assert asl["StartAt"] == "Count_Active_Run_Checks"
    listing = states["List_Active_Runs"]
    assert listing["Resource"].endswith(":states:::aws-sdk:sfn:listExecutions")
    assert listing["ResultSelector"] == {"oldest.$": "$.Executions[-2:].ExecutionArn"}
    assert listing["Retry"] == [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 2, "MaxAttempts": 3,
                                 "BackoffRate": 2}]
    assert states["May_Run"]["Choices"][1]["NumericGreaterThanEquals"] == 1000
    machine = NAMING.state_machine("pipeline-gated")
    template.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {"Statement": Match.array_with([{
        "Action": "states:ListExecutions", "Effect": "Allow",
        "Resource": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{machine}"}])}})


def test_occurrences_from_activation_count_the_runs_in_a_parameter_of_the_schedule_only(template: Template) -> None:
    schedule_name = NAMING.name("pipeline-counted") + "-Thrice"
    counter = f"/datapipe/dev/pipelines/counted/runs-of/{schedule_name}"
    counters = template.find_resources("AWS::SSM::Parameter", {"Properties": {"Name": counter}})
    [(counter_id, parameter)] = counters.items()
    assert parameter["Properties"]["Type"] == "String" and parameter["Properties"]["Value"] == "deployed"
    [schedule] = template.find_resources("AWS::Scheduler::Schedule", {"Properties": {"Name": schedule_name}}).values()
    assert "EndDate" not in schedule["Properties"] and "StartDate" not in schedule["Properties"]
    assert counter_id in schedule["DependsOn"]  # no run before its counter exists
    asl = definition_of(template, "pipeline-counted")
    states = asl["States"]
    assert asl["StartAt"] == "Which_Schedule"
    assert states["Which_Schedule"]["Choices"][2:] == [
        {"Variable": "$.schedule", "StringEquals": "Hourly", "Next": "Count_Run_Of_Hourly"},
        {"Variable": "$.schedule", "StringEquals": "Thrice", "Next": "Count_Run_Of_Thrice"}]
    count = states["Count_Run_Of_Thrice"]
    assert count["Resource"].endswith(":states:::aws-sdk:ssm:putParameter")
    assert count["Parameters"] == {"Name": counter, "Value.$": "$$.Execution.Id", "Type": "String", "Overwrite": True}
    assert "Retry" not in count  # a retried write that had succeeded would count one run twice
    assert (count["ResultSelector"], count["ResultPath"]) == ({"version.$": "$.Version"}, "$.occurrence")
    # Worked by hand: the deployment writes version 1, the three runs versions 2, 3 and 4; the fourth run gets 5.
    within = states["Is_Within_Occurrences_Of_Thrice"]
    [go_on] = within["Choices"]
    assert (go_on["Variable"], go_on["NumericLessThanEquals"]) == ("$.occurrence.version", 4)
    assert states[within["Default"]]["Type"] == "Succeed"
    # A run started on demand (no schedule) is not counted: it goes where a counted run goes on.
    assert states["On_Demand_Run"]["Next"] == go_on["Next"]
    # A timeseries run counts itself at its interval's start, before it waits out the hour: two runs, versions 2, 3.
    assert states["Is_Within_Occurrences_Of_Hourly"]["Choices"] == [
        {"Variable": "$.occurrence.version", "NumericLessThanEquals": 3, "Next": "Wait_For_End_Of_Hourly"}]
    # Its role may write the counters of its own two schedules only.
    template.has_resource_properties("AWS::IAM::Policy", {"PolicyDocument": {"Statement": Match.array_with([{
        "Action": "ssm:PutParameter", "Effect": "Allow",
        "Resource": [f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{counter.replace('Thrice', 'Hourly')}",
                     f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{counter}"]}])}})


def test_the_schedule_record_holds_what_catch_up_needs(template: Template) -> None:
    [parameter] = template.find_resources("AWS::SSM::Parameter", {"Properties": {
        "Name": "/datapipe/dev/pipelines/two-schedules/schedules"}}).values()
    assert json.loads(parameter["Properties"]["Value"]) == {
        "stateMachine": NAMING.state_machine("pipeline-two-schedules"), "catchUp": "last", "catchUpLimit": 100,
        "schedules": [
            {"id": "Daily", "type": "cron", "period": "1 day", "start": "2024-01-01T00:00:00",
             "end": "2024-01-10T00:00:00"},
            {"id": "Hourly", "type": "timeseries", "period": "1 hour", "start": None, "end": None},
        ]}


def test_two_schedules_whose_names_would_collide_are_one_line(
    tmp_path: Path, cdk_json_context: dict[str, object]
) -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3

    from datapipe.errors import DatapipeError
    from datapipe.importer import import_file
    from stacks.config import PipelineSettings, WorkerGroupSettings
    from stacks.pipelines import PipelineWorkflow

    path = tmp_path / "colliding.json"
    path.write_text(json.dumps({"objects": [
        {"id": "Default", "scheduleType": "cron", "workerGroup": "wg-12345"},
        *({"id": schedule_id, "type": "Schedule", "period": "1 day", "startAt": "FIRST_ACTIVATION_DATE_TIME"}
          for schedule_id in ("Daily!", "Daily?")),
        {"id": "A", "type": "ShellCommandActivity", "command": "echo a", "schedule": {"ref": "Daily!"}},
        {"id": "B", "type": "ShellCommandActivity", "command": "echo b", "schedule": {"ref": "Daily?"}},
    ]}))
    stack = cdk.Stack(cdk.App(context=cdk_json_context), "Colliding",
                      env=cdk.Environment(account=ACCOUNT, region=REGION))
    with pytest.raises(DatapipeError) as raised:
        PipelineWorkflow(stack, "Colliding", naming=NAMING, plan=import_file(path), settings=PipelineSettings(),
                         worker_groups=WorkerGroupSettings(),
                         log_bucket=s3.Bucket.from_bucket_name(stack, "Logs", "logs"))
    assert str(raised.value) == ("pipeline colliding.json: schedules Daily! and Daily? would both be named "
                                 "datapipe-dev-pipeline-colliding-Daily-; rename one of them")


def test_a_pipelines_only_schedule_keeps_its_logical_id(template_of: Callable[[str], Template]) -> None:
    """A deployed pipeline's schedule must not be replaced: a new schedule of the same name could not be created."""
    shell_pipeline = template_of("Pipeline-shell-with-dependencies")
    # CDK's logical id of the path Workflow/Schedule/Resource, where it always was: the path's names, then the first 8
    # hex digits of the MD5 of "Workflow/Schedule/Resource".
    assert list(shell_pipeline.find_resources("AWS::Scheduler::Schedule")) == ["WorkflowScheduleF6749A87"]
