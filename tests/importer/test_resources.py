"""Resources through `datapipe import`: what an Ec2Resource, an EmrCluster and an HttpProxy become, field by field.

Expected sizes come from Amazon EC2's instance type tables (m5.xlarge: 4 vCPUs, 16 GiB; c5.large: 2 vCPUs, 4 GiB;
t3.micro: 2 vCPUs, 1 GiB; m5.8xlarge: 32 vCPUs) and the Step Functions EMR integration's request syntax.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from datapipe.cli import cli

DEFAULT = {"id": "Default", "scheduleType": "ondemand"}
ROLES = {"role": "DataPipelineDefaultRole", "resourceRole": "DataPipelineDefaultResourceRole"}


def run(path: Path, *options: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["import", str(path), *options])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def objects_of(path: Path) -> tuple[int, dict[str, dict[str, Any]], list[str]]:
    code, output = run(path, "--json")
    report = json.loads(output)
    return code, {o["id"]: o for o in report["objects"]}, report["errors"]


def not_applied(entry: dict[str, Any]) -> dict[str, str]:
    return {item["field"]: item["reason"] for item in entry["fields"]["notApplied"]}


def on_box(**box: str) -> list[dict[str, Any]]:
    return [DEFAULT, {"id": "Box", "type": "Ec2Resource", **ROLES, **box},
            {"id": "Shell", "type": "ShellCommandActivity", "runsOn": {"ref": "Box"}, "command": "echo hi"}]


def states_of(asl: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in asl["States"].items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from states_of(branch)


# One synthesis for every template check below: an EMR cluster with each mapped field, and a Batch activity.
EVERYTHING: list[dict[str, Any]] = [
    DEFAULT,
    {"id": "Cluster", "type": "EmrCluster", "releaseLabel": "emr-6.15.0", "coreInstanceCount": "2",
     "coreInstanceBidPrice": "0.30", "useOnDemandOnLastAttempt": "true",
     "additionalMasterSecurityGroupIds": "sg-0aa11", "additionalSlaveSecurityGroupIds": ["sg-0bb22", "sg-0cc33"],
     "emrManagedMasterSecurityGroupId": "sg-0dd44", "serviceAccessSecurityGroupId": "sg-0ee55",
     "coreGroupConfiguration": {"ref": "CoreYarn"}, "coreEbsConfiguration": {"ref": "CoreEbs"}},
    {"id": "CoreYarn", "type": "EmrConfiguration", "classification": "yarn-site", "property": {"ref": "NoVmemCheck"}},
    {"id": "NoVmemCheck", "type": "Property", "key": "yarn.nodemanager.vmem-check-enabled", "value": "false"},
    {"id": "CoreEbs", "type": "EbsConfiguration", "ebsOptimized": "true", "ebsBlockDeviceConfig": {"ref": "Block"}},
    {"id": "Block", "type": "EbsBlockDeviceConfig", "volumesPerInstance": "2", "volumeSpecification": {"ref": "Io1"}},
    {"id": "Io1", "type": "VolumeSpecification", "volumeType": "io1", "sizeInGB": "500", "iops": "1000"},
    {"id": "Count", "type": "EmrActivity", "runsOn": {"ref": "Cluster"}, "step": "command-runner.jar,echo,hi",
     "resizeClusterBeforeRunning": "true", "resizeClusterMaxInstances": "5"},
    {"id": "Box", "type": "Ec2Resource", **ROLES, "instanceType": "m5.xlarge"},
    {"id": "Shell", "type": "ShellCommandActivity", "runsOn": {"ref": "Box"}, "command": "echo hi",
     "dependsOn": {"ref": "Count"}},
]


@pytest.fixture(scope="module")
def asl(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("resources")
    definition = folder / "everything.json"
    definition.write_text(json.dumps({"objects": EVERYTHING}))
    code, output = run(definition, "--asl", str(folder / "out.json"))
    assert code == 0, output
    return dict(states_of(json.loads((folder / "out.json").read_text())))


def test_the_instance_type_sizes_the_batch_job_with_90_percent_of_its_memory(
    asl: dict[str, dict[str, Any]],
) -> None:
    requirements = asl["Run_Shell"]["Parameters"]["ContainerOverrides"]["ResourceRequirements"]
    # m5.xlarge: 4 vCPUs and 16 GiB; ECS registers a little less, so the job asks for 90% (16384 * 0.9).
    assert {r["Type"]: r["Value"] for r in requirements} == {"VCPU": "4", "MEMORY": "14745"}


def test_the_cluster_gets_its_security_groups_and_the_core_group_its_configuration_and_volumes(
    asl: dict[str, dict[str, Any]],
) -> None:
    instances = asl["Create_Cluster_Cluster"]["Parameters"]["Instances"]
    assert instances["AdditionalMasterSecurityGroups"] == ["sg-0aa11"]
    assert instances["AdditionalSlaveSecurityGroups"] == ["sg-0bb22", "sg-0cc33"]
    assert instances["EmrManagedMasterSecurityGroup"] == "sg-0dd44"
    assert instances["ServiceAccessSecurityGroup"] == "sg-0ee55"
    core = next(g for g in instances["InstanceGroups"] if g["InstanceRole"] == "CORE")
    assert core["Configurations"] == [{"Classification": "yarn-site",
                                       "Properties": {"yarn.nodemanager.vmem-check-enabled": "false"}}]
    assert core["EbsConfiguration"] == {
        "EbsOptimized": True,
        "EbsBlockDeviceConfigs": [{"VolumeSpecification": {"VolumeType": "io1", "SizeInGB": 500, "Iops": 1000},
                                   "VolumesPerInstance": 2}],
    }
    assert core["Market"] == "SPOT" and core["BidPrice"] == "0.30" and core["Name"] == "core"
    master = next(g for g in instances["InstanceGroups"] if g["InstanceRole"] == "MASTER")
    assert "EbsConfiguration" not in master and "Configurations" not in master


def test_a_failed_spot_creation_is_followed_by_an_on_demand_one_that_meets_the_same_path(
    asl: dict[str, dict[str, Any]],
) -> None:
    spot = asl["Create_Cluster_Cluster"]
    on_demand = asl["Create_Cluster_Cluster_On_Demand"]
    assert spot["Catch"][0]["ErrorEquals"] == ["States.TaskFailed"]
    assert spot["Catch"][0]["Next"] == "Create_Cluster_Cluster_On_Demand"
    assert spot["Catch"][-1]["ErrorEquals"] == ["States.ALL"]  # anything else: the cleanup, as before
    groups = on_demand["Parameters"]["Instances"]["InstanceGroups"]
    assert {g["Market"] for g in groups} == {"ON_DEMAND"} and not any("BidPrice" in g for g in groups)
    # the last attempt keeps everything else: volumes, configuration, security groups
    assert next(g for g in groups if g["InstanceRole"] == "CORE")["EbsConfiguration"]["EbsOptimized"] is True
    assert on_demand["Parameters"]["Instances"]["AdditionalSlaveSecurityGroups"] == ["sg-0bb22", "sg-0cc33"]
    assert spot["Next"] == on_demand["Next"] == "Cluster_Cluster_Ready"
    assert on_demand["Catch"][0]["ErrorEquals"] == ["States.ALL"]
    assert on_demand["Parameters"]["Tags"] == spot["Parameters"]["Tags"]  # the reaper finds either cluster


def test_the_core_group_is_resized_before_the_activity_that_asks_for_it(asl: dict[str, dict[str, Any]]) -> None:
    resize = asl["Resize_Core_Before_Count"]
    assert resize["Resource"].endswith(":elasticmapreduce:modifyInstanceGroupByName")
    assert resize["Parameters"] == {"ClusterId.$": "$.clusters.Cluster.ClusterId", "InstanceGroupName": "core",
                                    "InstanceGroup": {"InstanceCount": 5}}
    assert resize["Next"] == "Run_Count_1"
    assert resize["Catch"][0]["Next"].startswith("Cleanup_")  # a failed resize still terminates the cluster


@pytest.mark.parametrize(("instance_type", "vcpus", "memory"), [
    ("m5.xlarge", 4, 14745), ("c5.large", 2, 3686), ("r6i.2xlarge", 8, 58982), ("t3.micro", 2, 921),
    ("m1.small", 1, 1566),
])
def test_known_instance_types_give_their_size(
    write_definition: Callable[..., Path], instance_type: str, vcpus: int, memory: int
) -> None:
    code, objects, _ = objects_of(write_definition(on_box(instanceType=instance_type)))
    assert code == 0
    assert objects["Box"]["target"] == f"the size of its Batch jobs: {vcpus} vCPUs and {memory} MiB " \
        f"({instance_type}), on the job queue"
    assert "instanceType" in objects["Box"]["fields"]["applied"]


@pytest.mark.parametrize(("instance_type", "reason"), [
    ("m5.8xlarge", "m5.8xlarge has 32 vCPUs, more than the Batch compute environment's maximum (16, batch.maxVcpus)"),
    ("p4d.24xlarge", "'p4d.24xlarge' is not an instance type the importer knows the size of"),
    ("x" * 100_000, "is not an instance type the importer knows the size of"),
])
def test_a_size_that_cannot_apply_is_reported_on_the_field_and_the_pipeline_still_deploys(
    write_definition: Callable[..., Path], instance_type: str, reason: str
) -> None:
    code, objects, _ = objects_of(write_definition(on_box(instanceType=instance_type)))
    assert code == 0
    assert reason in not_applied(objects["Box"])["instanceType"]
    assert "keeps the job definition's" in not_applied(objects["Box"])["instanceType"]


def test_what_picks_an_instance_is_reported_per_field_with_its_reason(write_definition: Callable[..., Path]) -> None:
    box = {"imageId": "ami-12345678", "subnetId": "subnet-12345678", "securityGroupIds": "sg-12345678",
           "spotBidPrice": "0.5", "useOnDemandOnLastAttempt": "true", "logUri": "s3://old/logs/"}
    code, objects, errors = objects_of(write_definition(on_box(**box)))
    assert code == 0 and errors == []
    reasons = not_applied(objects["Box"])
    assert set(box) <= set(reasons)
    assert "ECS-optimized AMI" in reasons["imageId"]
    assert "subnets of the Batch compute environment" in reasons["subnetId"]
    assert "security groups of the Batch compute environment" in reasons["securityGroupIds"]
    assert "no bid price" in reasons["spotBidPrice"] and "Spot capacity first" in reasons["spotBidPrice"]
    assert "older field" in reasons["logUri"]


def test_older_emr_fields_are_accepted_with_a_note(write_definition: Callable[..., Path]) -> None:
    objects = [DEFAULT, {"id": "Old", "type": "EmrCluster", "amiVersion": "3.9.0", "installHive": "true",
                         "emrLogUri": "s3://old/emr-logs/", "coreInstanceBidPrice": "0.2",
                         "useOnDemandOnLastAttempt": "false"},
               {"id": "Hive", "type": "HiveActivity", "runsOn": {"ref": "Old"}, "hiveScript": "SELECT 1;"}]
    code, found, errors = objects_of(write_definition(objects))
    assert code == 0 and errors == []
    old = found["Old"]
    assert old["status"] == "mapped"
    assert "installHive (an older field) is read as Hive in applications" in old["reason"]
    assert "emrLogUri (an older field) is not applied" in old["reason"]
    assert "installHive" in old["fields"]["applied"]
    assert "AMI 3.9.0 clusters can no longer be created" in not_applied(old)["amiVersion"]
    assert "On-Demand if that creation fails" not in old["target"]  # useOnDemandOnLastAttempt is false


def test_on_demand_on_last_attempt_and_a_resize_without_a_size_say_why_they_do_nothing(
    write_definition: Callable[..., Path],
) -> None:
    objects = [DEFAULT, {"id": "OnDemand", "type": "EmrCluster", "releaseLabel": "emr-6.15.0",
                         "useOnDemandOnLastAttempt": "true"},
               {"id": "Grow", "type": "EmrActivity", "runsOn": {"ref": "OnDemand"}, "step": "command-runner.jar,ls",
                "resizeClusterBeforeRunning": "true"}]
    code, found, _ = objects_of(write_definition(objects))
    assert code == 0
    assert not_applied(found["OnDemand"])["useOnDemandOnLastAttempt"] == \
        "no bid price is set: every instance group is On-Demand"
    assert "give resizeClusterMaxInstances" in not_applied(found["Grow"])["resizeClusterBeforeRunning"]


def test_an_http_proxy_is_reported_as_the_task_runner_options_and_never_repeats_a_password(
    write_definition: Callable[..., Path],
) -> None:
    objects = [DEFAULT,
               {"id": "Proxy", "type": "HttpProxy", "hostname": "proxy.example.com", "port": "3128",
                "username": "svc-pipeline", "*password": "Secr3t-Do-Not-Print", "windowsDomain": "CORP",
                "windowsWorkgroup": "WS01", "s3NoProxy": "true"},
               {"id": "Box", "type": "Ec2Resource", **ROLES, "httpProxy": {"ref": "Proxy"}},
               {"id": "OnBox", "type": "ShellCommandActivity", "runsOn": {"ref": "Box"}, "command": "echo hi"},
               {"id": "Inside", "type": "ShellCommandActivity", "workerGroup": "wg-12345", "command": "echo hi"}]
    path = write_definition(objects)
    code, found, _ = objects_of(path)
    assert code == 0
    assert found["Proxy"]["target"] == (
        "task runner proxy: start the runner of worker group(s) wg-12345 with: datapipe taskrunner "
        "--proxyHost proxy.example.com --proxyPort 3128 --proxyUsername svc-pipeline --proxyDomain CORP "
        "--proxyWorkstation WS01")
    reasons = not_applied(found["Proxy"])
    assert "never copied" in reasons["*password"] and "NO_PROXY" in reasons["s3NoProxy"]
    assert "through the deployment's network" in not_applied(found["Box"])["httpProxy"]
    for options in (("--json",), ("--report",), ()):
        assert "Secr3t-Do-Not-Print" not in run(path, *options)[1]


def test_a_proxy_password_given_as_a_secret_reference_is_read_by_the_command(
    write_definition: Callable[..., Path],
) -> None:
    objects = [DEFAULT, {"id": "Proxy", "type": "HttpProxy", "hostname": "10.0.0.1", "port": "8080",
                         "*password": "ssm:/proxy/password"},
               {"id": "Inside", "type": "ShellCommandActivity", "workerGroup": "wg-1", "command": "echo hi"}]
    code, found, _ = objects_of(write_definition(objects))
    assert code == 0
    assert found["Proxy"]["target"].endswith(
        "--proxyHost 10.0.0.1 --proxyPort 8080 --proxyPassword \"$(aws ssm get-parameter --with-decryption --name "
        "/proxy/password --query Parameter.Value --output text)\"")
    assert "*password" in found["Proxy"]["fields"]["applied"]


@pytest.mark.parametrize(("objects", "expected"), [
    ([{"id": "P", "type": "HttpProxy", "hostname": "h", "port": "99999999999"}],
     "P.port: must be a port number from 1 to 65535, got '99999999999'"),
    ([{"id": "C", "type": "EmrCluster", "additionalSlaveSecurityGroupIds": "sg-1; rm -rf /"}],
     "C.additionalSlaveSecurityGroupIds: 'sg-1; rm -rf /' is not a security group id such as sg-0123abcd"),
    ([{"id": "C", "type": "EmrCluster", "coreEbsConfiguration": {"ref": "E"}},
      {"id": "E", "type": "EbsConfiguration", "ebsBlockDeviceConfig": {"ref": "B"}},
      {"id": "B", "type": "EbsBlockDeviceConfig", "volumeSpecification": {"ref": "V"}},
      {"id": "V", "type": "VolumeSpecification", "volumeType": "gp2", "sizeInGB": "9" * 5000}],
     "V.sizeInGB: must be a whole number from 1 to 16384, got '999999999999999999999999999999999999999999999"),
    ([{"id": "C", "type": "EmrCluster", "coreEbsConfiguration": {"ref": "E"}},
      {"id": "E", "type": "EbsConfiguration", "ebsBlockDeviceConfig": {"ref": "B"}},
      {"id": "B", "type": "EbsBlockDeviceConfig", "volumeSpecification": {"ref": "V"}},
      {"id": "V", "type": "VolumeSpecification", "volumeType": "floppy", "sizeInGB": "1"}],
     "V.volumeType: 'floppy' is not one of: gp2, gp3, io1, st1, sc1, standard"),
    ([{"id": "C", "type": "EmrCluster", "coreEbsConfiguration": {"ref": "C"}}],
     "C.coreEbsConfiguration: refers to 'C', a resource; it must be an EBS configuration"),
])
def test_bad_resource_fields_are_one_line_naming_the_object_and_field(
    write_definition: Callable[..., Path], objects: list[dict[str, Any]], expected: str
) -> None:
    users = [{"id": "Use", "type": "EmrActivity", "runsOn": {"ref": "C"}, "step": "command-runner.jar,ls"}]
    if objects[0]["type"] == "HttpProxy":
        users = [{"id": "Use", "type": "ShellCommandActivity", "workerGroup": "wg-1", "command": "ls"}]
    code, output = run(write_definition([DEFAULT, *objects, *users]))
    errors = [line.strip().removeprefix("error: ") for line in output.splitlines() if "error:" in line]
    assert code == 1
    assert any(line.startswith(expected) for line in errors), errors
    assert all(len(line) < 400 for line in output.splitlines())
