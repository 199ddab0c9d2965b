"""Starting the embedded emulator and deploying the whole app, against moto's own CloudFormation, in the same run.

Goal: start + deploy of the whole app in under 10 s (the e2e session fixture and `datapipe local up` pay it).
The peer is what moto offers out of the box: `cloudformation create_stack` of every template of the same
assembly, in the same dependency order, on the same emulator. Besides the time, both sides report how much of
the app they deployed (stacks completed, resources, state machines that can be executed), because the peer does
not deploy all of it; the time ratio alone would flatter it.

Each measurement runs in a new Python process (cold imports and caches, as `datapipe local up` has them), the two
sides alternating. Run: `python -m bench.emulator_deploy [--repeat N] [--assembly DIR]` (synthesizes the app
when no --assembly).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.timing import describe, ratio
from datapipe.local.assembly import read_assembly
from datapipe.local.deploy import CREATED
from datapipe.local.server import Emulator
from datapipe.project import find_project_dir
from datapipe.synth import synthesize

GOAL_SECONDS = 10.0


def ours(assembly_dir: Path, region: str | None) -> tuple[float, float, dict[str, Any]]:
    """(seconds to start, seconds to deploy, what was deployed)."""
    started = time.perf_counter()
    with Emulator(region=region, export_environment=False) as emulator:
        running = time.perf_counter()
        deployment = emulator.deploy(assembly_dir)
        deployed = time.perf_counter()
        figures = {
            "stacks": len(deployment.stacks),
            "resources": sum(r.status == CREATED for r in deployment.resources),
            "runnable state machines": len(emulator.client("stepfunctions").list_state_machines()["stateMachines"]),
        }
    return running - started, deployed - running, figures


def peer(assembly_dir: Path, region: str | None) -> tuple[float, dict[str, Any]]:
    """moto's CloudFormation on the same templates: (seconds, what it deployed)."""
    assembly = read_assembly(assembly_dir)
    with Emulator(region=region, export_environment=False) as emulator:
        cloudformation = emulator.client("cloudformation")
        for parameter in {stack.bootstrap_version_parameter for stack in assembly.stacks} - {None}:
            emulator.client("ssm").put_parameter(Name=str(parameter), Value="30", Type="String")
        started = time.perf_counter()
        completed, resources = 0, 0
        for stack in assembly.stacks:
            try:
                cloudformation.create_stack(
                    StackName=stack.stack_name,
                    TemplateBody=stack.template_path.read_text(),
                    Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
                )
                status = cloudformation.describe_stacks(StackName=stack.stack_name)["Stacks"][0]["StackStatus"]
                listed = cloudformation.list_stack_resources(StackName=stack.stack_name)["StackResourceSummaries"]
            except Exception:  # the peer's failure is a figure here, not an error of the benchmark
                continue
            completed += status == "CREATE_COMPLETE"
            resources += sum(r["ResourceStatus"] == "CREATE_COMPLETE" for r in listed)
        seconds = time.perf_counter() - started
        figures = {
            "stacks": completed,
            "resources": resources,
            "runnable state machines": len(emulator.client("stepfunctions").list_state_machines()["stateMachines"]),
        }
    return seconds, figures


def measure_in_fresh_process(side: str, assembly_dir: Path) -> dict[str, Any]:
    """One side's figures from a new Python process: cold caches and imports, as `datapipe local up` has them."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "bench.emulator_deploy", "--side", side, "--assembly", str(assembly_dir)],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"},
    )
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    figures["process"] = time.perf_counter() - started
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.emulator_deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side [3]")
    parser.add_argument("--assembly", type=Path, default=None, help="a cloud assembly [synthesize the app]")
    parser.add_argument("--side", choices=["ours", "peer"], help=argparse.SUPPRESS)  # one measurement, as JSON
    arguments = parser.parse_args(argv or [])
    if arguments.side:
        region = read_assembly(arguments.assembly).region
        if arguments.side == "ours":
            start, deploy, deployed = ours(arguments.assembly, region)
            print(json.dumps({"start": start, "deploy": deploy, "deployed": deployed}))
        else:
            deploy, deployed = peer(arguments.assembly, region)
            print(json.dumps({"deploy": deploy, "deployed": deployed}))
        return
    with tempfile.TemporaryDirectory(prefix="bench-assembly-") as folder:
        assembly_dir = arguments.assembly or synthesize(find_project_dir(), Path(folder))
        our_runs, peer_runs = [], []
        for _ in range(arguments.repeat):  # alternating, so that both sides see the same machine load
            our_runs.append(measure_in_fresh_process("ours", assembly_dir))
            peer_runs.append(measure_in_fresh_process("peer", assembly_dir))
    deploys = [run["deploy"] for run in our_runs]
    totals = [run["start"] + run["deploy"] for run in our_runs]
    print(describe("emulator start", [run["start"] for run in our_runs]))
    print(describe("deploy (datapipe)", deploys))
    print(describe("start + deploy (datapipe)", totals))
    print(describe("whole process (datapipe)", [run["process"] for run in our_runs]))
    print(describe("deploy (moto CloudFormation)", [run["deploy"] for run in peer_runs]))
    print(describe("whole process (moto CloudFormation)", [run["process"] for run in peer_runs]))
    print(f"  datapipe deployed:            {our_runs[0]['deployed']}")
    print(f"  moto CloudFormation deployed: {peer_runs[0]['deployed']}")
    print(f"ratio deploy datapipe / moto CloudFormation: {ratio(deploys, [run['deploy'] for run in peer_runs]):.2f}")
    verdict = "met" if statistics.median(totals) < GOAL_SECONDS else "NOT met"
    print(f"goal start + deploy < {GOAL_SECONDS:.0f} s: {verdict}")


if __name__ == "__main__":
    main(sys.argv[1:])
