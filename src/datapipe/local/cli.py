"""`datapipe local up` and `datapipe demo`: the whole app deployed into the embedded emulator on this machine."""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from datapipe.errors import DatapipeError
from datapipe.local.assembly import read_assembly
from datapipe.local.demo import ExecutionPrinter, FollowTimeout, follow_execution, print_summary, summarize_run
from datapipe.local.deploy import CREATED, Deployment
from datapipe.naming import Naming
from datapipe.project import find_project_dir
from datapipe.synth import synthesize

STATE_FILE = Path(".datapipe") / "local.json"
EMR_WORKFLOW = "emr-workflow"
DEMO_INPUT = {"CreateCluster": True, "TerminateCluster": True}


def state_file(project_dir: Path) -> Path:
    """Where a running `datapipe local up` records its endpoint, so other commands can find it."""
    return project_dir / STATE_FILE


def running_emulator(project_dir: Path | None = None) -> dict[str, Any] | None:
    """The endpoint and environment of the emulator `datapipe local up` runs for this project, if one does."""
    path = state_file(project_dir or find_project_dir())
    try:
        recorded = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return recorded if isinstance(recorded, dict) else None


@contextmanager
def _assembly(project_dir: Path, given: Path | None, console: Console) -> Iterator[Path]:
    """The assembly to deploy: the one given, or a fresh synthesis in a temporary folder."""
    if given is not None:
        if not (given / "manifest.json").is_file():
            raise DatapipeError(f"option '--assembly': {given} is not a cloud assembly (no manifest.json)")
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="datapipe-assembly-") as folder:
        started = time.monotonic()
        with console.status("Synthesizing the app..."):
            synthesize(project_dir, Path(folder))
        console.print(f"Synthesized the app in {time.monotonic() - started:.1f} s")
        yield Path(folder)


def _deployment_table(deployment: Deployment) -> Table:
    table = Table(title="Deployed into the emulator", title_justify="left")
    table.add_column("stack")
    table.add_column("resources")
    table.add_column("not emulated")
    for stack in deployment.stacks:
        created = Counter(r.resource_type.split("::", 1)[1] for r in stack.resources if r.status == CREATED)
        missing = [f"{r.logical_id} ({r.resource_type})" for r in stack.resources if r.status != CREATED]
        table.add_row(
            stack.stack_name,
            ", ".join(f"{count} {kind}" for kind, count in sorted(created.items())),
            "\n".join(missing) or "-",
        )
    return table


def _export_lines(env: dict[str, str]) -> list[str]:
    return [f"export {name}={value}" for name, value in env.items()] + ["unset AWS_PROFILE AWS_SESSION_TOKEN"]


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@click.group()
def local() -> None:
    """Run the app on this machine, in the embedded AWS emulator."""


@local.command()
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port to listen on [a free one].")
@click.option(
    "--region", default=None, help="Region of the emulator [the assembly's, else AWS_REGION, else us-east-1]."
)
@click.option(
    "--assembly",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Deploy this cloud assembly instead of synthesizing the app.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the endpoint, environment and deployment as JSON.")
def up(port: int, region: str | None, assembly: Path | None, as_json: bool) -> None:
    """Start the emulator, deploy every stack into it, and keep it running until interrupted."""
    from datapipe.local.server import Emulator

    project_dir = find_project_dir()
    console = Console(stderr=as_json)
    with (
        _assembly(project_dir, assembly, console) as assembly_dir,
        Emulator(port=port, region=region or read_assembly(assembly_dir).region) as emulator,
    ):
        started = time.monotonic()
        deployment = emulator.deploy(assembly_dir)
        record = {"endpointUrl": emulator.endpoint_url, "region": emulator.region, "pid": os.getpid()}
        path = state_file(project_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2) + "\n")
        try:
            if as_json:
                click.echo(json.dumps({**record, "env": emulator.env(), "deployment": deployment.to_json()}))
            else:
                console.print(_deployment_table(deployment))
                console.print(f"Deployed in {time.monotonic() - started:.1f} s")
                console.print(f"\nEmulator listening on [bold]{emulator.endpoint_url}[/bold]", highlight=False)
                console.print("Point boto3, the AWS CLI and datapipe at it with:")
                for line in _export_lines(emulator.env()):
                    console.print(f"  {line}", highlight=False, soft_wrap=True)
                console.print(
                    "then e.g. `aws stepfunctions list-state-machines` "
                    f"(or add --endpoint-url {emulator.endpoint_url}). Ctrl-C stops the emulator.",
                    highlight=False,
                )
            _wait_for_signal()
        finally:
            path.unlink(missing_ok=True)
    console.print("Emulator stopped.")


def _emr_workflow_arn(emulator: Any, deployment: Deployment, project_dir: Path) -> str:
    """The EMR workflow's state machine, named as the stacks name it (prefix and stage from cdk.json)."""
    context = json.loads((project_dir / "cdk.json").read_text()).get("context", {})
    name = Naming(prefix=context.get("prefix", "datapipe"), stage=context.get("stage", "dev")).state_machine(
        EMR_WORKFLOW
    )
    for resource in deployment.resources_of_type("AWS::StepFunctions::StateMachine"):
        if resource.physical_id.endswith(f":stateMachine:{name}"):
            return resource.physical_id
    deployed = ", ".join(
        r.physical_id.rsplit(":", 1)[-1] for r in deployment.resources_of_type("AWS::StepFunctions::StateMachine")
    )
    raise DatapipeError(f"state machine '{name}' is not in the app (deployed: {deployed or 'none'})", exit_code=1)


@click.command()
@click.option(
    "--assembly",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Deploy this cloud assembly instead of synthesizing the app.",
)
@click.option("--timeout", type=click.FloatRange(min=1), default=300.0, show_default=True, help="Seconds to wait.")
@click.option("--json", "as_json", is_flag=True, help="Print the run's summary as JSON at the end.")
def demo(assembly: Path | None, timeout: float, as_json: bool) -> None:
    """Deploy into the emulator, run the EMR workflow (new cluster, terminated at the end), show it, summarize it."""
    from datapipe.local.server import Emulator

    project_dir = find_project_dir()
    console = Console(stderr=as_json)
    with (
        _assembly(project_dir, assembly, console) as assembly_dir,
        Emulator(region=read_assembly(assembly_dir).region) as emulator,
    ):
        started = time.monotonic()
        deployment = emulator.deploy(assembly_dir)
        console.print(
            f"Emulator on {emulator.endpoint_url}: {len(deployment.stacks)} stacks, "
            f"{len(deployment.resources)} resources deployed in {time.monotonic() - started:.1f} s",
            highlight=False,
        )
        state_machine_arn = _emr_workflow_arn(emulator, deployment, project_dir)
        sfn, emr = emulator.client("stepfunctions"), emulator.client("emr")
        execution = sfn.start_execution(stateMachineArn=state_machine_arn, input=json.dumps(DEMO_INPUT))
        started_at = sfn.describe_execution(executionArn=execution["executionArn"])["startDate"]
        console.print(f"Started {state_machine_arn.rsplit(':', 1)[-1]} with {json.dumps(DEMO_INPUT)}", highlight=False)
        printer = ExecutionPrinter(console=console, started=started_at, emr=emr)
        try:
            description = follow_execution(
                sfn, execution["executionArn"], on_event=printer.on_event, on_poll=printer.on_poll, timeout=timeout
            )
        except FollowTimeout as error:
            sfn.stop_execution(executionArn=execution["executionArn"], error="Timeout", cause=str(error))
            raise DatapipeError(f"demo: {error}; stopped it (--timeout {timeout:.0f})", exit_code=1) from None
        summary = summarize_run(sfn, emr, description, printer.cluster_id)
        print_summary(console, summary)
        if as_json:
            click.echo(json.dumps(summary.to_json()))
    if summary.status != "SUCCEEDED":
        raise DatapipeError(f"demo: the execution ended {summary.status}", exit_code=1)
    if summary.cluster_state != "TERMINATED":
        raise DatapipeError(
            f"demo: cluster {summary.cluster_id or '(none found)'} is {summary.cluster_state or 'unknown'}, "
            "not TERMINATED",
            exit_code=1,
        )
