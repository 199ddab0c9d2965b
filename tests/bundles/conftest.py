"""Bundle fixtures: a private data folder per test, an S3 remote on moto (in process, or as a server for the
processes a local run starts), and a CLI runner."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result
from moto import mock_aws

from datapipe.bundles.store import LocalContext
from datapipe.cli import cli

PROJECT_DIR = Path(__file__).resolve().parents[2]
BUCKET = "bundle-remote"
REMOTE_URL = f"s3://{BUCKET}/team"


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.chdir(tmp_path)  # away from any emulator state file (.datapipe/local.json) of the checkout
    monkeypatch.setenv("DATAPIPE_DATA_DIR", str(folder))
    monkeypatch.delenv("DATAPIPE_CONTEXT", raising=False)
    return folder


@pytest.fixture()
def s3() -> Iterator[Any]:
    """An in-process moto S3 holding the remote's bucket."""
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client


@pytest.fixture()
def context(data_dir: Path) -> LocalContext:
    return LocalContext(data_dir, "default")


@pytest.fixture()
def words(tmp_path: Path) -> Path:
    """A folder of text files to commit as an input bundle."""
    folder = tmp_path / "words"
    (folder / "more").mkdir(parents=True)
    (folder / "a.txt").write_text("The cat and the hat.\n")
    (folder / "more" / "b.txt").write_text("the cat sat\n")
    return folder


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server of its own process, for what runs in another process (the local backend's transform).

    Not in this process: moto's backends are process-wide, and a server here would leave them set up (IAM without
    the AWS managed policies) for the emulator that the e2e tests start later in the session.
    """
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not start on port {port}") from None
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture()
def served_s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The remote's bucket on the moto server; this process and its children reach it through AWS_ENDPOINT_URL."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    client = boto3.client("s3", region_name="eu-west-1")
    bucket = f"{BUCKET}-{_free_port()}"  # a bucket per test: the server lives for the whole session
    client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    yield client, f"s3://{bucket}/team"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def assert_one_line_error(result: Result, *fragments: str, exit_code: int = 2) -> None:
    assert result.exit_code == exit_code, result.output
    assert result.output.startswith("Error: "), result.output
    assert result.output.count("\n") == 1, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
