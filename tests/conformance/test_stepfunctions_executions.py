"""Step Functions executions as the Step Functions API reference documents them.

StartExecution naming, DescribeExecution and GetExecutionHistory shapes, StopExecution, RedriveExecution.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import finished, unique, wait_until

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# The context object's StartTime, as in the Step Functions developer guide's example: "2019-03-26T20:14:13.192Z".
CONTEXT_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

ECHO_CONTEXT = {
    "StartAt": "Echo",
    "States": {
        "Echo": {
            "Type": "Pass",
            "Parameters": {"name.$": "$$.Execution.Name", "startTime.$": "$$.Execution.StartTime", "in.$": "$"},
            "End": True,
        }
    },
}


def test_an_unnamed_execution_is_named_with_a_uuid_and_the_context_holds_text(
    clients: Callable[[str], Any], state_machine: Callable[[dict[str, Any]], str]
) -> None:
    sfn = clients("stepfunctions")
    machine = state_machine(ECHO_CONTEXT)
    first = sfn.start_execution(stateMachineArn=machine, input='{"n": 1}')
    second = sfn.start_execution(stateMachineArn=machine, input='{"n": 1}')
    assert isinstance(first["startDate"], datetime.datetime)
    assert first["executionArn"] != second["executionArn"]
    for started in (first, second):
        described = finished(sfn, started["executionArn"])
        assert UUID.match(described["name"]), described["name"]
        assert started["executionArn"] == machine.replace(":stateMachine:", ":execution:") + ":" + described["name"]
        output = json.loads(described["output"])
        assert output["name"] == described["name"]
        assert CONTEXT_TIME.match(output["startTime"]), output["startTime"]
        assert output["in"] == {"n": 1}


def test_a_name_in_use_with_another_input_is_refused(
    clients: Callable[[str], Any], state_machine: Callable[[dict[str, Any]], str]
) -> None:
    sfn = clients("stepfunctions")
    machine = state_machine({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    name = unique("run")
    sfn.start_execution(stateMachineArn=machine, name=name, input='{"a": 1}')
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(stateMachineArn=machine, name=name, input='{"a": 2}')
    assert refused.value.response["Error"]["Code"] == "ExecutionAlreadyExists"


def test_describe_execution_of_a_succeeded_run(
    clients: Callable[[str], Any], state_machine: Callable[[dict[str, Any]], str]
) -> None:
    sfn = clients("stepfunctions")
    machine = state_machine({"StartAt": "Add", "States": {"Add": {"Type": "Pass", "Result": 42, "End": True}}})
    arn = sfn.start_execution(stateMachineArn=machine, name=unique("run"), input='{"x": 1}')["executionArn"]
    described = finished(sfn, arn)
    assert described["status"] == "SUCCEEDED"
    assert described["executionArn"] == arn and described["stateMachineArn"] == machine
    assert json.loads(described["input"]) == {"x": 1}
    assert described["inputDetails"] == {"included": True}
    assert json.loads(described["output"]) == 42
    assert described["outputDetails"] == {"included": True}
    assert described["stopDate"] >= described["startDate"]
    assert described["redriveCount"] == 0
    assert described["redriveStatus"] == "NOT_REDRIVABLE"
    assert "error" not in described and "cause" not in described


def test_get_execution_history_numbers_and_links_its_events(
    clients: Callable[[str], Any], state_machine: Callable[[dict[str, Any]], str]
) -> None:
    sfn = clients("stepfunctions")
    machine = state_machine(
        {
            "StartAt": "One",
            "States": {"One": {"Type": "Pass", "Next": "Two"}, "Two": {"Type": "Pass", "Result": "done", "End": True}},
        }
    )
    arn = sfn.start_execution(stateMachineArn=machine, input='{"k": "v"}')["executionArn"]
    finished(sfn, arn)
    events = sfn.get_execution_history(executionArn=arn)["events"]
    assert [e["type"] for e in events] == [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
    assert [e["id"] for e in events] == [1, 2, 3, 4, 5, 6]
    # The first state follows no event (its previousEventId is 0, like ExecutionStarted's), each later event the one
    # before it.
    assert [e["previousEventId"] for e in events] == [0, 0, 2, 3, 4, 5]
    started = events[0]["executionStartedEventDetails"]
    assert json.loads(started["input"]) == {"k": "v"}
    assert started["inputDetails"] == {"truncated": False}
    assert started["roleArn"].startswith("arn:aws:iam::")
    assert events[1]["stateEnteredEventDetails"]["name"] == "One"
    assert json.loads(events[1]["stateEnteredEventDetails"]["input"]) == {"k": "v"}
    assert events[4]["stateExitedEventDetails"] == {
        "name": "Two",
        "output": '"done"',
        "outputDetails": {"truncated": False},
    }
    assert json.loads(events[5]["executionSucceededEventDetails"]["output"]) == "done"
    assert all(isinstance(event["timestamp"], datetime.datetime) for event in events)
    newest_first = sfn.get_execution_history(executionArn=arn, reverseOrder=True)["events"]
    assert [e["id"] for e in newest_first] == [6, 5, 4, 3, 2, 1]


WAITS = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 300, "End": True}}}


def test_stop_execution_aborts_with_the_given_error_and_cause(
    clients: Callable[[str], Any], state_machine: Callable[[dict[str, Any]], str]
) -> None:
    sfn = clients("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=state_machine(WAITS))["executionArn"]
    stopped = sfn.stop_execution(executionArn=arn, error="Operator", cause="changed my mind")
    assert isinstance(stopped["stopDate"], datetime.datetime)
    described = sfn.describe_execution(executionArn=arn)
    assert described["status"] == "ABORTED"
    assert described["redriveStatus"] == "REDRIVABLE"
    last = wait_until(
        "the ExecutionAborted event",
        lambda: [e for e in sfn.get_execution_history(executionArn=arn)["events"] if e["type"] == "ExecutionAborted"],
    )
    assert last[0]["executionAbortedEventDetails"] == {"error": "Operator", "cause": "changed my mind"}


def test_stop_execution_of_an_unknown_execution_is_refused(
    clients: Callable[[str], Any], state_machine: Callable[[dict[str, Any]], str]
) -> None:
    sfn = clients("stepfunctions")
    machine = state_machine(WAITS)
    unknown = machine.replace(":stateMachine:", ":execution:") + ":" + unique("never-started")
    with pytest.raises(ClientError) as refused:
        sfn.stop_execution(executionArn=unknown)
    assert refused.value.response["Error"]["Code"] == "ExecutionDoesNotExist"


def test_redrive_resumes_at_the_failed_state_with_the_earlier_results(
    clients: Callable[[str], Any], state_machine: Callable[[dict[str, Any]], str], bucket: str
) -> None:
    s3, sfn = clients("s3"), clients("stepfunctions")
    machine = state_machine(
        {
            "StartAt": "Before",
            "States": {
                "Before": {"Type": "Pass", "Result": "kept", "ResultPath": "$.before", "Next": "Read"},
                "Read": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
                    "Parameters": {"Bucket": bucket, "Key": "flag.txt"},
                    "ResultSelector": {"size.$": "$.ContentLength"},
                    "ResultPath": "$.read",
                    "End": True,
                },
            },
        }
    )
    arn = sfn.start_execution(stateMachineArn=machine, input='{"run": 1}')["executionArn"]
    failed = finished(sfn, arn)
    assert failed["status"] == "FAILED"
    assert failed["error"].lower() == "s3.nosuchkeyexception"  # the casing of the service prefix is not asserted
    assert failed["redriveStatus"] == "REDRIVABLE"

    s3.put_object(Bucket=bucket, Key="flag.txt", Body=b"12345")
    redriven = sfn.redrive_execution(executionArn=arn)
    assert isinstance(redriven["redriveDate"], datetime.datetime)
    done = finished(sfn, arn)
    assert done["status"] == "SUCCEEDED", done.get("cause")
    assert json.loads(done["output"]) == {"run": 1, "before": "kept", "read": {"size": 5}}
    assert done["redriveCount"] == 1
    events = sfn.get_execution_history(executionArn=arn)["events"]
    kinds = [e["type"] for e in events]
    assert kinds.count("ExecutionStarted") == 1 and kinds.count("ExecutionRedriven") == 1
    assert kinds.index("ExecutionFailed") < kinds.index("ExecutionRedriven") < kinds.index("ExecutionSucceeded")
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
    assert entered == ["Before", "Read", "Read"]
    with pytest.raises(ClientError) as again:
        sfn.redrive_execution(executionArn=arn)
    assert again.value.response["Error"]["Code"] == "ExecutionNotRedrivable"


def aws_cli(*arguments: str) -> Any:
    """The AWS CLI (the one installed next to this Python, else the one on PATH), output parsed as JSON."""
    beside = Path(sys.executable).with_name("aws")
    command = str(beside) if beside.exists() else (shutil.which("aws") or "aws")
    result = subprocess.run(
        [command, *arguments, "--output", "json"], capture_output=True, text=True, timeout=60, env=dict(os.environ)
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_cli_starts_and_describes_an_execution(
    clients: Callable[[str], Any], state_machine: Callable[[dict[str, Any]], str]
) -> None:
    machine = state_machine({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    started = aws_cli("stepfunctions", "start-execution", "--state-machine-arn", machine, "--input", '{"via": "cli"}')
    finished(clients("stepfunctions"), started["executionArn"])
    described = aws_cli("stepfunctions", "describe-execution", "--execution-arn", started["executionArn"])
    assert UUID.match(described["name"])
    assert described["status"] == "SUCCEEDED"
    assert described["inputDetails"] == {"included": True}
    assert json.loads(described["input"]) == {"via": "cli"}
    assert described["redriveCount"] == 0
