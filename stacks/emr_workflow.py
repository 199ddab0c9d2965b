"""The EMR workflow: the seed's state machine built from service-integration constructs, plus what keeps it safe.

Seed parity: the states and transitions of the seed (Should_Create_Cluster ... Wrapping_Up) are kept by name.
Added for safety, each with a name that says what it is for:
- Validate_Input and its Reject_* Fail states: a bad input ends before any EMR call;
- Check_Handed_In_Cluster and Is_Cluster_Allowed: a cluster handed in (`CreateCluster: false`) is acted on only when
  this deployment created it or its owner opted it in with the tag `datapipe:reuse=<prefix>-<stage>`; otherwise
  the run fails with datapipe.ClusterNotAllowed (or datapipe.ClusterUnavailable, or datapipe.InvalidInput for an id
  that is not EMR's format) before any EMR call. The state machine's role enforces the same with tag conditions;
- Should_Disable_Termination_Protection: protection is changed only on a cluster this execution created, or turned
  off on a handed-in cluster that the input asks to terminate; a handed-in cluster is never protected by the run;
- a Catch on every task after Create_A_Cluster to the cleanup path (Describe_Failure, Cleanup_*), which turns
  protection off and terminates the cluster only when this execution created it, and fails with the cause;
- the cluster reaper: an EventBridge rule on executions that were stopped, timed out or failed, and a Lambda
  that terminates the clusters tagged with that execution (a stopped execution runs no Catch);
- Resize_Core_Fleet (optional, before a heavy step) and Summarize_Run (the final summary);
- with `emr.waitMode=events` (the default), the waits of the seed's `.sync` tasks end on EMR's events: the task
  becomes request-response and a Wait_For_* state waits for a task token that the emr_waits Lambda answers when
  EventBridge brings it the "EMR Cluster State Change" or "EMR Step Status Change" event (docs/emr-workflow.md).
"""

from __future__ import annotations

import math
import typing
from typing import Any, TypeVar

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from datapipe.naming import DATA_BUCKET_PURPOSE, EMR_LOG_PREFIX, LOG_BUCKET_PURPOSE, Naming
from stacks import common
from stacks.config import EmrSettings, EmrStepSettings
from stacks.emr_waits import (
    CLUSTER_READY,
    CLUSTER_TERMINATED,
    FUNCTION_RAISED_ERROR,
    MAX_RECHECKS,
    RECHECK_SECONDS,
    STEP_ENDED,
    grant_token_table,
    subscribe_to_emr_events,
    wait_task,
    waits_table,
)

WORKFLOW = "emr-workflow"
# Tags the workflow puts on the clusters it creates; the reaper finds an execution's clusters by the first two.
EXECUTION_TAG = "datapipe:execution"
WORKFLOW_TAG = "datapipe:workflow"
# The tag with which a cluster's owner lets a deployment's workflow use it (value `<prefix>-<stage>`).
REUSE_TAG = "datapipe:reuse"
EMR_ACTION_PREFIX = "elasticmapreduce:"
# EMR actions that act while the cluster is being created: scoped by the tags of the request, not of a resource.
CREATE_ACTIONS = ("elasticmapreduce:RunJobFlow", "elasticmapreduce:AddTags")
CREATED_SCOPE = "created"
OPTED_IN_SCOPE = "opted-in"
# Step Functions reports every error of an EMR API call, throttling ("Rate exceeded") included, as
# EMR.AmazonElasticMapReduceException. A rejected call changed nothing, so calls are retried with backoff on it;
# a step or cluster that ends badly is States.TaskFailed and is not retried.
EMR_CALL_ERRORS = ["EMR.AmazonElasticMapReduceException", "ThrottlingException"]
EMR_RETRY_ATTEMPTS = 3  # after 1 s, 2 s and 4 s at most (full jitter)
INVALID_INPUT = "datapipe.InvalidInput"
CLUSTER_NOT_ALLOWED = "datapipe.ClusterNotAllowed"
CLUSTER_UNAVAILABLE = "datapipe.ClusterUnavailable"
WORKFLOW_FAILED = "datapipe.WorkflowFailed"
PRIMARY_FLEET = "Primary"
CORE_FLEET = "Core"
Task = TypeVar("Task", bound=sfn.TaskStateBase)
Guarded = TypeVar("Guarded", sfn.TaskStateBase, sfn.Parallel)


def reuse_tag_value(naming: Naming) -> str:
    """The value of REUSE_TAG that opts a cluster in for the workflows of this deployment."""
    return f"{naming.prefix}-{naming.stage}"


class ClusterTagScopedRole(iam.Role):
    """A state machine role on which every EMR action on a cluster carries a tag condition.

    The CDK's EMR tasks grant their actions on every cluster of the account (`cluster/*`, or `*` for createCluster).
    This role takes the EMR actions of each such unconditioned statement and grants them again, once per allowed tag
    (IAM ORs statements and ANDs the conditions of one): on clusters tagged `created_by`, the tag the workflow puts
    on the clusters it creates, and, when given, on clusters tagged `opted_in` by their owner. RunJobFlow and AddTags,
    which run while the cluster is created, require the `created_by` tag in the request. Other statements pass as
    they are.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        created_by: tuple[str, str],
        opted_in: tuple[str, str] | None,
        description: str,
    ) -> None:
        super().__init__(scope, construct_id, assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
                         description=description)
        self._created_by = created_by
        self._opted_in = opted_in
        self._cluster_arn = cdk.Stack.of(self).format_arn(service="elasticmapreduce", resource="cluster",
                                                          resource_name="*")
        self._scoped: dict[str, iam.PolicyStatement] = {}

    def add_to_principal_policy(self, statement: iam.PolicyStatement) -> iam.AddToPrincipalPolicyResult:
        emr_actions = [a for a in statement.actions if a.startswith(EMR_ACTION_PREFIX)]
        if not emr_actions or statement.conditions or statement.effect != iam.Effect.ALLOW:
            return super().add_to_principal_policy(statement)
        others = [a for a in statement.actions if not a.startswith(EMR_ACTION_PREFIX)]
        if others:
            super().add_to_principal_policy(iam.PolicyStatement(actions=others, resources=statement.resources))
        for action in emr_actions:
            for scope in self._scopes(action):
                self._grant(scope, action)
        # The permission is granted, by the scoped statements in the role's default policy.
        return iam.AddToPrincipalPolicyResult(statement_added=True,
                                              policy_dependable=self.node.find_child("DefaultPolicy"))

    def _scopes(self, action: str) -> list[str]:
        """The statements that grant an action: its own for a create action, else one per allowed tag."""
        if action in CREATE_ACTIONS:
            return [action]
        return [CREATED_SCOPE, OPTED_IN_SCOPE] if self._opted_in else [CREATED_SCOPE]

    def _grant(self, scope: str, action: str) -> None:
        """Add the action to the statement of that scope, made on first use (a statement is mutable until synth)."""
        existing = self._scoped.get(scope)
        if existing is not None:
            if action not in existing.actions:
                existing.add_actions(action)
            return
        key, value = self._opted_in if scope == OPTED_IN_SCOPE and self._opted_in else self._created_by
        if scope in CREATE_ACTIONS:
            resources = ["*"] if scope == "elasticmapreduce:RunJobFlow" else [self._cluster_arn]
            condition = {f"aws:RequestTag/{key}": value}
        else:
            resources = [self._cluster_arn]
            condition = {f"elasticmapreduce:ResourceTag/{key}": value}
        statement = iam.PolicyStatement(actions=[action], resources=resources, conditions={"StringEquals": condition})
        self._scoped[scope] = statement
        super().add_to_principal_policy(statement)


class EmrWorkflow(Construct):
    """The state machine, its EMR roles, the emr_reader Lambda and the cluster reaper."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        naming: Naming,
        settings: EmrSettings,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self._naming = naming
        self._settings = settings
        # Bucket names come from Naming rather than from cross-stack references, so that policies (and their
        # cdk-nag acknowledgments) read the same in every account; the stack depends on Storage for the order.
        self._log_bucket_name = naming.log_bucket(cdk.Aws.ACCOUNT_ID, cdk.Aws.REGION)
        self._data_bucket_name = naming.data_bucket(cdk.Aws.ACCOUNT_ID, cdk.Aws.REGION)
        self._removal_policy = removal_policy
        self.state_machine_name = naming.state_machine(WORKFLOW)

        self.instance_role = self._cluster_instance_role()
        self.reader = self._function("EmrReader", "emr_reader", "Reads EMR clusters and steps for the EMR workflow")
        self._grant_emr_reads(self.reader)
        self.reaper = self._function("ClusterReaper", "cluster_reaper", "Terminates clusters of failed executions")
        self._grant_reaper(self.reaper)
        self.waits_table: dynamodb.Table | None = None
        self.waiter: lambda_.Function | None = None
        if settings.wait_mode == "events":
            self.waiter = self._event_waits()
        self.state_machine_role = ClusterTagScopedRole(
            self,
            "StateMachineRole",
            created_by=(WORKFLOW_TAG, self.state_machine_name),
            opted_in=(REUSE_TAG, reuse_tag_value(naming)),
            description="The EMR workflow: EMR actions only on clusters it created or that their owner opted in",
        )

        self.state_machine = common.logged_state_machine(
            self,
            "StateMachine",
            state_machine_name=self.state_machine_name,
            definition=self._definition(),
            removal_policy=removal_policy,
            timeout=cdk.Duration.minutes(settings.execution_timeout_minutes),
            comment="The EMR workflow of the seed, with input validation, cleanup and a final summary",
            role=self.state_machine_role,
        )
        self._acknowledge_state_machine_policy()
        self.reaper_rule = common.reaper_rule(
            self,
            "ReapClustersOfEndedExecutions",
            rule_name=self._naming.name("emr-cluster-reaper"),
            description="Terminate the EMR clusters of EMR workflow executions that did not succeed",
            state_machines=[self.state_machine],
            reaper=self.reaper,
        )
        if self.waiter is not None:
            self._subscribe_to_emr_events(self.waiter)
        for function in (self.reader, self.reaper, self.waiter):
            if function is not None:
                common.depend_on_policy_only(function, function.role)

    # -----------------------------------------------------------------------------------------------------------------
    # The definition

    def _definition(self) -> sfn.IChainable:
        s = self._settings
        cluster_id = sfn.JsonPath.string_at("$.ClusterId")

        # A fixed error name: the caught one may be a reserved States.* name, which a Fail state must not raise.
        # The cause carries the original error (see Use_Failure_Report).
        failed = sfn.Fail(self, "Workflow_Failed", error=WORKFLOW_FAILED, cause_path="$.Failure.Cause")
        cleanup = self._cleanup_path(failed)

        create = tasks.EmrCreateCluster(
            self,
            "Create_A_Cluster",
            name=s.cluster_name,
            release_label=s.release_label,
            applications=[tasks.EmrCreateCluster.ApplicationConfigProperty(name=app) for app in s.applications],
            cluster_role=self.instance_role,
            log_uri=f"s3://{self._log_bucket_name}/{EMR_LOG_PREFIX}",
            instances=tasks.EmrCreateCluster.InstancesConfigProperty(
                ec2_subnet_ids=list(s.subnet_ids) or None,
                instance_fleets=[
                    self._fleet(tasks.EmrCreateCluster.InstanceRoleType.MASTER, PRIMARY_FLEET,
                                s.primary_instance_types, on_demand=1, spot=0),
                    self._fleet(tasks.EmrCreateCluster.InstanceRoleType.CORE, CORE_FLEET,
                                s.core_instance_types, on_demand=s.core_on_demand_capacity,
                                spot=s.core_spot_capacity),
                ],
            ),
            step_concurrency_level=s.step_concurrency_level,
            auto_termination_policy_idle_timeout=cdk.Duration.minutes(s.idle_timeout_minutes),
            tags={EXECUTION_TAG: sfn.JsonPath.execution_id, WORKFLOW_TAG: self.state_machine_name},
            visible_to_all_users=True,
            result_path="$.CreateClusterResult",
            integration_pattern=self._pattern(),
        )
        # No retry here: a RunJobFlow that failed on the client side may still have created a cluster, and a
        # second call would leave the first one running; both carry the execution tag for the reaper though.
        # No cluster id is known yet; the reaper terminates whatever carries this execution's tag.
        create.add_catch(failed, result_path="$.Failure")
        self._service_role = create.service_role
        # Events mode: the same outcome as .sync, the described cluster in $.CreateClusterResult.
        cluster_ready = self._then_wait(create, "Wait_For_Cluster_Ready", CLUSTER_READY,
                                        cluster_id_path="$.CreateClusterResult.ClusterId",
                                        result_path="$.CreateClusterResult")
        if cluster_ready is not create:
            cluster_ready.add_catch(failed, result_path="$.Failure")

        merge = sfn.Pass(
            self,
            "Merge_Results",
            parameters={
                "CreateCluster.$": "$.CreateCluster",
                "TerminateCluster.$": "$.TerminateCluster",
                "ClusterId.$": "$.CreateClusterResult.ClusterId",
            },
        )
        enable_protection = self._guard(
            tasks.EmrSetClusterTerminationProtection(
                self, "Enable_Termination_Protection", cluster_id=cluster_id, termination_protected=True,
                result_path=sfn.JsonPath.DISCARD,
            ),
            cleanup,
        )

        step_one = self._step("Step_One", s.step_one)
        self._then_wait(step_one, "Wait_For_Step_One", STEP_ENDED, step_id_path="$.AddedStep.StepId")
        wait_first = sfn.Wait(self, "Wait_10_Seconds", time=sfn.WaitTime.duration(cdk.Duration.seconds(10)))
        step_two = self._step("Step_Two (async)", s.step_two, result_path="$.AddStepsResult")
        wait_again = sfn.Wait(self, "Wait_Another_10_Seconds", time=sfn.WaitTime.duration(cdk.Duration.seconds(10)))
        cancel_two = self._retry(
            tasks.EmrCancelStep(
                self, "Cancel_Step_Two", cluster_id=cluster_id,
                step_id=sfn.JsonPath.string_at("$.AddStepsResult.StepId"),
            )
        )
        parallel = sfn.Parallel(self, "Add_Steps_Parallel", result_path=sfn.JsonPath.DISCARD)
        first_branch: sfn.IChainable = step_one
        if s.resize_before == "Step_One":
            first_branch = self._resize().next(step_one)
        parallel.branch(first_branch)
        parallel.branch(wait_first.next(step_two).next(wait_again).next(cancel_two))
        self._guard(parallel, cleanup)

        step_three = self._guard(self._step("Step_Three", s.step_three), cleanup)
        step_three_ended = self._then_wait(step_three, "Wait_For_Step_Three", STEP_ENDED,
                                           step_id_path="$.AddedStep.StepId")
        if step_three_ended is not step_three:
            step_three_ended.add_catch(cleanup, result_path="$.Failure")
        check_handed_in = self._check_handed_in_cluster(parallel)
        disable_protection = self._guard(
            tasks.EmrSetClusterTerminationProtection(
                self, "Disable_Termination_Protection", cluster_id=cluster_id, termination_protected=False,
                result_path=sfn.JsonPath.DISCARD,
            ),
            cleanup,
        )
        terminate = self._guard(
            # The state keeps ClusterId for the summary (the seed let the termination result replace it).
            tasks.EmrTerminateCluster(
                self, "Terminate_Cluster", cluster_id=cluster_id, result_path=sfn.JsonPath.DISCARD,
                integration_pattern=self._pattern(),
            ),
            cleanup,
        )
        terminated = self._then_wait(terminate, "Wait_For_Cluster_Termination", CLUSTER_TERMINATED)
        if terminated is not terminate:
            terminated.add_catch(cleanup, result_path="$.Failure")
        wrapping_up = sfn.Pass(self, "Wrapping_Up")
        done = sfn.Succeed(self, "Done")
        summarize = self._read(
            "Summarize_Run",
            {"Action": "Summarize", "ClusterId": cluster_id},
            result_path="$.Summary",
        )
        # A summary that cannot be read must not fail a run whose work succeeded.
        summarize.add_catch(done, result_path="$.SummaryError")

        should_terminate = (
            sfn.Choice(self, "Should_Terminate_Cluster")
            .when(sfn.Condition.boolean_equals("$.TerminateCluster", True), terminate)
            .when(sfn.Condition.boolean_equals("$.TerminateCluster", False), wrapping_up)
            .otherwise(wrapping_up)
        )
        terminated.next(wrapping_up)
        wrapping_up.next(summarize)
        summarize.next(done)

        # Protection changes only on a cluster this execution created, or comes off a handed-in cluster that the
        # input asks to terminate (EMR refuses to terminate a protected cluster).
        should_disable_protection = (
            sfn.Choice(self, "Should_Disable_Termination_Protection")
            .when(sfn.Condition.boolean_equals("$.CreateCluster", True), disable_protection)
            .when(sfn.Condition.boolean_equals("$.TerminateCluster", True), disable_protection)
            .otherwise(should_terminate)
        )

        after_parallel: sfn.IChainable = step_three
        if s.resize_before == "Step_Three":
            after_parallel = self._resize(cleanup)
            after_parallel.next(step_three)
        parallel.next(after_parallel)
        step_three_ended.next(should_disable_protection)
        disable_protection.next(should_terminate)
        enable_protection.next(parallel)
        cluster_ready.next(merge)
        merge.next(enable_protection)

        should_create = (
            sfn.Choice(self, "Should_Create_Cluster")
            .when(sfn.Condition.boolean_equals("$.CreateCluster", True), create)
            .when(sfn.Condition.boolean_equals("$.CreateCluster", False), check_handed_in)
            .otherwise(create)
        )
        return self._validate_input(should_create)

    def _check_handed_in_cluster(self, then: sfn.IChainable) -> sfn.IChainable:
        """Before the first call on a handed-in cluster: its id is EMR's format, it exists and runs, and this
        deployment created it or its owner opted it in (the reader's CheckCluster); else the run fails, naming the
        cluster and, when it is not allowed, the tag to add."""
        check = self._read(
            "Check_Handed_In_Cluster",
            {
                "Action": "CheckCluster",
                "ClusterId": sfn.JsonPath.string_at("$.ClusterId"),
                "CreatedBy": {"Key": WORKFLOW_TAG, "Value": self.state_machine_name},
                "OptIn": {"Key": REUSE_TAG, "Value": reuse_tag_value(self._naming)},
            },
            result_path="$.ClusterCheck",
        )
        # The reader raises EMR's throttling and service faults (botocore's ClientError) for this retry.
        check.add_retry(errors=[FUNCTION_RAISED_ERROR], interval=cdk.Duration.seconds(1),
                        max_attempts=EMR_RETRY_ATTEMPTS, backoff_rate=2.0, jitter_strategy=sfn.JitterType.FULL)
        malformed = sfn.Fail(self, "Reject_Malformed_ClusterId", error=INVALID_INPUT,
                             cause_path="$.ClusterCheck.error.message")
        unavailable = sfn.Fail(self, "Cluster_Unavailable", error=CLUSTER_UNAVAILABLE,
                               cause_path="$.ClusterCheck.result.Message")
        not_allowed = sfn.Fail(self, "Cluster_Not_Allowed", error=CLUSTER_NOT_ALLOWED,
                               cause_path="$.ClusterCheck.result.Message")
        verdict = "$.ClusterCheck.result.Verdict"
        return check.next(
            sfn.Choice(self, "Is_Cluster_Allowed")
            .when(sfn.Condition.boolean_equals("$.ClusterCheck.ok", False), malformed)
            .when(sfn.Condition.string_equals(verdict, "Allowed"), then)
            .when(sfn.Condition.string_equals(verdict, "Unavailable"), unavailable)
            .otherwise(not_allowed)
        )

    def _validate_input(self, then: sfn.IChainable) -> sfn.Choice:
        """Reject a bad input before any EMR call; each rule names the field. Presence is tested first, because a
        comparison on a missing field is a runtime error rather than a non-match."""

        def reject(field: str, must: str) -> sfn.Fail:
            return sfn.Fail(self, f"Reject_{field}", error=INVALID_INPUT, cause=f"input field '{field}' {must}")

        not_boolean = "must be true or false"
        reject_create = reject("CreateCluster", not_boolean)
        reject_terminate = reject("TerminateCluster", not_boolean)
        reject_cluster = reject("ClusterId", "must be the id of an EMR cluster (j- and 1 to 13 upper-case letters or "
                                "digits) when CreateCluster is false")
        reuse = sfn.Condition.boolean_equals("$.CreateCluster", False)
        return (
            sfn.Choice(self, "Validate_Input")
            .when(sfn.Condition.not_(sfn.Condition.is_present("$.CreateCluster")), reject_create)
            .when(sfn.Condition.not_(sfn.Condition.is_boolean("$.CreateCluster")), reject_create)
            .when(sfn.Condition.not_(sfn.Condition.is_present("$.TerminateCluster")), reject_terminate)
            .when(sfn.Condition.not_(sfn.Condition.is_boolean("$.TerminateCluster")), reject_terminate)
            .when(sfn.Condition.and_(reuse, sfn.Condition.not_(sfn.Condition.is_present("$.ClusterId"))),
                  reject_cluster)
            .when(sfn.Condition.and_(reuse, sfn.Condition.not_(sfn.Condition.is_string("$.ClusterId"))),
                  reject_cluster)
            .when(sfn.Condition.and_(reuse, sfn.Condition.not_(sfn.Condition.string_matches("$.ClusterId", "j-*"))),
                  reject_cluster)
            .otherwise(then)
        )

    def _cleanup_path(self, failed: sfn.Fail) -> sfn.IChainable:
        """Explain the failure; if this execution created the cluster, turn protection off and terminate it; fail."""
        cluster_id = sfn.JsonPath.string_at("$.ClusterId")
        describe = self._read(
            "Describe_Failure",
            {
                "Action": "DescribeFailure",
                "ClusterId": cluster_id,
                "Error": sfn.JsonPath.string_at("$.Failure.Error"),
                "Cause": sfn.JsonPath.string_at("$.Failure.Cause"),
            },
            result_path="$.FailureReport",
        )
        use_report = sfn.Pass(
            self,
            "Use_Failure_Report",
            parameters={"Error.$": "$.Failure.Error", "Cause.$": "$.FailureReport.result.Message"},
            result_path="$.Failure",
        )
        disable = self._retry(
            tasks.EmrSetClusterTerminationProtection(
                self, "Cleanup_Disable_Termination_Protection", cluster_id=cluster_id, termination_protected=False,
                result_path=sfn.JsonPath.DISCARD,
            )
        )
        terminate = self._retry(
            tasks.EmrTerminateCluster(
                self, "Cleanup_Terminate_Cluster", cluster_id=cluster_id, result_path=sfn.JsonPath.DISCARD,
                integration_pattern=self._pattern(),
            )
        )
        terminated = self._then_wait(terminate, "Cleanup_Wait_For_Termination", CLUSTER_TERMINATED)
        # A handed-in cluster keeps its protection and is never terminated by a failed run.
        created_here = (
            sfn.Choice(self, "Created_By_This_Execution")
            .when(sfn.Condition.boolean_equals("$.CreateCluster", True), disable)
            .otherwise(failed)
        )
        has_report = (
            sfn.Choice(self, "Has_Failure_Report")
            .when(sfn.Condition.is_present("$.FailureReport.result.Message"), use_report)
            .otherwise(created_here)
        )
        # The cleanup goes on whatever fails inside it: the execution then ends FAILED and the reaper finishes.
        describe.add_catch(created_here, result_path="$.FailureReportError")
        disable.add_catch(terminate, result_path="$.CleanupError")
        terminate.add_catch(failed, result_path="$.CleanupError")
        if terminated is not terminate:
            terminated.add_catch(failed, result_path="$.CleanupError")
        describe.next(has_report)
        use_report.next(created_here)
        disable.next(terminate)
        terminated.next(failed)
        return describe

    # -----------------------------------------------------------------------------------------------------------------
    # States

    def _step(self, state_name: str, step: EmrStepSettings, result_path: str | None = None) -> tasks.EmrAddStep:
        kebab = state_name.split(" ")[0].lower().replace("_", "-")
        args = [self._fill(arg, kebab) for arg in step.args]
        pattern = sfn.IntegrationPattern.REQUEST_RESPONSE if step.asynchronous else self._pattern()
        if not step.asynchronous and self._settings.wait_mode == "events":
            result_path = "$.AddedStep"  # the id its Wait_For_* state waits on
        task = tasks.EmrAddStep(
            self,
            state_name,
            cluster_id=sfn.JsonPath.string_at("$.ClusterId"),
            name=step.name,
            jar=step.jar,
            args=args,
            main_class=step.main_class,
            action_on_failure=tasks.ActionOnFailure(step.action_on_failure),
            integration_pattern=pattern,
            result_path=result_path or sfn.JsonPath.DISCARD,
        )
        return self._retry(task)

    def _pattern(self) -> sfn.IntegrationPattern:
        """How the tasks that the seed ran with .sync run: .sync, or request-response followed by a Wait_For_*."""
        if self._settings.wait_mode == "sync":
            return sfn.IntegrationPattern.RUN_JOB
        return sfn.IntegrationPattern.REQUEST_RESPONSE

    def _then_wait(
        self,
        task: Task,
        state_name: str,
        until: str,
        *,
        cluster_id_path: str = "$.ClusterId",
        step_id_path: str | None = None,
        result_path: str = sfn.JsonPath.DISCARD,
    ) -> sfn.TaskStateBase:
        """In events mode, the state after `task` that waits for EMR's event (the state to chain on and to catch);
        in sync mode `task` itself, whose .sync does the waiting."""
        if self.waiter is None:
            return task
        # The re-checks of all waits fit in the execution timeout.
        wait = wait_task(self, state_name, function=self.waiter, until=until, task_state_name=task.node.id,
                         cluster_id_path=cluster_id_path, step_id_path=step_id_path,
                         interval_seconds=self._recheck_seconds(), rechecks=self._max_rechecks(),
                         result_path=result_path)
        task.next(wait)
        return wait

    def _recheck_seconds(self) -> int:
        timeout = self._settings.execution_timeout_minutes * 60
        return max(RECHECK_SECONDS, math.ceil(timeout / MAX_RECHECKS))

    def _max_rechecks(self) -> int:
        return math.ceil(self._settings.execution_timeout_minutes * 60 / self._recheck_seconds())

    def _resize(self, cleanup: sfn.IChainable | None = None) -> tasks.EmrModifyInstanceFleetByName:
        resize = self._retry(
            tasks.EmrModifyInstanceFleetByName(
                self,
                "Resize_Core_Fleet",
                cluster_id=sfn.JsonPath.string_at("$.ClusterId"),
                instance_fleet_name=CORE_FLEET,
                target_on_demand_capacity=self._settings.resize_core_on_demand_capacity,
                target_spot_capacity=self._settings.resize_core_spot_capacity,
                result_path=sfn.JsonPath.DISCARD,
            )
        )
        if cleanup is not None:  # inside the Parallel, the Parallel's own Catch covers it
            resize.add_catch(cleanup, result_path="$.Failure")
        return resize

    def _read(self, state_name: str, payload: dict[str, Any], *, result_path: str) -> tasks.LambdaInvoke:
        return tasks.LambdaInvoke(
            self,
            state_name,
            lambda_function=self.reader,
            payload=sfn.TaskInput.from_object(payload),
            payload_response_only=True,
            result_path=result_path,
            retry_on_service_exceptions=True,
        )

    def _fleet(
        self,
        role: tasks.EmrCreateCluster.InstanceRoleType,
        name: str,
        instance_types: tuple[str, ...],
        *,
        on_demand: int,
        spot: int,
    ) -> tasks.EmrCreateCluster.InstanceFleetConfigProperty:
        return tasks.EmrCreateCluster.InstanceFleetConfigProperty(
            instance_fleet_type=role,
            name=name,
            target_on_demand_capacity=on_demand,
            target_spot_capacity=spot,
            instance_type_configs=[
                tasks.EmrCreateCluster.InstanceTypeConfigProperty(instance_type=t) for t in instance_types
            ],
        )

    def _fill(self, arg: str, step: str) -> str:
        """Replace the known placeholders only: step arguments may hold other braces (JSON, Spark settings)."""
        for placeholder, value in (
            ("{region}", cdk.Aws.REGION),
            ("{data_bucket}", self._data_bucket_name),
            ("{log_bucket}", self._log_bucket_name),
            ("{step}", step),
        ):
            arg = arg.replace(placeholder, value)
        return arg

    def _retry(self, task: Task) -> Task:
        task.add_retry(
            errors=EMR_CALL_ERRORS, interval=cdk.Duration.seconds(1), max_attempts=EMR_RETRY_ATTEMPTS,
            backoff_rate=2.0, jitter_strategy=sfn.JitterType.FULL,
        )
        return task

    def _guard(self, state: Guarded, cleanup: sfn.IChainable) -> Guarded:
        if isinstance(state, sfn.TaskStateBase) and not isinstance(state, tasks.EmrAddStep):
            self._retry(state)  # EmrAddStep got its retry where it was made
        state.add_catch(cleanup, result_path="$.Failure")
        return state

    # -----------------------------------------------------------------------------------------------------------------
    # Roles and functions

    def _cluster_instance_role(self) -> iam.Role:
        """The EC2 role of the cluster: read the EMR samples, write logs under emr/ and read/write the data bucket."""
        role = iam.Role(
            self,
            "ClusterInstanceRole",
            role_name=self._naming.name("emr-instance"),
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="EC2 instances of the EMR workflow's clusters",
        )
        # JobFlowRole names the instance profile; the EmrCreateCluster task passes the role name for it.
        iam.CfnInstanceProfile(self, "ClusterInstanceProfile", roles=[role.role_name],
                               instance_profile_name=role.role_name)
        samples = common.bucket_arn(f"{cdk.Aws.REGION}.elasticmapreduce.samples")
        logs_bucket = common.own_bucket_arn(self._naming, LOG_BUCKET_PURPOSE)
        data_bucket = common.own_bucket_arn(self._naming, DATA_BUCKET_PURPOSE)
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[samples, logs_bucket, data_bucket])
        )
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[f"{samples}/*"]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            resources=[f"{logs_bucket}/{EMR_LOG_PREFIX}*"],
        ))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                     "s3:ListMultipartUploadParts"],
            resources=[f"{data_bucket}/*"],
        ))
        self._acknowledge_wildcards(
            role,
            [
                common.nag_bucket_arn("<AWS::Region>.elasticmapreduce.samples") + "/*",
                common.nag_own_bucket_arn(self._naming, LOG_BUCKET_PURPOSE) + f"/{EMR_LOG_PREFIX}*",
                common.nag_own_bucket_arn(self._naming, DATA_BUCKET_PURPOSE) + "/*",
            ],
            reason="Objects only: the EMR samples (read), the emr/ log prefix of our log bucket and our data "
            "bucket, whose keys the steps choose (Hive overwrites its output, hence DeleteObject).",
        )
        return role

    def _function(self, construct_id: str, folder: str, description: str) -> lambda_.Function:
        return common.powertools_function(
            self,
            construct_id,
            function_name=self._naming.name(folder.replace("_", "-")),
            folder=folder,
            description=description,
            powertools_layer_version=self._settings.powertools_layer_version,
            removal_policy=self._removal_policy,
            id_prefix=construct_id,
        )

    def _event_waits(self) -> lambda_.Function:
        """The table of task tokens and the Lambda that answers them (it is subscribed once the machine exists)."""
        table, key = waits_table(self, table_name=self._naming.name("emr-waits"),
                                 key_description="Encrypts the task tokens of the EMR workflow's waits",
                                 removal_policy=self._removal_policy)
        self.waits_table = table
        function = self._function("EmrWaits", "emr_waits", "Ends the EMR workflow's waits on EMR's events")
        # A token cannot outlive its execution.
        grant_token_table(function, table, key, ttl_seconds=self._settings.execution_timeout_minutes * 60)
        # The answers go to this workflow's executions only (the ARN by name: the machine invokes the function).
        function.add_to_role_policy(iam.PolicyStatement(
            actions=["states:SendTaskSuccess", "states:SendTaskFailure"],
            resources=[cdk.Stack.of(self).format_arn(service="states", resource="stateMachine",
                                                     resource_name=self.state_machine_name,
                                                     arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)],
        ))
        # Reads of the clusters the workflow may act on, with the tags of its own role's statements.
        for tag, value in ((WORKFLOW_TAG, self.state_machine_name), (REUSE_TAG, reuse_tag_value(self._naming))):
            function.add_to_role_policy(iam.PolicyStatement(
                actions=["elasticmapreduce:DescribeCluster", "elasticmapreduce:DescribeStep"],
                resources=[self._cluster_arn()],
                conditions={"StringEquals": {f"elasticmapreduce:ResourceTag/{tag}": value}},
            ))
        self._acknowledge_wildcards(function, [self._nag_cluster_arn()], reason=(
            "Reads (DescribeCluster, DescribeStep) of the cluster a wait is about, whose id comes from createCluster "
            f"or the input: only clusters tagged {WORKFLOW_TAG}={self.state_machine_name} or opted in with "
            f"{REUSE_TAG}={reuse_tag_value(self._naming)}."))
        self._acknowledge_wildcards(function, ["*"], reason="X-Ray writes have no resource-level permission.")
        return function

    def _subscribe_to_emr_events(self, function: lambda_.Function) -> None:
        """EMR's state changes that can end a wait go to the function; EventBridge retries a failed delivery."""
        subscribe_to_emr_events(
            self, "EmrWaitEvents", rule_name=self._naming.name("emr-wait-events"), function=function,
            description="EMR cluster and step state changes that can end a wait of the EMR workflow")

    def _grant_emr_reads(self, function: lambda_.Function) -> None:
        function.add_to_role_policy(iam.PolicyStatement(
            actions=["elasticmapreduce:DescribeCluster", "elasticmapreduce:DescribeStep", "elasticmapreduce:ListSteps"],
            resources=[self._cluster_arn()],
        ))
        function.add_to_role_policy(iam.PolicyStatement(actions=["elasticmapreduce:ListClusters"], resources=["*"]))
        self._acknowledge_wildcards(
            function,
            ["*", self._nag_cluster_arn()],
            reason="Reads only, on any cluster of the account (cluster/*): CheckCluster reads a handed-in cluster's "
            "tags to tell one the workflow may use from one it may not; ListClusters has no resource-level "
            "permission; X-Ray writes have no resource either.",
        )

    def _grant_reaper(self, function: lambda_.Function) -> None:
        function.add_to_role_policy(iam.PolicyStatement(actions=["elasticmapreduce:ListClusters"], resources=["*"]))
        function.add_to_role_policy(iam.PolicyStatement(
            actions=["elasticmapreduce:DescribeCluster"], resources=[self._cluster_arn()]))
        # It may only change clusters that this workflow created (they carry its tag).
        function.add_to_role_policy(iam.PolicyStatement(
            actions=["elasticmapreduce:SetTerminationProtection", "elasticmapreduce:TerminateJobFlows"],
            resources=[self._cluster_arn()],
            conditions={"StringEquals": {f"elasticmapreduce:ResourceTag/{WORKFLOW_TAG}": self.state_machine_name}},
        ))
        self._acknowledge_wildcards(
            function,
            ["*", self._nag_cluster_arn()],
            reason="Which clusters to terminate is known only from their tags: changes are limited by the "
            "condition on this workflow's tag; ListClusters and X-Ray writes have no resource-level permission.",
        )

    def _cluster_arn(self) -> str:
        return cdk.Stack.of(self).format_arn(service="elasticmapreduce", resource="cluster", resource_name="*")

    def _nag_cluster_arn(self) -> str:
        return common.nag_arn(self, "elasticmapreduce", "cluster/*")

    @staticmethod
    def _acknowledge_wildcards(construct: Construct, resources: list[str], *, reason: str) -> None:
        common.acknowledge_wildcards(construct, dict.fromkeys(resources, reason))

    def _acknowledge_state_machine_policy(self) -> None:
        stack = cdk.Stack.of(self)
        account = common.nag_account(self)
        reader = stack.resolve(stack.get_logical_id(typing.cast(cdk.CfnElement, self.reader.node.default_child)))
        waiter_versions = []
        if self.waiter is not None:
            waiter = stack.resolve(stack.get_logical_id(typing.cast(cdk.CfnElement, self.waiter.node.default_child)))
            waiter_versions.append(f"<{waiter}.Arn>:*")
        self._acknowledge_wildcards(self.state_machine_role, ["*"], reason=(
            "RunJobFlow has no cluster before it runs: it is allowed only with the tag "
            f"{WORKFLOW_TAG}={self.state_machine_name} in the request; X-Ray and log delivery have no resource-level "
            "permission."))
        self._acknowledge_wildcards(self.state_machine_role, [self._nag_cluster_arn()], reason=(
            "The cluster id comes from createCluster or the execution input, so the resource is cluster/*, but every "
            "EMR action on it requires a tag: clusters this workflow created "
            f"({WORKFLOW_TAG}={self.state_machine_name}) or opted in by their owner "
            f"({REUSE_TAG}={reuse_tag_value(self._naming)}); AddTags only with the workflow's tag in the request."))
        self._acknowledge_wildcards(
            self.state_machine_role,
            [f"<{reader}.Arn>:*", *waiter_versions,
             f"arn:<AWS::Partition>:iam::{account}:role/aws-service-role/elasticmapreduce.amazonaws.com*"
             "/AWSServiceRoleForEMRCleanup*"],
            reason="Lambda invoke includes the versions of the workflow's own functions (reader, waits); EMR may "
            "create its "
            "cleanup service-linked role.",
        )
        cdk.Validations.of(self._service_role).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonEMRServicePolicy_v2]",
                reason="AmazonEMRServicePolicy_v2 is the service role policy EMR documents; it only acts on "
                "resources tagged for-use-with-amazon-emr-managed-policies, a tag the cluster gets.",
            )
        )


class EmrWorkflowStack(cdk.Stack):
    """The deployable unit for the EMR workflow."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        naming: Naming,
        settings: EmrSettings,
        log_bucket: s3.IBucket,
        data_bucket: s3.IBucket,
        removal_policy: cdk.RemovalPolicy,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Clusters write logs and results to Storage's buckets, found by name: deploy Storage first.
        self.add_stack_dependency(cdk.Stack.of(log_bucket))
        self.add_stack_dependency(cdk.Stack.of(data_bucket))
        self.workflow = EmrWorkflow(
            self,
            "EmrWorkflow",
            naming=naming,
            settings=settings,
            removal_policy=removal_policy,
        )
