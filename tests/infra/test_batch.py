"""The Batch stack as synthesized: VPC without NAT, compute order, roles, images, job definitions, state machine."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from stacks.config import SettingsError, load_settings

JOB_DEFINITION = "datapipe-dev-examples-transforms-wordcount-job-definition"
# docs/bundles.md: the example's job runs the entry point for this transform only; each run fills the placeholders.
WORDCOUNT_COMMAND = [
    "python", "-m", "datapipe.bundles.entrypoint", "--transform", "examples.transforms.wordcount.WordCount",
    "--backend", "batch", "--remote", "Ref::remote", "--context", "Ref::context", "--input", "Ref::input",
    "--input-version", "Ref::inputVersion", "--output", "Ref::output", "--output-version", "Ref::outputVersion",
    "--output-tags", "Ref::outputTags", "--parameters", "Ref::parameters",
]  # fmt: skip
DATA_BUCKET = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::datapipe-dev-data-",
                                 {"Ref": "AWS::AccountId"}, "-", {"Ref": "AWS::Region"}]]}  # fmt: skip
DATA_OBJECTS = {"Fn::Join": ["", [*DATA_BUCKET["Fn::Join"][1], "/*"]]}


@pytest.fixture(scope="module")
def batch(template_of: Callable[[str], Template]) -> Template:
    return template_of("Batch")


def resources(template: Template, kind: str) -> dict[str, Any]:
    return dict(template.find_resources(kind))


def statements_of_role(template: Template, role_prefix: str) -> list[dict[str, Any]]:
    found = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        roles = [ref["Ref"] for ref in policy["Properties"]["Roles"]]
        if any(role.startswith(role_prefix) for role in roles):
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def test_the_instance_role_has_the_ecs_policy_and_only_the_data_bucket(batch: Template) -> None:
    [(role_id, role)] = [
        (k, v)
        for k, v in resources(batch, "AWS::IAM::Role").items()
        if v["Properties"].get("RoleName") == "datapipe-dev-ecsInstanceRole"
    ]
    managed = json.dumps(role["Properties"]["ManagedPolicyArns"])
    assert "policy/service-role/AmazonEC2ContainerServiceforEC2Role" in managed  # aws-cdk#25256
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "ec2.amazonaws.com"
    }
    statements = statements_of_role(batch, role_id)
    assert {json.dumps(s["Resource"]) for s in statements} == {json.dumps(DATA_OBJECTS), json.dumps(DATA_BUCKET)}
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert actions == {
        "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
        "s3:ListBucket", "s3:GetBucketLocation",
    }  # fmt: skip
    profiles = resources(batch, "AWS::IAM::InstanceProfile").values()
    assert profiles and all(p["Properties"]["Roles"] == [{"Ref": role_id}] for p in profiles)


def test_the_job_role_reads_and_writes_bundles_and_nothing_else(batch: Template) -> None:
    statements = statements_of_role(batch, "TransformBatchJobRole")
    assert statements and all("datapipe-dev-data-" in json.dumps(s["Resource"]) for s in statements)
    assert all(s["Effect"] == "Allow" and not any("*" in a for a in s["Action"]) for s in statements)


def test_spot_is_tried_before_on_demand(batch: Template) -> None:
    environments = resources(batch, "AWS::Batch::ComputeEnvironment")
    kinds = {k: v["Properties"]["ComputeResources"]["Type"] for k, v in environments.items()}
    [queue] = resources(batch, "AWS::Batch::JobQueue").values()
    assert queue["Properties"]["JobQueueName"] == "datapipe-dev-transforms"
    order = sorted(queue["Properties"]["ComputeEnvironmentOrder"], key=lambda entry: entry["Order"])
    assert [kinds[entry["ComputeEnvironment"]["Fn::GetAtt"][0]] for entry in order] == ["SPOT", "EC2"]
    for environment in environments.values():
        assert environment["Properties"]["ComputeResources"]["MinvCpus"] == 0  # nothing runs, nothing is paid


def test_the_vpc_has_no_nat_and_the_endpoints_jobs_need(batch: Template) -> None:
    batch.resource_count_is("AWS::EC2::NatGateway", 0)
    batch.resource_count_is("AWS::EC2::InternetGateway", 0)
    batch.resource_count_is("AWS::EC2::FlowLog", 1)
    services = {
        json.dumps(endpoint["Properties"]["ServiceName"]).split(".")[-1].strip('"]}'): endpoint["Properties"].get(
            "VpcEndpointType", "Gateway"
        )
        for endpoint in resources(batch, "AWS::EC2::VPCEndpoint").values()
    }
    assert services == {
        "s3": "Gateway",
        "api": "Interface",  # ecr.api
        "dkr": "Interface",  # ecr.dkr
        "logs": "Interface",
        "sts": "Interface",
        "ecs": "Interface",
        "ecs-agent": "Interface",
        "ecs-telemetry": "Interface",
    }
    batch.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {"SecurityGroupIngress": [Match.object_like({"CidrIp": "10.64.0.0/20", "FromPort": 443, "ToPort": 443})]},
    )


def test_each_configured_transform_has_a_repository_and_a_job_definition(batch: Template) -> None:
    batch.has_resource_properties(
        "AWS::ECR::Repository",
        {
            "RepositoryName": "datapipe-dev-examples-transforms-wordcount",
            "ImageScanningConfiguration": {"ScanOnPush": True},
        },
    )
    [definition] = resources(batch, "AWS::Batch::JobDefinition").values()
    properties = definition["Properties"]
    assert properties["JobDefinitionName"] == JOB_DEFINITION
    container = properties["ContainerProperties"]
    assert container["Command"] == WORDCOUNT_COMMAND
    assert properties["Parameters"] == {"outputTags": "{}", "parameters": "{}"}
    assert {r["Type"]: r["Value"] for r in container["ResourceRequirements"]} == {"VCPU": "1", "MEMORY": "2048"}
    assert container["Image"]["Fn::Join"][1][-1] == ":latest"
    assert container["JobRoleArn"]["Fn::GetAtt"][0].startswith("TransformBatchJobRole")
    assert container["LogConfiguration"]["Options"]["awslogs-group"]["Ref"].startswith("TransformBatchJobLogs")
    assert properties["Timeout"] == {"AttemptDurationSeconds": 240 * 60}
    assert properties["RetryStrategy"]["EvaluateOnExit"][0] == {"Action": "RETRY", "OnStatusReason": "Host EC2*"}


def test_the_transform_state_machine_submits_waits_retries_and_explains_failures(batch: Template) -> None:
    [machine] = resources(batch, "AWS::StepFunctions::StateMachine").values()
    assert machine["Properties"]["StateMachineName"] == "datapipe-dev-transform"
    definition = json.loads(
        "".join(p if isinstance(p, str) else "X" for p in machine["Properties"]["DefinitionString"]["Fn::Join"][1])
    )
    assert definition["StartAt"] == "Is_Transform_Input"
    guard = json.dumps(definition["States"]["Is_Transform_Input"])
    assert "arn:*:batch:*:job-definition/datapipe-dev-*" in guard
    assert '"Variable": "$.remote", "StringMatches": "s3://datapipe-dev-data-X-X/*"' in guard  # X: account, region
    submit = definition["States"]["Submit_Transform_Job"]
    assert submit["Resource"] == "arn:X:states:::batch:submitJob.sync"
    assert submit["Parameters"]["JobDefinition.$"] == "$.jobDefinition"
    # Issue 11: the input gives data for the placeholders, never a command (no override of any kind).
    assert "ContainerOverrides" not in submit["Parameters"]
    assert submit["Parameters"]["Parameters"] == {
        "remote.$": "$.remote",
        "context.$": "$.context",
        "input.$": "$.input.name",
        "inputVersion.$": "$.input.version",
        "output.$": "$.output.name",
        "outputVersion.$": "$.output.version",
        "outputTags.$": "States.JsonToString($.output.tags)",
        "parameters.$": "States.JsonToString($.parameters)",
    }
    command_check = definition["States"]["Is_Transform_Input"]["Choices"][0]
    assert command_check == {"Variable": "$.command", "IsPresent": True, "Next": "Command_Not_Accepted"}
    assert definition["States"]["Command_Not_Accepted"]["Error"] == "InvalidTransformInput"
    assert "$.command" not in json.dumps({k: v for k, v in definition["States"].items() if k != "Is_Transform_Input"})
    assert submit["Retry"][0]["ErrorEquals"] == ["Batch.AWSBatchException"]
    assert definition["TimeoutSeconds"] == (240 + 60) * 60
    cause = definition["States"]["Transform_Job_Failed"]["CausePath"]
    assert "StatusReason" in cause and "Container.LogStreamName" in cause
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}

    statements = statements_of_role(batch, "TransformBatchTransformStateMachineRole")
    [deny] = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Action"] == "batch:SubmitJob"
    assert "job-definition/datapipe-dev-*" in json.dumps(deny["NotResource"])


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"batch.vpcId": "vpc-xyz"}, "setting 'batch.vpcId' must be a VPC id such as vpc-0a1b2c3d"),
        ({"batch.compute": "gpu"}, "setting 'batch.compute' must be one of ec2, fargate"),
        ({"batch.transforms": '[{"classPath": "nomodule"}]'}, "'batch.transforms[0].classPath' must be a class path"),
        ({"batch.transforms": '[{"classPath": "a.B", "vcpus": 64}]'}, "64 vCPUs, more than 'batch.maxVcpus' (16)"),
        (
            {"batch.transforms": '[{"classPath": "a.B"}, {"classPath": "a.C"}]'},
            "names two transforms of module 'a'",
        ),
        (
            {"batch.compute": "fargate", "batch.transforms": '[{"classPath": "a.B", "memoryMib": 1024}]'},
            "a task size that Fargate does not offer",
        ),
    ],
)
def test_bad_batch_settings_are_one_line_each(context: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(context)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_fargate_in_an_existing_vpc(cdk_json_context: dict[str, Any]) -> None:
    """The other choices: Fargate (Spot first) in a VPC looked up by id, where the VPC and its endpoints are the
    owner's. Only the Batch stack is built here, not the app."""
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3

    from datapipe.naming import Naming
    from stacks.batch import BatchStack

    settings = load_settings({"batch.compute": "fargate", "batch.vpcId": "vpc-0a1b2c3d"})
    # What `cdk synth` would have cached in cdk.context.json after looking the VPC up.
    lookup = (
        "vpc-provider:account=123456789012:filter.vpc-id=vpc-0a1b2c3d:region=eu-west-1:returnAsymmetricSubnets=true"
    )
    subnets = [
        {"subnetId": f"subnet-0a1b2c3d4e5f6a7b{i}", "cidr": f"10.0.{i}.0/24", "availabilityZone": f"eu-west-1{zone}",
         "routeTableId": f"rtb-0a1b2c3d4e5f6a7b{i}"}
        for i, zone in ((1, "a"), (2, "b"))
    ]  # fmt: skip
    found_vpc = {
        "vpcId": "vpc-0a1b2c3d",
        "vpcCidrBlock": "10.0.0.0/16",
        "ownerAccountId": "123456789012",
        "availabilityZones": [],
        "subnetGroups": [{"name": "Private", "type": "Private", "subnets": subnets}],
    }
    app = cdk.App(context={**cdk_json_context, lookup: found_vpc})
    env = cdk.Environment(account="123456789012", region="eu-west-1")
    buckets = cdk.Stack(app, "Buckets", env=env)
    stack = BatchStack(
        app,
        "Batch",
        env=env,
        naming=Naming(),
        settings=settings.batch,
        data_bucket=s3.Bucket(buckets, "Data"),
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::EC2::VPC", 0)
    template.resource_count_is("AWS::EC2::VPCEndpoint", 0)
    template.resource_count_is("AWS::IAM::InstanceProfile", 0)
    template.has_resource_properties("AWS::EC2::SecurityGroup", {"VpcId": "vpc-0a1b2c3d"})
    environments = resources(template, "AWS::Batch::ComputeEnvironment")
    assert sorted(e["Properties"]["ComputeResources"]["Type"] for e in environments.values()) == [
        "FARGATE",
        "FARGATE_SPOT",
    ]
    [definition] = resources(template, "AWS::Batch::JobDefinition").values()
    assert definition["Properties"]["PlatformCapabilities"] == ["FARGATE"]
    assert definition["Properties"]["ContainerProperties"]["ExecutionRoleArn"]["Fn::GetAtt"][0].startswith(
        "TransformBatchExecutionRole"
    )
    assert stack.dependencies == [buckets]
