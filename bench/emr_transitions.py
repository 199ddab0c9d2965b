"""State transitions and wall time of a happy EMR workflow run against the seed's, in the same run, on the emulator.

The peer is the seed's machine: our synthesized definition with every state the seed does not have taken out
(validation, cleanup, summary, the Wait_For_* states of event-driven waits, whose tasks become .sync again), the
Catch and Retry fields removed and Wrapping_Up ending the run again; the infra tests check that the remaining states
and transitions are the seed's. Both run side by side with
`{"CreateCluster": true, "TerminateCluster": true}` on an emulator holding the Storage and EmrWorkflow stacks.
Run: `python -m bench emr_transitions` (about 40 s: a synthesis, a deployment and two 20 s runs).
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from datapipe.naming import Naming
from datapipe.project import find_project_dir
from datapipe.synth import synthesize
from datapipe.workflows import follow_execution, start_execution, state_machine_arn

STACKS = ("Storage", "EmrWorkflow")
SEED_START = "Should_Create_Cluster"
HAPPY_INPUT = {"CreateCluster": True, "TerminateCluster": True}
SEED_STATES = {
    "Should_Create_Cluster", "Create_A_Cluster", "Merge_Results", "Enable_Termination_Protection",
    "Add_Steps_Parallel", "Step_One", "Wait_10_Seconds", "Step_Two (async)", "Wait_Another_10_Seconds",
    "Cancel_Step_Two", "Step_Three", "Disable_Termination_Protection", "Should_Terminate_Cluster",
    "Terminate_Cluster", "Wrapping_Up",
}


def seed_shape(definition: dict[str, Any]) -> dict[str, Any]:
    """The seed's machine inside ours: only the seed's states, no Catch or Retry, Wrapping_Up ends the run."""
    seed = copy.deepcopy(definition)
    seed["StartAt"] = SEED_START
    seed.pop("TimeoutSeconds", None)
    _as_sync(seed["States"])
    seed["States"] = {name: state for name, state in seed["States"].items() if name in SEED_STATES}
    for state in seed["States"].values():
        state.pop("Catch", None)
        state.pop("Retry", None)
        for branch in state.get("Branches", []):
            for inner in branch["States"].values():
                inner.pop("Catch", None)
                inner.pop("Retry", None)
    # Two of the seed's transitions lead through states we added: the handed-in cluster check and the choice before
    # Disable_Termination_Protection.
    seed["States"]["Step_Three"]["Next"] = "Disable_Termination_Protection"
    for rule in seed["States"]["Should_Create_Cluster"]["Choices"]:
        if rule["BooleanEquals"] is False:
            rule["Next"] = "Enable_Termination_Protection"
    wrapping_up = seed["States"]["Wrapping_Up"]
    wrapping_up.pop("Next", None)
    wrapping_up["End"] = True
    return seed


def _as_sync(states: dict[str, Any]) -> None:
    """The seed waited with .sync: a task followed by its Wait_For_* state (emr.waitMode=events) becomes .sync again."""
    for state in states.values():
        for branch in state.get("Branches", []):
            _as_sync(branch["States"])
        wait = states.get(state.get("Next", ""), {})
        if "waitForTaskToken" in wait.get("Resource", ""):
            state["Resource"] += ".sync"
            state.pop("Next")
            state.update({"Next": wait["Next"]} if "Next" in wait else {"End": True})


def only_stacks(assembly: Path, keep: tuple[str, ...], into: Path) -> Path:
    """A copy of the cloud assembly that deploys only the `keep` stacks (and their assets)."""
    shutil.copytree(assembly, into)
    manifest = json.loads((into / "manifest.json").read_text())
    artifacts = manifest["artifacts"]
    for name in list(artifacts):
        kind = artifacts[name].get("type")
        if (kind == "aws:cloudformation:stack" and name not in keep) or (
            name.endswith(".assets") and name.removesuffix(".assets") not in keep
        ):
            del artifacts[name]
    for artifact in artifacts.values():
        if "dependencies" in artifact:
            artifact["dependencies"] = [d for d in artifact["dependencies"] if d in artifacts]
    (into / "manifest.json").write_text(json.dumps(manifest))
    return into


def main() -> None:
    from datapipe.local.extensions import EmulatorOptions
    from datapipe.local.server import Emulator

    project_dir = find_project_dir(Path(__file__).parent)
    with tempfile.TemporaryDirectory(prefix="bench-emr-") as folder:
        assembly = synthesize(project_dir, Path(folder) / "full", {"account": "123456789012", "region": "eu-west-1"})
        deployable = only_stacks(assembly, STACKS, Path(folder) / "emr")
        # The seed's .sync checks at 1/100 of Step Functions' cadence (0.6 s): the figure is transitions, not waiting.
        options = EmulatorOptions(time_scale=0.2, sync_check_scale=0.01)
        with Emulator(region="eu-west-1", options=options) as emulator:
            emulator.deploy(deployable)
            sfn = emulator.client("stepfunctions")
            ours = state_machine_arn(sfn, "emr-workflow", Naming())
            described = sfn.describe_state_machine(stateMachineArn=ours)
            seed = sfn.create_state_machine(
                name="bench-seed-emr-workflow",
                definition=json.dumps(seed_shape(json.loads(described["definition"]))),
                roleArn=described["roleArn"],
            )["stateMachineArn"]
            started = time.monotonic()
            runs = {label: start_execution(sfn, arn, HAPPY_INPUT) for label, arn in (("seed", seed), ("ours", ours))}
            results = {label: follow_execution(sfn, arn, poll_seconds=0.2) for label, arn in runs.items()}
            elapsed = time.monotonic() - started
    for label, result in results.items():
        took = f"{result.seconds:.1f} s" if result.seconds is not None else "?"
        print(f"{label + ' happy run':<20} {result.status:<10} {result.states_entered:3d} states entered  {took}")
    seed_count, our_count = results["seed"].states_entered, results["ours"].states_entered
    print(f"ratio ours/seed transitions: {our_count / seed_count:.2f}x ({our_count} vs {seed_count}); "
          f"both runs in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
