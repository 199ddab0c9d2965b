"""What the importer knows about Data Pipeline object types: their kind, fields, required fields, references.

Field lists follow the Data Pipeline object reference. A field whose name starts with "my" followed by a capital
letter or "_" is user-defined and always allowed; runtime fields (starting with "@") are never set by users.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ACTIVITY = "activity"
RESOURCE = "resource"
DATA_NODE = "data node"
PRECONDITION = "precondition"
ACTION = "action"
SCHEDULE = "schedule"
DATABASE = "database"
DATA_FORMAT = "data format"
CONFIGURATION = "configuration"
PROPERTY = "property"
PROXY = "proxy"
SCRIPT_CONFIG = "script configuration"
EBS = "EBS configuration"
DEFAULT = "default"

USER_FIELD = re.compile(r"^my[A-Z_]")

_COMMON = {"name", "type", "parent", "myComment"}
_SCHEDULING = {"schedule", "scheduleType", "failureAndRerunMode", "pipelineLogUri", "maxActiveInstances"}
_RUNNABLE = {
    "attemptStatus", "attemptTimeout", "dependsOn", "lateAfterTimeout", "maximumRetries", "onFail",
    "onLateAction", "onSuccess", "reportProgressTimeout", "retryDelay", "precondition", "workerGroup", "runsOn",
}
_ACTIVITY = _RUNNABLE | _SCHEDULING | {"input", "output"}
_RESOURCE = _RUNNABLE | _SCHEDULING | {
    "actionOnResourceFailure", "actionOnTaskFailure", "availabilityZone", "httpProxy", "initTimeout", "keyPair",
    "region", "resourceRole", "role", "subnetId", "terminateAfter", "useOnDemandOnLastAttempt",
}
_DATA_NODE = _RUNNABLE | _SCHEDULING | {"dataFormat"}
_PRECONDITION = {
    "attemptStatus", "attemptTimeout", "failureAndRerunMode", "lateAfterTimeout", "maximumRetries", "onFail",
    "onLateAction", "onSuccess", "preconditionTimeout", "reportProgressTimeout", "retryDelay", "role",
}
_SQL = {"database", "script", "scriptUri", "scriptArgument", "queue"}


@dataclass(frozen=True)
class ObjectType:
    kind: str
    fields: frozenset[str]
    required: tuple[str, ...] = ()
    one_of: tuple[tuple[str, ...], ...] = ()  # each group: at least one of these fields
    refs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # field -> kinds it may point to


def _type(
    kind: str,
    extra: set[str],
    *,
    base: set[str] | None = None,
    required: tuple[str, ...] = (),
    one_of: tuple[tuple[str, ...], ...] = (),
    refs: dict[str, tuple[str, ...]] | None = None,
) -> ObjectType:
    return ObjectType(
        kind=kind,
        fields=frozenset(
            _COMMON | (base or set()) | extra | set(required) | {f for g in one_of for f in g} | set(refs or {})
        ),
        required=required,
        one_of=one_of,
        refs=refs or {},
    )


_ACTIVITY_REFS: dict[str, tuple[str, ...]] = {
    "runsOn": (RESOURCE,),
    "dependsOn": (ACTIVITY, DATA_NODE),
    "input": (DATA_NODE,),
    "output": (DATA_NODE,),
    "precondition": (PRECONDITION,),
    "onFail": (ACTION,),
    "onSuccess": (ACTION,),
    "onLateAction": (ACTION,),
    "schedule": (SCHEDULE,),
}
_RESOURCE_REFS = {key: _ACTIVITY_REFS[key] for key in ("onFail", "onSuccess", "onLateAction", "schedule")}
_PROXY_REFS: dict[str, tuple[str, ...]] = {"httpProxy": (PROXY,)}
_TASK_CONFIG_REFS: dict[str, tuple[str, ...]] = {
    "preActivityTaskConfig": (SCRIPT_CONFIG,), "postActivityTaskConfig": (SCRIPT_CONFIG,),
}
_GROUP_REFS: dict[str, tuple[str, ...]] = {
    **{f"{group}GroupConfiguration": (CONFIGURATION,) for group in ("master", "core", "task")},
    **{f"{group}EbsConfiguration": (EBS,) for group in ("master", "core", "task")},
}
_DATA_NODE_REFS = {
    **{key: _ACTIVITY_REFS[key] for key in ("precondition", "onFail", "onSuccess", "onLateAction", "schedule")},
    "dataFormat": (DATA_FORMAT,),
    "database": (DATABASE,),
    "dependsOn": (ACTIVITY, DATA_NODE),
    "runsOn": (RESOURCE,),
}

TYPES: dict[str, ObjectType] = {
    "ShellCommandActivity": _type(
        ACTIVITY,
        {"scriptArgument", "stage", "stderr", "stdout"},
        base=_ACTIVITY,
        one_of=(("command", "scriptUri"), ("runsOn", "workerGroup")),
        refs=_ACTIVITY_REFS,
    ),
    "CopyActivity": _type(ACTIVITY, set(), base=_ACTIVITY, one_of=(("runsOn", "workerGroup"),), refs=_ACTIVITY_REFS),
    "EmrActivity": _type(
        ACTIVITY,
        {"step", "preStepCommand", "postStepCommand", "resizeClusterBeforeRunning", "resizeClusterMaxInstances"},
        base=_ACTIVITY,
        one_of=(("runsOn", "workerGroup"),),
        refs=_ACTIVITY_REFS,
    ),
    "HadoopActivity": _type(
        ACTIVITY,
        {"argument", "hadoopQueue", "mainClass"},
        base=_ACTIVITY,
        required=("jarUri",),
        one_of=(("runsOn", "workerGroup"),),
        refs={**_ACTIVITY_REFS, **_TASK_CONFIG_REFS},
    ),
    "HiveActivity": _type(
        ACTIVITY,
        {"hadoopQueue", "scriptVariable", "stage", "resizeClusterBeforeRunning", "resizeClusterMaxInstances"},
        base=_ACTIVITY,
        one_of=(("hiveScript", "scriptUri"), ("runsOn", "workerGroup")),
        refs={**_ACTIVITY_REFS, **_TASK_CONFIG_REFS},
    ),
    "PigActivity": _type(
        ACTIVITY,
        {"scriptVariable", "stage", "resizeClusterBeforeRunning", "resizeClusterMaxInstances", "generatedScriptsPath"},
        base=_ACTIVITY,
        one_of=(("script", "scriptUri"), ("runsOn", "workerGroup")),
        refs={**_ACTIVITY_REFS, **_TASK_CONFIG_REFS},
    ),
    "HiveCopyActivity": _type(
        ACTIVITY, {"filterSql", "generatedScriptsPath", "resizeClusterBeforeRunning", "resizeClusterMaxInstances"},
        base=_ACTIVITY, one_of=(("runsOn", "workerGroup"),), refs={**_ACTIVITY_REFS, **_TASK_CONFIG_REFS},
    ),
    "SqlActivity": _type(
        ACTIVITY, _SQL, base=_ACTIVITY, one_of=(("script", "scriptUri"),),
        refs={**_ACTIVITY_REFS, "database": (DATABASE,)},
    ),
    "RedshiftCopyActivity": _type(
        ACTIVITY, {"commandOptions", "queue", "transformSql"}, base=_ACTIVITY, required=("insertMode",),
        refs=_ACTIVITY_REFS,
    ),
    "Ec2Resource": _type(
        RESOURCE,
        {"associatePublicIpAddress", "imageId", "instanceCount", "instanceType", "minInstanceCount",
         "runAsUser", "securityGroupIds", "securityGroups", "spotBidPrice", "logUri"},  # logUri: older definitions
        base=_RESOURCE,
        required=("role", "resourceRole"),
        refs={**_RESOURCE_REFS, **_PROXY_REFS},
    ),
    "EmrCluster": _type(
        RESOURCE,
        {"additionalMasterSecurityGroupIds", "additionalSlaveSecurityGroupIds", "amiVersion", "applications",
         "bootstrapAction", "coreInstanceBidPrice", "coreInstanceCount", "coreInstanceType",
         "emrManagedMasterSecurityGroupId", "emrManagedSlaveSecurityGroupId", "enableDebugging",
         "hadoopSchedulerType", "masterInstanceBidPrice", "masterInstanceType", "releaseLabel",
         "serviceAccessSecurityGroupId", "supportedProducts", "taskInstanceBidPrice", "taskInstanceCount",
         "taskInstanceType", "resizeClusterBeforeRunning",
         # older definitions still carry these; they are accepted with a note
         "emrLogUri", "installHive"},
        base=_RESOURCE,
        refs={**_RESOURCE_REFS, **_PROXY_REFS, **_GROUP_REFS, "configuration": (CONFIGURATION,)},
    ),
    "S3DataNode": _type(
        DATA_NODE,
        {"compression", "directoryPath", "filePath", "manifestFilePath", "s3EncryptionType"},
        base=_DATA_NODE,
        refs=_DATA_NODE_REFS,
    ),
    "DynamoDBDataNode": _type(
        DATA_NODE,
        {"tableName", "region", "readThroughputPercent", "writeThroughputPercent"},
        base=_DATA_NODE,
        required=("tableName",),
        refs=_DATA_NODE_REFS,
    ),
    "SqlDataNode": _type(
        DATA_NODE, {"table", "selectQuery", "insertQuery", "createTableSql", "database", "schemaName"}, base=_DATA_NODE,
        refs=_DATA_NODE_REFS,
    ),
    # secretId (a datapipe addition, as on the database objects) names the credentials' Secrets Manager secret.
    "MySqlDataNode": _type(
        DATA_NODE,
        {"table", "selectQuery", "insertQuery", "createTableSql", "connectionString", "username", "*password",
         "secretId", "schemaName"},
        base=_DATA_NODE, refs=_DATA_NODE_REFS,
    ),
    "RedshiftDataNode": _type(
        DATA_NODE, {"tableName", "schemaName", "createTableSql", "primaryKeys", "database"}, base=_DATA_NODE,
        refs=_DATA_NODE_REFS,
    ),
    "S3KeyExists": _type(PRECONDITION, set(), base=_PRECONDITION, required=("s3Key",), refs=_RESOURCE_REFS),
    "S3PrefixNotEmpty": _type(PRECONDITION, set(), base=_PRECONDITION, required=("s3Prefix",), refs=_RESOURCE_REFS),
    "Exists": _type(PRECONDITION, set(), base=_PRECONDITION, refs=_RESOURCE_REFS),
    "ShellCommandPrecondition": _type(
        PRECONDITION, {"command", "scriptUri", "scriptArgument", "stdout", "stderr"}, base=_PRECONDITION,
        one_of=(("command", "scriptUri"),), refs=_RESOURCE_REFS,
    ),
    "DynamoDBTableExists": _type(PRECONDITION, set(), base=_PRECONDITION, required=("tableName",),
                                 refs=_RESOURCE_REFS),
    "DynamoDBDataExists": _type(PRECONDITION, set(), base=_PRECONDITION, required=("tableName",),
                                refs=_RESOURCE_REFS),
    "SnsAlarm": _type(ACTION, {"role"}, required=("topicArn", "subject", "message")),
    "Terminate": _type(ACTION, set()),
    # maxActiveInstances on a Schedule is not in the reference, but AWS's own samples set it; it changes nothing here.
    "Schedule": _type(
        SCHEDULE, {"startAt", "startDateTime", "endDateTime", "occurrences", "maxActiveInstances"}, required=("period",)
    ),
    # secretId and workgroupName (Redshift Serverless) are datapipe's additions (docs/databases.md).
    "RdsDatabase": _type(
        DATABASE, {"rdsInstanceId", "username", "*password", "databaseName", "jdbcProperties", "region",
                   "jdbcDriverJarUri", "secretId"},
    ),
    "RedshiftDatabase": _type(
        DATABASE, {"clusterId", "connectionString", "databaseName", "username", "*password", "jdbcProperties",
                   "region", "secretId", "workgroupName"},
    ),
    "JdbcDatabase": _type(
        DATABASE, {"connectionString", "jdbcDriverClass", "jdbcDriverJarUri", "username", "*password",
                   "databaseName", "jdbcProperties", "secretId"},
    ),
    "EmrConfiguration": _type(
        CONFIGURATION, set(), required=("classification",), refs={"configuration": (CONFIGURATION,),
                                                                  "property": (PROPERTY,)},
    ),
    "Property": _type(PROPERTY, set(), required=("key", "value")),
    "HttpProxy": _type(PROXY, {"username", "*password", "windowsDomain", "windowsWorkgroup", "s3NoProxy"},
                       required=("hostname", "port")),
    "ShellScriptConfig": _type(SCRIPT_CONFIG, {"scriptArgument"}, required=("scriptUri",)),
    # The EBS objects have no page of their own in the reference (the EmrCluster page lists them as rows); their
    # fields are those of Data Pipeline's developer guide (EmrCluster examples, "Configure Amazon EBS volumes").
    "EbsConfiguration": _type(EBS, {"ebsOptimized"}, refs={"ebsBlockDeviceConfig": (EBS,)}),
    "EbsBlockDeviceConfig": _type(EBS, {"volumesPerInstance"}, required=("volumeSpecification",),
                                  refs={"volumeSpecification": (EBS,)}),
    "VolumeSpecification": _type(EBS, {"iops"}, required=("sizeInGB", "volumeType")),
}
for _format in ("CSV", "TSV", "Custom", "RegEx", "DynamoDBDataFormat", "DynamoDBExportDataFormat"):
    TYPES[_format] = _type(DATA_FORMAT, {"column", "columnSeparator", "recordSeparator", "escapeChar", "inputRegEx",
                                         "outputFormat"})

# The activities that run as EMR steps on an EmrCluster.
EMR_ACTIVITY_TYPES = ("EmrActivity", "HadoopActivity", "HiveActivity", "PigActivity", "HiveCopyActivity")

# Fields that may hold several values; every other field keeps only one.
LIST_FIELDS = frozenset({
    "step", "preStepCommand", "postStepCommand", "scriptArgument", "argument", "scriptVariable", "dependsOn",
    "input", "output", "precondition", "onFail", "onSuccess", "onLateAction", "applications", "bootstrapAction",
    "configuration", "property", "securityGroupIds", "securityGroups", "column", "primaryKeys", "commandOptions",
    "supportedProducts", "additionalMasterSecurityGroupIds", "additionalSlaveSecurityGroupIds",
    "ebsBlockDeviceConfig",
})

# Fields that hold a reference; a plain string there is an error, as is a reference in any other field.
REFERENCE_FIELDS = frozenset(
    {"parent", "runsOn", "dependsOn", "input", "output", "precondition", "onFail", "onSuccess", "onLateAction",
     "schedule", "dataFormat", "database", "configuration", "property", "httpProxy", "preActivityTaskConfig",
     "postActivityTaskConfig", "ebsBlockDeviceConfig", "volumeSpecification",
     *(f"{group}{what}Configuration" for group in ("master", "core", "task") for what in ("Group", "Ebs"))}
)

# Fields whose values are periods ("N units").
PERIOD_FIELDS = frozenset(
    {"attemptTimeout", "retryDelay", "terminateAfter", "period", "lateAfterTimeout", "reportProgressTimeout",
     "preconditionTimeout", "initTimeout"}
)
INTEGER_FIELDS = frozenset(
    {"maximumRetries", "occurrences", "coreInstanceCount", "taskInstanceCount", "instanceCount",
     "maxActiveInstances", "minInstanceCount", "volumesPerInstance", "sizeInGB", "iops"}
)


def is_user_field(name: str) -> bool:
    return USER_FIELD.match(name) is not None
