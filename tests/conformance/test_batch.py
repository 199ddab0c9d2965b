"""AWS Batch SubmitJob and DescribeJobs, as the transforms use them (the AWS Batch API reference).

Against AWS: a Fargate compute environment in the default VPC's subnets, a queue and a job that runs `echo`
(a few minutes, mostly Fargate starting the task). The emulator runs the command as a local process.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import unique, wait_until

TASK_EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"


@pytest.fixture(scope="module")
def execution_role(clients: Callable[[str], Any]) -> Iterator[str]:
    iam = clients("iam")
    name = unique("batch-exec")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.attach_role_policy(RoleName=name, PolicyArn=TASK_EXECUTION_POLICY)
    yield str(arn)
    iam.detach_role_policy(RoleName=name, PolicyArn=TASK_EXECUTION_POLICY)
    iam.delete_role(RoleName=name)


def _status(described: list[dict[str, Any]]) -> str | None:
    return str(described[0]["status"]) if described else None


@pytest.fixture(scope="module")
def job_queue(clients: Callable[[str], Any]) -> Iterator[str]:
    batch, ec2 = clients("batch"), clients("ec2")
    subnets = [
        s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    ]
    vpc_id = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    group = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]
    environment_name, queue_name = unique("ce"), unique("queue")
    environment = batch.create_compute_environment(
        computeEnvironmentName=environment_name,
        type="MANAGED",
        state="ENABLED",
        computeResources={"type": "FARGATE", "maxvCpus": 4, "subnets": subnets, "securityGroupIds": [group]},
    )["computeEnvironmentArn"]
    wait_until(
        "the compute environment to be VALID",
        lambda: (
            batch.describe_compute_environments(computeEnvironments=[environment])["computeEnvironments"][0]["status"]
            == "VALID"
        ),
        timeout=300,
        interval=2,
    )
    batch.create_job_queue(
        jobQueueName=queue_name,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
    )
    wait_until(
        "the job queue to be VALID",
        lambda: _status(batch.describe_job_queues(jobQueues=[queue_name])["jobQueues"]) == "VALID",
        timeout=300,
        interval=2,
    )
    yield queue_name
    batch.update_job_queue(jobQueue=queue_name, state="DISABLED")
    wait_until(
        "the job queue to be disabled",
        lambda: _status(batch.describe_job_queues(jobQueues=[queue_name])["jobQueues"]) in ("VALID", None),
        timeout=300,
        interval=2,
    )
    batch.delete_job_queue(jobQueue=queue_name)
    wait_until(
        "the job queue to be deleted",
        lambda: _status(batch.describe_job_queues(jobQueues=[queue_name])["jobQueues"]) in ("DELETED", None),
        timeout=300,
        interval=2,
    )
    batch.update_compute_environment(computeEnvironment=environment, state="DISABLED")
    batch.delete_compute_environment(computeEnvironment=environment)


@pytest.fixture(scope="module")
def job_definition(clients: Callable[[str], Any], execution_role: str) -> Iterator[str]:
    batch = clients("batch")
    registered = batch.register_job_definition(
        jobDefinitionName=unique("echo"),
        type="container",
        platformCapabilities=["FARGATE"],
        parameters={"word": "conformance", "wordy": "default"},
        containerProperties={
            "image": "public.ecr.aws/amazonlinux/amazonlinux:2023",
            # Two placeholders, one name the start of the other (moto replaced `Ref::wordy` by word's value + "y").
            "command": ["echo", "Ref::word", "Ref::wordy"],
            "executionRoleArn": execution_role,
            "resourceRequirements": [{"type": "VCPU", "value": "0.25"}, {"type": "MEMORY", "value": "512"}],
            "networkConfiguration": {"assignPublicIp": "ENABLED"},
        },
    )
    assert registered["revision"] == 1
    assert registered["jobDefinitionArn"].endswith(f":job-definition/{registered['jobDefinitionName']}:1")
    yield str(registered["jobDefinitionArn"])
    batch.deregister_job_definition(jobDefinition=registered["jobDefinitionArn"])


@pytest.fixture(scope="module")
def succeeded_job(clients: Callable[[str], Any], job_queue: str, job_definition: str) -> dict[str, Any]:
    """One job run to its end for this module's tests: (submission, last description)."""
    batch = clients("batch")
    name = unique("job")
    # `wordy` given at submission, over its default; its value looks like a placeholder and is only data.
    submitted = batch.submit_job(
        jobName=name, jobQueue=job_queue, jobDefinition=job_definition, parameters={"wordy": "Ref::word"}
    )
    job_id = submitted["jobId"]

    def ended() -> dict[str, Any] | None:
        job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
        return dict(job) if job["status"] in ("SUCCEEDED", "FAILED") else None

    job = wait_until("the job to end", ended, timeout=900, interval=1)
    return {"submitted": submitted, "job": job, "name": name}


def test_a_submitted_job_runs_to_success_and_is_described(
    succeeded_job: dict[str, Any], job_queue: str, job_definition: str
) -> None:
    job, name, job_id = succeeded_job["job"], succeeded_job["name"], succeeded_job["submitted"]["jobId"]
    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    assert succeeded_job["submitted"]["jobName"] == name
    assert succeeded_job["submitted"]["jobArn"].endswith(f":job/{job_id}")
    assert job["jobId"] == job_id and job["jobName"] == name
    assert job["jobQueue"].endswith(f":job-queue/{job_queue}")
    assert job["jobDefinition"] == job_definition
    assert job["container"]["exitCode"] == 0
    # The Batch guide: a placeholder takes SubmitJob's parameter, else the job definition's default; whole arguments.
    assert job["container"]["command"] == ["echo", "conformance", "Ref::word"]
    # Timestamps are epoch milliseconds (numbers, not dates) in Batch.
    assert isinstance(job["createdAt"], int) and job["createdAt"] <= job["startedAt"] <= job["stoppedAt"]
    assert len(job["attempts"]) == 1


@pytest.mark.emulator_gap("a job's attempts lack the container's exitCode (datapipe.local.batch_runner)")
def test_each_attempt_carries_its_container_exit_code(succeeded_job: dict[str, Any]) -> None:
    assert succeeded_job["job"]["attempts"][0]["container"]["exitCode"] == 0


def test_describe_jobs_of_an_unknown_id_is_an_empty_list(clients: Callable[[str], Any]) -> None:
    assert clients("batch").describe_jobs(jobs=["00000000-0000-0000-0000-000000000000"])["jobs"] == []


def test_a_job_for_an_unknown_queue_is_refused(clients: Callable[[str], Any], job_definition: str) -> None:
    with pytest.raises(ClientError) as refused:
        clients("batch").submit_job(jobName=unique("job"), jobQueue=unique("no-queue"), jobDefinition=job_definition)
    assert refused.value.response["Error"]["Code"] == "ClientException"
