"""Fixtures of the unit tests that talk to moto's AWS through the CLI."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

MOTO_REGION = "eu-west-1"


@pytest.fixture()
def towards_moto(clean_cwd: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Away from a running emulator's state file and endpoint, so that requests go to moto's AWS."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture()
def aws() -> Iterator[str]:
    """moto's AWS; the account it answers as."""
    with mock_aws():
        yield boto3.client("sts", region_name=MOTO_REGION).get_caller_identity()["Account"]
