"""`datapipe local up` and `datapipe demo`: the whole app deployed into the embedded emulator on this machine."""

from __future__ import annotations

import json
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from datapipe.aws import LOCAL_STATE_FILE, local_state_record, read_local_state, write_local_state
from datapipe.errors import DatapipeError
from datapipe.local.assembly import read_assembly
from datapipe.local.demo import EmrProgress, print_summary, summarize_run
from datapipe.local.deploy import CREATED, Deployment
from datapipe.local.logs import internal_logs
from datapipe.naming import Naming
from datapipe.project import find_project_dir
from datapipe.synth import synthesize
from datapipe.workflows import FINAL_STATUSES, console_reporter, follow_execution, start_execution, state_machine_arn

if TYPE_CHECKING:
    from datapipe.local.server import Emulator

EMR_WORKFLOW = "emr-workflow"
LOCAL_LOG_FILE = Path(".datapipe") / "local.log"  # in the project, next to the state file
DEMO_LOG_FILE = Path(".datapipe") / "demo.log"
DEMO_INPUT = {"CreateCluster": True, "TerminateCluster": True}


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


def _deployment_rows(deployment: Deployment) -> list[tuple[str, list[str], list[str]]]:
    """Per stack: its name, what was created (`3 Lambda::Function`), what was not emulated (logical id and type)."""
    rows = []
    for stack in deployment.stacks:
        created = Counter(r.resource_type.split("::", 1)[1] for r in stack.resources if r.status == CREATED)
        missing = [f"{r.logical_id} ({r.resource_type})" for r in stack.resources if r.status != CREATED]
        rows.append((stack.stack_name, [f"{count} {kind}" for kind, count in sorted(created.items())], missing))
    return rows


def _deployment_table(deployment: Deployment) -> Table:
    table = Table(title="Deployed into the emulator", title_justify="left")
    # Never cut: a name cut short cannot be copied into a command (the table is shown only when everything fits).
    table.add_column("stack", no_wrap=True)
    table.add_column("resources", no_wrap=True)
    table.add_column("not emulated", no_wrap=True)
    for stack_name, created, missing in _deployment_rows(deployment):
        table.add_row(stack_name, "\n".join(created), "\n".join(missing) or "-")
    return table


def _print_deployment(console: Console, deployment: Deployment) -> None:
    """A table on a terminal wide enough for every value whole; otherwise one stack per line, nothing cut."""
    table = _deployment_table(deployment)
    unbounded = console.options.update_width(1_000_000)  # the table's natural width, not clamped to the console's
    if console.is_terminal and console.measure(table, options=unbounded).maximum <= console.width:
        console.print(table)
        return
    for stack_name, created, missing in _deployment_rows(deployment):
        line = f"stack {stack_name}: {', '.join(created) or 'nothing created'}"
        if missing:
            line += f"; not emulated: {', '.join(missing)}"
        console.print(line, highlight=False, soft_wrap=True)


def _export_lines(env: dict[str, str]) -> list[str]:
    return [f"export {name}={value}" for name, value in env.items()] + ["unset AWS_PROFILE AWS_SESSION_TOKEN"]


def _refuse_second_emulator(path: Path) -> None:
    """One `local up` per project: a second would take over the state file that commands use to find the first."""
    if not path.is_file():
        return
    try:
        running = read_local_state(path)
    except DatapipeError:
        return  # unreadable: left behind by a crash, and about to be replaced
    if running is not None:
        raise DatapipeError(
            f"an emulator already runs for this project at {running['endpoint_url']} (see {path}); "
            "stop it (Ctrl-C) or use it",
            exit_code=1,
        )


@contextmanager
def _stop_on_signal() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM while the block runs (handlers installed before anything is announced)."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
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
@click.option(
    "--wait-scale",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Multiply the time of every Wait state and of .sync EMR checks (0.1: ten times faster; 1: real time).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the endpoint, environment and deployment as JSON.")
@click.option("--verbose", is_flag=True, help="Show the emulator's internal log on the console too.")
def up(port: int, region: str | None, assembly: Path | None, wait_scale: float, as_json: bool, verbose: bool) -> None:
    """Start the emulator, deploy every stack into it, and keep it running until interrupted.

    The emulator's internal messages go to .datapipe/local.log in the project (and to stderr with --verbose).
    """
    from datapipe.local.extensions import EmulatorOptions
    from datapipe.local.server import Emulator

    project_dir = find_project_dir()
    path = project_dir / LOCAL_STATE_FILE
    _refuse_second_emulator(path)
    console = Console(stderr=as_json)
    with (
        internal_logs(project_dir / LOCAL_LOG_FILE, verbose=verbose) as log_file,
        _assembly(project_dir, assembly, console) as assembly_dir,
        Emulator(
            port=port,
            region=region or read_assembly(assembly_dir).region,
            options=EmulatorOptions(wait_scale=wait_scale),
        ) as emulator,
    ):
        started = time.monotonic()
        deployment = emulator.deploy(assembly_dir)
        record = local_state_record(
            endpoint_url=emulator.endpoint_url, region=emulator.region, project_dir=project_dir
        )
        # Signals are caught before the endpoint is announced: whoever reads it may stop the emulator at once.
        with _stop_on_signal() as stop:
            # Other commands find the emulator through this file (datapipe.aws); it goes when the emulator does.
            write_local_state(path, record)
            try:
                if as_json:
                    click.echo(json.dumps({**record, "env": emulator.env(), "deployment": deployment.to_json()}))
                else:
                    _announce(console, emulator, deployment, time.monotonic() - started, log_file)
                while not stop.wait(0.5):
                    pass
            finally:
                path.unlink(missing_ok=True)
    console.print("Emulator stopped.")


def _announce(console: Console, emulator: Emulator, deployment: Deployment, seconds: float, log_file: Path) -> None:
    _print_deployment(console, deployment)
    console.print(f"Deployed in {seconds:.1f} s")
    console.print(f"\nEmulator listening on [bold]{emulator.endpoint_url}[/bold]", highlight=False)
    console.print("Point boto3, the AWS CLI and datapipe at it with:")
    for line in _export_lines(emulator.env()):
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    console.print(
        "then e.g. `aws stepfunctions list-state-machines` "
        f"(or add --endpoint-url {emulator.endpoint_url}). Ctrl-C stops the emulator.",
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"The emulator's internal log: {log_file} (--verbose shows it here)", highlight=False, soft_wrap=True)


def _project_naming(project_dir: Path) -> Naming:
    """Physical names as the app's stacks give them: prefix and stage from cdk.json's context."""
    context = json.loads((project_dir / "cdk.json").read_text()).get("context", {})
    return Naming(prefix=context.get("prefix", "datapipe"), stage=context.get("stage", "dev"))


@click.command()
@click.option(
    "--assembly",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Deploy this cloud assembly instead of synthesizing the app.",
)
@click.option("--timeout", type=click.FloatRange(min=1), default=300.0, show_default=True, help="Seconds to wait.")
@click.option("--json", "as_json", is_flag=True, help="Print the run's summary as JSON at the end.")
@click.option("--verbose", is_flag=True, help="Show the emulator's internal log on the console too.")
def demo(assembly: Path | None, timeout: float, as_json: bool, verbose: bool) -> None:
    """Deploy into the emulator, run the EMR workflow (new cluster, terminated at the end), show it, summarize it.

    The emulator's internal messages go to .datapipe/demo.log in the project (and to stderr with --verbose).
    """
    from datapipe.local.server import Emulator

    project_dir = find_project_dir()
    console = Console(stderr=as_json)
    with (
        internal_logs(project_dir / DEMO_LOG_FILE, verbose=verbose),
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
        sfn, emr = emulator.client("stepfunctions"), emulator.client("emr")
        arn = state_machine_arn(sfn, EMR_WORKFLOW, _project_naming(project_dir))
        execution_arn = start_execution(sfn, arn, DEMO_INPUT)
        started_at = sfn.describe_execution(executionArn=execution_arn)["startDate"]
        console.print(
            f"Started {arn.rsplit(':', 1)[-1]} with {json.dumps(DEMO_INPUT)}", highlight=False, soft_wrap=True
        )
        # In --json mode stdout carries only the summary; what in-process Lambda code prints goes to stderr.
        with (
            redirect_stdout(sys.stderr) if as_json else nullcontext(),
            console.status("starting") as status,
            EmrProgress(emr, console, since=started_at, status=status),
        ):
            result = follow_execution(
                sfn, execution_arn, console_reporter(console), poll_seconds=0.25, timeout_seconds=timeout
            )
        if result.status not in FINAL_STATUSES:
            sfn.stop_execution(executionArn=execution_arn, error="datapipe.DemoTimeout", cause=f"{timeout:.0f} s")
            raise DatapipeError(
                f"demo: the execution was still {result.status} after --timeout {timeout:.0f} s; stopped it",
                exit_code=1,
            )
        summary = summarize_run(sfn, emr, result)
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
