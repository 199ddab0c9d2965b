"""The state machine an imported pipeline's resources become: one synthesis, cdk-nag (AwsSolutions) and cfn-lint
clean, of a definition with an EMR cluster using every mapped resource field and a Batch activity on an Ec2Resource.

Expected sizes come from Amazon EC2's instance type tables (m5.xlarge: 4 vCPUs, 16 GiB), the request syntax from the
Step Functions EMR and Batch integrations.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from datapipe.importer.asl import flatten_definition
from datapipe.naming import Naming

NAMING = Naming()
ACCOUNT, REGION = "123456789012", "eu-west-1"
DEFAULT = {"id": "Default", "scheduleType": "ondemand"}
ROLES = {"role": "DataPipelineDefaultRole", "resourceRole": "DataPipelineDefaultResourceRole"}

EVERYTHING: list[dict[str, Any]] = [
    DEFAULT,
    {"id": "Cluster", "type": "EmrCluster", "releaseLabel": "emr-6.15.0", "coreInstanceCount": "2",
     "coreInstanceBidPrice": "0.30", "useOnDemandOnLastAttempt": "true", "maximumRetries": "2",
     "retryDelay": "5 minutes",
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
    {"id": "Prepare", "type": "ShellScriptConfig", "scriptUri": "s3://scripts/prepare.sh",
     "scriptArgument": ["--day", "#{format(@scheduledStartTime,'YYYY-MM-dd')}"]},
    {"id": "Crunch", "type": "HadoopActivity", "runsOn": {"ref": "Cluster"}, "jarUri": "s3://jars/crunch.jar",
     "preActivityTaskConfig": {"ref": "Prepare"}, "dependsOn": {"ref": "Count"}},
    {"id": "Box", "type": "Ec2Resource", **ROLES, "instanceType": "m5.xlarge"},
    {"id": "Shell", "type": "ShellCommandActivity", "runsOn": {"ref": "Box"}, "command": "echo hi",
     "dependsOn": {"ref": "Count"}},
]


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory, cdk_json_context: dict[str, object]) -> Path:
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    from cdk_nag import AwsSolutionsChecks

    from datapipe.importer import import_file
    from stacks.config import PipelineSettings, WorkerGroupSettings
    from stacks.pipelines import ImportedEmrRoles, PipelineWorkflow

    folder = tmp_path_factory.mktemp("resources")
    (folder / "everything.json").write_text(json.dumps({"objects": EVERYTHING}))
    plan = import_file(folder / "everything.json")
    assert plan.deployable, plan.errors
    app = cdk.App(context=cdk_json_context, outdir=str(folder / "out"))
    stack = cdk.Stack(app, "Resources", env=cdk.Environment(account=ACCOUNT, region=REGION))
    PipelineWorkflow(stack, "Resources", naming=NAMING, plan=plan, settings=PipelineSettings(),
                     worker_groups=WorkerGroupSettings(), log_bucket=s3.Bucket.from_bucket_name(stack, "L", "logs"),
                     job_queue_arn=f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/q",
                     job_definition_arn=f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/d",
                     emr_roles=ImportedEmrRoles.by_name(stack, NAMING))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()  # cdk-nag clean, or this raises
    return folder / "out" / "Resources.template.json"


def states_of(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = dict(states)
    for state in states.values():
        for branch in state.get("Branches", []):
            found.update(states_of(branch["States"]))
    return found


@pytest.fixture(scope="module")
def asl(synthesized: Path) -> dict[str, dict[str, Any]]:
    template = Template.from_json(json.loads(synthesized.read_text()))
    [machine] = template.find_resources("AWS::StepFunctions::StateMachine").values()
    return states_of(json.loads(flatten_definition(machine["Properties"]["DefinitionString"]))["States"])


def test_the_template_is_cfn_lint_clean(synthesized: Path) -> None:
    result = subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), "--format", "parseable",
                             str(synthesized)], capture_output=True, text=True)
    assert result.returncode in (0, 8), result.stdout + result.stderr  # informational findings only


def test_the_resize_may_touch_only_the_clusters_the_pipeline_created(synthesized: Path) -> None:
    template = json.loads(synthesized.read_text())
    statements = [s for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"
                  for s in r["Properties"]["PolicyDocument"]["Statement"]]
    resize = [s for s in statements if "elasticmapreduce:ModifyInstanceGroups" in json.dumps(s["Action"])]
    tag = {"elasticmapreduce:ResourceTag/datapipe:workflow": NAMING.state_machine("pipeline-everything")}
    assert resize and all(s["Condition"] == {"StringEquals": tag} for s in resize)


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
    # maximumRetries 2: three attempts, two with Spot (one retry, 5 minutes later), the last On-Demand
    assert spot["Retry"] == [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 300, "MaxAttempts": 1,
                              "BackoffRate": 1}]
    assert "Retry" not in on_demand
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




def constant(asl: dict[str, dict[str, Any]], path: str) -> str:
    """The text of a `$.const.cN` piece, as Set_Constants gives it (base64 when it holds `${`)."""
    key = path.removeprefix("$.const.")
    parameters = asl["Set_Constants"]["Parameters"]
    if key in parameters:
        return str(parameters[key])
    encoded = parameters[f"{key}.$"].removeprefix("States.Base64Decode('").removesuffix("')")
    return base64.b64decode(encoded).decode()


def test_a_pre_activity_script_runs_as_an_emr_step_before_the_activity(asl: dict[str, dict[str, Any]]) -> None:
    step = asl["Run_Crunch_pre_config"]
    assert step["Next"] == "Run_Crunch"
    assert step["Parameters"]["Step"]["HadoopJarStep"]["Jar"] == "command-runner.jar"
    args = asl["Prepare_Crunch_pre_config"]["Parameters"]["args.$"]
    pieces = args.removeprefix("States.Array(").split(", ")
    texts = [constant(asl, piece) for piece in pieces[:6]]
    assert texts[:2] == ["bash", "-c"] and texts[3:] == ["datapipe", "s3://scripts/prepare.sh", "--day"]
    assert texts[2].endswith('aws s3 cp "$1" ./datapipe-script && shift && bash ./datapipe-script "$@"')
    # the run's day reaches the script as an argument, data from the execution's input
    assert pieces[6].startswith("States.Format(") and "$.run.year" in args
