"""EventBridge: execution status changes reach rule targets (SQS, Lambda, Step Functions); S3 Object Created."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from datapipe.local.events import render_template

from .conftest import run_state_machine, wait_for_execution
from .test_lambda import create_function


@pytest.fixture()
def queue(aws: Callable[[str], Any]) -> tuple[str, str]:
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName=f"events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


@pytest.fixture()
def rule(aws: Callable[[str], Any]) -> Iterator[Callable[[dict[str, Any], list[dict[str, Any]]], None]]:
    """Create rules on the default bus for one test; they are removed afterwards so other tests see none."""
    events = aws("events")
    created: list[tuple[str, list[str]]] = []

    def make(pattern: dict[str, Any], targets: list[dict[str, Any]]) -> None:
        name = f"rule-{uuid.uuid4().hex[:8]}"
        events.put_rule(Name=name, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=name, Targets=targets)
        created.append((name, [t["Id"] for t in targets]))

    yield make
    for name, ids in created:
        events.remove_targets(Rule=name, Ids=ids)
        events.delete_rule(Name=name)


def receive(
    aws: Callable[[str], Any],
    url: str,
    count: int,
    wanted: Callable[[dict[str, Any]], bool] = lambda _: True,
    timeout: float = 5,
) -> list[dict[str, Any]]:
    """The first `count` events on the queue that are `wanted` (other tests' executions may emit too)."""
    sqs = aws("sqs")
    bodies: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(bodies) < count and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            body = json.loads(message["Body"])
            if wanted(body):
                bodies.append(body)
    return bodies


def test_execution_status_changes_reach_an_sqs_target(
    aws: Callable[[str], Any], queue: tuple[str, str], rule: Callable[..., None]
) -> None:
    url, arn = queue
    definition = {
        "StartAt": "Fail",
        "States": {"Fail": {"Type": "Fail", "Error": "Broken", "Cause": "on purpose"}},
    }
    rule(
        {"source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"]}, [{"Id": "q", "Arn": arn}]
    )
    machine_arn, execution_arn = run_state_machine(aws, definition, {"x": 1})
    wait_for_execution(aws, execution_arn)
    mine = receive(aws, url, 2, lambda e: e["detail"]["executionArn"] == execution_arn)
    assert [e["detail"]["status"] for e in mine] == ["RUNNING", "FAILED"]
    failed = mine[1]
    assert failed["source"] == "aws.states"
    assert failed["resources"] == [execution_arn]
    assert failed["detail"]["stateMachineArn"] == machine_arn
    assert failed["detail"]["error"] == "Broken"
    assert failed["detail"]["cause"] == "on purpose"
    assert json.loads(failed["detail"]["input"]) == {"x": 1}


def test_a_rule_can_start_a_state_machine_and_run_a_lambda(
    aws: Callable[[str], Any], queue: tuple[str, str], rule: Callable[..., None]
) -> None:
    url, _ = queue
    # The Lambda target sends what it received to the queue, through the emulator.
    handler = (
        "import json, os, boto3\n"
        "def handler(event, context):\n"
        "    boto3.client('sqs').send_message(QueueUrl=os.environ['QUEUE'], MessageBody=json.dumps(event))\n"
    )
    function = create_function(aws, {"handler.py": handler}, {"QUEUE": url})
    function_arn = aws("lambda").get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    target_machine = aws("stepfunctions").create_state_machine(
        name=f"target-{uuid.uuid4().hex[:8]}",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/emulator-test",
    )["stateMachineArn"]
    source = f"test.{uuid.uuid4().hex[:8]}"
    rule(
        {"source": [source]},
        [{"Id": "fn", "Arn": function_arn}, {"Id": "sm", "Arn": target_machine, "InputPath": "$.detail"}],
    )
    aws("events").put_events(Entries=[{"Source": source, "DetailType": "ping", "Detail": json.dumps({"n": 7})}])
    delivered = receive(aws, url, 1)
    assert delivered[0]["detail"] == {"n": 7}
    deadline = time.monotonic() + 5
    while not (runs := aws("stepfunctions").list_executions(stateMachineArn=target_machine)["executions"]):
        assert time.monotonic() < deadline, "the rule never started the state machine"
        time.sleep(0.05)
    described = wait_for_execution(aws, runs[0]["executionArn"])
    assert json.loads(described["input"]) == {"n": 7}


def test_s3_object_created_reaches_eventbridge_rules(
    aws: Callable[[str], Any], queue: tuple[str, str], rule: Callable[..., None]
) -> None:
    url, arn = queue
    s3 = aws("s3")
    bucket = f"landing-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    rule(
        {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {"bucket": {"name": [bucket]}}},
        [{"Id": "q", "Arn": arn}],
    )
    s3.put_object(Bucket=bucket, Key="incoming/data.csv", Body=b"a,b\n")
    events = receive(aws, url, 1)
    assert events[0]["detail"]["object"]["key"] == "incoming/data.csv"


def test_state_machine_runs_are_unaffected_when_no_rule_matches(aws: Callable[[str], Any]) -> None:
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "Result": {"ok": True}, "End": True}}}
    _, execution_arn = run_state_machine(aws, definition)
    assert json.loads(wait_for_execution(aws, execution_arn)["output"]) == {"ok": True}


def test_an_sns_target_publishes_to_the_topic_subscribers(
    aws: Callable[[str], Any], queue: tuple[str, str], rule: Callable[..., None]
) -> None:
    url, queue_arn = queue
    sns = aws("sns")
    topic = sns.create_topic(Name=f"alerts-{uuid.uuid4().hex[:8]}")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    source = f"test.{uuid.uuid4().hex[:8]}"
    rule({"source": [source]}, [{"Id": "topic", "Arn": topic}])
    aws("events").put_events(Entries=[{"Source": source, "DetailType": "alarm", "Detail": json.dumps({"n": 1})}])
    delivered = receive(aws, url, 1)
    assert delivered[0]["source"] == source
    assert delivered[0]["detail"] == {"n": 1}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('"Workflow <name> is <status>"', '"Workflow a\\"b is FAILED"'),  # a JSON string: the value's text, escaped
        ("Workflow <name> is <status> after <tries> tries", 'Workflow a"b is FAILED after 3 tries'),  # plain text
        (
            '{"status": <status>, "tries": <tries>, "what": "run <name>"}',
            '{"status": "FAILED", "tries": 3, "what": "run a\\"b"}',
        ),
    ],
)
def test_input_templates_fill_json_and_plain_text_alike(template: str, expected: str) -> None:
    event = {"detail": {"name": 'a"b', "status": "FAILED", "tries": 3}}
    paths = {"name": "$.detail.name", "status": "$.detail.status", "tries": "$.detail.tries"}
    assert render_template(template, paths, event) == expected


def test_a_plain_text_template_reaches_an_sns_subscriber(
    aws: Callable[[str], Any], queue: tuple[str, str], rule: Callable[..., None]
) -> None:
    url, queue_arn = queue
    sns = aws("sns")
    topic = sns.create_topic(Name=f"text-{uuid.uuid4().hex[:8]}")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    source = f"test.{uuid.uuid4().hex[:8]}"
    transformer = {"InputPathsMap": {"n": "$.detail.n"}, "InputTemplate": "Run <n> failed"}
    rule({"source": [source]}, [{"Id": "topic", "Arn": topic, "InputTransformer": transformer}])
    aws("events").put_events(Entries=[{"Source": source, "DetailType": "alarm", "Detail": json.dumps({"n": 4})}])
    messages = aws("sqs").receive_message(QueueUrl=url, WaitTimeSeconds=3).get("Messages", [])
    assert [m["Body"] for m in messages] == ["Run 4 failed"]


def test_templates_know_the_reserved_variables() -> None:
    event = {"id": "1", "time": "2026-11-22T00:00:00Z", "detail": {"x": 1}}
    rendered = render_template(
        '{"rule": <aws.events.rule-name>, "at": "<aws.events.event.ingestion-time>", "whole": <aws.events.event.json>}',
        {},
        event,
        {"aws.events.rule-name": "alerts"},
    )
    assert json.loads(rendered) == {"rule": "alerts", "at": "2026-11-22T00:00:00Z", "whole": event}
