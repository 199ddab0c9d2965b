"""The conformance suite's harness: where its scripts run, and the resources every script shares.

The scripts (test_*.py) are written as a user writes them: boto3 and the AWS CLI, reading the ordinary AWS
environment, no datapipe import. This harness decides what that environment points at:

- by default, the embedded emulator, started once for the suite (its extensions installed, nothing deployed);
- with DATAPIPE_CONFORMANCE_TARGET=aws, the account of the caller's usual AWS credentials and region. Every
  script then creates what it needs under a unique `dpconf-...` name and removes it afterwards. It costs money:
  one small EMR cluster for a minute, a Fargate task, a few API calls. tests/conftest.py then leaves the
  caller's credentials as they are (it fakes them for every other run).

A behaviour the emulator cannot reproduce is a test marked `emulator_gap(reason)`: an expected failure against
the emulator (strict: it fails once the emulator learns it), an ordinary test against AWS.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

TARGET_VARIABLE = "DATAPIPE_CONFORMANCE_TARGET"
ON_AWS = os.environ.get(TARGET_VARIABLE, "emulator").lower() == "aws"
EMULATOR_REGION = "eu-west-1"
# Variables that would send boto3 or the CLI elsewhere than the emulator.
FOREIGN_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CONFIG_FILE")

SERVICE_PRINCIPALS = ("states.amazonaws.com", "events.amazonaws.com", "scheduler.amazonaws.com")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "emulator_gap(reason): AWS behaves so, the emulator does not (expected failure against it)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if ON_AWS:
        return
    for item in items:
        gap = item.get_closest_marker("emulator_gap")
        if gap is not None:
            item.add_marker(pytest.mark.xfail(reason=f"emulator: {gap.args[0]}", strict=True))


@pytest.fixture(scope="package")
def aws_environment() -> Iterator[dict[str, str]]:
    """The environment a user's script runs with: the emulator's endpoint and fake keys, or untouched for AWS."""
    if ON_AWS:
        if os.environ.get("AWS_ACCESS_KEY_ID") == os.environ.get("AWS_SECRET_ACCESS_KEY") == "testing":
            pytest.exit(
                f"{TARGET_VARIABLE}=aws with the fake credentials 'testing': configure real ones (a profile, "
                "AWS_ACCESS_KEY_ID) for the account to test",
                returncode=2,
            )
        yield {}
        return
    from datapipe.local.extensions import EmulatorOptions
    from datapipe.local.server import Emulator

    # Faster than AWS where only waiting is at stake: clusters boot in 0.3 s, an empty activity poll lasts 2 s.
    options = EmulatorOptions(time_scale=0.2, activity_poll_seconds=2)
    with Emulator(region=EMULATOR_REGION, options=options, export_environment=False) as emulator:
        yield emulator.env()


@pytest.fixture(autouse=True)
def _user_environment(aws_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in aws_environment.items():
        monkeypatch.setenv(name, value)
    if aws_environment:
        for name in FOREIGN_VARIABLES:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="package")
def clients(aws_environment: dict[str, str]) -> Callable[..., Any]:
    """`clients("emr")`: a plain boto3 client for the target (built once per service and read timeout)."""
    made: dict[tuple[str, int | None], Any] = {}
    # The emulator's endpoint and keys, given explicitly: the process environment is the tests' to change.
    target: dict[str, Any] = {}
    if aws_environment:
        target = {
            "endpoint_url": aws_environment["AWS_ENDPOINT_URL"],
            "region_name": aws_environment["AWS_REGION"],
            "aws_access_key_id": aws_environment["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": aws_environment["AWS_SECRET_ACCESS_KEY"],
            "aws_session_token": None,
        }

    def make(service: str, read_timeout: int | None = None) -> Any:
        key = (service, read_timeout)
        if key not in made:
            config = Config(read_timeout=read_timeout) if read_timeout else None
            made[key] = boto3.session.Session().client(service, config=config, **target)  # type: ignore[call-overload]
        return made[key]

    return make


PREFIX = "dpconf-"  # every resource the suite creates is named so


def unique(kind: str) -> str:
    return f"{PREFIX}{kind}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="package")
def role_arn(clients: Callable[[str], Any]) -> Iterator[str]:
    """A role Step Functions, EventBridge and Scheduler may assume, allowed what the scripts' machines do."""
    iam = clients("iam")
    name = unique("role")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": list(SERVICE_PRINCIPALS)}, "Action": "sts:AssumeRole"}
        ],
    }
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    # Only what the suite itself creates (every name starts with dpconf-), even in a real account.
    allowed = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{PREFIX}*", f"arn:aws:s3:::{PREFIX}*/*"],
            },
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": f"arn:aws:sqs:*:*:{PREFIX}*"},
            {
                "Effect": "Allow",
                "Action": "states:StartExecution",
                "Resource": f"arn:aws:states:*:*:stateMachine:{PREFIX}*",
            },
        ],
    }
    iam.put_role_policy(RoleName=name, PolicyName="conformance", PolicyDocument=json.dumps(allowed))
    if ON_AWS:
        time.sleep(10)  # IAM is eventually consistent: a role just made is not yet assumable
    yield arn
    iam.delete_role_policy(RoleName=name, PolicyName="conformance")
    iam.delete_role(RoleName=name)


@pytest.fixture()
def state_machine(clients: Callable[[str], Any], role_arn: str) -> Iterator[Callable[[dict[str, Any]], str]]:
    """`state_machine(definition)`: a Standard state machine, deleted after the test."""
    sfn = clients("stepfunctions")
    made: list[str] = []

    def create(definition: dict[str, Any]) -> str:
        arn = sfn.create_state_machine(name=unique("sm"), definition=json.dumps(definition), roleArn=role_arn)[
            "stateMachineArn"
        ]
        made.append(arn)
        return str(arn)

    yield create
    for arn in made:
        sfn.delete_state_machine(stateMachineArn=arn)


def wait_until(what: str, probe: Callable[[], Any], timeout: float = 60, interval: float = 0.2) -> Any:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout} s")
        time.sleep(interval)


def finished(sfn: Any, execution_arn: str, timeout: float = 60) -> dict[str, Any]:
    """DescribeExecution once the execution has left RUNNING."""

    def probe() -> dict[str, Any] | None:
        described = sfn.describe_execution(executionArn=execution_arn)
        return None if described["status"] == "RUNNING" else dict(described)

    result: dict[str, Any] = wait_until(f"execution {execution_arn} to end", probe, timeout)
    return result


@pytest.fixture()
def bucket(clients: Callable[[str], Any]) -> Iterator[str]:
    """A fresh bucket in the client's region, emptied and deleted after the test."""
    s3 = clients("s3")
    name = unique("bucket")
    region = s3.meta.region_name
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=name, **location)
    yield name
    for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for item in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=item["Key"])
    s3.delete_bucket(Bucket=name)
