"""What `datapipe demo` adds to `datapipe start --follow`: the EMR side of a run, while it runs and at the end.

Following the execution itself is datapipe.workflows' (`follow_execution`, `console_reporter`). While it follows,
`EmrProgress` polls EMR on a thread and prints the cluster and its steps each time one changes state (EMR has no
push: AWS Step Functions polls it too). `summarize_run` then gathers the cluster the run created, its final state
and each step's, and `print_summary` renders them.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.status import Status
from rich.table import Table

from datapipe.workflows import RunResult, history_events

# Step and cluster states that need no more watching (the spinner line shows only what is still under way).
FINISHED = frozenset({"COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED", "TERMINATED", "TERMINATED_WITH_ERRORS"})


class EmrProgress:
    """Prints `cluster <id> <STATE>` and `step <name> <STATE>` whenever they change, until closed."""

    def __init__(
        self, emr: Any, console: Console, *, since: datetime, interval: float = 0.5, status: Status | None = None
    ) -> None:
        self.emr = emr
        self.console = console
        self.since = since
        self.interval = interval
        self.status = status  # a spinner line on terminals, kept up to date with the latest states
        self.cluster_id: str | None = None
        self._seen: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="emr-progress", daemon=True)

    def __enter__(self) -> EmrProgress:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if kind is None:
            self.poll()  # the states reached between the last poll and the end of the run

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        if self.cluster_id is None:
            self.cluster_id = newest_cluster_since(self.emr, self.since)
        if self.cluster_id is not None:
            cluster = self.emr.describe_cluster(ClusterId=self.cluster_id)["Cluster"]
            self._report(f"cluster {self.cluster_id}", cluster["Status"]["State"])
            for step in reversed(self.emr.list_steps(ClusterId=self.cluster_id).get("Steps", [])):
                self._report(f"step {step['Name']}", step["Status"]["State"])
        if self.status is not None:
            elapsed = (datetime.now(self.since.tzinfo) - self.since).total_seconds()
            latest = ", ".join(f"{what} {state}" for what, state in self._seen.items() if state not in FINISHED)
            self.status.update(escape(f"{elapsed:4.0f} s  {latest or 'waiting for EMR'}"))

    def _report(self, what: str, state: str) -> None:
        if self._seen.get(what) != state:
            self._seen[what] = state
            self.console.print(f"         [yellow]{escape(what)} {state}[/]", highlight=False)


def newest_cluster_since(emr: Any, since: datetime) -> str | None:
    """The most recently created cluster at or after `since` (the one a run being followed creates)."""
    clusters = emr.list_clusters(CreatedAfter=since).get("Clusters", [])
    if not clusters:
        return None
    newest = max(clusters, key=lambda cluster: cluster["Status"]["Timeline"]["CreationDateTime"])
    return str(newest["Id"])


def created_cluster_id(sfn: Any, execution_arn: str) -> str | None:
    """The id of the cluster an execution created, read from its createCluster task's output."""
    for event in history_events(sfn, execution_arn):
        details = event.get("taskSucceededEventDetails") or {}
        if details.get("resourceType") != "elasticmapreduce":
            continue
        if not str(details.get("resource", "")).startswith("createCluster"):
            continue
        try:
            output = json.loads(details.get("output") or "{}")
        except json.JSONDecodeError:
            continue
        if isinstance(output, dict) and output.get("ClusterId"):
            return str(output["ClusterId"])
    return None


@dataclass(frozen=True)
class StepSummary:
    name: str
    state: str


@dataclass(frozen=True)
class RunSummary:
    """How a run of the EMR workflow ended, and what it left behind in EMR."""

    execution_arn: str
    status: str
    seconds: float | None
    cluster_id: str | None
    cluster_state: str | None
    steps: tuple[StepSummary, ...]
    error: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def to_json(self) -> dict[str, Any]:
        return {
            "executionArn": self.execution_arn,
            "status": self.status,
            "seconds": None if self.seconds is None else round(self.seconds, 1),
            "clusterId": self.cluster_id,
            "clusterState": self.cluster_state,
            "steps": [{"name": step.name, "state": step.state} for step in self.steps],
            "error": self.error,
        }


def summarize_run(sfn: Any, emr: Any, result: RunResult) -> RunSummary:
    cluster_id = created_cluster_id(sfn, result.execution_arn)
    cluster_state = None
    steps: tuple[StepSummary, ...] = ()
    if cluster_id:
        cluster_state = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"]
        listed = emr.list_steps(ClusterId=cluster_id).get("Steps", [])
        # list_steps answers newest first; the summary reads in the order the steps were added.
        steps = tuple(StepSummary(step["Name"], step["Status"]["State"]) for step in reversed(listed))
    error = f"{result.error}: {result.cause}" if result.error and result.cause else result.error or result.cause
    return RunSummary(
        execution_arn=result.execution_arn,
        status=result.status,
        seconds=result.seconds,
        cluster_id=cluster_id,
        cluster_state=cluster_state,
        steps=steps,
        error=error,
    )


def print_summary(console: Console, summary: RunSummary) -> None:
    style = "green" if summary.succeeded else "red"
    took = "" if summary.seconds is None else f" in {summary.seconds:.1f} s"
    console.print(f"\nExecution [bold {style}]{summary.status}[/]{took}", highlight=False)
    if summary.error:
        console.print(f"[red]{escape(summary.error.splitlines()[0][:300])}[/]", highlight=False)
    if summary.cluster_id:
        console.print(f"Cluster {summary.cluster_id}, created by this run: {summary.cluster_state}", highlight=False)
    else:
        console.print("No EMR cluster was created by this run.")
    if summary.steps:
        table = Table(title="EMR steps", title_justify="left")
        table.add_column("step")
        table.add_column("final state")
        for step in summary.steps:
            table.add_row(escape(step.name), step.state)
        console.print(table)
