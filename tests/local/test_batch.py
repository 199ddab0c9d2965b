"""Batch jobs run their command as a local process: statuses, exit codes, logs, `.sync` tasks, faults."""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from datapipe.local.extensions import Extensions

from .conftest import run_state_machine, wait_for_execution

SCRIPT = (
    "import os, sys; "
    "print('greeting', sys.argv[1]); "
    "print('mode', os.environ['MODE']); "
    "print('batch job', bool(os.environ['AWS_BATCH_JOB_ID'])); "
    "print('cwd empty', os.listdir('.') == []); "
    "sys.exit(int(sys.argv[2]))"
)


@pytest.fixture()
def queue(aws: Callable[[str], Any]) -> str:
    batch = aws("batch")
    name = f"q-{uuid.uuid4().hex[:8]}"
    iam = aws("iam")
    try:
        role_arn = iam.get_role(RoleName="emulator-test-batch")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role_arn = iam.create_role(RoleName="emulator-test-batch", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    environment = batch.create_compute_environment(
        computeEnvironmentName=f"ce-{name}", type="UNMANAGED", state="ENABLED", serviceRole=role_arn
    )
    batch.create_job_queue(
        jobQueueName=name,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}],
    )
    return name


@pytest.fixture()
def job_definition(aws: Callable[[str], Any]) -> str:
    name = f"transform-{uuid.uuid4().hex[:8]}"
    aws("batch").register_job_definition(
        jobDefinitionName=name,
        type="container",
        parameters={"name": "world", "code": "0"},
        containerProperties={
            "image": "ignored-locally:latest",
            "command": [sys.executable, "-c", SCRIPT, "Ref::name", "Ref::code"],
            "environment": [{"name": "MODE", "value": "definition"}],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
        },
    )
    return name


def wait_for_job(aws: Callable[[str], Any], job_id: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    batch = aws("batch")
    while True:
        job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
        if job["status"] in ("SUCCEEDED", "FAILED"):
            job["seen_statuses"] = seen
            return dict(job)
        assert time.monotonic() < deadline, f"job still {job['status']}"
        time.sleep(0.02)


def log_lines(aws: Callable[[str], Any], job: dict[str, Any]) -> list[str]:
    events = aws("logs").get_log_events(logGroupName="/aws/batch/job", logStreamName=job["container"]["logStreamName"])
    return [e["message"] for e in events["events"]]


def test_a_job_runs_its_command_with_parameters_and_environment(
    aws: Callable[[str], Any], queue: str, job_definition: str
) -> None:
    submitted = aws("batch").submit_job(
        jobName="direct",
        jobQueue=queue,
        jobDefinition=job_definition,
        parameters={"name": "emulator"},
        containerOverrides={"environment": [{"name": "MODE", "value": "override"}]},
    )
    job = wait_for_job(aws, submitted["jobId"])
    assert job["status"] == "SUCCEEDED"
    assert job["container"]["exitCode"] == 0
    assert job["startedAt"] <= job["stoppedAt"]
    assert job["container"]["logStreamName"] == f"{job_definition}/default/{submitted['jobId']}"
    assert log_lines(aws, job) == ["greeting emulator", "mode override", "batch job True", "cwd empty True"]


def test_a_job_goes_through_its_statuses(aws: Callable[[str], Any], queue: str) -> None:
    name = f"slow-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-c", "import time; time.sleep(0.5)"]
    aws("batch").register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={"image": "x", "command": command, "vcpus": 1, "memory": 128},
    )
    submitted = aws("batch").submit_job(jobName="slow", jobQueue=queue, jobDefinition=name)
    job = wait_for_job(aws, submitted["jobId"])
    assert job["seen_statuses"][-2:] == ["RUNNING", "SUCCEEDED"]
    assert set(job["seen_statuses"]) <= {"SUBMITTED", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"}


def test_a_failing_command_fails_the_job_with_exit_code_and_reason(
    aws: Callable[[str], Any], queue: str, job_definition: str
) -> None:
    submitted = aws("batch").submit_job(
        jobName="failing", jobQueue=queue, jobDefinition=job_definition, parameters={"code": "3"}
    )
    job = wait_for_job(aws, submitted["jobId"])
    assert job["status"] == "FAILED"
    assert job["container"]["exitCode"] == 3
    assert job["statusReason"] == "Essential container in task exited"
    assert log_lines(aws, job)[0] == "greeting world"


def test_submit_job_sync_waits_and_fails_with_the_status_reason(
    aws: Callable[[str], Any], queue: str, job_definition: str
) -> None:
    def submit(name: str, code: str) -> dict[str, Any]:
        return {
            "Type": "Task",
            "Resource": "arn:aws:states:::batch:submitJob.sync",
            "Parameters": {
                "JobName": name,
                "JobQueue": queue,
                "JobDefinition": job_definition,
                "Parameters": {"code": code},
            },
        }

    definition = {
        "StartAt": "Good",
        "States": {
            "Good": {**submit("good", "0"), "ResultPath": "$.good", "Next": "Bad"},
            "Bad": {
                **submit("bad", "1"),
                "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.bad", "Next": "Done"}],
                "Next": "Done",
            },
            "Done": {"Type": "Pass", "End": True},
        },
    }
    _, execution_arn = run_state_machine(aws, definition)
    described = wait_for_execution(aws, execution_arn)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    output = json.loads(described["output"])
    assert output["good"]["Status"] == "SUCCEEDED"
    failed = json.loads(output["bad"]["Cause"])
    assert failed["Status"] == "FAILED"
    assert failed["StatusReason"] == "Essential container in task exited"


def test_an_injected_fault_fails_the_job_by_definition_name(
    aws: Callable[[str], Any], queue: str, job_definition: str, emulator: Extensions
) -> None:
    emulator.faults.fail_batch_job(job_definition, reason="Host EC2 instance terminated")
    submitted = aws("batch").submit_job(jobName="any", jobQueue=queue, jobDefinition=job_definition)
    job = wait_for_job(aws, submitted["jobId"])
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "Host EC2 instance terminated"


def test_a_missing_executable_cannot_start(aws: Callable[[str], Any], queue: str) -> None:
    name = f"missing-{uuid.uuid4().hex[:8]}"
    aws("batch").register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={"image": "x", "command": ["no-such-program-here"], "vcpus": 1, "memory": 128},
    )
    submitted = aws("batch").submit_job(jobName="missing", jobQueue=queue, jobDefinition=name)
    job = wait_for_job(aws, submitted["jobId"])
    assert job["status"] == "FAILED"
    assert job["statusReason"].startswith("CannotStartContainerError: no-such-program-here")


def test_a_job_logs_where_its_definition_says_and_describe_jobs_reports_that_configuration(
    aws: Callable[[str], Any], queue: str
) -> None:
    """AWS reports the job definition's logConfiguration in DescribeJobs' container (moto leaves it out); the
    stream is `<awslogs-stream-prefix>/default/<job id>` in the `awslogs-group`."""
    name = f"logged-{uuid.uuid4().hex[:8]}"
    group = f"/datapipe/test/{name}"
    aws("logs").create_log_group(logGroupName=group)
    configuration = {"logDriver": "awslogs", "options": {"awslogs-group": group, "awslogs-stream-prefix": "tr"}}
    aws("batch").register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={"image": "x", "command": [sys.executable, "-c", "print('to the group')"], "vcpus": 1,
                             "memory": 128, "logConfiguration": configuration},
    )
    submitted = aws("batch").submit_job(jobName="logged", jobQueue=queue, jobDefinition=name)
    job = wait_for_job(aws, submitted["jobId"])
    assert job["container"]["logConfiguration"] == configuration
    assert job["container"]["logStreamName"] == f"tr/default/{submitted['jobId']}"
    events = aws("logs").get_log_events(logGroupName=group, logStreamName=job["container"]["logStreamName"])
    assert [e["message"] for e in events["events"]] == ["to the group"]
