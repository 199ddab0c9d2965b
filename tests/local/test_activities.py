"""Activities over HTTP: long poll, success, failure, heartbeat timeout, task timeout, stale tokens, stop."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from datapipe.local.extensions import Extensions

from .conftest import REGION, history, run_state_machine, wait_for_execution


def activity_machine(activity_arn: str, **task_fields: Any) -> dict[str, Any]:
    return {
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task",
                "Resource": activity_arn,
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
                **task_fields,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }


@pytest.fixture()
def activity_arn(aws: Callable[[str], Any]) -> str:
    return str(aws("stepfunctions").create_activity(name=f"wg-{uuid.uuid4().hex[:8]}")["activityArn"])


def poll(aws: Callable[[str], Any], activity_arn: str) -> dict[str, Any]:
    return dict(aws("stepfunctions").get_activity_task(activityArn=activity_arn, workerName="worker-1"))


def test_a_worker_gets_the_task_and_its_success_is_the_state_output(
    aws: Callable[[str], Any], activity_arn: str
) -> None:
    _, execution_arn = run_state_machine(aws, activity_machine(activity_arn), {"command": "echo hi"})
    task = poll(aws, activity_arn)
    assert json.loads(task["input"]) == {"command": "echo hi"}
    aws("stepfunctions").send_task_success(taskToken=task["taskToken"], output=json.dumps({"exit": 0}))
    described = wait_for_execution(aws, execution_arn)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"exit": 0}
    started = [e for e in history(aws, execution_arn) if e["type"] == "ActivityStarted"]
    assert started[0]["activityStartedEventDetails"]["workerName"] == "worker-1"


def test_a_task_is_handed_to_a_worker_that_was_already_waiting(aws: Callable[[str], Any], activity_arn: str) -> None:
    got: list[dict[str, Any]] = []
    waiting = threading.Thread(target=lambda: got.append(poll(aws, activity_arn)))
    waiting.start()
    time.sleep(0.2)
    _, execution_arn = run_state_machine(aws, activity_machine(activity_arn), {"n": 1})
    waiting.join(timeout=5)
    assert got and got[0]["taskToken"]
    aws("stepfunctions").send_task_success(taskToken=got[0]["taskToken"], output="{}")
    assert wait_for_execution(aws, execution_arn)["status"] == "SUCCEEDED"


def test_the_long_poll_returns_an_empty_token_when_nothing_arrives(
    aws: Callable[[str], Any], activity_arn: str
) -> None:
    started = time.monotonic()
    task = poll(aws, activity_arn)  # the test options make the long poll 0.5 s instead of AWS's 60 s
    assert task.get("taskToken", "") == ""
    assert 0.45 < time.monotonic() - started < 4


def test_failure_reaches_the_catch_with_error_and_cause(aws: Callable[[str], Any], activity_arn: str) -> None:
    _, execution_arn = run_state_machine(aws, activity_machine(activity_arn))
    task = poll(aws, activity_arn)
    aws("stepfunctions").send_task_failure(taskToken=task["taskToken"], error="CommandFailed", cause="exit 3")
    described = wait_for_execution(aws, execution_arn)
    assert json.loads(described["output"]) == {"Error": "CommandFailed", "Cause": "exit 3"}


def test_missing_heartbeats_time_the_task_out(aws: Callable[[str], Any], activity_arn: str) -> None:
    machine = activity_machine(activity_arn, HeartbeatSeconds=1, TimeoutSeconds=30)
    _, execution_arn = run_state_machine(aws, machine)
    task = poll(aws, activity_arn)
    sfn = aws("stepfunctions")
    for _ in range(3):  # heartbeats keep it alive past one HeartbeatSeconds
        time.sleep(0.4)
        sfn.send_task_heartbeat(taskToken=task["taskToken"])
    described = wait_for_execution(aws, execution_arn, timeout=5)
    assert json.loads(described["output"])["Error"] == "States.HeartbeatTimeout"
    with pytest.raises(ClientError) as raised:
        sfn.send_task_success(taskToken=task["taskToken"], output="{}")
    assert raised.value.response["Error"]["Code"] == "TaskTimedOut"


def test_the_task_timeout_applies_even_to_a_task_nobody_picked_up(aws: Callable[[str], Any], activity_arn: str) -> None:
    _, execution_arn = run_state_machine(aws, activity_machine(activity_arn, TimeoutSeconds=1))
    described = wait_for_execution(aws, execution_arn, timeout=5)
    assert json.loads(described["output"])["Error"] == "States.Timeout"
    # The timed-out task is not handed out any more.
    assert aws("stepfunctions").get_activity_task(activityArn=activity_arn).get("taskToken", "") == ""


def test_tokens_are_refused_after_completion_and_unknown_tokens_are_invalid(
    aws: Callable[[str], Any], activity_arn: str
) -> None:
    _, execution_arn = run_state_machine(aws, activity_machine(activity_arn))
    task = poll(aws, activity_arn)
    sfn = aws("stepfunctions")
    sfn.send_task_success(taskToken=task["taskToken"], output="{}")
    wait_for_execution(aws, execution_arn)
    for call in (
        lambda: sfn.send_task_success(taskToken=task["taskToken"], output="{}"),
        lambda: sfn.send_task_heartbeat(taskToken=task["taskToken"]),
        lambda: sfn.send_task_failure(taskToken=task["taskToken"], error="Late"),
    ):
        with pytest.raises(ClientError) as raised:
            call()
        assert raised.value.response["Error"]["Code"] == "TaskTimedOut"
    with pytest.raises(ClientError) as raised:
        sfn.send_task_success(taskToken="not-a-token", output="{}")
    assert raised.value.response["Error"]["Code"] == "InvalidToken"


def test_polling_an_unknown_activity_is_an_error(aws: Callable[[str], Any]) -> None:
    missing = "arn:aws:states:eu-west-1:123456789012:activity:missing"
    with pytest.raises(ClientError) as raised:
        aws("stepfunctions").get_activity_task(activityArn=missing)
    assert raised.value.response["Error"]["Code"] == "ActivityDoesNotExist"


def test_stop_execution_while_waiting_for_a_worker_aborts_promptly(
    aws: Callable[[str], Any], activity_arn: str
) -> None:
    _, execution_arn = run_state_machine(aws, activity_machine(activity_arn))
    time.sleep(0.2)
    sfn = aws("stepfunctions")
    sfn.stop_execution(executionArn=execution_arn, error="Operator", cause="stopped by test")
    time.sleep(0.3)
    assert sfn.describe_execution(executionArn=execution_arn)["status"] == "ABORTED"
    assert history(aws, execution_arn)[-1]["type"] == "ExecutionAborted"
    assert sfn.get_activity_task(activityArn=activity_arn).get("taskToken", "") == ""


def test_a_poll_whose_worker_hung_up_takes_no_task(
    aws: Callable[[str], Any], activity_arn: str, emulator: Extensions, endpoint: str
) -> None:
    """A worker that stops (killed, or its client timed out) leaves its long poll behind: it must not take a task."""
    emulator.configure(dataclasses.replace(emulator.options, activity_poll_seconds=5))
    impatient = boto3.session.Session().client(
        "stepfunctions",
        region_name=REGION,
        endpoint_url=endpoint,
        config=Config(read_timeout=0.3, retries={"max_attempts": 0}),
    )
    with pytest.raises(ReadTimeoutError):  # the client gives up and closes its connection; the server still waits
        impatient.get_activity_task(activityArn=activity_arn, workerName="gone")
    _, execution_arn = run_state_machine(aws, activity_machine(activity_arn), {"command": "echo hi"})

    task = poll(aws, activity_arn)  # the task goes to the worker that is listening
    assert json.loads(task["input"]) == {"command": "echo hi"}
    aws("stepfunctions").send_task_success(taskToken=task["taskToken"], output="{}")
    assert wait_for_execution(aws, execution_arn)["status"] == "SUCCEEDED"
    started = [e for e in history(aws, execution_arn) if e["type"] == "ActivityStarted"]
    assert [e["activityStartedEventDetails"]["workerName"] for e in started] == ["worker-1"]
