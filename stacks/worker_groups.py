"""Worker groups: a Step Functions activity per group, IAM for the runners that poll them, the sample shell pipeline.

`datapipe taskrunner --worker-group G` polls the activity `Naming.activity(G)`. A state machine hands a
ShellCommandActivity to a group with `shell_command_task`, which fixes the task input contract (docs/taskrunner.md),
the heartbeat and task timeouts and the retries. The seed's CreateDirectory example is deployed as a sample.

Starting an execution is a weaker right than deploying one: the definition fixes what a task runs (its command,
script and secret references); an execution's input may only fill declared parameters, passed as data (environment
values, arguments), never as shell text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from datapipe.naming import LOG_BUCKET_PURPOSE, TASK_RUNNER_LOG_PREFIX, Naming
from datapipe.taskrunner.contract import (
    COMMAND_FAILED,
    RUNNER_INTERRUPTED,
    SHELL_COMMAND_ACTIVITY,
)
from stacks.common import acknowledge_wildcards, logged_state_machine, nag_own_bucket_arn, own_bucket_arn
from stacks.config import WorkerGroupSettings

SAMPLE_WORKFLOW = "create-directory"
SAMPLE_DIRECTORY = "new-directory"
# The sample's one declared parameter, `directory`, reaches the command as $DIRECTORY: data, checked before use.
SAMPLE_COMMAND = (
    'case "$DIRECTORY" in ""|.|..|*[!A-Za-z0-9._-]*) '
    'echo "directory must be letters, digits, dots, dashes or underscores, got: $DIRECTORY" >&2; exit 2;; esac; '
    'mkdir -- "$DIRECTORY"'
)
# IAM's policy variable for the caller's unique id: AIDA... (a user), AROA...:<session> (a role; on EC2 the session
# is the instance id). The runner reads the same value from GetCallerIdentity and writes its logs under it.
RUNNER_PRINCIPAL_VARIABLE = "${aws:userid}"
NAG_RUNNER_PRINCIPAL_VARIABLE = "<aws:userid>"  # how cdk-nag prints the policy variable
# What a task's `shell` fields may hold; the bookkeeping fields are shell_command_task's own.
SHELL_FIELDS = frozenset(
    {"command", "scriptUri", "scriptArgument", "stage", "input", "output", "environment", "secrets"}
)
# Fields that decide what runs or what it is given in secret: literal in the definition, never read from the input.
FIXED_FIELDS = ("command", "scriptUri", "secrets")
# Where a state machine may keep text its definition fixes but a template must not hold literally (a `${` that
# CloudFormation tools would read as a substitution): a state of the definition sets this path before any task runs,
# so an execution's input cannot (the importer's Set_Constants does). A command may be read from here, and only here.
DEFINITION_CONSTANTS_PATH = "$.const"


def _check_shell_fields(construct_id: str, shell: Mapping[str, Any]) -> None:
    unknown = sorted(set(shell) - SHELL_FIELDS)
    if unknown:
        raise ValueError(
            f"shell command task {construct_id}: unknown field '{unknown[0]}' (allowed: {sorted(SHELL_FIELDS)})"
        )


def _check_fixed(construct_id: str, parameters: Mapping[str, Any]) -> None:
    """Refuse a task whose command, script or secrets an execution could choose (checked on the rendered state)."""
    for name in FIXED_FIELDS:
        path = parameters.get(f"{name}.$")
        secret_read = name == "secrets" and any(key.endswith(".$") for key in parameters.get(name) or {})
        if secret_read or (path is not None and (name == "secrets" or not _is_definition_constant(path))):
            raise ValueError(
                f"shell command task {construct_id}: field '{name}' must be fixed in the definition, not read from the "
                "execution's input; pass input values as 'environment' values or 'scriptArgument' instead"
            )
    if "environment.$" in parameters:
        raise ValueError(
            f"shell command task {construct_id}: field 'environment' must be an object whose names are fixed in the "
            "definition (its values may come from the input)"
        )


def _is_definition_constant(path: str) -> bool:
    return re.fullmatch(rf"{re.escape(DEFINITION_CONSTANTS_PATH)}\.[A-Za-z0-9_]+", path) is not None


def shell_command_task(
    scope: Construct,
    construct_id: str,
    *,
    activity: sfn.IActivity,
    settings: WorkerGroupSettings,
    shell: Mapping[str, Any],
    task_type: str = SHELL_COMMAND_ACTIVITY,
) -> tasks.StepFunctionsInvokeActivity:
    """A Task state that sends one ShellCommandActivity to a worker group's activity.

    `shell` holds the activity's own fields (`command` or `scriptUri`, `scriptArgument`, `stage`, `input`, `output`,
    `environment`, `secrets`). `command`, `scriptUri` and `secrets` must be literal: what a task runs is fixed by the
    definition. The values of `environment` and `scriptArgument` (and the staged folders) may be JsonPath expressions:
    they reach the command as data. The bookkeeping fields the runner needs to lay out its logs are added here,
    from the context object, so that every producer of tasks sends the same contract. `task_type` is the contract's
    `type`: ShellCommandActivity, or ShellCommandPrecondition (same fields; the runner answers with `holds`).
    `construct_id` is also the state name, the task's `activityId` and where the result goes (`$.<construct_id>`):
    letters, digits and `_`.
    """
    _check_shell_fields(construct_id, shell)
    task = worker_group_task(scope, construct_id, activity=activity, settings=settings,
                             task_type=task_type, fields=shell)
    _check_fixed(construct_id, task.to_state_json()["Parameters"])
    if settings.command_retries:
        task.add_retry(
            errors=[COMMAND_FAILED],
            max_attempts=settings.command_retries,
            interval=cdk.Duration.seconds(settings.retry_interval_seconds),
            backoff_rate=2,
        )
    return task


def task_envelope(task_type: str, activity_id: str) -> dict[str, Any]:
    """The fields every task of the contract carries, from the context object (docs/taskrunner.md)."""
    return {
        "type": task_type,
        "workflow": sfn.JsonPath.string_at("$$.StateMachine.Name"),
        "execution": sfn.JsonPath.string_at("$$.Execution.Name"),
        "activityId": activity_id,
        "attempt": sfn.JsonPath.number_at("$$.State.RetryCount"),
    }


def worker_group_task(
    scope: Construct,
    construct_id: str,
    *,
    activity: sfn.IActivity,
    settings: WorkerGroupSettings,
    task_type: str,
    fields: Mapping[str, Any],
) -> tasks.StepFunctionsInvokeActivity:
    """A Task state sending a task of `task_type` to a worker group: the contract's envelope (from the context object),
    the task's own `fields`, the heartbeat and task timeouts, and the retries when a runner is lost."""
    if re.fullmatch(r"[A-Za-z0-9_]{1,80}", construct_id) is None:
        raise ValueError(f"worker group task id {construct_id!r} must be 1-80 letters, digits or '_'")
    task = tasks.StepFunctionsInvokeActivity(
        scope,
        construct_id,
        activity=activity,
        parameters={**task_envelope(task_type, construct_id), "heartbeatSeconds": settings.heartbeat_seconds,
                    **fields},
        heartbeat_timeout=sfn.Timeout.duration(cdk.Duration.seconds(settings.heartbeat_seconds)),
        task_timeout=sfn.Timeout.duration(cdk.Duration.seconds(settings.task_timeout_seconds)),
        result_path=f"$.{construct_id}",
    )
    if settings.retries:
        # The runner was lost (no heartbeat), ran out of time, or was stopped: another runner may take the task.
        task.add_retry(
            errors=["States.HeartbeatTimeout", "States.Timeout", RUNNER_INTERRUPTED],
            max_attempts=settings.retries,
            interval=cdk.Duration.seconds(settings.retry_interval_seconds),
            backoff_rate=2,
        )
    return task


class WorkerGroups(Construct):
    """One activity, one runner managed policy (and optionally a role) per worker group, and the sample pipeline."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        naming: Naming,
        settings: WorkerGroupSettings,
        log_bucket: s3.IBucket,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.node.add_dependency(log_bucket)  # runners' logs need the bucket before the first task runs
        self.activities: dict[str, sfn.Activity] = {}
        self.runner_policies: dict[str, iam.ManagedPolicy] = {}
        self.runner_roles: dict[str, iam.Role] = {}
        for group in settings.names:
            activity = sfn.Activity(self, f"Activity-{group}", activity_name=naming.activity(group))
            activity.apply_removal_policy(removal_policy)
            self.activities[group] = activity
            policy = self._runner_policy(group, activity=activity, log_bucket=log_bucket, naming=naming)
            self.runner_policies[group] = policy
            if settings.runner_role:
                role = iam.Role(
                    self,
                    f"RunnerRole-{group}",
                    role_name=naming.name(f"taskrunner-{group}"),
                    description=f"Task runners of worker group {group} on EC2 instances",
                    assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
                    managed_policies=[policy],
                )
                # An instance takes a role through an instance profile; the default credential chain finds it there.
                iam.InstanceProfile(
                    self, f"RunnerProfile-{group}", instance_profile_name=naming.name(f"taskrunner-{group}"), role=role
                )
                self.runner_roles[group] = role

        sample_group = settings.names[0]
        self.sample_state_machine = self._sample_pipeline(
            naming=naming,
            settings=settings,
            activity=self.activities[sample_group],
            removal_policy=removal_policy,
        )

    def _runner_policy(
        self, group: str, *, activity: sfn.Activity, log_bucket: s3.IBucket, naming: Naming
    ) -> iam.ManagedPolicy:
        # The log bucket's name comes from Naming rather than from a cross-stack reference, so that the policy's
        # resource (and its cdk-nag acknowledgment) reads the same in every account; tests check both agree.
        # Each runner principal writes only under its own prefix, named by the IAM policy variable aws:userid (the
        # UserId that GetCallerIdentity gives the runner): one runner cannot touch another's logs.
        own_prefix = f"{TASK_RUNNER_LOG_PREFIX}{group}/{RUNNER_PRINCIPAL_VARIABLE}/"
        attempt_logs, runner_logs = f"{own_prefix}attempts/*", f"{own_prefix}runners/*"
        log_bucket_arn = own_bucket_arn(naming, LOG_BUCKET_PURPOSE)
        policy = iam.ManagedPolicy(
            self,
            f"RunnerPolicy-{group}",
            managed_policy_name=naming.name(f"taskrunner-{group}"),
            description=f"What a datapipe task runner of worker group {group} needs, and nothing more",
            statements=[
                iam.PolicyStatement(
                    sid="PollOwnActivity",
                    actions=["states:DescribeActivity", "states:GetActivityTask"],
                    resources=[activity.activity_arn],
                ),
                iam.PolicyStatement(
                    sid="ReportOwnTasks",
                    actions=["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"],
                    resources=[activity.activity_arn],
                ),
                # An attempt's logs are written once: only a PutObject that carries If-None-Match (create, never
                # overwrite) is allowed.
                iam.PolicyStatement(
                    sid="WriteOwnAttemptLogsOnce",
                    actions=["s3:PutObject"],
                    resources=[f"{log_bucket_arn}/{attempt_logs}"],
                    conditions={"Null": {"s3:if-none-match": "false"}},
                ),
                # The runner's own hourly log is backed up again while its hour lasts.
                iam.PolicyStatement(
                    sid="WriteOwnRunnerLogs", actions=["s3:PutObject"], resources=[f"{log_bucket_arn}/{runner_logs}"]
                ),
            ],
        )
        nag_prefix = f"{nag_own_bucket_arn(naming, LOG_BUCKET_PURPOSE)}/{TASK_RUNNER_LOG_PREFIX}{group}/"
        nag_prefix += f"{NAG_RUNNER_PRINCIPAL_VARIABLE}/"
        acknowledge_wildcards(
            policy,
            {
                f"{nag_prefix}attempts/*": "A runner writes the logs of its attempts under its own principal's "
                "prefix (aws:userid); their keys are made at run time, and each is created once (If-None-Match).",
                f"{nag_prefix}runners/*": "A runner backs up its own hourly log files under its own principal's "
                "prefix (aws:userid); their names are made at run time.",
            },
        )
        return policy

    def _sample_pipeline(
        self,
        *,
        naming: Naming,
        settings: WorkerGroupSettings,
        activity: sfn.IActivity,
        removal_policy: cdk.RemovalPolicy,
    ) -> sfn.StateMachine:
        """The seed's CreateDirectory ShellCommandActivity. Its command is fixed; the input may name the directory
        (`{"directory": "reports"}`, default `new-directory`), which the command gets as $DIRECTORY and checks."""
        create_directory = shell_command_task(
            self,
            "CreateDirectory",
            activity=activity,
            settings=settings,
            shell={
                "command": SAMPLE_COMMAND,
                "environment": {"DIRECTORY": sfn.JsonPath.string_at("$.directory")},
                "scriptArgument": [],
                "stage": False,
                "input": [],
                "output": [],
            },
        )
        use_default = sfn.Pass(
            self,
            "Use_Default_Directory",
            result=sfn.Result.from_string(SAMPLE_DIRECTORY),
            result_path="$.directory",
        )
        not_text = sfn.Fail(
            self,
            "Directory_Not_Text",
            error="InvalidInput",
            cause="field 'directory' of the input must be a string",
        )
        definition = (
            sfn.Choice(self, "Directory_Given")
            .when(
                sfn.Condition.and_(sfn.Condition.is_present("$.directory"), sfn.Condition.is_not_string("$.directory")),
                not_text,
            )
            .when(sfn.Condition.is_present("$.directory"), create_directory)
            .otherwise(use_default.next(create_directory))
        )
        name = naming.state_machine(SAMPLE_WORKFLOW)
        state_machine = logged_state_machine(
            self,
            "SamplePipeline",
            state_machine_name=name,
            definition=definition,
            removal_policy=removal_policy,
            log_group_id="SampleLogs",
            comment="The CreateDirectory ShellCommandActivity, run by a task runner of a worker group",
            timeout=cdk.Duration.seconds(settings.task_timeout_seconds * (settings.retries + 1) + 300),
        )
        state_machine.apply_removal_policy(removal_policy)
        acknowledge_wildcards(
            state_machine.role,
            {"*": "CloudWatch Logs delivery and X-Ray trace actions do not support resource-level permissions."},
        )
        return state_machine


class WorkerGroupsStack(cdk.Stack):
    """The deployable unit for WorkerGroups."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        naming: Naming,
        settings: WorkerGroupSettings,
        log_bucket: s3.IBucket,
        removal_policy: cdk.RemovalPolicy,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.worker_groups = WorkerGroups(
            self,
            "WorkerGroups",
            naming=naming,
            settings=settings,
            log_bucket=log_bucket,
            removal_policy=removal_policy,
        )
