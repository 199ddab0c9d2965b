"""`datapipe schedule ls` against moto: what it lists, what it leaves out, and its one-line errors."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from datapipe.cli import cli
from datapipe.naming import Naming

REGION = "eu-west-1"
DEV = Naming()
OTHER_STAGE = Naming(stage="prod")
pytestmark = pytest.mark.usefixtures("towards_moto")  # moto's AWS, never a running emulator


def deploy_triggers(naming: Naming, account: str) -> None:
    """The resources the triggers stack deploys, made with the service APIs under their physical names."""
    scheduler = boto3.client("scheduler", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    group = naming.name("schedules")
    scheduler.create_schedule_group(Name=group)
    dead_letters = f"arn:aws:sqs:{REGION}:{account}:{naming.name('trigger-dlq')}"
    scheduler.create_schedule(
        Name=naming.name("emr-daily"),
        GroupName=group,
        ScheduleExpression="cron(0 2 * * ? *)",
        ScheduleExpressionTimezone="Europe/Paris",
        FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15},
        State="DISABLED",
        Target={
            "Arn": naming.state_machine_arn("emr-workflow", account=account, region=REGION),
            "RoleArn": f"arn:aws:iam::{account}:role/emr-daily-start",
            "Input": '{"CreateCluster":true,"TerminateCluster":true}',
            "DeadLetterConfig": {"Arn": dead_letters},
            "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 86400},
        },
    )
    scheduler.create_schedule(
        Name=naming.name("hourly"),
        GroupName=group,
        ScheduleExpression="rate(1 hour)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": naming.state_machine_arn("transform", account=account, region=REGION),
            "RoleArn": f"arn:aws:iam::{account}:role/hourly-start",
            "Input": "{}",
        },
    )
    events.put_rule(
        Name=naming.name("on-incoming"),
        Description="datapipe: an object created under incoming/ starts transform",
        EventPattern=json.dumps({"source": ["aws.s3"], "detail": {"object": {"key": [{"prefix": "incoming/"}]}}}),
    )
    events.put_targets(
        Rule=naming.name("on-incoming"),
        Targets=[
            {
                "Id": "Target0",
                "Arn": naming.state_machine_arn("transform", account=account, region=REGION),
                "RoleArn": f"arn:aws:iam::{account}:role/on-incoming-start",
                "InputTransformer": {
                    "InputPathsMap": {"key": "$.detail.object.key"},
                    "InputTemplate": '{"Object":{"Key":<key>}}',
                },
            }
        ],
    )
    events.put_rule(
        Name=naming.name("alert-workflow-failed"),
        Description="datapipe: tells the alert topic when a workflow execution failed, timed out or was aborted",
        EventPattern=json.dumps({"source": ["aws.states"]}),
    )
    events.put_targets(
        Rule=naming.name("alert-workflow-failed"),
        Targets=[{"Id": "Target0", "Arn": f"arn:aws:sns:{REGION}:{account}:{naming.name('alerts')}"}],
    )


@pytest.fixture()
def deployed(aws: str) -> str:
    deploy_triggers(DEV, aws)
    deploy_triggers(OTHER_STAGE, aws)  # another stage in the same account must not show up
    events = boto3.client("events", region_name=REGION)
    events.put_rule(Name="someone-elses-rule", EventPattern=json.dumps({"source": ["aws.ec2"]}))
    return aws


def ls(*args: str) -> Any:
    return CliRunner().invoke(cli, ["schedule", "ls", "--region", REGION, *args])


def test_ls_json_lists_our_schedules_and_rules_with_what_they_start(deployed: str) -> None:
    result = ls("--json")
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    assert listing["scheduleGroup"] == "datapipe-dev-schedules"
    assert [s["name"] for s in listing["schedules"]] == ["emr-daily", "hourly"]
    daily = listing["schedules"][0]
    assert daily == {
        "name": "emr-daily",
        "physicalName": "datapipe-dev-emr-daily",
        "group": "datapipe-dev-schedules",
        "state": "DISABLED",
        "expression": "cron(0 2 * * ? *)",
        "timeZone": "Europe/Paris",
        "flexibleWindowMinutes": 15,
        "target": {
            "kind": "workflow",
            "name": "emr-workflow",
            "arn": DEV.state_machine_arn("emr-workflow", account=deployed, region=REGION),
            "input": '{"CreateCluster":true,"TerminateCluster":true}',
        },
        "retryAttempts": 3,
        "maxEventAgeSeconds": 86400,
        "deadLetterQueue": f"arn:aws:sqs:{REGION}:{deployed}:datapipe-dev-trigger-dlq",
    }
    assert listing["schedules"][1]["flexibleWindowMinutes"] is None
    assert listing["schedules"][1]["target"]["name"] == "transform"

    rules = {r["name"]: r for r in listing["rules"]}
    assert set(rules) == {"alert-workflow-failed", "on-incoming"}
    (start,) = rules["on-incoming"]["targets"]
    assert (start["kind"], start["name"], start["input"]) == ("workflow", "transform", '{"Object":{"Key":<key>}}')
    assert rules["on-incoming"]["eventPattern"]["detail"] == {"object": {"key": [{"prefix": "incoming/"}]}}
    (alert,) = rules["alert-workflow-failed"]["targets"]
    assert (alert["kind"], alert["name"]) == ("topic", "alerts")


def test_ls_prints_tables_a_person_can_read(deployed: str) -> None:
    result = ls()
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    daily = next(line for line in lines if "emr-daily" in line)
    for text in ("DISABLED", "cron(0 2 * * ? *)", "Europe/Paris", "15 min", "workflow emr-workflow"):
        assert text in daily
    incoming = next(line for line in lines if "on-incoming" in line)
    assert "an object created under incoming/ starts transform" in incoming
    assert "workflow transform" in incoming
    assert "someone-elses-rule" not in result.output


def deploy_imported_pipeline_schedule(naming: Naming, account: str, pipeline: str) -> None:
    """What the pipelines stack deploys for an imported pipeline with a schedule: a schedule in the default group."""
    boto3.client("scheduler", region_name=REGION).create_schedule(
        Name=naming.name(pipeline),
        ScheduleExpression="rate(15 minutes)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": naming.state_machine_arn(pipeline, account=account, region=REGION),
            "RoleArn": f"arn:aws:iam::{account}:role/{naming.name(pipeline)}-schedule",
            "Input": '{"scheduledStartTime":"<aws.scheduler.scheduled-time>"}',
        },
    )


def test_ls_lists_the_imported_pipelines_schedules_of_the_default_group(deployed: str) -> None:
    deploy_imported_pipeline_schedule(DEV, deployed, "shell-with-dependencies")
    deploy_imported_pipeline_schedule(OTHER_STAGE, deployed, "shell-with-dependencies")
    boto3.client("scheduler", region_name=REGION).create_schedule(
        Name="someone-elses-schedule",
        ScheduleExpression="rate(1 day)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": f"arn:aws:sqs:{REGION}:{deployed}:theirs", "RoleArn": f"arn:aws:iam::{deployed}:role/theirs"},
    )
    listing = json.loads(ls("--json").output)
    by_name = {s["name"]: s for s in listing["schedules"]}
    assert set(by_name) == {"emr-daily", "hourly", "shell-with-dependencies"}
    imported = by_name["shell-with-dependencies"]
    assert (imported["group"], imported["physicalName"]) == ("default", "datapipe-dev-shell-with-dependencies")
    assert imported["expression"] == "rate(15 minutes)"
    assert (imported["target"]["kind"], imported["target"]["name"]) == ("workflow", "shell-with-dependencies")

    text = ls().output.splitlines()
    imported_line = next(line for line in text if line.startswith("shell-with-dependencies\t"))
    assert imported_line.split("\t")[:3] == ["shell-with-dependencies", "default", "ENABLED"]
    assert "workflow shell-with-dependencies" in imported_line


def test_ls_with_only_an_imported_pipeline_schedule_is_not_empty(aws: str) -> None:
    deploy_imported_pipeline_schedule(DEV, aws, "nightly")
    result = ls("--json")
    assert result.exit_code == 0, result.output
    assert [s["physicalName"] for s in json.loads(result.output)["schedules"]] == ["datapipe-dev-nightly"]


def test_ls_piped_prints_one_whole_record_per_line(deployed: str) -> None:
    result = ls()
    header = "name\tgroup\tstate\twhen\ttime zone\twindow\tstarts\tinput"
    lines = result.output.splitlines()
    assert header in lines
    records = lines[lines.index(header) + 1 :]
    daily = next(line for line in records if line.startswith("emr-daily\t")).split("\t")
    assert daily == [
        "emr-daily", "datapipe-dev-schedules", "DISABLED", "cron(0 2 * * ? *)", "Europe/Paris", "15 min",
        "workflow emr-workflow", '{"CreateCluster":true,"TerminateCluster":true}',
    ]  # fmt: skip
    assert "…" not in result.output


def test_ls_of_another_stage_shows_that_stage_only(deployed: str) -> None:
    listing = json.loads(ls("--json", "--stage", "prod").output)
    assert listing["scheduleGroup"] == "datapipe-prod-schedules"
    assert {s["physicalName"] for s in listing["schedules"]} == {"datapipe-prod-emr-daily", "datapipe-prod-hourly"}
    assert all(r["physicalName"].startswith("datapipe-prod-") for r in listing["rules"])


def test_ls_when_nothing_is_deployed_says_what_to_check(aws: str) -> None:
    result = ls()
    assert result.exit_code == 1
    assert result.output == (
        f"Error: nothing of datapipe-dev-* is deployed on AWS ({REGION}): deploy the app, or check --prefix, --stage "
        "and --region\n"
    )


def test_ls_with_rules_but_no_schedule_group_still_lists_the_rules(aws: str) -> None:
    events = boto3.client("events", region_name=REGION)
    events.put_rule(Name="datapipe-dev-on-incoming", EventPattern=json.dumps({"source": ["aws.s3"]}))
    listing = json.loads(ls("--json").output)
    assert listing["scheduleGroup"] is None
    assert listing["schedules"] == []
    assert [r["name"] for r in listing["rules"]] == ["on-incoming"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stage", "Prod"], "Error: --stage must be a lower-case name (letters, digits, dashes), got 'Prod'\n"),
        (
            ["--prefix", "data pipe"],
            "Error: --prefix must be a lower-case name (letters, digits, dashes), got 'data pipe'\n",
        ),
    ],
)
def test_ls_rejects_a_bad_name_in_one_line(args: list[str], message: str) -> None:
    result = ls(*args)
    assert result.exit_code == 2
    assert result.output == message


def test_ls_with_an_unreachable_endpoint_fails_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    result = ls("--endpoint-url", "http://127.0.0.1:9")
    assert result.exit_code == 1
    assert result.output.startswith("Error: listing triggers on http://127.0.0.1:9: Could not connect to the endpoint")
    assert result.output.count("\n") == 1


def test_ls_with_a_malformed_endpoint_fails_in_one_line() -> None:
    result = ls("--endpoint-url", "not a url")
    assert result.exit_code == 2
    assert result.output.startswith("Error: --endpoint-url must be an http:// or https:// URL")
    assert result.output.count("\n") == 1
