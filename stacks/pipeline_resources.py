"""The CDK side of an imported pipeline's resources (the importer's `datapipe.importer.resources` plans them).

An EmrCluster's instance groups (with their own configurations and EBS volumes) and network, the core group's
resize before an activity (resizeClusterBeforeRunning), and the size of the Batch job of an activity that runs on an
Ec2Resource (its instance type's vCPUs and memory).
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from datapipe.importer.plan import Cluster, EmrConfiguration
from datapipe.importer.resources import BatchSize, EbsSettings

CORE_GROUP = "core"  # the core instance group's name, which the resize finds it by


def configuration(config: EmrConfiguration) -> tasks.EmrCreateCluster.ConfigurationProperty:
    return tasks.EmrCreateCluster.ConfigurationProperty(
        classification=config.classification,
        properties=config.properties or None,
        configurations=[configuration(c) for c in config.configurations] or None,
    )


def ebs_configuration(settings: EbsSettings) -> tasks.EmrCreateCluster.EbsConfigurationProperty:
    return tasks.EmrCreateCluster.EbsConfigurationProperty(
        ebs_optimized=settings.optimized,
        ebs_block_device_configs=[
            tasks.EmrCreateCluster.EbsBlockDeviceConfigProperty(
                volume_specification=tasks.EmrCreateCluster.VolumeSpecificationProperty(
                    volume_size=cdk.Size.gibibytes(volume.size_gib),
                    volume_type=getattr(tasks.EmrCreateCluster.EbsBlockDeviceVolumeType, volume.volume_type.upper()),
                    iops=volume.iops,
                ),
                volumes_per_instance=volume.volumes_per_instance,
            )
            for volume in settings.volumes
        ] or None,
    )


def instance_groups(cluster: Cluster, *, bids: bool = True) -> list[tasks.EmrCreateCluster.InstanceGroupConfigProperty]:
    """The master, core and (with a count) task groups; without `bids`, every group On-Demand."""
    wanted = [("master", cluster.master_instance_type, 1, cluster.master_bid_price),
              ("core", cluster.core_instance_type, cluster.core_instance_count, cluster.core_bid_price)]
    if cluster.task_instance_count:
        wanted.append(("task", cluster.task_instance_type or cluster.core_instance_type, cluster.task_instance_count,
                       cluster.task_bid_price))
    groups = []
    for role, instance_type, count, bid in wanted:
        bid = bid if bids else None
        ebs = cluster.group_ebs.get(role)
        groups.append(tasks.EmrCreateCluster.InstanceGroupConfigProperty(
            instance_role=getattr(tasks.EmrCreateCluster.InstanceRoleType, role.upper()),
            instance_type=instance_type,
            instance_count=count,
            market=getattr(tasks.EmrCreateCluster.InstanceMarket, "SPOT" if bid else "ON_DEMAND"),
            bid_price=bid,
            name=role,
            configurations=[configuration(c) for c in cluster.group_configurations.get(role, [])] or None,
            ebs_configuration=ebs_configuration(ebs) if ebs is not None else None,
        ))
    return groups


def instances(cluster: Cluster, *, bids: bool = True) -> tasks.EmrCreateCluster.InstancesConfigProperty:
    return tasks.EmrCreateCluster.InstancesConfigProperty(
        instance_groups=instance_groups(cluster, bids=bids),
        termination_protected=False,
        ec2_subnet_id=cluster.subnet_id,
        ec2_key_name=cluster.key_pair,
        additional_master_security_groups=cluster.additional_master_security_groups or None,
        additional_slave_security_groups=cluster.additional_slave_security_groups or None,
        emr_managed_master_security_group=cluster.managed_master_security_group,
        emr_managed_slave_security_group=cluster.managed_slave_security_group,
        service_access_security_group=cluster.service_access_security_group,
    )


def core_resize(scope: Construct, construct_id: str, *, state_name: str, cluster_id: str,
                count: int) -> tasks.EmrModifyInstanceGroupByName:
    """Set the core group's instance count before an activity's steps (resizeClusterBeforeRunning)."""
    return tasks.EmrModifyInstanceGroupByName(
        scope, construct_id, state_name=state_name, cluster_id=cluster_id, instance_group_name=CORE_GROUP,
        instance_group=tasks.EmrModifyInstanceGroupByName.InstanceGroupModifyConfigProperty(instance_count=count),
        result_path=sfn.JsonPath.DISCARD,
    )


def batch_size_overrides(size: BatchSize | None) -> dict[str, Any]:
    """The container overrides that give a Batch job its Ec2Resource's vCPUs and memory (none without a size)."""
    if size is None:
        return {}
    return {"vcpus": size.vcpus, "memory": cdk.Size.mebibytes(size.memory_mib)}
