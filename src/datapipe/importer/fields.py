"""Nothing dropped in silence: every field of every object is either applied or reported with the reason it is not.

A field is applied when the planner read it through the model (`PipelineObject.fields` records each lookup) and did
not call `PipelineObject.not_applied` for it. Every other field gets its reason from one table (`REASONS` by field,
`KIND_REASONS` by kind of object, `TYPE_REASONS` by type), so a planner that starts reading a field turns it into
"applied" without touching this module. A field written on Default is accounted there, and counts as applied when
any object that inherits it applied it.

The same table gives the status of each field of each type in docs/importer.md (`types_table`); tests check that
the page shows the table, and that no field the planner applies is called "not applied" by the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datapipe.importer import schema
from datapipe.importer.model import DEFAULT_ID, Pipeline, PipelineObject

# The fallback when nothing explains a field: the walk over the reference (tests/importer/test_fields.py) fails on it.
UNEXPLAINED = "the importer has no mapping for this field"
UNUSED_OBJECT = "no mapped activity uses this object"
RUNS_ON_WINS = "runsOn is given too, and Data Pipeline ignores workerGroup then"

# Fields that shape the definition itself: the type chose the mapping, parent gave the inherited fields.
STRUCTURAL = frozenset({"type", "parent"})

_STATUS_ONLY = "a status Data Pipeline reported at run time, not a setting"
_NO_LATENESS = "Step Functions has no lateness alarm; put a CloudWatch alarm on the state machine's execution time"
_REGION = "everything runs in the region the stack is deployed to"
_BATCH_NETWORK = "Batch jobs run in the subnets and security groups of the Batch compute environment (batch settings)"
_BATCH_HOST = "Batch runs the job in a container on hosts the compute environment manages"
_EMR_ROLES = "the cluster uses the EMR roles the deployment creates, scoped to its own clusters by tag"
_EMR_NETWORK = "the cluster runs in the network of the deployment (EMR managed security groups)"
_JAVA = "a setting of Data Pipeline's Java runtime (Task Runner and its JDBC drivers), which is not used here"
_NOT_ON_OBJECT = "Data Pipeline does not allow this field on this object; it is ignored"
_DEPRECATED = "deprecated in Data Pipeline; one Batch job runs per activity attempt"
_OLD_LOGS = "an older field: logs go to the deployment's log bucket (pipelineLogUri sets the EMR log folder)"
_PROXY_REFERENCE = (
    "Batch jobs and EMR clusters reach AWS through the deployment's network, not through a proxy; the HttpProxy "
    "object lists the task runner options that apply it on a worker group's host"
)

_FOLLOWS_ACTIVITY = "the activities' schedule decides when a run starts; this object is used within the activity's run"
_ALARMS_ON_ACTIVITIES = "alarms fire for activities only: put the alarm on the activity that uses this object"
_RUN_BY_ACTIVITY = "the activity's attemptTimeout, maximumRetries and retryDelay bound and retry its task; this " \
    "object has no task of its own"
_CHECK_LOOP = "the check loop runs every retryDelay until preconditionTimeout (or the pipelines settings' bound)"
_NO_STAGING = "the tables Data Pipeline generated from data formats are not generated; the script gets the paths as " \
    "variables (input1.., output1..)"
_NO_FORMAT = "files are read and written as they are: data formats are not applied"
_DYNAMODB_NODE = "an EMR step reads it through an expression (#{input.tableName}); the importer sets nothing from it"

KIND_REASONS: dict[tuple[str, str], str] = {
    **{(kind, key): _FOLLOWS_ACTIVITY for kind in (schema.RESOURCE, schema.DATA_NODE, schema.PRECONDITION)
       for key in ("schedule", "scheduleType")},
    **{(kind, key): _ALARMS_ON_ACTIVITIES for kind in (schema.RESOURCE, schema.DATA_NODE, schema.PRECONDITION)
       for key in ("onFail", "onSuccess")},
    **{(kind, key): _RUN_BY_ACTIVITY for kind in (schema.RESOURCE, schema.DATA_NODE)
       for key in ("attemptTimeout", "maximumRetries", "retryDelay")},
    **{(schema.PRECONDITION, key): _CHECK_LOOP for key in ("attemptTimeout", "maximumRetries")},
    **{(kind, key): "only an activity runs on a resource or worker group here; this object is used by the activity "
       "that refers to it" for kind in (schema.DATA_NODE, schema.PRECONDITION) for key in ("runsOn", "workerGroup")},
    (schema.RESOURCE, "precondition"): "preconditions are checked before activities and on their input data nodes; "
    "a resource has none",
    **{(kind, "dependsOn"): "only activities wait for others: an activity that reads a data node waits for the "
       "activities that write it" for kind in (schema.RESOURCE, schema.DATA_NODE)},
    **{(schema.DATA_FORMAT, key): _NO_FORMAT for key in ("column", "columnSeparator", "escapeChar", "recordSeparator",
                                                          "inputRegEx", "outputFormat")},
}


REASONS: dict[str, str] = {
    "attemptStatus": _STATUS_ONLY,
    "actionOnResourceFailure": "a failed Batch job or EMR cluster is never kept or retried on its own: the activity's "
    "maximumRetries retries the whole task",
    "actionOnTaskFailure": "a Batch host is not kept after its job; EMR clusters are terminated at the end and on "
    "any failure",
    "associatePublicIpAddress": _BATCH_NETWORK,
    "availabilityZone": "Batch and EMR pick the zone from the subnets of their settings",
    "failureAndRerunMode": "a failed activity ends the run; there are no reruns of single objects to cascade",
    "httpProxy": _PROXY_REFERENCE,
    "initTimeout": "starting the host is part of the task; terminateAfter and attemptTimeout bound it",
    "instanceCount": _DEPRECATED,
    "minInstanceCount": _DEPRECATED,
    "keyPair": "nobody logs into a Batch host",
    "lateAfterTimeout": _NO_LATENESS,
    "onLateAction": _NO_LATENESS,
    "maxActiveInstances": "one execution starts per schedule tick; Step Functions does not cap concurrent executions",
    "myComment": "a comment",
    "name": "a display name: states and resources are named after the object's id",
    "generatedScriptsPath": "the staging scripts Data Pipeline generated are not generated: there is nothing to "
    "keep there",
    "pipelineLogUri": "task runner and Batch logs go to the deployment's log bucket",
    "region": _REGION,
    "reportProgressTimeout": "the task runner heartbeats every task; the worker groups' heartbeat timeout ends a "
    "stalled one",
    "resourceRole": "the Batch job runs with the job definition's role, scoped to the deployment's own resources",
    "role": "the workflow acts with the role of its state machine, scoped to the deployment's own resources",
    "runAsUser": _BATCH_HOST,
    "securityGroups": "security groups by name belong to EC2-Classic; " + _BATCH_NETWORK,
    "jdbcProperties": _JAVA,
    "jdbcDriverJarUri": _JAVA,
    "jdbcDriverClass": _JAVA,
    "logUri": _OLD_LOGS,
    "emrLogUri": _OLD_LOGS,
}

# Fields a type applies although the same field of other types is not.
APPLIED_BY_TYPE = frozenset({("EmrCluster", "pipelineLogUri"), ("EmrCluster", "keyPair"),
                             ("EmrCluster", "subnetId"), ("EmrCluster", "maximumRetries"),
                             ("EmrCluster", "retryDelay")})

TYPE_REASONS: dict[tuple[str, str], str] = {
    **{(resource, key): _NOT_ON_OBJECT for resource in ("Ec2Resource", "EmrCluster")
       for key in ("runsOn", "workerGroup")},
    ("EmrCluster", "role"): _EMR_ROLES,
    ("EmrCluster", "resourceRole"): _EMR_ROLES,
    ("EmrCluster", "enableDebugging"): "EMR's debugging tool (SimpleDB) is gone; step logs go to the log bucket",
    ("EmrCluster", "supportedProducts"): "third-party products (MapR) of the AMI 3.x platform do not exist on EMR "
    "releases",
    ("EmrCluster", "securityGroupIds"): _EMR_NETWORK,
    ("EmrCluster", "region"): _REGION,
    ("EmrCluster", "availabilityZone"): "EMR picks the zone from the subnet",
    ("EmrCluster", "amiVersion"): "releaseLabel is given, and chooses the release",
    ("EmrCluster", "resizeClusterBeforeRunning"): "set on an EMR activity, it resizes the core group before the "
    "activity's steps; on the cluster it has no effect",
    ("EmrCluster", "actionOnResourceFailure"): "a cluster that fails while activities run is not replaced: the run "
    "fails and the cluster is terminated (maximumRetries retries only its creation)",
    **{(node, "database"): "only SQL data nodes use a database" for node in ("S3DataNode", "DynamoDBDataNode")},
    ("Ec2Resource", "imageId"): "Batch runs the job in a container image on the compute environment's ECS-optimized "
    "AMI",
    ("Ec2Resource", "subnetId"): "Batch jobs run in the subnets of the Batch compute environment (batch settings)",
    ("Ec2Resource", "securityGroupIds"): "Batch jobs run with the security groups of the Batch compute environment",
    ("Ec2Resource", "spotBidPrice"): "Batch's Spot capacity takes no bid price: the job queue uses Spot capacity "
    "first when batch.spot is on (the default), then On-Demand",
    ("Ec2Resource", "useOnDemandOnLastAttempt"): "the job queue moves to On-Demand capacity by itself when Spot has "
    "none",
    ("HttpProxy", "s3NoProxy"): "the task runner has no option for it: set NO_PROXY to the S3 endpoint in the "
    "runner's environment (the AWS SDK reads it)",
    **{("DynamoDBDataNode", key): _DYNAMODB_NODE for key in ("tableName", "readThroughputPercent",
                                                            "writeThroughputPercent", "dataFormat")},
    ("HiveActivity", "hadoopQueue"): "Hive runs in the cluster's default YARN queue; set mapreduce.job.queuename in "
    "the script",
    ("HiveActivity", "stage"): _NO_STAGING,
    ("PigActivity", "stage"): _NO_STAGING,
    ("S3DataNode", "compression"): "the data is read and copied as it is; the command decompresses it itself",
    ("S3DataNode", "dataFormat"): "files are read and written as they are: the format's columns and separators are "
    "not applied",
    ("S3DataNode", "filePath"): "directoryPath is given too, and names the data",
    ("S3DataNode", "manifestFilePath"): "a manifest is read by Redshift's COPY, which is not mapped",
    ("S3DataNode", "s3EncryptionType"): "objects are encrypted by the bucket's default encryption",
    ("Schedule", "startAt"): "FIRST_ACTIVATION_DATE_TIME, its only value: the schedule starts once the pipeline is "
    "deployed",
}


@dataclass
class FieldAccount:
    applied: list[str] = field(default_factory=list)
    not_applied: list[tuple[str, str]] = field(default_factory=list)  # (field, reason)

    def as_dict(self) -> dict[str, Any]:
        return {"applied": self.applied,
                "notApplied": [{"field": key, "reason": reason} for key, reason in self.not_applied]}


def reason_for(object_type: str, key: str) -> str | None:
    """Why this field of this type is not applied, from the table; None when the planner applies it."""
    if key in STRUCTURAL or (object_type, key) in APPLIED_BY_TYPE:
        return None
    if schema.is_user_field(key):
        return "a user-defined value: no expression that the importer maps refers to it"
    spec = schema.TYPES.get(object_type)
    by_kind = KIND_REASONS.get((spec.kind, key)) if spec else None
    return TYPE_REASONS.get((object_type, key)) or by_kind or REASONS.get(key)


def account(pipeline: Pipeline, unmapped: dict[str, str]) -> dict[str, FieldAccount]:
    """Object id -> its own fields, applied or not with a reason; `unmapped`: objects with no mapping, and why."""
    read_lists: set[int] = set()  # ids of the value lists an object applied: an inherited list is the parent's own
    skipped: dict[int, str] = {}  # ids of the value lists an object read and said it did not apply, with why
    for obj in pipeline.objects.values():
        for key, values in obj.fields.items():
            if key in obj.unapplied:
                skipped.setdefault(id(values), obj.unapplied[key])
            elif key in obj.fields.read:
                read_lists.add(id(values))
    inheritors: dict[int, list[PipelineObject]] = {}  # a value list -> the other objects that inherit it
    for obj in pipeline.objects.values():
        for key, values in obj.fields.items():
            if values is not obj.own.get(key):
                inheritors.setdefault(id(values), []).append(obj)
    accounts: dict[str, FieldAccount] = {}
    for obj in pipeline.objects.values():
        result = FieldAccount()
        for key, values in obj.own.items():
            if key in STRUCTURAL or (id(values) in read_lists and obj.id not in unmapped):
                result.applied.append(key)
                continue
            reason = skipped.get(id(values))
            heirs = inheritors.get(id(values), [])
            if reason is None and obj.id == DEFAULT_ID:  # why the objects that inherit it did not use it
                reason = _heirs_reason(key, heirs, unmapped)
            reason = reason or _own_reason(obj, key, unmapped)
            result.not_applied.append((key, reason or UNEXPLAINED))
        accounts[obj.id] = result
    return accounts


def _heirs_reason(key: str, heirs: list[PipelineObject], unmapped: dict[str, str]) -> str:
    """Why a field of Default did not apply: the reasons of the objects that inherit it and have such a field."""
    if not heirs:
        return reason_for("", key) or "every object that would inherit it sets its own value"
    having = [h for h in heirs if h.spec is None or key in h.spec.fields or schema.is_user_field(key)]
    if not having:
        return reason_for("", key) or "no object that inherits it has such a field"
    reasons = list(dict.fromkeys(_own_reason(heir, key, unmapped) or UNEXPLAINED for heir in having))
    if len(reasons) == 1:
        return f"{reasons[0]} (in each object that inherits it)"
    return "the objects that inherit it do not use it: " + "; ".join(reasons[:3])


def _own_reason(obj: PipelineObject, key: str, unmapped: dict[str, str]) -> str | None:
    """Why `key` of this object (own or inherited) is not applied, when nobody read it there."""
    if obj.id in unmapped:
        return f"{obj.type or 'this object'} is not mapped: {unmapped[obj.id]}"
    spec = schema.TYPES.get(obj.type)
    if spec is not None and key not in spec.fields and not schema.is_user_field(key):
        return f"{obj.type} has no such field: it only inherits it"
    reason = reason_for(obj.type, key)
    if reason is None and not obj.fields.read:
        return UNUSED_OBJECT
    return reason


def type_status(object_type: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The fields of a type the planner applies, and those it does not with their reasons, as the table says."""
    spec = schema.TYPES[object_type]
    applied: list[str] = []
    not_applied: list[tuple[str, str]] = []
    for key in sorted(spec.fields, key=str.lower):
        reason = f"{object_type} is not mapped" if spec.unsupported and key not in STRUCTURAL else None
        reason = reason or reason_for(object_type, key)
        if reason is None:
            applied.append(key)
        else:
            not_applied.append((key, reason))
    return applied, not_applied


def types_table() -> str:
    """The Markdown table of every type and its fields with their status, for docs/importer.md."""
    lines = ["| type | kind | applied | not applied (why) |", "| --- | --- | --- | --- |"]
    for object_type in sorted(schema.TYPES, key=str.lower):
        spec = schema.TYPES[object_type]
        applied, not_applied = type_status(object_type)
        if spec.unsupported:
            why = f"every field: {spec.unsupported}"
        else:
            why = "; ".join(f"`{key}`: {reason}" for key, reason in not_applied) or "-"
        shown = ", ".join(f"`{key}`" for key in applied) or "-"
        lines.append(f"| {object_type} | {spec.kind} | {shown} | {why.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
