"""Schedules of imported pipelines on the emulator: several schedules, catch-up, timeseries, maxActiveInstances.

A small app of its own (prefix `sched`) holds three pipelines: `two-schedules` (a daily cron Schedule for A, an
hourly timeseries Schedule for B, both ended in 2024, so the emulator's Scheduler never fires them), `one-at-a-time`
(maxActiveInstances 1) and `fires-now` (one occurrence, when the test deploys it, which the emulator's Scheduler
starts) and `twice` (hourly from its deployment, two occurrences, which a Scheduler of the test's own clock
fires). Their activities wait for a worker of the app's own worker group, which no runner polls:
a run stays at its first activity until the test stops it.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from click.testing import CliRunner

from datapipe.cli import cli
from datapipe.naming import Naming
from tests.e2e.helpers import start_execution, wait_for

pytestmark = pytest.mark.e2e

NAMING = Naming(prefix="sched")
GROUP = "wg-sched"
TWO_SCHEDULES = {"objects": [
    {"id": "Default", "scheduleType": "cron", "workerGroup": GROUP, "schedule": {"ref": "Daily"}},
    {"id": "Daily", "type": "Schedule", "period": "1 day", "startDateTime": "2024-01-01T00:00:00",
     "endDateTime": "2024-01-03T00:00:00"},
    {"id": "Hourly", "type": "Schedule", "period": "1 hour", "startDateTime": "2024-01-01T00:00:00",
     "endDateTime": "2024-01-01T02:00:00"},
    {"id": "A", "type": "ShellCommandActivity", "command": "echo a #{format(@scheduledStartTime, 'YYYY-MM-dd')}"},
    {"id": "B", "type": "ShellCommandActivity", "command": "echo b", "schedule": {"ref": "Hourly"},
     "scheduleType": "timeseries"},
]}
ONE_AT_A_TIME = {"objects": [
    {"id": "Default", "scheduleType": "timeseries", "workerGroup": GROUP, "schedule": {"ref": "Hourly"},
     "maxActiveInstances": "1"},
    {"id": "Hourly", "type": "Schedule", "period": "1 hour", "startDateTime": "2024-01-01T00:00:00",
     "endDateTime": "2024-01-01T00:00:00"},
    {"id": "Only", "type": "ShellCommandActivity", "command": "echo only"},
]}


TWICE = {"objects": [
    {"id": "Default", "scheduleType": "cron", "workerGroup": GROUP, "schedule": {"ref": "Twice"}},
    {"id": "Twice", "type": "Schedule", "period": "1 hour", "startAt": "FIRST_ACTIVATION_DATE_TIME",
     "occurrences": "2"},
    {"id": "Only", "type": "ShellCommandActivity", "command": "echo only"},
]}


def fires_now(start: str) -> dict[str, Any]:
    return {"objects": [
        {"id": "Default", "scheduleType": "cron", "workerGroup": GROUP, "schedule": {"ref": "Once"}},
        {"id": "Once", "type": "Schedule", "period": "1 hour", "startDateTime": start, "occurrences": "1"},
        {"id": "Now", "type": "ShellCommandActivity", "command": "echo now"},
    ]}


@pytest.fixture(scope="module")
def deployed_at() -> str:
    """The start of `fires-now`: when the module deploys (seconds precision, as Data Pipeline writes it)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")


@pytest.fixture(scope="module")
def schedule_app(emulator: Any, tmp_path_factory: pytest.TempPathFactory,
                 cdk_json_context: dict[str, object], deployed_at: str) -> dict[str, str]:
    """The two pipelines deployed: pipeline name -> state machine ARN."""
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_stepfunctions as sfn

    from datapipe.importer import import_file
    from datapipe.local.deploy import Deployer
    from stacks.config import PipelineSettings, WorkerGroupSettings
    from stacks.pipelines import PipelineWorkflow

    folder = tmp_path_factory.mktemp("schedule-app")
    plans = []
    for name, definition in (("two-schedules", TWO_SCHEDULES), ("one-at-a-time", ONE_AT_A_TIME),
                             ("fires-now", fires_now(deployed_at)), ("twice", TWICE)):
        path = folder / f"{name}.json"
        path.write_text(json.dumps(definition))
        plans.append(import_file(path))
    assert all(plan.deployable for plan in plans), [plan.errors for plan in plans]
    app = cdk.App(context=cdk_json_context, outdir=str(folder / "out"))
    stack = cdk.Stack(app, "SchedulePipelines", stack_name=NAMING.stack("schedule-pipelines"),
                      env=cdk.Environment(account=emulator.account, region=emulator.region))
    sfn.Activity(stack, "Group", activity_name=NAMING.activity(GROUP))
    # A check every 20 s runs at the emulator's wait scale (1 s); the catch-up policy is the deployment's.
    settings = PipelineSettings(catch_up="all", active_runs_check_seconds=20)
    for plan in plans:
        PipelineWorkflow(stack, plan.name, naming=NAMING, plan=plan, settings=settings,
                         worker_groups=WorkerGroupSettings(names=(GROUP,)),
                         log_bucket=s3.Bucket.from_bucket_name(stack, f"Logs{plan.name}", "sched-logs"),
                         removal_policy=cdk.RemovalPolicy.DESTROY)
    app.synth()
    Deployer(emulator.client, account=emulator.account, region=emulator.region).deploy(folder / "out")
    return {plan.name: NAMING.state_machine_arn(f"pipeline-{plan.name}", account=emulator.account,
                                                region=emulator.region) for plan in plans}


@pytest.fixture()
def sfn(emulator: Any, schedule_app: dict[str, str]) -> Iterator[Any]:
    """The Step Functions client; every run of the test's pipelines still running afterwards is stopped."""
    client = emulator.client("stepfunctions")
    yield client
    for arn in schedule_app.values():
        for execution in client.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]:
            client.stop_execution(executionArn=execution["executionArn"])


def entered(sfn: Any, execution_arn: str) -> list[str]:
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def has_entered(sfn: Any, execution_arn: str, state: str) -> bool:
    return state in entered(sfn, execution_arn)


def runs_besides(sfn: Any, state_machine_arn: str, known: list[str]) -> list[str]:
    return [e["executionArn"] for e in sfn.list_executions(stateMachineArn=state_machine_arn)["executions"]
            if e["executionArn"] not in known]


def datapipe(*arguments: str) -> Any:
    result = CliRunner().invoke(cli, list(arguments), catch_exceptions=False)
    return result


def test_catch_up_starts_every_missed_interval_of_each_schedule_once(
    sfn: Any, schedule_app: dict[str, str]
) -> None:
    result = datapipe("schedule", "catch-up", "two-schedules", "--prefix", "sched", "--json")
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output)
    # Worked by hand: the daily cron schedule from 2024-01-01 to 2024-01-03 has three intervals; the hourly
    # timeseries one from 00:00 to 02:00 three, each over an hour later. Policy "all" is the deployment's.
    assert [(r["schedule"], r["scheduledStartTime"], r["started"]) for r in runs] == [
        ("Daily", "2024-01-01T00:00:00Z", True), ("Daily", "2024-01-02T00:00:00Z", True),
        ("Daily", "2024-01-03T00:00:00Z", True),
        ("Hourly", "2024-01-01T00:00:00Z", True), ("Hourly", "2024-01-01T01:00:00Z", True),
        ("Hourly", "2024-01-01T02:00:00Z", True),
    ]
    arn = schedule_app["two-schedules"]
    executions = {e["name"]: e["executionArn"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]}
    daily = executions["catch-up-Daily-20240102T000000"]
    assert json.loads(sfn.describe_execution(executionArn=daily)["input"]) == {
        "scheduledStartTime": "2024-01-02T00:00:00Z", "schedule": "Daily", "catchUp": True}
    # A daily run does A and skips B; an hourly run skips A and does B at once (its interval is over).
    wait_for("the daily run to reach A", lambda: "A" in entered(sfn, daily))
    assert "Skip_B" in entered(sfn, daily) and "Skip_A" not in entered(sfn, daily)
    hourly = executions["catch-up-Hourly-20240101T010000"]
    wait_for("the hourly run to reach B", lambda: "B" in entered(sfn, hourly))
    assert "Skip_A" in entered(sfn, hourly) and "Wait_For_End_Of_Hourly" not in entered(sfn, hourly)

    again = datapipe("schedule", "catch-up", "two-schedules", "--prefix", "sched", "--policy", "last", "--json")
    assert [(r["schedule"], r["scheduledStartTime"], r["started"]) for r in json.loads(again.output)] == [
        ("Daily", "2024-01-03T00:00:00Z", False), ("Hourly", "2024-01-01T02:00:00Z", False)]


def test_a_scheduled_timeseries_run_waits_out_its_interval_and_an_unknown_schedule_fails(
    sfn: Any, schedule_app: dict[str, str]
) -> None:
    arn = schedule_app["two-schedules"]
    # As the Scheduler starts it: at the interval's start, which is the run's scheduledStartTime.
    waiting = start_execution(sfn, arn, {"scheduledStartTime": "2024-01-01T00:00:00Z", "schedule": "Hourly"})
    wait_for("the run to wait for its interval's end", lambda: "Wait_For_End_Of_Hourly" in entered(sfn, waiting))
    assert "B" not in entered(sfn, waiting)
    unknown = start_execution(sfn, arn, {"scheduledStartTime": "2024-01-01T00:00:00Z", "schedule": "Weekly"})
    failed = wait_for("the run to fail", lambda: (d := sfn.describe_execution(executionArn=unknown))["status"]
                      != "RUNNING" and d)
    assert (failed["status"], failed.get("error")) == ("FAILED", "UnknownSchedule")


def test_max_active_instances_holds_a_second_run_until_the_first_ends(
    sfn: Any, schedule_app: dict[str, str]
) -> None:
    arn = schedule_app["one-at-a-time"]
    first = start_execution(sfn, arn, {"scheduledStartTime": "2024-01-01T00:00:00Z", "schedule": "Hourly",
                                       "catchUp": True})
    wait_for("the first run to reach its activity", lambda: "Only" in entered(sfn, first))
    second = start_execution(sfn, arn, {"scheduledStartTime": "2024-01-01T01:00:00Z", "schedule": "Hourly",
                                        "catchUp": True})
    wait_for("the second run to wait", lambda: entered(sfn, second).count("Wait_For_Active_Runs") >= 2)
    assert "Only" not in entered(sfn, second)
    sfn.stop_execution(executionArn=first)
    wait_for("the second run to reach its activity", lambda: "Only" in entered(sfn, second), timeout=30)


def test_schedule_ls_shows_each_schedule_of_a_pipeline(schedule_app: dict[str, str]) -> None:
    result = datapipe("schedule", "ls", "--prefix", "sched", "--json")
    assert result.exit_code == 0, result.output
    listed = {s["name"]: s for s in json.loads(result.output)["schedules"]}
    daily, hourly = listed["pipeline-two-schedules-Daily"], listed["pipeline-two-schedules-Hourly"]
    assert (daily["expression"], hourly["expression"]) == ("rate(1 day)", "rate(1 hour)")
    assert json.loads(hourly["target"]["input"]) == {"scheduledStartTime": "<aws.scheduler.scheduled-time>",
                                                     "schedule": "Hourly"}
    assert listed["pipeline-one-at-a-time"]["target"]["name"] == "pipeline-one-at-a-time"


def test_the_emulators_scheduler_starts_a_run_with_its_occurrences_time(
    sfn: Any, schedule_app: dict[str, str], deployed_at: str
) -> None:
    arn = schedule_app["fires-now"]
    [execution] = wait_for("the schedule to start a run",
                           lambda: sfn.list_executions(stateMachineArn=arn)["executions"] or None)
    given = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert given == {"scheduledStartTime": f"{deployed_at}Z", "schedule": "Once"}
    wait_for("the run to reach its activity", lambda: "Now" in entered(sfn, execution["executionArn"]))


def test_a_schedule_of_two_occurrences_from_its_deployment_does_nothing_in_its_third_run(
    emulator: Any, sfn: Any, schedule_app: dict[str, str]
) -> None:
    from datapipe.local.schedules import ScheduleRunner

    arn = schedule_app["twice"]
    scheduler = emulator.client("scheduler")
    schedule = scheduler.get_schedule(Name=NAMING.name("pipeline-twice"))
    assert "EndDate" not in schedule and schedule["ScheduleExpression"] == "rate(1 hour)"
    # The emulator's Scheduler code on a clock of the test's own, for this schedule only: first seen at t0, an hourly
    # schedule without a start fires at t0 + 1 h, t0 + 2 h and t0 + 3 h (its first run comes a period after it).
    runner = ScheduleRunner(emulator.extensions.lambdas.invoke_async)
    t0 = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    runner.tick(t0, only=frozenset({schedule["Arn"]}))
    assert sfn.list_executions(stateMachineArn=arn)["executions"] == []
    runs: list[str] = []
    for hours in (1, 2, 3):
        runner.tick(t0 + datetime.timedelta(hours=hours), only=frozenset({schedule["Arn"]}))
        [run] = wait_for(f"the run of t0 + {hours} h", partial(runs_besides, sfn, arn, list(runs)), timeout=10)
        # Each run has counted itself before the next fires, as an hour apart they would.
        wait_for("the run to count itself", partial(has_entered, sfn, run, "Is_Within_Occurrences_Of_Twice"))
        assert json.loads(sfn.describe_execution(executionArn=run)["input"]) == {
            "scheduledStartTime": (t0 + datetime.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "schedule": "Twice"}
        runs.append(run)
    first, second, third = runs
    for run in (first, second):
        wait_for("a counted run to reach its activity", partial(has_entered, sfn, run, "Only"))
    ended = wait_for("the third run to end", lambda: (d := sfn.describe_execution(executionArn=third))["status"]
                     != "RUNNING" and d)
    assert ended["status"] == "SUCCEEDED"
    assert "Occurrences_Of_Twice_Used_Up" in entered(sfn, third) and "Only" not in entered(sfn, third)
    # The counter: version 1 is the deployment's, then each run wrote its own execution.
    history = emulator.client("ssm").get_parameter_history(
        Name=f"/{NAMING.prefix}/{NAMING.stage}/pipelines/twice/runs-of/{NAMING.name('pipeline-twice')}")["Parameters"]
    assert [(p["Version"], p["Value"]) for p in history] == [(1, "deployed"), (2, first), (3, second), (4, third)]
