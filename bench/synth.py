"""Synthesis of the whole app against synthesis of an empty CDK app, in the same run.

Both start a jsii Node process and import aws_cdk, which dominates; the goal is a ratio of at most 2x.
Run: `python -m bench synth` (REPEAT=N in the environment to change the number of runs, default 3).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from bench.timing import describe, ratio, time_command
from datapipe.project import find_project_dir, jsii_environment

GOAL = 2.0

EMPTY_APP = """
import aws_cdk as cdk
app = cdk.App()
cdk.Stack(app, "Empty")
app.synth()
"""


def main() -> None:
    project_dir = find_project_dir(Path(__file__).parent)
    repeat = int(os.environ.get("REPEAT", "3"))
    with tempfile.TemporaryDirectory() as workdir:
        env = {**jsii_environment(), "CDK_OUTDIR": workdir}
        empty = time_command([sys.executable, "-c", EMPTY_APP], repeat=repeat, env=env)
        full = time_command([sys.executable, str(project_dir / "app.py")], repeat=repeat, env=env, cwd=project_dir)
        stacks = len(list(Path(workdir).glob("*.template.json")))
    print(describe("empty CDK app (peer)", empty))
    print(describe(f"datapipe app ({stacks} stacks)", full))
    value = ratio(full, empty)
    print(f"ratio datapipe/empty: {value:.2f}x (goal <= {GOAL:.1f}x) -> {'met' if value <= GOAL else 'NOT met'}")
