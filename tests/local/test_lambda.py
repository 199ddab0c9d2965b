"""Lambda code runs in-process: direct Invoke, `lambda:invoke` tasks, plain function ARNs, errors, faults."""

from __future__ import annotations

import io
import json
import textwrap
import uuid
import zipfile
from collections.abc import Callable
from typing import Any

import pytest

from datapipe.local.extensions import Extensions

from .conftest import run_state_machine, wait_for_execution

POWERTOOLS_HANDLER = textwrap.dedent(
    """
    import os

    import boto3
    from aws_lambda_powertools import Logger

    from helpers import shout

    logger = Logger()


    @logger.inject_lambda_context
    def handler(event, context):
        if event.get("fail"):
            raise ValueError(f"bad input: {event['fail']}")
        if event.get("list_queues"):
            boto3.client("sqs").list_queues()
        return {
            "greeting": shout(os.environ["GREETING"]),
            "service": logger.service,
            "function": context.function_name,
            "memory": context.memory_limit_in_mb,
            "request_id_set": bool(context.aws_request_id),
            "time_left": context.get_remaining_time_in_millis() > 0,
            "event": event,
        }
    """
)
HELPERS = "def shout(text):\n    return text.upper() + '!'\n"
OTHER_HANDLER = "def handler(event, context):\n    return {'other': True}\n"


def code_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def lambda_role(aws: Callable[[str], Any]) -> str:
    iam = aws("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    try:
        return str(iam.get_role(RoleName="emulator-test-lambda")["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="emulator-test-lambda", AssumeRolePolicyDocument=json.dumps(trust))
        return str(role["Role"]["Arn"])


def create_function(aws: Callable[[str], Any], files: dict[str, str], variables: dict[str, str]) -> str:
    name = f"fn-{uuid.uuid4().hex[:8]}"
    aws("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=lambda_role(aws),
        Handler="handler.handler",
        Code={"ZipFile": code_zip(files)},
        MemorySize=256,
        Timeout=30,
        Environment={"Variables": variables},
    )
    return name


@pytest.fixture()
def function(aws: Callable[[str], Any]) -> str:
    files = {"handler.py": POWERTOOLS_HANDLER, "helpers.py": HELPERS}
    return create_function(aws, files, {"GREETING": "hello", "POWERTOOLS_SERVICE_NAME": "greeter"})


def test_invoke_runs_the_deployed_code_with_its_environment(aws: Callable[[str], Any], function: str) -> None:
    response = aws("lambda").invoke(FunctionName=function, Payload=json.dumps({"list_queues": True}))
    assert response["StatusCode"] == 200
    result = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, result
    assert result["greeting"] == "HELLO!"
    assert result["service"] == "greeter"  # POWERTOOLS_SERVICE_NAME from the function's configuration
    assert result["function"] == function
    assert result["memory"] == 256
    assert result["request_id_set"] and result["time_left"]


def test_an_exception_is_an_unhandled_function_error(aws: Callable[[str], Any], function: str) -> None:
    response = aws("lambda").invoke(FunctionName=function, Payload=json.dumps({"fail": "x"}))
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "bad input: x"


def test_two_functions_with_the_same_module_name_stay_apart(aws: Callable[[str], Any], function: str) -> None:
    other = create_function(aws, {"handler.py": OTHER_HANDLER}, {})
    lam = aws("lambda")
    assert json.loads(lam.invoke(FunctionName=other)["Payload"].read()) == {"other": True}
    assert json.loads(lam.invoke(FunctionName=function)["Payload"].read())["greeting"] == "HELLO!"


def test_lambda_invoke_tasks_wrap_the_payload_and_surface_errors(aws: Callable[[str], Any], function: str) -> None:
    function_arn = aws("lambda").get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    definition = {
        "StartAt": "Invoke",
        "States": {
            "Invoke": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function, "Payload.$": "$"},
                "ResultPath": "$.invoked",
                "Next": "Plain",
            },
            "Plain": {
                "Type": "Task",
                "Resource": function_arn,
                "Parameters": {"fail": "from the plain ARN"},
                "Catch": [{"ErrorEquals": ["ValueError"], "ResultPath": "$.caught", "Next": "Done"}],
                "Next": "Done",
            },
            "Done": {"Type": "Pass", "End": True},
        },
    }
    _, execution_arn = run_state_machine(aws, definition, {"n": 1})
    described = wait_for_execution(aws, execution_arn)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    output = json.loads(described["output"])
    assert output["invoked"]["StatusCode"] == 200
    assert output["invoked"]["Payload"]["event"] == {"n": 1}
    assert output["caught"]["Error"] == "ValueError"
    assert json.loads(output["caught"]["Cause"])["errorMessage"] == "bad input: from the plain ARN"


def test_an_injected_lambda_fault_is_a_function_error(
    aws: Callable[[str], Any], function: str, emulator: Extensions
) -> None:
    emulator.faults.fail_lambda(function, cause="out of memory")
    definition = {
        "StartAt": "Invoke",
        "States": {
            "Invoke": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function},
                "End": True,
            }
        },
    }
    _, execution_arn = run_state_machine(aws, definition)
    described = wait_for_execution(aws, execution_arn)
    assert described["status"] == "FAILED"
    assert described["error"] == "Lambda.Unknown"
    assert "out of memory" in described["cause"]


PRINTING_HANDLER = textwrap.dedent(
    """
    import sys


    def handler(event, context):
        print("printed by the handler", event["n"])
        print("warned by the handler", file=sys.stderr)
        return event["n"]
    """
)


def test_what_a_handler_prints_goes_to_its_log_group_not_the_terminal(
    aws: Callable[[str], Any], capfd: pytest.CaptureFixture[str]
) -> None:
    name = create_function(aws, {"handler.py": PRINTING_HANDLER}, {})
    response = aws("lambda").invoke(FunctionName=name, Payload=json.dumps({"n": 7}))
    assert json.loads(response["Payload"].read()) == 7
    printed = capfd.readouterr()
    assert "by the handler" not in printed.out + printed.err
    events = aws("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    assert [e["message"] for e in events] == ["printed by the handler 7", "warned by the handler"]
