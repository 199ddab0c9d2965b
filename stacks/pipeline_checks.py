"""The states of an imported pipeline's preconditions, actions and lateness (see datapipe.importer.preconditions and
datapipe.importer.actions), built for `PipelineWorkflow`.

- A precondition is a bounded loop: check, and when it does not hold, count, `Wait` retryDelay and check again; after
  `max_checks` checks, `$.error` names the precondition and the failure path runs (the precondition's onFail, its data
  node's onFail, the activity's onFail), then the run fails with `PreconditionFailed`.
- An action is an `SnsPublish` (an SnsAlarm) or, for a Terminate, `$.error` set to `Terminated` and the failure path.
- lateAfterTimeout with onLateAction: the object's part (an activity's checks and work, a data node's or a
  precondition's checks, an EmrCluster's creation) runs in a `Parallel` beside a watcher: in a run with a
  scheduledStartTime, `Wait` until the deadline (the run's scheduled start plus lateAfterTimeout, a run value; a past
  deadline does not wait), then the actions; in a run started on demand or by a rerun (redriven, or started anew),
  nothing. When the part ends it fails its branch on purpose with `Datapipe.Finished`, which stops the watcher at once
  and which the `Parallel` catches to go on: the watcher never keeps a run alive, and it fires only while the part is
  unfinished. A Terminate in the watcher fails the `Parallel`, which stops the part (and goes on to the part's failure
  path).
"""

from __future__ import annotations

import re
import typing
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from datapipe.importer.actions import TERMINATED_ERROR, Action, Alarm, Lateness, Terminate
from datapipe.importer.plan import ACTIVITY_TASK, BATCH_JOB, Activity, Cluster
from datapipe.importer.preconditions import S3_KEY, S3_PREFIX, SHELL, TABLE, TABLE_DATA, Precondition
from datapipe.operate.runs import RERUN_NAME_INFIX
from datapipe.taskrunner.contract import SHELL_COMMAND_PRECONDITION

if TYPE_CHECKING:
    from stacks.pipelines import PipelineWorkflow

FINISHED_ERROR = "Datapipe.Finished"
PRECONDITION_FAILED_ERROR = "PreconditionFailed"
ERROR_PATH = "$.error"


def state_key(text: str) -> str:
    """An id as a JSONPath key and a state-name fragment."""
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


_key = state_key


def activity_chain(wf: PipelineWorkflow, activity: Activity, on_error: sfn.IChainable | None) -> sfn.IChainable:
    """Preconditions, the work and the activity's actions; a failure goes on to `on_error` (the cluster cleanup)."""
    if activity.late is None:
        return _gated_work(wf, activity, on_error)
    return _watched(wf, activity.id, activity.late, _gated_work(wf, activity, None), on_error)


def creation_catch(wf: PipelineWorkflow, cluster: Cluster, creation_failed: sfn.IChainable) -> sfn.IChainable:
    """Where a failed creation of `cluster` goes: `creation_failed`, or from inside its lateness watch a `Fail` that
    the watch hands on to `creation_failed`."""
    return _reraise(wf, f"Create_{cluster.id}") if (cluster.id, "") in wf.plan.late_objects else creation_failed


def watched_creation(wf: PipelineWorkflow, cluster: Cluster, creation: sfn.Chain, cluster_path: str,
                     on_error: sfn.IChainable) -> sfn.IChainable:
    """An EmrCluster's creation beside its lateness watcher (when it has one): late while it is not running yet.

    The creation's own failures go on to `on_error` (which must not be caught inside `creation`). The branch hands on
    no output, so its end carries the new cluster's id out as the cause of `Datapipe.Finished`, put back in place."""
    late = wf.plan.late_objects.get((cluster.id, ""))
    if late is None:
        return creation
    key = _key(cluster.id)
    restore = sfn.Pass(wf, f"Created{key}", state_name=wf._name(f"Cluster_{cluster.id}_Running"),
                       parameters={"ClusterId.$": f"{cluster_path}.Cause"}, result_path=cluster_path)
    return _watched(wf, cluster.id, late, creation, on_error, what="running", finished_cause_path=f"{cluster_path}."
                    "ClusterId", finished_result_path=cluster_path, ended=restore)


def failed(wf: PipelineWorkflow, object_id: str, on_error: sfn.IChainable | None, cascade: list[str]) -> sfn.IChainable:
    """Where a failure of `object_id` ends: the cleanup, or a `Fail` with the error and cause found in `$.error`
    (a task's own error from its Catch, or what a precondition or Terminate put there)."""
    end: sfn.IChainable = on_error or _fail_with_error(wf, object_id)
    if not cascade or on_error is not None:  # the cluster cleanup ends in a Fail of its own, which says it
        return end
    shown = ", ".join(cascade[:20]) + (f" and {len(cascade) - 20} more" if len(cascade) > 20 else "")
    note = f" (failureAndRerunMode CASCADE: cascade-failed, not run: {shown}; datapipe rerun --from-start runs them)"
    return sfn.Pass(wf, f"Cascade{_key(object_id)}", state_name=wf._name(f"Cascade_Failed_After_{object_id}"),
                    parameters={"Error.$": f"{ERROR_PATH}.Error",
                                "Cause.$": f"States.Format('{{}}{_escape(note)}', {ERROR_PATH}.Cause)"},
                    result_path=ERROR_PATH).next(end)


def _fail_with_error(wf: PipelineWorkflow, object_id: str) -> sfn.Choice:
    """Fail with `$.error`: its own name when custom; `ActivityFailed` for a `States.` error (a Fail state may not
    raise those), its cause kept."""
    key = _key(object_id)
    cause = f"{ERROR_PATH}.Cause"
    return (sfn.Choice(wf, f"Failed{key}", state_name=wf._name(f"{object_id}_Failed"))
            .when(sfn.Condition.string_matches(f"{ERROR_PATH}.Error", "States.*"), sfn.Fail(
                wf, f"FailedInTask{key}", state_name=wf._name(f"{object_id}_Failed_In_Its_Task"),
                error="ActivityFailed", cause_path=cause))
            .otherwise(sfn.Fail(wf, f"FailedWithError{key}", state_name=wf._name(f"{object_id}_Failed_With_Error"),
                                error_path=f"{ERROR_PATH}.Error", cause_path=cause)))


def failure_actions(wf: PipelineWorkflow, actions: list[Action], object_id: str, when: str,
                    then: sfn.IChainable) -> sfn.IChainable:
    """The alarms of `actions` in turn, then `then`; a Terminate among them sets `$.error` to `Terminated` first."""
    following = then
    terminate = next((a for a in actions if isinstance(a, Terminate)), None)
    if terminate is not None:
        following = _set_error(wf, f"Terminate_{object_id}_{when}", TERMINATED_ERROR,
                               f"{object_id} {when.replace('_', ' ')}: terminated by {terminate.id}").next(then)
    alarms = notify(wf, actions, object_id, when)
    return following if alarms is None else alarms.next(following)


def notify(wf: PipelineWorkflow, actions: list[Action], object_id: str, when: str) -> sfn.Chain | None:
    """An `SnsPublish` per alarm, in order; None when there is none."""
    chain: sfn.Chain | None = None
    for alarm in actions:
        if not isinstance(alarm, Alarm):
            continue
        topic = sns.Topic.from_topic_arn(wf, f"Topic{_key(alarm.id)}{_key(object_id)}{when}", alarm.topic_arn)
        publish = tasks.SnsPublish(
            wf, f"Publish{_key(alarm.id)}{_key(object_id)}{when}",
            state_name=wf._name(f"Notify_{alarm.id}_{object_id}_{when}"),
            topic=topic, subject=wf.render(alarm.subject),
            message=sfn.TaskInput.from_text(wf.render(alarm.message)), result_path=sfn.JsonPath.DISCARD,
        )
        chain = sfn.Chain.start(publish) if chain is None else chain.next(publish)
    return chain


# -- an activity with its checks -----------------------------------------------------------------------------------


def _gated_work(wf: PipelineWorkflow, activity: Activity, on_error: sfn.IChainable | None) -> sfn.Chain:
    failure: sfn.IChainable | None = on_error
    if activity.on_fail:  # without it, no Catch: a redrive resumes at the failed task, then runs its consumers
        failure = failure_actions(wf, activity.on_fail, activity.id, "on_fail",
                                  failed(wf, activity.id, on_error, activity.cascade_failed))
    work = wf._work(activity)
    for task in work:
        if not isinstance(task, sfn.TaskStateBase | sfn.Parallel):
            continue
        if activity.retries:
            task.add_retry(errors=["States.ALL"], max_attempts=activity.retries, backoff_rate=1,
                           interval=cdk.Duration.seconds(max(1, activity.retry_delay_seconds)))
        if failure is not None:
            task.add_catch(failure, result_path=ERROR_PATH)
    chain: sfn.Chain | None = None
    if activity.preconditions:  # a precondition that gives up is a failure of the activity
        chain = _checks(wf, activity, failure or failed(wf, activity.id, None, []))
    for task in work:
        chain = sfn.Chain.start(task) if chain is None else chain.next(task)
    alarms = notify(wf, activity.on_success, activity.id, "on_success")
    assert chain is not None
    return chain if alarms is None else chain.next(alarms)


def _checks(wf: PipelineWorkflow, activity: Activity, give_up_end: sfn.IChainable) -> sfn.Chain:
    """The activity's precondition checks in turn, with their alarms; a data node's checks (and a precondition's)
    beside a lateness watcher when the object has one. A check that gives up fires its alarms and goes on to
    `give_up_end`: from inside a watch, through a `Fail` that the watch's `Parallel` catches (a state inside a branch
    may not lead out of it)."""
    late = wf.plan.late_objects
    groups: list[tuple[str, list[Precondition]]] = []
    for precondition in activity.preconditions:  # an activity's own checks first, then each data node's together
        if groups and groups[-1][0] == precondition.owner:
            groups[-1][1].append(precondition)
        else:
            groups.append((precondition.owner, [precondition]))
    chain: sfn.Chain | None = None
    when = f"on_fail_{activity.id}"
    for owner, checks in groups:
        node_late = late.get((owner, "")) if owner != activity.id else None
        group_end = _reraise(wf, f"{owner}_{activity.id}") if node_late is not None else give_up_end
        group: sfn.Chain | None = None
        for precondition in checks:
            check_late = late.get((precondition.id, activity.id))
            where = f"{precondition.id}_{activity.id}"
            give_up = _reraise(wf, where) if check_late is not None else group_end
            if owner != activity.id:  # a data node's precondition: the data node fails too
                give_up = failure_actions(wf, precondition.owner_on_fail, owner, when, give_up)
            give_up = failure_actions(wf, precondition.on_fail, precondition.id, when, give_up)
            step: sfn.Chain = _check_loop(wf, precondition, activity, give_up)
            alarms = notify(wf, precondition.on_success, precondition.id, f"on_success_{activity.id}")
            if alarms is not None:
                step = step.next(alarms)
            if check_late is not None:
                step = _watched(wf, where, check_late, step, group_end, what="held",
                                label=f"precondition {precondition.id} of {activity.id}")
            group = step if group is None else group.next(step)
        assert group is not None
        if owner != activity.id:  # its last precondition held: the data node's onSuccess
            alarms = notify(wf, checks[-1].owner_on_success, owner, f"on_success_{activity.id}")
            if alarms is not None:
                group = group.next(alarms)
        if node_late is not None:
            group = _watched(wf, f"{owner}_{activity.id}", node_late, group, give_up_end, what="ready",
                             label=f"data node {owner} (read by {activity.id})")
        chain = group if chain is None else chain.next(group)
    assert chain is not None
    return chain


def _first_run_of_a_schedule() -> sfn.Condition:
    """A run with a scheduledStartTime that no rerun started or resumed: lateness is reported once per scheduled run
    (a rerun is an operator's, on demand; and its deadline has passed, so a Terminate would end it at once)."""
    redrives = "$$.Execution.RedriveCount"
    return sfn.Condition.and_(
        sfn.Condition.is_present("$.scheduledStartTime"),
        sfn.Condition.not_(sfn.Condition.string_matches("$$.Execution.Name", f"*{RERUN_NAME_INFIX}*")),
        sfn.Condition.or_(sfn.Condition.is_not_present(redrives), sfn.Condition.number_equals(redrives, 0)))


def _reraise(wf: PipelineWorkflow, where: str) -> sfn.Fail:
    """Inside a watch: fail with `$.error` (what a check that gave up, or a Terminate, put there), for the watch's
    `Parallel` to catch and hand on."""
    return sfn.Fail(wf, f"GaveUp{_key(where)}", state_name=wf._name(f"{where}_Gave_Up"),
                    error_path=f"{ERROR_PATH}.Error", cause_path=f"{ERROR_PATH}.Cause")


def _watched(wf: PipelineWorkflow, object_id: str, late: Lateness, part: sfn.IChainable,
             on_error: sfn.IChainable | None, *, what: str = "finished", label: str | None = None,
             finished_cause_path: str | None = None, finished_result_path: str = "$.lateWatch",
             ended: sfn.Pass | None = None) -> sfn.Chain:
    """`part` beside the watcher of `object_id` (a state-name fragment; `label` names the object in errors); the watch
    ends at `ended` (a Pass) once the part has ended."""
    label = label or object_id
    key = _key(object_id)
    finished = sfn.Fail(wf, f"Finished{key}", state_name=wf._name(f"{object_id}_Finished_Before_Late_Watch_Ends"),
                        error=FINISHED_ERROR, cause_path=finished_cause_path,
                        cause=None if finished_cause_path else f"{label} {what}; its lateness watcher stops")
    wait = sfn.Wait(wf, f"LateWait{key}", state_name=wf._name(f"Wait_Until_{object_id}_Is_Late"),
                    time=sfn.WaitTime.timestamp_path(wf.render(late.deadline)))
    on_demand = sfn.Succeed(wf, f"NotWatched{key}", state_name=wf._name(f"No_Lateness_On_Demand_{object_id}"),
                            comment="Data Pipeline: lateness applies only to scheduled runs")
    scheduled = sfn.Choice(wf, f"LateScheduled{key}", state_name=wf._name(f"Is_{object_id}_Run_Scheduled"))
    scheduled.when(_first_run_of_a_schedule(), wait).otherwise(on_demand)
    watcher: sfn.Chain = sfn.Chain.start(wait)
    alarms = notify(wf, late.actions, object_id, "late")
    if alarms is not None:
        watcher = watcher.next(alarms)
    terminate = next((a for a in late.actions if isinstance(a, Terminate)), None)
    if terminate is not None:
        watcher = watcher.next(sfn.Fail(
            wf, f"LateTerminate{key}", state_name=wf._name(f"Terminate_{object_id}_Late"), error=TERMINATED_ERROR,
            cause=f"{label} was not {what} {late.period} after the run's scheduled start: terminated by "
            f"{terminate.id}"))
    watch = sfn.Parallel(wf, f"Watch{key}", state_name=wf._name(f"Watch_Lateness_Of_{object_id}"),
                         result_path=sfn.JsonPath.DISCARD)
    watch.branch(sfn.Chain.start(part).next(finished))
    watch.branch(scheduled)
    done = ended or sfn.Pass(wf, f"Watched{key}", state_name=wf._name(f"{object_id}_Done"))
    watch.add_catch(done, errors=[FINISHED_ERROR], result_path=finished_result_path)
    if on_error is not None:
        watch.add_catch(on_error, result_path=ERROR_PATH)
    return sfn.Chain.custom(watch, [done], done)


# -- one precondition ------------------------------------------------------------------------------------------------


def _check_loop(wf: PipelineWorkflow, precondition: Precondition, activity: Activity, give_up: sfn.IChainable
                ) -> sfn.Chain:
    """Start counting, check; when it does not hold: count, and wait and check again or give up."""
    where = f"{precondition.id}_{activity.id}"
    counter = f"$.checks.{_key(where)}"
    start = sfn.Pass(wf, f"Init{_key(where)}", state_name=wf._name(f"Start_Checking_{where}"),
                     result=sfn.Result.from_object({"count": 0}), result_path=counter)
    count = sfn.Pass(wf, f"Count{_key(where)}", state_name=wf._name(f"Count_Check_{where}"),
                     parameters={"count.$": f"States.MathAdd({counter}.count, 1)"}, result_path=counter)
    check, held = _check(wf, precondition, activity, where, counter, count)
    wait = sfn.Wait(wf, f"Wait{_key(where)}", state_name=wf._name(f"Wait_Before_Checking_{where}"),
                    time=sfn.WaitTime.duration(cdk.Duration.seconds(precondition.interval_seconds)))
    cause = (f"precondition {precondition.id} ({precondition.owner}) did not hold for {activity.id}: "
             f"{precondition.describe()}, {precondition.max_checks} checks {precondition.interval_seconds} s apart")
    again = sfn.Choice(wf, f"Again{_key(where)}", state_name=wf._name(f"Check_Again_{where}"))
    again.when(sfn.Condition.number_less_than(f"{counter}.count", precondition.max_checks), wait)
    again.otherwise(_set_error(wf, f"Precondition_Failed_{where}", PRECONDITION_FAILED_ERROR, cause).next(give_up))
    start.next(check)
    count.next(again)
    wait.next(check)
    return sfn.Chain.custom(start, [typing.cast(sfn.INextable, held)], held)


def _check(wf: PipelineWorkflow, precondition: Precondition, activity: Activity, where: str, counter: str,
           not_held: sfn.IChainable) -> tuple[sfn.State, sfn.State]:
    """The state that checks, and the state after which the precondition holds (the same for a check that fails
    when it does not hold; a `Choice`'s `Pass` for one that answers)."""
    key = _key(where)
    name = wf._name(f"Check_{where}")
    answer = f"{counter}.answer"
    partition = cdk.Aws.PARTITION
    check: sfn.TaskStateBase
    holds: sfn.Condition | None = None
    if precondition.kind == S3_KEY:
        check = tasks.CallAwsService(
            wf, f"Check{key}", state_name=name, service="s3", action="headObject", iam_action="s3:GetObject",
            iam_resources=[f"arn:{partition}:s3:::{precondition.bucket}/*"],
            parameters={"Bucket": precondition.bucket, "Key": wf.render(precondition.key)},
            result_path=sfn.JsonPath.DISCARD)
    elif precondition.kind == S3_PREFIX:
        check = tasks.CallAwsService(
            wf, f"Check{key}", state_name=name, service="s3", action="listObjectsV2", iam_action="s3:ListBucket",
            iam_resources=[f"arn:{partition}:s3:::{precondition.bucket}"],
            parameters={"Bucket": precondition.bucket, "Prefix": wf.render(precondition.key), "MaxKeys": 1},
            result_selector={"keys.$": "$.KeyCount"}, result_path=answer)
        holds = sfn.Condition.number_greater_than(f"{answer}.keys", 0)
    elif precondition.kind in (TABLE, TABLE_DATA):
        table_arn = cdk.Stack.of(wf).format_arn(service="dynamodb", resource="table", resource_name=precondition.table)
        if precondition.kind == TABLE:
            check = tasks.CallAwsService(
                wf, f"Check{key}", state_name=name, service="dynamodb", action="describeTable",
                iam_action="dynamodb:DescribeTable", iam_resources=[table_arn],
                parameters={"TableName": precondition.table}, result_path=sfn.JsonPath.DISCARD)
        else:
            check = tasks.CallAwsService(
                wf, f"Check{key}", state_name=name, service="dynamodb", action="scan", iam_action="dynamodb:Scan",
                iam_resources=[table_arn], parameters={"TableName": precondition.table, "Limit": 1,
                                                       "Select": "COUNT"},
                result_selector={"items.$": "$.Count"}, result_path=answer)
            holds = sfn.Condition.number_greater_than(f"{answer}.items", 0)
    elif precondition.kind == SHELL and activity.target == ACTIVITY_TASK:
        check = _shell_task(wf, precondition, activity, name)
        holds = sfn.Condition.boolean_equals(f"$.{name}.holds", True)
    elif precondition.kind == SHELL and activity.target == BATCH_JOB:
        # The job's exit code decides: a job that fails is a precondition that does not hold yet.
        check = wf._batch_job(Activity(id=where, type=SHELL_COMMAND_PRECONDITION, target=BATCH_JOB,
                                       resource=activity.resource, shell=precondition.shell), None)
    else:  # the importer maps no other kind
        raise ValueError(f"precondition {precondition.id}: no check for {precondition.kind} on {activity.target}")
    check.add_catch(not_held, errors=["States.ALL"], result_path="$.checkError")
    if holds is None:
        return check, check
    held = sfn.Pass(wf, f"Held{key}", state_name=wf._name(f"Holds_{where}"), result_path=sfn.JsonPath.DISCARD)
    decide = sfn.Choice(wf, f"Decide{key}", state_name=wf._name(f"Does_It_Hold_{where}"))
    decide.when(holds, held).otherwise(not_held)
    check.next(decide)
    return check, held


def _shell_task(wf: PipelineWorkflow, precondition: Precondition, activity: Activity, name: str) -> Any:
    """A worker-group task of type ShellCommandPrecondition, on the activity's worker group (the task contract)."""
    shell = precondition.shell
    assert shell is not None and activity.worker_group is not None
    return wf._worker_task(activity, name, shell, task_type=SHELL_COMMAND_PRECONDITION)


def _set_error(wf: PipelineWorkflow, name: str, error: str, cause: str) -> sfn.Pass:
    return sfn.Pass(wf, f"SetError{_key(name)}", state_name=wf._name(name),
                    result=sfn.Result.from_object({"Error": error, "Cause": cause}), result_path=ERROR_PATH)


def _escape(text: str) -> str:
    """Literal text inside a States.Format template: its special characters escaped."""
    return "".join("\\" + c if c in "{}'\\" else c for c in text)
