"""A run of the EMR workflow that fails in an event-driven wait (emr.waitMode=events) reports its EMR task as the
state that failed, as the same run with .sync does; a Lambda callback task of another kind keeps its own name."""

from __future__ import annotations

import json
from typing import Any

from datapipe.operate.history import History
from tests.operate.test_history import event

WAIT = "invoke.waitForTaskToken"


def wait_history(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Step_Three added its step; Wait_For_Step_Three waited and was answered with the step's failure; the Catch ran
    the cleanup and a Fail state ended the run with its own error."""
    parameters = json.dumps({"FunctionName": "arn:aws:lambda:eu-west-1:123456789012:function:f", "Payload": payload})
    return [
        event(1, 0, "ExecutionStarted", input="{}"),
        event(2, 1, "TaskStateEntered", name="Step_Three"),
        event(3, 2, "TaskScheduled", resourceType="elasticmapreduce", resource="addStep",
              parameters=json.dumps({"ClusterId": "j-1"})),
        event(4, 3, "TaskSucceeded", resourceType="elasticmapreduce", resource="addStep",
              output=json.dumps({"StepId": "s-1"})),
        event(5, 4, "TaskStateExited", name="Step_Three"),
        event(6, 5, "TaskStateEntered", name="Wait_For_Step_Three"),
        event(7, 6, "TaskScheduled", resourceType="lambda", resource=WAIT, parameters=parameters),
        event(8, 7, "TaskFailed", resourceType="lambda", resource=WAIT, error="datapipe.EmrTaskFailed",
              cause=json.dumps({"Id": "s-1", "Status": {"State": "FAILED"}})),
        event(9, 8, "TaskStateExited", name="Wait_For_Step_Three"),
        event(10, 9, "FailStateEntered", name="Workflow_Failed"),
        event(11, 10, "ExecutionFailed", error="datapipe.WorkflowFailed", cause="step failed"),
    ]


def test_a_failed_event_driven_wait_is_its_emr_task_s_failure() -> None:
    payload = {"Action": "Await", "Task": "Step_Three", "Until": "StepEnded", "ClusterId": "j-1", "StepId": "s-1"}
    failure = History(wait_history(payload)).failure()
    assert failure is not None
    assert (failure.state, failure.error) == ("Step_Three", "datapipe.EmrTaskFailed")
    assert json.loads(failure.cause)["Id"] == "s-1"


def test_another_callback_task_keeps_its_name() -> None:
    failure = History(wait_history({"Action": "Approve", "Task": "Step_Three"})).failure()
    assert failure is not None and failure.state == "Wait_For_Step_Three"
