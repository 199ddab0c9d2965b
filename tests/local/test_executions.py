"""Executions as AWS runs them: names, the context object, DescribeExecution's fields, RedriveExecution."""

from __future__ import annotations

import datetime
import json
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import ROLE_ARN, history, wait_for_execution

UUID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# The context object's StartTime, as in the Step Functions documentation: "2019-03-26T20:14:13.192Z".
START_TIME_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def create_machine(aws: Callable[[str], Any], definition: dict[str, Any]) -> str:
    created = aws("stepfunctions").create_state_machine(
        name=f"exec-{uuid.uuid4().hex[:10]}", definition=json.dumps(definition), roleArn=ROLE_ARN
    )
    return str(created["stateMachineArn"])


CONTEXT_ECHO = {
    "StartAt": "Echo",
    "States": {
        "Echo": {
            "Type": "Pass",
            "Parameters": {
                "name.$": "$$.Execution.Name",
                "startTime.$": "$$.Execution.StartTime",
                "formatted.$": "States.Format('run {} at {}', $$.Execution.Name, $$.Execution.StartTime)",
            },
            "End": True,
        }
    },
}


def test_unnamed_executions_get_distinct_uuid_names_and_text_context(aws: Callable[[str], Any]) -> None:
    sfn = aws("stepfunctions")
    machine = create_machine(aws, CONTEXT_ECHO)
    first = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    second = sfn.start_execution(stateMachineArn=machine)["executionArn"]  # moto: ExecutionAlreadyExists
    assert first != second
    for arn in (first, second):
        described = wait_for_execution(aws, arn)
        assert described["status"] == "SUCCEEDED", described.get("cause")
        assert UUID_PATTERN.match(described["name"]), described["name"]
        assert arn.endswith(f":{described['name']}")
        output = json.loads(described["output"])
        assert output["name"] == described["name"]
        assert START_TIME_PATTERN.match(output["startTime"]), output["startTime"]
        started = datetime.datetime.fromisoformat(output["startTime"].replace("Z", "+00:00"))
        assert abs((started - described["startDate"]).total_seconds()) < 0.01
        assert output["formatted"] == f"run {described['name']} at {output['startTime']}"


def test_describe_execution_has_input_details_and_redrive_fields(aws: Callable[[str], Any]) -> None:
    sfn = aws("stepfunctions")
    machine = create_machine(aws, {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    arn = sfn.start_execution(stateMachineArn=machine, input='{"a": 1}')["executionArn"]
    described = wait_for_execution(aws, arn)
    assert described["inputDetails"] == {"included": True}
    assert described["outputDetails"] == {"included": True}
    assert described["redriveCount"] == 0
    assert described["redriveStatus"] == "NOT_REDRIVABLE"
    assert described["redriveStatusReason"] == "Execution is SUCCEEDED and cannot be redriven"


def test_redrive_resumes_a_failed_execution_at_the_failed_state_with_earlier_results(
    aws: Callable[[str], Any],
) -> None:
    sfn = aws("stepfunctions")
    definition = {
        "StartAt": "First",
        "States": {
            "First": {"Type": "Pass", "Parameters": {"redrives.$": "$$.Execution.RedriveCount"},
                      "ResultPath": "$.first", "Next": "Flaky"},
            "Flaky": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:s3:headBucket",
                "Parameters": {"Bucket.$": "$.bucket"},
                "ResultPath": None,
                "Next": "Last",
            },
            "Last": {"Type": "Pass", "Parameters": {"count.$": "$$.Execution.RedriveCount",
                                                    "time.$": "$$.Execution.RedriveTime"},
                     "ResultPath": "$.redrive", "End": True},
        },
    }
    bucket = f"redrive-{uuid.uuid4().hex[:10]}"
    machine = create_machine(aws, definition)
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"bucket": bucket}))["executionArn"]
    failed = wait_for_execution(aws, arn)
    assert failed["status"] == "FAILED"
    assert failed["redriveStatus"] == "REDRIVABLE"

    aws("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    redriven = sfn.redrive_execution(executionArn=arn)
    assert isinstance(redriven["redriveDate"], datetime.datetime)
    done = wait_for_execution(aws, arn)
    assert done["status"] == "SUCCEEDED", done.get("cause")
    output = json.loads(done["output"])
    redrive = output.pop("redrive")
    assert output == {"bucket": bucket, "first": {"redrives": 0}}  # First ran before the redrive, once
    assert redrive["count"] == 1 and START_TIME_PATTERN.match(redrive["time"]), redrive  # the context object's
    assert done["redriveCount"] == 1
    assert done["redriveDate"] == redriven["redriveDate"]
    assert "error" not in done

    events = history(aws, arn)
    kinds = [event["type"] for event in events]
    assert kinds.count("ExecutionStarted") == 1
    assert kinds.count("ExecutionRedriven") == 1
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    assert entered == ["First", "Flaky", "Flaky", "Last"]  # First ran once: its result carried over
    redriven_event = events[kinds.index("ExecutionRedriven")]
    assert redriven_event["executionRedrivenEventDetails"] == {"redriveCount": 1}
    assert kinds.index("ExecutionFailed") < kinds.index("ExecutionRedriven")


def test_redrive_of_a_stopped_execution_and_refusals(aws: Callable[[str], Any]) -> None:
    sfn = aws("stepfunctions")
    machine = create_machine(
        aws, {"StartAt": "Sleep", "States": {"Sleep": {"Type": "Wait", "Seconds": 1, "End": True}}}
    )
    arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    with pytest.raises(ClientError) as running:
        sfn.redrive_execution(executionArn=arn)
    assert running.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    assert "RUNNING" in running.value.response["Error"]["Message"]
    sfn.stop_execution(executionArn=arn)
    assert wait_for_execution(aws, arn)["status"] == "ABORTED"
    sfn.redrive_execution(executionArn=arn)
    done = wait_for_execution(aws, arn)
    assert done["status"] == "SUCCEEDED"
    assert done["redriveCount"] == 1
    with pytest.raises(ClientError) as succeeded:
        sfn.redrive_execution(executionArn=arn)
    assert succeeded.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    with pytest.raises(ClientError) as unknown:
        sfn.redrive_execution(executionArn=arn.rsplit(":", 1)[0] + ":no-such-run")
    assert unknown.value.response["Error"]["Code"] == "ExecutionDoesNotExist"


@pytest.mark.parametrize(("name", "code"), [("has space", "InvalidName"), ("x/y", "InvalidName"), ("n" * 81, None)])
def test_an_execution_name_aws_refuses_is_refused(aws: Callable[[str], Any], name: str, code: str | None) -> None:
    machine = create_machine(aws, {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    with pytest.raises(ClientError) as refused:
        aws("stepfunctions").start_execution(stateMachineArn=machine, name=name)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    if code:
        assert refused.value.response["Error"]["Code"] == code


def test_two_redrives_at_once_start_one_run(aws: Callable[[str], Any]) -> None:
    sfn = aws("stepfunctions")
    machine = create_machine(
        aws, {"StartAt": "Sleep", "States": {"Sleep": {"Type": "Wait", "Seconds": 1, "End": True}}}
    )
    arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    sfn.stop_execution(executionArn=arn)
    outcomes: list[str] = []

    def redrive() -> None:
        try:
            sfn.redrive_execution(executionArn=arn)
            outcomes.append("redriven")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])

    threads = [threading.Thread(target=redrive) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ExecutionNotRedrivable"] * 3 + ["redriven"]
    assert wait_for_execution(aws, arn)["redriveCount"] == 1
