"""Data Pipeline's six preconditions, as checks the state machine repeats until they hold or time runs out.

A precondition gates the activity that names it, and a data node's precondition gates every activity that reads the
node. Each becomes a bounded loop (stacks/pipeline_checks.py): check, and when it does not hold, wait `retryDelay`
and check again, at most `preconditionTimeout / retryDelay` times and at most `maximumRetries + 1` times (a
Standard workflow keeps at most 25,000 history events: no unbounded loop), then fail naming the precondition.

| precondition | the check |
| --- | --- |
| S3KeyExists, Exists on an S3DataNode with filePath | s3:headObject of the key |
| S3PrefixNotEmpty, Exists on an S3DataNode with directoryPath | s3:listObjectsV2 of the prefix (MaxKeys 1): a key |
| DynamoDBTableExists, Exists on a DynamoDBDataNode | dynamodb:describeTable |
| DynamoDBDataExists | dynamodb:scan (Limit 1): an item |
| ShellCommandPrecondition | its command where the activity runs (see below) |

A ShellCommandPrecondition runs on the activity's worker group as a task of type ShellCommandPrecondition (the
runner's answer `holds` decides), or, for an activity on an Ec2Resource, as a Batch job (its exit code decides).

Each check may read only what it names: the bucket (and the key or prefix), the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from datapipe.importer.actions import ON_FAIL, ON_SUCCESS, Action, actions
from datapipe.importer.expressions import Text
from datapipe.importer.fields import reason_for
from datapipe.importer.laxjson import printable
from datapipe.importer.model import PipelineObject
from datapipe.importer.reader import Problem
from datapipe.naming import BUCKET_NAME_PATTERN

if TYPE_CHECKING:
    from datapipe.importer.plan import Activity, Shell, _Planner

S3_KEY, S3_PREFIX, TABLE, TABLE_DATA, SHELL = "s3-key", "s3-prefix", "dynamodb-table", "dynamodb-data", "shell"
TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_WHAT = {
    S3_KEY: "s3:headObject", S3_PREFIX: "s3:listObjectsV2 (a key under the prefix)",
    TABLE: "dynamodb:describeTable", TABLE_DATA: "dynamodb:scan (an item)", SHELL: "its command",
}


@dataclass
class Precondition:
    """One check of one precondition for one activity. `owner` is the object that names it: the activity, or the
    data node the activity reads (whose onFail/onSuccess are `owner_on_fail`/`owner_on_success`)."""

    id: str
    bucket: str
    key: Text
    interval_seconds: int
    max_checks: int
    kind: str = S3_KEY
    table: str = ""
    shell: Shell | None = None  # a ShellCommandPrecondition's command, run where the activity runs
    owner: str = ""
    on_fail: list[Action] = field(default_factory=list)
    on_success: list[Action] = field(default_factory=list)
    owner_on_fail: list[Action] = field(default_factory=list)
    owner_on_success: list[Action] = field(default_factory=list)

    def describe(self) -> str:
        """What is checked, for the error of a precondition that gives up."""
        if self.kind in (S3_KEY, S3_PREFIX):
            return f"s3://{self.bucket}/{self.key.describe()}"
        if self.kind in (TABLE, TABLE_DATA):
            return f"DynamoDB table {self.table}"
        return "its command"


def preconditions(planner: _Planner, obj: PipelineObject, activity: Activity) -> list[Precondition]:
    """The checks that gate activity `obj`: its own preconditions, then those of each data node it reads."""
    owners: list[tuple[PipelineObject, str]] = [(obj, p) for p in obj.refs("precondition")]
    for node_id in obj.refs("input"):
        node = planner.pipeline.objects[node_id]
        owners.extend((node, p) for p in node.refs("precondition"))
    result: list[Precondition] = []
    seen: set[tuple[str, str]] = set()
    for owner, precondition_id in owners:
        if (owner.id, precondition_id) in seen:
            continue
        seen.add((owner.id, precondition_id))
        check = _check(planner, planner.pipeline.objects[precondition_id], owner, obj, activity)
        if check is not None:
            result.append(check)
    return result


def _check(planner: _Planner, pre: PipelineObject, owner: PipelineObject, activity_obj: PipelineObject,
           activity: Activity) -> Precondition | None:
    interval = planner.period(pre, "retryDelay") or planner.options.precondition_interval_seconds
    timeout = planner.period(pre, "preconditionTimeout")
    checks = max(1, timeout // interval) if timeout else planner.options.precondition_max_checks
    if pre.fields.get("maximumRetries"):
        checks = min(checks, planner.integer(pre, "maximumRetries", 0) + 1)
    check = Precondition(pre.id, "", Text.of(""), interval, checks, owner=owner.id)
    kind = pre.type
    node = owner if owner is not activity_obj else None
    if kind == "Exists":
        if node is None or node.type not in ("S3DataNode", "DynamoDBDataNode"):
            planner.problems.append(Problem(pre.id, "type", f"Exists checks that a data node exists; {owner.id} is "
                                            f"{'an activity' if node is None else 'a ' + node.type}, put it on an "
                                            "S3DataNode or DynamoDBDataNode"))
            return None
        if node.type == "DynamoDBDataNode":
            kind, key = "DynamoDBTableExists", "tableName"
        else:
            kind = "S3PrefixNotEmpty" if node.fields.get("directoryPath") else "S3KeyExists"
            key = "directoryPath" if node.fields.get("directoryPath") else "filePath"
            if not node.fields.get(key):
                planner.problems.append(Problem(node.id, "filePath", "Exists needs the node's filePath or "
                                                "directoryPath"))
                return None
        source, source_key = node, key
    else:
        source, source_key = pre, {"S3KeyExists": "s3Key", "S3PrefixNotEmpty": "s3Prefix"}.get(
            kind, "tableName")
    if kind in ("S3KeyExists", "S3PrefixNotEmpty"):
        if not _s3_location(planner, check, source, source_key, activity_obj):
            return None
        check.kind = S3_KEY if kind == "S3KeyExists" else S3_PREFIX
    elif kind in ("DynamoDBTableExists", "DynamoDBDataExists"):
        table = planner.evaluator.static_field(source, source_key, purpose="the check may read that table only")
        if table is None:
            return None
        if not TABLE_NAME.fullmatch(table):
            planner.problems.append(Problem(source.id, source_key, f"{printable(table)[:80]!r} is not a DynamoDB "
                                            "table name (3 to 255 letters, digits, '_', '-', '.')"))
            return None
        check.kind, check.table = (TABLE if kind == "DynamoDBTableExists" else TABLE_DATA), table
    elif kind == "ShellCommandPrecondition":
        if activity.target == "emr":
            planner.reasons.setdefault(pre.id, f"ShellCommandPrecondition runs where its activity runs; "
                                       f"{activity_obj.id} runs on an EmrCluster, where no check can run before the "
                                       "cluster exists")
            return None
        shell = planner.shell(pre)
        if shell is None:
            return None
        check.kind, check.shell = SHELL, shell
    else:
        return None
    for unapplied in ("attemptTimeout", "reportProgressTimeout"):
        if pre.fields.get(unapplied):
            planner.note(pre.id, f"{unapplied} is not applied: each check is one call, bounded by "
                         "preconditionTimeout, retryDelay and maximumRetries")
            pre.not_applied(unapplied, reason_for(pre.type, unapplied) or "")
    if pre.fields.get("role"):
        if check.kind != SHELL:
            planner.note(pre.id, "role is not assumed: the state machine's own role checks, allowed to read only "
                         "what the check names")
        pre.not_applied("role", reason_for(pre.type, "role") or "")
    check.on_fail = actions(planner, pre, ON_FAIL, node=activity_obj)
    check.on_success = actions(planner, pre, ON_SUCCESS, node=activity_obj)
    if node is not None:
        check.owner_on_fail = actions(planner, node, ON_FAIL)
        check.owner_on_success = actions(planner, node, ON_SUCCESS)
    where = {"activity": f"the worker group's task runner ({activity.worker_group})", "batch": "a Batch job"}
    what = _WHAT[check.kind] if check.kind != SHELL else f"its command on {where.get(activity.target, '')}"
    previous = planner.targets.get(pre.id)  # a precondition shared by many activities names each once
    planner.targets[pre.id] = f"{previous}, {activity_obj.id}" if previous else (
        f"bounded check loop: {what} every {interval} s, at most {checks} times, for {activity_obj.id}")
    return check


def _s3_location(planner: _Planner, check: Precondition, source: PipelineObject, key: str,
                 activity_obj: PipelineObject) -> bool:
    """Bucket (known at import time: the check is allowed on it only) and key or prefix (may be known at run time)."""
    text = planner.evaluator.field_text(source, key, node=activity_obj)
    if text is None:
        return False
    first = text.parts[0] if text.parts else ""
    match = re.match(r"^s3://([^/]+)/(.*)$", first, re.DOTALL) if isinstance(first, str) else None
    if match is None:
        planner.problems.append(Problem(source.id, key, "must start with s3://<bucket>/ known at import time (the "
                                        "check is allowed on that bucket only)"))
        return False
    if re.fullmatch(BUCKET_NAME_PATTERN, match.group(1)) is None:
        planner.problems.append(Problem(source.id, key, f"{printable(match.group(1))[:80]!r} is not an S3 bucket name"))
        return False
    check.bucket = match.group(1)
    check.key = Text.of(match.group(2), *text.parts[1:])
    return True
