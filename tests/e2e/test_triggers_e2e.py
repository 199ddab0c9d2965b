"""Triggers on the emulator, with the whole app deployed: objects start workflows, failures reach the alert topic."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from datapipe.cli import cli
from datapipe.naming import Naming
from tests.e2e.helpers import wait_for

pytestmark = pytest.mark.e2e

NAMING = Naming()  # the app's defaults: prefix datapipe, stage dev
INCOMING_RULE = NAMING.name("on-incoming")


def datapipe(emulator: Any, *args: str) -> Any:
    return CliRunner().invoke(cli, [*args, "--endpoint-url", emulator.endpoint_url, "--region", emulator.region])


@pytest.fixture()
def incoming_rule_enabled(emulator: Any) -> Iterator[str]:
    """The default rule ships disabled; an operator enables it (as `aws events enable-rule` would)."""
    events = emulator.client("events")
    events.enable_rule(Name=INCOMING_RULE)
    yield INCOMING_RULE
    events.disable_rule(Name=INCOMING_RULE)


def alert_text(body: str) -> str:
    """The text of an alert as a person reads it.

    The alert rules' targets take RuleTargetInput.from_text, which CDK writes as a JSON string literal (a bare text
    is not valid JSON for a target's input); EventBridge delivers that literal as it is, quotes included, so the
    message is decoded once here.
    """
    text = json.loads(body)
    assert isinstance(text, str), f"not a JSON string literal: {body[:200]}"
    return text


@pytest.fixture()
def alert_inbox(emulator: Any) -> Iterator[Callable[[], list[str]]]:
    """An SQS queue subscribed to the alert topic (raw delivery): the alerts a person would have received, as text."""
    sns, sqs = emulator.client("sns"), emulator.client("sqs")
    topic_arn = f"arn:aws:sns:{emulator.region}:{emulator.account}:{NAMING.name('alerts')}"
    queue_url = sqs.create_queue(QueueName=f"alert-inbox-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    subscription = sns.subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
    )["SubscriptionArn"]
    received: list[str] = []

    def receive() -> list[str]:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        received.extend(alert_text(message["Body"]) for message in messages)
        return received

    yield receive
    sns.unsubscribe(SubscriptionArn=subscription)
    sqs.delete_queue(QueueUrl=queue_url)


def test_an_object_put_under_the_watched_prefix_starts_the_transform_with_its_key(
    emulator: Any, incoming_rule_enabled: str
) -> None:
    s3, sfn = emulator.client("s3"), emulator.client("stepfunctions")
    bucket = NAMING.bucket("data", emulator.account, emulator.region)
    key = f"incoming/e2e-{uuid.uuid4().hex[:8]}/part-0.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=b"word,count\n")

    transform = NAMING.state_machine_arn("transform", account=emulator.account, region=emulator.region)

    def started_with_key() -> dict[str, Any] | None:
        for execution in sfn.list_executions(stateMachineArn=transform)["executions"]:
            execution_input = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
            if execution_input.get("Object", {}).get("Key") == key:
                return dict(execution_input)
        return None

    execution_input = wait_for(f"an execution of the transform for {key}", started_with_key, timeout=10)
    assert execution_input["Object"]["Bucket"] == bucket
    assert execution_input["Object"]["Size"] == len(b"word,count\n")


def test_a_failed_execution_of_a_workflow_sends_a_readable_alert_with_cause_and_link(
    emulator: Any, alert_inbox: Callable[[], list[str]]
) -> None:
    # Started by name, the way a user does; the transform fails without the job it must run.
    started = datapipe(emulator, "start", "transform", "--input", '{"note": "no job given"}', "--json")
    assert started.exit_code == 0, started.output
    execution_arn = json.loads(started.output)["executionArn"]
    execution_name = execution_arn.rsplit(":", 1)[-1]

    def alert_for_execution() -> str | None:
        return next((message for message in alert_inbox() if execution_name in message), None)

    alert = wait_for(f"an alert about {execution_name}", alert_for_execution, timeout=10)
    transform = NAMING.state_machine_arn("transform", account=emulator.account, region=emulator.region)
    assert alert.startswith(f"datapipe: execution {execution_name} of workflow {transform} FAILED: error ")
    assert ", cause " in alert
    assert alert.endswith(
        f"https://{emulator.region}.console.aws.amazon.com/states/home?region={emulator.region}"
        f"#/v2/executions/details/{execution_arn}"
    )


def test_schedule_ls_shows_what_the_app_deployed(emulator: Any) -> None:
    result = datapipe(emulator, "schedule", "ls", "--json")
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    (daily,) = [s for s in listing["schedules"] if s["name"] == "emr-daily"]
    assert (daily["state"], daily["expression"], daily["target"]["name"]) == (
        "DISABLED",
        "cron(0 2 * * ? *)",
        "emr-workflow",
    )
    assert json.loads(daily["target"]["input"]) == {"CreateCluster": True, "TerminateCluster": True}
    assert daily["deadLetterQueue"].endswith(":" + NAMING.name("trigger-dlq"))
    rules = {r["name"]: r for r in listing["rules"]}
    assert [t["name"] for t in rules["on-incoming"]["targets"]] == ["transform"]
    for alert in ("alert-workflow-failed", "alert-emr-step-failed", "alert-emr-cluster-failed"):
        assert [(t["kind"], t["name"]) for t in rules[alert]["targets"]] == [("topic", "alerts")]

    # Issue 12 §9: the imported pipelines' schedules (in the default schedule group) were left out.
    imported = [s for s in listing["schedules"] if s["group"] == "default"]
    found = sorted((s["physicalName"], s["expression"], s["target"]["kind"], s["target"]["name"]) for s in imported)
    assert found == [
        (NAMING.name(f"pipeline-{name}"), "rate(1 day)", "workflow", f"pipeline-{name}")
        for name in ("daily-report", "shell-with-dependencies")
    ], imported


def test_a_failed_emr_step_sends_an_alert_naming_the_step_cluster_and_cause(
    emulator: Any, alert_inbox: Callable[[], list[str]]
) -> None:
    emulator.faults.fail_emr_step("The first step", reason="exit code 3 from the Spark driver")
    started = datapipe(
        emulator, "start", "emr-workflow", "--input", '{"CreateCluster": true, "TerminateCluster": true}', "--json"
    )
    assert started.exit_code == 0, started.output

    def step_alert() -> str | None:
        return next((m for m in alert_inbox() if m.startswith("datapipe: EMR step The first step (s-")), None)

    alert = wait_for("an alert about the failed EMR step", step_alert, timeout=30)
    assert " FAILED: cause " in alert
    assert "exit code 3 from the Spark driver" in alert
    cluster_id = alert.split(" of cluster ", 1)[1].split(" ", 1)[0]
    assert cluster_id.startswith("j-")
    assert alert.endswith(f"#/clusterDetails/{cluster_id}")

    # The workflow fails in turn (after removing its cluster), and that is told too.
    execution_name = json.loads(started.output)["executionArn"].rsplit(":", 1)[-1]
    workflow_alert = wait_for(
        "an alert about the failed workflow",
        lambda: next((m for m in alert_inbox() if m.startswith(f"datapipe: execution {execution_name} ")), None),
        timeout=30,
    )
    assert " FAILED: error " in workflow_alert
