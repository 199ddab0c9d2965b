"""Schedules of imported pipelines: several per pipeline, cron and timeseries, periods, ends, catch-up, active runs.

Every expected time below is worked by hand from Data Pipeline's Schedule reference: a timeseries run works at the
end of its interval with the interval's start as @scheduledStartTime, a cron run at the start; months keep the day
of the month, clamped to the month's last day.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import pytest

from datapipe.importer.model import build_model
from datapipe.importer.plan import Plan, make_plan
from datapipe.importer.reader import parse_definition
from datapipe.importer.schedules import Period, Schedule, add_periods, missed_runs

DEFAULT = {"id": "Default", "scheduleType": "cron", "workerGroup": "wg-1"}


def plan_of(*objects: dict[str, Any], default: dict[str, Any] | None = None) -> Plan:
    text = json.dumps({"objects": [default or DEFAULT, *objects]})
    return make_plan(build_model(parse_definition(text, source="test-pipeline.json")))


def shell(activity_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": activity_id, "type": "ShellCommandActivity", "command": "true", **fields}


def daily(schedule_id: str = "Daily", **fields: Any) -> dict[str, Any]:
    return {"id": schedule_id, "type": "Schedule", "period": "1 day", "startDateTime": "2024-01-01T00:00:00",
            **fields}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_each_schedule_object_becomes_a_schedule_for_the_activities_that_follow_it() -> None:
    plan = plan_of(
        daily(),
        {"id": "Hourly", "type": "Schedule", "period": "2 hours", "startAt": "FIRST_ACTIVATION_DATE_TIME"},
        shell("Load"),  # the Default's schedule
        shell("Report"),
        shell("Poll", schedule={"ref": "Hourly"}),
        default={**DEFAULT, "schedule": {"ref": "Daily"}},
    )
    assert plan.deployable, plan.errors
    assert [(s.id, s.expression, s.start, s.activities) for s in plan.schedules] == [
        ("Daily", "rate(1 day)", at("2024-01-01T00:00:00"), ["Load", "Report"]),
        ("Hourly", "rate(2 hours)", None, ["Poll"]),
    ]
    report = {o.id: o.target for o in plan.objects}
    assert report["Hourly"] == "EventBridge Scheduler schedule rate(2 hours) (cron) for Poll"


def test_an_activity_waiting_for_one_of_another_schedule_is_noted() -> None:
    plan = plan_of(daily(), {"id": "Hourly", "type": "Schedule", "period": "1 hour",
                             "startAt": "FIRST_ACTIVATION_DATE_TIME"},
                   shell("Poll", schedule={"ref": "Hourly"}), shell("Load", dependsOn={"ref": "Poll"}),
                   default={**DEFAULT, "schedule": {"ref": "Daily"}})
    [load] = [o for o in plan.objects if o.id == "Load"]
    assert plan.deployable and load.reason == ("it waits for Poll of another schedule, which its runs (schedule "
                                               "Daily) do not do: it goes on without them")


def test_a_timeseries_day_waits_out_its_interval_and_a_cron_day_does_not() -> None:
    timeseries = plan_of(daily(), shell("Load"),
                         default={**DEFAULT, "scheduleType": "timeseries", "schedule": {"ref": "Daily"}})
    cron = plan_of(daily(), shell("Load"), default={**DEFAULT, "schedule": {"ref": "Daily"}})
    # Both fire at 2024-01-01T00:00 with that time as scheduledStartTime; the timeseries run works a day later,
    # at 2024-01-02T00:00, the end of its interval.
    assert [(s.schedule_type, s.expression, s.wait_seconds) for s in timeseries.schedules] == [
        ("timeseries", "rate(1 day)", 86400)]
    assert [(s.schedule_type, s.wait_seconds) for s in cron.schedules] == [("cron", 0)]


@pytest.mark.parametrize(
    ("period", "start", "expression"),
    [
        ("15 minutes", "2024-01-01T00:00:00", "rate(15 minutes)"),
        ("1 hour", "2024-01-01T00:00:00", "rate(1 hour)"),
        ("3 Days", "2024-01-01T00:00:00", "rate(3 days)"),
        ("2 weeks", "2024-01-01T00:00:00", "rate(14 days)"),
        ("1 month", "2024-01-31T06:30:00", "cron(30 6 L * ? *)"),  # 31st: each month's last day, as DP clamps
        ("1 month", "2024-01-15T06:30:00", "cron(30 6 15 * ? *)"),
        ("3 months", "2024-02-15T00:00:00", "cron(0 0 15 2/3 ? *)"),
        ("1 year", "2024-07-04T12:00:00", "cron(0 12 4 7 ? *)"),
        ("2 years", "2024-07-04T12:00:00", "cron(0 12 4 7 ? 2024/2)"),
    ],
)
def test_every_period_unit_becomes_a_scheduler_expression_that_fires_at_each_interval_start(
    period: str, start: str, expression: str
) -> None:
    plan = plan_of(daily(period=period, startDateTime=start), shell("Load", schedule={"ref": "Daily"}))
    assert [s.expression for s in plan.schedules] == [expression]


def test_occurrences_from_a_start_end_at_the_last_interval_and_an_end_date_is_kept() -> None:
    # The reference's example: from 2014-04-25T22:00, hourly, three occurrences: 22:00, 23:00 and 00:00.
    counted = plan_of({"id": "S", "type": "Schedule", "period": "1 hours", "startDateTime": "2014-04-25T22:00:00",
                       "occurrences": "3"}, shell("Load", schedule={"ref": "S"}))
    assert [(s.start, s.end) for s in counted.schedules] == [(at("2014-04-25T22:00:00"), at("2014-04-26T00:00:00"))]
    monthly = plan_of({"id": "S", "type": "Schedule", "period": "1 month", "startDateTime": "2024-01-31T00:00:00",
                       "occurrences": "2"}, shell("Load", schedule={"ref": "S"}))
    assert [s.end for s in monthly.schedules] == [at("2024-02-29T00:00:00")]  # clamped to February's last day
    ended = plan_of({"id": "S", "type": "Schedule", "period": "1 hours", "startAt": "FIRST_ACTIVATION_DATE_TIME",
                     "endDateTime": "2014-04-25T22:00:00"}, shell("Load", schedule={"ref": "S"}))
    assert [(s.start, s.end) for s in ended.schedules] == [(None, at("2014-04-25T22:00:00"))]


def test_occurrences_from_activation_once_is_on_demand_and_more_are_counted_runs() -> None:
    once = plan_of({"id": "S", "type": "Schedule", "period": "1 Day", "startAt": "FIRST_ACTIVATION_DATE_TIME",
                    "occurrences": "1"}, shell("Load", schedule={"ref": "S"}))
    assert once.deployable and once.schedules == []
    thrice = plan_of({"id": "S", "type": "Schedule", "period": "1 Day", "startAt": "FIRST_ACTIVATION_DATE_TIME",
                      "occurrences": "3"}, shell("Load", schedule={"ref": "S"}))
    [report] = [o for o in thrice.objects if o.id == "S"]
    # No end date can be known before the deployment: the schedule has none and its runs are counted instead.
    assert thrice.deployable and [(s.start, s.end, s.occurrences) for s in thrice.schedules] == [(None, None, 3)]
    assert not report.reason and report.target.endswith("; runs after the first 3 end at once")
    # The largest count a definition may give is counted as it is (Step Functions compares numbers up to 2^53).
    most = plan_of({"id": "S", "type": "Schedule", "period": "1 minute", "startAt": "FIRST_ACTIVATION_DATE_TIME",
                    "occurrences": "999999999"}, shell("Load", schedule={"ref": "S"}))
    assert [s.occurrences for s in most.schedules] == [999999999]
    # With a start the end date bounds the runs: nothing is counted.
    dated = plan_of({"id": "S", "type": "Schedule", "period": "1 Day", "startDateTime": "2024-01-01T00:00:00",
                     "occurrences": "3"}, shell("Load", schedule={"ref": "S"}))
    assert [(s.end, s.occurrences) for s in dated.schedules] == [(at("2024-01-03T00:00:00"), 0)]


@pytest.mark.parametrize(
    ("schedule_fields", "activity_fields", "error"),
    [
        ({"period": "1 fortnight"}, {}, "S.period: '1 fortnight' is not a period such as '1 day'"),
        ({"startAt": "SOON"}, {}, "S.startAt: must be FIRST_ACTIVATION_DATE_TIME, got 'SOON'"),
        ({"startAt": "FIRST_ACTIVATION_DATE_TIME"}, {}, "S.startAt: a schedule has startDateTime or startAt"),
        ({"startDateTime": "1999-12-31T00:00:00"}, {}, "S.startDateTime: '1999-12-31T00:00:00' must be a UTC"),
        ({"endDateTime": "2023-01-01T00:00:00"}, {}, "S.endDateTime: is before startDateTime"),
        ({"endDateTime": "2025-01-01T00:00:00", "occurrences": "2"}, {}, "S.occurrences: a schedule has endDateTime"),
        ({"occurrences": "999999999", "period": "1 year"}, {}, "S.occurrences: 999999999 runs every 1 year end after"),
        ({"period": "1 month"}, {"scheduleType": "timeseries"}, "S.period: a timeseries run waits out its interval"),
        ({}, {"scheduleType": "weekly"}, "Load.scheduleType: must be one of cron, timeseries, ondemand"),
        ({}, {"maxActiveInstances": "0"}, "Load.maxActiveInstances: must be from 1 to 1000, got 0"),
    ],
)
def test_a_wrong_schedule_is_one_line_naming_its_object_and_field(
    schedule_fields: dict[str, str], activity_fields: dict[str, str], error: str
) -> None:
    plan = plan_of({**daily("S"), **schedule_fields}, shell("Load", schedule={"ref": "S"}, **activity_fields))
    assert not plan.deployable
    assert any(e.startswith(error) for e in plan.errors), plan.errors


def test_hundreds_of_schedules_are_one_problem_quickly() -> None:
    objects = [obj for i in range(500) for obj in (daily(f"S{i:04}"), shell(f"A{i:04}", schedule={"ref": f"S{i:04}"}))]
    began = time.perf_counter()
    plan = plan_of(*objects)
    assert time.perf_counter() - began < 5
    assert [e for e in plan.errors if "schedules" in e] == [
        "S0020.type: a pipeline has at most 20 schedules, this one 500: split it"]


def test_ondemand_with_a_scheduled_activity_is_refused_and_two_types_on_one_schedule_too() -> None:
    mixed = plan_of(daily(), shell("Load", schedule={"ref": "Daily"}), shell("Ad", scheduleType="ondemand"))
    assert any(e.startswith("Load.scheduleType: an ondemand pipeline has no schedules") for e in mixed.errors)
    two = plan_of(daily(), shell("A", schedule={"ref": "Daily"}),
                  shell("B", schedule={"ref": "Daily"}, scheduleType="timeseries"))
    assert any(e.startswith("Daily.scheduleType: its activities mix cron and timeseries") for e in two.errors)


def test_max_active_instances_is_the_strictest_of_the_activities() -> None:
    plan = plan_of(daily(), shell("A", maxActiveInstances="3"), shell("B", maxActiveInstances="2"),
                   default={**DEFAULT, "schedule": {"ref": "Daily"}})
    assert plan.deployable and plan.max_active_runs == 2
    assert plan_of(daily(), shell("A"), default={**DEFAULT, "schedule": {"ref": "Daily"}}).max_active_runs is None


def schedule(kind: str, period: Period, start: str, end: str | None = None) -> Schedule:
    return Schedule("S", "", at(start), at(end) if end else None, schedule_type=kind, period=period)


DAY = Period(1, "day")


@pytest.mark.parametrize(
    ("kind", "policy", "expected"),
    [
        # At 2024-01-03T12:00 a daily cron schedule from 2024-01-01 has started the intervals of the 1st, 2nd and
        # 3rd; a timeseries one has ended those of the 1st and 2nd only (the 3rd ends on the 4th).
        ("cron", "all", ["2024-01-01T00:00:00", "2024-01-02T00:00:00", "2024-01-03T00:00:00"]),
        ("cron", "last", ["2024-01-03T00:00:00"]),
        ("timeseries", "all", ["2024-01-01T00:00:00", "2024-01-02T00:00:00"]),
        ("timeseries", "last", ["2024-01-02T00:00:00"]),
        ("cron", "none", []),
    ],
)
def test_missed_runs_under_each_catch_up_policy(kind: str, policy: str, expected: list[str]) -> None:
    missed = missed_runs(schedule(kind, DAY, "2024-01-01T00:00:00"), at("2024-01-03T12:00:00"), policy=policy,
                         limit=100)
    assert [m.isoformat() for m in missed] == expected


def test_missed_runs_stop_at_the_end_and_keep_the_latest_within_the_limit() -> None:
    ended = schedule("cron", DAY, "2024-01-01T00:00:00", end="2024-01-02T00:00:00")
    assert missed_runs(ended, at("2024-03-01T00:00:00"), policy="all", limit=100) == [
        at("2024-01-01T00:00:00"), at("2024-01-02T00:00:00")]
    assert missed_runs(schedule("cron", DAY, "2024-01-01T00:00:00"), at("2024-01-10T00:00:00"), policy="all",
                       limit=2) == [at("2024-01-09T00:00:00"), at("2024-01-10T00:00:00")]
    assert missed_runs(schedule("cron", DAY, "2024-01-05T00:00:00"), at("2024-01-04T00:00:00"), policy="all",
                       limit=2) == []


def test_missed_months_keep_the_day_of_the_start_clamped_to_each_month() -> None:
    monthly = schedule("cron", Period(1, "month"), "2024-01-31T00:00:00")
    assert missed_runs(monthly, at("2024-04-15T00:00:00"), policy="all", limit=100) == [
        at("2024-01-31T00:00:00"), at("2024-02-29T00:00:00"), at("2024-03-31T00:00:00")]
    assert add_periods(at("2023-01-31T00:00:00"), Period(1, "month"), 1) == at("2023-02-28T00:00:00")
    assert add_periods(at("2024-02-29T00:00:00"), Period(1, "year"), 1) == at("2025-02-28T00:00:00")


def test_catching_up_a_minute_schedule_from_the_year_2000_is_bounded_by_the_limit() -> None:
    every_minute = schedule("cron", Period(1, "minute"), "2000-01-01T00:00:00")
    began = time.perf_counter()
    missed = missed_runs(every_minute, at("2026-01-01T00:00:00"), policy="all", limit=1000)
    assert time.perf_counter() - began < 0.5
    assert len(missed) == 1000 and missed[-1] == at("2026-01-01T00:00:00")
    monthly = schedule("cron", Period(1, "month"), "2000-01-31T00:00:00")
    assert missed_runs(monthly, at("9999-12-31T00:00:00"), policy="last", limit=1) == [at("9999-12-31T00:00:00")]
