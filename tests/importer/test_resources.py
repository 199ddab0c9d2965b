"""Resources through `datapipe import`: what an Ec2Resource, an EmrCluster and an HttpProxy become, field by field
(the state machine they become: tests/infra/test_pipeline_resources.py).

Expected sizes come from Amazon EC2's instance type tables (m5.xlarge: 4 vCPUs, 16 GiB; c5.large: 2 vCPUs, 4 GiB;
t3.micro: 2 vCPUs, 1 GiB; m5.8xlarge: 32 vCPUs) and the Step Functions EMR integration's request syntax.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
    assert "logUri (an older field) is not applied" in objects["Box"]["reason"]


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
        "task runner proxy: start the runner with: datapipe taskrunner --workerGroup wg-12345 "
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


def test_a_task_config_runs_its_script_around_the_activity_whose_code_no_starter_chooses(
    write_definition: Callable[..., Path],
) -> None:
    objects: list[dict[str, Any]] = [
               DEFAULT, {"id": "C", "type": "EmrCluster", "releaseLabel": "emr-6.15.0"},
               {"id": "Prep", "type": "ShellScriptConfig", "scriptUri": "s3://scripts/prep.sh",
                "scriptArgument": "x"},
               {"id": "Hive", "type": "HiveActivity", "runsOn": {"ref": "C"}, "hiveScript": "SELECT 1;",
                "preActivityTaskConfig": {"ref": "Prep"}, "postActivityTaskConfig": {"ref": "Prep"}}]
    code, found, _ = objects_of(write_definition(objects))
    assert code == 0
    assert found["Prep"]["target"] == "an EMR step that runs s3://scripts/prep.sh before Hive, after Hive"
    assert found["Hive"]["target"] == "3 EMR step(s) (EmrAddStep) on cluster C"
    assert {"preActivityTaskConfig", "postActivityTaskConfig"} <= set(found["Hive"]["fields"]["applied"])
    objects[2] = {**objects[2], "scriptUri": "#{myScript}"}
    code, output = run(write_definition(objects, parameters=[{"id": "myScript", "type": "String"}]))
    assert code == 1 and "Prep.scriptUri: the code that runs may not depend on myScript" in output


def test_with_no_retry_the_only_attempt_is_the_last_and_so_on_demand(write_definition: Callable[..., Path]) -> None:
    objects = [DEFAULT, {"id": "Once", "type": "EmrCluster", "releaseLabel": "emr-6.15.0", "maximumRetries": "0",
                         "coreInstanceBidPrice": "0.2", "useOnDemandOnLastAttempt": "true"},
               {"id": "Step", "type": "EmrActivity", "runsOn": {"ref": "Once"}, "step": "command-runner.jar,ls"}]
    code, found, _ = objects_of(write_definition(objects))
    assert code == 0
    assert "Spot" not in found["Once"]["target"]
    assert "maximumRetries 0 with useOnDemandOnLastAttempt: the one attempt is the last, so every instance group is " \
        "On-Demand" in found["Once"]["reason"]
    assert {"maximumRetries", "useOnDemandOnLastAttempt"} <= set(found["Once"]["fields"]["applied"])
    assert "the only attempt is On-Demand" in not_applied(found["Once"])["coreInstanceBidPrice"]
