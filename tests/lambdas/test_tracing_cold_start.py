"""Traced as deployed, each handler patches botocore only, and its EMR calls still reach X-Ray as subsegments.

Powertools' Tracer patches, by default, every library the X-Ray SDK supports that can be imported, importing each on
a cold start (in this project's environment: requests, sqlite3, pymysql, psycopg). The handlers call out through
botocore alone, so that is all they patch. Each case runs a handler the way the Lambda runtime does, in a fresh
interpreter with LAMBDA_TASK_ROOT and a sampled trace header; a UDP socket stands in for the X-Ray daemon and a
local HTTP server for EMR (the benchmark's, answering ListClusters with no cluster).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from bench.handler_import import LISTING_EVENT, emr_without_clusters
from tests.lambdas.test_tracing import INVOKE, LAMBDAS_DIR, TRACE_HEADER

# Which libraries the X-Ray SDK patched, and which of those it can patch were imported, after the invocation.
REPORT_PATCHES = INVOKE + """
from aws_xray_sdk.core import patcher
patchable = [name for name in patcher.SUPPORTED_MODULES if name in sys.modules]
print(json.dumps({"patched": sorted(patcher._PATCHED_MODULES), "imported": patchable}))
"""


@pytest.fixture()
def emr_endpoint() -> Iterator[str]:
    with emr_without_clusters() as url:
        yield url


def traced_invocation(name: str, emr_endpoint: str, daemon: socket.socket) -> dict[str, Any]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "LAMBDA_TASK_ROOT", "_X_AMZN"))}
    env = {
        **base,
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL_EMR": emr_endpoint,
        "POWERTOOLS_SERVICE_NAME": name,
        "POWERTOOLS_METRICS_NAMESPACE": "datapipe",
        "LAMBDA_TASK_ROOT": "/var/task",
        "_X_AMZN_TRACE_ID": TRACE_HEADER,
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
    }
    done = subprocess.run(
        [sys.executable, "-c", REPORT_PATCHES, str(LAMBDAS_DIR / name), json.dumps(LISTING_EVENT[name])],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    invoked, patches = json.loads(lines[-2]), json.loads(lines[-1])
    assert invoked["answer"]["ok"] is True, invoked
    return {**invoked, **patches}


def daemon_documents(daemon: socket.socket, until: str) -> list[dict[str, Any]]:
    """What the stand-in daemon received, up to the subsegment named `until` (the handler's, sent last)."""
    documents: list[dict[str, Any]] = []
    while not any(document.get("name") == until for document in documents):
        header, _, body = daemon.recv(65536).decode().partition("\n")
        assert json.loads(header) == {"format": "json", "version": 1}
        documents.append(json.loads(body))
    return documents


def subsegments(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield document
    for child in document.get("subsegments", []):
        yield from subsegments(child)


@pytest.mark.parametrize("name", sorted(LISTING_EVENT))
def test_traced_handler_patches_botocore_only_and_traces_its_emr_call(name: str, emr_endpoint: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        daemon.settimeout(30)
        result = traced_invocation(name, emr_endpoint, daemon)
        documents = daemon_documents(daemon, until="## _handle")
    assert result["xray_loaded"] is True
    assert result["patched"] == ["botocore"]
    assert result["imported"] == ["botocore"]
    handle = next(document for document in documents if document.get("name") == "## _handle")
    # The SDK names an AWS call's subsegment by the service's endpoint prefix.
    calls = [sub for document in documents for sub in subsegments(document) if sub.get("namespace") == "aws"]
    assert [(call["name"], call["aws"]["operation"]) for call in calls] == [("elasticmapreduce", "ListClusters")]
    assert calls[0]["trace_id"] == handle["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert calls[0]["http"]["response"]["status"] == 200
