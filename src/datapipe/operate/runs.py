"""Deployed workflows and their runs: finding, listing, stopping and rerunning them.

Functions take a boto3 Step Functions client (and a `Naming` for what the deployment named), so that the commands,
tests and other tools share them. Work grows with what is asked for: a listing reads only the pages it shows.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from datapipe.errors import DatapipeError
from datapipe.jsontext import shown
from datapipe.naming import Naming
from datapipe.operate.history import History, StateFailure
from datapipe.workflows import EXECUTION_NAME, WORKFLOW_NAME, history_events

EXECUTION_ARN = re.compile(
    r"^arn:(?P<partition>[\w-]+):states:(?P<region>[\w-]+):(?P<account>\d{12}):execution:"
    r"(?P<machine>[\w-]{1,80}):(?P<name>[\w-]{1,80})$"
)
STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")
# Step Functions redrives a run that failed, timed out or was stopped (RedriveExecution); never one that succeeded.
REDRIVABLE_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")
UNSUCCESSFUL_STATUSES = REDRIVABLE_STATUSES
SINCE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
LIST_PAGE = 100  # ListExecutions' own page limit is 1000; a page of 100 answers `runs --limit 20` in one call
STOP_ERROR = "datapipe.Stopped"
RERUN_NAME_INFIX = "-rerun-"  # in the name of a run `rerun` starts anew (imported pipelines do not watch its lateness)


@dataclass(frozen=True)
class RunView:
    """One execution as the commands show it."""

    name: str
    arn: str
    workflow: str  # the state machine's name
    status: str
    started: datetime | None
    stopped: datetime | None
    error: str = ""
    cause: str = ""
    failure: StateFailure | None = None
    redrive_count: int = 0
    current_states: tuple[str, ...] = ()  # of a running run, when read from its history

    def seconds(self, now: datetime | None = None) -> float | None:
        if self.started is None:
            return None
        end = self.stopped or (now or datetime.now(UTC))
        return max(0.0, (end - self.started).total_seconds())

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "executionArn": self.arn,
            "workflow": self.workflow,
            "status": self.status,
            "startDate": self.started.isoformat() if self.started else None,
            "stopDate": self.stopped.isoformat() if self.stopped else None,
            "durationSeconds": self.seconds(),
            "error": self.error,
            "cause": self.cause,
            "failedState": self.failure.state if self.failure else None,
            "stateError": self.failure.error if self.failure else None,
            "stateCause": self.failure.cause if self.failure else None,
            "redriveCount": self.redrive_count,
            "currentStates": list(self.current_states),
        }


@dataclass(frozen=True)
class WorkflowView:
    name: str  # without the deployment's prefix, e.g. emr-workflow
    arn: str
    kind: str  # emr, transform, worker-group, imported or other
    triggers: tuple[str, ...] | None  # None: not known (schedules and rules could not be read)
    last_run: RunView | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "stateMachineArn": self.arn,
            "kind": self.kind,
            "triggers": None if self.triggers is None else list(self.triggers),
            "lastRun": self.last_run.to_json() if self.last_run else None,
        }


def run_view(
    summary: Mapping[str, Any], failure: StateFailure | None = None, current_states: tuple[str, ...] = ()
) -> RunView:
    """A RunView of a ListExecutions item or a DescribeExecution answer."""
    arn = str(summary["executionArn"])
    match = EXECUTION_ARN.fullmatch(arn)
    return RunView(
        name=str(summary.get("name") or (match["name"] if match else arn)),
        arn=arn,
        workflow=match["machine"] if match else str(summary.get("stateMachineArn", "")).rpartition(":")[2],
        status=str(summary["status"]),
        started=_aware(summary.get("startDate")),
        stopped=_aware(summary.get("stopDate")),
        error=str(summary.get("error") or ""),
        cause=str(summary.get("cause") or ""),
        failure=failure,
        redrive_count=int(summary.get("redriveCount") or 0),
        current_states=current_states,
    )


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# -- workflows ------------------------------------------------------------------------------------------------------


def deployed_state_machines(sfn: Any, naming: Naming) -> list[dict[str, Any]]:
    """The state machines named with the deployment's prefix, by name."""
    prefix = naming.name("")
    machines = [
        machine
        for page in sfn.get_paginator("list_state_machines").paginate()
        for machine in page.get("stateMachines", [])
        if str(machine["name"]).startswith(prefix)
    ]
    return sorted(machines, key=lambda machine: str(machine["name"]))


def workflow_kind(short_name: str, definition: str) -> str:
    """What a workflow is, from its name (imported pipelines) or what its definition calls."""
    if short_name.startswith("pipeline-"):
        return "imported"
    if ":activity:" in definition:
        return "worker-group"
    if "elasticmapreduce:" in definition:
        return "emr"
    if "batch:submitJob" in definition:
        return "transform"
    return "other"


def list_workflows(sfn: Any, naming: Naming, triggers: Mapping[str, list[str]] | None) -> list[WorkflowView]:
    """Every deployed workflow with its kind, what starts it (`triggers` by short name, None when not known) and its
    newest run."""
    views = []
    for machine in deployed_state_machines(sfn, naming):
        arn = str(machine["stateMachineArn"])
        short = str(machine["name"]).removeprefix(naming.name(""))
        definition = str(sfn.describe_state_machine(stateMachineArn=arn).get("definition", ""))
        newest = sfn.list_executions(stateMachineArn=arn, maxResults=1).get("executions", [])
        views.append(
            WorkflowView(
                name=short,
                arn=arn,
                kind=workflow_kind(short, definition),
                triggers=None if triggers is None else tuple(triggers.get(short, [])),
                last_run=run_view(newest[0]) if newest else None,
            )
        )
    return views


def triggers_by_workflow(naming: Naming, *, scheduler: Any, events: Any) -> dict[str, list[str]]:
    """`{workflow: ["schedule emr-daily: cron(...)", "rule new-objects", ...]}` from `datapipe schedule`'s reading."""
    from datapipe.schedules import read_triggers

    found = read_triggers(naming, scheduler=scheduler, events=events)
    starts: dict[str, list[str]] = {}
    for schedule in found.schedules:
        if schedule.target.kind == "workflow":
            paused = "" if schedule.state == "ENABLED" else f" ({schedule.state.lower()})"
            starts.setdefault(schedule.target.name, []).append(
                f"schedule {schedule.name}: {schedule.expression}{paused}"
            )
    for rule in found.rules:
        for target in rule.targets:
            if target.kind == "workflow":
                paused = "" if rule.state == "ENABLED" else f" ({rule.state.lower()})"
                starts.setdefault(target.name, []).append(f"rule {rule.name}{paused}")
    return starts


def find_workflow(sfn: Any, naming: Naming, workflow: str) -> str:
    """The state machine ARN of WORKFLOW (a short name such as emr-workflow, or an ARN)."""
    from datapipe.workflows import state_machine_arn

    return state_machine_arn(sfn, workflow, naming)


# -- runs -----------------------------------------------------------------------------------------------------------


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`2d`, `36h`, `90m`, `1w` ago, or an ISO 8601 time (UTC unless it says otherwise)."""
    now = now or datetime.now(UTC)
    match = re.fullmatch(r"(\d{1,6})([smhdw])", text.strip())
    if match:
        try:
            return now - timedelta(**{SINCE_UNITS[match[2]]: int(match[1])})
        except OverflowError:
            raise DatapipeError(f"--since {text!r} reaches back before the year 1") from None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise DatapipeError(
            f"--since must be an age such as 30m, 12h, 2d, 1w or an ISO 8601 time, got {shown(text)}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def list_runs(
    sfn: Any,
    state_machine_arn: str,
    *,
    status: str | None = None,
    since: datetime | None = None,
    limit: int = 20,
    with_failures: bool = True,
) -> list[RunView]:
    """The newest `limit` runs (started after `since`), newest first; failed ones with the state that failed.

    ListExecutions answers newest first, so reading stops at the first page that reaches `limit` or `since`.
    """
    runs: list[RunView] = []
    token: str | None = None
    while len(runs) < limit:
        page = sfn.list_executions(
            stateMachineArn=state_machine_arn,
            maxResults=min(LIST_PAGE, limit - len(runs)),
            **({"statusFilter": status} if status else {}),
            **({"nextToken": token} if token else {}),
        )
        reached_since = False
        for summary in page.get("executions", []):
            started = _aware(summary.get("startDate"))
            if since is not None and started is not None and started < since:
                reached_since = True
                break
            runs.append(run_view(summary))
            if len(runs) >= limit:
                break
        token = page.get("nextToken")
        if reached_since or not token:
            break
    if with_failures:
        runs = [describe_run(sfn, run.arn) if run.status in UNSUCCESSFUL_STATUSES else run for run in runs]
    return runs


def read_history(sfn: Any, execution_arn: str) -> History:
    return History(history_events(sfn, execution_arn))


def describe_run(sfn: Any, execution_arn: str) -> RunView:
    """One run, with the state that failed when it did not succeed, or the states it is in while it runs (both read
    from its history)."""
    described = sfn.describe_execution(executionArn=execution_arn)
    if described["status"] in UNSUCCESSFUL_STATUSES:
        return run_view(described, read_history(sfn, execution_arn).failure())
    if described["status"] == "RUNNING":
        return run_view(described, current_states=tuple(read_history(sfn, execution_arn).open_states()))
    return run_view(described)


def split_run(run: str) -> tuple[str, str]:
    """(workflow, name) of RUN when it is not an ARN; the workflow is "" when RUN is a bare name."""
    workflow, _, name = run.rpartition("/")
    if EXECUTION_ARN.fullmatch(run):
        return "", run
    if not EXECUTION_NAME.fullmatch(name) or (workflow and not WORKFLOW_NAME.fullmatch(workflow)):
        raise DatapipeError(
            "RUN must be an execution ARN, WORKFLOW/NAME or an execution name (letters, digits, '-', '_'), "
            f"got {shown(run)}"
        )
    return workflow, name


def resolve_run(sfn: Any, naming: Naming, run: str) -> str:
    """The execution ARN of RUN: an execution ARN, `WORKFLOW/NAME`, or a NAME unique among the deployed workflows."""
    if EXECUTION_ARN.fullmatch(run):
        return run
    workflow, name = split_run(run)
    machines = deployed_state_machines(sfn, naming)
    if workflow:
        machines = [m for m in machines if m["name"] == naming.state_machine(workflow)]
        if not machines:
            raise DatapipeError(
                f"RUN {run!r}: no workflow named {workflow} is deployed (see datapipe ls)", exit_code=1
            )
    found = [arn for machine in machines if (arn := _execution_of(sfn, str(machine["stateMachineArn"]), name))]
    if not found:
        where = f"workflow {workflow}" if workflow else f"any workflow of {naming.name('*')}"
        raise DatapipeError(f"RUN {run!r}: no run named {name} in {where} (see datapipe runs WORKFLOW)", exit_code=1)
    if len(found) > 1:
        choices = ", ".join(f"{EXECUTION_ARN.fullmatch(a)['machine'].removeprefix(naming.name(''))}/{name}"  # type: ignore[index]
                            for a in found)
        raise DatapipeError(f"RUN {run!r} names a run of several workflows; say which: {choices}")
    return found[0]


def _execution_of(sfn: Any, state_machine_arn: str, name: str) -> str | None:
    """The ARN of execution `name` of the state machine, when it exists (one DescribeExecution, not a listing)."""
    from botocore.exceptions import ClientError

    arn = state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
    try:
        sfn.describe_execution(executionArn=arn)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("ExecutionDoesNotExist", "ResourceNotFound"):
            return None
        raise
    return arn


# -- acting on a run ------------------------------------------------------------------------------------------------


def stop_run(sfn: Any, execution_arn: str, cause: str) -> RunView:
    """Stop a running execution; the workflow's reaper then removes any cluster it created."""
    described = sfn.describe_execution(executionArn=execution_arn)
    if described["status"] != "RUNNING":
        raise DatapipeError(
            f"run {described.get('name', execution_arn)} is {described['status']}, not RUNNING: nothing to stop",
            exit_code=1,
        )
    sfn.stop_execution(executionArn=execution_arn, error=STOP_ERROR, cause=cause)
    return run_view(sfn.describe_execution(executionArn=execution_arn))


@dataclass(frozen=True)
class Rerun:
    action: str  # "redriven" (the same execution resumes) or "started" (a new execution with the same input)
    execution_arn: str
    reason: str  # why a new run was started rather than a redrive

    def to_json(self) -> dict[str, str]:
        return {"action": self.action, "executionArn": self.execution_arn, "reason": self.reason}


def rerun(sfn: Any, execution_arn: str, *, from_start: bool = False) -> Rerun:
    """Redrive a failed, timed-out or stopped run from where it failed; else start a new run with its input.

    Step Functions decides what can be redriven (`redriveStatus`: standard workflows, within 14 days of the stop,
    fewer than 1,000 redrives); a run it refuses (ExecutionNotRedrivable) is started again instead, and says why.
    A run that ended in a Fail state (an imported activity's onFail path, a cleanup) is refused with a DatapipeError:
    Step Functions would redrive it, at that Fail state, which fails again; a new run repeats what had succeeded, so
    the user chooses it (`from_start`).
    """
    described = sfn.describe_execution(executionArn=execution_arn)
    status = str(described["status"])
    name = str(described.get("name") or execution_arn.rpartition(":")[2])
    if status in ("RUNNING", "PENDING_REDRIVE"):
        raise DatapipeError(f"run {name} is {status}: follow it, or stop it first (datapipe stop)", exit_code=1)
    if from_start:
        reason = "--from-start"
    elif status not in REDRIVABLE_STATUSES:
        reason = f"a {status} run cannot be redriven"
    elif "redriveStatus" not in described:  # Step Functions gives it for every standard execution
        raise DatapipeError(
            f"run {name}: the endpoint gives no redriveStatus, so it cannot redrive; rerun with --from-start to "
            "start a new run with the same input",
            exit_code=1,
        )
    elif described["redriveStatus"] == "NOT_REDRIVABLE":
        reason = str(described.get("redriveStatusReason") or "Step Functions says it cannot be redriven")
    elif status == "FAILED" and (fail_state := _ending_fail_state(sfn, execution_arn)) is not None:
        raise DatapipeError(
            f"run {name} ended in its Fail state {fail_state}, where a redrive would resume and fail again; rerun "
            "with --from-start to start a new run with the same input (if that input is what failed, start a new run "
            "with another)",
            exit_code=1,
        )
    else:
        refused = _redrive(sfn, execution_arn)
        if refused is None:
            return Rerun("redriven", execution_arn, "")
        reason = refused
    state_machine_arn = str(described["stateMachineArn"])
    new_name = f"{name[:60]}{RERUN_NAME_INFIX}{uuid.uuid4().hex[:8]}"
    started = sfn.start_execution(
        stateMachineArn=state_machine_arn, name=new_name, input=str(described.get("input") or "{}")
    )
    return Rerun("started", str(started["executionArn"]), reason)


def _ending_fail_state(sfn: Any, execution_arn: str) -> str | None:
    """The Fail state a failed run ended in, or None: the last state it entered, read from the end of its history
    (one page, whatever the history's length). A redrive resumes at the state that failed (RedriveExecution), and a
    Fail state only fails: such a run cannot be resumed where it went wrong, only started again."""
    events = sfn.get_execution_history(executionArn=execution_arn, reverseOrder=True, maxResults=100)["events"]
    for event in events:  # newest first
        if str(event.get("type", "")).endswith("StateEntered"):
            if event["type"] != "FailStateEntered":
                return None
            return str(event.get("stateEnteredEventDetails", {}).get("name") or "")
    return None


def _redrive(sfn: Any, execution_arn: str) -> str | None:
    """Redrive the run; None when done, else why Step Functions refused it (the run changed since described)."""
    from botocore.exceptions import ClientError

    try:
        sfn.redrive_execution(executionArn=execution_arn, clientToken=uuid.uuid4().hex)
    except ClientError as error:
        details = error.response.get("Error", {})
        if details.get("Code") == "ExecutionNotRedrivable":
            return str(details.get("Message") or "Step Functions says it cannot be redriven")
        raise
    return None
