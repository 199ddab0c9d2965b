"""Reading an execution's history: which state failed and why, and what each task state ran.

Every history event names the event before it (`previousEventId`); following that chain back to a `...StateEntered`
event tells which state an event belongs to, even inside Parallel branches where events of several states interleave.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from datapipe.emr_waits import waited_tasks

# Failures of the whole execution, which belong to no task.
EXECUTION_FAILURES = ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted")


@dataclass(frozen=True)
class StateFailure:
    """The state where a run went wrong, with that state's own error (the run's may be a later, summarizing one)."""

    state: str
    error: str
    cause: str


@dataclass
class TaskRecord:
    """One attempt of a task state: what it called with which parameters, and how it ended."""

    state: str
    kind: str  # "activity", "emr", "batch", "lambda" or the service name
    resource: str
    parameters: dict[str, Any] = field(default_factory=dict)
    submitted: dict[str, Any] = field(default_factory=dict)  # TaskSubmitted output, e.g. {"StepId": ...}
    output: dict[str, Any] = field(default_factory=dict)  # the success output
    error: str = ""
    cause: str = ""
    scheduled: datetime | None = None
    ended: datetime | None = None

    @property
    def failed(self) -> bool:
        return bool(self.error or self.cause)


class History:
    """An execution's history events, with the state each event belongs to."""

    def __init__(self, events: Iterable[Mapping[str, Any]]) -> None:
        self.events = sorted(events, key=lambda event: int(event["id"]))
        self._by_id = {int(event["id"]): event for event in self.events}
        self._owner: dict[int, int] = {}  # event id -> id of the StateEntered event of its state (0: none)
        for event in self.events:
            self._owner[int(event["id"])] = self._owner_of(int(event["id"]))

    def _owner_of(self, event_id: int) -> int:
        chain: list[int] = []
        current = event_id
        found = 0
        while current and current in self._by_id:
            if current in self._owner:
                found = self._owner[current]
                break
            chain.append(current)
            if str(self._by_id[current].get("type", "")).endswith("StateEntered"):
                found = current
                break
            current = int(self._by_id[current].get("previousEventId") or 0)
        for visited in chain:  # every event on the way belongs to the same state: linear work over the history
            self._owner[visited] = found
        return found

    def state_of(self, event: Mapping[str, Any]) -> str:
        entered = self._by_id.get(self._owner.get(int(event["id"]), 0))
        return str(entered["stateEnteredEventDetails"]["name"]) if entered else ""

    def state_names(self) -> list[str]:
        """Every state entered, in the order first entered."""
        names: dict[str, None] = {}
        for event in self.events:
            if str(event.get("type", "")).endswith("StateEntered"):
                names.setdefault(str(event["stateEnteredEventDetails"]["name"]), None)
        return list(names)

    def states_with_tasks(self) -> list[str]:
        """The states that called a task (a worker group, EMR, Batch, Lambda, ...), in the order first called."""
        return list(dict.fromkeys(record.state for record in self.tasks()))

    def failure(self) -> StateFailure | None:
        """Of a run that did not succeed: the first state that failed with an error of its own and was not retried
        into success; else the Fail state that ended the run, or the state a stop or time-out cut short.

        The first, not the last: when a Parallel branch fails, Step Functions cancels the other branches, and a
        failure reported for one of them afterwards is a consequence; so is a failed cleanup after a Catch.
        """
        last_success: dict[int, int] = {}  # StateEntered id -> id of the last task success in that state
        failures: list[Mapping[str, Any]] = []
        for event in self.events:
            kind = str(event.get("type", ""))
            if kind.startswith("Execution") or "State" in kind:
                continue
            if kind.endswith("Succeeded"):
                last_success[self._owner.get(int(event["id"]), 0)] = int(event["id"])
            elif kind.endswith(("Failed", "TimedOut")):
                details = event_details(event)
                if details.get("error") or details.get("cause"):
                    failures.append(event)
        for event in failures:
            owner = self._owner.get(int(event["id"]), 0)
            if last_success.get(owner, 0) > int(event["id"]):
                continue  # a retry of the same state succeeded
            last_attempt = [e for e in failures if self._owner.get(int(e["id"]), 0) == owner][-1]
            details = event_details(last_attempt)
            state = self.state_of(event)
            # A failed event-driven wait is its EMR task's failure, as with .sync (datapipe.emr_waits).
            state = waited_tasks(self.events, self.state_of).get(state, state)
            return StateFailure(state, str(details.get("error", "")), str(details.get("cause", "")))
        # Asked of a run that did not succeed: its closing event may not be in the history yet, just after a stop.
        ending = next((e for e in reversed(self.events) if e.get("type") in EXECUTION_FAILURES), None)
        details = event_details(ending) if ending is not None else {}
        state = (self.state_of(ending) if ending is not None else "") or self._last_open_state()
        if not state:
            return None
        return StateFailure(state, str(details.get("error", "")), str(details.get("cause", "")))

    def _last_open_state(self) -> str:
        open_states = self.open_states()
        return open_states[-1] if open_states else ""

    def open_states(self) -> list[str]:
        """The states entered and not yet left (several inside a Parallel), the most recently entered last."""
        entered: dict[str, int] = {}
        for event in self.events:
            kind = str(event.get("type", ""))
            if kind.endswith("StateEntered"):
                entered[str(event["stateEnteredEventDetails"]["name"])] = int(event["id"])
            elif kind.endswith("StateExited"):
                entered.pop(str(event["stateExitedEventDetails"]["name"]), None)
        return sorted(entered, key=lambda name: entered[name])

    def tasks(self, state: str | None = None) -> list[TaskRecord]:
        """Every task attempt (of `state`, when given), oldest first."""
        records: list[TaskRecord] = []
        current: dict[int, TaskRecord] = {}  # StateEntered id -> the attempt in progress there
        for event in self.events:
            kind = str(event.get("type", ""))
            owner = self._owner.get(int(event["id"]), 0)
            name = self.state_of(event)
            if state is not None and name != state:
                continue
            details = event_details(event)
            if kind in ("TaskScheduled", "ActivityScheduled", "LambdaFunctionScheduled"):
                record = _scheduled(name, kind, details, event.get("timestamp"))
                current[owner] = record
                records.append(record)
                continue
            record_or_none = current.get(owner)
            if record_or_none is None or "State" in kind or kind.startswith("Execution"):
                continue  # a Parallel's or Map's own events chain back through a branch's task: not the task's
            if kind == "TaskSubmitted":
                record_or_none.submitted = _json_object(details.get("output"))
            elif kind.endswith("Succeeded"):
                record_or_none.output = _json_object(details.get("output"))
                record_or_none.ended = _timestamp(event.get("timestamp"))
            elif kind.endswith(("Failed", "TimedOut", "StartFailed", "ScheduleFailed", "SubmitFailed")):
                record_or_none.error = str(details.get("error", "")) or kind
                record_or_none.cause = str(details.get("cause", ""))
                record_or_none.ended = _timestamp(event.get("timestamp"))
        return records


def _scheduled(state: str, kind: str, details: Mapping[str, Any], when: Any) -> TaskRecord:
    if kind == "ActivityScheduled":
        return TaskRecord(state, "activity", str(details.get("resource", "")), _json_object(details.get("input")),
                          scheduled=_timestamp(when))
    if kind == "LambdaFunctionScheduled":
        return TaskRecord(state, "lambda", str(details.get("resource", "")), _json_object(details.get("input")),
                          scheduled=_timestamp(when))
    service = str(details.get("resourceType", ""))
    resource = str(details.get("resource", ""))
    kinds = {"elasticmapreduce": "emr", "batch": "batch", "lambda": "lambda"}
    return TaskRecord(state, kinds.get(service, service), resource, _json_object(details.get("parameters")),
                      scheduled=_timestamp(when))


def event_details(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The `...EventDetails` member of a history event (empty when it has none)."""
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, Mapping):
            return value
    return {}


def _json_object(text: Any) -> dict[str, Any]:
    if isinstance(text, Mapping):
        return dict(text)
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _timestamp(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None
