"""Following a Step Functions execution as it runs, and summarizing what it did to EMR.

Reusable by any command that starts a workflow: `follow_execution` polls the execution history and hands every
new event to a callback; `ExecutionPrinter` turns events into lines (state entered/exited, failures) and shows
the EMR cluster and its steps changing state in between; `summarize_run` gathers the final status, the cluster
the run created and its steps; `print_summary` renders it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
ACTIVE_CLUSTER_STATES = ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING", "TERMINATING"]
EMR_RESOURCE_MARK = ":elasticmapreduce:"


class FollowTimeout(TimeoutError):
    """The execution did not finish within the time given."""


def history_events(sfn: Any, execution_arn: str, *, after_event_id: int = 0) -> Iterator[dict[str, Any]]:
    """Events of the execution with an id greater than `after_event_id`, oldest first (all pages)."""
    token: str | None = None
    while True:
        page = sfn.get_execution_history(
            executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {})
        )
        for event in page["events"]:
            if event["id"] > after_event_id:
                yield event
        token = page.get("nextToken")
        if not token:
            return


def follow_execution(
    sfn: Any,
    execution_arn: str,
    *,
    on_event: Callable[[dict[str, Any]], None] = lambda event: None,
    on_poll: Callable[[], None] = lambda: None,
    poll_interval: float = 0.5,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Poll until the execution ends; every history event is passed to `on_event` once, in order.

    Returns the final `describe_execution` response. `on_poll` runs between polls (progress displays).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    last_id = 0
    while True:
        description = sfn.describe_execution(executionArn=execution_arn)
        for event in history_events(sfn, execution_arn, after_event_id=last_id):
            last_id = event["id"]
            on_event(event)
        if description["status"] in TERMINAL_STATUSES:
            return dict(description)
        if deadline is not None and time.monotonic() > deadline:
            raise FollowTimeout(f"execution {execution_arn} still {description['status']} after {timeout:.0f} s")
        on_poll()
        time.sleep(poll_interval)


def describe_event(event: dict[str, Any]) -> tuple[str, str] | None:
    """(style, text) for the events worth a line: states entered and exited, failures, the end of the run."""
    kind = event["type"]
    if kind.endswith("StateEntered"):
        return "cyan", f"-> {event['stateEnteredEventDetails']['name']}"
    if kind.endswith("StateExited"):
        return "green", f"<- {event['stateExitedEventDetails']['name']}"
    for suffix in ("Failed", "TimedOut", "Aborted"):
        if kind.endswith(suffix):
            details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            error = details.get("error", suffix.lower())
            cause = str(details.get("cause", "")).splitlines()[0][:200] if details.get("cause") else ""
            return "red", f"!! {kind}: {error}{f' ({cause})' if cause else ''}"
    if kind == "ExecutionSucceeded":
        return "bold green", "execution succeeded"
    return None


@dataclass
class ExecutionPrinter:
    """Prints events as they arrive and, between polls, the EMR cluster and step states that changed."""

    console: Console
    started: datetime
    emr: Any = None
    cluster_id: str | None = None
    _seen_states: dict[str, str] = field(default_factory=dict)
    _last_emr_poll: float = 0.0

    def elapsed(self) -> float:
        return max(0.0, (datetime.now(self.started.tzinfo) - self.started).total_seconds())

    def line(self, style: str, text: str) -> None:
        self.console.print(f"[dim]{self.elapsed():6.1f}s[/dim]  [{style}]{text}[/{style}]", highlight=False)

    def on_event(self, event: dict[str, Any]) -> None:
        cluster_id = _cluster_id_of(event)
        if cluster_id:
            self.cluster_id = cluster_id
        described = describe_event(event)
        if described:
            self.line(*described)

    def on_poll(self) -> None:
        """Report the cluster booting and its steps running (at most once a second; EMR is polled, not pushed)."""
        if self.emr is None or time.monotonic() - self._last_emr_poll < 1.0:
            return
        self._last_emr_poll = time.monotonic()
        cluster_id = self.cluster_id or _newest_cluster_since(self.emr, self.started)
        if not cluster_id:
            return
        self.cluster_id = cluster_id
        cluster_state = self.emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"]
        self._changed(f"cluster {cluster_id}", cluster_state)
        for step in self.emr.list_steps(ClusterId=cluster_id).get("Steps", []):
            self._changed(f"step {step['Name']}", step["Status"]["State"])

    def _changed(self, what: str, state: str) -> None:
        if self._seen_states.get(what) != state:
            self._seen_states[what] = state
            self.line("yellow", f"   {what} {state}")


def _cluster_id_of(event: dict[str, Any]) -> str | None:
    """The cluster id an EMR task reports (createCluster returns it in its output)."""
    details = event.get("taskSucceededEventDetails") or {}
    if details.get("resourceType") != "elasticmapreduce" or not str(details.get("resource", "")).startswith(
        "createCluster"
    ):
        return None
    try:
        output = json.loads(details.get("output") or "{}")
    except json.JSONDecodeError:
        return None
    cluster_id = output.get("ClusterId") if isinstance(output, dict) else None
    return str(cluster_id) if cluster_id else None


def _newest_cluster_since(emr: Any, since: datetime) -> str | None:
    clusters = emr.list_clusters(CreatedAfter=since).get("Clusters", [])
    if not clusters:
        return None
    newest = max(clusters, key=lambda cluster: cluster["Status"]["Timeline"]["CreationDateTime"])
    return str(newest["Id"])


@dataclass(frozen=True)
class StepSummary:
    name: str
    state: str


@dataclass(frozen=True)
class RunSummary:
    execution_arn: str
    status: str
    elapsed_seconds: float
    cluster_id: str | None
    cluster_state: str | None
    steps: tuple[StepSummary, ...]
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "executionArn": self.execution_arn,
            "status": self.status,
            "elapsedSeconds": round(self.elapsed_seconds, 1),
            "clusterId": self.cluster_id,
            "clusterState": self.cluster_state,
            "steps": [{"name": step.name, "state": step.state} for step in self.steps],
            **({"error": self.error} if self.error else {}),
        }


def summarize_run(sfn: Any, emr: Any, description: dict[str, Any], cluster_id: str | None = None) -> RunSummary:
    """The final status, the time taken, and the cluster the run used (found in its history when not given)."""
    execution_arn = description["executionArn"]
    if cluster_id is None:
        cluster_id = next(
            (found for event in history_events(sfn, execution_arn) if (found := _cluster_id_of(event))), None
        )
    cluster_state = None
    steps: tuple[StepSummary, ...] = ()
    if cluster_id and emr is not None:
        cluster_state = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"]
        listed = emr.list_steps(ClusterId=cluster_id).get("Steps", [])
        # list_steps is newest first; the summary reads in the order the steps were added.
        steps = tuple(StepSummary(step["Name"], step["Status"]["State"]) for step in reversed(listed))
    stop = description.get("stopDate") or datetime.now(description["startDate"].tzinfo)
    error = description.get("error")
    if error and description.get("cause"):
        error = f"{error}: {str(description['cause']).splitlines()[0][:200]}"
    return RunSummary(
        execution_arn=execution_arn,
        status=description["status"],
        elapsed_seconds=(stop - description["startDate"]).total_seconds(),
        cluster_id=cluster_id,
        cluster_state=cluster_state,
        steps=steps,
        error=error,
    )


def print_summary(console: Console, summary: RunSummary) -> None:
    style = "green" if summary.status == "SUCCEEDED" else "red"
    console.print(f"\nExecution [bold {style}]{summary.status}[/bold {style}] in {summary.elapsed_seconds:.1f} s")
    if summary.error:
        console.print(f"[red]{summary.error}[/red]", highlight=False)
    if summary.cluster_id:
        console.print(f"Cluster {summary.cluster_id}: {summary.cluster_state}", highlight=False)
    if summary.steps:
        table = Table(title="EMR steps", title_justify="left")
        table.add_column("step")
        table.add_column("final state")
        for step in summary.steps:
            table.add_row(step.name, step.state)
        console.print(table)
