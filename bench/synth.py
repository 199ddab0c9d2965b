"""Synthesis of the whole app against synthesis of an empty CDK app, in the same run, and where its time goes.

The peer is the empty CDK app as the CDK ships it (`cdk.App()`, one empty stack): the floor every CDK app pays,
the built-in CloudFormation validation included. The datapipe app switches that validation off for every synthesis
(stacks.synthesis, read by app.py; docs/decisions/0001-*.md: cfn-lint and checkov check the templates in the test
suite instead), and overlaps its Python imports with Node's loading of aws-cdk-lib and cdk-nag, without Python's
garbage collector scanning what they make (`stacks.synthesis.import_for_synthesis`, docs/decisions/0002-*.md); these
are the cuts this benchmark measures. Samples alternate, so that a
busy machine slows every side alike; the goal (at most 2x) holds for the ratio of the medians and for that of the
fastest samples. Then, for information:
- an empty app that also skips the validation: little more than starting Python and jsii's Node, against which the
  app's own construct building shows;
- the imports a synthesis starts with (aws_cdk, cdk-nag and the modules the stacks import), one after the other with
  Python's garbage collector on, as before issue 15, and as `build_app` makes them (overlapped, the collector off and
  their objects frozen after), each in a fresh process;
- the phases of one synthesis of the app in one process: the imports (overlapped), building the constructs over
  jsii (`build_app`, with the stacks' own modules), and the CDK's own synthesis (`app.synth()`: templates, assets and
  cdk-nag's checks).
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
from stacks.synthesis import BUILTIN_CLOUDFORMATION_VALIDATION

GOAL = 2.0

# The empty app: the project's setting by default; `python -c EMPTY_APP default` is the CDK's default (the peer), which
# imports nothing of the project.
EMPTY_APP = """
import sys
import aws_cdk as cdk
if sys.argv[1:] == ["default"]:
    app = cdk.App()
else:
    from stacks.synthesis import BUILTIN_CLOUDFORMATION_VALIDATION
    app = cdk.App(builtin_cloud_formation_validation=BUILTIN_CLOUDFORMATION_VALIDATION)
cdk.Stack(app, "Empty")
app.synth()
"""

PHASES = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
start = time.perf_counter()
import app
from stacks.synthesis import import_for_synthesis
import_for_synthesis()
imported = time.perf_counter()
built = app.build_app()
constructed = time.perf_counter()
built.synth()
synthesized = time.perf_counter()
print(json.dumps({"imports (overlapped)": imported - start, "build the constructs": constructed - imported,
                  "app.synth()": synthesized - constructed}))
"""

# The same imports one after the other with the garbage collector on, as app.py made them before issue 15's cuts.
SEQUENTIAL_IMPORTS = """
import importlib, sys
sys.path.insert(0, sys.argv[1])
from stacks.synthesis import stack_dependencies
pure_python, aws_cdk_modules = stack_dependencies()
for module in [*pure_python, "aws_cdk", "cdk_nag", *aws_cdk_modules]:
    importlib.import_module(module)
"""
OVERLAPPED_IMPORTS = """
import sys
sys.path.insert(0, sys.argv[1])
from stacks.synthesis import import_for_synthesis
import_for_synthesis()
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
        # PYTHONPATH: the empty app reads the project's setting from stacks.synthesis, as app.py does.
        env = {**jsii_environment(), "CDK_OUTDIR": workdir, "PYTHONPATH": str(project_dir)}
        env.pop("CDK_VALIDATION", None)
        for _ in range(repeat):  # alternating, so that both sides see the same machine load
            for label, args in (
                ("empty", empty_app),
                ("full", full_app),
                ("empty, CDK default", [*empty_app, "default"]),
                ("imports in turn, collector on", [sys.executable, "-c", SEQUENTIAL_IMPORTS, str(project_dir)]),
                ("imports as build_app makes them", [sys.executable, "-c", OVERLAPPED_IMPORTS, str(project_dir)]),
            ):
                samples.setdefault(label, []).append(seconds_of(args, env, project_dir))
            done = subprocess.run(
                [sys.executable, "-c", PHASES, str(project_dir)], env=env, cwd=project_dir, check=True,
                capture_output=True, text=True,
            )
            phases.append(json.loads(done.stdout.strip().splitlines()[-1]))
        stacks = len(list(Path(workdir).glob("*.template.json")))
    setting = "on" if BUILTIN_CLOUDFORMATION_VALIDATION else "off"
    print(f"peer: the empty CDK app as the CDK ships it; datapipe: built-in CloudFormation validation {setting}, "
          "imports overlapped with Node's loading and kept from the garbage collector")
    print(describe("empty CDK app, the CDK's default (peer)", samples["empty, CDK default"]))
    print(describe(f"datapipe app ({stacks} stacks, cdk-nag)", samples["full"]))
    value = ratio(samples["full"], samples["empty, CDK default"])
    best = min(samples["full"]) / min(samples["empty, CDK default"])
    verdict = "met" if max(value, best) <= GOAL else "NOT met"
    print(f"ratio datapipe/empty: {value:.2f}x median, {best:.2f}x fastest (goal: both <= {GOAL:.1f}x) -> {verdict}")
    print("information:")
    print(describe("  empty CDK app, validation off too", samples["empty"]))
    share = statistics.median(samples["empty, CDK default"]) - statistics.median(samples["empty"])
    print(f"  the built-in validation's cost to the empty app: {share:.2f} s (median difference)")
    alike = ratio(samples["full"], samples["empty"])
    print(f"  datapipe/empty with validation off on both sides: {alike:.2f}x median (the app's own constructs over "
          "a bare Python and Node start)")
    print("the imports a synthesis starts with, in a fresh process:")
    for label in ("imports in turn, collector on", "imports as build_app makes them"):
        print(describe(f"  {label}", samples[label]))
    print("phases of the datapipe app in one process (medians):")
    for phase in phases[0]:
        print(describe(f"  {phase}", [sample[phase] for sample in phases]))


if __name__ == "__main__":
    main()
