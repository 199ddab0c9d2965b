"""lateAfterTimeout counted as Data Pipeline counts it: from the run's scheduled start, on every object that carries
it, never for on-demand runs; hostile periods refused naming the object and field.

Deadlines are worked by hand from the reference ("The elapsed time after pipeline start within which the object must
start"; "triggered only when the schedule type is not set to ondemand") and evaluated by the run-values function the
deployed workflow calls, on the run's scheduled time.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from datapipe.importer.actions import Alarm, Terminate
from datapipe.importer.model import build_model
from datapipe.importer.plan import Plan, make_plan
from datapipe.importer.reader import parse_definition
from lambdas.run_values.handler import run_values

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ops"
TELL = {"id": "Tell", "type": "SnsAlarm", "topicArn": TOPIC, "subject": "late", "message": "#{node.@id} is late"}
STOP = {"id": "Stop", "type": "Terminate"}
DAILY: list[dict[str, Any]] = [{"id": "Default", "scheduleType": "cron", "schedule": {"ref": "Daily"}},
         {"id": "Daily", "type": "Schedule", "period": "1 day", "startDateTime": "2026-11-01T06:00:00"}]
ON_DEMAND: list[dict[str, Any]] = [{"id": "Default", "scheduleType": "ondemand"}]


def plan_of(default: list[dict[str, Any]], *objects: dict[str, Any]) -> Plan:
    text = json.dumps({"objects": [*default, TELL, STOP, *objects]})
    return make_plan(build_model(parse_definition(text, source="late.json")))


def shell(activity_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": activity_id, "type": "ShellCommandActivity", "workerGroup": "wg-1", "command": "true", **fields}


def deadline_at(plan: Plan, path: str, scheduled: str) -> str:
    """What the run-values function gives for a deadline, in a run scheduled at `scheduled`."""
    values = run_values({"time": scheduled, "actualStartTime": "2026-11-30T09:00:00Z",
                         "expressions": json.dumps(plan.run_expressions)})
    return values[path.removeprefix("$.runtime.")]


def path_of(text: Any) -> str:
    [part] = text.parts
    return str(part.path)


def test_an_activity_is_late_its_period_after_the_run_s_scheduled_start() -> None:
    plan = plan_of(DAILY, shell("Load", lateAfterTimeout="30 minutes", onLateAction=[{"ref": "Tell"}, {"ref": "Stop"}]))
    assert plan.deployable, plan.errors
    [load] = plan.activities
    assert load.late is not None and [type(a) for a in load.late.actions] == [Alarm, Terminate]
    path = path_of(load.late.deadline)
    # scheduled 06:00, 30 minutes: late at 06:30 whenever the run started (a catch-up run days later: at once).
    assert deadline_at(plan, path, "2026-11-21T06:00:00Z") == "2026-11-21T06:30:00Z"
    assert deadline_at(plan, path, "2026-11-21T23:45:00Z") == "2026-11-22T00:15:00Z"
    assert plan.uses_run_time


def test_months_and_years_are_calendar_periods_like_data_pipeline_s_date_functions() -> None:
    plan = plan_of(DAILY, shell("A", lateAfterTimeout="1 month", onLateAction={"ref": "Tell"}),
                   shell("B", lateAfterTimeout="2 hours", onLateAction={"ref": "Tell"}),
                   shell("C", lateAfterTimeout="2 Hours", onLateAction={"ref": "Tell"}))
    late = {a.id: a.late for a in plan.activities}
    assert all(v is not None for v in late.values())
    paths = {k: path_of(v.deadline) for k, v in late.items() if v is not None}
    assert deadline_at(plan, paths["A"], "2026-01-31T06:00:00Z") == "2026-02-28T06:00:00Z"  # February's last day
    assert deadline_at(plan, paths["B"], "2026-12-31T23:00:00Z") == "2027-01-01T01:00:00Z"
    assert paths["B"] == paths["C"]  # one run value per period


def test_an_on_demand_pipeline_is_never_late_and_says_so() -> None:
    plan = plan_of(ON_DEMAND, shell("Load", lateAfterTimeout="30 minutes", onLateAction={"ref": "Tell"}))
    assert plan.deployable, plan.errors
    assert plan.activities[0].late is None and not plan.run_expressions
    report = next(o for o in plan.objects if o.id == "Load")
    assert "lateAfterTimeout is not applied: Data Pipeline applies it only to scheduled runs" in report.reason
    assert {key for key, _ in report.fields.not_applied} == {"lateAfterTimeout", "onLateAction"}


@pytest.mark.parametrize(("period", "message"), [
    ("100000 years", "Load.lateAfterTimeout: '100000 years' is longer than a year"),
    ("0 minutes", "Load.lateAfterTimeout: must be longer than 0 minutes"),
    ("-5 minutes", "Load.lateAfterTimeout: '-5 minutes' is not a period"),
    ("soon", "Load.lateAfterTimeout: 'soon' is not a period"),
    ("9" * 100000 + " minutes", "Load.lateAfterTimeout: "),
    ("1 fortnight", "Load.lateAfterTimeout: '1 fortnight' is not a period"),
])
def test_hostile_periods_are_one_line_errors_naming_the_object_and_field(period: str, message: str) -> None:
    plan = plan_of(DAILY, shell("Load", lateAfterTimeout=period, onLateAction={"ref": "Tell"}))
    assert not plan.deployable
    [error] = [e for e in plan.errors if "lateAfterTimeout" in e]
    assert message in error and "\n" not in error and len(error) < 400


def test_data_nodes_preconditions_and_clusters_carry_their_own_lateness() -> None:
    plan = plan_of(
        DAILY,
        {"id": "Ready", "type": "S3KeyExists", "s3Key": "s3://in-bucket/ready", "lateAfterTimeout": "20 minutes",
         "onLateAction": {"ref": "Tell"}},
        {"id": "There", "type": "Exists"},
        {"id": "Raw", "type": "S3DataNode", "directoryPath": "s3://in-bucket/raw/", "precondition": {"ref": "There"},
         "lateAfterTimeout": "1 hour", "onLateAction": [{"ref": "Tell"}, {"ref": "Stop"}]},
        {"id": "Bare", "type": "S3DataNode", "directoryPath": "s3://in-bucket/bare/", "lateAfterTimeout": "1 hour",
         "onLateAction": {"ref": "Tell"}},
        {"id": "Cluster", "type": "EmrCluster", "releaseLabel": "emr-7.5.0", "lateAfterTimeout": "40 minutes",
         "onLateAction": {"ref": "Tell"}},
        {"id": "Host", "type": "Ec2Resource", "role": "R", "resourceRole": "RR", "lateAfterTimeout": "1 hour",
         "onLateAction": {"ref": "Tell"}},
        {"id": "Count", "type": "HiveActivity", "runsOn": {"ref": "Cluster"}, "hiveScript": "select 1",
         "input": [{"ref": "Raw"}, {"ref": "Bare"}], "precondition": {"ref": "Ready"}},
        {"id": "Copy", "type": "ShellCommandActivity", "runsOn": {"ref": "Host"}, "command": "true"},
    )
    assert plan.deployable, plan.errors
    late = plan.late_objects
    assert set(late) == {("Ready", "Count"), ("Raw", ""), ("Cluster", "")}
    # A precondition's alarm is evaluated for the activity it gates; a data node's for itself.
    ready_alarm, raw_alarm = late["Ready", "Count"].actions[0], late["Raw", ""].actions[0]
    assert isinstance(ready_alarm, Alarm) and ready_alarm.message.static == "Count is late"
    assert isinstance(raw_alarm, Alarm) and raw_alarm.message.static == "Raw is late"
    assert [type(a) for a in late["Raw", ""].actions] == [Alarm, Terminate]
    assert deadline_at(plan, path_of(late["Cluster", ""].deadline), "2026-11-21T06:00:00Z") == "2026-11-21T06:40:00Z"
    reports = {o.id: o for o in plan.objects}
    watched = (("Ready", "finished 20 minutes"), ("Raw", "ready 1 hour"), ("Cluster", "running 40 minutes"))
    for applied, state in watched:
        assert "lateAfterTimeout" in reports[applied].fields.applied, applied
        assert f"watched: late when not {state} after the run's scheduled start" in reports[applied].target
    # What cannot be watched says why, field by field.
    assert "an Ec2Resource is the Batch job queue" in dict(reports["Host"].fields.not_applied)["lateAfterTimeout"]
    assert "it is never late" in dict(reports["Bare"].fields.not_applied)["onLateAction"]


def test_many_late_objects_plan_in_linear_time() -> None:
    import time

    def seconds(count: int) -> float:
        objects = [{"id": f"K{i}", "type": "S3KeyExists", "s3Key": f"s3://b-1/k{i}", "lateAfterTimeout": "1 hour",
                    "onLateAction": {"ref": "Tell"}} for i in range(count)]
        objects += [shell(f"A{i}", precondition={"ref": f"K{i}"}, lateAfterTimeout=f"{i % 50 + 1} minutes",
                          onLateAction={"ref": "Tell"}) for i in range(count)]
        started = time.perf_counter()
        plan = plan_of(DAILY, *objects)
        elapsed = time.perf_counter() - started
        assert plan.deployable, plan.errors[:3]
        assert len(plan.run_expressions) == 51  # one deadline per distinct period: 1 to 50 minutes, 1 hour
        return elapsed

    small, large = min(seconds(100) for _ in range(3)), min(seconds(400) for _ in range(2))
    assert large / small < 8, (small, large)  # four times the objects: linear about 4x, quadratic 16x


def test_a_timeseries_lateness_no_longer_than_its_period_is_noted() -> None:
    timeseries: list[dict[str, Any]] = [{"id": "Default", "scheduleType": "timeseries", "schedule": {"ref": "Hourly"}},
                  {"id": "Hourly", "type": "Schedule", "period": "1 hour", "startDateTime": "2026-11-01T06:00:00"}]
    plan = plan_of(timeseries, shell("Soon", lateAfterTimeout="30 minutes", onLateAction={"ref": "Tell"}),
                   shell("Later", lateAfterTimeout="90 minutes", onLateAction={"ref": "Tell"}))
    assert plan.deployable, plan.errors
    reasons = {o.id: o.reason for o in plan.objects}
    assert "every run will be late" in reasons["Soon"] and "(1 hour)" in reasons["Soon"]
    assert "every run will be late" not in reasons["Later"]


def test_a_bad_lateness_shared_by_many_activities_is_one_error() -> None:
    shared = {"id": "Ready", "type": "S3KeyExists", "s3Key": "s3://in-bucket/ready", "lateAfterTimeout": "soon",
              "onLateAction": {"ref": "Tell"}}
    plan = plan_of(DAILY, shared, *(shell(f"A{i}", precondition={"ref": "Ready"}) for i in range(50)))
    assert [e for e in plan.errors if "lateAfterTimeout" in e] == [
        "Ready.lateAfterTimeout: 'soon' is not a period such as '2 hours' or '15 minutes'"]
