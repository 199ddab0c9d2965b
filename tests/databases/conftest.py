"""The database tests' fixtures: each test that takes `server` runs on both engines; moto for S3 and Secrets Manager.
The servers themselves are tests/database_servers.py's, shared with the other test folders."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.database_servers import PASSWORD, USER, Server, free_port

__all__ = ["PASSWORD", "USER", "Server", "free_port"]


@pytest.fixture(params=["postgres", "mariadb"])
def server(request: pytest.FixtureRequest) -> Server:
    """Each test that takes `server` runs on both engines."""
    server: Server = request.getfixturevalue(f"{request.param}_server")
    return server


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    """moto's S3 and Secrets Manager, one bucket `data` ready."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="data", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield {"s3": s3, "secrets": boto3.client("secretsmanager", region_name="eu-west-1")}
