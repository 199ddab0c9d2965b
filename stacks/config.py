"""Settings: one frozen, typed object built from cdk.json context, `-c key=value` and an optional config file.

Only app.py calls `load_settings`; constructs receive the section they need as typed keyword arguments.

Keys are the camelCase form of the field names. A section is addressed with a dot on the command line
(`-c storage.logExpirationDays=90`) and as a nested object in a config file (`{"storage": {...}}`).
Command-line values arrive as strings and are converted to the field's type; a config file may use JSON
types directly. An unknown key or a bad value raises `SettingsError` with one line naming the key.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from datapipe.bundles.names import CLASS_PATH_PATTERN, module_slug
from datapipe.errors import DatapipeError
from datapipe.jsontext import parse_json, shown
from datapipe.naming import NAME_PATTERN


class SettingsError(DatapipeError):
    """A setting is unknown or has a value outside what is allowed."""


def _rule(
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    pattern: str | None = None,
    describe: str = "",
) -> dict[str, Any]:
    """Validation metadata for a field: bounds for numbers, a regular expression for strings."""
    return {"minimum": minimum, "maximum": maximum, "pattern": pattern, "describe": describe}


@dataclass(frozen=True)
class StorageSettings:
    """Buckets for logs, data (the bundle remote and EMR output) and server access logs."""

    log_transition_days: int = field(default=30, metadata=_rule(minimum=30, maximum=3650))  # S3 needs 30+ for IA
    log_expiration_days: int = field(default=365, metadata=_rule(minimum=2, maximum=3650))
    access_log_expiration_days: int = field(default=365, metadata=_rule(minimum=1, maximum=3650))
    noncurrent_version_expiration_days: int = field(default=90, metadata=_rule(minimum=1, maximum=3650))
    # The log buckets are versioned so that a log cannot be overwritten or deleted unseen; old versions go sooner.
    log_noncurrent_version_expiration_days: int = field(default=30, metadata=_rule(minimum=1, maximum=3650))


# The seed's sample Hive query over the regional EMR samples bucket. Placeholders filled in by the construct:
# {region}, {data_bucket}, {log_bucket} and {step} (the state name in kebab case, so outputs do not collide).
SAMPLE_HIVE_STEP_ARGS = (
    "hive-script",
    "--run-hive-script",
    "--args",
    "-f",
    "s3://{region}.elasticmapreduce.samples/cloudfront/code/Hive_CloudFront.q",
    "-d",
    "INPUT=s3://{region}.elasticmapreduce.samples",
    "-d",
    "OUTPUT=s3://{data_bucket}/emr-workflow/{step}/",
)
EMR_INSTANCE_TYPES = ("m5.xlarge", "m5a.xlarge", "m6i.xlarge")  # several types: a fleet falls back when one is short


@dataclass(frozen=True)
class EmrStepSettings:
    """One EMR step of the workflow (Step_One by default). `asynchronous` adds the step without waiting for it."""

    name: str = field(default="The first step", metadata=_rule(pattern=r"^[^\s].{0,255}$", describe="a step name"))
    jar: str = field(default="command-runner.jar", metadata=_rule(pattern=r"^\S{1,1024}$", describe="a jar path"))
    args: tuple[str, ...] = SAMPLE_HIVE_STEP_ARGS
    main_class: str | None = None
    action_on_failure: Literal["CONTINUE", "CANCEL_AND_WAIT", "TERMINATE_CLUSTER"] = "CONTINUE"
    asynchronous: bool = False


@dataclass(frozen=True)
class EmrSecondStepSettings(EmrStepSettings):
    """Step_Two: added asynchronously and cancelled after a wait, as in the seed."""

    name: str = field(default="The second step", metadata=_rule(pattern=r"^[^\s].{0,255}$", describe="a step name"))
    asynchronous: bool = True


@dataclass(frozen=True)
class EmrThirdStepSettings(EmrStepSettings):
    name: str = field(default="The third step", metadata=_rule(pattern=r"^[^\s].{0,255}$", describe="a step name"))


@dataclass(frozen=True)
class EmrSettings:
    """The EMR workflow: the cluster it creates, its three steps, the optional fleet resize and the safety nets."""

    cluster_name: str = field(default="WorkflowCluster", metadata=_rule(pattern=r"^[\w.-][\w .-]{0,255}$"))
    release_label: str = field(
        default="emr-7.12.0", metadata=_rule(pattern=r"^emr-\d+\.\d+\.\d+$", describe="a release label like emr-7.12.0")
    )
    applications: tuple[str, ...] = ("Hive",)
    primary_instance_types: tuple[str, ...] = field(
        default=EMR_INSTANCE_TYPES, metadata=_rule(pattern=r"^[a-z0-9-]+\.[a-z0-9]+$", describe="an instance type")
    )
    core_instance_types: tuple[str, ...] = field(
        default=EMR_INSTANCE_TYPES, metadata=_rule(pattern=r"^[a-z0-9-]+\.[a-z0-9]+$", describe="an instance type")
    )
    core_on_demand_capacity: int = field(default=1, metadata=_rule(minimum=0, maximum=1000))
    core_spot_capacity: int = field(default=0, metadata=_rule(minimum=0, maximum=1000))
    subnet_ids: tuple[str, ...] = field(default=(), metadata=_rule(pattern=r"^subnet-[0-9a-f]+$", describe="a subnet"))
    # At least 2, so that Step_One and Step_Two run side by side instead of queueing.
    step_concurrency_level: int = field(default=2, metadata=_rule(minimum=2, maximum=256))
    # EMR terminates a cluster idle this long: the last safety net when everything else failed.
    idle_timeout_minutes: int = field(default=60, metadata=_rule(minimum=1, maximum=10080))
    execution_timeout_minutes: int = field(default=360, metadata=_rule(minimum=5, maximum=525600))
    step_one: EmrStepSettings = EmrStepSettings()
    step_two: EmrSecondStepSettings = EmrSecondStepSettings()
    step_three: EmrThirdStepSettings = EmrThirdStepSettings()
    # A resize of the core fleet placed before a heavy step (None: no resize state).
    resize_before: Literal["Step_One", "Step_Three"] | None = None
    resize_core_on_demand_capacity: int = field(default=2, metadata=_rule(minimum=0, maximum=1000))
    resize_core_spot_capacity: int = field(default=0, metadata=_rule(minimum=0, maximum=1000))
    # Version of the AWS-managed Powertools for AWS Lambda (Python) v3 layer used by the workflow's functions.
    powertools_layer_version: int = field(default=27, metadata=_rule(minimum=1, maximum=1000))
    # How the workflow waits for its cluster and steps: EMR's events through a callback (within seconds), or the
    # native .sync integrations, which Step Functions checks every 60 s, then every 300 s (docs/emr-workflow.md).
    wait_mode: Literal["events", "sync"] = "events"

    def __post_init__(self) -> None:
        if not self.primary_instance_types or not self.core_instance_types:
            raise SettingsError("setting 'emr.primaryInstanceTypes' and 'emr.coreInstanceTypes' need an instance type")
        if not self.step_two.asynchronous:
            raise SettingsError(
                "setting 'emr.stepTwo.asynchronous' must stay true: Cancel_Step_Two cancels the step by the id that "
                "the asynchronous add returns"
            )
        if self.core_on_demand_capacity + self.core_spot_capacity < 1:
            raise SettingsError("setting 'emr.coreOnDemandCapacity' plus 'emr.coreSpotCapacity' must be at least 1")
        if self.resize_before and self.resize_core_on_demand_capacity + self.resize_core_spot_capacity < 1:
            raise SettingsError(
                "setting 'emr.resizeCoreOnDemandCapacity' plus 'emr.resizeCoreSpotCapacity' must be at least 1"
            )


# Activity names are at most 80 characters: `<prefix>-<stage>-activity-` leaves 28 for the worker group.
WORKER_GROUP_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,27}$"


@dataclass(frozen=True)
class WorkerGroupSettings:
    """Worker groups served by `datapipe taskrunner`: one Step Functions activity each, plus the sample pipeline."""

    names: tuple[str, ...] = field(
        default=("wg-12345",),
        metadata=_rule(pattern=WORKER_GROUP_PATTERN, describe="a worker group name such as wg-12345"),
    )
    heartbeat_seconds: int = field(default=60, metadata=_rule(minimum=1, maximum=86400))
    task_timeout_seconds: int = field(default=3600, metadata=_rule(minimum=1, maximum=31536000))
    # Retries when the runner is lost (heartbeat or task timeout) or stopped by a second signal.
    retries: int = field(default=2, metadata=_rule(minimum=0, maximum=10))
    retry_interval_seconds: int = field(default=10, metadata=_rule(minimum=1, maximum=3600))
    # Retries when the command itself exits non-zero (Data Pipeline's maximumRetries).
    command_retries: int = field(default=0, metadata=_rule(minimum=0, maximum=10))
    runner_role: bool = False

    def __post_init__(self) -> None:
        if not self.names:
            raise SettingsError("setting 'workerGroups.names' must name at least one worker group")
        if len(set(self.names)) != len(self.names):
            raise SettingsError(f"setting 'workerGroups.names' lists a worker group twice: {', '.join(self.names)}")
        if self.heartbeat_seconds >= self.task_timeout_seconds:
            raise SettingsError(
                "setting 'workerGroups.heartbeatSeconds' must be less than 'workerGroups.taskTimeoutSeconds' "
                f"({self.heartbeat_seconds} >= {self.task_timeout_seconds})"
            )


WORKFLOW_PATTERN = r"^[a-z][a-z0-9-]{0,63}$"
SCHEDULE_EXPRESSION_PATTERN = (
    r"^(cron\((\S+ ){5}\S+\)|rate\([1-9][0-9]* (minutes?|hours?|days?)\)|at\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\))$"
)
_WORKFLOW_RULE = _rule(pattern=WORKFLOW_PATTERN, describe="a workflow name such as emr-workflow")


@dataclass(frozen=True)
class ScheduleSettings:
    """An EventBridge Scheduler schedule that starts one workflow with a fixed input (JSON object as text)."""

    workflow: str = field(default="emr-workflow", metadata=_WORKFLOW_RULE)
    expression: str = field(
        default="cron(0 2 * * ? *)",
        metadata=_rule(pattern=SCHEDULE_EXPRESSION_PATTERN, describe="cron(6 fields), rate(N unit) or at(time)"),
    )
    time_zone: str = "UTC"
    flexible_window_minutes: int = field(default=15, metadata=_rule(minimum=0, maximum=1440))  # 0 turns it off
    input: str = '{"CreateCluster": true, "TerminateCluster": true}'
    # Off until someone opts in: a first deploy should not start paid EMR clusters on its own.
    enabled: bool = False


@dataclass(frozen=True)
class ObjectCreatedRuleSettings:
    """An EventBridge rule: an object created under `prefix` of the data bucket starts `workflow`."""

    prefix: str = field(
        default="incoming/", metadata=_rule(pattern=r"^[^/\s*?][^\s*?]{0,1023}$", describe="an S3 key prefix")
    )
    workflow: str = field(default="transform", metadata=_WORKFLOW_RULE)
    input: str = "{}"  # merged with {"Object": {"Bucket", "Key", "Size", "ETag", "Time"}} of the created object
    enabled: bool = True


@dataclass(frozen=True)
class TriggerSettings:
    """Schedules and object-created rules that start workflows; alerts, alarms and a dashboard when they fail."""

    schedules: dict[str, ScheduleSettings] = field(default_factory=lambda: {"emr-daily": ScheduleSettings()})
    # Present but off, like the schedule: the transform needs an input (job, bundles, parameters) only a user can give.
    object_created: dict[str, ObjectCreatedRuleSettings] = field(
        default_factory=lambda: {"incoming": ObjectCreatedRuleSettings(enabled=False)}
    )
    alert_email: str | None = field(
        default=None, metadata=_rule(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", describe="an e-mail address")
    )
    monitored_workflows: tuple[str, ...] = field(default=("emr-workflow", "transform"), metadata=_WORKFLOW_RULE)
    retry_attempts: int = field(default=3, metadata=_rule(minimum=0, maximum=185))
    max_event_age_minutes: int = field(default=1440, metadata=_rule(minimum=1, maximum=1440))

    def __post_init__(self) -> None:
        for kind, entries in (("schedules", self.schedules), ("objectCreated", self.object_created)):
            for name, entry in entries.items():
                key = f"triggers.{kind}.{name}"
                if re.fullmatch(r"^[a-z][a-z0-9-]{0,39}$", name) is None:
                    raise SettingsError(f"setting '{key}': the name must be lower-case letters, digits and dashes")
                _json_object_setting(entry.input, key=f"{key}.input")
        for name, schedule in self.schedules.items():
            if _unknown_time_zone(schedule.time_zone):
                raise SettingsError(
                    f"setting 'triggers.schedules.{name}.timeZone' must be an IANA time zone such as Europe/Paris, "
                    f"got {schedule.time_zone!r}"
                )

    @property
    def workflows(self) -> tuple[str, ...]:
        """Every workflow these settings start or watch, each once, in a stable order."""
        named = [*self.monitored_workflows]
        named += [s.workflow for s in self.schedules.values()] + [r.workflow for r in self.object_created.values()]
        return tuple(dict.fromkeys(named))


def _unknown_time_zone(name: str) -> bool:
    """Whether this machine's tz data lacks `name`; without tz data at all, the service is left to judge.

    A name that loads as a zone is known: that reads one file, where listing every zone reads some 600 and took 50 ms
    of each synthesis. The list is consulted for the rest, and for the trees and link that load but are not zone
    names (posix/..., right/..., posixrules), so the answer is the list's.
    """
    import zoneinfo

    if name.split("/", 1)[0] not in ("posix", "right", "posixrules"):
        try:
            zoneinfo.ZoneInfo(name)
            return False
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
    known = zoneinfo.available_timezones()
    return bool(known) and name not in known


def _json_object_setting(text: str, *, key: str) -> dict[str, Any]:
    value = parse_json(text, what=f"setting '{key}' (a JSON object)", error=SettingsError)
    if not isinstance(value, dict):
        raise SettingsError(f"setting '{key}' must be a JSON object, got {shown(text)}")
    return value


VPC_ID_PATTERN = r"^vpc-([0-9a-f]{8}|[0-9a-f]{17})$"
IMAGE_TAG_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
# Fargate's allowed task sizes: vCPUs -> (least, most) MiB, in steps of 1024 MiB.
FARGATE_MEMORY_MIB = {1: (2048, 8192), 2: (4096, 16384), 4: (8192, 30720), 8: (16384, 61440), 16: (32768, 122880)}


@dataclass(frozen=True)
class TransformSettings:
    """A transform deployed ahead of runs: its ECR repository and its Batch job definition."""

    class_path: str = field(
        default="examples.transforms.wordcount.WordCount",
        metadata=_rule(pattern=CLASS_PATH_PATTERN, describe="a class path such as module.submodule.Class"),
    )
    image_tag: str = field(default="latest", metadata=_rule(pattern=IMAGE_TAG_PATTERN, describe="an image tag"))
    vcpus: int = field(default=1, metadata=_rule(minimum=1, maximum=192))
    memory_mib: int = field(default=2048, metadata=_rule(minimum=512, maximum=1048576))


@dataclass(frozen=True)
class BatchSettings:
    """AWS Batch for transforms: where jobs run (VPC, EC2 Spot then On-Demand, or Fargate) and what is deployed."""

    # None: a small VPC of isolated subnets (no NAT gateway) with the endpoints jobs need; else an existing VPC.
    vpc_id: str | None = field(
        default=None, metadata=_rule(pattern=VPC_ID_PATTERN, describe="a VPC id such as vpc-0a1b2c3d")
    )
    compute: Literal["ec2", "fargate"] = "ec2"
    spot: bool = True  # queue Spot capacity first, On-Demand second
    max_vcpus: int = field(default=16, metadata=_rule(minimum=1, maximum=10000))
    job_timeout_minutes: int = field(default=240, metadata=_rule(minimum=1, maximum=20160))
    transforms: tuple[TransformSettings, ...] = (TransformSettings(),)

    def __post_init__(self) -> None:
        slugs = [module_slug(t.class_path) for t in self.transforms]
        for slug in slugs:
            if slugs.count(slug) > 1:
                raise SettingsError(f"setting 'batch.transforms' names two transforms of module '{slug}' (one each)")
        for transform in self.transforms:
            if transform.vcpus > self.max_vcpus:
                raise SettingsError(
                    f"setting 'batch.transforms' gives {transform.class_path} {transform.vcpus} vCPUs, more than "
                    f"'batch.maxVcpus' ({self.max_vcpus})"
                )
            low, high = FARGATE_MEMORY_MIB.get(transform.vcpus, (0, -1))
            fits_fargate = low <= transform.memory_mib <= high and transform.memory_mib % 1024 == 0
            if self.compute == "fargate" and not fits_fargate:
                raise SettingsError(
                    f"setting 'batch.transforms' gives {transform.class_path} {transform.vcpus} vCPUs and "
                    f"{transform.memory_mib} MiB, a task size that Fargate does not offer"
                )


@dataclass(frozen=True)
class PipelineSettings:
    """Imported Data Pipeline definitions: where they are and what the importer assumes where they are silent."""

    folder: str = "pipelines"  # relative to the project; every *.json in it (not *.values.json) is deployed
    # While working on one pipeline: synthesize its stack only (and the shared pipelines stack), not the others'.
    only: str = field(
        default="",
        metadata=_rule(pattern=r"^([a-z0-9]+(-[a-z0-9]+)*)?$",
                       describe="a pipeline's name, its file name in lower case with dashes (my-pipeline)"),
    )
    default_release_label: str = field(
        default="emr-7.5.0",
        metadata=_rule(pattern=r"^emr-\d+\.\d+\.\d+$", describe="an EMR release such as emr-7.5.0"),
    )
    default_instance_type: str = field(
        default="m5.xlarge", metadata=_rule(pattern=r"^[a-z0-9]+\.[a-z0-9]+$", describe="an instance type")
    )
    precondition_interval_seconds: int = field(default=60, metadata=_rule(minimum=5, maximum=3600))
    precondition_max_checks: int = field(default=60, metadata=_rule(minimum=1, maximum=1000))
    # The image of the shell job definition that runs ShellCommandActivity/CopyActivity of an Ec2Resource on Batch.
    batch_image: str = "amazonlinux:2023"
    # The image of the job definitions that run SqlActivity/CopyActivity of an Ec2Resource on Batch: it must have
    # datapipe[sql] installed (`datapipe taskrunner exec-task`). Required once a pipeline does.
    sql_image: str = ""
    # Schedules whose start is in the past (docs/importer.md, "Schedules"): what `datapipe schedule catch-up` starts.
    catch_up: Literal["none", "last", "all"] = "none"
    catch_up_limit: int = field(default=100, metadata=_rule(minimum=1, maximum=1000))  # the most runs `all` starts
    # maxActiveInstances: a run over the limit checks again this often, this many times, then fails.
    active_runs_check_seconds: int = field(default=60, metadata=_rule(minimum=1, maximum=3600))
    active_runs_max_checks: int = field(default=1000, metadata=_rule(minimum=1, maximum=1500))


@dataclass(frozen=True)
class Settings:
    """Everything the app can be configured with. Built once, in app.py."""

    stage: str = field(default="dev", metadata=_rule(pattern=NAME_PATTERN, describe="a lower-case name"))
    prefix: str = field(default="datapipe", metadata=_rule(pattern=NAME_PATTERN, describe="a lower-case name"))
    account: str | None = field(default=None, metadata=_rule(pattern=r"^\d{12}$", describe="a 12-digit account id"))
    region: str | None = field(
        default=None, metadata=_rule(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$", describe="a region such as eu-west-1")
    )
    removal_policy: Literal["retain", "destroy"] = "retain"
    config_file: str | None = None
    storage: StorageSettings = StorageSettings()
    emr: EmrSettings = EmrSettings()
    triggers: TriggerSettings = field(default_factory=TriggerSettings)
    worker_groups: WorkerGroupSettings = WorkerGroupSettings()
    batch: BatchSettings = BatchSettings()
    pipelines: PipelineSettings = PipelineSettings()

    def __post_init__(self) -> None:
        if self.storage.log_expiration_days <= self.storage.log_transition_days:
            raise SettingsError(
                "setting 'storage.logExpirationDays' must be greater than 'storage.logTransitionDays' "
                f"({self.storage.log_expiration_days} <= {self.storage.log_transition_days})"
            )

    def resource_name(self, suffix: str) -> str:
        """A physical name shared by every resource of this stage: `<prefix>-<stage>-<suffix>`."""
        return f"{self.prefix}-{self.stage}-{suffix}"


# ---------------------------------------------------------------------------------------------------------------------
# Loading


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _is_cdk_key(key: str) -> bool:
    """Feature flags, lookups and CDK internals use characters our camelCase keys never have."""
    return re.fullmatch(r"[A-Za-z][A-Za-z0-9.]*", key) is None


def load_settings(context: Mapping[str, Any], config_file_values: Mapping[str, Any] | None = None) -> Settings:
    """Build Settings from the config file's values overlaid with the CDK context (context wins)."""
    merged: dict[str, Any] = {}
    for source in (config_file_values or {}, context):
        for key, value in source.items():
            if _is_cdk_key(key):
                continue
            _merge_dotted(merged, key.split("."), value)
    return _build(Settings, merged, path="")


def _merge_dotted(target: dict[str, Any], parts: list[str], value: Any) -> None:
    head, *rest = parts
    if not rest:
        if isinstance(value, Mapping) and isinstance(target.get(head), dict):
            for key, inner in value.items():
                _merge_dotted(target[head], [key], inner)
        else:
            target[head] = dict(value) if isinstance(value, Mapping) else value
        return
    existing = target.get(head)
    if not isinstance(existing, dict):
        existing = {}
        target[head] = existing
    _merge_dotted(existing, rest, value)


def _build(cls: type, values: Mapping[str, Any], *, path: str) -> Any:
    fields = {camel_case(f.name): f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        allowed = ", ".join(sorted(fields))
        raise SettingsError(f"unknown setting '{path}{unknown[0]}'; allowed here: {allowed}")
    kwargs = {}
    for key, value in values.items():
        f = fields[key]
        kwargs[f.name] = _convert(value, hints[f.name], key=f"{path}{key}", metadata=f.metadata)
    return cls(**kwargs)


def _convert(value: Any, hint: Any, *, key: str, metadata: Mapping[str, Any]) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        return _convert(value, inner[0], key=key, metadata=metadata)
    if dataclasses.is_dataclass(hint):
        parsed = _json_if_text(value, key=key)
        if not isinstance(parsed, Mapping):
            raise SettingsError(f"setting '{key}' must be an object of settings, got {value!r}")
        return _build(typing.cast(type, hint), parsed, path=f"{key}.")
    if origin is Literal:
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if text not in args:
            raise SettingsError(f"setting '{key}' must be one of {', '.join(map(str, args))}; got {value!r}")
        return text
    if hint is bool:
        return _to_bool(value, key=key)
    if hint is int:
        return _to_int(value, key=key, metadata=metadata)
    if hint is str:
        return _to_str(value, key=key, metadata=metadata)
    if origin is tuple:
        items = _to_list(value, key=key)
        return tuple(_convert(item, args[0], key=f"{key}[{i}]", metadata=metadata) for i, item in enumerate(items))
    if origin is dict:
        parsed = _json_if_text(value, key=key)
        if not isinstance(parsed, Mapping):
            raise SettingsError(f"setting '{key}' must be a JSON object, got {value!r}")
        return {str(k): _convert(v, args[1], key=f"{key}.{k}", metadata=metadata) for k, v in parsed.items()}
    raise TypeError(f"no conversion for setting {key} of type {hint!r}")  # a programming error, not user input


def _json_if_text(value: Any, *, key: str) -> Any:
    if not isinstance(value, str):
        return value
    return parse_json(value, what=f"setting '{key}'", error=SettingsError)


def _to_list(value: Any, *, key: str) -> list[Any]:
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            value = _json_if_text(stripped, key=key)
        else:
            return [part.strip() for part in stripped.split(",") if part.strip()]
    if not isinstance(value, list | tuple):
        raise SettingsError(f"setting '{key}' must be a list, got {value!r}")
    return list(value)


def _to_bool(value: Any, *, key: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise SettingsError(f"setting '{key}' must be true or false, got {value!r}")


def _to_int(value: Any, *, key: str, metadata: Mapping[str, Any]) -> int:
    if isinstance(value, bool):
        raise SettingsError(f"setting '{key}' must be a whole number, got {value!r}")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise SettingsError(f"setting '{key}' must be a whole number, got {value!r}") from None
    low, high = metadata.get("minimum"), metadata.get("maximum")
    if (low is not None and number < low) or (high is not None and number > high):
        raise SettingsError(f"setting '{key}' must be between {low} and {high}, got {number}")
    return number


def _to_str(value: Any, *, key: str, metadata: Mapping[str, Any]) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise SettingsError(f"setting '{key}' must be text, got {value!r}")
    text = str(value)
    pattern = metadata.get("pattern")
    if pattern and re.fullmatch(pattern, text) is None:
        describe = metadata.get("describe") or f"text matching {pattern}"
        raise SettingsError(f"setting '{key}' must be {describe}, got {text!r}")
    return text
