"""Fixtures for the task runner: moto S3, and a small in-memory Step Functions activity standing in for the service.

The fake keeps what the runner relies on: GetActivityTask returns a queued task or nothing after a short long-poll,
SendTask* record the report, and a token that Step Functions gave up answers TaskTimedOut.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from datapipe.taskrunner.contract import S3Location
from datapipe.taskrunner.runner import RunnerIdentity, TaskExecutor

LOG_BUCKET = "datapipe-test-logs"
DATA_BUCKET = "datapipe-test-data"
ACTIVITY_ARN = "arn:aws:states:eu-west-1:123456789012:activity:datapipe-dev-activity-wg-12345"
# The runner's principal id (GetCallerIdentity's UserId) as AWS gives it for a role on an EC2 instance.
PRINCIPAL = "AROAEXAMPLEROLEID:i-0123456789abcdef0"


class FakeActivity:
    """GetActivityTask/SendTask* of one activity, in memory."""

    def __init__(self, poll_seconds: float = 0.05) -> None:
        self.poll_seconds = poll_seconds
        self._queue: queue.Queue[tuple[str, str]] = queue.Queue()
        self._reports: dict[str, dict[str, Any]] = {}
        self._reported = threading.Condition()
        self.heartbeats: list[str] = []
        self.polls = 0
        self.gone: set[str] = set()
        self._count = 0

    def add_task(self, payload: dict[str, Any] | str) -> str:
        self._count += 1
        token = f"token-{self._count}"
        self._queue.put((token, payload if isinstance(payload, str) else json.dumps(payload)))
        return token

    def get_activity_task(self, *, activityArn: str, workerName: str) -> dict[str, Any]:
        assert activityArn == ACTIVITY_ARN
        self.polls += 1
        try:
            token, task_input = self._queue.get(timeout=self.poll_seconds)
        except queue.Empty:
            return {}
        return {"taskToken": token, "input": task_input}

    def _check(self, token: str, operation: str) -> None:
        if token in self.gone:
            raise ClientError({"Error": {"Code": "TaskTimedOut", "Message": "timed out"}}, operation)

    def send_task_heartbeat(self, *, taskToken: str) -> dict[str, Any]:
        self._check(taskToken, "SendTaskHeartbeat")
        self.heartbeats.append(taskToken)
        return {}

    def _report(self, token: str, report: dict[str, Any]) -> None:
        with self._reported:
            assert token not in self._reports, f"{token} reported twice"
            self._reports[token] = report
            self._reported.notify_all()

    def send_task_success(self, *, taskToken: str, output: str) -> dict[str, Any]:
        self._check(taskToken, "SendTaskSuccess")
        self._report(taskToken, {"status": "SUCCEEDED", "output": json.loads(output)})
        return {}

    def send_task_failure(self, *, taskToken: str, error: str, cause: str) -> dict[str, Any]:
        self._check(taskToken, "SendTaskFailure")
        self._report(taskToken, {"status": "FAILED", "error": error, "cause": cause})
        return {}

    def report(self, token: str, timeout: float = 10) -> dict[str, Any]:
        with self._reported:
            if not self._reported.wait_for(lambda: token in self._reports, timeout):
                raise AssertionError(f"{token} was not reported within {timeout} s")
            return self._reports[token]

    def reported(self, token: str) -> bool:
        with self._reported:
            return token in self._reports


def shell_task(command: str | None = "true", **fields: Any) -> dict[str, Any]:
    """A task input as the sample pipeline sends it."""
    payload: dict[str, Any] = {
        "type": "ShellCommandActivity",
        "workflow": "datapipe-dev-create-directory",
        "execution": "run-1",
        "activityId": "CreateDirectory",
        "attempt": 0,
        "scriptArgument": [],
        "stage": False,
        "input": [],
        "output": [],
    }
    if command is not None:
        payload["command"] = command
    payload.update(fields)
    return payload


@pytest.fixture(scope="session")
def s3_client() -> Any:
    """One S3 client for every test: building one costs more than most tests take. moto answers it while a test's
    mock is on, with that test's own fresh state."""
    return boto3.client("s3", region_name="eu-west-1")


@pytest.fixture()
def s3(s3_client: Any) -> Iterator[Any]:
    with mock_aws():
        for bucket in (LOG_BUCKET, DATA_BUCKET):
            s3_client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield s3_client


@pytest.fixture()
def activity() -> FakeActivity:
    return FakeActivity()


@pytest.fixture()
def logger() -> logging.Logger:
    return logging.getLogger("tests.taskrunner")


@pytest.fixture()
def make_executor(
    activity: FakeActivity, s3: Any, tmp_path: Path, logger: logging.Logger
) -> Callable[..., TaskExecutor]:
    def make(heartbeat_interval: float = 5, log_destination: S3Location | None = None, **options: Any) -> TaskExecutor:
        return TaskExecutor(
            sfn=activity,
            s3=s3,
            identity=RunnerIdentity(
                worker_group="wg-12345", runner_id="runner-a", principal=PRINCIPAL, hostname="test-host"
            ),
            output_dir=tmp_path / "output",
            log_destination=log_destination or S3Location(LOG_BUCKET, "taskrunner/"),
            heartbeat_interval=heartbeat_interval,
            logger=logger,
            **options,
        )

    return make


def s3_text(s3: Any, uri: str) -> str:
    location = S3Location.parse(uri, field="uri")
    return str(s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read().decode())
