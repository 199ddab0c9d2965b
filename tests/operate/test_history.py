"""Which state failed, and what each task ran, read from execution histories written the way Step Functions writes
them (each event names the event before it; events of parallel branches interleave)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from datapipe.operate.history import History

T0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def event(event_id: int, previous: int, kind: str, **details: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"id": event_id, "previousEventId": previous, "type": kind,
                             "timestamp": T0 + timedelta(seconds=event_id)}
    if kind.endswith("StateEntered"):
        found["stateEnteredEventDetails"] = {"name": details.pop("name")}
    elif kind.endswith("StateExited"):
        found["stateExitedEventDetails"] = {"name": details.pop("name")}
    if details:
        key = kind[0].lower() + kind[1:] + "EventDetails"
        found[key] = details
    return found


def parallel_history() -> list[dict[str, Any]]:
    """Step_One (an EMR step, retried once) fails in one branch while the other branch waits and exits; the Catch
    then runs a Lambda that succeeds, and a Fail state ends the run with its own error."""
    return [
        event(1, 0, "ExecutionStarted", input="{}"),
        event(2, 0, "ParallelStateEntered", name="Add_Steps_Parallel"),
        event(3, 2, "ParallelStateStarted"),
        event(4, 3, "TaskStateEntered", name="Step_One"),
        event(5, 4, "TaskScheduled", resourceType="elasticmapreduce", resource="addStep.sync",
              parameters=json.dumps({"ClusterId": "j-1"})),
        event(6, 3, "WaitStateEntered", name="Wait_10_Seconds"),
        event(7, 5, "TaskStarted", resourceType="elasticmapreduce", resource="addStep.sync"),
        event(8, 7, "TaskSubmitted", resourceType="elasticmapreduce", resource="addStep.sync",
              output=json.dumps({"StepId": "s-FIRST"})),
        event(9, 8, "TaskFailed", resourceType="elasticmapreduce", resource="addStep.sync",
              error="EMR.AmazonElasticMapReduceException", cause="throttled"),
        event(10, 9, "TaskScheduled", resourceType="elasticmapreduce", resource="addStep.sync",
              parameters=json.dumps({"ClusterId": "j-1"})),
        event(11, 6, "WaitStateExited", name="Wait_10_Seconds"),
        event(12, 10, "TaskStarted", resourceType="elasticmapreduce", resource="addStep.sync"),
        event(13, 12, "TaskSubmitted", resourceType="elasticmapreduce", resource="addStep.sync",
              output=json.dumps({"StepId": "s-SECOND"})),
        event(14, 13, "TaskFailed", resourceType="elasticmapreduce", resource="addStep.sync",
              error="States.TaskFailed", cause="step failed"),
        event(15, 14, "ParallelStateFailed"),
        event(16, 15, "ParallelStateExited", name="Add_Steps_Parallel"),
        event(17, 16, "TaskStateEntered", name="Describe_Failure"),
        event(18, 17, "LambdaFunctionScheduled", resource="arn:aws:lambda:eu-west-1:123456789012:function:reader",
              input="{}"),
        event(19, 18, "LambdaFunctionStarted"),
        event(20, 19, "LambdaFunctionSucceeded", output="{}"),
        event(21, 20, "TaskStateExited", name="Describe_Failure"),
        event(22, 21, "FailStateEntered", name="Workflow_Failed"),
        event(23, 22, "ExecutionFailed", error="datapipe.WorkflowFailed", cause="States.TaskFailed: step failed"),
    ]


def test_the_failed_state_is_the_branch_state_with_the_error_of_its_last_attempt() -> None:
    failure = History(parallel_history()).failure()
    assert failure is not None
    assert (failure.state, failure.error, failure.cause) == ("Step_One", "States.TaskFailed", "step failed")


def test_a_sibling_branch_cancelled_after_the_failure_is_not_the_failed_state() -> None:
    events = parallel_history()[:14]
    events += [
        event(15, 11, "TaskStateEntered", name="Step_Two"),
        event(16, 15, "TaskScheduled", resourceType="elasticmapreduce", resource="addStep", parameters="{}"),
        event(17, 16, "TaskFailed", resourceType="elasticmapreduce", resource="addStep", error="States.Runtime",
              cause="branch cancelled"),
        event(18, 14, "ParallelStateFailed"),
        event(19, 0, "ExecutionFailed", error="States.TaskFailed", cause="step failed"),
    ]
    failure = History(events).failure()
    assert failure is not None and (failure.state, failure.cause) == ("Step_One", "step failed")


def test_a_failure_that_a_retry_recovered_is_passed_over() -> None:
    events = [
        event(1, 0, "ExecutionStarted"),
        event(2, 0, "TaskStateEntered", name="Create_A_Cluster"),
        event(3, 2, "TaskScheduled", resourceType="elasticmapreduce", resource="createCluster.sync", parameters="{}"),
        event(4, 3, "TaskFailed", resourceType="elasticmapreduce", error="ThrottlingException", cause="slow down"),
        event(5, 4, "TaskScheduled", resourceType="elasticmapreduce", resource="createCluster.sync", parameters="{}"),
        event(6, 5, "TaskSucceeded", resourceType="elasticmapreduce", output="{}"),
        event(7, 6, "TaskStateExited", name="Create_A_Cluster"),
        event(8, 7, "TaskStateEntered", name="Step_Three"),
        event(9, 8, "TaskScheduled", resourceType="elasticmapreduce", resource="addStep.sync", parameters="{}"),
        event(10, 9, "TaskFailed", resourceType="elasticmapreduce", error="States.TaskFailed", cause="step 3"),
        event(11, 0, "ExecutionFailed", error="States.TaskFailed", cause="step 3"),
    ]
    failure = History(events).failure()
    assert failure is not None and (failure.state, failure.cause) == ("Step_Three", "step 3")


def test_each_attempt_of_a_task_state_is_one_record_with_what_it_submitted() -> None:
    history = History(parallel_history())
    first, second = history.tasks("Step_One")
    assert (first.kind, first.submitted) == ("emr", {"StepId": "s-FIRST"})
    assert first.error == "EMR.AmazonElasticMapReduceException"
    assert (second.submitted, second.error, second.ended) == ({"StepId": "s-SECOND"}, "States.TaskFailed",
                                                             T0 + timedelta(seconds=14))
    assert second.parameters == {"ClusterId": "j-1"}
    (reader,) = history.tasks("Describe_Failure")
    assert reader.kind == "lambda" and not reader.failed and reader.scheduled == T0 + timedelta(seconds=18)
    assert history.states_with_tasks() == ["Step_One", "Describe_Failure"]
    assert history.tasks("Wait_10_Seconds") == []


def test_the_states_a_running_run_is_in_are_the_ones_entered_and_not_left() -> None:
    assert History(parallel_history()[:8]).open_states() == ["Add_Steps_Parallel", "Step_One", "Wait_10_Seconds"]
    assert History(parallel_history()[:11]).open_states() == ["Add_Steps_Parallel", "Step_One"]
    # A task state that failed and a Fail state are never left: only a running run's open states are where it is.
    assert History(parallel_history()).open_states() == ["Step_One", "Workflow_Failed"]


def test_a_run_that_a_fail_state_ended_names_that_state() -> None:
    events = [
        event(1, 0, "ExecutionStarted", input="{}"),
        event(2, 0, "ChoiceStateEntered", name="Validate_Input"),
        event(3, 2, "ChoiceStateExited", name="Validate_Input"),
        event(4, 3, "FailStateEntered", name="Bad_Input"),
        event(5, 4, "ExecutionFailed", error="datapipe.InvalidInput", cause="ClusterId is missing"),
    ]
    failure = History(events).failure()
    assert failure is not None
    assert (failure.state, failure.error) == ("Bad_Input", "datapipe.InvalidInput")
    assert failure.cause == "ClusterId is missing"


def test_a_stopped_run_names_the_state_it_was_in() -> None:
    events = [
        event(1, 0, "ExecutionStarted", input="{}"),
        event(2, 0, "PassStateEntered", name="Prepare"),
        event(3, 2, "PassStateExited", name="Prepare"),
        event(4, 3, "TaskStateEntered", name="CreateDirectory"),
        event(5, 4, "ActivityScheduled", resource="arn:aws:states:eu-west-1:123456789012:activity:a", input="{}"),
        event(6, 0, "ExecutionAborted", error="datapipe.Stopped", cause="wrong input"),
    ]
    failure = History(events).failure()
    assert failure is not None
    assert (failure.state, failure.error, failure.cause) == ("CreateDirectory", "datapipe.Stopped", "wrong input")


def test_a_run_just_stopped_names_its_state_before_the_abort_event_is_written() -> None:
    events = [event(1, 0, "ExecutionStarted"), event(2, 0, "TaskStateEntered", name="CreateDirectory")]
    failure = History(events).failure()
    assert failure is not None and (failure.state, failure.error) == ("CreateDirectory", "")


def test_a_run_stopped_before_it_entered_a_state_names_none() -> None:
    assert History([event(1, 0, "ExecutionStarted"), event(2, 0, "ExecutionAborted")]).failure() is None


def test_a_history_at_the_standard_workflow_limit_is_read_in_linear_time() -> None:
    """25,000 events (the most a standard workflow keeps): a Task state retried over and over, each attempt's events
    chained to the previous one, so that a walk back to the state per event would be quadratic."""
    events = [event(1, 0, "ExecutionStarted"), event(2, 0, "TaskStateEntered", name="Poll")]
    for number in range(3, 25_001):
        kind = "TaskScheduled" if number % 2 else "TaskFailed"
        events.append(event(number, number - 1, kind, error="x") if kind == "TaskFailed" else
                      event(number, number - 1, kind, resourceType="lambda", resource="invoke", parameters="{}"))
    began = time.perf_counter()
    history = History(events)
    assert len(history.tasks("Poll")) == 12_499
    assert history.failure() is not None
    assert time.perf_counter() - began < 5  # quadratic work would take minutes
