"""Activities as the Step Functions API reference documents them: GetActivityTask, SendTask*, timeouts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import finished, unique, wait_until


@pytest.fixture()
def activity(clients: Callable[[str], Any]) -> Iterator[str]:
    sfn = clients("stepfunctions")
    arn = str(sfn.create_activity(name=unique("activity"))["activityArn"])
    yield arn
    sfn.delete_activity(activityArn=arn)


@pytest.fixture()
def poller(clients: Callable[..., Any]) -> Any:
    """A client whose read timeout outlasts GetActivityTask's 60-second long poll, as AWS advises."""
    return clients("stepfunctions", read_timeout=70)


def activity_machine(activity_arn: str, **fields: Any) -> dict[str, Any]:
    return {
        "StartAt": "Work",
        "States": {"Work": {"Type": "Task", "Resource": activity_arn, "End": True, **fields}},
    }


def take_task(poller: Any, activity_arn: str) -> dict[str, Any]:
    """Long-poll until the activity hands out a task (an empty token means the poll ended with none)."""
    task: dict[str, Any] = wait_until(
        "a task of the activity",
        lambda: (
            (got := poller.get_activity_task(activityArn=activity_arn, workerName="conformance"))["taskToken"] and got
        ),
        timeout=120,
        interval=0,
    )
    return task


def test_a_worker_gets_the_input_and_its_success_is_the_output(
    clients: Callable[[str], Any], state_machine: Callable[[dict[str, Any]], str], activity: str, poller: Any
) -> None:
    sfn = clients("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=state_machine(activity_machine(activity)), input='{"job": 7}')[
        "executionArn"
    ]
    task = take_task(poller, activity)
    assert json.loads(task["input"]) == {"job": 7}
    sfn.send_task_heartbeat(taskToken=task["taskToken"])
    sfn.send_task_success(taskToken=task["taskToken"], output='{"done": true}')
    described = finished(sfn, arn)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"done": True}
    kinds = [e["type"] for e in sfn.get_execution_history(executionArn=arn)["events"]]
    assert [k for k in kinds if "Activity" in k] == ["ActivityScheduled", "ActivityStarted", "ActivitySucceeded"]
    with pytest.raises(ClientError) as late:
        sfn.send_task_success(taskToken=task["taskToken"], output="{}")
    assert late.value.response["Error"]["Code"] in ("TaskTimedOut", "InvalidToken")


def test_a_worker_s_failure_fails_the_execution_with_its_error_and_cause(
    clients: Callable[[str], Any], state_machine: Callable[[dict[str, Any]], str], activity: str, poller: Any
) -> None:
    sfn = clients("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=state_machine(activity_machine(activity)))["executionArn"]
    task = take_task(poller, activity)
    sfn.send_task_failure(taskToken=task["taskToken"], error="Worker.Broken", cause="disk full")
    described = finished(sfn, arn)
    assert described["status"] == "FAILED"
    assert described["error"] == "Worker.Broken" and described["cause"] == "disk full"


def test_missing_heartbeats_time_the_task_out(
    clients: Callable[[str], Any], state_machine: Callable[[dict[str, Any]], str], activity: str, poller: Any
) -> None:
    sfn = clients("stepfunctions")
    machine = state_machine(activity_machine(activity, HeartbeatSeconds=1, TimeoutSeconds=60))
    arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    task = take_task(poller, activity)
    described = finished(sfn, arn, timeout=30)
    assert described["status"] == "FAILED"
    assert described["error"] == "States.HeartbeatTimeout"
    with pytest.raises(ClientError) as late:
        sfn.send_task_heartbeat(taskToken=task["taskToken"])
    assert late.value.response["Error"]["Code"] == "TaskTimedOut"


def test_a_task_nobody_takes_times_out(
    clients: Callable[[str], Any], state_machine: Callable[[dict[str, Any]], str], activity: str
) -> None:
    sfn = clients("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=state_machine(activity_machine(activity, TimeoutSeconds=1)))[
        "executionArn"
    ]
    described = finished(sfn, arn, timeout=30)
    assert described["status"] == "FAILED"
    assert described["error"] == "States.Timeout"


def test_an_empty_poll_returns_an_empty_token(activity: str, poller: Any) -> None:
    polled = poller.get_activity_task(activityArn=activity, workerName="conformance")
    assert polled.get("taskToken", "") == ""


def test_an_unknown_token_and_an_unknown_activity_are_refused(clients: Callable[[str], Any], activity: str) -> None:
    sfn = clients("stepfunctions")
    with pytest.raises(ClientError) as token:
        sfn.send_task_success(taskToken="AAAAKgAAAAIAAAAAAAAAAQ" + "x" * 40, output="{}")
    assert token.value.response["Error"]["Code"] in ("InvalidToken", "TaskDoesNotExist")
    with pytest.raises(ClientError) as unknown:
        sfn.get_activity_task(activityArn=activity + "-none")
    assert unknown.value.response["Error"]["Code"] == "ActivityDoesNotExist"
