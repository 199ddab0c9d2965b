"""Data Pipeline actions (SnsAlarm, Terminate) and the events that trigger them: onFail, onSuccess, onLateAction.

Any object that may carry these fields gets its actions here, whatever its kind: an activity, a data node (it fails
when one of its preconditions gives up, succeeds when they all hold), a precondition, a resource (an EmrCluster
fails when it cannot be created, succeeds when it is terminated at the end of a good run). The state machine
construct (stacks/pipeline_checks.py) turns them into states: an `SnsPublish` per alarm, a `Fail` for a Terminate.

Lateness counts as Data Pipeline counts it: an object is late when it has not finished by the run's scheduled start
plus its lateAfterTimeout, whatever it waited for before it started; a run of an interval long past is late at once.
The deadline is a value of the run-values Lambda (the run's scheduled time, which the expressions use too), so the
watcher waits for a timestamp. Runs started on demand are never late (Data Pipeline: "triggered only when the
schedule type is not set to ondemand"), neither in an ondemand pipeline nor when a scheduled one is started by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from datapipe import datefunctions
from datapipe.importer import schema
from datapipe.importer.expressions import Text
from datapipe.importer.fields import EC2_RESOURCE_LATENESS, NO_PRECONDITION_LATENESS, reason_for
from datapipe.importer.laxjson import printable
from datapipe.importer.model import PipelineObject
from datapipe.importer.reader import Problem
from datapipe.importer.schedules import ONDEMAND, TIMESERIES, parse_period, schedule_type_of

if TYPE_CHECKING:
    from datapipe.importer.plan import Activity, _Planner

ON_FAIL, ON_SUCCESS, ON_LATE = "onFail", "onSuccess", "onLateAction"
TERMINATED_ERROR = "Terminated"
CASCADE = "cascade"
# The deadline as Step Functions' Wait reads a timestamp (UTC, whole seconds).
DEADLINE_PATTERN = "yyyy-MM-dd'T'HH:mm:ss'Z'"
ON_DEMAND_REASON = "Data Pipeline applies it only to scheduled runs, and this pipeline is started on demand"
_WHEN = {ON_FAIL: "fails", ON_SUCCESS: "succeeds", ON_LATE: "is late"}


@dataclass
class Alarm:
    id: str
    topic_arn: str
    subject: Text
    message: Text


@dataclass
class Terminate:
    """Cancels the unfinished run: the part that carries it stops, the run fails with `Terminated` after cleanup."""

    id: str


Action = Alarm | Terminate


@dataclass
class Lateness:
    """lateAfterTimeout with its onLateAction: what happens when the object has not finished in time.

    `deadline` is the run's scheduledStartTime plus the period, as a timestamp the run-values Lambda gives."""

    after_seconds: int
    period: str
    deadline: Text
    actions: list[Action]


def actions(planner: _Planner, obj: PipelineObject, key: str, *, node: PipelineObject | None = None) -> list[Action]:
    """The actions of `obj`'s field `key`; expressions of an alarm are evaluated for `node` (by default `obj`)."""
    result: list[Action] = []
    evaluator = planner.evaluator
    for action_id in obj.refs(key):
        action = planner.pipeline.objects[action_id]
        if action.type == "Terminate":
            if key == ON_SUCCESS:
                planner.problems.append(Problem(obj.id, key, f"{action.id} is a Terminate action, which cancels an "
                                                "unfinished object; an object that succeeded has nothing to cancel"))
                continue
            result.append(Terminate(action.id))
            _describe(planner, action.id, obj.id, key, "run terminated (cleanup, then Fail 'Terminated') when")
            continue
        if action.type != "SnsAlarm":
            continue  # the model refuses a reference to anything but an action
        topic = evaluator.static_field(action, "topicArn", purpose="the workflow may publish to it only")
        subject = evaluator.field_text(action, "subject", node=node or obj)
        message = evaluator.field_text(action, "message", node=node or obj)
        if topic is None or subject is None or message is None:
            continue
        if not topic.startswith("arn:"):
            planner.problems.append(Problem(action.id, "topicArn", f"must be an SNS topic ARN, got {topic!r}"))
            continue
        result.append(Alarm(action.id, topic, subject, message))
        _describe(planner, action.id, obj.id, key, "SNS publish (SnsPublish) when")
    return result


def lateness(planner: _Planner, obj: PipelineObject, *, activity: PipelineObject | None = None,
             node: PipelineObject | None = None) -> Lateness | None:
    """lateAfterTimeout and onLateAction together; one without the other is reported on the object. `activity`: the
    activity that uses `obj` (by default `obj` itself), whose scheduleType says whether runs are on demand; alarms
    are evaluated for `node` (by default `obj`)."""
    seconds = planner.period(obj, "lateAfterTimeout")
    late_actions = actions(planner, obj, ON_LATE, node=node)
    if seconds == 0:
        planner.problems.append(Problem(obj.id, "lateAfterTimeout", "must be longer than 0 minutes: the object would "
                                        "be late at its scheduled start"))
        return None
    if seconds and late_actions:
        if schedule_type_of(activity or obj) == ONDEMAND:  # the Default's, for every object (schedules.py)
            planner.note(obj.id, f"lateAfterTimeout is not applied: {ON_DEMAND_REASON}")
            for key in ("lateAfterTimeout", ON_LATE):
                obj.not_applied(key, ON_DEMAND_REASON)
            return None
        period = (planner.evaluator.static_field(obj, "lateAfterTimeout", purpose="it is a period") or "").strip()
        _note_timeseries(planner, obj, activity or obj, seconds)
        return Lateness(seconds, period, _deadline(planner, period), late_actions)
    if seconds and not obj.fields.get(ON_LATE):
        planner.note(obj.id, "lateAfterTimeout has no onLateAction: nothing happens when it is late")
        obj.not_applied("lateAfterTimeout", "it has no onLateAction: nothing happens when it is late")
    elif obj.fields.get(ON_LATE) and not obj.fields.get("lateAfterTimeout"):  # a bad period is reported already
        planner.problems.append(Problem(obj.id, "lateAfterTimeout", "onLateAction needs a lateAfterTimeout, the "
                                        "period after which the object is late"))
    return None


def _note_timeseries(planner: _Planner, obj: PipelineObject, activity: PipelineObject, seconds: int) -> None:
    """A timeseries run works one period after its scheduled start: a lateness no longer than that always fires."""
    if schedule_type_of(activity) != TIMESERIES:
        return
    schedule = planner.pipeline.objects.get(activity.ref("schedule") or "")
    period = parse_period(schedule.text("period") or "") if schedule is not None else None
    if period is not None and period.seconds is not None and seconds <= period.seconds:
        planner.note(obj.id, f"lateAfterTimeout is no longer than the period of its timeseries schedule ({period}), "
                     "whose runs work at the end of their interval: every run will be late")


def _deadline(planner: _Planner, period: str) -> Text:
    """The run's scheduledStartTime plus `period`, as a timestamp: one run value, shared by every object with the
    same period (months and years as calendar months, as Data Pipeline's date functions add them)."""
    shift = datefunctions.period_shift(period)
    assert shift is not None  # planner.period accepted the same text
    function, amount = shift
    later = {"function": function, "arguments": [{"time": "scheduledStartTime"}, amount]}
    # One of the expressions' own run values: the same Lambda call evaluates it, with the same scheduled time.
    return planner.evaluator.run_value({"function": "format", "arguments": [later, DEADLINE_PATTERN]})


def _describe(planner: _Planner, action_id: str, object_id: str, key: str, what: str) -> None:
    previous = planner.targets.get(action_id, what)
    planner.targets[action_id] = f"{previous} {object_id} {_WHEN[key]};"


def progress_and_reruns(planner: _Planner, obj: PipelineObject, activity: Activity) -> None:
    """reportProgressTimeout (the heartbeat of a worker-group task) and failureAndRerunMode (checked here)."""
    timeout = planner.period(obj, "reportProgressTimeout")
    if timeout and activity.target == "activity":
        activity.heartbeat_seconds = timeout
    elif timeout:
        planner.note(obj.id, "reportProgressTimeout is not applied: only a worker group's task runner reports "
                     "progress (Batch and EMR steps are bounded by attemptTimeout)")
        obj.not_applied("reportProgressTimeout", "only a worker group's task runner reports progress (Batch and EMR "
                        "steps are bounded by attemptTimeout)")
    mode = obj.text("failureAndRerunMode")
    if mode is not None and mode.lower() not in (CASCADE, "none"):
        planner.problems.append(Problem(obj.id, "failureAndRerunMode", f"must be CASCADE or NONE, got "
                                        f"{printable(mode)[:40]!r}"))


def finish(planner: _Planner, activities: dict[str, Activity]) -> None:
    """Once every activity is planned: CASCADE consumers, the lateness of the objects activities use, lateness and
    heartbeat in the report, and a note on each action or lateness not applied."""
    cascade(planner, activities)
    object_lateness(planner, activities)
    for activity_id, activity in activities.items():
        if activity.late is not None:
            planner.targets[activity_id] += f"; {_watched(activity.late)}"
        if activity.heartbeat_seconds:
            planner.targets[activity_id] += f"; heartbeat every {activity.heartbeat_seconds} s at most"
    for obj in planner.pipeline.objects.values():
        if obj.type == "Ec2Resource" and (obj.fields.get(ON_FAIL) or obj.fields.get(ON_SUCCESS)):
            planner.note(obj.id, "onFail/onSuccess of an Ec2Resource are not applied: it is the Batch queue, "
                         "which neither fails nor ends; the activities' own onFail/onSuccess fire")
            for key in (ON_FAIL, ON_SUCCESS):
                obj.not_applied(key, reason_for(obj.type, key) or "")


def _watched(late: Lateness, state: str = "finished") -> str:
    names = ", ".join(a.id for a in late.actions)
    return f"watched: late when not {state} {late.period} after the run's scheduled start ({names})"


def object_lateness(planner: _Planner, activities: dict[str, Activity]) -> None:
    """lateAfterTimeout/onLateAction of the data nodes, preconditions and resources that planned activities use,
    in `planner.plan.late_objects`: a data node is late when its preconditions have not all held by the deadline (for
    each activity that reads it), a precondition when it has not held, an EmrCluster when it is not running yet."""
    late = planner.plan.late_objects
    objects = planner.pipeline.objects
    watched_nodes: set[str] = set()
    unwatched: set[str] = set()  # preconditions whose lateness was refused or is not applied: said once, not per use
    for activity_id, activity in activities.items():
        for check in activity.preconditions:
            if (check.id, activity_id) not in late and check.id not in unwatched and _has_lateness(objects[check.id]):
                found = lateness(planner, objects[check.id], activity=objects[activity_id], node=objects[activity_id])
                if found is None:
                    unwatched.add(check.id)
                else:
                    late[check.id, activity_id] = found
                    planner.targets[check.id] = planner.targets.get(check.id, "") + f"; {_watched(found)}"
            if check.owner != activity_id and check.owner not in watched_nodes:
                watched_nodes.add(check.owner)
                if _has_lateness(objects[check.owner]):
                    found = lateness(planner, objects[check.owner], activity=objects[activity_id])
                    if found is not None:
                        late[check.owner, ""] = found
                        planner.targets[check.owner] = (planner.targets.get(check.owner, "")
                                                        + f"; {_watched(found, 'ready')}")
    runs_on = {objects[a].ref("runsOn"): objects[a] for a in activities}
    for cluster in planner.plan.clusters:
        if _has_lateness(objects[cluster.id]):
            found = lateness(planner, objects[cluster.id], activity=runs_on.get(cluster.id))
            if found is not None:
                late[cluster.id, ""] = found
                planner.targets[cluster.id] = planner.targets.get(cluster.id, "") + f"; {_watched(found, 'running')}"
    used = {ref for activity_id in activities for key in ("input", "output", "runsOn")
            for ref in objects[activity_id].refs(key)}
    for object_id in sorted(used):
        obj = objects[object_id]
        if not _has_lateness(obj):
            continue
        if obj.type == "Ec2Resource":
            reason = EC2_RESOURCE_LATENESS
        elif obj.kind == schema.DATA_NODE and object_id not in watched_nodes:
            reason = NO_PRECONDITION_LATENESS
        else:
            continue
        planner.note(object_id, f"lateAfterTimeout/onLateAction are not applied: {reason}")
        for key in ("lateAfterTimeout", ON_LATE):
            obj.not_applied(key, reason)


def _has_lateness(obj: PipelineObject) -> bool:
    return bool(obj.fields.get("lateAfterTimeout") or obj.fields.get(ON_LATE))


def cascade(planner: _Planner, activities: dict[str, Activity]) -> None:
    """For each activity in CASCADE mode, the activities that consume it directly: when it fails they are
    cascade-failed (not run), and the failure says so; a rerun of the run (a redrive) runs them again."""
    consumers: dict[str, list[str]] = {}
    for activity_id, wanted in planner.pipeline.activity_dependencies().items():
        for dependency in wanted:
            consumers.setdefault(dependency, []).append(activity_id)
    for activity_id, activity in activities.items():
        mode = (planner.pipeline.objects[activity_id].text("failureAndRerunMode") or "").lower()
        if mode == CASCADE and consumers.get(activity_id):
            activity.cascade_failed = consumers[activity_id]
            shown = ", ".join(activity.cascade_failed[:20]) + (" ..." if len(activity.cascade_failed) > 20 else "")
            planner.targets[activity_id] += f"; when it fails, cascade-failed (not run): {shown}"
