"""`datapipe ls`, `runs`, `status`, `follow`, `stop`, `rerun` and `logs`: what Data Pipeline's list-pipelines,
list-runs, set-status and its console's attempt logs gave, for the deployed workflows.

RUN is an execution ARN, `WORKFLOW/NAME` (e.g. `emr-workflow/run-1a2b`) or an execution name that only one deployed
workflow has. Requests go where every datapipe command sends them (see datapipe.aws): `--endpoint-url`,
AWS_ENDPOINT_URL, a running `datapipe local`, else AWS.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import click

from datapipe.aws import Target, client, resolve_target
from datapipe.errors import DatapipeError
from datapipe.naming import Naming
from datapipe.operate import runs as operations
from datapipe.operate.history import TaskRecord
from datapipe.operate.logs import CloudWatchTail, LogSource, log_sources, read_log
from datapipe.schedules import _check_name as check_name
from datapipe.workflows import _call_aws, _escape, _with_target_options, follow_and_print

MAX_LIMIT = 10_000
# How much of an error's cause a table shows; --json and `status` give it whole.
CAUSE_WIDTH = 100


class Session:
    """The target, naming and clients of one command."""

    def __init__(self, prefix: str, stage: str, endpoint_url: str | None, region: str | None) -> None:
        check_name("--prefix", prefix)
        check_name("--stage", stage)
        self.naming = Naming(prefix=prefix, stage=stage)
        self.target: Target = resolve_target(endpoint_url, region)
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            try:
                self._clients[service] = client(service, self.target)
            except ValueError as error:  # botocore rejects a malformed endpoint URL with ValueError
                raise DatapipeError(f"--endpoint-url: {error}") from None
        return self._clients[service]

    @property
    def sfn(self) -> Any:
        return self.client("stepfunctions")

    def call(self, action: str, work: Callable[[], Any]) -> Any:
        """Run `work`, turning an AWS error into one line that names `action` and where it was sent."""
        return _call_aws(action, self.target, work)

    def run_arn(self, run: str) -> str:
        operations.split_run(run)  # a malformed RUN is refused before any request
        return str(self.call("finding the run", lambda: operations.resolve_run(self.sfn, self.naming, run)))


def _json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")(command)


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def _console() -> Any:
    from rich.console import Console

    return Console(width=200)


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def _short(text: str, width: int = CAUSE_WIDTH) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _state_and_error(run: operations.RunView) -> tuple[str, str]:
    """The failed state and a one-line error for a table: the error name and the cause's last line (a task runner's
    cause ends with the command's last stderr line, the most telling one)."""
    state, error, cause = (
        (run.failure.state, run.failure.error, run.failure.cause) if run.failure else ("", run.error, run.cause)
    )
    last_line = next((line for line in reversed(cause.splitlines()) if line.strip()), "")
    return state, _short(f"{error}: {last_line}" if error and last_line else error or last_line)


# -- ls -------------------------------------------------------------------------------------------------------------


@click.command("ls")
@_json_option
@_with_target_options
def list_workflows(as_json: bool, prefix: str, stage: str, endpoint_url: str | None, region: str | None) -> None:
    """List the deployed workflows: kind, what starts them, and their last run."""
    session = Session(prefix, stage, endpoint_url, region)
    triggers = session.call("reading schedules and rules", partial(_triggers_if_allowed, session))
    workflows = session.call(
        "listing workflows", lambda: operations.list_workflows(session.sfn, session.naming, triggers)
    )
    if not workflows:
        raise DatapipeError(
            f"no workflow named {session.naming.name('*')} is deployed on {session.target.describe()}: deploy the "
            "app, or check --prefix, --stage and --region",
            exit_code=1,
        )
    if as_json:
        _echo_json({"workflows": [w.to_json() for w in workflows]})
        return
    from rich.table import Table

    table = Table(title=f"Workflows of {session.naming.name('*')} on {session.target.describe()}")
    for column in ("workflow", "kind", "started by", "last run", "status", "started"):
        table.add_column(column)
    for workflow in workflows:
        last = workflow.last_run
        table.add_row(
            workflow.name,
            workflow.kind,
            "?" if workflow.triggers is None else _escape("\n".join(workflow.triggers)) or "-",
            last.name if last else "-",
            last.status if last else "never run",
            _when(last.started) if last else "-",
        )
    _console().print(table)


def _triggers_if_allowed(session: Session) -> dict[str, list[str]] | None:
    """What starts each workflow; None (with a warning) when this identity may not read schedules or rules, so that
    someone who may only read Step Functions still gets the list."""
    from botocore.exceptions import ClientError

    try:
        return operations.triggers_by_workflow(
            session.naming, scheduler=session.client("scheduler"), events=session.client("events")
        )
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code not in ("AccessDenied", "AccessDeniedException"):
            raise
        click.echo(f"Warning: cannot read schedules and rules ({code}): what starts each workflow is unknown", err=True)
        return None


# -- runs -----------------------------------------------------------------------------------------------------------


@click.command("runs")
@click.argument("workflow")
@click.option(
    "--status", type=click.Choice(operations.STATUSES, case_sensitive=False), default=None, help="Only runs in it."
)
@click.option("--since", default=None, help="Only runs started since: 30m, 12h, 2d, 1w, or an ISO 8601 time.")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=20, show_default=True, help="At most this many.")
@_json_option
@_with_target_options
def list_runs(
    workflow: str,
    status: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
    prefix: str,
    stage: str,
    endpoint_url: str | None,
    region: str | None,
) -> None:
    """List the runs of WORKFLOW, newest first; a failed run with the state that failed and its error."""
    since_moment = operations.parse_since(since) if since is not None else None
    session = Session(prefix, stage, endpoint_url, region)
    arn = session.call("finding the workflow", lambda: operations.find_workflow(session.sfn, session.naming, workflow))
    found = session.call(
        "listing runs",
        lambda: operations.list_runs(
            session.sfn, arn, status=status.upper() if status else None, since=since_moment, limit=limit
        ),
    )
    if as_json:
        _echo_json({"workflow": workflow, "runs": [run.to_json() for run in found]})
        return
    from rich.table import Table

    table = Table(title=f"Runs of {workflow} (newest first)")
    for column in ("name", "status", "started", "duration", "failed state", "error"):
        table.add_column(column, overflow="fold")
    for run in found:
        state, error = _state_and_error(run)
        # An error's text is the task's: printed as it is, never read as rich markup.
        row = (run.name, run.status, _when(run.started), _duration(run.seconds()), _escape(state), _escape(error))
        table.add_row(*row)
    console = _console()
    console.print(table)
    if not found:
        console.print("No runs" + (" match" if status or since else "") + ".")


# -- status and follow ----------------------------------------------------------------------------------------------


@click.command("status")
@click.argument("run")
@_json_option
@_with_target_options
def status(run: str, as_json: bool, prefix: str, stage: str, endpoint_url: str | None, region: str | None) -> None:
    """Show one RUN: its status, times, and for a failed run the state that failed with its error."""
    session = Session(prefix, stage, endpoint_url, region)
    arn = session.run_arn(run)
    view = session.call("reading the run", lambda: operations.describe_run(session.sfn, arn))
    if as_json:
        _echo_json(view.to_json())
        return
    console = _console()
    rows = [
        ("run", view.name),
        ("workflow", view.workflow.removeprefix(session.naming.name(""))),
        ("status", view.status),
        ("started", _when(view.started)),
        ("stopped", _when(view.stopped)),
        ("duration", _duration(view.seconds())),
        ("arn", view.arn),
    ]
    if view.current_states:
        rows.append(("in", ", ".join(view.current_states)))
    if view.redrive_count:
        rows.append(("redriven", f"{view.redrive_count} time(s)"))
    if view.failure is not None:
        rows += [("failed state", view.failure.state), ("state error", view.failure.error),
                 ("state cause", view.failure.cause)]
    if view.error or view.cause:
        rows += [("error", view.error), ("cause", view.cause)]
    for label, value in rows:
        if value:
            console.print(f"[bold]{label:>12}[/] {_escape(value)}")


@click.command("follow")
@click.argument("run")
@click.option("--poll", default=1.0, show_default=True, type=click.FloatRange(0.05, 60), help="Seconds between polls.")
@_json_option
@_with_target_options
def follow(
    run: str, poll: float, as_json: bool, prefix: str, stage: str, endpoint_url: str | None, region: str | None
) -> None:
    """Attach to RUN and show each state until it ends (what `start --follow` shows); exit 1 unless it succeeded."""
    session = Session(prefix, stage, endpoint_url, region)
    arn = session.run_arn(run)
    console = _console()
    if not as_json:
        console.print(f"Following {_escape(arn)} on {_escape(session.target.describe())}")
    result = follow_and_print(session.sfn, session.target, arn, as_json=as_json, poll=poll, console=console)
    if not result.succeeded:
        click.get_current_context().exit(1)


# -- stop and rerun -------------------------------------------------------------------------------------------------


@click.command("stop")
@click.argument("run")
@click.option("--cause", default="stopped with datapipe stop", show_default=True, help="Why, recorded on the run.")
@_json_option
@_with_target_options
def stop(
    run: str, cause: str, as_json: bool, prefix: str, stage: str, endpoint_url: str | None, region: str | None
) -> None:
    """Stop RUN. A cluster the run created is then terminated by the workflow's reaper."""
    if len(cause) > 32768:  # StopExecution's limit on cause
        raise DatapipeError(f"--cause must be at most 32768 characters, got {len(cause)}")
    session = Session(prefix, stage, endpoint_url, region)
    arn = session.run_arn(run)
    view = session.call("stopping the run", lambda: operations.stop_run(session.sfn, arn, cause))
    if as_json:
        _echo_json(view.to_json())
        return
    _console().print(
        f"Stopped {_escape(view.name)} ({view.status}). The reaper terminates a cluster it created; "
        "`datapipe status` shows the run."
    )


@click.command("rerun")
@click.argument("run")
@click.option("--from-start", is_flag=True, help="Start a new run with the same input instead of redriving.")
@_json_option
@_with_target_options
def rerun(
    run: str, from_start: bool, as_json: bool, prefix: str, stage: str, endpoint_url: str | None, region: str | None
) -> None:
    """Resume a failed, timed-out or stopped RUN where it failed (a redrive); else start it again with its input."""
    session = Session(prefix, stage, endpoint_url, region)
    arn = session.run_arn(run)
    outcome = session.call("rerunning", lambda: operations.rerun(session.sfn, arn, from_start=from_start))
    if as_json:
        _echo_json(outcome.to_json())
        return
    console = _console()
    if outcome.action == "redriven":
        console.print(f"Redriven {_escape(outcome.execution_arn)}: it resumes at the state that failed.")
    else:
        console.print(f"Started {_escape(outcome.execution_arn)} with the same input ({_escape(outcome.reason)}).")


# -- logs -----------------------------------------------------------------------------------------------------------


@click.command("logs")
@click.argument("run")
@click.option("--state", "state_name", default=None, help="The state whose logs to show [the state that failed].")
@click.option("--follow", "keep_following", is_flag=True, help="Wait while the run goes on; show logs as they appear.")
@click.option("--poll", default=2.0, show_default=True, type=click.FloatRange(0.05, 60), help="Seconds between polls.")
@_json_option
@_with_target_options
def logs(
    run: str,
    state_name: str | None,
    keep_following: bool,
    poll: float,
    as_json: bool,
    prefix: str,
    stage: str,
    endpoint_url: str | None,
    region: str | None,
) -> None:
    """Show the logs behind the failed state of RUN (or --state NAME), error output first.

    A worker group's task: the attempt's stderr and stdout. An EMR step: stderr and controller (gzipped in the log
    bucket). A Batch job: its log stream. A Lambda function: its log group while the task ran.
    """
    session = Session(prefix, stage, endpoint_url, region)
    arn = session.run_arn(run)
    match = operations.EXECUTION_ARN.fullmatch(arn)
    account, region_of_run = (match["account"], match["region"]) if match else ("", "")
    shown: set[str] = set()
    collected: list[dict[str, Any]] = []
    printers: dict[str, LogPrinter] = {}  # CloudWatch logs followed while their task runs
    while True:
        history = session.call("reading the run's history", lambda: operations.read_history(session.sfn, arn))
        status = session.call("reading the run", lambda: session.sfn.describe_execution(executionArn=arn))["status"]
        final = not keep_following or status != "RUNNING"
        state = _chosen_state(history, state_name, status, run, waiting=not final)
        records = history.tasks(state) if state else []
        for record in reversed(records):  # the newest attempt first: the one that failed
            running = record.ended is None and not final
            sources = session.call("finding the logs", partial(_sources_of, session, record, account, region_of_run))
            for source in sources:
                if source.location in shown or (running and not source.log_group):
                    continue  # done; or a file that its task writes when it ends
                label = _attempt_label(record, records)
                printer = printers.setdefault(source.location, LogPrinter(session, source, label, as_json=as_json))
                found = printer.read()
                if running:
                    continue  # a CloudWatch log, printed as it grows
                if found or final:
                    shown.add(source.location)
                    collected.append(printer.close(found))
        if final:
            break
        time.sleep(poll)
    if not records:
        raise DatapipeError(_no_task_message(state, history.states_with_tasks()), exit_code=1)
    if as_json:
        _echo_json({"run": arn, "state": state, "logs": collected})
    if not any(entry["found"] for entry in collected):
        raise DatapipeError(
            f"state {state}: no log found (a task runner uploads an attempt's logs when it ends; EMR copies step "
            "logs to the log bucket every few minutes)",
            exit_code=1,
        )


def _sources_of(session: Session, record: TaskRecord, account: str, region: str) -> list[LogSource]:
    return log_sources(
        record,
        naming=session.naming,
        account=account,
        region=region,
        emr=session.client("emr"),
        batch=session.client("batch"),
        s3=session.client("s3"),
    )


class LogPrinter:
    """Prints one log as it streams (a title first), or collects it for --json; read again, a CloudWatch log prints
    only what is new."""

    def __init__(self, session: Session, source: LogSource, label: str, *, as_json: bool) -> None:
        self.session, self.source, self.label, self.as_json = session, source, label, as_json
        self._tail = CloudWatchTail(source) if source.log_group else None
        self._pieces: list[str] = []
        self._titled = False
        self._ends_line = True

    def _title(self) -> None:
        if not self._titled and not self.as_json:
            click.echo(f"==> {self.label}: {self.source.label} ({self.source.location}) <==")
        self._titled = True

    def _write(self, text: str) -> None:
        if self.as_json:
            self._pieces.append(text)
            return
        self._title()
        if text:
            click.echo(text, nl=False)
            self._ends_line = text.endswith("\n")

    def read(self) -> bool:
        """Print what is there (or new); False when the log does not exist (yet)."""
        s3, logs = self.session.client("s3"), self.session.client("logs")
        if self._tail is not None:
            tail = self._tail
            return bool(self.session.call(f"reading {self.source.location}", lambda: tail.read(logs, self._write)))
        return bool(self.session.call(
            f"reading {self.source.location}", lambda: read_log(self.source, s3=s3, logs=logs, write=self._write)
        ))

    def close(self, found: bool) -> dict[str, Any]:
        if not self.as_json:
            if not self._titled:
                self._title()
                click.echo("" if found else "(not in the log bucket or log group yet)")
            elif not self._ends_line:
                click.echo()  # the next title starts on its own line
        text = "".join(self._pieces) if self.as_json else None
        return {**self.source.to_json(), "state": self.label, "found": found, "text": text}


def _attempt_label(record: TaskRecord, records: list[TaskRecord]) -> str:
    number = records.index(record) + 1
    return f"{record.state} (attempt {number} of {len(records)})" if len(records) > 1 else record.state


def _chosen_state(history: Any, state_name: str | None, status: str, run: str, *, waiting: bool) -> str:
    """The state whose logs to show: the one named, the one that failed, or (while the run goes on) the newest state
    that ran a task. "" while `waiting` for a running run to get there."""
    running = status == "RUNNING"
    if state_name is not None:
        if state_name not in history.state_names() and not (running and waiting):
            known = ", ".join(history.state_names()) or "none yet"
            raise DatapipeError(f"--state {state_name!r}: run {run} entered no such state (states: {known})")
        return state_name
    failure = None if running else history.failure()
    if failure is not None:
        return str(failure.state)
    with_tasks = history.states_with_tasks()
    if running and with_tasks:
        return str(with_tasks[-1])
    if running and waiting:
        return ""
    raise DatapipeError(
        f"run {run} is {status} and no state failed: name one with --state "
        f"(states that ran tasks: {', '.join(with_tasks) or 'none yet'})"
    )


def _no_task_message(state: str, with_tasks: list[str]) -> str:
    return (
        f"state {state} ran no task with logs (a Choice, Pass, Wait or Fail state, or a call without logs); "
        f"states that ran tasks: {', '.join(with_tasks) or 'none'}"
    )
