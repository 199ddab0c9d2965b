"""Step Functions activities: GetActivityTask (long poll), SendTaskSuccess / Failure / Heartbeat, with the state's
TimeoutSeconds and HeartbeatSeconds honoured.

moto's interpreter can schedule an activity task but nothing hands it to a worker: GetActivityTask is not
implemented and executions get an empty activity store. Here every execution shares one `ActivityBoard`, the
activity state's evaluation waits in a way StopExecution interrupts within one poll interval, and every task
token is tracked so that a token is refused once its task is over (TaskTimedOut, as AWS answers) and an unknown
token is refused with InvalidToken.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult
from moto.stepfunctions.parser.api import (
    ActivityDoesNotExist,
    ActivityScheduledEventDetails,
    ActivityStartedEventDetails,
    ActivitySucceededEventDetails,
    ActivityTimedOutEventDetails,
    ExecutionFailedEventDetails,
    HistoryEventExecutionDataDetails,
    HistoryEventType,
    InvalidToken,
    TaskDoesNotExist,
    TaskTimedOut,
)
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_activitiy import StateTaskActivity
from moto.stepfunctions.parser.asl.eval.callback.callback import (
    ActivityCallbackEndpoint,
    CallbackOutcomeFailure,
    CallbackOutcomeFailureError,
    CallbackOutcomeSuccess,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails as _EventDetails
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
from moto.stepfunctions.parser.backend.activity import Activity
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

from datapipe.local.seams import addition, seam

EventDetails: Any = _EventDetails  # moto's TypedDict lists every key as required

if TYPE_CHECKING:
    from datapipe.local.options import EmulatorContext as Extensions

EXECUTION_INIT = seam(
    Execution,
    "__init__",
    (
        "self",
        "name",
        "sm_type",
        "role_arn",
        "exec_arn",
        "account_id",
        "region_name",
        "state_machine",
        "start_date",
        "cloud_watch_logging_session",
        "activity_store",
        "input_data",
        "trace_header",
    ),
    "executions share the emulator's activity board instead of an empty store",
)
ACTIVITY_EVAL = seam(StateTaskActivity, "_eval_execution", ("self", "env"), "interruptible waits, tracked tokens")
ACTIVITY_FROM_ERROR = seam(
    StateTaskActivity, "_from_error", ("self", "env", "ex"), "States.HeartbeatTimeout reaches Retry and Catch"
)
SEND_SUCCESS = seam(StepFunctionsParserBackend, "send_task_success", ("self", "task_token", "outcome"), "tokens")
SEND_FAILURE = seam(StepFunctionsParserBackend, "send_task_failure", ("self", "task_token", "error", "cause"), "tokens")
SEND_HEARTBEAT = seam(StepFunctionsParserBackend, "send_task_heartbeat", ("self", "task_token"), "tokens")
RESPONSE_SEND_FAILURE = seam(StepFunctionResponse, "send_task_failure", ("self",), "moto drops the cause")
# GetActivityTask does not exist in moto's responses: it is added, and must not appear behind our back.
GET_ACTIVITY_TASK = addition(StepFunctionResponse, "get_activity_task", "GetActivityTask: moto has no such API")


# How often a waiting GetActivityTask checks that its worker is still connected.
WORKER_CHECK_SECONDS = 0.2


def _connection_of(response: StepFunctionResponse) -> socket.socket | None:
    """The client connection of the request being served (werkzeug's server keeps it in the WSGI environ)."""
    request = getattr(response, "normalized_request", None)
    connection = getattr(request, "environ", {}).get("werkzeug.socket")
    return connection if isinstance(connection, socket.socket) else None


def hung_up(connection: socket.socket | None) -> bool:
    """True once the client closed `connection`: it is readable and reading would give end-of-file.

    A worker waiting for its answer sends nothing more on the connection, so readable means closed (or reset).
    """
    if connection is None:
        return False
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        return bool(readable) and connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):  # reset by the peer, or already closed on our side
        return True


class TaskTimedOutError(AWSError):
    TYPE = "TaskTimedOut"


class InvalidTokenError(AWSError):
    TYPE = "InvalidToken"


class TaskDoesNotExistError(AWSError):
    TYPE = "TaskDoesNotExist"


def _aws_errors(call: Any, *args: Any) -> Any:
    """moto's interpreter raises errors its serializer renders without a code; raise them with one."""
    try:
        return call(*args)
    except TaskTimedOut:
        raise TaskTimedOutError("Task Timed Out: 'Provided task does not exist anymore'") from None
    except InvalidToken:
        raise InvalidTokenError(f"Invalid Token: '{args[1]}'") from None
    except TaskDoesNotExist:
        raise TaskDoesNotExistError("Task does not exist anymore") from None


@dataclass
class TaskTicket:
    token: str
    activity_arn: str
    task_input: str
    endpoint: ActivityCallbackEndpoint
    env: Environment
    started: bool = False
    worker_name: str | None = None
    last_heartbeat: float = field(default_factory=time.monotonic)
    closed: bool = False


class ActivityBoard(dict[str, Activity]):
    """The activity store every execution shares (a dict by activity ARN, as moto expects), plus task tickets."""

    def __init__(self, extensions: Extensions) -> None:
        super().__init__()
        self._extensions = extensions
        self.changed = threading.Condition()
        self._tickets: dict[str, TaskTicket] = {}
        self._queues: dict[str, list[str]] = {}

    # moto's CallbackPoolManager looks the activity up with .get(arn) and calls add_task on it.
    def get(self, arn: str, default: Any = None) -> Any:
        if not self._activity_exists(arn):
            return default
        return _BoardActivity(arn, self)

    def _activity_exists(self, arn: str) -> bool:
        from moto.stepfunctions.responses import get_backend

        parts = arn.split(":")
        if len(parts) < 7:
            return False
        return arn in get_backend(parts[4], parts[3]).activities

    def enqueue(self, activity_arn: str, token: str) -> None:
        with self.changed:
            self._queues.setdefault(activity_arn, []).append(token)

    def register(self, ticket: TaskTicket) -> None:
        with self.changed:
            self._tickets[ticket.token] = ticket
            self.changed.notify_all()

    def ticket(self, token: str) -> TaskTicket | None:
        with self.changed:
            return self._tickets.get(token)

    def close(self, token: str) -> None:
        with self.changed:
            ticket = self._tickets.get(token)
            if ticket is not None:
                ticket.closed = True
            self.changed.notify_all()

    def poll(
        self,
        activity_arn: str,
        worker_name: str | None,
        timeout: float,
        worker_gone: Callable[[], bool] = lambda: False,
    ) -> TaskTicket | None:
        """Hand the oldest waiting task of the activity to a worker, waiting up to `timeout` for one.

        `worker_gone()` says whether the worker stopped listening (its connection closed): such a poll ends
        without taking a task, which would otherwise wait for a heartbeat or task timeout with nobody to run it.
        """
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                if worker_gone():
                    return None
                queue = self._queues.get(activity_arn, [])
                while queue:
                    ticket = self._tickets.get(queue.pop(0))
                    if ticket is not None and not ticket.closed and ticket.env.is_running():
                        ticket.started = True
                        ticket.worker_name = worker_name
                        ticket.last_heartbeat = time.monotonic()
                        ticket.endpoint.notify_activity_task_start(worker_name)
                        self.changed.notify_all()
                        return ticket
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.changed.wait(min(left, WORKER_CHECK_SECONDS))

    def settle(self, token: str, outcome: CallbackOutcomeSuccess | CallbackOutcomeFailure | None) -> bool:
        """Deliver an outcome (None: a heartbeat). False when the token is not an activity token of ours."""
        with self.changed:
            ticket = self._tickets.get(token)
            if ticket is None:
                return False
            if ticket.closed or not ticket.env.is_running():
                raise TaskTimedOutError("Task Timed Out: 'Provided task does not exist anymore'")
            if outcome is None:
                ticket.last_heartbeat = time.monotonic()
            else:
                ticket.endpoint.notify(outcome)
            self.changed.notify_all()
            return True


class _BoardActivity(Activity):
    """Adapter: moto's pool adds the task to the activity; we queue its token on the board."""

    def __init__(self, arn: str, board: ActivityBoard) -> None:
        super().__init__(arn=arn, name=arn.rsplit(":", 1)[-1])
        self._board = board

    def add_task(self, task: Any) -> None:
        self._board.enqueue(self.arn, task.task_token)


class ActivityTimeout(TimeoutError):
    """States.Timeout or States.HeartbeatTimeout of an activity task (catchable, unlike moto's FailureEvent path)."""

    def __init__(self, error: StatesErrorNameType) -> None:
        super().__init__(error.to_name())
        self.error = error


def _timed_out(env: Environment, error: StatesErrorNameType) -> ActivityTimeout:
    return ActivityTimeout(error)


def _timeout_failure(env: Environment, timeout: ActivityTimeout) -> FailureEvent:
    return FailureEvent(
        env=env,
        error_name=StatesErrorName(typ=timeout.error),
        event_type=HistoryEventType.ActivityTimedOut,
        event_details=EventDetails(
            activityTimedOutEventDetails=ActivityTimedOutEventDetails(error=timeout.error.to_name())
        ),
    )


def _evaluate_activity(task: StateTaskActivity, env: Environment, board: ActivityBoard, poll_interval: float) -> None:
    parameters: Any = task._eval_parameters(env=env)
    activity_input: str = parameters if isinstance(parameters, str) else to_json_str(parameters)
    timeout_seconds: float = TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS
    if not task.timeout.is_default_value():
        task.timeout.eval(env=env)
        timeout_seconds = env.stack.pop()
    heartbeat_seconds: float | None = None
    if task.heartbeat:
        task.heartbeat.eval(env=env)
        heartbeat_seconds = env.stack.pop()

    token = env.states.context_object.update_task_token()
    try:
        endpoint = env.callback_pool_manager.add_activity_task(
            callback_id=token, activity_arn=task.resource.resource_arn, activity_input=activity_input
        )
    except ActivityDoesNotExist:
        raise FailureEventException(
            FailureEvent(
                env=env,
                error_name=StatesErrorName(typ=StatesErrorNameType.StatesRuntime),
                event_type=HistoryEventType.ExecutionFailed,
                event_details=EventDetails(
                    executionFailedEventDetails=ExecutionFailedEventDetails(
                        error=StatesErrorNameType.StatesRuntime.to_name(),
                        cause=f"The activity {task.resource.resource_arn} does not exist.",
                    )
                ),
            )
        ) from None
    assert isinstance(endpoint, ActivityCallbackEndpoint)
    ticket = TaskTicket(token, task.resource.resource_arn, activity_input, endpoint, env)
    board.register(ticket)

    scheduled = ActivityScheduledEventDetails(
        resource=task.resource.resource_arn,
        input=activity_input,
        inputDetails=HistoryEventExecutionDataDetails(truncated=False),
    )
    if timeout_seconds != TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS:
        scheduled["timeoutInSeconds"] = int(timeout_seconds)
    if heartbeat_seconds is not None:
        scheduled["heartbeatInSeconds"] = int(heartbeat_seconds)
    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=HistoryEventType.ActivityScheduled,
        event_details=EventDetails(activityScheduledEventDetails=scheduled),
    )

    deadline = time.monotonic() + timeout_seconds
    started_logged = False
    try:
        with board.changed:
            while env.is_running():
                if ticket.started and not started_logged:
                    started_logged = True
                    details = ActivityStartedEventDetails()
                    if ticket.worker_name:
                        details["workerName"] = ticket.worker_name
                    env.event_manager.add_event(
                        context=env.event_history_context,
                        event_type=HistoryEventType.ActivityStarted,
                        event_details=EventDetails(activityStartedEventDetails=details),
                    )
                outcome = endpoint.get_outcome()
                if outcome is not None:
                    break
                now = time.monotonic()
                if now >= deadline:
                    raise _timed_out(env, StatesErrorNameType.StatesTimeout)
                if (
                    ticket.started
                    and heartbeat_seconds is not None
                    and now - ticket.last_heartbeat >= heartbeat_seconds
                ):
                    raise _timed_out(env, StatesErrorNameType.StatesHeartbeatTimeout)
                board.changed.wait(min(poll_interval, max(0.0, deadline - now)))
            else:
                env.stack.append({})  # stopped: the interpreter discards the value
                return
    finally:
        board.close(token)

    if isinstance(outcome, CallbackOutcomeFailure):
        raise CallbackOutcomeFailureError(callback_outcome_failure=outcome)
    assert isinstance(outcome, CallbackOutcomeSuccess)
    env.stack.append(json.loads(outcome.output))
    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=HistoryEventType.ActivitySucceeded,
        event_details=EventDetails(
            activitySucceededEventDetails=ActivitySucceededEventDetails(
                output=outcome.output, outputDetails=HistoryEventExecutionDataDetails(truncated=False)
            )
        ),
    )


def _activity_task_api(board: ActivityBoard, extensions: Extensions) -> Callable[[StepFunctionResponse], ActionResult]:
    """GetActivityTask: long poll (up to 60 s in AWS); an empty taskToken when nothing arrived."""

    def get_activity_task(self: StepFunctionResponse) -> ActionResult:
        activity_arn = self._get_param("activityArn")
        worker_name = self._get_param("workerName")
        self.stepfunction_backend.describe_activity(activity_arn)  # ActivityDoesNotExist / InvalidArn as AWS
        connection = _connection_of(self)
        ticket = board.poll(
            activity_arn,
            worker_name,
            extensions.options.activity_poll_seconds,
            worker_gone=lambda: hung_up(connection),
        )
        if ticket is None:
            return ActionResult({"taskToken": ""})
        return ActionResult({"taskToken": ticket.token, "input": ticket.task_input})

    return get_activity_task


def _send_task_failure_response(self: StepFunctionResponse) -> ActionResult:
    from moto.core.responses import EmptyResult

    backend: Any = self.stepfunction_backend
    backend.send_task_failure(
        self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
    )
    return EmptyResult()


def install(board: ActivityBoard, extensions: Extensions) -> None:
    def execution_init(self: Execution, *args: Any, **kwargs: Any) -> None:
        kwargs["activity_store"] = board
        EXECUTION_INIT.call_original(self, *args, **kwargs)

    def eval_execution(self: StateTaskActivity, env: Environment) -> None:
        _evaluate_activity(self, env, board, extensions.options.poll_interval)

    def send_task_success(self: StepFunctionsParserBackend, task_token: str, outcome: str) -> Any:
        if board.settle(task_token, CallbackOutcomeSuccess(callback_id=task_token, output=outcome)):
            return None
        return _aws_errors(SEND_SUCCESS.call_original, self, task_token, outcome)

    def send_task_failure(
        self: StepFunctionsParserBackend, task_token: str, error: str | None = None, cause: str | None = None
    ) -> Any:
        if board.settle(task_token, CallbackOutcomeFailure(callback_id=task_token, error=error, cause=cause)):
            return None
        return _aws_errors(SEND_FAILURE.call_original, self, task_token, error, cause)

    def send_task_heartbeat(self: StepFunctionsParserBackend, task_token: str) -> Any:
        if board.settle(task_token, None):
            return None
        return _aws_errors(SEND_HEARTBEAT.call_original, self, task_token)

    GET_ACTIVITY_TASK.patch(_activity_task_api(board, extensions))

    def from_error(self: StateTaskActivity, env: Environment, ex: Exception) -> FailureEvent:
        if isinstance(ex, ActivityTimeout):
            return _timeout_failure(env, ex)
        failure: FailureEvent = ACTIVITY_FROM_ERROR.call_original(self, env, ex)
        return failure

    EXECUTION_INIT.patch(execution_init)
    ACTIVITY_FROM_ERROR.patch(from_error)
    ACTIVITY_EVAL.patch(eval_execution)
    SEND_SUCCESS.patch(send_task_success)
    SEND_FAILURE.patch(send_task_failure)
    SEND_HEARTBEAT.patch(send_task_heartbeat)
    RESPONSE_SEND_FAILURE.patch(_send_task_failure_response)
