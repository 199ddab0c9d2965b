"""Cold start of each EMR workflow Lambda handler, traced as deployed, against boto3 alone, in the same run.

Each sample is a fresh interpreter that loads one module the way the Lambda runtime does (the function's folder on
sys.path, `import handler`) and prints how long that took; interpreter start-up is left out. Samples of the peer and
of the handlers are interleaved so that a busy machine slows them alike; a ratio is the median of each round's ratio
(samples taken back to back), shown beside the ratio of the fastest samples and of the medians.

The goal is measured as deployed: tracing Active, so Powertools' Tracer imports the X-Ray SDK and patches botocore
(LAMBDA_TASK_ROOT set, a sampled `_X_AMZN_TRACE_ID`, a UDP socket of this bench as the X-Ray daemon). Goal: `import
handler` at most 1.5x `import boto3`. Also shown, so that no cost hides in the first call: the import plus a first
invocation that makes one EMR call (ListClusters, answered by a local HTTP server with no cluster), against boto3's
import plus a client and the same call; and, for information, the handlers with tracing off and the X-Ray SDK alone.
Run: `python -m bench handler_import` (REPEAT=N in the environment, default 7).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.timing import describe, paired_ratio, ratio

GOAL = 1.5
HANDLERS = ("emr_reader", "cluster_reaper")  # import, and import + a first EMR call
# Import only: emr_waits answers Step Functions tokens from DynamoDB, run_values and merge_keys call no AWS service.
IMPORT_ONLY = ("emr_waits", "run_values", "merge_keys")
LAMBDAS_DIR = Path(__file__).resolve().parents[1] / "lambdas"
# An event for which each handler makes exactly one EMR call, ListClusters.
LISTING_EVENT = {
    "emr_reader": {"Action": "ListClusters"},
    "cluster_reaper": {
        "detail": {
            "executionArn": "arn:aws:states:eu-west-1:123456789012:execution:datapipe-dev-emr:run-1",
            "status": "FAILED",
        }
    },
}
# X-Ray's trace header as Lambda sets it for a sampled invocation (format from the X-Ray developer guide).
TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

TIMED_IMPORT = """
import sys, time
sys.path.insert(0, sys.argv[1]) if len(sys.argv) > 1 else None
start = time.perf_counter()
import {module}
print(time.perf_counter() - start)
"""

# The handler's import and first invocation, with a context carrying what Powertools reads.
TIMED_FIRST_INVOCATION = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
start = time.perf_counter()
import handler

class Context:
    function_name = "datapipe-bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:datapipe-bench"
    memory_limit_in_mb = 256
    aws_request_id = "11111111-2222-3333-4444-555555555555"
    log_group_name = "/aws/lambda/datapipe-bench"
    log_stream_name = "bench"
    def get_remaining_time_in_millis(self):
        return 60000

answer = handler.handler(json.loads(sys.argv[2]), Context())
elapsed = time.perf_counter() - start
assert answer["ok"] is True, answer
print(elapsed)
"""

TIMED_BOTO3_FIRST_CALL = """
import time
start = time.perf_counter()
import boto3
boto3.client("emr").list_clusters()
print(time.perf_counter() - start)
"""


class EmrWithoutClusters(BaseHTTPRequestHandler):
    """EMR's JSON protocol, as far as a first call needs it: ListClusters answered with no cluster."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        listing = self.headers.get("X-Amz-Target", "").endswith(".ListClusters")
        body = json.dumps({"Clusters": []} if listing else {"__type": "UnknownOperationException"}).encode()
        self.send_response(200 if listing else 400)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: no line per request on stderr
        pass


@contextmanager
def emr_without_clusters() -> Iterator[str]:
    """A local EMR endpoint (its URL) that answers ListClusters with no cluster, for as long as the block runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), EmrWithoutClusters)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def lambda_environment(folder: Path, *, tracing: bool, emr_endpoint: str, daemon_address: str) -> dict[str, str]:
    """The environment of a deployed function: Powertools traces in Lambda (LAMBDA_TASK_ROOT) unless disabled."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "LAMBDA_TASK_ROOT", "_X_AMZN"))}
    env.update(
        POWERTOOLS_SERVICE_NAME="bench", POWERTOOLS_METRICS_NAMESPACE="datapipe", AWS_ENDPOINT_URL_EMR=emr_endpoint,
        AWS_DEFAULT_REGION="eu-west-1", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        LAMBDA_TASK_ROOT=str(folder),
    )
    if tracing:
        env.update(_X_AMZN_TRACE_ID=TRACE_HEADER, AWS_XRAY_DAEMON_ADDRESS=daemon_address)
    else:
        env["POWERTOOLS_TRACE_DISABLED"] = "1"
    return env


def seconds_printed(arguments: list[str], env: dict[str, str]) -> float:
    done = subprocess.run([sys.executable, "-c", *arguments], env=env, check=True, capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def drain(daemon: socket.socket) -> None:
    """Read what the handlers sent the stand-in daemon, so that its buffer never fills."""
    while True:
        try:
            daemon.recv(65536)
        except BlockingIOError:
            return


def main() -> None:
    repeat = int(os.environ.get("REPEAT", "7"))
    samples: dict[str, list[float]] = {}

    def sample(label: str, arguments: list[str], env: dict[str, str]) -> None:
        samples.setdefault(label, []).append(seconds_printed(arguments, env))

    with emr_without_clusters() as endpoint, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        daemon.setblocking(False)
        daemon_address = f"127.0.0.1:{daemon.getsockname()[1]}"
        plain = lambda_environment(LAMBDAS_DIR, tracing=False, emr_endpoint=endpoint, daemon_address=daemon_address)
        del plain["LAMBDA_TASK_ROOT"]
        for _ in range(repeat):  # interleaved, so that both sides see the same machine load
            sample("boto3", [TIMED_IMPORT.format(module="boto3")], plain)
            sample("boto3 first call", [TIMED_BOTO3_FIRST_CALL], plain)
            sample("aws_xray_sdk.core", [TIMED_IMPORT.format(module="aws_xray_sdk.core")], plain)
            for name in HANDLERS:
                folder = LAMBDAS_DIR / name
                for tracing in (True, False):
                    env = lambda_environment(folder, tracing=tracing, emr_endpoint=endpoint,
                                             daemon_address=daemon_address)
                    suffix = "" if tracing else ", untraced"
                    sample(f"{name}{suffix}", [TIMED_IMPORT.format(module="handler"), str(folder)], env)
                    sample(f"{name}{suffix} first call",
                           [TIMED_FIRST_INVOCATION, str(folder), json.dumps(LISTING_EVENT[name])], env)
            for name in IMPORT_ONLY:
                folder = LAMBDAS_DIR / name
                env = lambda_environment(folder, tracing=True, emr_endpoint=endpoint, daemon_address=daemon_address)
                sample(name, [TIMED_IMPORT.format(module="handler"), str(folder)], env)
            drain(daemon)

    print(describe("import boto3 (peer)", samples["boto3"]))
    for name in (*HANDLERS, *IMPORT_ONLY):
        print(describe(f"import {name} handler, traced", samples[name]))
    print(describe("import boto3 + ListClusters (peer)", samples["boto3 first call"]))
    for name in HANDLERS:
        print(describe(f"{name}: import + first call, traced", samples[f"{name} first call"]))
    print("information:")
    print(describe("  import aws_xray_sdk.core", samples["aws_xray_sdk.core"]))
    for name in HANDLERS:
        print(describe(f"  import {name}, untraced", samples[f"{name}, untraced"]))
        print(describe(f"  {name}: import + call, untraced", samples[f"{name}, untraced first call"]))
    judged = [(name, "") for name in (*HANDLERS, *IMPORT_ONLY)] + [(name, " first call") for name in HANDLERS]
    for name, peer in judged:
        ours, theirs = samples[f"{name}{peer}"], samples[f"boto3{peer}"]
        # Each round's samples ran back to back: their ratio sees the same machine load, where other work on a shared
        # machine moves the medians of the two sides apart. The fastest samples are the least disturbed.
        paired = paired_ratio(ours, theirs)
        best = min(ours) / min(theirs)
        verdict = "met" if max(paired, best) <= GOAL else "NOT met"
        what = "import + first call" if peer else "import"
        print(f"ratio {name} (traced)/boto3, {what}: {paired:.2f}x median of rounds, {best:.2f}x fastest, "
              f"{ratio(ours, theirs):.2f}x of medians (goal <= {GOAL:.1f}x) -> {verdict}")

if __name__ == "__main__":
    main()
