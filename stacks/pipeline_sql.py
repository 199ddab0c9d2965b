"""The states of an imported pipeline's database activities (see datapipe.importer.databases).

- Redshift: the statements go to the Redshift Data API as an AWS SDK integration (executeStatement, or
  batchExecuteStatement for several statements in one transaction), then describeStatement is asked until the
  statement is FINISHED, FAILED or ABORTED: every `STATEMENT_POLL_SECONDS` for its first hour, then every
  `STATEMENT_SLOW_POLL_SECONDS`, at most `statement_cadence` times (a Standard workflow keeps 25,000 events). The
  loop sits in a one-branch Parallel state, so that the activity's retries and catches (onFail, the clusters'
  cleanup) apply to it as to any task. A failed statement fails it with `Redshift.StatementFailed` and the
  statement's `Error` as cause.
- Other databases: a task of the worker-group contract (`SqlActivity` or `CopyActivity`) for the group's runner, whose
  SQL, tables and database fields are literal in the state: only `scriptArgument` values and S3 paths may come from
  the execution (`check_fixed_sql_fields`). On an Ec2Resource, the same task runs as a Batch job: a job definition of
  the pipeline's own runs `datapipe taskrunner exec-task`, the task's JSON in `DATAPIPE_TASK`; its job role (which the
  task's boto3 uses) reads the pipeline's database secrets and the buckets its S3 data nodes name, nothing else.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from datapipe.errors import DatapipeError
from datapipe.importer.databases import RedshiftStatements, SqlTask
from datapipe.importer.expressions import RUN_VALUES_PATH, RuntimePath, Text
from datapipe.importer.plan import BATCH_JOB, Activity, Plan
from datapipe.naming import BUCKET_NAME_PATTERN, Naming
from stacks.common import acknowledge_wildcards, bucket_arn, nag_bucket_arn
from stacks.pipeline_merge_keys import MERGE_KEYS_PATH, key_query_states, merge_keys_wildcards
from stacks.worker_groups import task_envelope, worker_group_task

if TYPE_CHECKING:
    from stacks.pipelines import PipelineWorkflow

# A check is 4 states, 11 history events. Every 30 s for 24 hours would be 2,880 checks, 31,680 events: over a
# Standard workflow's 25,000. So every 30 s for the first hour, then every 2 minutes: 810 checks, 8,910 events, for
# the Data API's longest statement (24 hours).
STATEMENT_POLL_SECONDS = 30
STATEMENT_FAST_SECONDS = 3600
STATEMENT_SLOW_POLL_SECONDS = 120
MAX_STATEMENT_SECONDS = 24 * 3600
STATEMENT_FAILED = "Redshift.StatementFailed"
STATEMENT_UNFINISHED = "Redshift.StatementTimedOut"
# Fields of a SQL task that may hold values of the execution: arguments bound to `?`, and S3 data nodes' paths.
RUNTIME_FIELDS = frozenset({"scriptArgument", "filePath", "directoryPath"})
ENVELOPE_PATHS = frozenset({"workflow.$", "execution.$", "attempt.$"})
# The Batch job's command; the task's JSON arrives in this environment variable (the contract's).
EXEC_TASK_COMMAND = ["datapipe", "taskrunner", "exec-task"]
TASK_VARIABLE = "DATAPIPE_TASK"


def redshift_statement_states(
    workflow: PipelineWorkflow, activity: Activity, *, timeout_seconds: int | None, state_key: str
) -> sfn.Parallel:
    """Submit the activity's statements, then wait for their end; fails with the statement's error."""
    assert activity.sql is not None and activity.sql.redshift is not None
    work: RedshiftStatements = activity.sql.redshift
    name = workflow._name  # unique state names within the pipeline's machine
    stack = cdk.Stack.of(workflow)
    target = dict(work.target)
    if "ClusterIdentifier" in target:
        where = stack.format_arn(service="redshift", resource="cluster", resource_name=target["ClusterIdentifier"],
                                 arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
    else:  # a workgroup's ARN holds its id, which the definition does not know: any workgroup of this account
        where = stack.format_arn(service="redshift-serverless", resource="workgroup", resource_name="*")
    sign_in = sign_in_statements(workflow, target, secret_id=activity.sql.secret_id)
    check_run_time_sql(activity.id, work)
    texts = [work.run_time_sqls.get(index, Text.of(sql)) for index, sql in enumerate(work.sqls)]
    if work.merge_from_catalog is not None:  # the statement the merge-keys function writes when the run starts
        texts[work.merge_from_catalog.index] = Text.of(RuntimePath(f"{MERGE_KEYS_PATH}.{state_key}.answer.statement"))
    if len(work.sqls) == 1:
        sql = texts[0].static if texts[0].is_static else workflow.render(texts[0])
        parameters: dict[str, Any] = {**target, "Sql": sql}
        if work.parameters:
            parameters["Parameters"] = [{"Name": key, "Value": workflow.render(text)} for key, text in work.parameters]
        action = "executeStatement"
    else:
        parameters = {**target, "Sqls": workflow.render_list(texts) if work.run_time_sqls or work.merge_from_catalog
                      else list(work.sqls)}
        action = "batchExecuteStatement"
    statement_path = f"$.statements.{state_key}"
    submit = tasks.CallAwsService(
        workflow, f"Submit{state_key}", state_name=name(f"Submit_{activity.id}"),
        service="redshiftdata", action=action, iam_action=f"redshift-data:{action[0].upper()}{action[1:]}",
        iam_resources=[where], additional_iam_statements=sign_in, parameters=parameters,
        result_selector={"Id.$": "$.Id", "checks": 0}, result_path=statement_path,
    )
    fast_checks, checks = statement_cadence(timeout_seconds)

    def statement_loop(submitted: sfn.TaskStateBase, path: str, label: str, key: str, then: sfn.IChainable, *,
                       what: str = f"the statements of {activity.id}", poll_seconds: int = STATEMENT_POLL_SECONDS,
                       checks: int = checks, fast_checks: int = fast_checks) -> sfn.IChainable:
        """describeStatement until the statement ends: FINISHED goes on to `then`, FAILED or ABORTED fails with the
        statement's error, running out of checks with STATEMENT_UNFINISHED. The first `fast_checks` come
        `poll_seconds` apart, the rest STATEMENT_SLOW_POLL_SECONDS apart."""
        describe = tasks.CallAwsService(
            workflow, f"Describe{key}", state_name=name(f"Describe_{label}"),
            service="redshiftdata", action="describeStatement", iam_action="redshift-data:DescribeStatement",
            iam_resources=["*"], parameters={"Id": sfn.JsonPath.string_at(f"{path}.Id")},
            result_path=f"{path}.described",
        )
        count_parameters = {"Id.$": f"{path}.Id", "checks.$": f"States.MathAdd({path}.checks, 1)"}
        count = sfn.Pass(workflow, f"Count{key}", state_name=name(f"Count_Checks_{label}"),
                         parameters=count_parameters, result_path=path)
        wait = sfn.Wait(workflow, f"Wait{key}", state_name=name(f"Wait_For_{label}"),
                        time=sfn.WaitTime.duration(cdk.Duration.seconds(poll_seconds)))
        cadence = f"{poll_seconds} s apart"
        if fast_checks < checks:
            cadence = f"{poll_seconds} s apart, then {STATEMENT_SLOW_POLL_SECONDS} s apart after {fast_checks}"
        # its id is not `Failed<key>`, which pipeline_checks gives the failure state of an activity with preconditions
        failed = sfn.Fail(workflow, f"StatementFailed{key}", state_name=name(f"Statement_Failed_{label}"),
                          error=STATEMENT_FAILED, cause_path=f"{path}.described.Error")
        unfinished = sfn.Fail(workflow, f"Unfinished{key}", state_name=name(f"Statement_Unfinished_{label}"),
                              error=STATEMENT_UNFINISHED, cause=f"{what} did not end after {checks} checks, "
                              f"{cadence}")
        status = f"{path}.described.Status"
        ended = sfn.Choice(workflow, f"Ended{key}", state_name=name(f"Statement_Ended_{label}"))
        ended.when(sfn.Condition.string_equals(status, "FINISHED"), then)
        ended.when(sfn.Condition.or_(sfn.Condition.string_equals(status, "FAILED"),
                                     sfn.Condition.string_equals(status, "ABORTED")), failed)
        ended.when(sfn.Condition.number_greater_than_equals(f"{path}.checks", checks), unfinished)
        if fast_checks < checks:
            slow_count = sfn.Pass(workflow, f"CountSlowly{key}", state_name=name(f"Count_Slow_Checks_{label}"),
                                  parameters=count_parameters, result_path=path)
            slow_wait = sfn.Wait(workflow, f"WaitSlowly{key}", state_name=name(f"Wait_Longer_For_{label}"),
                                 time=sfn.WaitTime.duration(cdk.Duration.seconds(STATEMENT_SLOW_POLL_SECONDS)))
            ended.when(sfn.Condition.number_greater_than_equals(f"{path}.checks", fast_checks), slow_count)
            slow_count.next(slow_wait).next(describe)
        ended.otherwise(count)
        count.next(wait).next(describe)
        describe.next(ended)
        return sfn.Chain.start(submitted).next(describe)

    finished = sfn.Succeed(workflow, f"Finished{state_key}", state_name=name(f"Statement_Finished_{activity.id}"))
    branch = statement_loop(submit, statement_path, activity.id, state_key, finished)
    if work.merge_from_catalog is not None:
        branch = key_query_states(workflow, activity.id, work.merge_from_catalog, target=target, where=where,
                                  sign_in=sign_in, state_key=state_key, timeout_seconds=timeout_seconds,
                                  statement_loop=statement_loop, then=branch)
    statement = sfn.Parallel(workflow, f"Run{state_key}", state_name=name(f"Run_{activity.id}"),
                             result_path=sfn.JsonPath.DISCARD)
    statement.branch(branch)
    return statement


def check_run_time_sql(activity_id: str, work: RedshiftStatements) -> None:
    """Refuse SQL text holding anything of the run but the values the run-values Lambda checks before SQL runs."""
    for text in work.run_time_sqls.values():
        paths = [p.removeprefix(f"{RUN_VALUES_PATH}.") if p.startswith(f"{RUN_VALUES_PATH}.") else p
                 for p in text.runtime_paths()]
        if text.secrets or not set(paths) <= set(work.checked_values):
            raise ValueError(f"SQL of {activity_id}: only run values checked against their pattern may be part of it")


def checked_run_values(plan: Plan) -> list[str]:
    """The run values that the plan's SQL text holds: the run-values Lambda checks each before any SQL runs."""
    return sorted({name for activity in plan.activities if activity.sql is not None and activity.sql.redshift
                   for name in activity.sql.redshift.checked_values})


def sign_in_statements(scope: Construct, target: dict[str, str], *, secret_id: str) -> list[iam.PolicyStatement]:
    """What the state machine needs to sign in to the database: read the secret, or get temporary credentials for
    exactly the definition's database user and database (cluster), or for its IAM identity (workgroup)."""
    if "SecretArn" in target:
        from stacks.pipelines import secret_read_statements

        return secret_read_statements(scope, [secret_id])
    stack = cdk.Stack.of(scope)
    if "DbUser" in target:
        cluster = target["ClusterIdentifier"]
        resources = [stack.format_arn(service="redshift", resource=kind, resource_name=f"{cluster}/{name}",
                                      arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
                     for kind, name in (("dbuser", target["DbUser"]), ("dbname", target["Database"]))]
        return [iam.PolicyStatement(actions=["redshift:GetClusterCredentials"], resources=resources)]
    # a workgroup's ARN holds its generated id, which the definition (naming the workgroup) does not know
    return [iam.PolicyStatement(actions=["redshift-serverless:GetCredentials"], resources=[
        stack.format_arn(service="redshift-serverless", resource="workgroup", resource_name="*")])]


def statement_cadence(timeout_seconds: int | None) -> tuple[int, int]:
    """How often describeStatement is asked, over the attempt's timeout (else the Data API's 24 hours): the checks
    `STATEMENT_POLL_SECONDS` apart, and all the checks (the rest `STATEMENT_SLOW_POLL_SECONDS` apart)."""
    seconds = min(timeout_seconds or MAX_STATEMENT_SECONDS, MAX_STATEMENT_SECONDS)
    fast = max(1, -(-min(seconds, STATEMENT_FAST_SECONDS) // STATEMENT_POLL_SECONDS))
    slow = -(-max(0, seconds - STATEMENT_FAST_SECONDS) // STATEMENT_SLOW_POLL_SECONDS)
    return fast, fast + slow


def _task_fields(workflow: PipelineWorkflow, task: SqlTask) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, values in task.objects.items():
        fields[key] = {name: _rendered(workflow, value) for name, value in values.items()}
    if task.data_format is not None:
        fields["dataFormat"] = task.data_format
    return fields


def sql_task(workflow: PipelineWorkflow, activity: Activity, *, worker_activity: sfn.IActivity,
             timeout_seconds: int | None, state_name: str) -> tasks.StepFunctionsInvokeActivity:
    """A SqlActivity or CopyActivity task of the worker-group contract for the activity's worker group."""
    assert activity.sql is not None and activity.sql.task is not None
    task: SqlTask = activity.sql.task
    fields = _task_fields(workflow, task)
    settings = workflow._worker_groups
    if timeout_seconds:  # attemptTimeout bounds each attempt; the heartbeat must stay shorter than it
        settings = dataclasses.replace(settings, task_timeout_seconds=max(timeout_seconds,
                                                                          settings.heartbeat_seconds + 1))
    state = worker_group_task(workflow._activity_scope, state_name, activity=worker_activity, settings=settings,
                              task_type=task.task_type, fields=fields)
    check_fixed_sql_fields(state_name, state.to_state_json()["Parameters"])
    return state


def sql_batch_job(workflow: PipelineWorkflow, activity: Activity, *, task_timeout: sfn.Timeout | None,
                  state_key: str) -> list[sfn.State]:
    """The contract's task built in the state, then a Batch job running it with `datapipe taskrunner exec-task`."""
    assert activity.sql is not None and activity.sql.task is not None
    task: SqlTask = activity.sql.task
    task_path = f"$.sqlTasks.{state_key}"
    prepare = sfn.Pass(workflow, f"SqlTask{state_key}", state_name=workflow._name(f"Prepare_{activity.id}"),
                       parameters={**task_envelope(task.task_type, activity.id), **_task_fields(workflow, task)},
                       result_path=task_path)
    check_fixed_sql_fields(activity.id, prepare.to_state_json()["Parameters"])
    job = tasks.BatchSubmitJob(
        workflow, f"SqlBatch{state_key}", state_name=workflow._name(f"Run_{activity.id}"),
        job_name=re.sub(r"[^A-Za-z0-9_-]", "_", f"{workflow.plan.name}-{activity.id}")[:128],
        job_queue_arn=workflow._job_queue_arn or "",
        job_definition_arn=sql_job_definition_name(workflow._naming, workflow.plan),
        container_overrides=tasks.BatchContainerOverrides(
            environment={TASK_VARIABLE: sfn.JsonPath.json_to_string(sfn.JsonPath.object_at(task_path))}),
        attempts=1, result_path=sfn.JsonPath.DISCARD, task_timeout=task_timeout,
    )
    return [prepare, job]


def runs_sql_on_batch(plan: Plan) -> bool:
    return any(a.target == BATCH_JOB and a.sql is not None for a in plan.activities)


def sql_job_definition_name(naming: Naming, plan: Plan) -> str:
    return naming.name(f"pipeline-{plan.name}-sql-job-definition")


def sql_buckets(plan: Plan) -> list[str]:
    """Buckets named literally at the start of the S3 paths and script URIs of the plan's SQL Batch jobs."""
    found: set[str] = set()
    for activity in plan.activities:
        if activity.target != BATCH_JOB or activity.sql is None or activity.sql.task is None:
            continue
        for values in activity.sql.task.objects.values():
            for key in ("filePath", "directoryPath", "scriptUri"):
                value = values.get(key)
                first = value.parts[0] if isinstance(value, Text) and value.parts else None
                match = re.match(rf"s3://({BUCKET_NAME_PATTERN})/", first) if isinstance(first, str) else None
                if match:
                    found.add(match.group(1))
    return sorted(found)


class SqlJobDefinitions(Construct):
    """A Batch job definition per pipeline that runs SQL on an Ec2Resource: `datapipe taskrunner exec-task` in an image
    with `datapipe[sql]`; its job role may read the pipeline's database secrets and its S3 data nodes' buckets only."""

    def __init__(self, scope: Construct, construct_id: str, *, naming: Naming, image: str, fargate: bool,
                 plans: list[Plan], removal_policy: cdk.RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        if not image:
            raise DatapipeError(f"pipeline {plans[0].source} runs SQL on an Ec2Resource (AWS Batch): set "
                                "'pipelines.sqlImage' to an image with datapipe[sql] installed")
        from stacks.pipelines import secret_read_statements

        log_group = logs.LogGroup(self, "Logs", log_group_name=f"/datapipe/{naming.name('pipeline-sql-jobs')}",
                                  retention=logs.RetentionDays.ONE_YEAR, removal_policy=removal_policy)
        self.job_definitions: dict[str, batch.EcsJobDefinition] = {}
        for plan in plans:
            scope_of_plan = Construct(self, plan.name)
            role = iam.Role(scope_of_plan, "JobRole", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
                            description=f"SQL of the imported pipeline {plan.name}: its database secrets and buckets")
            secrets = [a.sql.secret_id for a in plan.activities if a.target == BATCH_JOB and a.sql is not None]
            for statement in secret_read_statements(scope_of_plan, secrets):
                role.add_to_policy(statement)
            buckets = sql_buckets(plan)
            if buckets:
                arns = [bucket_arn(b) for b in buckets]
                role.add_to_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=arns))
                role.add_to_policy(iam.PolicyStatement(
                    actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                    resources=[f"{arn}/*" for arn in arns]))
                acknowledge_wildcards(role, dict.fromkeys(
                    (f"{nag_bucket_arn(bucket)}/*" for bucket in buckets),
                    "the SQL copies read and write objects under the buckets their S3 data nodes name; the keys "
                    "are known at run time"))
            properties: dict[str, Any] = {
                "image": ecs.ContainerImage.from_registry(image), "cpu": 1, "memory": cdk.Size.mebibytes(2048),
                "command": EXEC_TASK_COMMAND, "job_role": role,
                "logging": ecs.LogDriver.aws_logs(stream_prefix="sql", log_group=log_group),
            }
            container: batch.IEcsContainerDefinition = (
                batch.EcsFargateContainerDefinition(scope_of_plan, "Container", assign_public_ip=False, **properties)
                if fargate else batch.EcsEc2ContainerDefinition(scope_of_plan, "Container", **properties))
            self.job_definitions[plan.name] = batch.EcsJobDefinition(
                scope_of_plan, "JobDefinition", job_definition_name=sql_job_definition_name(naming, plan),
                container=container)


def _rendered(workflow: PipelineWorkflow, value: Text | list[Text]) -> Any:
    return workflow.render_list(value) if isinstance(value, list) else workflow.render(value)


def check_fixed_sql_fields(state_name: str, parameters: dict[str, Any]) -> None:
    """Refuse a SQL task whose SQL, tables or database an execution could choose (checked on the rendered state)."""
    for key, value in parameters.items():
        if key.endswith(".$") and key not in ENVELOPE_PATHS:
            raise ValueError(f"SQL task {state_name}: field '{key[:-2]}' must be fixed in the definition")
        if isinstance(value, dict):
            for name in value:
                if name.endswith(".$") and name[:-2] not in RUNTIME_FIELDS:
                    raise ValueError(f"SQL task {state_name}: field '{key}.{name[:-2]}' must be fixed in the "
                                     "definition; only scriptArgument values and S3 paths may come from the run")


def acknowledge_data_api(findings: dict[str, str], activities: list[Activity], nag_arn: Any, scope: Any) -> None:
    """The wildcards the Data API states put in the state machine's policy, each with its reason."""
    redshift = [a.sql.redshift for a in activities if a.sql is not None and a.sql.redshift is not None]
    if not redshift:
        return
    findings["*"] = findings["*"] + "; Redshift Data API DescribeStatement has no resource-level permission (AWS " \
        "scopes it to the statements the caller ran)"
    if any(work.merge_from_catalog is not None for work in redshift):
        findings["*"] += "; so has GetStatementResult, which reads the key columns of the table a merge writes"
        findings.update(merge_keys_wildcards(scope, scope._naming))
    if any("WorkgroupName" in work.target for work in redshift):
        findings[nag_arn(scope, "redshift-serverless", "workgroup/*")] = (
            "a workgroup's ARN holds its generated id, which the definition (naming the workgroup) does not know")
