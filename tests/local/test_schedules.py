"""Scheduler schedules fire in the emulator: at(), rate(), and a broken schedule does not stop the others."""

from __future__ import annotations

import datetime
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from datapipe.local.schedules import cron_matches

from .conftest import ROLE_ARN


def make_queue(aws: Callable[[str], Any]) -> tuple[str, str]:
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName=f"schedules-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def bodies(aws: Callable[[str], Any], url: str, count: int, timeout: float = 5) -> list[Any]:
    found: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        for message in aws("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            found.append(json.loads(message["Body"]))
        time.sleep(0.1)
    return found


def schedule(aws: Callable[[str], Any], expression: str, target_arn: str, tag: str, **extra: Any) -> str:
    name = f"{tag}-{uuid.uuid4().hex[:8]}"
    aws("scheduler").create_schedule(
        Name=name,
        ScheduleExpression=expression,
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": target_arn, "RoleArn": ROLE_ARN, "Input": json.dumps({"from": tag})},
        **extra,
    )
    return name


def test_at_and_rate_schedules_fire_and_a_broken_one_does_not_stop_them(aws: Callable[[str], Any]) -> None:
    url, arn = make_queue(aws)
    soon = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
    two_minutes_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=2)
    broken = schedule(aws, f"at({soon})", arn, "broken", ScheduleExpressionTimezone="Mars/Olympus_Mons")
    schedule(aws, f"at({soon})", arn, "once")
    rate = schedule(aws, "rate(1 minute)", arn, "rate", StartDate=two_minutes_ago)
    every_minute = schedule(aws, "cron(* * * * ? *)", arn, "cron")
    unsupported = schedule(aws, "cron(0 12 LW * ? *)", arn, "last-weekday")  # LW: logged once, never fired
    far = schedule(aws, "cron(0 0 1 1 ? 2199)", arn, "far")
    received = bodies(aws, url, 3)
    assert sorted(body["from"] for body in received) == ["cron", "once", "rate"]
    time.sleep(1.5)
    # at() fires once; the rate's next time is a minute away; the cron fires once in a minute (unless the minute
    # just turned, when it fires for the new one).
    assert [body["from"] for body in bodies(aws, url, 1, timeout=1)] in ([], ["cron"])
    for name in (broken, rate, every_minute, unsupported, far):
        aws("scheduler").delete_schedule(Name=name)


# Worked by hand: 2026-11-30 is a Monday (EventBridge day of week 2; SUN is 1).
MONDAY_0200 = datetime.datetime(2026, 11, 30, 2, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("expression", "moment", "expected"),
    [
        ("cron(0 2 * * ? *)", MONDAY_0200, True),  # the triggers stack's default: every day at 02:00
        ("cron(0 2 * * ? *)", MONDAY_0200.replace(minute=1), False),
        ("cron(0/15 * * * ? *)", MONDAY_0200.replace(minute=45), True),
        ("cron(0/15 * * * ? *)", MONDAY_0200.replace(minute=50), False),
        ("cron(0 2 ? * MON-FRI *)", MONDAY_0200, True),
        ("cron(0 2 ? * 2 *)", MONDAY_0200, True),
        ("cron(0 2 ? * SUN,SAT *)", MONDAY_0200, False),
        ("cron(0 2 30 NOV ? 2026)", MONDAY_0200, True),
        ("cron(0 2 30 DEC ? 2026)", MONDAY_0200, False),
        ("cron(0 1-3 * * ? 2025-2027)", MONDAY_0200, True),
        # L: the month's last day (30 in November, 29 in February 2024).
        ("cron(0 2 L * ? *)", MONDAY_0200, True),
        ("cron(0 2 L * ? *)", MONDAY_0200.replace(day=29), False),
        ("cron(0 2 L * ? *)", MONDAY_0200.replace(year=2024, month=2, day=29), True),
    ],
)
def test_cron_expressions_name_the_minutes_eventbridge_names(
    expression: str, moment: datetime.datetime, expected: bool
) -> None:
    assert cron_matches(expression, moment) is expected


@pytest.mark.parametrize("expression", ["cron(0 12 LW * ? *)", "cron(0 2 ? * 2#1 *)", "cron(61 * * * ? *)",
                                        "cron(0 2)"])
def test_cron_expressions_the_emulator_cannot_run_are_refused(expression: str) -> None:
    with pytest.raises(ValueError):
        cron_matches(expression, MONDAY_0200)
