"""Optimized integrations with camelCase APIs take the state's PascalCase parameters: nested Step Functions."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from .conftest import ROLE_ARN, run_state_machine, wait_for_execution


def child_machine(aws: Callable[[str], Any], state: dict[str, Any]) -> str:
    definition = {"StartAt": "Only", "States": {"Only": state}}
    name = f"child-{uuid.uuid4().hex[:8]}"
    created = aws("stepfunctions").create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE_ARN)
    return str(created["stateMachineArn"])


def test_start_execution_sync_runs_the_child_and_returns_its_description(aws: Callable[[str], Any]) -> None:
    good = child_machine(aws, {"Type": "Pass", "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)"}, "End": True})
    bad = child_machine(aws, {"Type": "Fail", "Error": "ChildBroke", "Cause": "on purpose"})

    def start(arn: str) -> dict[str, Any]:
        return {
            "Type": "Task",
            "Resource": "arn:aws:states:::states:startExecution.sync",
            "Parameters": {"StateMachineArn": arn, "Input": {"n.$": "$.n"}},
        }

    definition = {
        "StartAt": "Good",
        "States": {
            "Good": {**start(good), "ResultPath": "$.good", "Next": "Bad"},
            "Bad": {
                **start(bad),
                "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.bad", "Next": "Done"}],
                "Next": "Done",
            },
            "Done": {"Type": "Pass", "End": True},
        },
    }
    _, execution_arn = run_state_machine(aws, definition, {"n": 21})
    described = wait_for_execution(aws, execution_arn)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    output = json.loads(described["output"])
    assert output["good"]["Status"] == "SUCCEEDED"
    assert json.loads(output["good"]["Output"]) == {"doubled": 42}
    failed_child = json.loads(output["bad"]["Cause"])
    assert failed_child["Status"] == "FAILED"
    assert failed_child["Error"] == "ChildBroke"
