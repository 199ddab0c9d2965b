"""RedriveExecution, which moto lacks: a failed, timed-out or stopped execution resumes where it ended.

As AWS documents it: the execution keeps its ARN, name and input; it restarts at the state that did not succeed,
with the input that state received (so the results of the states before it carry over and they do not run
again); `redriveCount` goes up by one, `redriveDate` is set, the history goes on with an `ExecutionRedriven` event.
Only Standard executions that ended FAILED, TIMED_OUT or ABORTED are redrivable (`redriveStatus`).

Difference from AWS: a Parallel or Map state that failed runs again whole (AWS reruns only its unsuccessful
branches or iterations).
"""

from __future__ import annotations

import datetime
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult
from moto.stepfunctions.parser.api import (
    ExecutionRedrivenEventDetails,
    ExecutionStatus,
    HistoryEventType,
    StateMachineType,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.evaluation_details import EvaluationDetails, StateMachineDetails
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.responses import StepFunctionResponse

from datapipe.local import executions
from datapipe.local.seams import addition, seam

REDRIVE_EXECUTION = addition(StepFunctionResponse, "redrive_execution", "RedriveExecution: moto has no such API")
RUN_CONTEXT = seam(
    ExecutionWorker, "_get_evaluation_environment", ("self",), "$$.Execution.RedriveCount is 0 until a run is redriven"
)
EXECUTION_HISTORY = seam(
    Execution, "to_history_output", ("self",), "a redriven execution's history goes on after its earlier events"
)

REDRIVABLE_STATUSES = (ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.ABORTED)


class ExecutionNotRedrivable(AWSError):
    TYPE = "ExecutionNotRedrivable"
    STATUS = 400


@dataclass
class RedriveRecord:
    count: int = 0
    date: datetime.datetime | None = None
    earlier_events: list[dict[str, Any]] = field(default_factory=list)  # the history of the runs before this one


_records: dict[str, RedriveRecord] = {}
_records_lock = threading.Lock()
_redrive_lock = threading.Lock()  # two RedriveExecution calls for one execution: the second finds it RUNNING


def _record(execution_arn: str) -> RedriveRecord:
    with _records_lock:
        return _records.setdefault(execution_arn, RedriveRecord())


def describe_fields(execution: Any) -> dict[str, Any]:
    """The redrive fields of DescribeExecution (Standard executions only, as AWS)."""
    if getattr(execution, "sm_type", StateMachineType.STANDARD) != StateMachineType.STANDARD:
        return {}
    record = _record(execution.execution_arn)
    status = execution.status
    fields: dict[str, Any] = {"redriveCount": record.count}
    if record.date is not None:
        fields["redriveDate"] = record.date
    if status in {s.value for s in REDRIVABLE_STATUSES}:
        fields["redriveStatus"] = "REDRIVABLE"
    else:
        fields["redriveStatus"] = "NOT_REDRIVABLE"
        fields["redriveStatusReason"] = f"Execution is {status} and cannot be redriven"
    return fields


def resume_point(definition: str, events: list[dict[str, Any]]) -> tuple[str, Any] | None:
    """The top-level state the run ended in and the input it received; None when no state was entered."""
    top_level = set(json.loads(definition)["States"])
    found: tuple[str, Any] | None = None
    for event in events:
        entered = event.get("stateEnteredEventDetails")
        if entered is not None and entered.get("name") in top_level:
            found = (entered["name"], json.loads(entered.get("input") or "{}"))
    return found


class RedriveWorker(ExecutionWorker):
    """Runs the definition from the resume state, with that state's input, under the execution's own context."""

    def __init__(self, *, resume_input: Any, redrive_count: int, redrive_time: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._resume_input = resume_input
        self._redrive_count = redrive_count
        self._redrive_time = redrive_time

    def _get_evaluation_environment(self) -> Environment:
        env = super()._get_evaluation_environment()
        env.states.reset(input_value=self._resume_input)
        # As in AWS's context object: a redriven run knows it is one (`$$.Execution.RedriveCount`, `RedriveTime`).
        execution: Any = env.states.context_object.context_object_data["Execution"]
        execution["RedriveCount"] = self._redrive_count
        execution["RedriveTime"] = self._redrive_time
        return env

    def _execution_logic(self) -> None:
        program = self._get_evaluation_entrypoint()
        self.env = self._get_evaluation_environment()
        # moto's EventDetails has no key for this event; the history stores whatever the details hold.
        details: Any = {
            "executionRedrivenEventDetails": ExecutionRedrivenEventDetails(redriveCount=self._redrive_count)
        }
        self.env.event_manager.add_event(
            context=self.env.event_history_context,
            event_type=HistoryEventType.ExecutionRedriven,
            event_details=details,
            update_source_event_id=False,
        )
        program.eval(self.env)
        self._execution_communication.terminated()


def redrive(execution: Execution) -> datetime.datetime:
    """Resume `execution` where it ended; its redrive date."""
    with _redrive_lock:
        return _redrive(execution)


def _redrive(execution: Execution) -> datetime.datetime:
    status = execution.exec_status
    if status not in REDRIVABLE_STATUSES or execution.sm_type != StateMachineType.STANDARD:
        shown = status.value if status is not None else "RUNNING"
        raise ExecutionNotRedrivable(f"Execution is {shown} and cannot be redriven")
    worker = execution.exec_worker
    events: list[dict[str, Any]] = []
    if worker is not None and worker.env is not None:
        events = [dict(event) for event in worker.env.event_manager.get_event_history()]
    if worker is not None:
        # The stopped run may still be unwinding: its end must not overwrite the status of the run that follows.
        worker._execution_communication.superseded = True  # type: ignore[attr-defined]
    record = _record(execution.exec_arn)
    earlier = record.earlier_events + _renumbered(events, len(record.earlier_events))
    definition = execution.state_machine.definition
    point = resume_point(definition, events)
    parsed = json.loads(definition)
    if point is None:
        state_name, state_input = parsed["StartAt"], execution.input_data
    else:
        state_name, state_input = point
    redriven_definition = json.dumps({**parsed, "StartAt": state_name})
    now = datetime.datetime.now(tz=datetime.UTC)
    with _records_lock:
        record.count += 1
        record.date = now
        record.earlier_events = earlier
    communication = execution._get_start_execution_worker_comm()
    execution.exec_worker = RedriveWorker(
        resume_input=state_input,
        redrive_count=record.count,
        redrive_time=now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        evaluation_details=EvaluationDetails(
            aws_execution_details=execution._get_start_aws_execution_details(),
            execution_details=execution.get_start_execution_details(),
            state_machine_details=StateMachineDetails(
                arn=execution.state_machine.arn,
                name=execution.state_machine.name,
                typ=execution.state_machine.sm_type,
                definition=redriven_definition,
            ),
        ),
        exec_comm=communication,
        cloud_watch_logging_session=execution._cloud_watch_logging_session,
        activity_store=execution._activity_store,
    )
    execution.exec_status = ExecutionStatus.RUNNING
    execution.stop_date = None
    execution.output = None
    execution.error = None
    execution.cause = None
    executions.emit_status(execution)
    execution.exec_worker.start()
    return now


def _renumbered(events: list[dict[str, Any]], offset: int) -> list[dict[str, Any]]:
    """Events of a later run follow the earlier runs' ids, as one history."""
    if offset == 0:
        return events
    shifted = []
    for event in events:
        moved = dict(event)
        moved["id"] = event["id"] + offset
        # A run's first event (previous id 0) follows the last event of the runs before it.
        moved["previousEventId"] = (event.get("previousEventId") or 0) + offset
        shifted.append(moved)
    return shifted


def _history_output(self: Execution) -> Any:
    answer = EXECUTION_HISTORY.call_original(self)
    with _records_lock:
        record = _records.get(self.exec_arn)
    if record is None or not record.earlier_events:
        return answer
    earlier = record.earlier_events
    return {**answer, "events": earlier + _renumbered(list(answer["events"]), len(earlier))}


def _redrive_execution(self: StepFunctionResponse) -> ActionResult:
    execution_arn = self._get_param("executionArn")
    execution: Any = self.stepfunction_backend.describe_execution(execution_arn)  # ExecutionDoesNotExist as AWS
    return ActionResult({"redriveDate": redrive(execution)})


def _run_context(self: ExecutionWorker) -> Environment:
    env: Environment = RUN_CONTEXT.call_original(self)
    execution: Any = env.states.context_object.context_object_data["Execution"]
    execution.setdefault("RedriveCount", 0)  # as AWS gives it; a RedriveWorker sets its own count after this
    return env


def install() -> None:
    REDRIVE_EXECUTION.patch(_redrive_execution)
    RUN_CONTEXT.patch(_run_context)
    EXECUTION_HISTORY.patch(_history_output)
    if describe_fields not in executions.DESCRIBE_FIELDS:
        executions.DESCRIBE_FIELDS.append(describe_fields)


def forget() -> None:
    """Drop what earlier runs left (the emulator's backends were reset) and the DescribeExecution fields."""
    with _records_lock:
        _records.clear()
    if describe_fields in executions.DESCRIBE_FIELDS:
        executions.DESCRIBE_FIELDS.remove(describe_fields)
