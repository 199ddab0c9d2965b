"""`datapipe start` and `datapipe graph`: run a deployed workflow and follow it, or draw its definition.

The following and summary functions take a boto3 Step Functions client and an execution ARN, and report through a
callback, so that other commands (`datapipe demo`) reuse them:
- `follow_execution(sfn, arn, on_event)` polls the history until the execution ends and returns its `RunResult`;
- `console_reporter(console)` is an `on_event` that prints each state as it is entered and left, with rich;
- `print_result(console, result)` prints the final status, error and output.
"""

from __future__ import annotations

import difflib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from datapipe.aws import Target, client, explain, resolve_target
from datapipe.errors import DatapipeError
from datapipe.jsontext import parse_json, shown
from datapipe.naming import Naming

FINAL_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
EXECUTION_ENDED = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionTimedOut": "TIMED_OUT",
    "ExecutionAborted": "ABORTED",
}
WORKFLOW_NAME = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
EXECUTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
LISTED_WORKFLOWS = 10  # deployed workflows named in the error for one that is not: enough to spot the right one
STATE_MACHINE_ARN = re.compile(r"^arn:[\w-]+:states:[\w-]+:\d{12}:stateMachine:[\w-]{1,80}$")


# ---------------------------------------------------------------------------------------------------------------------
# Following an execution


@dataclass(frozen=True)
class WorkflowEvent:
    """One thing that happened in an execution, as `datapipe start --follow` shows it."""

    kind: str  # "entered", "exited", "failed" (a task or state error), "retried", "ended"
    name: str  # the state's name; for "ended", the final status
    timestamp: datetime
    detail: str = ""  # an error and its cause, for "failed" and for a failed "ended"

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "timestamp": self.timestamp.isoformat(), "detail": self.detail}


@dataclass
class RunResult:
    """How an execution ended."""

    execution_arn: str
    status: str
    started: datetime | None = None
    stopped: datetime | None = None
    error: str = ""
    cause: str = ""
    output: Any = None
    states_entered: int = 0
    events: list[WorkflowEvent] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.stopped is None:
            return None
        return (self.stopped - self.started).total_seconds()

    def to_json(self) -> dict[str, Any]:
        return {
            "executionArn": self.execution_arn,
            "status": self.status,
            "startDate": self.started.isoformat() if self.started else None,
            "stopDate": self.stopped.isoformat() if self.stopped else None,
            "error": self.error,
            "cause": self.cause,
            "output": self.output,
            "statesEntered": self.states_entered,
            "events": [e.to_json() for e in self.events],
        }


def history_events(sfn: Any, execution_arn: str, after_id: int = 0) -> Iterator[dict[str, Any]]:
    """The execution's history events with an id above `after_id`, oldest first.

    Pages are asked for newest first, and reading stops at the first event already seen, so that following a long
    execution does not re-read its whole history on every poll. A server that ignores `reverseOrder` (moto does)
    is read to the end instead.
    """
    newer: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = sfn.get_execution_history(
            executionArn=execution_arn, maxResults=1000, reverseOrder=True, **({"nextToken": token} if token else {})
        )
        events = page.get("events", [])
        newest_first = len(events) < 2 or events[0]["id"] > events[-1]["id"]
        newer += [event for event in events if event["id"] > after_id]
        token = page.get("nextToken")
        if not token or (newest_first and events and events[-1]["id"] <= after_id):
            return iter(sorted(newer, key=lambda event: int(event["id"])))


def to_workflow_event(event: Mapping[str, Any]) -> WorkflowEvent | None:
    """The user-visible meaning of one history event, or None for bookkeeping events."""
    kind = str(event.get("type", ""))
    when = event.get("timestamp")
    timestamp = when if isinstance(when, datetime) else datetime.now()
    if kind.endswith("StateEntered"):
        return WorkflowEvent("entered", event["stateEnteredEventDetails"]["name"], timestamp)
    if kind.endswith("StateExited"):
        return WorkflowEvent("exited", event["stateExitedEventDetails"]["name"], timestamp)
    if kind in EXECUTION_ENDED:
        details = _details(event)
        return WorkflowEvent("ended", EXECUTION_ENDED[kind], timestamp, _error_text(details))
    if kind.endswith("Failed") or kind.endswith("TimedOut"):
        details = _details(event)
        text = _error_text(details)
        return WorkflowEvent("failed", kind, timestamp, text) if text else None
    return None


def follow_execution(
    sfn: Any,
    execution_arn: str,
    on_event: Callable[[WorkflowEvent], None] | None = None,
    *,
    poll_seconds: float = 1.0,
    timeout_seconds: float | None = None,
) -> RunResult:
    """Report every new event until the execution ends; return how it ended.

    With `timeout_seconds`, stops following (not the execution) after that long and returns the status so far.
    """
    last_id = 0
    seen: list[WorkflowEvent] = []
    closing_reads = 3  # the closing history event may land just after the status changes: read a few more times
    deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    while True:
        for event in history_events(sfn, execution_arn, last_id):
            last_id = max(last_id, int(event["id"]))
            meaning = to_workflow_event(event)
            if meaning is not None:
                seen.append(meaning)
                if on_event is not None:
                    on_event(meaning)
        description = sfn.describe_execution(executionArn=execution_arn)
        ended = description["status"] in FINAL_STATUSES
        if ended and closing_reads > 0 and not any(e.kind == "ended" for e in seen):
            closing_reads -= 1
            time.sleep(min(poll_seconds, 0.2))
            continue
        if ended or (deadline is not None and time.monotonic() >= deadline):
            return _result(description, seen)
        time.sleep(poll_seconds)


def describe_result(sfn: Any, execution_arn: str) -> RunResult:
    """How an execution stands now, with the events so far (no waiting)."""
    events = [e for e in map(to_workflow_event, history_events(sfn, execution_arn)) if e is not None]
    return _result(sfn.describe_execution(executionArn=execution_arn), events)


def _result(description: Mapping[str, Any], events: list[WorkflowEvent]) -> RunResult:
    output = description.get("output")
    try:
        parsed = json.loads(output) if isinstance(output, str) else output
    except (json.JSONDecodeError, RecursionError):  # shown as the text it is
        parsed = output
    return RunResult(
        execution_arn=description["executionArn"],
        status=description["status"],
        started=description.get("startDate"),
        stopped=description.get("stopDate"),
        error=description.get("error", "") or "",
        cause=description.get("cause", "") or "",
        output=parsed,
        states_entered=sum(1 for e in events if e.kind == "entered"),
        events=events,
    )


def _details(event: Mapping[str, Any]) -> Mapping[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, Mapping):
            return value
    return {}


def _error_text(details: Mapping[str, Any]) -> str:
    error, cause = details.get("error", ""), details.get("cause", "")
    return f"{error}: {cause}" if error and cause else str(error or cause)


def console_reporter(console: Any) -> Callable[[WorkflowEvent], None]:
    """An `on_event` for `follow_execution` that prints with a rich Console."""
    styles = {"entered": "cyan", "exited": "green", "failed": "red", "ended": "bold"}
    arrows = {"entered": "→", "exited": "✓", "failed": "✗", "ended": "■"}

    def report(event: WorkflowEvent) -> None:
        style = styles.get(event.kind, "")
        if event.kind == "ended":
            style = "bold green" if event.name == "SUCCEEDED" else "bold red"
        line = f"{event.timestamp:%H:%M:%S} {arrows.get(event.kind, ' ')} {event.name}"
        console.print(f"[{style}]{_escape(line)}[/]" if style else _escape(line), soft_wrap=True)
        if event.detail and event.kind != "ended":
            console.print(f"    [dim]{_escape(event.detail)}[/]", soft_wrap=True)

    return report


def print_result(console: Any, result: RunResult) -> None:
    colour = "green" if result.succeeded else "red"
    took = f" in {result.seconds:.1f} s" if result.seconds is not None else ""
    console.print(f"[bold {colour}]{result.status}[/]{took}: {_escape(result.execution_arn)}", soft_wrap=True)
    if result.error or result.cause:
        console.print(f"[red]{_escape(_error_text({'error': result.error, 'cause': result.cause}))}[/]", soft_wrap=True)
    if result.output is not None:
        console.print_json(json.dumps(result.output, default=str))


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


# ---------------------------------------------------------------------------------------------------------------------
# Finding and starting a workflow


def state_machine_arn(sfn: Any, workflow: str, naming: Naming) -> str:
    """The ARN of the deployed workflow `workflow` (a name such as emr-workflow, or a state machine ARN)."""
    if STATE_MACHINE_ARN.fullmatch(workflow):
        return workflow
    if not WORKFLOW_NAME.fullmatch(workflow):
        raise DatapipeError(
            f"WORKFLOW must be a workflow name such as emr-workflow or a state machine ARN, got {workflow!r}"
        )
    wanted = naming.state_machine(workflow)
    deployed: dict[str, str] = {}  # short name -> ARN, of this prefix and stage
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page.get("stateMachines", []):
            if machine["name"] == wanted:
                return str(machine["stateMachineArn"])
            if machine["name"].startswith(naming.name("")):
                deployed[machine["name"].removeprefix(naming.name(""))] = machine["stateMachineArn"]
    raise DatapipeError(
        f"workflow '{workflow}': no state machine named {wanted} is deployed; "
        + _suggestion(workflow, sorted(deployed), naming),
        exit_code=1,
    )


def _suggestion(workflow: str, deployed: list[str], naming: Naming) -> str:
    """What to try instead of a workflow that is not deployed: the closest deployed name, and the others."""
    if not deployed:
        return "deploy it first"
    closest = difflib.get_close_matches(workflow, deployed, n=1, cutoff=0.6)
    listed = ", ".join(deployed[:LISTED_WORKFLOWS]) + (
        f" and {len(deployed) - LISTED_WORKFLOWS} more" if len(deployed) > LISTED_WORKFLOWS else ""
    )
    return (f"did you mean '{closest[0]}'? " if closest else "") + f"deployed: {listed}"


def parse_input(text: str) -> dict[str, Any]:
    value = parse_json(text, what="--input")
    if not isinstance(value, dict):
        raise DatapipeError(f"--input must be a JSON object, got {shown(text)}")
    return value


def start_execution(sfn: Any, arn: str, payload: Mapping[str, Any], name: str | None = None) -> str:
    response = sfn.start_execution(
        stateMachineArn=arn, name=name or f"run-{uuid.uuid4().hex[:20]}", input=json.dumps(payload)
    )
    return str(response["executionArn"])


def stepfunctions_client(endpoint_url: str | None, region: str | None) -> tuple[Any, Target]:
    target = resolve_target(endpoint_url, region)
    return client("stepfunctions", target), target


def _call_aws(action: str, target: Target, call: Callable[[], Any]) -> Any:
    """Turn the errors of an AWS call into one line naming what failed (see datapipe.aws.explain)."""
    try:
        return call()
    except Exception as error:
        explained = explain(error, target=target, doing=action)
        if explained is None:
            raise
        raise explained from None


_target_options = [
    click.option("--prefix", envvar="DATAPIPE_PREFIX", default="datapipe", show_default=True, help="Deployed prefix."),
    click.option("--stage", envvar="DATAPIPE_STAGE", default="dev", show_default=True, help="Deployed stage."),
    click.option("--endpoint-url", default=None, help="Send requests here (an emulator) instead of AWS."),
    click.option("--region", default=None, help="AWS region [the environment's, or the emulator's]."),
]


def _with_target_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_target_options):
        command = option(command)
    return command


@click.command()
@click.argument("workflow")
@click.option("--input", "input_text", default="{}", show_default=True, help="The execution input, a JSON object.")
@click.option("--name", default=None, help="Execution name [run-<random>].")
@click.option("--follow", is_flag=True, help="Show each state as it is entered and left, until the execution ends.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead of text.")
@click.option("--poll", default=1.0, show_default=True, type=click.FloatRange(0.05, 60), help="Seconds between polls.")
@_with_target_options
def start(
    workflow: str,
    input_text: str,
    name: str | None,
    follow: bool,
    as_json: bool,
    poll: float,
    prefix: str,
    stage: str,
    endpoint_url: str | None,
    region: str | None,
) -> None:
    """Start WORKFLOW (e.g. emr-workflow) with --input; with --follow, wait for it and exit 1 unless it succeeded."""
    from rich.console import Console

    payload = parse_input(input_text)
    if name is not None and not EXECUTION_NAME.fullmatch(name):
        raise DatapipeError(f"--name must be 1 to 80 letters, digits, '-' or '_', got {name!r}")
    sfn, target = stepfunctions_client(endpoint_url, region)
    naming = Naming(prefix=prefix, stage=stage)
    arn = _call_aws("finding the workflow", target, lambda: state_machine_arn(sfn, workflow, naming))
    execution_arn = _call_aws("starting the execution", target, lambda: start_execution(sfn, arn, payload, name))
    console = Console()
    if not follow:
        if as_json:
            click.echo(json.dumps({"executionArn": execution_arn, "status": "RUNNING"}))
        else:
            console.print(f"Started {_escape(execution_arn)} on {_escape(target.describe())}", soft_wrap=True)
        return
    if not as_json:
        console.print(f"Started {_escape(execution_arn)} on {_escape(target.describe())}", soft_wrap=True)
    result = follow_and_print(sfn, target, execution_arn, as_json=as_json, poll=poll, console=console)
    if not result.succeeded:
        click.get_current_context().exit(1)


def follow_and_print(
    sfn: Any, target: Target, execution_arn: str, *, as_json: bool, poll: float, console: Any
) -> RunResult:
    """What `start --follow` shows (each state, then the result; or one JSON document) until the execution ends."""
    reporter = None if as_json else console_reporter(console)
    try:
        result: RunResult = _call_aws(
            "following the execution", target, lambda: follow_execution(sfn, execution_arn, reporter, poll_seconds=poll)
        )
    except KeyboardInterrupt:
        raise DatapipeError(
            f"stopped following {execution_arn}; the execution goes on (stop it with datapipe stop {execution_arn})",
            exit_code=130,
        ) from None
    if as_json:
        click.echo(json.dumps(result.to_json(), default=str))
    else:
        print_result(console, result)
    return result


# ---------------------------------------------------------------------------------------------------------------------
# Drawing a definition


def to_mermaid(definition: Mapping[str, Any]) -> str:
    """A Mermaid flowchart of an Amazon States Language definition: states, transitions, choices and catches."""
    lines = ["flowchart TD"]
    ids: dict[str, str] = {}

    def node_id(scope: str, state: str) -> str:
        key = f"{scope}/{state}"
        if key not in ids:
            base = re.sub(r"\W", "_", state).strip("_") or "state"
            candidate, n = base, 2
            while candidate in ids.values() or candidate in ("start", "end", "flowchart", "subgraph"):
                candidate, n = f"{base}_{n}", n + 1
            ids[key] = candidate
        return ids[key]

    def draw(machine: Mapping[str, Any], scope: str, indent: str) -> None:
        states: Mapping[str, Any] = machine.get("States", {})
        for name, state in states.items():
            me = node_id(scope, name)
            kind = state.get("Type")
            label = _quote(name)
            if kind == "Parallel":
                lines.append(f"{indent}subgraph {me}[{label}]")
                lines.append(f"{indent}  direction TB")
                for index, branch in enumerate(state.get("Branches", [])):
                    branch_scope = f"{scope}/{name}/{index}"
                    draw(branch, branch_scope, indent + "  ")
                lines.append(f"{indent}end")
            else:
                shape = {
                    "Choice": "{%s}",
                    "Pass": "(%s)",
                    "Wait": "[/%s/]",
                    "Succeed": "([%s])",
                    "Fail": "([%s])",
                    "Map": "[[%s]]",
                }.get(str(kind), "[%s]")
                lines.append(f"{indent}{me}{shape % label}")
        for name, state in states.items():
            me = node_id(scope, name)
            if "Next" in state:
                lines.append(f"{indent}{me} --> {node_id(scope, state['Next'])}")
            for rule in state.get("Choices", []):
                lines.append(f"{indent}{me} -- {_quote(_condition(rule))} --> {node_id(scope, rule['Next'])}")
            if "Default" in state:
                lines.append(f"{indent}{me} -- {_quote('otherwise')} --> {node_id(scope, state['Default'])}")
            for catch in state.get("Catch", []):
                errors = ", ".join(catch.get("ErrorEquals", []))
                lines.append(f"{indent}{me} -. {_quote('catch ' + errors)} .-> {node_id(scope, catch['Next'])}")

    draw(definition, "", "  ")
    start_at = definition.get("StartAt")
    if start_at:
        lines.insert(1, f"  start(( )) --> {node_id('', start_at)}")
    return "\n".join(lines) + "\n"


def _condition(rule: Mapping[str, Any]) -> str:
    """A short reading of a Choice rule, e.g. `CreateCluster == true` or `not IsPresent(ClusterId)`."""
    for combinator, word in (("And", " and "), ("Or", " or ")):
        if combinator in rule:
            return word.join(_condition(r) for r in rule[combinator])
    if "Not" in rule:
        return f"not {_condition(rule['Not'])}"
    variable = str(rule.get("Variable", "")).removeprefix("$.")
    for key, value in rule.items():
        if key in ("Variable", "Next"):
            continue
        if key.startswith("Is"):
            return f"{key}({variable})" if value else f"not {key}({variable})"
        operator = {"Equals": "==", "GreaterThan": ">", "LessThan": "<", "GreaterThanEquals": ">=",
                    "LessThanEquals": "<=", "Matches": "matches"}
        for suffix, symbol in sorted(operator.items(), key=lambda item: -len(item[0])):
            if key.endswith(suffix) or key.endswith(suffix + "Path"):
                return f"{variable} {symbol} {json.dumps(value)}"
    return variable or "condition"


def _quote(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


@click.command()
@click.argument("workflow")
@click.option(
    "--file", "definition_file", type=click.Path(dir_okay=False, exists=True), default=None,
    help="Draw this Amazon States Language file instead of the deployed definition.",
)
@_with_target_options
def graph(
    workflow: str,
    definition_file: str | None,
    prefix: str,
    stage: str,
    endpoint_url: str | None,
    region: str | None,
) -> None:
    """Print the deployed definition of WORKFLOW as a Mermaid flowchart."""
    if definition_file is not None:
        try:
            text = Path(definition_file).read_bytes()
        except OSError as error:
            raise DatapipeError(f"--file: cannot read {definition_file}: {error.strerror}") from None
        definition = parse_json(text, what=f"--file {definition_file}")
    else:
        sfn, target = stepfunctions_client(endpoint_url, region)
        naming = Naming(prefix=prefix, stage=stage)
        arn = _call_aws("finding the workflow", target, lambda: state_machine_arn(sfn, workflow, naming))
        described = _call_aws("reading the definition", target, lambda: sfn.describe_state_machine(stateMachineArn=arn))
        definition = parse_json(described["definition"], what=f"the definition of {arn}")
    if not isinstance(definition, dict) or not isinstance(definition.get("States"), dict):
        raise DatapipeError(f"workflow '{workflow}': the definition has no 'States' object")
    click.echo(to_mermaid(definition), nl=False)
