"""Synthesis of the whole app against synthesis of an empty CDK app, in the same run, and where its time goes.

Both start a jsii Node process and import aws_cdk; samples of the two alternate, so that a busy machine slows them
alike, and the ratio is of medians (goal: at most 2x). Then, for information:
- both again with the CDK's built-in CloudFormation validation switched off (`CDK_VALIDATION=false`): that
  validation compiles a WebAssembly engine on every synthesis and checks every template, and is the largest part;
- the phases of one synthesis of the app in one process: importing aws_cdk, importing the stacks (with the aws_cdk
  modules they use), building the constructs over jsii (`build_app`), and the CDK's own synthesis (`app.synth()`:
  templates, assets, cdk-nag and the built-in validation).
Run: `python -m bench synth` (REPEAT=N in the environment to change the number of runs, default 3).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.timing import describe, ratio
from datapipe.project import find_project_dir, jsii_environment

GOAL = 2.0

EMPTY_APP = """
import aws_cdk as cdk
app = cdk.App()
cdk.Stack(app, "Empty")
app.synth()
"""

PHASES = """
import json, sys, time
start = time.perf_counter()
import aws_cdk
imported_cdk = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import app
imported_stacks = time.perf_counter()
built = app.build_app()
constructed = time.perf_counter()
built.synth()
synthesized = time.perf_counter()
print(json.dumps({"import aws_cdk": imported_cdk - start, "import the stacks": imported_stacks - imported_cdk,
                  "build the constructs": constructed - imported_stacks, "app.synth()": synthesized - constructed}))
"""


def seconds_of(args: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(args, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    project_dir = find_project_dir(Path(__file__).parent)
    repeat = int(os.environ.get("REPEAT", "3"))
    empty_app = [sys.executable, "-c", EMPTY_APP]
    full_app = [sys.executable, str(project_dir / "app.py")]
    samples: dict[str, list[float]] = {}
    phases: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as workdir:
        env = {**jsii_environment(), "CDK_OUTDIR": workdir}
        unvalidated = {**env, "CDK_VALIDATION": "false"}
        for _ in range(repeat):  # alternating, so that both sides see the same machine load
            for label, args, environment in (
                ("empty", empty_app, env),
                ("full", full_app, env),
                ("empty, no validation", empty_app, unvalidated),
                ("full, no validation", full_app, unvalidated),
            ):
                samples.setdefault(label, []).append(seconds_of(args, environment, project_dir))
            done = subprocess.run(
                [sys.executable, "-c", PHASES, str(project_dir)], env=env, cwd=project_dir, check=True,
                capture_output=True, text=True,
            )
            phases.append(json.loads(done.stdout.strip().splitlines()[-1]))
        stacks = len(list(Path(workdir).glob("*.template.json")))
    print(describe("empty CDK app (peer)", samples["empty"]))
    print(describe(f"datapipe app ({stacks} stacks)", samples["full"]))
    value = ratio(samples["full"], samples["empty"])
    best = min(samples["full"]) / min(samples["empty"])
    verdict = "met" if value <= GOAL else "NOT met"
    print(f"ratio datapipe/empty: {value:.2f}x median, {best:.2f}x fastest (goal <= {GOAL:.1f}x) -> {verdict}")
    print("without the built-in CloudFormation validation (information):")
    print(describe("  empty CDK app", samples["empty, no validation"]))
    print(describe("  datapipe app", samples["full, no validation"]))
    for side in ("empty", "full"):
        share = statistics.median(samples[side]) - statistics.median(samples[f"{side}, no validation"])
        print(f"  the validation's share of the {side} app: {share:.2f} s (median difference)")
    print("phases of the datapipe app in one process (information, medians):")
    for phase in phases[0]:
        print(describe(f"  {phase}", [sample[phase] for sample in phases]))


if __name__ == "__main__":
    main()
