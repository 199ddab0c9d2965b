"""The WorkerGroups stack: activities, least-privilege runner IAM, and the sample CreateDirectory pipeline."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.assertions import Match, Template

from datapipe.naming import Naming
from stacks.config import SettingsError, WorkerGroupSettings, load_settings
from stacks.worker_groups import SAMPLE_COMMAND, WorkerGroups, shell_command_task

PSEUDO = {"AWS::AccountId": "123456789012", "AWS::Region": "eu-west-1", "AWS::Partition": "aws"}


def resolve(value: Any, refs: dict[str, str] | None = None) -> Any:
    """Render Fn::Join / Ref of a template value as text (pseudo parameters and given logical ids only)."""
    refs = {**PSEUDO, **(refs or {})}
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(part, refs)) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return refs.get(value["Ref"], f"<{value['Ref']}>")
    return value


def resources(template: Mapping[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


@pytest.fixture(scope="module")
def worker_groups(templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return templates["WorkerGroups"]


def test_each_configured_worker_group_has_an_activity_named_for_the_runner(
    template_of: Callable[[str], Template],
) -> None:
    template_of("WorkerGroups").resource_count_is("AWS::StepFunctions::Activity", 1)
    template_of("WorkerGroups").has_resource_properties(
        "AWS::StepFunctions::Activity", {"Name": Naming().activity("wg-12345")}
    )


def test_the_runner_policy_reaches_only_its_own_activity_and_its_principals_log_prefix(
    worker_groups: dict[str, Any], templates: dict[str, dict[str, Any]]
) -> None:
    (activity_id,) = resources(worker_groups, "AWS::StepFunctions::Activity")
    (policy,) = resources(worker_groups, "AWS::IAM::ManagedPolicy").values()
    assert policy["Properties"]["ManagedPolicyName"] == "datapipe-dev-taskrunner-wg-12345"
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert set(statements) == {"PollOwnActivity", "ReportOwnTasks", "WriteOwnAttemptLogsOnce", "WriteOwnRunnerLogs"}
    assert all(s["Effect"] == "Allow" for s in statements.values())

    assert sorted(statements["PollOwnActivity"]["Action"]) == ["states:DescribeActivity", "states:GetActivityTask"]
    assert sorted(statements["ReportOwnTasks"]["Action"]) == [
        "states:SendTaskFailure",
        "states:SendTaskHeartbeat",
        "states:SendTaskSuccess",
    ]
    for sid in ("PollOwnActivity", "ReportOwnTasks"):
        assert statements[sid]["Resource"] == {"Ref": activity_id}

    storage = templates["Storage"]
    (log_bucket,) = [r for k, r in resources(storage, "AWS::S3::Bucket").items() if k.startswith("StorageLogBucket")]
    own_prefix = f"arn:aws:s3:::{resolve(log_bucket['Properties']['BucketName'])}/taskrunner/wg-12345/${{aws:userid}}"
    # Attempt logs: the runner principal's own prefix, and only a PutObject that cannot overwrite (If-None-Match).
    attempts = statements["WriteOwnAttemptLogsOnce"]
    assert attempts["Action"] == "s3:PutObject"
    assert resolve(attempts["Resource"]) == f"{own_prefix}/attempts/*"
    assert attempts["Condition"] == {"Null": {"s3:if-none-match": "false"}}
    # The runner's own log backups: its own prefix too.
    runners = statements["WriteOwnRunnerLogs"]
    assert (runners["Action"], resolve(runners["Resource"])) == ("s3:PutObject", f"{own_prefix}/runners/*")
    assert "Condition" not in runners


def test_no_runner_role_unless_asked(template_of: Callable[[str], Template]) -> None:
    template_of("WorkerGroups").resource_count_is("AWS::IAM::Role", 1)  # the state machine's own role only
    template_of("WorkerGroups").has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": Match.object_like(
                {"Statement": [Match.object_like({"Principal": {"Service": "states.amazonaws.com"}})]}
            )
        },
    )


def sample_definition(worker_groups: dict[str, Any]) -> tuple[dict[str, Any], str]:
    (machine,) = resources(worker_groups, "AWS::StepFunctions::StateMachine").values()
    (activity_id,) = resources(worker_groups, "AWS::StepFunctions::Activity")
    text = resolve(machine["Properties"]["DefinitionString"], {activity_id: "ACTIVITY"})
    return json.loads(text), machine["Properties"]["StateMachineName"]


def test_the_sample_pipeline_fixes_its_command_and_takes_only_a_directory_name_as_data(
    worker_groups: dict[str, Any],
) -> None:
    definition, name = sample_definition(worker_groups)
    assert name == "datapipe-dev-create-directory"
    states = definition["States"]
    assert states["Use_Default_Directory"]["Result"] == "new-directory"
    assert states["Directory_Not_Text"] == {
        "Type": "Fail",
        "Error": "InvalidInput",
        "Cause": "field 'directory' of the input must be a string",
    }
    task = states["CreateDirectory"]
    assert task["Resource"] == "ACTIVITY"
    assert (task["HeartbeatSeconds"], task["TimeoutSeconds"]) == (60, 3600)
    assert task["Parameters"] == {
        "type": "ShellCommandActivity",
        "workflow.$": "$$.StateMachine.Name",
        "execution.$": "$$.Execution.Name",
        "activityId": "CreateDirectory",
        "attempt.$": "$$.State.RetryCount",
        "heartbeatSeconds": 60,
        "command": SAMPLE_COMMAND,
        "environment": {"DIRECTORY.$": "$.directory"},
        "scriptArgument": [],
        "stage": False,
        "input": [],
        "output": [],
    }
    # A lost or stopped runner is retried on another runner; a failing command is not, by default.
    assert task["Retry"] == [
        {
            "ErrorEquals": ["States.HeartbeatTimeout", "States.Timeout", "TaskRunner.Interrupted"],
            "IntervalSeconds": 10,
            "MaxAttempts": 2,
            "BackoffRate": 2,
        }
    ]


def test_the_sample_pipeline_logs_and_traces(template_of: Callable[[str], Template]) -> None:
    template_of("WorkerGroups").has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {"TracingConfiguration": {"Enabled": True}, "LoggingConfiguration": Match.object_like({"Level": "ALL"})},
    )


def test_several_groups_a_runner_role_and_command_retries() -> None:
    """The construct on its own, with settings the app does not use by default."""
    settings = WorkerGroupSettings(names=("wg-a", "wg-b"), runner_role=True, command_retries=3, heartbeat_seconds=5)
    stack = cdk.Stack(cdk.App(), "Groups", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    WorkerGroups(
        stack,
        "WorkerGroups",
        naming=Naming(stage="test"),
        settings=settings,
        log_bucket=s3.Bucket(stack, "Logs"),
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::StepFunctions::Activity", 2)
    template.resource_count_is("AWS::IAM::ManagedPolicy", 2)
    template.has_resource_properties(
        "AWS::IAM::InstanceProfile", {"InstanceProfileName": "datapipe-test-taskrunner-wg-a"}
    )
    for group in ("wg-a", "wg-b"):
        template.has_resource_properties(
            "AWS::IAM::Role",
            {
                "RoleName": f"datapipe-test-taskrunner-{group}",
                "AssumeRolePolicyDocument": Match.object_like(
                    {"Statement": [Match.object_like({"Principal": {"Service": "ec2.amazonaws.com"}})]}
                ),
                "ManagedPolicyArns": [{"Ref": Match.string_like_regexp(f"RunnerPolicy{group.replace('-', '')}")}],
            },
        )
    definition = json.loads(
        resolve(
            next(iter(resources(template.to_json(), "AWS::StepFunctions::StateMachine").values()))["Properties"][
                "DefinitionString"
            ]
        )
    )
    retries = definition["States"]["CreateDirectory"]["Retry"]
    assert {
        "ErrorEquals": ["TaskRunner.CommandFailed"],
        "IntervalSeconds": 10,
        "MaxAttempts": 3,
        "BackoffRate": 2,
    } in retries
    assert definition["States"]["CreateDirectory"]["HeartbeatSeconds"] == 5


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"workerGroups": {"names": "wg 1"}}, "setting 'workerGroups.names[0]' must be a worker group name"),
        ({"workerGroups": {"names": "wg-1,wg-1"}}, "lists a worker group twice"),
        ({"workerGroups": {"names": "[]"}}, "must name at least one worker group"),
        ({"workerGroups": {"heartbeatSeconds": "600", "taskTimeoutSeconds": "600"}}, "must be less than"),
        ({"workerGroups": {"retries": "11"}}, "setting 'workerGroups.retries' must be between 0 and 10"),
    ],
)
def test_bad_worker_group_settings_are_named(values: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("[", r"\[")):
        load_settings(values)


def test_worker_group_settings_from_the_command_line() -> None:
    settings = load_settings({"workerGroups.names": "wg-1,wg-2", "workerGroups.heartbeatSeconds": "2"})
    assert settings.worker_groups.names == ("wg-1", "wg-2")
    assert settings.worker_groups.heartbeat_seconds == 2


def test_a_shell_task_id_must_be_usable_as_a_result_path() -> None:
    stack = cdk.Stack(cdk.App(), "Ids")
    activity = sfn.Activity(stack, "Activity")
    with pytest.raises(ValueError, match="'Create Directory' must be 1-80 letters, digits or '_'"):
        shell_command_task(stack, "Create Directory", activity=activity, settings=WorkerGroupSettings(), shell={})


@pytest.mark.parametrize(
    ("shell", "message"),
    [
        ({"command": sfn.JsonPath.string_at("$.command")}, "field 'command' must be fixed in the definition"),
        (
            {"command": sfn.JsonPath.format("echo {}", sfn.JsonPath.string_at("$.name"))},
            "field 'command' must be fixed in the definition",
        ),
        ({"scriptUri": sfn.JsonPath.string_at("$.script")}, "field 'scriptUri' must be fixed in the definition"),
        ({"command": "true", "secrets": {"T": sfn.JsonPath.string_at("$.ref")}}, "field 'secrets' must be fixed"),
        ({"command": "true", "environment": sfn.JsonPath.object_at("$.env")}, "field 'environment' must be an object"),
        ({"command": "true", "workflow": "other"}, "unknown field 'workflow'"),
        ({"command": sfn.JsonPath.string_at("$.constant")}, "field 'command' must be fixed in the definition"),
        ({"command": sfn.JsonPath.string_at("$.const")}, "field 'command' must be fixed in the definition"),
    ],
)
def test_no_caller_can_make_a_task_run_text_from_the_input(shell: dict[str, Any], message: str) -> None:
    stack = cdk.Stack(cdk.App(), "Fixed")
    activity = sfn.Activity(stack, "Activity")
    with pytest.raises(ValueError, match=message):
        shell_command_task(stack, "Task", activity=activity, settings=WorkerGroupSettings(), shell=shell)


def test_input_values_may_reach_a_task_as_environment_values_and_arguments() -> None:
    stack = cdk.Stack(cdk.App(), "Data")
    activity = sfn.Activity(stack, "Activity")
    task = shell_command_task(
        stack,
        "Task",
        activity=activity,
        settings=WorkerGroupSettings(),
        shell={
            "command": 'mkdir -- "$NAME" "$1"',
            "environment": {"NAME": sfn.JsonPath.string_at("$.name")},
            "scriptArgument": sfn.JsonPath.array(sfn.JsonPath.string_at("$.other")),
            "secrets": {"TOKEN": "ssm:/prod/token"},
        },
    )
    parameters = task.to_state_json()["Parameters"]
    assert parameters["command"] == 'mkdir -- "$NAME" "$1"'
    assert parameters["environment"] == {"NAME.$": "$.name"}
    assert parameters["scriptArgument.$"] == "States.Array($.other)"
    assert parameters["secrets"] == {"TOKEN": "ssm:/prod/token"}


def test_a_command_may_be_read_from_the_constants_its_definition_sets() -> None:
    """Text with `${` is kept out of the template in `$.const` (set by the definition's first states), as the
    importer does: that is fixed by the definition, not by the input."""
    stack = cdk.Stack(cdk.App(), "Constants")
    task = shell_command_task(
        stack,
        "Task",
        activity=sfn.Activity(stack, "Activity"),
        settings=WorkerGroupSettings(),
        shell={"command": sfn.JsonPath.string_at("$.const.c0")},
    )
    assert task.to_state_json()["Parameters"]["command.$"] == "$.const.c0"
