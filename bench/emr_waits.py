"""How late the EMR workflow notices EMR's changes: event-driven waits against the native `.sync`, in the same run.

Two deployments of the workflow share one emulator: `datapipe-dev-emr-workflow` with `emr.waitMode=events` (the
default) and `datapipe-sync-emr-workflow` with `emr.waitMode=sync`. Both run `{"CreateCluster": true,
"TerminateCluster": true}` side by side. For each wait of the seed's workflow (the cluster ready, Step_One and
Step_Three ended, the cluster terminated) the delay is the time from EMR's change (the emulator's own record: the
cluster's ready and end times, the step's end time) to the state that waited leaving (`TaskStateExited` in the
execution's history).

Scale: the emulator checks a `.sync` task when Step Functions does, every 60 s for 10 minutes, then every 300 s, times
`wait_scale` (WAIT_SCALE below, 1/20: a check every 3 s). A sync delay at real time is the measured one divided by
WAIT_SCALE. Nothing on the event path is scaled (EMR's event, EventBridge's delivery, the Lambda, its callback), so an
events delay is compared as measured; the emulator runs the Lambda warm and in-process, so AWS's delivery latency and
a cold start are not in it.
Run: `python -m bench emr_waits` (about a minute: a synthesis, a deployment and two runs side by side).
"""

from __future__ import annotations

import datetime
import tempfile
from pathlib import Path
from typing import Any

from datapipe.naming import Naming
from datapipe.workflows import follow_execution, start_execution

WAIT_SCALE = 0.05
GOAL_SECONDS = 5.0  # events mode: each change noticed within this, at real time
HAPPY_INPUT = {"CreateCluster": True, "TerminateCluster": True}
MODES = {"events": Naming(), "sync": Naming(stage="sync")}
# Each wait of the seed's workflow: the state that waits in each mode, and the change it waits for.
WAITS = (
    ("Create_A_Cluster", "Wait_For_Cluster_Ready", "cluster ready (WAITING)"),
    ("Step_One", "Wait_For_Step_One", "Step_One ended (COMPLETED)"),
    ("Step_Three", "Wait_For_Step_Three", "Step_Three ended (COMPLETED)"),
    ("Terminate_Cluster", "Wait_For_Cluster_Termination", "cluster TERMINATED"),
)
STEP_NAMES = {"Step_One": "The first step", "Step_Three": "The third step"}


def synthesize_both(outdir: Path) -> Path:
    """The workflow alone, once per wait mode, in one cloud assembly (no other stack is needed to run it)."""
    import json

    import aws_cdk as cdk

    from datapipe.project import find_project_dir
    from stacks.config import load_settings
    from stacks.emr_workflow import EmrWorkflow

    context = json.loads((find_project_dir(Path(__file__).parent) / "cdk.json").read_text())["context"]
    app = cdk.App(context=context, outdir=str(outdir))
    for mode, naming in MODES.items():
        stack = cdk.Stack(app, f"EmrWorkflow-{mode}", stack_name=naming.stack("emr-workflow"),
                          env=cdk.Environment(account="123456789012", region="eu-west-1"))
        EmrWorkflow(stack, "EmrWorkflow", naming=naming, settings=load_settings({"emr.waitMode": mode}).emr,
                    removal_policy=cdk.RemovalPolicy.DESTROY)
    app.synth()
    return outdir


def emr_changes(emr: Any, account: str, region: str, execution_arn: str) -> dict[str, datetime.datetime | None]:
    """When EMR changed, as the emulator recorded it, for the cluster this execution created (found by its tag)."""
    from moto.emr.models import emr_backends

    from stacks.emr_workflow import EXECUTION_TAG

    tag = {"Key": EXECUTION_TAG, "Value": execution_arn}
    (cluster_id,) = [c["Id"] for c in emr.list_clusters()["Clusters"]
                     if tag in emr.describe_cluster(ClusterId=c["Id"])["Cluster"].get("Tags", [])]
    cluster = emr_backends[account][region].clusters[cluster_id]  # the API rounds its times to the second
    steps = {step.name: step for step in cluster.steps}
    return {
        "Create_A_Cluster": cluster.ready_datetime,
        "Step_One": steps[STEP_NAMES["Step_One"]].end_date_time,
        "Step_Three": steps[STEP_NAMES["Step_Three"]].end_date_time,
        "Terminate_Cluster": cluster.end_datetime,
    }


def moved_on(sfn: Any, execution_arn: str) -> dict[str, datetime.datetime]:
    """When each state left, from the execution's history (the first exit of each name)."""
    exits: dict[str, datetime.datetime] = {}
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        for event in page["events"]:
            if event["type"].endswith("StateExited"):
                exits.setdefault(event["stateExitedEventDetails"]["name"], event["timestamp"])
    return exits


def delays(sfn: Any, emr: Any, account: str, region: str, mode: str, execution_arn: str) -> dict[str, float]:
    changed = emr_changes(emr, account, region, execution_arn)
    exited = moved_on(sfn, execution_arn)
    found = {}
    for task, wait_state, change in WAITS:
        state = wait_state if mode == "events" else task
        when = changed[task]
        if when is None:
            raise SystemExit(f"the {mode} run's EMR has no time for: {change}")
        found[task] = (exited[state] - when.astimezone(datetime.UTC)).total_seconds()
    return found


def main() -> None:
    from datapipe.local.extensions import EmulatorOptions
    from datapipe.local.server import Emulator

    with tempfile.TemporaryDirectory(prefix="bench-emr-waits-") as folder:
        assembly = synthesize_both(Path(folder) / "assembly")
        with Emulator(region="eu-west-1", options=EmulatorOptions(wait_scale=WAIT_SCALE)) as emulator:
            emulator.deploy(assembly)
            sfn = emulator.client("stepfunctions")
            runs = {
                mode: start_execution(sfn, naming.state_machine_arn("emr-workflow", account=emulator.account,
                                                                    region=emulator.region), HAPPY_INPUT)
                for mode, naming in MODES.items()
            }
            results = {mode: follow_execution(sfn, arn, poll_seconds=0.2, timeout_seconds=300)
                       for mode, arn in runs.items()}
            for mode, result in results.items():
                if result.status != "SUCCEEDED":
                    raise SystemExit(f"the {mode} run ended {result.status}: {result.error} {result.cause}")
            emr = emulator.client("emr")
            measured = {mode: delays(sfn, emr, emulator.account, emulator.region, mode, arn)
                        for mode, arn in runs.items()}

    print(f"wait_scale {WAIT_SCALE}: .sync checks every {60 * WAIT_SCALE:g} s (60 s at real time); "
          "events delays are not scaled")
    print(f"{'wait':<20} {'EMR change':<30} {'events':>9} {'sync':>9} {'sync at real time':>18}")
    for task, _, change in WAITS:
        events, sync = measured["events"][task], measured["sync"][task]
        print(f"{task:<20} {change:<30} {events:8.2f}s {sync:8.2f}s {sync / WAIT_SCALE:17.1f}s")
    worst = max(measured["events"].values())
    total_events, total_sync = sum(measured["events"].values()), sum(measured["sync"].values())
    print(f"total of the four waits: events {total_events:.2f} s, sync {total_sync / WAIT_SCALE:.1f} s at real time")
    verdict = "met" if worst <= GOAL_SECONDS else "NOT met"
    print(f"goal: events mode within {GOAL_SECONDS:g} s of each change (at real-time scale): {verdict} "
          f"(worst {worst:.2f} s)")


if __name__ == "__main__":
    main()
