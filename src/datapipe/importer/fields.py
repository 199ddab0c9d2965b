"""Nothing dropped in silence: every field of every object is either applied or reported with the reason it is not.

A field is applied when the planner read it through the model (`PipelineObject.fields` records each lookup) and did
not call `PipelineObject.not_applied` for it. Every other field gets its reason from one table (`REASONS` by field,
`KIND_REASONS` by kind of object, `TYPE_REASONS` by type), so a planner that starts reading a field turns it into
"applied" without touching this module. A field written on Default is accounted there, and counts as applied when
any object that inherits it applied it.

Some fields a type applies in one use and not in another (a data node's precondition is checked only for the
activities that read the node); `UNREAD_REASONS` says why when the planner did not read one, and the table of the
type calls them applied. When an error stopped the planning, a field the planner would have applied is reported as
not reached.

The same table gives the status of each field of each type in docs/importer.md (`types_table`); tests check that
the page shows the table, and that no field the planner applies is called "not applied" by the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datapipe.importer import schema
from datapipe.importer.model import DEFAULT_ID, Pipeline, PipelineObject
from datapipe.importer.reader import Ref

# The fallback when nothing explains a field: the walk over the reference (tests/importer/test_fields.py) fails on it.
UNEXPLAINED = "the importer has no mapping for this field"
UNUSED_OBJECT = "no mapped activity uses this object"
UNREACHED = "not reached: an error stopped the planning of what uses it (see the errors)"
RUNS_ON_WINS = "runsOn is given too, and Data Pipeline ignores workerGroup then"
DATA_API = "the Redshift Data API runs the statements from the state machine"

# Fields that shape the definition itself: the type chose the mapping, parent gave the inherited fields.
STRUCTURAL = frozenset({"type", "parent"})

_STATUS_ONLY = "a status Data Pipeline reported at run time, not a setting"
EC2_RESOURCE_LATENESS = ("an Ec2Resource is the Batch job queue, which every run shares and which does not start per "
                         "run; the wait for capacity is part of the activity's task: set lateAfterTimeout on the "
                         "activity")
NO_PRECONDITION_LATENESS = ("a data node is late when its preconditions have not all held by the deadline; none of "
                            "this node's is checked (it has none, or no activity reads it as input): it is never late")
_REGION = "everything runs in the region the stack is deployed to"
_BATCH_NETWORK = "Batch jobs run in the subnets and security groups of the Batch compute environment (batch settings)"
_BATCH_HOST = "Batch runs the job in a container on hosts the compute environment manages"
_EMR_ROLES = "the cluster uses the EMR roles the deployment creates, scoped to its own clusters by tag"
_EMR_NETWORK = "the cluster runs in the network of the deployment (EMR managed security groups)"
_JAVA = "a setting of Data Pipeline's Java runtime and JDBC drivers: the task runner reaches the database with " \
    "Python's drivers"
_CREDENTIALS = "with secretId, the credentials (username and password) come from that Secrets Manager secret; " \
    "username applies beside a *password that refers to a secret parameter"
_PASSWORD_REFUSED = "refused: passwords are not read from definitions (the import fails naming it); write " \
    "#{*myPassword}, a secret parameter whose value names the secret, or give secretId"
_SQL_NODE_FORMAT = "the database reads and writes the rows; the S3DataNode's dataFormat sets the file format"
_NOT_ON_OBJECT = "Data Pipeline does not allow this field on this object; it is ignored"
_DEPRECATED = "deprecated in Data Pipeline; one Batch job runs per activity attempt"
_OLD_LOGS = "an older field: logs go to the deployment's log bucket (pipelineLogUri sets the EMR log folder)"
_PROXY_REFERENCE = (
    "Batch jobs and EMR clusters reach AWS through the deployment's network, not through a proxy; the HttpProxy "
    "object lists the task runner options that apply it on a worker group's host"
)

_FOLLOWS_ACTIVITY = "the activities' schedule decides when a run starts; this object is used within the activity's run"
_CASCADE_OF_ACTIVITY = "only an activity's failure cascades (to the activities that consume it): set it on " \
    "the activity"
_PROGRESS_OF_ACTIVITY = "only the task of an activity on a worker group reports progress: set it on the activity"
_RUNS_OF_ACTIVITIES = "a run is the whole pipeline: the activities' maxActiveInstances bounds how many run at once"
_ONE_CALL = "each check is one call, bounded by preconditionTimeout, retryDelay and maximumRetries"
_RUN_BY_ACTIVITY = "the activity's attemptTimeout, maximumRetries and retryDelay bound and retry its task; this " \
    "object has no task of its own"
_NO_STAGING = "the tables Data Pipeline generated from data formats are not generated; the script gets the paths as " \
    "variables (input1.., output1..)"
_NO_FORMAT = "Redshift COPY and SQL copies apply only the format's type (CSV or TSV), and a HiveCopyActivity its " \
    "columns (and the separator of Custom); this field is applied by none"
_DYNAMODB_IN_EMR = "an EMR step reads this node only through its expressions (#{input.tableName})"
_EMR_ONLY = "EMR activities run on the EmrCluster of runsOn"

KIND_REASONS: dict[tuple[str, str], str] = {
    **{(kind, key): _FOLLOWS_ACTIVITY for kind in (schema.RESOURCE, schema.DATA_NODE, schema.PRECONDITION)
       for key in ("schedule", "scheduleType")},
    **{(kind, "failureAndRerunMode"): _CASCADE_OF_ACTIVITY
       for kind in (schema.RESOURCE, schema.DATA_NODE, schema.PRECONDITION)},
    **{(kind, "reportProgressTimeout"): _PROGRESS_OF_ACTIVITY for kind in (schema.RESOURCE, schema.DATA_NODE)},
    **{(kind, "maxActiveInstances"): _RUNS_OF_ACTIVITIES for kind in (schema.RESOURCE, schema.DATA_NODE,
                                                                     schema.SCHEDULE)},
    **{(kind, key): _RUN_BY_ACTIVITY for kind in (schema.RESOURCE, schema.DATA_NODE)
       for key in ("attemptTimeout", "maximumRetries", "retryDelay")},
    **{(schema.PRECONDITION, key): _ONE_CALL for key in ("attemptTimeout", "reportProgressTimeout")},
    (schema.PRECONDITION, "role"): "not assumed: the state machine's own role checks, allowed to read only what the "
    "check names (a shell check runs with the role of where its activity runs)",
    (schema.DATABASE, "username"): _CREDENTIALS,
    (schema.DATABASE, "*password"): _PASSWORD_REFUSED,
    (schema.DATABASE, "region"): "the Redshift Data API is called in the stack's region; a task runner reaches the "
    "database at its connection's host",
    **{(kind, key): "only an activity runs on a resource or worker group here; this object is used by the activity "
       "that refers to it" for kind in (schema.DATA_NODE, schema.PRECONDITION) for key in ("runsOn", "workerGroup")},
    (schema.RESOURCE, "precondition"): "preconditions are checked before activities and on their input data nodes; "
    "a resource has none",
    **{(kind, "dependsOn"): "only activities wait for others: an activity that reads a data node waits for the "
       "activities that write it" for kind in (schema.RESOURCE, schema.DATA_NODE)},
    **{(schema.DATA_FORMAT, key): _NO_FORMAT for key in ("columnSeparator", "escapeChar", "recordSeparator",
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
    "httpProxy": _PROXY_REFERENCE,
    "initTimeout": "starting the host is part of the task; terminateAfter and attemptTimeout bound it",
    "instanceCount": _DEPRECATED,
    "minInstanceCount": _DEPRECATED,
    "keyPair": "nobody logs into a Batch host",
    "myComment": "a comment",
    "name": "a display name: states and resources are named after the object's id",
    "generatedScriptsPath": "the staging scripts Data Pipeline generated are not generated: there is nothing to "
    "keep there",
    "pipelineLogUri": "task runner and Batch logs go to the deployment's log bucket",
    "region": _REGION,
    "resourceRole": "the Batch job runs with the job definition's role, scoped to the deployment's own resources",
    "role": "the workflow acts with the role of its state machine, scoped to the deployment's own resources",
    "runAsUser": _BATCH_HOST,
    **{key: "not redirected: the task runner and Batch keep a task's output in their logs"
       for key in ("stdout", "stderr")},
    "securityGroups": "security groups by name belong to EC2-Classic; " + _BATCH_NETWORK,
    "jdbcProperties": _JAVA,
    "jdbcDriverJarUri": _JAVA,
    "logUri": _OLD_LOGS,
    "emrLogUri": _OLD_LOGS,
}

# Fields a type applies although the same field of other types is not.
APPLIED_BY_TYPE = frozenset({("EmrCluster", "pipelineLogUri"), ("EmrCluster", "keyPair"),
                             ("EmrCluster", "subnetId"), ("EmrCluster", "maximumRetries"),
                             ("EmrCluster", "retryDelay"), ("HiveCopyActivity", "generatedScriptsPath"),
                             ("Custom", "columnSeparator")})

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
    **{("Ec2Resource", key): "the Ec2Resource is the Batch job queue, which neither fails nor ends: the "
       "activities' own onFail and onSuccess fire" for key in ("onFail", "onSuccess")},
    **{("Ec2Resource", key): EC2_RESOURCE_LATENESS for key in ("lateAfterTimeout", "onLateAction")},
    ("Ec2Resource", "useOnDemandOnLastAttempt"): "the job queue moves to On-Demand capacity by itself when Spot has "
    "none",
    ("HttpProxy", "s3NoProxy"): "the task runner has no option for it: set NO_PROXY to the S3 endpoint in the "
    "runner's environment (the AWS SDK reads it)",
    **{(node, "dataFormat"): _SQL_NODE_FORMAT for node in ("SqlDataNode", "MySqlDataNode", "RedshiftDataNode")},
    ("MySqlDataNode", "database"): "a MySqlDataNode is reached through its own connectionString and secretId",
    ("MySqlDataNode", "username"): _CREDENTIALS,
    ("MySqlDataNode", "*password"): _PASSWORD_REFUSED,
    **{(activity, "queue"): "Redshift's query group is not set: the statements run in the default WLM queue"
       for activity in ("SqlActivity", "RedshiftCopyActivity")},
    **{("RedshiftCopyActivity", key): DATA_API for key in ("runsOn", "workerGroup")},
    ("RedshiftCopyActivity", "reportProgressTimeout"): DATA_API + ", which waits for them: no task reports progress",
    **{(activity, "reportProgressTimeout"): _EMR_ONLY + ", whose steps report no progress: attemptTimeout bounds them"
       for activity in schema.EMR_ACTIVITY_TYPES},
    **{(activity, "workerGroup"): _EMR_ONLY + " (without one they are not mapped: a worker group's own cluster is "
       "not reachable from Step Functions)" for activity in schema.EMR_ACTIVITY_TYPES},
    ("HiveActivity", "hadoopQueue"): "Hive runs in the cluster's default YARN queue; set mapreduce.job.queuename in "
    "the script",
    ("HiveActivity", "stage"): _NO_STAGING,
    ("PigActivity", "stage"): _NO_STAGING,
    ("S3DataNode", "manifestFilePath"): "Redshift COPY and SQL copies read the files of filePath or directoryPath; "
    "a manifest is not read",
    ("S3DataNode", "s3EncryptionType"): "objects are encrypted by the bucket's default encryption",
}

# Fields a type applies in some uses only: why, when the planner did not read one. The types table calls them applied.
UNREAD_REASONS: dict[tuple[str, str], str] = {
    (schema.DATA_NODE, "precondition"): "checked before each activity that reads this data node; no planned "
    "activity reads it",
    **{(schema.DATA_NODE, key): "a data node's actions fire when a precondition checked for an activity that reads "
       "it gives up or all hold; no such check was planned" for key in ("onFail", "onSuccess")},
    **{(kind, key): "watched for each activity that uses this object (a data node it reads, a precondition it "
       "checks, the EmrCluster it runs on); no planned activity does" for kind in (schema.DATA_NODE,
                                                                                 schema.PRECONDITION)
       for key in ("lateAfterTimeout", "onLateAction")},
    **{("EmrCluster", key): "watched while the cluster is created, when an activity runs on it; none does"
       for key in ("lateAfterTimeout", "onLateAction")},
    ("S3DataNode", "compression"): "applied by Redshift COPY and SQL copies; a shell command or EMR step reads the "
    "files as they are",
    ("S3DataNode", "dataFormat"): "applied by Redshift COPY and SQL copies (CSV or TSV); a shell command or EMR step "
    "reads the files as they are",
    ("S3DataNode", "filePath"): "directoryPath is given too, and names the data",
    **{("DynamoDBDataNode", key): "applied by a RedshiftCopyActivity's COPY and a HiveCopyActivity that reads it "
       "(tableName by an Exists precondition too); " + _DYNAMODB_IN_EMR for key in ("tableName",
                                                                                   "readThroughputPercent")},
    ("DynamoDBDataNode", "writeThroughputPercent"): "applied by a HiveCopyActivity that writes the table; "
    + _DYNAMODB_IN_EMR,
    ("DynamoDBDataNode", "dataFormat"): "given to a RedshiftCopyActivity's COPY; " + _DYNAMODB_IN_EMR,
    (schema.DATA_FORMAT, "column"): "applied by a HiveCopyActivity (the columns of the Hive tables it generates); "
    "Redshift COPY and SQL copies apply only the format's type",
    ("Custom", "columnSeparator"): "applied by a HiveCopyActivity (the field separator of the Hive table it "
    "generates); Redshift COPY and SQL copies apply only the format's type",
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


def unread_reason(object_type: str, key: str) -> str | None:
    """Why a field the type applies in some uses was not applied in this one (`UNREAD_REASONS`)."""
    spec = schema.TYPES.get(object_type)
    by_kind = UNREAD_REASONS.get((spec.kind, key)) if spec else None
    return UNREAD_REASONS.get((object_type, key)) or by_kind


def account(pipeline: Pipeline, unmapped: dict[str, str], *, planning_stopped: bool = False
            ) -> dict[str, FieldAccount]:
    """Object id -> its own fields, applied or not with a reason; `unmapped`: objects with no mapping, and why;
    `planning_stopped`: an error stopped the planning somewhere, so a field nobody read may not have been reached."""
    read_lists: set[int] = set()  # ids of the value lists an object applied: an inherited list is the parent's own
    skipped: dict[int, str] = {}  # ids of the value lists an object read and said it did not apply, with why
    for obj in pipeline.objects.values():
        for key, values in obj.fields.items():
            if key in obj.unapplied:
                skipped.setdefault(id(values), obj.unapplied[key])
            elif key in obj.fields.read:
                read_lists.add(id(values))
    used = {o.id for o in pipeline.of_kind(schema.ACTIVITY)}  # activities, and what mapped objects refer to
    for obj in pipeline.objects.values():
        if obj.id not in unmapped:
            used.update(v.target for key, values in obj.own.items() if key != "parent" for v in values
                        if isinstance(v, Ref))
    unreached = used if planning_stopped else set()  # what an error may have kept the planner from
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
                reason = _heirs_reason(key, heirs, unmapped, used, unreached)
            reason = reason or _own_reason(obj, key, unmapped, used, unreached)
            result.not_applied.append((key, reason or UNEXPLAINED))
        accounts[obj.id] = result
    return accounts


def _heirs_reason(key: str, heirs: list[PipelineObject], unmapped: dict[str, str], used: set[str],
                  unreached: set[str]) -> str:
    """Why a field of Default did not apply: the reasons of the objects that inherit it and have such a field."""
    if not heirs:
        return reason_for("", key) or "every object that would inherit it sets its own value"
    having = [h for h in heirs if h.spec is None or key in h.spec.fields or schema.is_user_field(key)]
    if not having:
        return reason_for("", key) or "no object that inherits it has such a field"
    reasons = list(dict.fromkeys(_own_reason(heir, key, unmapped, used, unreached) or UNEXPLAINED
                                 for heir in having))
    if len(reasons) == 1:
        return f"{reasons[0]} (in each object that inherits it)"
    return "the objects that inherit it do not use it: " + "; ".join(reasons[:3])


def _own_reason(obj: PipelineObject, key: str, unmapped: dict[str, str], used: set[str],
                unreached: set[str]) -> str | None:
    """Why `key` of this object (own or inherited) is not applied, when nobody read it there."""
    if obj.id in unmapped:
        return f"{obj.type or 'this object'} is not mapped: {unmapped[obj.id]}"
    spec = schema.TYPES.get(obj.type)
    if spec is not None and key not in spec.fields and not schema.is_user_field(key):
        return f"{obj.type} has no such field: it only inherits it"
    reason = reason_for(obj.type, key) or unread_reason(obj.type, key)
    if reason is None and obj.id in unreached:
        return UNREACHED
    if reason is None and (obj.id not in used or not obj.fields.read):
        return UNUSED_OBJECT
    return reason


def type_status(object_type: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The fields of a type the planner applies, and those it does not with their reasons, as the table says."""
    spec = schema.TYPES[object_type]
    applied: list[str] = []
    not_applied: list[tuple[str, str]] = []
    for key in sorted(spec.fields, key=str.lower):
        reason = reason_for(object_type, key)
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
        why = "; ".join(f"`{key}`: {reason}" for key, reason in not_applied) or "-"
        shown = ", ".join(f"`{key}`" for key in applied) or "-"
        lines.append(f"| {object_type} | {spec.kind} | {shown} | {why.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
