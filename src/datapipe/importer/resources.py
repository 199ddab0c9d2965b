"""Resources: what an EmrCluster, an Ec2Resource and an HttpProxy become.

- EmrCluster -> the EmrCreateCluster of the workflow: instance groups (types, counts, bid prices, their own
  configurations and EBS volumes), applications, bootstrap actions, configurations, security groups, log folder,
  and with useOnDemandOnLastAttempt a last creation without bid prices when the Spot one fails.
- Ec2Resource -> the size of the Batch job of each activity that runs on it: the instance type's vCPUs and memory.
  What picks an instance (AMI, subnet, security groups, bid price) belongs to the Batch compute environment; each
  such field is reported as not applied with that reason.
- HttpProxy -> the task runner's proxy options (`--proxyHost`, `--proxyPort`, ...), reported with the exact options
  to start a worker group's runner with; Batch jobs and EMR clusters reach AWS through the deployment's network.
- resizeClusterBeforeRunning (EMR activities) -> a resize of the core instance group to resizeClusterMaxInstances
  before the activity's steps.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from datapipe.importer.actions import ON_FAIL, ON_SUCCESS, Action, actions
from datapipe.importer.bootstrap import BootstrapRefused, MappedBootstrap, apply_to_cluster, map_bootstrap_action
from datapipe.importer.expressions import Text
from datapipe.importer.fields import reason_for
from datapipe.importer.laxjson import printable
from datapipe.importer.model import PipelineObject
from datapipe.importer.reader import Problem
from datapipe.importer.secrets import secret_reference

if TYPE_CHECKING:
    from datapipe.importer.plan import _Planner

MAX_CONFIGURATION_DEPTH = 16
# An EMR command step that fetches a script from S3 ($1) and runs it with the remaining arguments.
RUN_SCRIPT = 'aws s3 cp "$1" ./datapipe-script && shift && bash ./datapipe-script'
GROUPS = ("master", "core", "task")
EBS_VOLUME_TYPES = ("gp2", "gp3", "io1", "st1", "sc1", "standard")  # what EmrCreateCluster takes
MAX_VOLUMES_PER_INSTANCE = 25  # what EMR takes per instance group (EbsBlockDeviceConfig.VolumesPerInstance)
MAX_VOLUME_GIB = 16384
_SECURITY_GROUP = re.compile(r"^sg-[0-9a-f]{1,17}$")
_DIGITS = re.compile(r"^\s*[0-9]{1,9}\s*$")

# EC2 instance sizes: vCPUs of each size (current families), GiB of memory per vCPU of each family.
_SIZE_VCPUS = {"large": 2, "xlarge": 4}
_MEMORY_PER_VCPU = {"c": 2, "m": 4, "r": 8}
_CURRENT_FAMILY = re.compile(r"^([cmr])([5-8])[a-z]*$")
# Burstable and older types, from Amazon EC2's instance type pages: type -> (vCPUs, memory in MiB).
_LISTED_SIZES = {
    **{f"{family}.{size}": spec for family in ("t3", "t3a", "t4g") for size, spec in {
        "nano": (2, 512), "micro": (2, 1024), "small": (2, 2048), "medium": (2, 4096), "large": (2, 8192),
        "xlarge": (4, 16384), "2xlarge": (8, 32768)}.items()},
    "m1.small": (1, 1740), "m1.medium": (1, 3840), "m1.large": (2, 7680), "m1.xlarge": (4, 15360),
    "m3.medium": (1, 3840), "m3.large": (2, 7680), "m3.xlarge": (4, 15360), "m3.2xlarge": (8, 30720),
    "c3.large": (2, 3840), "c3.xlarge": (4, 7680), "c3.2xlarge": (8, 15360), "c3.4xlarge": (16, 30720),
}
# ECS registers a little less memory than the instance type has; asking for all of it would need a bigger one.
ECS_MEMORY_SHARE = 0.9
FARGATE_SIZES = {1: (2048, 8192), 2: (4096, 16384), 4: (8192, 30720), 8: (16384, 61440), 16: (32768, 122880)}


@dataclass
class EmrConfiguration:
    classification: str
    properties: dict[str, str]
    configurations: list[EmrConfiguration] = field(default_factory=list)


@dataclass
class EbsVolume:
    volume_type: str
    size_gib: int
    volumes_per_instance: int = 1
    iops: int | None = None


@dataclass
class EbsSettings:
    optimized: bool | None = None
    volumes: list[EbsVolume] = field(default_factory=list)


@dataclass
class Cluster:
    id: str
    name: str
    release_label: str
    applications: list[str]
    master_instance_type: str
    core_instance_type: str
    core_instance_count: int
    task_instance_type: str | None = None
    task_instance_count: int = 0
    master_bid_price: str | None = None
    core_bid_price: str | None = None
    task_bid_price: str | None = None
    bootstrap_actions: list[tuple[str, list[str]]] = field(default_factory=list)
    configurations: list[EmrConfiguration] = field(default_factory=list)
    log_uri: str | None = None
    terminate_after_seconds: int | None = None
    subnet_id: str | None = None
    key_pair: str | None = None
    additional_master_security_groups: list[str] = field(default_factory=list)
    additional_slave_security_groups: list[str] = field(default_factory=list)
    managed_master_security_group: str | None = None
    managed_slave_security_group: str | None = None
    service_access_security_group: str | None = None
    group_configurations: dict[str, list[EmrConfiguration]] = field(default_factory=dict)  # "core" -> ...
    group_ebs: dict[str, EbsSettings] = field(default_factory=dict)
    on_demand_last_attempt: bool = False  # a failed Spot creation is followed by one without bid prices
    creation_retries: int = 0  # maximumRetries: creations tried again after a failed one (the last On-Demand)
    retry_delay_seconds: int = 60
    on_fail: list[Action] = field(default_factory=list)  # when it cannot be created
    on_success: list[Action] = field(default_factory=list)  # after it is terminated at the end of a good run

    @property
    def has_bid_price(self) -> bool:
        return any((self.master_bid_price, self.core_bid_price, self.task_bid_price and self.task_instance_count))


@dataclass
class BatchSize:
    """What the Batch job of an activity on an Ec2Resource asks for: the instance type's vCPUs and memory."""

    instance_type: str
    vcpus: int
    memory_mib: int


# -- EmrCluster ------------------------------------------------------------------------------------------------------


def cluster(planner: _Planner, obj: PipelineObject) -> Cluster | None:
    ev = planner.evaluator
    purpose = "it configures the cluster"
    release = ev.static_field(obj, "releaseLabel", purpose=purpose) if obj.fields.get("releaseLabel") else None
    if release is None:
        release = planner.options.default_release_label
        ami = obj.text("amiVersion")
        reason = f"amiVersion {ami} (AMI 3.x) clusters can no longer be created" if ami else "no releaseLabel"
        planner.note(obj.id, f"{reason}; using release {release}")
        if ami:
            obj.not_applied("amiVersion", f"AMI {ami} clusters can no longer be created; release {release} is used")
    applications: list[str] = []
    for value in ev.field_texts(obj, "applications") or []:
        if not value.is_static:
            planner.problems.append(Problem(obj.id, "applications", f"must be known at import time; {purpose}"))
            continue
        applications.extend(a.strip().capitalize() for a in value.static.split(",") if a.strip())
    if (obj.text("installHive") or "").strip():  # an older field: Hive as one of the applications
        if "Hive" not in applications:
            applications.append("Hive")
        planner.note(obj.id, "installHive (an older field) is read as Hive in applications")
    master = ev.static_field(obj, "masterInstanceType", purpose=purpose) if obj.fields.get("masterInstanceType") \
        else planner.options.default_instance_type
    core = ev.static_field(obj, "coreInstanceType", purpose=purpose) if obj.fields.get("coreInstanceType") \
        else master
    result = Cluster(
        id=obj.id,
        name=obj.name,
        release_label=release,
        applications=applications,
        master_instance_type=master or planner.options.default_instance_type,
        core_instance_type=core or planner.options.default_instance_type,
        core_instance_count=planner.integer(obj, "coreInstanceCount", 1),
        task_instance_type=ev.static_field(obj, "taskInstanceType", purpose=purpose)
        if obj.fields.get("taskInstanceType") else None,
        task_instance_count=planner.integer(obj, "taskInstanceCount", 0),
        terminate_after_seconds=planner.period(obj, "terminateAfter"),
    )
    for key, attribute in (("masterInstanceBidPrice", "master_bid_price"), ("coreInstanceBidPrice",
                           "core_bid_price"), ("taskInstanceBidPrice", "task_bid_price"),
                           ("subnetId", "subnet_id"), ("keyPair", "key_pair")):
        if obj.fields.get(key):
            setattr(result, attribute, ev.static_field(obj, key, purpose=purpose))
    mapped = MappedBootstrap()  # AMI 3.x bootstrap actions become what they meant (datapipe.importer.bootstrap)
    for action in ev.field_texts(obj, "bootstrapAction") or []:
        from datapipe.importer.plan import split_commas  # plan imports this module: import when used

        pieces = split_commas(action)
        if not all(p.is_static for p in pieces):
            planner.problems.append(Problem(obj.id, "bootstrapAction", f"must be known at import time; {purpose}"))
            continue
        try:
            map_bootstrap_action(pieces[0].static, [p.static for p in pieces[1:]], mapped)
        except BootstrapRefused as refused:
            planner.problems.append(Problem(obj.id, "bootstrapAction", str(refused)))
    for config_id in obj.refs("configuration"):
        config = configuration(planner, config_id, seen=(obj.id,))
        if config is not None:
            result.configurations.append(config)
    scheduler = (obj.text("hadoopSchedulerType") or "").upper()
    if scheduler in ("PARALLEL_FAIR_SCHEDULING", "PARALLEL_CAPACITY_SCHEDULING"):
        kind = "fair.FairScheduler" if "FAIR" in scheduler else "capacity.CapacityScheduler"
        mapped.properties.setdefault("yarn-site", {})["yarn.resourcemanager.scheduler.class"] = \
            f"org.apache.hadoop.yarn.server.resourcemanager.scheduler.{kind}"
    apply_to_cluster(mapped, result)
    for note in mapped.notes:
        planner.note(obj.id, note)
    if obj.fields.get("pipelineLogUri"):
        known = len(planner.problems)
        text = ev.field_text(obj, "pipelineLogUri")
        del planner.problems[known:]  # logs have a fallback: a value that cannot be mapped is a note, not an error
        if text is not None and text.is_static and text.static.startswith("s3://"):
            result.log_uri = text.static.rstrip("/") + f"/{obj.id}/"
        else:
            planner.note(obj.id, "pipelineLogUri is not known at import time; EMR logs go to the log bucket")
            obj.not_applied("pipelineLogUri", "not known at import time; EMR logs go to the log bucket")
    if obj.fields.get("emrLogUri"):
        planner.note(obj.id, "emrLogUri (an older field) is not applied: EMR logs go to pipelineLogUri or the log "
                     "bucket")
        obj.not_applied("emrLogUri", "an older field: EMR logs go to pipelineLogUri's folder or the log bucket")
    _network(planner, obj, result)
    for group in GROUPS:
        group_config_id = obj.ref(f"{group}GroupConfiguration")
        if group_config_id is not None:
            config = configuration(planner, group_config_id, seen=(obj.id,))
            if config is not None:
                result.group_configurations[group] = [config]
        ebs_id = obj.ref(f"{group}EbsConfiguration")
        if ebs_id is not None:
            ebs = ebs_settings(planner, ebs_id)
            if ebs is not None:
                result.group_ebs[group] = ebs
    _attempts(planner, obj, result)
    result.on_fail = actions(planner, obj, ON_FAIL)
    result.on_success = actions(planner, obj, ON_SUCCESS)
    spot = " (Spot; On-Demand if that creation fails)" if result.on_demand_last_attempt else ""
    planner.targets[obj.id] = f"EmrCreateCluster ({result.release_label}, 1+{result.core_instance_count} " \
        f"instances){spot}, terminated at the end and on any failure"
    return result


def _attempts(planner: _Planner, obj: PipelineObject, result: Cluster) -> None:
    """maximumRetries, retryDelay and useOnDemandOnLastAttempt: how often a failed creation is tried again.

    Data Pipeline makes maximumRetries + 1 attempts, the last one On-Demand with useOnDemandOnLastAttempt; without
    maximumRetries the Spot creation is tried once, then the On-Demand one.
    """
    given = bool(obj.fields.get("maximumRetries"))
    result.creation_retries = planner.integer(obj, "maximumRetries", 0)
    result.retry_delay_seconds = planner.period(obj, "retryDelay") or result.retry_delay_seconds
    if (obj.text("useOnDemandOnLastAttempt") or "").strip().lower() != "true":
        return
    if not result.has_bid_price:
        obj.not_applied("useOnDemandOnLastAttempt", "no bid price is set: every instance group is On-Demand")
    elif given and result.creation_retries == 0:  # the only attempt is the last one
        result.master_bid_price = result.core_bid_price = result.task_bid_price = None
        planner.note(obj.id, "maximumRetries 0 with useOnDemandOnLastAttempt: the one attempt is the last, so every "
                     "instance group is On-Demand")
        for key in ("masterInstanceBidPrice", "coreInstanceBidPrice", "taskInstanceBidPrice"):
            if obj.fields.get(key):
                obj.not_applied(key, "maximumRetries is 0 and useOnDemandOnLastAttempt true: the only attempt is "
                                "On-Demand")
    else:
        result.on_demand_last_attempt = True
        result.creation_retries = max(0, result.creation_retries - 1)  # the last attempt is the On-Demand creation


def _network(planner: _Planner, obj: PipelineObject, result: Cluster) -> None:
    """The cluster's security groups: EMR-managed ones, the service access one, and additional ones per role."""
    for key, attribute in (("additionalMasterSecurityGroupIds", "additional_master_security_groups"),
                           ("additionalSlaveSecurityGroupIds", "additional_slave_security_groups")):
        groups = []
        for text in planner.evaluator.field_texts(obj, key) or []:
            for value in (v.strip() for v in (text.static if text.is_static else "").split(",")):
                if _SECURITY_GROUP.match(value):
                    groups.append(value)
                else:
                    planner.problems.append(Problem(obj.id, key, f"{printable(value)!r} is not a security group id "
                                                    "such as sg-0123abcd (known at import time)"))
        setattr(result, attribute, list(dict.fromkeys(groups)))
    for key, attribute in (("emrManagedMasterSecurityGroupId", "managed_master_security_group"),
                           ("emrManagedSlaveSecurityGroupId", "managed_slave_security_group"),
                           ("serviceAccessSecurityGroupId", "service_access_security_group")):
        if not obj.fields.get(key):
            continue
        group_id = planner.evaluator.static_field(obj, key, purpose="it places the cluster in the network")
        if group_id is not None and not _SECURITY_GROUP.match(group_id.strip()):
            planner.problems.append(Problem(obj.id, key, f"{printable(group_id)!r} is not a security group id such "
                                            "as sg-0123abcd"))
        elif group_id is not None:
            setattr(result, attribute, group_id.strip())


def configuration(planner: _Planner, config_id: str, seen: tuple[str, ...]) -> EmrConfiguration | None:
    obj = planner.pipeline.objects.get(config_id)
    if obj is None or obj.type != "EmrConfiguration" or config_id in seen:
        if config_id in seen:
            planner.problems.append(Problem(config_id, "configuration", "configurations refer to each other"))
        return None
    if len(seen) > MAX_CONFIGURATION_DEPTH:  # EMR nests a few levels; this keeps the walk off Python's limit
        planner.problems.append(Problem(config_id, "configuration", "configurations are nested deeper than "
                                        f"{MAX_CONFIGURATION_DEPTH} levels"))
        return None
    properties: dict[str, str] = {}
    for property_id in obj.refs("property"):
        prop = planner.pipeline.objects.get(property_id)
        if prop is None or prop.type != "Property":
            continue
        key = planner.evaluator.static_field(prop, "key", purpose="it configures the cluster")
        value = planner.evaluator.static_field(prop, "value", purpose="it configures the cluster")
        if key is not None and value is not None:
            properties[key] = value
            planner.targets[prop.id] = f"property of configuration {config_id}"
    nested = [c for c in (configuration(planner, i, (*seen, config_id)) for i in obj.refs("configuration")) if c]
    classification = planner.evaluator.static_field(obj, "classification", purpose="it configures the cluster")
    planner.targets[obj.id] = "configuration of the EMR cluster"
    return EmrConfiguration(classification or "", properties, nested)


def ebs_settings(planner: _Planner, ebs_id: str) -> EbsSettings | None:
    """An EbsConfiguration: EBS optimisation, and the volumes of its EbsBlockDeviceConfig objects."""
    obj = planner.pipeline.objects.get(ebs_id)
    if obj is None or obj.type != "EbsConfiguration":  # the model reports a reference to another kind
        return None
    result = EbsSettings()
    optimized = obj.text("ebsOptimized")
    if optimized is not None:
        result.optimized = _boolean(planner, obj, "ebsOptimized", optimized)
    for block_id in obj.refs("ebsBlockDeviceConfig"):
        block = planner.pipeline.objects.get(block_id)
        spec = planner.pipeline.objects.get((block.ref("volumeSpecification") if block else None) or "")
        if block is None or block.type != "EbsBlockDeviceConfig" or spec is None or spec.type != "VolumeSpecification":
            planner.problems.append(Problem(block_id, "volumeSpecification", "an ebsBlockDeviceConfig must be an "
                                            "EbsBlockDeviceConfig whose volumeSpecification is a VolumeSpecification"))
            continue
        volume_type = (planner.evaluator.static_field(spec, "volumeType", purpose="it sizes the volumes") or "")
        if volume_type not in EBS_VOLUME_TYPES:
            planner.problems.append(Problem(spec.id, "volumeType", f"{printable(volume_type)!r} is not one of: "
                                            f"{', '.join(EBS_VOLUME_TYPES)}"))
            continue
        size = _bounded(planner, spec, "sizeInGB", 1, MAX_VOLUME_GIB)
        count = _bounded(planner, block, "volumesPerInstance", 1, MAX_VOLUMES_PER_INSTANCE, default=1)
        iops = _bounded(planner, spec, "iops", 100, 256000) if spec.fields.get("iops") else None
        if size is None or count is None:
            continue
        result.volumes.append(EbsVolume(volume_type, size, count, iops))
        planner.targets[block.id] = f"{count} EBS volume(s) per instance, {volume_type} of {size} GiB"
        planner.targets[spec.id] = f"EBS volume {volume_type}, {size} GiB" + (f", {iops} IOPS" if iops else "")
    planner.targets[obj.id] = f"EBS configuration of an instance group ({len(result.volumes)} device kind(s))"
    return result


def _bounded(planner: _Planner, obj: PipelineObject, key: str, low: int, high: int,
             default: int | None = None) -> int | None:
    if not obj.fields.get(key):
        if default is None:
            planner.problems.append(Problem(obj.id, key, f"required field of {obj.type} is missing"))
        return default
    text = planner.evaluator.static_field(obj, key, purpose="it sizes the cluster's volumes")
    if text is None:
        return None
    if not _DIGITS.match(text) or not low <= int(text) <= high:
        planner.problems.append(Problem(obj.id, key, f"must be a whole number from {low} to {high}, got "
                                        f"{printable(text)!r}"))
        return None
    return int(text)


def _boolean(planner: _Planner, obj: PipelineObject, key: str, text: str) -> bool | None:
    value = text.strip().lower()
    if value not in ("true", "false"):
        planner.problems.append(Problem(obj.id, key, f"must be true or false, got {printable(text)!r}"))
        return None
    return value == "true"


def task_config(planner: _Planner, obj: PipelineObject, key: str) -> list[list[Text]]:
    """pre/postActivityTaskConfig: the ShellScriptConfig's script and arguments, run as an EMR step (or nothing)."""
    config = planner.pipeline.objects.get(obj.ref(key) or "")
    if config is None or config.type != "ShellScriptConfig":  # the model reports a reference to another kind
        return []
    script = planner.code_field(config, "scriptUri")
    arguments = planner.evaluator.field_texts(config, "scriptArgument")
    if script is None or arguments is None:
        return []
    when = "before" if key.startswith("pre") else "after"
    done = planner.targets.get(config.id)
    planner.targets[config.id] = f"{done}, {when} {obj.id}" if done else \
        f"an EMR step that runs {script.describe()} {when} {obj.id}"
    return [[script, *arguments]]


def resize(planner: _Planner, obj: PipelineObject, cluster_of_activity: Cluster | None) -> int | None:
    """resizeClusterBeforeRunning: the core group's instance count before the activity's steps run."""
    if (obj.text("resizeClusterBeforeRunning") or "").strip().lower() != "true":
        return None
    if cluster_of_activity is None:
        obj.not_applied("resizeClusterBeforeRunning", "the activity does not run on an EmrCluster of the pipeline")
        return None
    if not obj.fields.get("resizeClusterMaxInstances"):
        obj.not_applied("resizeClusterBeforeRunning", "Data Pipeline sized the cluster from the DynamoDB tables' "
                        "throughput, which has no equivalent; give resizeClusterMaxInstances to resize to that size")
        return None
    count = planner.integer(obj, "resizeClusterMaxInstances", 0)
    if count < 1:
        planner.problems.append(Problem(obj.id, "resizeClusterMaxInstances", "must be at least 1 to resize to"))
        return None
    planner.note(obj.id, f"the core instance group is resized to {count} instances (resizeClusterMaxInstances) "
                 "before its steps; Data Pipeline sized it from DynamoDB throughput, up to that many")
    return count


# -- Ec2Resource -----------------------------------------------------------------------------------------------------


def instance_size(instance_type: str) -> tuple[int, int] | None:
    """(vCPUs, memory in MiB) of an EC2 instance type the importer knows, else None."""
    if instance_type in _LISTED_SIZES:
        return _LISTED_SIZES[instance_type]
    family, _, size = instance_type.partition(".")
    match = _CURRENT_FAMILY.match(family)
    multiple = re.fullmatch(r"([0-9]{1,2})xlarge", size)
    vcpus = _SIZE_VCPUS.get(size) or (4 * int(multiple.group(1)) if multiple else None)
    if match is None or vcpus is None:
        return None
    return vcpus, vcpus * _MEMORY_PER_VCPU[match.group(1)] * 1024


def batch_size(planner: _Planner, obj: PipelineObject) -> BatchSize | None:
    """The Batch job size of an activity on this Ec2Resource; the rest of the resource reported field by field."""
    for key in ("imageId", "subnetId", "securityGroupIds", "spotBidPrice", "useOnDemandOnLastAttempt"):
        if obj.fields.get(key):  # what picks the instance belongs to the Batch compute environment
            obj.not_applied(key, reason_for(obj.type, key) or "")
    if obj.fields.get("logUri"):
        planner.note(obj.id, "logUri (an older field) is not applied: logs go to the deployment's log bucket")
        obj.not_applied("logUri", reason_for(obj.type, "logUri") or "")
    if not obj.fields.get("instanceType"):
        return None
    text = planner.evaluator.static_field(obj, "instanceType", purpose="it sizes the Batch job")
    if text is None:
        return None
    instance_type = text.strip()
    size = instance_size(instance_type)
    options = planner.options
    if size is None:
        obj.not_applied("instanceType", f"{printable(instance_type)!r} is not an instance type the importer knows "
                        "the size of (c, m, r of generation 5 to 8, t3, t3a, t4g, m1, m3, c3); the job keeps the job "
                        "definition's vCPUs and memory")
        return None
    vcpus, memory = size
    if vcpus > options.batch_max_vcpus:
        obj.not_applied("instanceType", f"{instance_type} has {vcpus} vCPUs, more than the Batch compute "
                        f"environment's maximum ({options.batch_max_vcpus}, batch.maxVcpus); the job keeps the job "
                        "definition's size")
        return None
    if options.batch_fargate:
        low, high = FARGATE_SIZES.get(vcpus, (0, -1))
        request = min(max(memory // 1024 * 1024, low), high)
        if request < low or request != memory:
            obj.not_applied("instanceType", f"Fargate offers no task of {vcpus} vCPUs and {memory} MiB "
                            f"({instance_type}); the job keeps the job definition's size")
            return None
        result = BatchSize(instance_type, vcpus, request)
    else:
        result = BatchSize(instance_type, vcpus, int(memory * ECS_MEMORY_SHARE))
    planner.targets[obj.id] = f"the size of its Batch jobs: {vcpus} vCPUs and {result.memory_mib} MiB " \
        f"({instance_type}), on the job queue"
    return result


# -- HttpProxy -------------------------------------------------------------------------------------------------------


def http_proxy(planner: _Planner, obj: PipelineObject, worker_groups: list[str]) -> None:
    """An HttpProxy becomes the task runner's proxy options, reported with the exact command line."""
    ev = planner.evaluator
    purpose = "it becomes a task runner option"
    host = ev.static_field(obj, "hostname", purpose=purpose)
    port = ev.static_field(obj, "port", purpose=purpose)
    if host is None or port is None:
        return
    if not _DIGITS.match(port) or not 1 <= int(port) <= 65535:
        planner.problems.append(Problem(obj.id, "port", f"must be a port number from 1 to 65535, got "
                                        f"{printable(port)!r}"))
        return
    options = ["--proxyHost", host.strip(), "--proxyPort", str(int(port))]
    for key, option in (("username", "--proxyUsername"), ("windowsDomain", "--proxyDomain"),
                        ("windowsWorkgroup", "--proxyWorkstation")):
        if obj.fields.get(key):
            value = ev.static_field(obj, key, purpose=purpose)
            if value is not None:
                options += [option, value]
    shown = shlex.join(options)
    if obj.fields.get("*password"):
        values = obj.fields["*password"]
        reference = secret_reference(values[0]) if values and isinstance(values[0], str) else None
        if reference is None:  # never repeat the value: it is the password
            obj.not_applied("*password", "a password written in the definition is never copied: store it in Secrets "
                            "Manager or SSM and give its ARN or ssm:<name> here")
        else:
            from datapipe.importer.plan import secret_command  # plan imports this module: import when used

            shown += f' --proxyPassword "$({secret_command(reference)})"'
    if obj.fields.get("s3NoProxy"):
        obj.not_applied("s3NoProxy", reason_for(obj.type, "s3NoProxy") or "")
    commands = [f"datapipe taskrunner --workerGroup {shlex.quote(group)} {shown}" for group in worker_groups]
    planner.targets[obj.id] = "task runner proxy: start the runner with: " + (
        "; ".join(commands) if commands else f"datapipe taskrunner --workerGroup <group> {shown}")
