"""Execution lifecycle: names and context as AWS gives them, status change events and a prompt StopExecution.

- An execution started without a name is named with a UUID (moto named it `None`, so a second one collided), and
  `$$.Execution.StartTime` is ISO 8601 text (moto passed a datetime, which intrinsic functions cannot read).
- DescribeExecution carries `inputDetails` and the redrive fields (`redriveCount`, `redriveStatus`, ...).
- GetExecutionHistory honours `reverseOrder` and pages by `maxResults` (100 by default, as AWS) and `nextToken`.
- Every execution that starts emits RUNNING; every end emits SUCCEEDED / FAILED / TIMED_OUT / ABORTED once.
- StopExecution marks the execution ABORTED at once (as AWS does) and the integrations that wait (EMR .sync,
  activities) notice within one poll interval; a task that raises while unwinding cannot turn ABORTED into FAILED.
- The interpreter's `.sync` poll delay (0.5 s in moto) follows the emulator's poll interval.
"""

from __future__ import annotations

import datetime
import threading
import uuid
from collections.abc import Callable
from typing import Any

from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult
from moto.core.utils import iso_8601_datetime_with_milliseconds
from moto.stepfunctions.parser.asl.component.common.error_name import custom_error_name
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import iteration_worker
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.evaluation_details import ExecutionDetails
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

from datapipe.local import events
from datapipe.local.seams import seam

EXECUTION_START = seam(Execution, "start", ("self",), "emits the RUNNING status change event")
EXECUTION_STOP = seam(
    Execution, "stop", ("self", "stop_date", "error", "cause"), "StopExecution: ABORTED at once, and its event"
)
EXECUTION_TERMINATED = seam(
    BaseExecutionWorkerCommunication, "terminated", ("self",), "emits the final status change event"
)
ENVIRONMENT_SET_ERROR = seam(
    Environment, "set_error", ("self", "error"), "an execution that was stopped stays ABORTED while it unwinds"
)
START_EXECUTION = seam(
    StepFunctionsParserBackend,
    "start_execution",
    ("self", "state_machine_arn", "name", "execution_input", "trace_header"),
    "an execution started without a name is named with a UUID",
)
CONTEXT_EXECUTION_DETAILS = seam(
    Execution, "get_start_execution_details", ("self",), "$$.Execution.StartTime is ISO 8601 text"
)
DESCRIBE_EXECUTION = seam(
    StepFunctionResponse, "describe_execution", ("self",), "inputDetails and the redrive fields, as AWS returns"
)
STOP_EXECUTION_REQUEST = seam(
    StepFunctionResponse, "stop_execution", ("self",), "the error and cause of StopExecution reach ExecutionAborted"
)
HISTORY_PAGE = seam(
    StepFunctionResponse, "get_execution_history", ("self",), "reverseOrder, maxResults and nextToken, as in AWS"
)
HISTORY_PAGE_SIZE = 100  # GetExecutionHistory's default maxResults; 1000 at most
HISTORY_PAGE_LIMIT = 1000
SYNC_POLL_DELAY = seam(
    state_task_service_callback,
    "_DELAY_SECONDS_SYNC_CONDITION_CHECK",
    None,
    "the built-in .sync integrations (Batch, nested Step Functions) poll at the emulator's interval",
)

# A branch of a Parallel (an iteration of a Map) that fails with a States.* error re-raises it as a custom error
# name in moto, which refuses names starting with "States." (ValueError -> States.Runtime, never caught). AWS hands
# the branch's error to the Parallel's Retry/Catch unchanged.
PARALLEL_ERROR_NAME = seam(
    branches_decl, "CustomErrorName", ("error_name",), "a branch's States.TaskFailed reaches the Parallel's Catch"
)
MAP_ERROR_NAME = seam(
    iteration_worker, "CustomErrorName", ("error_name",), "an iteration's States.* error reaches the Map's Catch"
)


def branch_error_name(error_name: str | None) -> Any:
    """The error name a failed branch or iteration passes on: a States.* name stays one."""
    if error_name is not None and error_name.startswith(custom_error_name.ILLEGAL_CUSTOM_ERROR_PREFIX):
        try:
            return StatesErrorName.from_name(error_name)
        except ValueError:
            pass
    return custom_error_name.CustomErrorName(error_name=error_name)


_TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
_emitted: dict[str, str] = {}
_emitted_lock = threading.Lock()


def _millis(value: Any) -> int | None:
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    return None


def status_detail(execution: Execution) -> dict[str, Any]:
    """The detail of "Step Functions Execution Status Change", from a moto execution."""
    status = execution.exec_status.value if execution.exec_status is not None else "RUNNING"
    output = execution.output
    return {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "status": status,
        "startDate": _millis(execution.start_date),
        "stopDate": _millis(execution.stop_date),
        "input": execution.execution_input,
        "output": None if output is None else (output if isinstance(output, str) else _to_json(output)),
        "inputDetails": {"included": True},
        "outputDetails": {"included": True} if output is not None else None,
        "error": execution.error,
        "cause": execution.cause,
    }


def _to_json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


def emit_status(execution: Execution) -> None:
    detail = status_detail(execution)
    status = detail["status"]
    with _emitted_lock:
        if _emitted.get(execution.exec_arn) == status:
            return
        if status in _TERMINAL and _emitted.get(execution.exec_arn) in _TERMINAL:
            return
        _emitted[execution.exec_arn] = status
    events.emit(
        execution.account_id,
        execution.region_name,
        source="aws.states",
        detail_type="Step Functions Execution Status Change",
        detail=detail,
        resources=[execution.exec_arn],
    )


def execution_start_time(start_date: datetime.datetime) -> str:
    """`$$.Execution.StartTime` as AWS gives it: `2019-03-26T20:14:13.192Z`."""
    return iso_8601_datetime_with_milliseconds(start_date.astimezone(datetime.UTC))


def _start_execution(
    self: StepFunctionsParserBackend,
    state_machine_arn: str,
    name: str | None = None,
    execution_input: str | None = None,
    trace_header: str | None = None,
) -> Execution:
    # AWS: "If you don't provide a name for the execution, Step Functions automatically generates a UUID".
    if name:
        self._validate_name(name)  # moto checks the names of state machines only
    return START_EXECUTION.call_original(
        self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header
    )


def _start_execution_details(self: Execution) -> ExecutionDetails:
    details = CONTEXT_EXECUTION_DETAILS.call_original(self)
    return ExecutionDetails(
        arn=details.arn,
        name=details.name,
        role_arn=details.role_arn,
        inpt=details.inpt,
        start_time=execution_start_time(self.start_date),
    )


# More DescribeExecution fields, from modules that extend executions (redrive): each gives fields for an execution.
DESCRIBE_FIELDS: list[Callable[[Any], dict[str, Any]]] = []


def _describe_execution(self: StepFunctionResponse) -> ActionResult:
    answer = DESCRIBE_EXECUTION.call_original(self)
    described = dict(answer.result)
    described["inputDetails"] = {"included": True}
    execution = self.stepfunction_backend.describe_execution(described["executionArn"])
    for fields in DESCRIBE_FIELDS:
        described.update(fields(execution))
    return ActionResult(described)


def _stop_execution_request(self: StepFunctionResponse) -> ActionResult:
    execution: Any = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
    execution.stop(
        stop_date=datetime.datetime.now(datetime.UTC),
        error=self._get_param("error") or "",
        cause=self._get_param("cause") or "",
    )
    return ActionResult({"stopDate": execution.stop_date})


class HistoryValidationException(AWSError):
    TYPE = "ValidationException"
    STATUS = 400


def _execution_history_page(self: StepFunctionResponse) -> ActionResult:
    from moto.stepfunctions.exceptions import InvalidToken

    answer = HISTORY_PAGE.call_original(self)
    events = list(answer.result["events"])
    if self._get_param("reverseOrder"):
        events.reverse()
    size = self._get_param("maxResults") or HISTORY_PAGE_SIZE
    if not 0 < size <= HISTORY_PAGE_LIMIT:
        raise HistoryValidationException(f"maxResults must be between 1 and {HISTORY_PAGE_LIMIT}, got {size}")
    token = self._get_param("nextToken")
    start = 0
    if token:
        if not token.isdigit() or int(token) >= len(events):
            raise InvalidToken(f"nextToken {token!r} was not returned by GetExecutionHistory of this execution")
        start = int(token)
    page: dict[str, Any] = {"events": events[start : start + size]}
    if start + size < len(events):
        page["nextToken"] = str(start + size)
    return ActionResult(page)


def install(poll_interval: float) -> None:
    def start(self: Execution) -> None:
        # RUNNING is queued before the worker starts: a short execution would otherwise end before it was announced.
        emit_status(self)
        EXECUTION_START.call_original(self)

    def stop(self: Execution, stop_date: datetime.datetime, error: str | None, cause: str | None) -> None:
        EXECUTION_STOP.call_original(self, stop_date, error, cause)
        from moto.stepfunctions.parser.api import ExecutionStatus

        if self.exec_status == ExecutionStatus.RUNNING:
            self.exec_status = ExecutionStatus.ABORTED
            self.stop_date = stop_date
            emit_status(self)

    def terminated(self: BaseExecutionWorkerCommunication) -> None:
        if getattr(self, "superseded", False):  # a run that RedriveExecution replaced (datapipe.local.redrive)
            return
        EXECUTION_TERMINATED.call_original(self)
        emit_status(self.execution)

    def set_error(self: Environment, error: Any) -> None:
        if isinstance(self._program_state, ProgramStopped):
            return
        ENVIRONMENT_SET_ERROR.call_original(self, error)

    START_EXECUTION.patch(_start_execution)
    CONTEXT_EXECUTION_DETAILS.patch(_start_execution_details)
    DESCRIBE_EXECUTION.patch(_describe_execution)
    HISTORY_PAGE.patch(_execution_history_page)
    STOP_EXECUTION_REQUEST.patch(_stop_execution_request)
    EXECUTION_START.patch(start)
    EXECUTION_STOP.patch(stop)
    EXECUTION_TERMINATED.patch(terminated)
    ENVIRONMENT_SET_ERROR.patch(set_error)
    SYNC_POLL_DELAY.patch(poll_interval)
    PARALLEL_ERROR_NAME.patch(branch_error_name)
    MAP_ERROR_NAME.patch(branch_error_name)


def set_poll_interval(poll_interval: float) -> None:
    state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK = poll_interval  # type: ignore[misc]
