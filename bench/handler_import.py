"""Cold import of each EMR workflow Lambda handler against a bare `import boto3`, in the same run.

Each sample is a fresh interpreter that imports one module the way the Lambda runtime does (the function's folder
on sys.path, `import handler`) and prints how long the import took; interpreter start-up is left out. Samples of
the peer and of the handlers are interleaved so that a busy machine slows them alike. The handlers import boto3 and
Powertools (Logger, Metrics); the X-Ray SDK, whose recorder builds two botocore clients while it is imported, only
where Powertools traces (in Lambda without POWERTOOLS_TRACE_DISABLED). The goal is measured with tracing off (the
emulator, tests, a function with POWERTOOLS_TRACE_DISABLED); the handlers with tracing on and the SDK alone are shown
for information. Goal: at most 1.5x the bare boto3 import.
Run: `python -m bench handler_import` (REPEAT=N in the environment, default 7).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.timing import describe, ratio

GOAL = 1.5
HANDLERS = ("emr_reader", "cluster_reaper")
LAMBDAS_DIR = Path(__file__).resolve().parents[1] / "lambdas"

TIMED_IMPORT = """
import sys, time
sys.path.insert(0, sys.argv[1]) if len(sys.argv) > 1 else None
start = time.perf_counter()
import {module}
print(time.perf_counter() - start)
"""


def import_seconds(module: str, folder: Path | None = None, *, tracing: bool = False) -> float:
    arguments = [sys.executable, "-c", TIMED_IMPORT.format(module=module)]
    if folder is not None:
        arguments.append(str(folder))
    # Powertools reads these at import: it traces inside Lambda (LAMBDA_TASK_ROOT) unless POWERTOOLS_TRACE_DISABLED.
    env = {k: v for k, v in os.environ.items() if k not in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED")}
    env["POWERTOOLS_SERVICE_NAME"] = "bench"
    env.update({"LAMBDA_TASK_ROOT": str(folder)} if tracing else {"POWERTOOLS_TRACE_DISABLED": "1"})
    done = subprocess.run(arguments, env=env, check=True, capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    repeat = int(os.environ.get("REPEAT", "7"))
    traced = [f"{h}, traced" for h in HANDLERS]
    samples: dict[str, list[float]] = {name: [] for name in ("boto3", "aws_xray_sdk.core", *HANDLERS, *traced)}
    for _ in range(repeat):
        samples["boto3"].append(import_seconds("boto3"))
        samples["aws_xray_sdk.core"].append(import_seconds("aws_xray_sdk.core"))
        for name in HANDLERS:
            samples[name].append(import_seconds("handler", LAMBDAS_DIR / name))
            samples[f"{name}, traced"].append(import_seconds("handler", LAMBDAS_DIR / name, tracing=True))
    print(describe("import boto3 (peer)", samples["boto3"]))
    print(describe("import aws_xray_sdk.core (info)", samples["aws_xray_sdk.core"]))
    for name in HANDLERS:
        print(describe(f"import {name} handler", samples[name]))
    for name in traced:
        print(describe(f"import {name} (info)", samples[name]))
    for name in HANDLERS:
        value = ratio(samples[name], samples["boto3"])
        # The fastest samples are the least disturbed by other work on the machine: shown beside the medians.
        best = min(samples[name]) / min(samples["boto3"])
        verdict = "met" if max(value, best) <= GOAL else "NOT met"
        print(f"ratio {name}/boto3: {value:.2f}x median, {best:.2f}x fastest (goal <= {GOAL:.1f}x) -> {verdict}")


if __name__ == "__main__":
    main()
