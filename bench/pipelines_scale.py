"""Many pipelines: synthesis time and peak memory for 10, 100 and 1,000 generated definitions, the largest template,
and the emulator's deploy of 100.

Each synthesis is the whole app (`app.py`, cdk-nag included) in a new process, with `pipelines.folder` pointing at
generated definitions: copies of the two examples in pipelines/, alternately. The figures per pipeline are the
growth over the same app with no definition, divided by the count, so that the fixed cost (Node, aws_cdk, the other
stacks) does not hide it. Peak memory is the largest resident size of the process tree (Python and jsii's Node)
sampled every 20 ms.

Goals (issue 16): every template under half of CloudFormation's limits (1,000,000 bytes, 500 resources); at most
100 ms and 2 MiB of peak memory per pipeline; 100 pipelines deployed on the emulator in under 60 s.
Run: `python -m bench pipelines_scale` (COUNTS=10,100 in the environment to choose the counts).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from datapipe.project import find_project_dir, jsii_environment

PROJECT_DIR = find_project_dir(Path(__file__).parent)
SAMPLES = ("emr-word-count.json", "shell-with-dependencies.json")
TEMPLATE_BYTES_LIMIT = 1_000_000
TEMPLATE_RESOURCES_LIMIT = 500
GOAL_SECONDS_PER_PIPELINE = 0.100
GOAL_BYTES_PER_PIPELINE = 2 * 1024 * 1024
GOAL_DEPLOY_SECONDS = 60.0
DEPLOY_COUNT = 100
MEASURABLE_COUNT = 100
CONTEXT = {"account": "123456789012", "region": "eu-west-1", "stage": "scale"}
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def definition_name(index: int) -> str:
    return f"scale-{index:04d}"


def write_definitions(folder: Path, count: int, *, first: int = 0) -> list[str]:
    """`count` definitions, copies of the examples taken in turn, named scale-NNNN; their pipeline names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index in range(first, first + count):
        name = definition_name(index)
        shutil.copy(PROJECT_DIR / "pipelines" / SAMPLES[index % len(SAMPLES)], folder / f"{name}.json")
        names.append(name)
    return names


def _tree_rss(root: int) -> int:
    """Resident bytes of a process and all its descendants (0 for those that are gone)."""
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
            for task in Path(f"/proc/{pid}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def synthesize(folder: Path, outdir: Path) -> tuple[float, int]:
    """(seconds, peak bytes of the process tree) of one synthesis of the app with the definitions in `folder`."""
    context = {**CONTEXT, "pipelines.folder": str(folder)}
    code = (f"import sys; sys.path.insert(0, {str(PROJECT_DIR)!r}); from app import build_app; "
            f"build_app(context={context!r}, outdir={str(outdir)!r}).synth()")
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code], env=jsii_environment(), cwd=PROJECT_DIR,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    while process.poll() is None:
        peak = max(peak, _tree_rss(process.pid))
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"synthesis of {folder} failed: {(process.stderr.read() if process.stderr else '')[-2000:]}")
    return seconds, peak


def template_figures(outdir: Path) -> dict[str, tuple[int, int]]:
    """Stack id -> (template bytes, resources)."""
    return {path.name.removesuffix(".template.json"): (path.stat().st_size,
                                                       len(json.loads(path.read_text()).get("Resources", {})))
            for path in outdir.glob("*.template.json")}


def describe_largest(figures: dict[str, tuple[int, int]], label: str) -> str:
    by_bytes = max(figures, key=lambda stack: figures[stack][0])
    by_count = max(figures, key=lambda stack: figures[stack][1])
    size, resources = figures[by_bytes][0], figures[by_count][1]
    return (f"{label}: most bytes {by_bytes} {size} ({100 * size / TEMPLATE_BYTES_LIMIT:.1f} % of the limit), "
            f"most resources {by_count} {resources} ({100 * resources / TEMPLATE_RESOURCES_LIMIT:.1f} %) -> "
            f"{verdict(size <= TEMPLATE_BYTES_LIMIT / 2 and resources <= TEMPLATE_RESOURCES_LIMIT / 2)}")


def deploy_seconds(outdir: Path) -> tuple[float, int]:
    """(seconds, stacks) to deploy a synthesized assembly on a new emulator."""
    from datapipe.local.server import Emulator

    with Emulator(region=CONTEXT["region"], export_environment=False) as emulator:
        started = time.perf_counter()
        deployment = emulator.deploy(outdir)
        return time.perf_counter() - started, len(deployment.stacks)


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def main() -> None:
    text = os.environ.get("COUNTS", "10,100,1000")
    if not all(part.isdigit() and 0 < int(part) <= 10_000 for part in text.split(",")):
        raise SystemExit(f"Error: COUNTS must be whole numbers from 1 to 10000 separated by commas, got {text!r}")
    counts = [int(part) for part in text.split(",")]
    with tempfile.TemporaryDirectory() as workdir:
        root = Path(workdir)
        base_seconds, base_peak = synthesize(root / "none", root / "out-0")
        print(f"{'no definition':<16} synth {base_seconds:7.2f} s  peak {base_peak / 2**20:7.0f} MiB")
        for count in counts:
            folder = root / f"defs-{count}"
            write_definitions(folder, count)
            outdir = root / f"out-{count}"
            seconds, peak = synthesize(folder, outdir)
            per_second = (seconds - base_seconds) / count
            per_bytes = max(0, peak - base_peak) / count
            figures = template_figures(outdir)
            print(f"{count:>5} definitions  synth {seconds:7.2f} s  peak {peak / 2**20:7.0f} MiB  "
                  f"stacks {len(figures)}")
            growth = (f"per pipeline: {per_second * 1000:6.1f} ms (goal <= {GOAL_SECONDS_PER_PIPELINE * 1000:.0f}),  "
                      f"{per_bytes / 2**20:5.2f} MiB (goal <= {GOAL_BYTES_PER_PIPELINE / 2**20:.0f})")
            if count < MEASURABLE_COUNT:  # a few pipelines' growth is within the fixed cost's run-to-run variation
                print(f"{'':16} {growth} -> too few pipelines to tell growth from the fixed cost's variation")
            else:
                print(f"{'':16} {growth} -> {verdict(per_second <= GOAL_SECONDS_PER_PIPELINE)}, "
                      f"{verdict(per_bytes <= GOAL_BYTES_PER_PIPELINE)}")
            print(f"{'':16} {describe_largest(figures, 'every template')}")
            pipelines_only = {stack: f for stack, f in figures.items() if stack.startswith("Pipeline")}
            print(f"{'':16} {describe_largest(pipelines_only, 'pipelines and shared pipelines stack')}")
            if count == DEPLOY_COUNT:
                deployed, deployed_stacks = deploy_seconds(outdir)
                print(f"{'':16} emulator deploy: {deployed:.1f} s for {deployed_stacks} stacks "
                      f"({deployed / count * 1000:.0f} ms per pipeline; goal < {GOAL_DEPLOY_SECONDS:.0f} s) -> "
                      f"{verdict(deployed < GOAL_DEPLOY_SECONDS)}")


if __name__ == "__main__":
    main()
