"""`datapipe ls` for someone who may read Step Functions but not the schedules and rules (moto, in process)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner
from moto import mock_aws

from datapipe.cli import cli

PASS_ONLY = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


def test_ls_without_the_right_to_read_schedules_lists_the_workflows_and_says_what_it_could_not_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="eu-west-1")
        for name in ("datapipe-dev-nightly", "someone-else"):
            sfn.create_state_machine(name=name, definition=PASS_ONLY, roleArn="arn:aws:iam::123456789012:role/run")
        scheduler = boto3.client("scheduler", region_name="eu-west-1")
        denied = Stubber(scheduler)
        denied.add_client_error("get_schedule_group", "AccessDeniedException", "not authorized", 400)
        denied.activate()

        def clients(service: str, target: Any) -> Any:
            if service == "scheduler":
                return scheduler
            return boto3.client(service, region_name="eu-west-1")  # type: ignore[call-overload]

        monkeypatch.setattr("datapipe.operate.cli.client", clients)
        result = CliRunner().invoke(cli, ["ls", "--json", "--region", "eu-west-1"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["workflows"] == [
            {
                "name": "nightly",
                "stateMachineArn": "arn:aws:states:eu-west-1:123456789012:stateMachine:datapipe-dev-nightly",
                "kind": "other",
                "triggers": None,
                "lastRun": None,
            }
        ]
        assert result.stderr == (
            "Warning: cannot read schedules and rules (AccessDeniedException): what starts each workflow is unknown\n"
        )
