"""When the emulator's Scheduler fires a rate schedule with a StartDate, and what the target's input becomes.

As in EventBridge Scheduler: a rate schedule's occurrences are StartDate and every period after it, an occurrence
missed before the schedule existed is not fired, and `<aws.scheduler.scheduled-time>` is the occurrence's time.
"""

from __future__ import annotations

import datetime
import json
from types import SimpleNamespace
from typing import Any, cast

from datapipe.local.schedules import _Tracked, next_fire, with_context

UTC = datetime.UTC


def rate_schedule(expression: str, start: datetime.datetime | None) -> Any:
    return cast(Any, SimpleNamespace(schedule_expression=expression, start_date=start,
                                     schedule_expression_timezone=None))


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_rate_schedule_fires_at_its_start_and_every_period_after_it() -> None:
    hourly = rate_schedule("rate(1 hour)", at("2030-01-01T00:00:00"))
    tracked = _Tracked(first_seen=at("2029-12-31T23:00:00"))
    assert next_fire(hourly, tracked, at("2029-12-31T23:30:00")) == at("2030-01-01T00:00:00")  # not yet due
    assert next_fire(hourly, tracked, at("2030-01-01T00:00:00")) == at("2030-01-01T00:00:00")
    tracked.last_fired = at("2030-01-01T00:00:00")
    assert next_fire(hourly, tracked, at("2030-01-01T00:30:00")) == at("2030-01-01T01:00:00")
    # Late by half an hour (a busy emulator): the occurrence of 01:00 fires, with its own time.
    assert next_fire(hourly, tracked, at("2030-01-01T01:30:00")) == at("2030-01-01T01:00:00")


def test_occurrences_from_before_the_schedule_existed_are_not_backfilled() -> None:
    daily = rate_schedule("rate(1 day)", at("2024-01-01T00:00:00"))
    tracked = _Tracked(first_seen=at("2026-11-30T06:00:00"))
    # 2026-11-30T00:00 was missed six hours before the schedule was deployed: the next one is the 1st of December.
    assert next_fire(daily, tracked, at("2026-11-30T06:00:00")) == at("2026-12-01T00:00:00")


def test_the_input_gets_the_occurrences_time_and_the_schedules_arn() -> None:
    text = json.dumps({"scheduledStartTime": "<aws.scheduler.scheduled-time>", "schedule": "Daily",
                       "arn": "<aws.scheduler.schedule-arn>", "attempt": "<aws.scheduler.attempt-number>"})
    filled = json.loads(with_context(text, "arn:aws:scheduler:eu-west-1:123456789012:schedule/default/s",
                                     at("2030-01-01T01:00:00")))
    assert filled == {"scheduledStartTime": "2030-01-01T01:00:00Z", "schedule": "Daily",
                      "arn": "arn:aws:scheduler:eu-west-1:123456789012:schedule/default/s", "attempt": "1"}
