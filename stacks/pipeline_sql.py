"""The states of an imported pipeline's database activities (see datapipe.importer.databases).

- Redshift: the statements go to the Redshift Data API as an AWS SDK integration (executeStatement, or
  batchExecuteStatement for several statements in one transaction), then describeStatement is asked every
  `STATEMENT_POLL_SECONDS` until the statement is FINISHED, FAILED or ABORTED, at most `max_statement_checks` times
  (a Standard workflow keeps 25,000 events). The loop sits in a one-branch Parallel state, so that the activity's
  retries and catches (onFail, the clusters' cleanup) apply to it as to any task. A failed statement fails it with
  `Redshift.StatementFailed` and the statement's `Error` as cause.
- Other databases: a task of the worker-group contract (`SqlActivity` or `CopyActivity`) for the group's runner, whose
  SQL, tables and database fields are literal in the state: only `scriptArgument` values and S3 paths may come from
  the execution (`check_fixed_sql_fields`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from datapipe.importer.databases import RedshiftStatements, SqlTask
from datapipe.importer.expressions import Text
from datapipe.importer.plan import Activity
from stacks.worker_groups import worker_group_task

if TYPE_CHECKING:
    from stacks.pipelines import PipelineWorkflow

STATEMENT_POLL_SECONDS = 30
# The Data API runs a statement for at most 24 hours; 2,880 checks of 4 states stay far below 25,000 events.
MAX_STATEMENT_SECONDS = 24 * 3600
STATEMENT_FAILED = "Redshift.StatementFailed"
STATEMENT_UNFINISHED = "Redshift.StatementTimedOut"
# Fields of a SQL task that may hold values of the execution: arguments bound to `?`, and S3 data nodes' paths.
RUNTIME_FIELDS = frozenset({"scriptArgument", "filePath", "directoryPath"})
ENVELOPE_PATHS = frozenset({"workflow.$", "execution.$", "attempt.$"})


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
    from stacks.pipelines import secret_read_statements

    secret_statements = secret_read_statements(workflow, [activity.sql.secret_id])
    if len(work.sqls) == 1:
        parameters: dict[str, Any] = {**target, "Sql": work.sqls[0]}
        if work.parameters:
            parameters["Parameters"] = [{"Name": key, "Value": workflow.render(text)} for key, text in work.parameters]
        action = "executeStatement"
    else:
        parameters = {**target, "Sqls": list(work.sqls)}
        action = "batchExecuteStatement"
    statement_path = f"$.statements.{state_key}"
    submit = tasks.CallAwsService(
        workflow, f"Submit{state_key}", state_name=name(f"Submit_{activity.id}"),
        service="redshiftdata", action=action, iam_action=f"redshift-data:{action[0].upper()}{action[1:]}",
        iam_resources=[where], additional_iam_statements=secret_statements, parameters=parameters,
        result_selector={"Id.$": "$.Id", "checks": 0}, result_path=statement_path,
    )
    describe = tasks.CallAwsService(
        workflow, f"Describe{state_key}", state_name=name(f"Describe_{activity.id}"),
        service="redshiftdata", action="describeStatement", iam_action="redshift-data:DescribeStatement",
        iam_resources=["*"], parameters={"Id": sfn.JsonPath.string_at(f"{statement_path}.Id")},
        result_path=f"{statement_path}.described",
    )
    count = sfn.Pass(workflow, f"Count{state_key}", state_name=name(f"Count_Checks_{activity.id}"),
                     parameters={"Id.$": f"{statement_path}.Id",
                                 "checks.$": f"States.MathAdd({statement_path}.checks, 1)"},
                     result_path=statement_path)
    wait = sfn.Wait(workflow, f"Wait{state_key}", state_name=name(f"Wait_For_{activity.id}"),
                    time=sfn.WaitTime.duration(cdk.Duration.seconds(STATEMENT_POLL_SECONDS)))
    failed = sfn.Fail(workflow, f"Failed{state_key}", state_name=name(f"Statement_Failed_{activity.id}"),
                      error=STATEMENT_FAILED, cause_path=f"{statement_path}.described.Error")
    checks = max_statement_checks(timeout_seconds)
    unfinished = sfn.Fail(workflow, f"Unfinished{state_key}", state_name=name(f"Statement_Unfinished_{activity.id}"),
                          error=STATEMENT_UNFINISHED, cause=f"the statements of {activity.id} did not end after "
                          f"{checks} checks, {STATEMENT_POLL_SECONDS} s apart")
    finished = sfn.Succeed(workflow, f"Finished{state_key}", state_name=name(f"Statement_Finished_{activity.id}"))
    status = f"{statement_path}.described.Status"
    ended = sfn.Choice(workflow, f"Ended{state_key}", state_name=name(f"Statement_Ended_{activity.id}"))
    ended.when(sfn.Condition.string_equals(status, "FINISHED"), finished)
    ended.when(sfn.Condition.or_(sfn.Condition.string_equals(status, "FAILED"),
                                 sfn.Condition.string_equals(status, "ABORTED")), failed)
    ended.when(sfn.Condition.number_greater_than_equals(f"{statement_path}.checks", checks), unfinished)
    ended.otherwise(count)
    count.next(wait).next(describe)
    describe.next(ended)
    branch = sfn.Chain.start(submit).next(describe)
    statement = sfn.Parallel(workflow, f"Run{state_key}", state_name=name(f"Run_{activity.id}"),
                             result_path=sfn.JsonPath.DISCARD)
    statement.branch(branch)
    return statement


def max_statement_checks(timeout_seconds: int | None) -> int:
    """How often describeStatement is asked: the attempt's timeout (else the Data API's 24 hours) over the interval."""
    seconds = min(timeout_seconds or MAX_STATEMENT_SECONDS, MAX_STATEMENT_SECONDS)
    return max(1, -(-seconds // STATEMENT_POLL_SECONDS))


def sql_task(workflow: PipelineWorkflow, activity: Activity, *, worker_activity: sfn.IActivity,
             timeout_seconds: int | None, state_name: str) -> tasks.StepFunctionsInvokeActivity:
    """A SqlActivity or CopyActivity task of the worker-group contract for the activity's worker group."""
    assert activity.sql is not None and activity.sql.task is not None
    task: SqlTask = activity.sql.task
    fields: dict[str, Any] = {}
    for key, values in task.objects.items():
        fields[key] = {name: _rendered(workflow, value) for name, value in values.items()}
    if task.data_format is not None:
        fields["dataFormat"] = task.data_format
    settings = workflow._worker_groups
    if timeout_seconds:  # attemptTimeout bounds each attempt; the heartbeat must stay shorter than it
        settings = dataclasses.replace(settings, task_timeout_seconds=max(timeout_seconds,
                                                                          settings.heartbeat_seconds + 1))
    state = worker_group_task(workflow._activity_scope, state_name, activity=worker_activity, settings=settings,
                              task_type=task.task_type, fields=fields)
    check_fixed_sql_fields(state_name, state.to_state_json()["Parameters"])
    return state


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
    if any("WorkgroupName" in work.target for work in redshift):
        findings[nag_arn(scope, "redshift-serverless", "workgroup/*")] = (
            "a workgroup's ARN holds its generated id, which the definition (naming the workgroup) does not know")
