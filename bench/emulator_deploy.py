"""Starting the embedded emulator and deploying the whole app, against moto's own CloudFormation, in the same run.

Goal: start + deploy of the whole app in under 10 s (the e2e session fixture and `datapipe local up` pay it).
The peer is what moto offers out of the box: `cloudformation create_stack` of every template of the same
assembly, in the same dependency order, on the same emulator. Besides the time, both sides report how much of
the app they deployed (stacks completed, resources, state machines that can be executed), because the peer does
not deploy all of it; the time ratio alone would flatter it.

Run: `python -m bench.emulator_deploy [--repeat N] [--assembly DIR]` (synthesizes the app when no --assembly).
"""

from __future__ import annotations

import argparse
import statistics
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.emulator_deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side [3]")
    parser.add_argument("--assembly", type=Path, default=None, help="a cloud assembly [synthesize the app]")
    arguments = parser.parse_args(argv or [])
    with tempfile.TemporaryDirectory(prefix="bench-assembly-") as folder:
        assembly_dir = arguments.assembly or synthesize(find_project_dir(), Path(folder))
        region = read_assembly(assembly_dir).region
        our_runs = [ours(assembly_dir, region) for _ in range(arguments.repeat)]
        peer_runs = [peer(assembly_dir, region) for _ in range(arguments.repeat)]
    starts = [start for start, _, _ in our_runs]
    deploys = [deploy for _, deploy, _ in our_runs]
    totals = [start + deploy for start, deploy, _ in our_runs]
    print(describe("emulator start", starts))
    print(describe("deploy (datapipe)", deploys))
    print(describe("start + deploy (datapipe)", totals))
    print(describe("deploy (moto CloudFormation)", [seconds for seconds, _ in peer_runs]))
    print(f"  datapipe deployed:           {our_runs[0][2]}")
    print(f"  moto CloudFormation deployed: {peer_runs[0][1]}")
    print(f"ratio deploy datapipe / moto CloudFormation: {ratio(deploys, [s for s, _ in peer_runs]):.2f}")
    verdict = "met" if statistics.median(totals) < GOAL_SECONDS else "NOT met"
    print(f"goal start + deploy < {GOAL_SECONDS:.0f} s: {verdict}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
