"""Event-driven EMR waits (`emr.waitMode=events`), for the EMR workflow and for imported pipelines alike.

A task that Step Functions' `.sync` would wait on runs request-response instead, and a `.waitForTaskToken` Lambda
task waits after it: lambdas/emr_waits keeps the token under the cluster or step id and answers it when EventBridge
brings EMR's "EMR Cluster State Change" or "EMR Step Status Change" event (or at once, when the state was reached
before the token was kept). A wait that hears nothing for a while is invoked again (one Describe call, then an answer
or a new token): a lost event costs at most that interval, and the number of such re-checks is bounded.

What lives here:
- `wait_task`: the Lambda task that waits, with its re-check and throttling retries (both deployments);
- `waits_table` and `subscribe_to_emr_events`: the token table (with its key) and the EventBridge rule;
- `PipelineEmrWaits`: the function, table and rule of the imported pipelines, deployed once in the shared pipelines
  stack and found by name by every pipeline's state machine (`pipeline_waits_function_name`);
- `EmrWaitsOfPipeline`: how one pipeline's EMR tasks wait, used by `stacks.pipelines.PipelineWorkflow`.
"""

from __future__ import annotations

import math
import typing
from typing import Any, Literal

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from datapipe.naming import Naming
from stacks.common import (
    acknowledge_wildcards,
    depend_on_policy_only,
    function_by_name,
    nag_arn,
    powertools_function,
)

WaitMode = Literal["events", "sync"]
# What a wait waits for (the emr_waits Lambda's `Until`).
CLUSTER_READY = "ClusterReady"
STEP_ENDED = "StepEnded"
CLUSTER_TERMINATED = "ClusterTerminated"
# The EMR states that can end a wait: only these events invoke the Lambda.
WAIT_ENDING_STATES = ["WAITING", "RUNNING", "TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS", "COMPLETED",
                      "CANCELLED", "FAILED", "INTERRUPTED"]
EMR_EVENTS = ["EMR Cluster State Change", "EMR Step Status Change"]
# The error of a wait whose step or cluster ended badly: .sync's States.TaskFailed under a name of our own (a callback
# may not use the States. prefix). Both name the same outcome; a Retry or Catch of a failed EMR task lists both.
EMR_TASK_FAILED = "datapipe.EmrTaskFailed"
EMR_TASK_FAILED_ERRORS = ["States.TaskFailed", EMR_TASK_FAILED]
FUNCTION_RAISED_ERROR = "ClientError"  # the error name Lambda reports for botocore's ClientError, let through
THROTTLING_RETRIES = 3
# A wait that hears nothing for this long (a lost event) is invoked again; at most MAX_RECHECKS times, so that a
# Standard workflow stays far below its 25,000 history events (a re-check costs four) whatever the bound.
RECHECK_SECONDS = 300
MAX_RECHECKS = 1000
# An imported pipeline's wait with no attemptTimeout or terminateAfter to bound it waits at most this long (then it
# fails with States.Timeout, as a .sync task with that timeout would): a week, re-checked every 605 s.
UNBOUNDED_WAIT_SECONDS = 7 * 24 * 3600
TOKEN_TABLE_KEY = "WaitFor"
TOKEN_TABLE_SORT_KEY = "Waiter"
TOKEN_TABLE_TTL = "ExpiresAt"
PIPELINE_WAITS = "pipeline-emr-waits"
ADDED_STEP_PATH = "$.addedStep"


def recheck_plan(bound_seconds: int) -> tuple[int, int]:
    """For a wait that may last `bound_seconds`: the seconds between re-checks and how many re-checks, so that the
    wait ends (States.Timeout) once the bound has passed and re-checks at most MAX_RECHECKS times."""
    bound = max(1, bound_seconds)
    interval = min(bound, max(RECHECK_SECONDS, math.ceil(bound / MAX_RECHECKS)))
    return interval, math.ceil(bound / interval) - 1


def wait_task(
    scope: Construct,
    construct_id: str,
    *,
    function: lambda_.IFunction,
    until: str,
    task_state_name: str,
    cluster_id_path: str,
    step_id_path: str | None = None,
    interval_seconds: int,
    rechecks: int,
    result_path: str = sfn.JsonPath.DISCARD,
    state_name: str | None = None,
) -> tasks.LambdaInvoke:
    """The state that waits, after the request-response EMR task named `task_state_name`, for `until`.

    Its answers are what `.sync` gives: the described cluster or step, or the error EMR_TASK_FAILED with that
    description as the cause. `Task` names the EMR task it waits for: the operate commands report a failed wait as a
    failure of that task (datapipe.emr_waits).
    """
    payload: dict[str, Any] = {
        "Action": "Await",
        "Task": task_state_name,
        "TaskToken": sfn.JsonPath.task_token,
        "Until": until,
        "ClusterId": sfn.JsonPath.string_at(cluster_id_path),
        "Execution": sfn.JsonPath.execution_id,
        "State": sfn.JsonPath.string_at("$$.State.Name"),
    }
    if step_id_path:
        payload["StepId"] = sfn.JsonPath.string_at(step_id_path)
    wait = tasks.LambdaInvoke(
        scope,
        construct_id,
        state_name=state_name,
        lambda_function=function,
        payload=sfn.TaskInput.from_object(payload),
        integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
        task_timeout=sfn.Timeout.duration(cdk.Duration.seconds(interval_seconds)),
        result_path=result_path,
        retry_on_service_exceptions=True,
    )
    # A wait that heard nothing (a lost event) is invoked again: the Lambda re-reads the state once and answers, or
    # keeps the new token. Bounded: after the last re-check the wait fails with States.Timeout.
    if rechecks > 0:
        wait.add_retry(errors=[sfn.Errors.TIMEOUT], interval=cdk.Duration.seconds(1), max_attempts=rechecks,
                       backoff_rate=1.0)
    # The function raises EMR's and DynamoDB's throttling and service faults (botocore's ClientError).
    wait.add_retry(errors=[FUNCTION_RAISED_ERROR], interval=cdk.Duration.seconds(1), max_attempts=THROTTLING_RETRIES,
                   backoff_rate=2.0, jitter_strategy=sfn.JitterType.FULL)
    return wait


def waits_table(
    scope: Construct, *, table_name: str, key_description: str, removal_policy: cdk.RemovalPolicy
) -> tuple[dynamodb.Table, kms.Key]:
    """The table of task tokens (children `WaitsTableKey` and `WaitsTable` of `scope`): a rotating customer managed
    key, point-in-time recovery, and a TTL on ExpiresAt."""
    key = kms.Key(scope, "WaitsTableKey", description=key_description, enable_key_rotation=True,
                  removal_policy=removal_policy)
    table = dynamodb.Table(
        scope,
        "WaitsTable",
        table_name=table_name,
        partition_key=dynamodb.Attribute(name=TOKEN_TABLE_KEY, type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name=TOKEN_TABLE_SORT_KEY, type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=key,
        time_to_live_attribute=TOKEN_TABLE_TTL,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        removal_policy=removal_policy,
    )
    return table, key


def grant_token_table(function: lambda_.Function, table: dynamodb.Table, key: kms.Key, *, ttl_seconds: int) -> None:
    """What the function needs of its table: the three item actions, the key, and where to find it."""
    function.add_environment("WAITS_TABLE", table.table_name)
    function.add_environment("WAIT_TTL_SECONDS", str(ttl_seconds))
    table.grant(function, "dynamodb:PutItem", "dynamodb:Query", "dynamodb:DeleteItem")
    key.grant(function, "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey")


def subscribe_to_emr_events(
    scope: Construct, construct_id: str, *, rule_name: str, description: str, function: lambda_.IFunction
) -> events.Rule:
    """EMR's state changes that can end a wait go to the function; EventBridge retries a failed delivery (no
    dead-letter queue: every wait re-checks by itself)."""
    rule = events.Rule(
        scope,
        construct_id,
        rule_name=rule_name,
        description=description,
        event_pattern=events.EventPattern(source=["aws.emr"], detail_type=EMR_EVENTS,
                                          detail={"state": WAIT_ENDING_STATES}),
    )
    rule.add_target(targets.LambdaFunction(function, retry_attempts=8, max_event_age=cdk.Duration.hours(1)))
    return rule


# -- imported pipelines ------------------------------------------------------------------------------------------------


def pipeline_waits_function_name(naming: Naming) -> str:
    return naming.name(PIPELINE_WAITS)


class PipelineEmrWaits(Construct):
    """The waits of every imported pipeline's EMR work, deployed once (shared pipelines stack): the emr_waits function
    (the EMR workflow's handler), its token table and the EventBridge rule. It answers only the state machines of
    imported pipelines (by their ARN prefix) and reads only the clusters they tagged as theirs.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        naming: Naming,
        workflow_tag: str,
        powertools_layer_version: int,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.table, key = waits_table(self, table_name=naming.name(PIPELINE_WAITS),
                                      key_description="Encrypts the task tokens of the imported pipelines' EMR waits",
                                      removal_policy=removal_policy)
        self.function = powertools_function(
            self, "Function", function_name=pipeline_waits_function_name(naming), folder="emr_waits",
            description="Ends the imported pipelines' EMR waits on EMR's events",
            powertools_layer_version=powertools_layer_version, removal_policy=removal_policy)
        # A re-check puts the token again with a new expiry, so a day outlives any re-check interval.
        grant_token_table(self.function, self.table, key, ttl_seconds=24 * 3600)
        machines = naming.state_machine("pipeline-")
        self.function.add_to_role_policy(iam.PolicyStatement(
            actions=["states:SendTaskSuccess", "states:SendTaskFailure"],
            resources=[stack.format_arn(service="states", resource="stateMachine", resource_name=f"{machines}*",
                                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)]))
        self.function.add_to_role_policy(iam.PolicyStatement(
            actions=["elasticmapreduce:DescribeCluster", "elasticmapreduce:DescribeStep"],
            resources=[stack.format_arn(service="elasticmapreduce", resource="cluster", resource_name="*")],
            conditions={"StringLike": {f"elasticmapreduce:ResourceTag/{workflow_tag}": f"{machines}*"}}))
        acknowledge_wildcards(self.function, {
            nag_arn(self, "states", f"stateMachine:{machines}*"): "answers go only to the state machines of imported "
            "pipelines, which share this name prefix and are in stacks of their own",
            nag_arn(self, "elasticmapreduce", "cluster/*"): "reads (DescribeCluster, DescribeStep) of the cluster a "
            f"wait is about, known at run time; only clusters that an imported pipeline tagged {workflow_tag}="
            f"{machines}*",
            "*": "X-Ray writes have no resource-level permission",
        })
        # checkov reads its suppressions from the resource's metadata: the reason sits next to the function.
        typing.cast(lambda_.CfnFunction, self.function.node.default_child).add_metadata("checkov", {"skip": [{
            "id": "CKV_AWS_116",
            "comment": "an EMR event the function fails on is retried by EventBridge, and every wait re-reads EMR "
                       "itself when it hears nothing: a lost event delays a wait, never loses it; a queued event "
                       "would have no reader",
        }]})
        depend_on_policy_only(self.function, self.function.role)
        self.rule = subscribe_to_emr_events(
            self, "Events", rule_name=naming.name("pipeline-emr-wait-events"), function=self.function,
            description="EMR cluster and step state changes that can end a wait of an imported pipeline")


class EmrWaitsOfPipeline:
    """How one imported pipeline's EMR tasks wait: `.sync` (mode sync), or request-response then a wait on the shared
    function (mode events). Every method gives back the states to chain in place of the `.sync` task."""

    def __init__(self, scope: Construct, *, naming: Naming, mode: WaitMode, name: Any) -> None:
        """`name(wanted)` gives a unique state name (PipelineWorkflow._name)."""
        self._scope = scope
        self._name = name
        self.function: lambda_.IFunction | None = None
        if mode == "events":
            self.function = function_by_name(scope, "EmrWaitsFunction", pipeline_waits_function_name(naming))

    @property
    def pattern(self) -> sfn.IntegrationPattern:
        """The integration pattern of the EMR tasks that wait."""
        return sfn.IntegrationPattern.RUN_JOB if self.function is None else sfn.IntegrationPattern.REQUEST_RESPONSE

    @property
    def failed_errors(self) -> list[str]:
        """The errors of an EMR task whose cluster or step ended badly, for a Retry or Catch."""
        return ["States.TaskFailed"] if self.function is None else EMR_TASK_FAILED_ERRORS

    @property
    def step_result_path(self) -> str:
        """Where an added step's id goes (inside its Parallel, whose result is discarded) for its wait."""
        return sfn.JsonPath.DISCARD if self.function is None else ADDED_STEP_PATH

    def cluster_ready(self, create: sfn.TaskStateBase, *, construct_id: str, cluster_path: str
                      ) -> sfn.TaskStateBase | sfn.Parallel:
        """The creation and its wait as one state (a Parallel, so that a Retry or Catch covers both and a retry
        creates a cluster again), leaving `{"ClusterId"}` at `cluster_path` as the creation does; `create` itself
        with .sync."""
        if self.function is None:
            return create
        unit = sfn.Parallel(self._scope, f"{construct_id}Unit", state_name=self._name(f"{create.state_id}_Until_Ready"),
                            result_selector={"ClusterId.$": f"$[0]{cluster_path[1:]}.ClusterId"},
                            result_path=cluster_path)
        unit.branch(create.next(self._wait(create, CLUSTER_READY, cluster_id_path=f"{cluster_path}.ClusterId",
                                           bound_seconds=UNBOUNDED_WAIT_SECONDS)))
        return unit

    def step_ended(self, add: sfn.TaskStateBase, *, cluster_id_path: str, timeout_seconds: int | None
                   ) -> sfn.TaskStateBase | sfn.Parallel:
        """The step and its wait as one state (a Parallel: a retry of the activity runs the step again, as a retry of
        addStep.sync does), bounded like addStep.sync by the activity's timeout; `add` itself with .sync."""
        if self.function is None:
            return add
        unit = sfn.Parallel(self._scope, f"{add.node.id}Unit", state_name=self._name(f"{add.state_id}_Until_Ended"),
                            result_path=sfn.JsonPath.DISCARD)
        unit.branch(add.next(self._wait(add, STEP_ENDED, cluster_id_path=cluster_id_path,
                                        step_id_path=f"{ADDED_STEP_PATH}.StepId",
                                        bound_seconds=timeout_seconds or UNBOUNDED_WAIT_SECONDS)))
        return unit

    def cluster_terminated(self, terminate: sfn.TaskStateBase, *, cluster_id_path: str) -> sfn.TaskStateBase:
        """The wait after a request-response termination (the state to chain on and to catch); `terminate` itself
        with .sync. A retry of the wait reads the cluster again: the termination was asked already."""
        if self.function is None:
            return terminate
        wait = self._wait(terminate, CLUSTER_TERMINATED, cluster_id_path=cluster_id_path,
                          bound_seconds=UNBOUNDED_WAIT_SECONDS)
        terminate.next(wait)
        return wait

    def _wait(self, task: sfn.TaskStateBase, until: str, *, cluster_id_path: str, bound_seconds: int,
              step_id_path: str | None = None) -> tasks.LambdaInvoke:
        assert self.function is not None and task.state_id is not None
        interval, rechecks = recheck_plan(bound_seconds)
        return wait_task(self._scope, f"{task.node.id}Wait", state_name=self._name(f"Wait_For_{task.state_id}"),
                         function=self.function, until=until, task_state_name=task.state_id,
                         cluster_id_path=cluster_id_path, step_id_path=step_id_path, interval_seconds=interval,
                         rechecks=rechecks)


def nag_pipeline_waits_versions(scope: Construct, naming: Naming) -> dict[str, str]:
    """The wildcard a pipeline's state machine policy gets for invoking the shared waits function, with its reason."""
    return {nag_arn(scope, "lambda", f"function:{pipeline_waits_function_name(naming)}:*"):
            "invoking the shared EMR waits function includes its versions; it is the one function named here"}
