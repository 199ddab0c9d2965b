"""EventBridge PutEvents to a rule to a target, and EventBridge Scheduler schedules that fire (their API references).

Both deliver to an SQS queue, which a script can read: the queue's policy lets the two services send to it.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import unique, wait_until


@pytest.fixture()
def queue(clients: Callable[[str], Any]) -> Iterator[tuple[str, str]]:
    """(queue URL, queue ARN), open to EventBridge and Scheduler."""
    sqs = clients("sqs")
    url = sqs.create_queue(QueueName=unique("queue"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["events.amazonaws.com", "scheduler.amazonaws.com"]},
                "Action": "sqs:SendMessage",
                "Resource": arn,
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    yield url, arn
    sqs.delete_queue(QueueUrl=url)


def received(sqs: Any, url: str, timeout: float) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = wait_until(
        "a message on the queue",
        lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, MaxNumberOfMessages=10).get("Messages"),
        timeout=timeout,
        interval=0,
    )
    return messages


def test_put_events_reaches_the_target_of_a_matching_rule(
    clients: Callable[[str], Any], queue: tuple[str, str]
) -> None:
    events, sqs = clients("events"), clients("sqs")
    url, arn = queue
    bus = unique("bus")
    events.create_event_bus(Name=bus)
    rule = unique("rule")
    pattern = {"source": ["datapipe.conformance"], "detail": {"status": ["FAILED"]}}
    try:
        events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
        entries = [
            {"Source": "datapipe.conformance", "DetailType": "Run", "Detail": json.dumps(d), "EventBusName": bus}
            for d in ({"status": "SUCCEEDED", "n": 1}, {"status": "FAILED", "n": 2})
        ]
        put = events.put_events(Entries=entries)
        assert put["FailedEntryCount"] == 0
        assert len(put["Entries"]) == 2 and all(entry["EventId"] for entry in put["Entries"])

        messages = received(sqs, url, timeout=60)
        assert len(messages) == 1  # only the FAILED run matches
        event = json.loads(messages[0]["Body"])
        assert event["source"] == "datapipe.conformance"
        assert event["detail-type"] == "Run"
        assert event["detail"] == {"status": "FAILED", "n": 2}
        assert event["id"] == put["Entries"][1]["EventId"]
        assert event["version"] == "0"
        assert event["region"] == events.meta.region_name
        assert set(event) >= {"account", "time", "resources"}, event
    finally:
        events.remove_targets(Rule=rule, EventBusName=bus, Ids=["queue"])
        events.delete_rule(Name=rule, EventBusName=bus)
        events.delete_event_bus(Name=bus)


def test_a_one_time_schedule_fires_its_target_and_deletes_itself(
    clients: Callable[[str], Any], queue: tuple[str, str], role_arn: str
) -> None:
    scheduler, sqs = clients("scheduler"), clients("sqs")
    url, arn = queue
    name = unique("schedule")
    when = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%S")
    created = scheduler.create_schedule(
        Name=name,
        ScheduleExpression=f"at({when})",
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target={"Arn": arn, "RoleArn": role_arn, "Input": '{"from": "scheduler"}'},
    )
    assert created["ScheduleArn"].endswith(f":schedule/default/{name}")
    try:
        messages = received(sqs, url, timeout=180)
        assert json.loads(messages[0]["Body"]) == {"from": "scheduler"}

        def deleted() -> bool:
            try:
                scheduler.get_schedule(Name=name)
            except ClientError as error:
                return error.response["Error"]["Code"] == "ResourceNotFoundException"
            return False

        wait_until("the completed schedule to be deleted", deleted, timeout=120, interval=1)
    finally:
        if not deleted():
            scheduler.delete_schedule(Name=name)


def test_a_disabled_schedule_does_not_fire(
    clients: Callable[[str], Any], queue: tuple[str, str], role_arn: str
) -> None:
    scheduler, sqs = clients("scheduler"), clients("sqs")
    url, arn = queue
    name = unique("schedule")
    when = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
    scheduler.create_schedule(
        Name=name,
        ScheduleExpression=f"at({when})",
        FlexibleTimeWindow={"Mode": "OFF"},
        State="DISABLED",
        Target={"Arn": arn, "RoleArn": role_arn, "Input": "{}"},
    )
    try:
        assert not sqs.receive_message(QueueUrl=url, WaitTimeSeconds=3).get("Messages")
        assert scheduler.get_schedule(Name=name)["State"] == "DISABLED"
    finally:
        scheduler.delete_schedule(Name=name)
