"""Both handlers load the X-Ray SDK only where Powertools traces, and trace there.

Each case imports a handler the way the Lambda runtime does (its folder on sys.path, `import handler`) in a fresh
interpreter, since what an import loads is decided once per process. With tracing on, an X-Ray daemon stands in as a
UDP socket: the SDK sends it the handler's subsegment, as it would to the daemon beside a Lambda function.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"
HANDLERS = ("emr_reader", "cluster_reaper")
# A request each handler refuses before calling EMR: no EMR endpoint is needed.
REFUSED_EVENT = {"emr_reader": {"Action": "Nope"}, "cluster_reaper": {"detail": {}}}
# X-Ray's trace header as Lambda sets it for a sampled invocation (format from the X-Ray developer guide).
TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

INVOKE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import handler

class Context:
    function_name = "datapipe-dev-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:datapipe-dev-test"
    memory_limit_in_mb = 256
    aws_request_id = "11111111-2222-3333-4444-555555555555"
    log_group_name = "/aws/lambda/datapipe-dev-test"
    log_stream_name = "2026/11/21/[$LATEST]test"
    def get_remaining_time_in_millis(self):
        return 60000

answer = handler.handler(json.loads(sys.argv[2]), Context())
print(json.dumps({"answer": answer, "xray_loaded": "aws_xray_sdk.core" in sys.modules}))
"""


def invoke(name: str, env: dict[str, str]) -> dict[str, Any]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "LAMBDA_TASK_ROOT", "_X_AMZN"))}
    done = subprocess.run(
        [sys.executable, "-c", INVOKE, str(LAMBDAS_DIR / name), json.dumps(REFUSED_EVENT[name])],
        env={**base, "AWS_DEFAULT_REGION": "eu-west-1", "POWERTOOLS_SERVICE_NAME": name,
             "POWERTOOLS_METRICS_NAMESPACE": "datapipe", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["answer"]["ok"] is False  # the refused request was answered
    return result


@pytest.mark.parametrize("name", HANDLERS)
@pytest.mark.parametrize(
    "env",
    [{"POWERTOOLS_TRACE_DISABLED": "1", "LAMBDA_TASK_ROOT": "/var/task"}, {}],
    ids=["disabled in Lambda", "outside Lambda"],
)
def test_without_tracing_the_xray_sdk_is_not_imported(name: str, env: dict[str, str]) -> None:
    assert invoke(name, env)["xray_loaded"] is False


@pytest.mark.parametrize("name", HANDLERS)
def test_with_tracing_on_the_handler_sends_its_subsegment_to_the_daemon(name: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        daemon.settimeout(30)
        address = f"127.0.0.1:{daemon.getsockname()[1]}"
        env = {"LAMBDA_TASK_ROOT": "/var/task", "_X_AMZN_TRACE_ID": TRACE_HEADER, "AWS_XRAY_DAEMON_ADDRESS": address}
        assert invoke(name, env)["xray_loaded"] is True
        documents: list[dict[str, Any]] = []
        while not any(document.get("name") == "## _handle" for document in documents):
            datagram = daemon.recv(65536).decode()
            # The daemon protocol: a JSON header line, then the segment document.
            header, _, body = datagram.partition("\n")
            assert json.loads(header) == {"format": "json", "version": 1}
            documents.append(json.loads(body))
    subsegment = next(document for document in documents if document.get("name") == "## _handle")
    assert subsegment["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert subsegment["annotations"]["ColdStart"] is True
    assert subsegment["annotations"]["Service"] == name
