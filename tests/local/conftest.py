"""One moto server for the emulator tests, with the extensions installed, and boto3 clients pointed at it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from datapipe.local.extensions import EmulatorOptions, Extensions, install, installed, uninstall

REGION = "eu-west-1"
ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/emulator-test"

# Fast lifecycles for tests: a cluster boots in ~0.3 s, a step runs ~0.2 s.
TEST_OPTIONS: dict[str, Any] = {"time_scale": 0.2, "activity_poll_seconds": 0.5}


@pytest.fixture(scope="package")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="package")
def extensions(endpoint: str) -> Iterator[Extensions]:
    """Installed for this package only: the rest of the suite gets moto as it was.

    When another fixture of the session (the e2e emulator) installed them first, they stay installed for it.
    """
    ours = installed() is None
    yield install(EmulatorOptions(endpoint_url=endpoint, **TEST_OPTIONS))
    if ours:
        uninstall()


@pytest.fixture()
def emulator(extensions: Extensions, endpoint: str) -> Iterator[Extensions]:
    """The installed extensions with test options restored and no faults left over."""
    extensions.configure(EmulatorOptions(endpoint_url=endpoint, **TEST_OPTIONS))
    extensions.faults.clear()
    yield extensions
    extensions.faults.clear()


@pytest.fixture(scope="package")
def _clients(endpoint: str) -> dict[str, Any]:
    return {}


@pytest.fixture()
def aws(endpoint: str, emulator: Extensions, _clients: dict[str, Any]) -> Callable[[str], Any]:
    """`aws("emr")`: a boto3 client for the emulator (one per service for the session: clients are slow to make)."""

    def make(service: str) -> Any:
        if service not in _clients:
            session: Any = boto3.session.Session()
            _clients[service] = session.client(service, region_name=REGION, endpoint_url=endpoint)
        return _clients[service]

    return make


def run_state_machine(
    aws: Callable[[str], Any], definition: dict[str, Any], execution_input: dict[str, Any] | None = None
) -> tuple[str, str]:
    """Create a state machine from hand-written ASL and start it; (state machine ARN, execution ARN)."""
    sfn = aws("stepfunctions")
    name = f"test-{uuid.uuid4().hex[:10]}"
    machine = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE_ARN)
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input=json.dumps(execution_input or {}))
    return machine["stateMachineArn"], execution["executionArn"]


def wait_for_execution(aws: Callable[[str], Any], execution_arn: str, timeout: float = 20) -> dict[str, Any]:
    sfn = aws("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return dict(described)
        if time.monotonic() > deadline:
            raise AssertionError(f"execution still RUNNING after {timeout} s")
        time.sleep(0.05)


def history(aws: Callable[[str], Any], execution_arn: str) -> list[dict[str, Any]]:
    return list(aws("stepfunctions").get_execution_history(executionArn=execution_arn)["events"])
