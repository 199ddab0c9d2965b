"""Data Pipeline actions (SnsAlarm, Terminate) and the events that trigger them: onFail, onSuccess, onLateAction.

Any object that may carry these fields gets its actions here, whatever its kind: an activity, a data node (it fails
when one of its preconditions gives up, succeeds when they all hold), a precondition, a resource (an EmrCluster
fails when it cannot be created, succeeds when it is terminated at the end of a good run). The state machine
construct (stacks/pipeline_checks.py) turns them into states: an `SnsPublish` per alarm, a `Fail` for a Terminate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from datapipe.importer import schema
from datapipe.importer.expressions import Text
from datapipe.importer.fields import reason_for
from datapipe.importer.laxjson import printable
from datapipe.importer.model import DEFAULT_ID, PipelineObject
from datapipe.importer.reader import Problem

if TYPE_CHECKING:
    from datapipe.importer.plan import Activity, _Planner

ON_FAIL, ON_SUCCESS, ON_LATE = "onFail", "onSuccess", "onLateAction"
TERMINATED_ERROR = "Terminated"
CASCADE = "cascade"
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
    """lateAfterTimeout with its onLateAction: what happens when the object has not finished in time."""

    after_seconds: int
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


def lateness(planner: _Planner, obj: PipelineObject) -> Lateness | None:
    """lateAfterTimeout and onLateAction together; one without the other is reported on the object."""
    seconds = planner.period(obj, "lateAfterTimeout")
    late_actions = actions(planner, obj, ON_LATE)
    if seconds and late_actions:
        return Lateness(seconds, late_actions)
    if seconds and not obj.fields.get(ON_LATE):
        planner.note(obj.id, "lateAfterTimeout has no onLateAction: nothing happens when it is late")
        obj.not_applied("lateAfterTimeout", "it has no onLateAction: nothing happens when it is late")
    elif obj.fields.get(ON_LATE) and not seconds:
        planner.problems.append(Problem(obj.id, "lateAfterTimeout", "onLateAction needs a lateAfterTimeout, the "
                                        "period after which the object is late"))
    return None


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
    """Once every activity is planned: CASCADE consumers, lateness and heartbeat in the report, and a note on each
    action or lateness not applied."""
    cascade(planner, activities)
    for activity_id, activity in activities.items():
        if activity.late is not None:
            names = ", ".join(a.id for a in activity.late.actions)
            planner.targets[activity_id] += f"; watched: late {activity.late.after_seconds} s after it starts ({names})"
        if activity.heartbeat_seconds:
            planner.targets[activity_id] += f"; heartbeat every {activity.heartbeat_seconds} s at most"
    for obj in planner.pipeline.objects.values():
        if obj.kind in (schema.ACTIVITY, schema.DEFAULT) or obj.id == DEFAULT_ID:
            continue
        if obj.kind in (schema.DATA_NODE, schema.PRECONDITION, schema.RESOURCE) and (
                obj.fields.get("lateAfterTimeout") or obj.fields.get(ON_LATE)):
            planner.note(obj.id, f"lateAfterTimeout/onLateAction of a {obj.kind} is not applied: the lateness of the "
                         "activity that uses it is watched; set them there")
            for key in ("lateAfterTimeout", ON_LATE):
                obj.not_applied(key, reason_for(obj.type, key) or "")
        if obj.type == "Ec2Resource" and (obj.fields.get(ON_FAIL) or obj.fields.get(ON_SUCCESS)):
            planner.note(obj.id, "onFail/onSuccess of an Ec2Resource are not applied: it is the Batch queue, "
                         "which neither fails nor ends; the activities' own onFail/onSuccess fire")
            for key in (ON_FAIL, ON_SUCCESS):
                obj.not_applied(key, reason_for(obj.type, key) or "")


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
