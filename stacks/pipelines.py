"""State machines compiled from Data Pipeline definitions (see datapipe.importer).

`PipelineWorkflow` turns one importer plan into a Step Functions state machine (and its schedule). Each definition
in the pipelines folder is a stack of its own (`PipelineStack`, named after the definition), so that adding, changing
or removing one never touches another; what they all share (EMR roles, the shell job definitions, the runners' secret
policies, the cluster reaper) is deployed once by `PipelinesStack`, and each pipeline finds it by name.

The shape of every workflow:
  Resolve the run's time (the schedule's `scheduledStartTime`, which must be a timestamp, else the execution's start)
  -> check that the execution input carries the parameters without a value -> create each EMR cluster -> run the
  activities stage by stage (a stage's activities in parallel) -> terminate the clusters.
The execution input is data: shell commands get its values as environment variables (the importer's `ShellCode`),
never as shell text; secrets are only references, read at run time by the task runner, Batch or the EMR step, each
allowed to read only the secrets its pipelines name (`SecretReaders`, `ShellJobDefinition`).
Once a cluster exists, every failure or timeout turns termination protection off and terminates it before the
run fails.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from datapipe.bundles.names import job_queue_name
from datapipe.errors import DatapipeError
from datapipe.importer import PlanOptions, companion_values, import_file
from datapipe.importer.databases import REDSHIFT_DATA
from datapipe.importer.expressions import PARAMETERS_PATH, RUN_PATH, RuntimePath, Text
from datapipe.importer.plan import (
    ACTIVITY_TASK,
    BATCH_JOB,
    EMR_STEPS,
    Activity,
    Cluster,
    Plan,
    Shell,
)
from datapipe.importer.preconditions import S3_KEY
from datapipe.naming import BUCKET_NAME_PATTERN, EMR_LOG_PREFIX, LOG_BUCKET_PURPOSE, Naming
from datapipe.taskrunner.contract import SHELL_COMMAND_ACTIVITY
from stacks import pipeline_dynamodb, pipeline_merge_keys, pipeline_resources, pipeline_sql
from stacks.common import (
    acknowledge_wildcards,
    bucket_arn,
    depend_on_policy_only,
    log_group_arn,
    logged_state_machine,
    logs_key,
    nag_account,
    nag_arn,
    nag_bucket_arn,
    nag_own_bucket_arn,
    own_bucket_arn,
    powertools_function,
    reaper_rule,
)
from stacks.config import PipelineSettings, SettingsError, WorkerGroupSettings
from stacks.emr_waits import (
    EmrWaitsOfPipeline,
    PipelineEmrWaits,
    WaitMode,
    nag_pipeline_waits_versions,
)
from stacks.emr_workflow import EXECUTION_TAG, WORKFLOW_TAG, ClusterTagScopedRole
from stacks.pipeline_checks import (
    activity_chain,
    creation_catch,
    failure_actions,
    notify,
    state_key,
    watched_creation,
)
from stacks.pipeline_schedules import add_pipeline_schedules, on_its_schedule, own_state_machine_arn, schedule_entry
from stacks.run_values import PipelineRunValues, run_values_state, run_values_wildcards
from stacks.worker_groups import shell_command_task

CONSTANTS_PATH = "$.const"
CLUSTERS_PATH = "$.clusters"
# The tag that AmazonEMRServicePolicy_v2 requires on the clusters it may manage.
EMR_MANAGED_TAG = {"for-use-with-amazon-emr-managed-policies": "true"}
DEFINITION_SUFFIXES = (".json",)


_key = state_key


def shell_script(arguments: int, inputs: int, outputs: int, *, stage: bool, script: bool) -> str:
    """The fixed shell text a Batch job runs; the command, arguments and paths arrive as environment variables.

    The arguments become $1..$N of the command, as in Data Pipeline; with staging, inputs are copied to
    ${INPUTn_STAGING_DIR} before and ${OUTPUTn_STAGING_DIR} is copied out after.
    """
    lines = ["set -e", "set --" + "".join(f' "$DATAPIPE_ARG_{i}"' for i in range(1, arguments + 1))]
    if stage:
        for i in range(1, inputs + 1):
            lines += [f'export INPUT{i}_STAGING_DIR="$PWD/datapipe-staging/input{i}"',
                      f'mkdir -p "$INPUT{i}_STAGING_DIR"',
                      f'aws s3 cp --recursive "$DATAPIPE_INPUT_{i}" "$INPUT{i}_STAGING_DIR"']
        for i in range(1, outputs + 1):
            lines += [f'export OUTPUT{i}_STAGING_DIR="$PWD/datapipe-staging/output{i}"',
                      f'mkdir -p "$OUTPUT{i}_STAGING_DIR"']
    if script:
        lines.append('aws s3 cp "$DATAPIPE_SCRIPT_URI" ./datapipe-script && sh ./datapipe-script "$@"')
    else:
        lines.append('eval "$DATAPIPE_COMMAND"')
    if stage:
        lines += [f'aws s3 cp --recursive "$OUTPUT{i}_STAGING_DIR" "$DATAPIPE_OUTPUT_{i}"' for i in
                  range(1, outputs + 1)]
    return "\n".join(lines)


class PipelineWorkflow(Construct):
    """One imported pipeline as a Standard state machine, plus an EventBridge Scheduler schedule when it has one."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        naming: Naming,
        plan: Plan,
        settings: PipelineSettings,
        worker_groups: WorkerGroupSettings,
        log_bucket: s3.IBucket,
        job_queue_arn: str | None = None,
        job_definition_arn: str | None = None,
        emr_roles: EmrRoles | None = None,
        schedule_role: iam.IRole | None = None,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
        emr_wait_mode: WaitMode = "sync",
    ) -> None:
        """`schedule_role`: the role EventBridge Scheduler starts runs with (by default, one of this pipeline's own).
        `emr_wait_mode`: `events` waits for EMR's events through the pipelines stack's shared function
        (stacks.emr_waits), which must be deployed; `sync` uses the native .sync integrations."""
        super().__init__(scope, construct_id)
        if not plan.deployable:
            first = plan.errors[0] if plan.errors else next(
                (f"{o.id}: {o.reason}" for o in plan.objects if o.status != "mapped"), "no activity to run")
            raise DatapipeError(f"pipeline {plan.source} cannot be deployed: {first}")
        self.plan = plan
        self._naming = naming
        self._settings = settings
        self._worker_groups = worker_groups
        self._log_bucket = log_bucket
        self._job_queue_arn = job_queue_arn
        self._job_definition_arn = job_definition_arn
        self._emr_roles = emr_roles
        self._schedule_role = schedule_role
        groups = {a.worker_group or "" for a in plan.activities if a.target == ACTIVITY_TASK}
        unknown = sorted(groups - set(worker_groups.names))
        if unknown:
            raise DatapipeError(f"pipeline {plan.source} uses worker group {unknown[0]}, which has no activity; add it "
                                "to the setting 'workerGroups.names'")
        if any(a.target == BATCH_JOB for a in plan.activities) and not (job_queue_arn and job_definition_arn):
            raise DatapipeError(f"pipeline {plan.source} runs Batch jobs but no job queue was given")
        self._activity_scope = Construct(self, "WorkerGroupTasks")
        self._constants: dict[str, str] = {}
        self._names: set[str] = set()
        self._next_number: dict[str, int] = {}
        self._emr_waits = EmrWaitsOfPipeline(self, naming=naming, mode=emr_wait_mode if plan.clusters else "sync",
                                             name=self._name)
        self.workflow_name = f"pipeline-{plan.name}"
        stack = cdk.Stack.of(self)
        self._stack = stack

        body = self._body()
        start = schedule_entry(self, self._prologue(body), plan=plan, name=self._name, settings=settings,
                               state_machine_arn=own_state_machine_arn(self, naming.state_machine(self.workflow_name)),
                               naming=naming, workflow_name=self.workflow_name)
        self.state_machine = logged_state_machine(
            self,
            "StateMachine",
            state_machine_name=naming.state_machine(self.workflow_name),
            definition=start,
            removal_policy=removal_policy,
            state_machine_type=sfn.StateMachineType.STANDARD,
            comment=f"Imported from the Data Pipeline definition {plan.source}",
            role=self._emr_scoped_role(),
        )
        self._acknowledge_wildcards()
        self.schedules = add_pipeline_schedules(
            self, naming=naming, plan=plan, workflow_name=self.workflow_name, state_machine=self.state_machine,
            settings=settings, role=schedule_role) if plan.schedules else []

    # -- run time, parameters, constants ------------------------------------------------------------------------------

    def _name(self, wanted: str) -> str:
        """A state name, unique in this machine and within the 80-character limit."""
        base = _key(wanted)[:72]
        name, number = base, self._next_number.get(base, 2)
        while name in self._names:  # resumes where the last name of this base stopped: linear over many ids
            name, number = f"{base}_{number}", number + 1
        self._next_number[base] = number
        self._names.add(name)
        return name

    def _constant(self, text: str) -> str:
        key = self._constants.setdefault(text, f"c{len(self._constants)}")
        return f"{CONSTANTS_PATH}.{key}"

    def _constant_parameters(self) -> list[tuple[str, str]]:
        """The literal pieces, for the Set_Constants state.

        Shell text such as `${INPUT1_STAGING_DIR}` would read as a CloudFormation substitution in the template, so
        such a piece travels base64-encoded and is decoded when the state runs.
        """
        result: list[tuple[str, str]] = []
        for text, key in self._constants.items():
            if "${" in text:
                encoded = base64.b64encode(text.encode()).decode()
                result.append((f"{key}.$", f"States.Base64Decode('{encoded}')"))
            else:
                result.append((key, text))
        return result

    def render(self, text: Text) -> str:
        """A text for a state's parameters: itself when static, else a JSONPath or States.Format over the state.

        Literal pieces of a runtime text are kept in the state (`$.const`) so that no quoting or brace in them can
        change the meaning of the States.Format call.
        """
        if text.is_static and "${" not in text.static:
            return text.static
        paths: list[str] = []
        for part in text.parts:
            if not isinstance(part, str | RuntimePath):  # the importer lets secrets reach shell commands only
                raise DatapipeError(f"pipeline {self.plan.source}: a secret reached a field that is not a command")
            paths.append(self._constant(part) if isinstance(part, str) else part.path)
        if len(paths) == 1:
            return sfn.JsonPath.string_at(paths[0])
        return sfn.JsonPath.format("{}" * len(paths), *(sfn.JsonPath.string_at(p) for p in paths))

    def render_list(self, texts: list[Text]) -> Any:
        if all(t.is_static and "${" not in t.static for t in texts):
            return [t.static for t in texts]
        items = [sfn.JsonPath.string_at(self._constant(t.static)) if t.is_static else self.render(t) for t in texts]
        return sfn.JsonPath.array(*items)

    def _prologue(self, body: sfn.IChainable) -> sfn.IChainable:
        """Run time, parameter check and constants, in front of the body (built first, so constants are known)."""
        start: sfn.IChainable = body
        if self.plan.run_expressions:
            start = run_values_state(self, naming=self._naming, state_name=self._name("Evaluate_Run_Time_Expressions"),
                                     expressions=self.plan.run_expressions, constant=self._constant,
                                     checked=pipeline_sql.checked_run_values(self.plan)).next(start)
        if self._constants:
            constants = sfn.Pass(self, "Constants", state_name=self._name("Set_Constants"),
                                 parameters=dict(self._constant_parameters()), result_path=CONSTANTS_PATH)
            start = constants.next(start)
        if self.plan.runtime_parameters:
            missing = sfn.Fail(self, "MissingParameter", state_name=self._name("Missing_Parameters"),
                               error="MissingParameters",
                               cause="the execution input needs 'parameters' with: "
                               + ", ".join(p.lstrip("*") for p in self.plan.runtime_parameters))
            paths = [f"{PARAMETERS_PATH}.{p.lstrip('*')}" for p in self.plan.runtime_parameters]
            start = self._check_parameter_values(start)
            check = sfn.Choice(self, "CheckParameters", state_name=self._name("Check_Parameters"))
            check.when(sfn.Condition.or_(*(sfn.Condition.is_not_present(p) for p in paths)), missing)
            start = check.otherwise(start)
        if not self.plan.uses_run_time:
            return start
        bad_time = sfn.Fail(self, "BadScheduledTime", state_name=self._name("Scheduled_Start_Time_Not_A_Timestamp"),
                            error="InvalidScheduledStartTime",
                            cause="scheduledStartTime must be a UTC timestamp such as 2024-01-31T06:00:00Z")
        use_schedule = sfn.Pass(self, "UseScheduledTime", state_name=self._name("Use_Scheduled_Start_Time"),
                                parameters={"time.$": "$.scheduledStartTime"}, result_path=RUN_PATH)
        use_start = sfn.Pass(self, "UseStartTime", state_name=self._name("Use_Execution_Start_Time"),
                             parameters={"time.$": "$$.Execution.StartTime"}, result_path=RUN_PATH)
        split = sfn.Pass(self, "SplitTime", state_name=self._name("Split_Run_Time"),
                         parameters={"time.$": f"{RUN_PATH}.time",
                                     "parts.$": f"States.StringSplit({RUN_PATH}.time, '-T:.Z+')"},
                         result_path=RUN_PATH)
        names = ("year", "month", "day", "hour", "minute", "second")
        parts = {f"{n}.$": f"States.ArrayGetItem({RUN_PATH}.parts, {i})" for i, n in enumerate(names)}
        name_parts = sfn.Pass(self, "NameTimeParts", state_name=self._name("Name_Run_Time_Parts"),
                              parameters={"time.$": f"{RUN_PATH}.time", **parts}, result_path=RUN_PATH)
        split.next(name_parts).next(start)
        use_schedule.next(split)
        use_start.next(split)
        return (
            sfn.Choice(self, "HasScheduledTime", state_name=self._name("Has_Scheduled_Start_Time"))
            # Only a timestamp: its parts are digits, whatever the code they reach. In UTC (as schedules and
            # Step Functions give it), so that its split parts and the run-values Lambda read the same time.
            .when(sfn.Condition.and_(sfn.Condition.is_present("$.scheduledStartTime"),
                                     sfn.Condition.is_timestamp("$.scheduledStartTime"),
                                     sfn.Condition.string_matches("$.scheduledStartTime", "*Z")), use_schedule)
            .when(sfn.Condition.is_present("$.scheduledStartTime"), bad_time)
            .otherwise(use_start)
        )

    def _check_parameter_values(self, start: sfn.IChainable) -> sfn.IChainable:
        """What a starter gives must be text, and one of the parameter's allowedValues when it declares them."""
        wrong: list[sfn.Condition] = []
        for name in self.plan.runtime_parameters:
            path = f"{PARAMETERS_PATH}.{name.lstrip('*')}"
            wrong.append(sfn.Condition.not_(sfn.Condition.is_string(path)))
            allowed = self.plan.allowed_values.get(name)
            if allowed:
                wrong.append(sfn.Condition.not_(sfn.Condition.or_(
                    *(sfn.Condition.string_equals(path, value) for value in allowed))))
        described = ", ".join(
            name.lstrip("*") + (f" (one of: {', '.join(self.plan.allowed_values[name])})"
                                if name in self.plan.allowed_values else "")
            for name in self.plan.runtime_parameters)
        invalid = sfn.Fail(self, "InvalidParameter", state_name=self._name("Invalid_Parameters"),
                           error="InvalidParameters", cause=f"the parameters must be text: {described}"[:32768])
        return (sfn.Choice(self, "CheckParameterValues", state_name=self._name("Check_Parameter_Values"))
                .when(sfn.Condition.or_(*wrong), invalid).otherwise(start))

    # -- the body -----------------------------------------------------------------------------------------------------

    def _body(self) -> sfn.IChainable:
        succeed = sfn.Succeed(self, "Done", state_name=self._name("Pipeline_Succeeded"))
        if not self.plan.clusters:
            return self._stages(on_error=None).next(succeed)
        failed = sfn.Fail(self, "Failed", state_name=self._name("Pipeline_Failed"), error="PipelineFailed",
                          cause="an activity failed or timed out; the pipeline's clusters were terminated")
        # Every state that may fail once the clusters exist catches into the cleanup: the guarantee that no
        # failure leaves a cluster running (a stopped execution is the reaper's case).
        cleanup = self._cleanup(self.plan.clusters, failed, "after_failure")
        stages = self._stages(on_error=cleanup)
        # A creation with its wait (events mode) is one state, so that a retry creates the cluster again.
        creates = [self._create_cluster(c) for c in self.plan.clusters]
        steps: list[sfn.IChainable] = []
        for index, (cluster, create) in enumerate(zip(self.plan.clusters, creates, strict=True)):
            created_before = self.plan.clusters[:index]
            cleanup_before = self._cleanup(created_before, failed, f"after_create_{index}")
            creation_failed = failure_actions(self, cluster.on_fail, cluster.id, "on_fail", cleanup_before)
            caught_creation = creation_catch(self, cluster, creation_failed)  # inside its lateness watch, if any
            steps.append(create)
            if cluster.creation_retries:  # maximumRetries: a failed creation is tried again (Spot, when bid)
                create.add_retry(errors=self._emr_waits.failed_errors, max_attempts=cluster.creation_retries,
                                 backoff_rate=1, interval=cdk.Duration.seconds(cluster.retry_delay_seconds))
            if cluster.on_demand_last_attempt:  # a failed Spot creation is followed by one without bid prices
                on_demand = self._create_cluster(cluster, bids=False)
                create.add_catch(on_demand, errors=self._emr_waits.failed_errors, result_path="$.spotCreationError")
                on_demand.add_catch(caught_creation, result_path="$.error")
                ready = sfn.Pass(self, f"Ready{_key(cluster.id)}", state_name=self._name(f"Cluster_{cluster.id}_Ready"))
                create.next(ready)
                on_demand.next(ready)
                steps[-1] = sfn.Chain.custom(create, [ready], ready)
            create.add_catch(caught_creation, result_path="$.error")
            steps[-1] = watched_creation(self, cluster, sfn.Chain.start(steps[-1]), self._cluster_path(cluster.id),
                                         creation_failed)
        chain = sfn.Chain.start(steps[0])
        for step in steps[1:]:
            chain = chain.next(step)
        chain = chain.next(stages)
        for cluster in self.plan.clusters:
            chain = chain.next(self._terminate(cluster, "end"))
            alarms = notify(self, cluster.on_success, cluster.id, "on_success")  # terminated at the end of a good run
            if alarms is not None:
                chain = chain.next(alarms)
        return chain.next(succeed)

    def _stages(self, on_error: sfn.IChainable | None) -> sfn.Chain:
        """The activities stage by stage; a failure goes to `on_error` when given (a branch fails its stage)."""
        chain: sfn.Chain | None = None
        for number, stage in enumerate(self.plan.stages, start=1):
            if len(stage) == 1:
                step: sfn.IChainable = self._activity(stage[0], on_error)
            else:
                parallel = sfn.Parallel(self, f"Stage{number}", state_name=self._name(f"Stage_{number}"),
                                        result_path=sfn.JsonPath.DISCARD)
                for activity in stage:
                    parallel.branch(self._activity(activity, None))
                if on_error is not None:
                    parallel.add_catch(on_error, result_path="$.error")
                step = parallel
            chain = sfn.Chain.start(step) if chain is None else chain.next(step)
        assert chain is not None  # a deployable plan has activities
        return chain

    # -- clusters -----------------------------------------------------------------------------------------------------

    def _emr_scoped_role(self) -> ClusterTagScopedRole | None:
        """For a pipeline with clusters, a role whose EMR actions reach only the clusters this pipeline created."""
        if not self.plan.clusters:
            return None
        return ClusterTagScopedRole(
            self,
            "StateMachineRole",
            created_by=(WORKFLOW_TAG, self._naming.state_machine(self.workflow_name)),
            opted_in=None,
            description=f"Imported pipeline {self.plan.name}: EMR actions only on the clusters it created",
        )

    def _cluster_path(self, cluster_id: str) -> str:
        return f"{CLUSTERS_PATH}.{_key(cluster_id)}"

    def _create_cluster(self, cluster: Cluster, *, bids: bool = True) -> sfn.TaskStateBase | sfn.Parallel:
        log_uri = cluster.log_uri or f"s3://{self._log_bucket.bucket_name}/{EMR_LOG_PREFIX}{self.plan.name}/"
        last = "" if bids else "_On_Demand"  # useOnDemandOnLastAttempt: the creation after a failed Spot one
        create = tasks.EmrCreateCluster(
            self,
            f"Create{_key(cluster.id)}{last}",
            state_name=self._name(f"Create_Cluster_{cluster.id}{last}"),
            name=self._naming.name(f"{self.plan.name}-{cluster.id}")[:256],
            release_label=cluster.release_label,
            applications=[tasks.EmrCreateCluster.ApplicationConfigProperty(name=a) for a in cluster.applications],
            instances=pipeline_resources.instances(cluster, bids=bids),
            bootstrap_actions=[
                tasks.EmrCreateCluster.BootstrapActionConfigProperty(
                    name=f"bootstrap-{index}",
                    script_bootstrap_action=tasks.EmrCreateCluster.ScriptBootstrapActionConfigProperty(
                        path=path, args=args
                    ),
                )
                for index, (path, args) in enumerate(cluster.bootstrap_actions, start=1)
            ]
            or None,
            configurations=[pipeline_resources.configuration(c) for c in cluster.configurations] or None,
            log_uri=log_uri,
            cluster_role=self._emr_roles.instance_role if self._emr_roles else None,
            service_role=self._emr_roles.service_role if self._emr_roles else None,
            auto_scaling_role=self._emr_roles.autoscaling_role if self._emr_roles else None,
            visible_to_all_users=True,
            # The execution tag lets the reaper find the clusters of a run that was stopped or timed out.
            tags={**EMR_MANAGED_TAG, EXECUTION_TAG: sfn.JsonPath.execution_id,
                  WORKFLOW_TAG: self._naming.state_machine(self.workflow_name), "datapipe:resource": cluster.id},
            integration_pattern=self._emr_waits.pattern,
            result_selector={"ClusterId.$": "$.ClusterId"},
            result_path=self._cluster_path(cluster.id),
        )
        return self._emr_waits.cluster_ready(create, construct_id=f"Create{_key(cluster.id)}{last}",
                                             cluster_path=self._cluster_path(cluster.id))

    def _cluster_id(self, cluster_id: str) -> str:
        return sfn.JsonPath.string_at(f"{self._cluster_path(cluster_id)}.ClusterId")

    def _terminate(self, cluster: Cluster, when: str) -> sfn.IChainable:
        unprotect = tasks.EmrSetClusterTerminationProtection(
            self, f"Unprotect{_key(cluster.id)}{when}",
            state_name=self._name(f"Disable_Protection_{cluster.id}_{when}"),
            cluster_id=self._cluster_id(cluster.id), termination_protected=False, result_path=sfn.JsonPath.DISCARD,
        )
        terminate = tasks.EmrTerminateCluster(
            self, f"Terminate{_key(cluster.id)}{when}", state_name=self._name(f"Terminate_Cluster_{cluster.id}_{when}"),
            cluster_id=self._cluster_id(cluster.id), integration_pattern=self._emr_waits.pattern,
            result_path=sfn.JsonPath.DISCARD,
        )
        terminated = self._emr_waits.cluster_terminated(terminate,
                                                        cluster_id_path=f"{self._cluster_path(cluster.id)}.ClusterId")
        for task in dict.fromkeys((unprotect, terminate, terminated)):
            task.add_retry(errors=["States.ALL"], max_attempts=3, interval=cdk.Duration.seconds(10), backoff_rate=2)
        unprotect.next(terminate)  # then, in events mode, its wait
        return sfn.Chain.custom(unprotect, [terminated], terminated)

    def _cleanup(self, clusters: list[Cluster], failed: sfn.Fail, when: str) -> sfn.IChainable:
        """Terminate each cluster in turn; a cleanup step that fails still goes on to the next cluster."""
        if not clusters:
            return failed
        following: sfn.IChainable = failed
        for cluster in reversed(clusters):
            unprotect = tasks.EmrSetClusterTerminationProtection(
                self, f"Cleanup{_key(cluster.id)}{when}",
                state_name=self._name(f"Cleanup_Protection_{cluster.id}_{when}"),
                cluster_id=self._cluster_id(cluster.id), termination_protected=False,
                result_path=sfn.JsonPath.DISCARD,
            )
            terminate = tasks.EmrTerminateCluster(
                self, f"CleanupTerminate{_key(cluster.id)}{when}",
                state_name=self._name(f"Cleanup_Terminate_{cluster.id}_{when}"),
                cluster_id=self._cluster_id(cluster.id), integration_pattern=self._emr_waits.pattern,
                result_path=sfn.JsonPath.DISCARD,
            )
            terminated = self._emr_waits.cluster_terminated(
                terminate, cluster_id_path=f"{self._cluster_path(cluster.id)}.ClusterId")
            for task in dict.fromkeys((unprotect, terminate, terminated)):
                task.add_retry(errors=["States.ALL"], max_attempts=3, interval=cdk.Duration.seconds(10))
                if task is not unprotect:
                    task.add_catch(following, result_path="$.cleanupError")
            unprotect.add_catch(terminate, result_path="$.cleanupError")
            unprotect.next(terminate)
            terminated.next(following)
            following = unprotect
        return following

    # -- activities ---------------------------------------------------------------------------------------------------

    def _activity(self, activity: Activity, on_error: sfn.IChainable | None) -> sfn.IChainable:
        """Preconditions, the work, and the activity's actions, as one chain; a failure goes on to `on_error`."""
        return on_its_schedule(self, activity_chain(self, activity, on_error), plan=self.plan, activity_id=activity.id,
                               key=_key(activity.id), name=self._name)

    def _work(self, activity: Activity) -> list[Any]:
        # terminateAfter of the resource bounds each of its tasks; attemptTimeout, when shorter, bounds it more.
        bounds = [t for t in (activity.attempt_timeout_seconds, activity.resource_timeout_seconds) if t]
        timeout = min(bounds) if bounds else None
        task_timeout = sfn.Timeout.duration(cdk.Duration.seconds(timeout)) if timeout else None
        if activity.target == REDSHIFT_DATA:
            return [pipeline_sql.redshift_statement_states(self, activity, timeout_seconds=timeout,
                                                           state_key=_key(activity.id))]
        if activity.target == ACTIVITY_TASK:
            return [self._activity_task(activity, timeout)]
        if activity.target == BATCH_JOB and activity.sql is not None:
            return pipeline_sql.sql_batch_job(self, activity, task_timeout=task_timeout, state_key=_key(activity.id))
        if activity.target == BATCH_JOB:
            return [self._batch_job(activity, task_timeout)]
        steps: list[Any] = []
        cluster_path = self._cluster_path(activity.resource or "")
        cluster_id = sfn.JsonPath.string_at(f"{cluster_path}.ClusterId")
        if activity.resize_core_to:  # resizeClusterBeforeRunning
            steps.append(pipeline_resources.core_resize(
                self, f"Resize{_key(activity.id)}", state_name=self._name(f"Resize_Core_Before_{activity.id}"),
                cluster_id=cluster_id, count=activity.resize_core_to))
        for step in activity.steps:
            args: Any = self.render_list(step.args)
            prepare = None
            if not isinstance(args, list):  # a list with runtime parts is built in the state first
                path = f"$.stepArgs.{_key(step.name)}"
                prepare = sfn.Pass(self, f"Prepare{_key(step.name)}", state_name=self._name(f"Prepare_{step.name}"),
                                   parameters={"args": args}, result_path=path)
                args = sfn.JsonPath.list_at(f"{path}.args")
                steps.append(prepare)
            add = tasks.EmrAddStep(
                self, f"Step{_key(step.name)}", state_name=self._name(f"Run_{step.name}"),
                cluster_id=cluster_id, name=step.name, jar=self.render(step.jar), args=args,
                main_class=step.main_class, action_on_failure=tasks.ActionOnFailure.CONTINUE,
                integration_pattern=self._emr_waits.pattern, result_path=self._emr_waits.step_result_path,
                task_timeout=task_timeout if self._emr_waits.function is None else None,
            )
            steps.append(self._emr_waits.step_ended(add, cluster_id_path=f"{cluster_path}.ClusterId",
                                                    timeout_seconds=timeout))
        return steps

    def _activity_task(self, activity: Activity, timeout: int | None) -> Any:
        assert activity.worker_group is not None
        if activity.sql is not None:
            worker_activity = self._worker_activity(activity.worker_group, activity.id)
            return pipeline_sql.sql_task(self, activity, worker_activity=worker_activity, timeout_seconds=timeout,
                                         state_name=self._name(activity.id))
        assert activity.shell is not None
        return self._worker_task(activity, self._name(activity.id), activity.shell, timeout=timeout)

    def _worker_activity(self, worker_group: str, key: str) -> sfn.IActivity:
        return sfn.Activity.from_activity_arn(
            self, f"WorkerGroup{_key(key)}",
            self._naming.activity_arn(worker_group, account=self._stack.account, region=self._stack.region,
                                      partition=self._stack.partition),
        )

    def _worker_task(self, activity: Activity, name: str, shell: Shell, *, timeout: int | None = None,
                     task_type: str = SHELL_COMMAND_ACTIVITY) -> Any:
        """A task for the activity's worker group running `shell` (the activity's own, or one of its checks)."""
        assert activity.worker_group is not None
        fields: dict[str, Any] = {
            "scriptArgument": self.render_list(shell.arguments),
            "stage": shell.stage,
            "input": self.render_list(shell.inputs),
            "output": self.render_list(shell.outputs),
        }
        if shell.command is not None:
            fields["command"] = self.render(Text.of(shell.command))
        if shell.script_uri is not None:
            fields["scriptUri"] = self.render(shell.script_uri)
        if shell.environment:  # the task contract's plain values, set as the command's environment
            fields["environment"] = {name: self.render(text) for name, text in shell.environment.items()}
        if shell.secrets:  # references only: the runner reads each value with its own credentials
            fields["secrets"] = dict(shell.secrets)
        worker_activity = self._worker_activity(activity.worker_group, name)
        settings = self._worker_groups
        if activity.heartbeat_seconds and task_type == SHELL_COMMAND_ACTIVITY:  # reportProgressTimeout
            settings = dataclasses.replace(settings, heartbeat_seconds=activity.heartbeat_seconds, task_timeout_seconds=
                                           max(settings.task_timeout_seconds, activity.heartbeat_seconds + 1))
        if timeout:  # attemptTimeout bounds each attempt; the heartbeat must stay shorter than it
            settings = dataclasses.replace(settings, task_timeout_seconds=max(timeout, settings.heartbeat_seconds + 1))
        return shell_command_task(self._activity_scope, name, activity=worker_activity, settings=settings,
                                  shell=fields, task_type=task_type)

    def _batch_job(self, activity: Activity, task_timeout: sfn.Timeout | None) -> Any:
        shell = activity.shell
        assert shell is not None
        environment: dict[str, str] = {"DATAPIPE_PIPELINE": self.plan.name, "DATAPIPE_ACTIVITY": activity.id}
        # Values known at run time are variables of the job; the command text (fixed here) refers to them.
        environment.update({name: self.render(text) for name, text in shell.environment.items()})
        if shell.command is not None:
            environment["DATAPIPE_COMMAND"] = self.render(Text.of(shell.command))
        if shell.script_uri is not None:
            environment["DATAPIPE_SCRIPT_URI"] = self.render(shell.script_uri)
        for prefix, texts in (("ARG", shell.arguments), ("INPUT", shell.inputs), ("OUTPUT", shell.outputs)):
            for index, text in enumerate(texts, start=1):
                environment[f"DATAPIPE_{prefix}_{index}"] = self.render(text)
        script = shell_script(len(shell.arguments), len(shell.inputs), len(shell.outputs), stage=shell.stage,
                              script=shell.command is None)
        return tasks.BatchSubmitJob(
            self, f"Batch{_key(activity.id)}", state_name=self._name(f"Run_{activity.id}"),
            job_name=_key(f"{self.plan.name}-{activity.id}")[:128],
            job_queue_arn=self._job_queue_arn or "",
            job_definition_arn=self._job_definition_arn or "",
            container_overrides=tasks.BatchContainerOverrides(command=["sh", "-c", script], environment=environment,
                                                              **pipeline_resources.batch_size_overrides(activity.batch_size)),
            attempts=1,
            result_path=sfn.JsonPath.DISCARD,
            task_timeout=task_timeout,
        )

    # -- findings -----------------------------------------------------------------------------------------------------

    def _acknowledge_wildcards(self) -> None:
        """Name each wildcard the service integrations put in the state machine's policy, with its reason."""
        findings = {"*": "X-Ray and log delivery actions have no resource-level permission"}
        if self.plan.clusters:
            account = nag_account(self)
            workflow_tag = f"{WORKFLOW_TAG}={self._naming.state_machine(self.workflow_name)}"
            findings["*"] = (
                "X-Ray and log delivery actions have no resource-level permission; EMR RunJobFlow has no cluster "
                f"before it runs and is allowed only with the tag {workflow_tag} in the request"
            )
            findings[nag_arn(self, "elasticmapreduce", "cluster/*")] = (
                "the steps and terminations act on the cluster id that createCluster returns at run time; every EMR "
                f"action on a cluster requires the tag {workflow_tag} that this pipeline puts on the clusters it "
                "creates (AddTags: in the request)"
            )
            findings[f"arn:<AWS::Partition>:iam::{account}:role/aws-service-role/elasticmapreduce.amazonaws.com*"
                     "/AWSServiceRoleForEMRCleanup*"] = "EMR may create its cleanup service-linked role"
            if self._emr_waits.function is not None:
                findings.update(nag_pipeline_waits_versions(self, self._naming))
        if any(a.target == BATCH_JOB for a in self.plan.activities):
            findings[nag_arn(self, "batch", "job-definition/*")] = (
                "Batch submitJob names the job definition by name; its revision is chosen when the job is submitted"
            )
        pipeline_sql.acknowledge_data_api(findings, self.plan.activities, nag_arn, self)
        for bucket in sorted({p.bucket for a in self.plan.activities for p in a.preconditions if p.kind == S3_KEY}):
            findings[nag_bucket_arn(bucket) + "/*"] = (
                "a precondition checks for a key, known at run time, under the bucket its definition names"
            )
        if self.plan.run_expressions:
            findings.update(run_values_wildcards(self, self._naming))
        acknowledge_wildcards(self.state_machine.role, findings)


class EmrRoles(typing.Protocol):
    """The three roles a pipeline's clusters run with: the shared ones (`PipelineEmrRoles`) or found by name."""

    @property
    def instance_role(self) -> iam.IRole: ...

    @property
    def service_role(self) -> iam.IRole: ...

    @property
    def autoscaling_role(self) -> iam.IRole: ...


@dataclasses.dataclass(frozen=True)
class EmrRoleNames:
    """The physical names of the shared EMR roles, by which every pipeline stack finds them."""

    instance: str
    service: str
    autoscaling: str

    @classmethod
    def of(cls, naming: Naming) -> EmrRoleNames:
        return cls(instance=naming.name("pipeline-emr-instance"), service=naming.name("pipeline-emr-service"),
                   autoscaling=naming.name("pipeline-emr-autoscaling"))


@dataclasses.dataclass(frozen=True)
class ImportedEmrRoles:
    instance_role: iam.IRole
    service_role: iam.IRole
    autoscaling_role: iam.IRole

    @classmethod
    def by_name(cls, scope: Construct, naming: Naming) -> ImportedEmrRoles:
        names = EmrRoleNames.of(naming)
        return cls(instance_role=iam.Role.from_role_name(scope, "EmrInstanceRole", names.instance),
                   service_role=iam.Role.from_role_name(scope, "EmrServiceRole", names.service),
                   autoscaling_role=iam.Role.from_role_name(scope, "EmrAutoScalingRole", names.autoscaling))


class PipelineEmrRoles(Construct):
    """The roles of the clusters that imported pipelines create, shared by all of them.

    The instance role may read and write the buckets that the EMR activities name, and write logs under emr/ of
    the log bucket.
    """

    def __init__(self, scope: Construct, construct_id: str, *, naming: Naming, buckets: list[str]) -> None:
        super().__init__(scope, construct_id)
        names = EmrRoleNames.of(naming)
        self.instance_role = iam.Role(
            self,
            "InstanceRole",
            role_name=names.instance,
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="EC2 instances of the clusters of imported pipelines",
        )
        # EMR's JobFlowRole names an instance profile; it carries the role's name.
        iam.CfnInstanceProfile(self, "InstanceProfile", roles=[self.instance_role.role_name],
                               instance_profile_name=self.instance_role.role_name)
        self.instance_role.add_to_policy(iam.PolicyStatement(
            actions=["s3:PutObject"], resources=[f"{own_bucket_arn(naming, LOG_BUCKET_PURPOSE)}/{EMR_LOG_PREFIX}*"]))
        wildcards = [f"{nag_own_bucket_arn(naming, LOG_BUCKET_PURPOSE)}/{EMR_LOG_PREFIX}*"]
        if buckets:
            arns = [bucket_arn(b) for b in buckets]
            self.instance_role.add_to_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=arns))
            self.instance_role.add_to_policy(iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], resources=[f"{a}/*" for a in arns]))
            wildcards += [f"{nag_bucket_arn(b)}/*" for b in buckets]
        acknowledge_wildcards(self.instance_role, dict.fromkeys(
            wildcards,
            "steps read and write objects, chosen at run time, under the buckets the pipeline definitions name, and "
            "EMR writes its logs under emr/ of the log bucket"))
        self.service_role = iam.Role(
            self,
            "ServiceRole",
            role_name=names.service,
            assumed_by=iam.ServicePrincipal("elasticmapreduce.amazonaws.com"),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AmazonEMRServicePolicy_v2")],
            description="EMR service role of the clusters of imported pipelines",
        )
        self.service_role.add_to_policy(iam.PolicyStatement(
            actions=["iam:PassRole"], resources=[self.instance_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}))
        cdk.Validations.of(self.service_role).acknowledge(cdk.Acknowledgment(
            id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2]",
            reason="AmazonEMRServicePolicy_v2 is the service role policy EMR documents; it acts only on resources "
            "tagged for-use-with-amazon-emr-managed-policies, which the clusters are"))
        self.autoscaling_role = iam.Role(
            self,
            "AutoScalingRole",
            role_name=names.autoscaling,
            assumed_by=iam.CompositePrincipal(iam.ServicePrincipal("elasticmapreduce.amazonaws.com"),
                                              iam.ServicePrincipal("application-autoscaling.amazonaws.com")),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(
                "service-role/AmazonElasticMapReduceforAutoScalingRole")],
            description="EMR automatic scaling of the clusters of imported pipelines",
        )
        cdk.Validations.of(self.autoscaling_role).acknowledge(cdk.Acknowledgment(
            id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonElasticMapReduceforAutoScalingRole]",
            reason="the policy EMR documents for the automatic scaling role; EmrCreateCluster passes it"))


def secret_arns(scope: Construct, reference: str) -> list[str]:
    """The ARNs IAM needs to read a secret given by reference (see datapipe.importer.secrets).

    A Secrets Manager ARN or name may lack the six characters AWS appends to a secret's name: `-??????` matches them.
    """
    stack = cdk.Stack.of(scope)
    if reference.startswith("ssm:"):
        name = reference.removeprefix("ssm:").lstrip("/")
        return [stack.format_arn(service="ssm", resource="parameter", resource_name=name)]
    if reference.startswith("arn:"):
        return [reference, f"{reference}-??????"]
    return [stack.format_arn(service="secretsmanager", resource="secret", resource_name=f"{reference}-??????",
                             arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)]


def secret_read_statements(scope: Construct, references: Sequence[str]) -> list[iam.PolicyStatement]:
    """Read these secrets and nothing else (an SSM SecureString under the AWS managed key needs no KMS grant)."""
    statements = []
    managers = [arn for r in sorted(set(references)) if not r.startswith("ssm:") for arn in secret_arns(scope, r)]
    parameters = [arn for r in sorted(set(references)) if r.startswith("ssm:") for arn in secret_arns(scope, r)]
    if managers:
        statements.append(iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=managers))
    if parameters:
        statements.append(iam.PolicyStatement(actions=["ssm:GetParameter"], resources=parameters))
    return statements


def batch_secret(scope: Construct, construct_id: str, reference: str) -> batch.Secret:
    if reference.startswith("ssm:"):
        parameter = ssm.StringParameter.from_secure_string_parameter_attributes(
            scope, construct_id, parameter_name=reference.removeprefix("ssm:"))
        return batch.Secret.from_ssm_parameter(parameter)
    if reference.startswith("arn:"):
        return batch.Secret.from_secrets_manager(
            secretsmanager.Secret.from_secret_partial_arn(scope, construct_id, reference))
    return batch.Secret.from_secrets_manager(secretsmanager.Secret.from_secret_name_v2(scope, construct_id, reference))


def secret_job_definition_name(naming: Naming, plan: Plan) -> str | None:
    """The job definition of a pipeline whose Batch activities read secrets (None: they share the plain one)."""
    return naming.name(f"pipeline-{plan.name}-shell-job-definition") if plan.secrets(BATCH_JOB) else None


class ShellJobDefinition(Construct):
    """The Batch job definition that runs the shell commands of activities on an Ec2Resource.

    Its role may read and write only the buckets that those activities name (`s3://bucket/...`). A pipeline whose
    Batch activities read secrets gets a job definition of its own (`add_secret_job_definition`): Batch reads them
    into the container's environment with that definition's execution role, which may read those secrets only.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        naming: Naming,
        image: str,
        fargate: bool,
        buckets: list[str],
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.job_role = iam.Role(
            self,
            "JobRole",
            role_name=naming.name("pipeline-shell-job-role"),
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="Shell commands of imported pipelines: the S3 buckets their definitions name",
        )
        if buckets:
            arns = [bucket_arn(b) for b in buckets]
            self.job_role.add_to_policy(
                iam.PolicyStatement(actions=["s3:ListBucket", "s3:GetBucketLocation"], resources=arns)
            )
            self.job_role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                    resources=[f"{arn}/*" for arn in arns],
                )
            )
            acknowledge_wildcards(self.job_role, dict.fromkeys(
                (f"{nag_bucket_arn(bucket)}/*" for bucket in buckets),
                "the commands copy objects under the buckets their pipeline definitions name; object keys are chosen "
                "at run time",
            ))
        log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/datapipe/{naming.name('pipeline-shell-jobs')}",
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=removal_policy,
        )
        container_props: dict[str, Any] = {
            "image": ecs.ContainerImage.from_registry(image),
            "cpu": 1,
            "memory": cdk.Size.mebibytes(2048),
            "command": ["sh", "-c", "echo 'a pipeline activity overrides this command'"],
            "job_role": self.job_role,
            "logging": ecs.LogDriver.aws_logs(stream_prefix="pipeline", log_group=log_group),
        }
        self._container_props = container_props
        self._fargate = fargate
        self.job_definition = batch.EcsJobDefinition(
            self,
            "JobDefinition",
            job_definition_name=naming.name("pipeline-shell-job-definition"),
            container=self._container("Container"),
        )

    def _container(self, construct_id: str, **extra: Any) -> batch.IEcsContainerDefinition:
        if self._fargate:
            return batch.EcsFargateContainerDefinition(self, construct_id, assign_public_ip=False,
                                                       **self._container_props, **extra)
        return batch.EcsEc2ContainerDefinition(self, construct_id, **self._container_props, **extra)

    def add_secret_job_definition(
        self, construct_id: str, *, name: str, secrets: dict[str, str]
    ) -> batch.EcsJobDefinition:
        """The same job, with `secrets` (variable -> reference) read by Batch into the container's environment."""
        scope = Construct(self, construct_id)
        values = {variable: batch_secret(scope, f"Secret-{variable}", reference)
                  for variable, reference in sorted(secrets.items())}
        return batch.EcsJobDefinition(scope, "JobDefinition", job_definition_name=name,
                                      container=self._container(f"{construct_id}Container", secrets=values))


class PipelineClusterReaper(Construct):
    """Terminates the clusters of pipeline runs that were stopped, timed out or failed: those run no Catch.

    The function is the EMR workflow's reaper (lambdas/cluster_reaper): it finds a run's clusters by the execution
    tag. Here it may change only clusters tagged as created by an imported pipeline.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        naming: Naming,
        powertools_layer_version: int,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = powertools_function(
            self,
            "Function",
            function_name=naming.name("pipeline-cluster-reaper"),
            folder="cluster_reaper",
            description="Terminates clusters of imported pipeline runs that did not succeed",
            powertools_layer_version=powertools_layer_version,
            removal_policy=removal_policy,
        )
        cluster_arn = cdk.Stack.of(self).format_arn(service="elasticmapreduce", resource="cluster",
                                                    resource_name="*")
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["elasticmapreduce:ListClusters"], resources=["*"]))
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["elasticmapreduce:DescribeCluster"], resources=[cluster_arn]))
        self.function.add_to_role_policy(iam.PolicyStatement(
            actions=["elasticmapreduce:SetTerminationProtection", "elasticmapreduce:TerminateJobFlows"],
            resources=[cluster_arn],
            conditions={"StringLike": {f"elasticmapreduce:ResourceTag/{WORKFLOW_TAG}":
                                       naming.state_machine("pipeline-*")}},
        ))
        acknowledge_wildcards(self.function, {
            "*": "ListClusters has no resource-level permission; X-Ray writes have no resource either",
            nag_arn(self, "elasticmapreduce", "cluster/*"): "the clusters of a run are known only from their tags; "
            "changes are limited to clusters tagged by an imported pipeline",
        })
        depend_on_policy_only(self.function, self.function.role)
        self.rule = reaper_rule(
            self,
            "Rule",
            rule_name=naming.name("pipeline-cluster-reaper"),
            description="Terminate the EMR clusters of imported pipeline runs that did not succeed",
            state_machines=[],
            # Every pipeline's machine, in whichever stack, however many: they share the name prefix.
            state_machine_arn_prefix=cdk.Stack.of(self).format_arn(
                service="states", resource="stateMachine", resource_name=naming.state_machine("pipeline-"),
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME),
            reaper=self.function,
        )


def _buckets_in(texts: list[Text]) -> set[str]:
    found: set[str] = set()
    for text in texts:
        for part in text.parts:
            if isinstance(part, str):
                found.update(re.findall(rf"s3://({BUCKET_NAME_PATTERN})", part))
    return found


def batch_buckets(plans: list[Plan]) -> list[str]:
    """Buckets named literally in the shell commands, scripts and data paths of Batch activities."""
    found: set[str] = set()
    for plan in plans:
        for activity in plan.activities:
            shell = activity.shell
            if activity.target != BATCH_JOB or shell is None:
                continue
            texts = [*shell.arguments, *shell.inputs, *shell.outputs]
            if shell.command is not None:
                texts.append(Text.of(shell.command))
            if shell.script_uri is not None:
                texts.append(shell.script_uri)
            found |= _buckets_in(texts)
    return sorted(found)


def emr_buckets(plans: list[Plan]) -> list[str]:
    """Buckets named literally in the EMR steps and bootstrap actions of deployable plans (the nodes fetch bootstrap
    scripts, and the fair scheduler's allocation file, with the instance role)."""
    found: set[str] = set()
    for plan in plans:
        for activity in plan.activities:
            for step in activity.steps:
                found |= _buckets_in([step.jar, *step.args])
        for cluster in plan.clusters:
            found |= _buckets_in([Text.of(text) for path, args in cluster.bootstrap_actions for text in (path, *args)])
    return sorted(found)


def schedule_role_name(naming: Naming) -> str:
    return naming.name("pipeline-schedules")


class PipelineScheduleRole(Construct):
    """The one role EventBridge Scheduler starts every imported pipeline's runs with: a role per schedule would spend
    the account's IAM role quota twice as fast. It may start the pipelines' state machines and nothing else.
    """

    def __init__(self, scope: Construct, construct_id: str, *, naming: Naming) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.role = iam.Role(
            self, "Role", role_name=schedule_role_name(naming),
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com",
                                            conditions={"StringEquals": {"aws:SourceAccount": stack.account}}),
            description="EventBridge Scheduler: starts the runs of the imported pipelines on their schedules")
        pipelines = naming.state_machine("pipeline-")
        self.role.add_to_policy(iam.PolicyStatement(actions=["states:StartExecution"], resources=[stack.format_arn(
            service="states", resource="stateMachine", resource_name=f"{pipelines}*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)]))
        acknowledge_wildcards(self.role, {
            nag_arn(self, "states", f"stateMachine:{pipelines}*"): "the schedules of every imported pipeline start "
            "their own state machine with this role; those machines share this name prefix and are in other stacks",
        })


SHARED_STACK_ID = "Pipelines"
# Where the pipelines stack publishes the ARN of the key that encrypts every pipeline's log group: a key ARN cannot
# be found by name, and an SSM parameter ties no stack to another's exports.
LOG_KEY_PARAMETER = "/{prefix}/{stage}/pipelines/log-key-arn"


def log_key_parameter_name(naming: Naming) -> str:
    return LOG_KEY_PARAMETER.format(prefix=naming.prefix, stage=naming.stage)


def pipeline_log_group_pattern(naming: Naming) -> str:
    """The log group names of every pipeline's state machine (see logged_state_machine)."""
    return f"/aws/vendedlogs/states/{naming.state_machine('pipeline-')}*"


class PipelineLogKey(Construct):
    """One key for the log groups of every pipeline's state machine (they log execution data), deployed once: a key
    per pipeline stack would be a billed key per pipeline. Its ARN is published in an SSM parameter."""

    def __init__(
        self, scope: Construct, construct_id: str, *, naming: Naming, removal_policy: cdk.RemovalPolicy
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = logs_key(
            self, "Key", description="datapipe: encrypts the log groups of every imported pipeline's state machine",
            log_group_arns=[log_group_arn(self, pipeline_log_group_pattern(naming))], arn_pattern=True,
            removal_policy=removal_policy,
        )
        ssm.StringParameter(self, "KeyArn", parameter_name=log_key_parameter_name(naming),
                            string_value=self.key.key_arn,
                            description="The KMS key of the imported pipelines' state machine log groups")
# CloudFormation's limit on a stack's name.
STACK_NAME_LIMIT = 128


class PipelinesStack(cdk.Stack):
    """What every imported pipeline shares, deployed once: the shell job definitions, the EMR roles, the runners'
    secret policies and the cluster reaper. Its grants are the union of what the deployable definitions name.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        naming: Naming,
        settings: PipelineSettings,
        worker_groups: WorkerGroupSettings,
        plans: Sequence[Plan],
        batch_fargate: bool = False,
        powertools_layer_version: int = 27,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
        emr_wait_mode: WaitMode = "events",
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        deployable = [plan for plan in plans if plan.deployable]
        sql_plans = [plan for plan in deployable if pipeline_sql.runs_sql_on_batch(plan)]
        if sql_plans:
            self.sql_jobs = pipeline_sql.SqlJobDefinitions(self, "SqlJobs", naming=naming, image=settings.sql_image,
                                                           fargate=batch_fargate, plans=sql_plans,
                                                           removal_policy=removal_policy)
        if any(a.target == BATCH_JOB and a.sql is None for plan in deployable for a in plan.activities):
            self.shell_jobs = ShellJobDefinition(
                self, "ShellJobs", naming=naming, image=settings.batch_image, fargate=batch_fargate,
                buckets=batch_buckets(deployable), removal_policy=removal_policy,
            )
            for plan in deployable:
                name = secret_job_definition_name(naming, plan)
                if name is not None:
                    self.shell_jobs.add_secret_job_definition(f"Secrets-{plan.name}", name=name,
                                                              secrets=plan.secrets(BATCH_JOB))
        if any(plan.clusters for plan in deployable):
            emr_roles = PipelineEmrRoles(self, "EmrRoles", naming=naming, buckets=emr_buckets(deployable))
            # EMR command steps read the secrets they name on the cluster, with the instance role.
            emr_secrets = [r for plan in deployable for r in plan.secrets(EMR_STEPS).values()]
            for statement in secret_read_statements(self, emr_secrets):
                emr_roles.instance_role.add_to_policy(statement)
            for statement in pipeline_dynamodb.emr_dynamodb_statements(self, deployable):  # HiveCopyActivity
                emr_roles.instance_role.add_to_policy(statement)
            self.reaper = PipelineClusterReaper(self, "ClusterReaper", naming=naming,
                                                powertools_layer_version=powertools_layer_version,
                                                removal_policy=removal_policy)
            if emr_wait_mode == "events":  # one function, table and rule for every pipeline's EMR waits
                self.emr_waits = PipelineEmrWaits(self, "EmrWaits", naming=naming, workflow_tag=WORKFLOW_TAG,
                                                  powertools_layer_version=powertools_layer_version,
                                                  removal_policy=removal_policy)
        if any(plan.run_expressions for plan in deployable):
            self.run_values = PipelineRunValues(self, "RunValues", naming=naming,
                                                powertools_layer_version=powertools_layer_version,
                                                removal_policy=removal_policy)
        self.merge_keys = pipeline_merge_keys.add_merge_keys_function(
            self, deployable, naming=naming, powertools_layer_version=powertools_layer_version,
            removal_policy=removal_policy)
        self.runner_secret_policies = self._runner_secret_policies(naming, worker_groups, deployable)
        if deployable:
            self.log_key = PipelineLogKey(self, "PipelineLogKey", naming=naming, removal_policy=removal_policy)
        if any(plan.schedule for plan in deployable):
            self.schedule_role = PipelineScheduleRole(self, "Schedules", naming=naming).role

    def _runner_secret_policies(
        self, naming: Naming, worker_groups: WorkerGroupSettings, plans: list[Plan]
    ) -> dict[str, iam.ManagedPolicy]:
        """Per worker group whose tasks name secrets: a managed policy to read those, for the group's runners.

        With `workerGroups.runnerRole` it is attached to the group's runner role; otherwise attach it to the identity
        your runners use, beside the group's runner policy.
        """
        policies: dict[str, iam.ManagedPolicy] = {}
        for group in worker_groups.names:
            references = [r for plan in plans if plan.deployable for r in plan.secrets(ACTIVITY_TASK, group).values()]
            if not references:
                continue
            roles = [iam.Role.from_role_name(self, f"Runner-{group}", naming.name(f"taskrunner-{group}"))] \
                if worker_groups.runner_role else None
            policies[group] = iam.ManagedPolicy(
                self, f"RunnerSecrets-{group}", managed_policy_name=naming.name(f"taskrunner-{group}-secrets"),
                description=f"The secrets that the imported pipelines' tasks for worker group {group} name",
                statements=secret_read_statements(self, references), roles=roles)
        return policies


class PipelineStack(cdk.Stack):
    """One imported pipeline: its state machine (with its role and log group) and its schedule.

    What it shares with the other pipelines (Storage's log bucket, Batch's queue, the pipelines stack's job
    definitions and EMR roles) it names by physical name: no cross-stack export ties the stacks together.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        naming: Naming,
        plan: Plan,
        settings: PipelineSettings,
        worker_groups: WorkerGroupSettings,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
        emr_wait_mode: WaitMode = "events",
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        job_queue_arn = self.format_arn(service="batch", resource="job-queue", resource_name=job_queue_name(naming))
        # A name without a revision: Batch runs the latest active revision, which the pipelines stack keeps current.
        job_definition = secret_job_definition_name(naming, plan) or naming.name("pipeline-shell-job-definition")
        log_bucket = s3.Bucket.from_bucket_name(self, "LogBucket", naming.log_bucket(self.account, self.region))
        self.workflow = PipelineWorkflow(
            self, "Workflow", naming=naming, plan=plan, settings=settings, worker_groups=worker_groups,
            log_bucket=log_bucket, job_queue_arn=job_queue_arn, job_definition_arn=job_definition,
            emr_roles=ImportedEmrRoles.by_name(self, naming) if plan.clusters else None,
            # Immutable: the shared role's own policy allows the start; no grant is added to it from here.
            schedule_role=iam.Role.from_role_name(self, "ScheduleRole", schedule_role_name(naming), mutable=False)
            if plan.schedule else None,
            removal_policy=removal_policy, emr_wait_mode=emr_wait_mode)
        # The state machine's log group uses the pipelines stack's one key (found through its SSM parameter), so
        # that encrypt_log_groups gives this stack no key of its own.
        key_arn = ssm.StringParameter.value_for_string_parameter(self, log_key_parameter_name(naming))
        for node in self.node.find_all():
            if isinstance(node, logs.CfnLogGroup):
                node.kms_key_id = key_arn


def pipeline_stack_id(plan: Plan) -> str:
    """A pipeline's stack: derived from its definition's name only, so no other definition can move it."""
    return f"Pipeline-{plan.name}"


def import_definitions(folder: Path, settings: PipelineSettings, *, batch_fargate: bool = False,
                       batch_max_vcpus: int = 16) -> list[Plan]:
    """The plans of every definition in the folder; two definitions that would share a stack are refused."""
    options = dataclasses.replace(plan_options(settings), batch_fargate=batch_fargate, batch_max_vcpus=batch_max_vcpus)
    plans = [import_file(path, values_path=companion_values(path), options=options)
             for path in definition_files(folder)]
    seen: dict[str, str] = {}
    for plan in plans:
        if plan.name in seen:
            raise DatapipeError(f"pipelines {seen[plan.name]} and {plan.source} would both be named "
                                f"'{plan.name}' (its stack and state machine); rename one of the files")
        seen[plan.name] = plan.source
    return plans


def add_pipeline_stacks(
    scope: Construct,
    *,
    stack_props: Callable[[str, str], Mapping[str, Any]],
    naming: Naming,
    settings: PipelineSettings,
    worker_groups: WorkerGroupSettings,
    definitions_dir: Path,
    batch_fargate: bool = False,
    batch_max_vcpus: int = 16,
    powertools_layer_version: int = 27,
    emr_wait_mode: WaitMode = "events",
) -> tuple[PipelinesStack | None, list[PipelineStack]]:
    """The shared pipelines stack (None when they share nothing), and a stack per definition (only `settings.only`'s
    when that is set).

    `stack_props(unit, description)` gives a stack's common arguments (stack_name, description, env, naming,
    removal_policy), as app.py gives them to every stack. The shared stack is always built from every definition,
    so that deploying it while working on one pipeline never narrows the grants the others need.
    """
    plans = import_definitions(definitions_dir, settings, batch_fargate=batch_fargate, batch_max_vcpus=batch_max_vcpus)
    selected = plans
    if settings.only:
        selected = [plan for plan in plans if plan.name == settings.only]
        if not selected:
            known = ", ".join(plan.name for plan in plans[:10]) or "none"
            raise SettingsError(f"setting 'pipelines.only': no definition named {settings.only} in "
                                f"{definitions_dir.name}/ (names: {known}{', ...' if len(plans) > 10 else ''})")
    shared: PipelinesStack | None = PipelinesStack(
        scope, SHARED_STACK_ID,
        **stack_props("pipelines", "what the imported pipelines share: job definitions, EMR roles, cluster reaper"),
        settings=settings, worker_groups=worker_groups, plans=plans, batch_fargate=batch_fargate,
        powertools_layer_version=powertools_layer_version, emr_wait_mode=emr_wait_mode)
    # CloudFormation refuses a stack without resources: the pipelines may share nothing (none, or worker groups only).
    if shared is not None and not any(isinstance(node, cdk.CfnResource) for node in shared.node.find_all()):
        scope.node.try_remove_child(SHARED_STACK_ID)
        shared = None
    stacks = []
    for plan in selected:
        props = stack_props(f"pipeline-{plan.name}", f"the pipeline imported from {plan.source}")
        if len(str(props["stack_name"])) > STACK_NAME_LIMIT:
            raise DatapipeError(f"pipeline {plan.source}: its stack name {props['stack_name']} is longer than "
                                f"{STACK_NAME_LIMIT} characters; shorten the file name")
        stack = PipelineStack(scope, pipeline_stack_id(plan), **props, plan=plan, settings=settings,
                              worker_groups=worker_groups, emr_wait_mode=emr_wait_mode)
        if shared is not None:  # deploy the shared parts first; `cdk deploy <one pipeline>` brings them along
            stack.add_stack_dependency(shared)
        stacks.append(stack)
    return shared, stacks


def plan_options(settings: PipelineSettings) -> PlanOptions:
    return PlanOptions(
        default_release_label=settings.default_release_label,
        default_instance_type=settings.default_instance_type,
        precondition_interval_seconds=settings.precondition_interval_seconds,
        precondition_max_checks=settings.precondition_max_checks,
    )


def definition_files(folder: Path) -> list[Path]:
    """Definitions in a folder: every *.json except values files (`*.values.json`)."""
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.suffix in DEFINITION_SUFFIXES and not p.name.endswith(".values.json")
    )

