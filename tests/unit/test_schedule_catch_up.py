"""`datapipe schedule catch-up` against moto: the runs it starts, and its one-line errors on bad input."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from datapipe.cli import cli

REGION = "eu-west-1"
RECORD = "/datapipe/dev/pipelines/daily-load/schedules"
MACHINE = "datapipe-dev-pipeline-daily-load"
pytestmark = pytest.mark.usefixtures("towards_moto")  # moto's AWS, never a running emulator


def record(value: str) -> None:
    boto3.client("ssm", region_name=REGION).put_parameter(Name=RECORD, Value=value, Type="String")


def deploy(account: str, schedules: list[dict[str, Any]], policy: str = "last") -> str:
    arn = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name=MACHINE, roleArn=f"arn:aws:iam::{account}:role/r",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}),
    )["stateMachineArn"]
    record(json.dumps({"stateMachine": MACHINE, "catchUp": policy, "catchUpLimit": 100, "schedules": schedules}))
    return str(arn)


def catch_up(*args: str) -> Any:
    return CliRunner().invoke(cli, ["schedule", "catch-up", "--region", REGION, *args])


def test_the_deployments_policy_starts_the_last_missed_interval_with_its_time(aws: str) -> None:
    # A weekly cron schedule from Monday 2024-01-01 that ended with its third interval: the last is 2024-01-15.
    arn = deploy(aws, [{"id": "Weekly", "type": "cron", "period": "1 week", "start": "2024-01-01T00:00:00",
                        "end": "2024-01-15T00:00:00"}])
    result = catch_up("daily-load", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"schedule": "Weekly", "scheduledStartTime": "2024-01-15T00:00:00Z",
                                          "execution": "catch-up-Weekly-20240115T000000", "started": True}]
    [execution] = boto3.client("stepfunctions", region_name=REGION).list_executions(stateMachineArn=arn)["executions"]
    assert execution["name"] == "catch-up-Weekly-20240115T000000"


@pytest.mark.parametrize(
    ("args", "setup", "code", "message"),
    [
        (["no-such"], None, 1, "Error: pipeline no-such has no schedules deployed (no parameter "
                               "/datapipe/dev/pipelines/no-such/schedules)"),
        (["daily-load"], "[1, 2]", 2, f"Error: the schedule record {RECORD} is not what the pipelines stack writes"),
        (["daily-load"], '{"schedules": [{"id": "S", "type": "cron", "period": "1 fortnight"}]}', 2,
         f"Error: the schedule record {RECORD} has an entry that cannot be read"),
        (["daily-load"], '{"schedules": [{"id": "S", "type": "cron", "period": "1 day", "start": "yesterday"}]}', 2,
         f"Error: the schedule record {RECORD} has an entry that cannot be read"),
        (["daily-load"], '{"schedules": [], "catchUpLimit": "9" }', 2, f"Error: the catch-up limit of {RECORD} must "
         "be a number from 1 to 1000, got '9'"),
        (["daily-load"], '{"schedules": [], "catchUp": "everything"}', 2, f"Error: the catch-up policy of {RECORD} "
         "must be one of none, last, all, got 'everything'"),
    ],
)
def test_a_missing_or_damaged_record_is_one_line(
    aws: str, args: list[str], setup: str | None, code: int, message: str
) -> None:
    if setup is not None:
        record(setup)
    assert_one_line(catch_up(*args), code, message)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Daily Load"], "Error: PIPELINE must be a lower-case name"),
        (["x" * 100_000], "Error: PIPELINE must be a lower-case name"),
        (["daily-load", "--limit", "0"], "Error: Invalid value for '--limit'"),
        (["daily-load", "--policy", "some"], "Error: Invalid value for '--policy'"),
    ],
)
def test_bad_options_are_one_line_before_any_request(args: list[str], message: str) -> None:
    result = catch_up(*args)
    assert_one_line(result, 2, message)
    assert len(result.output) < 300  # a huge value is quoted short


def assert_one_line(result: Any, code: int, message: str) -> None:
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and lines[0].startswith(message), result.output
