"""Scheduler schedules fire in the emulator: at(), rate(), and a broken schedule does not stop the others."""

from __future__ import annotations

import datetime
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

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
    schedule(aws, "cron(0 12 * * ? *)", arn, "cron")  # not run by the emulator
    received = bodies(aws, url, 2)
    assert sorted(body["from"] for body in received) == ["once", "rate"]
    time.sleep(1.5)
    assert bodies(aws, url, 1, timeout=1) == []  # at() fires once; the rate's next time is a minute away
    for name in (broken, rate):
        aws("scheduler").delete_schedule(Name=name)
