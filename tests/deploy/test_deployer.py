"""The deployer: intrinsic functions, ordering, assets, what it cannot emulate, and the errors it reports."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from datapipe.local.assembly import AssemblyError
from datapipe.local.deploy import NOT_EMULATED, Deployer, DeployError, Deployment, creation_order

ACCOUNT = "123456789012"
REGION = "eu-west-1"
BOOTSTRAP_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
ASSET_BUCKET = "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"


class AssemblyWriter:
    """Writes manifest.json, templates and asset manifests the way `cdk synth` lays them out."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.artifacts: dict[str, Any] = {}

    def stack(
        self,
        artifact_id: str,
        resources: dict[str, Any],
        *,
        depends_on: tuple[str, ...] = (),
        environment: str = f"aws://{ACCOUNT}/{REGION}",
        **sections: Any,
    ) -> None:
        template = {
            "Resources": resources,
            "Parameters": {
                "BootstrapVersion": {
                    "Type": "AWS::SSM::Parameter::Value<String>",
                    "Default": BOOTSTRAP_PARAMETER,
                }
            },
            "Rules": {
                "CheckBootstrapVersion": {
                    "Assertions": [
                        {
                            "Assert": {
                                "Fn::Not": [{"Fn::Contains": [["1", "2", "3", "4", "5"], {"Ref": "BootstrapVersion"}]}]
                            },
                            "AssertDescription": "CDK bootstrap stack version 6 required.",
                        }
                    ]
                }
            },
        }
        for name, section in sections.items():
            template.setdefault(name, {}).update(section)
        (self.directory / f"{artifact_id}.template.json").write_text(json.dumps(template))
        self.artifacts[artifact_id] = {
            "type": "aws:cloudformation:stack",
            "environment": environment,
            "properties": {
                "templateFile": f"{artifact_id}.template.json",
                "stackName": f"test-{artifact_id.lower()}",
                "bootstrapStackVersionSsmParameter": BOOTSTRAP_PARAMETER,
            },
            "dependencies": [*depends_on, f"{artifact_id}.assets"]
            if f"{artifact_id}.assets" in self.artifacts
            else list(depends_on),
        }
        self._write_manifest()

    def directory_asset(self, artifact_id: str, asset_hash: str, files: dict[str, str]) -> str:
        """A directory asset (zipped on upload) for stack `artifact_id`; returns its object key."""
        source = self.directory / f"asset.{asset_hash}"
        source.mkdir()
        for name, text in files.items():
            (source / name).write_text(text)
        key = f"{asset_hash}.zip"
        manifest = {
            "version": "55.0.0",
            "files": {
                asset_hash: {
                    "source": {"path": source.name, "packaging": "zip"},
                    "destinations": {"current": {"bucketName": ASSET_BUCKET, "objectKey": key}},
                }
            },
            "dockerImages": {},
        }
        (self.directory / f"{artifact_id}.assets.json").write_text(json.dumps(manifest))
        self.artifacts[f"{artifact_id}.assets"] = {
            "type": "cdk:asset-manifest",
            "properties": {"file": f"{artifact_id}.assets.json"},
        }
        self._write_manifest()
        return key

    def _write_manifest(self) -> None:
        (self.directory / "manifest.json").write_text(json.dumps({"version": "55.0.0", "artifacts": self.artifacts}))


@pytest.fixture()
def aws() -> Iterator[Callable[[str], Any]]:
    """moto in memory, with state machines executable, and a client factory for it."""
    config: Any = {"stepfunctions": {"execute_state_machine": True}, "iam": {"load_aws_managed_policies": False}}
    with mock_aws(config=config):
        clients: dict[str, Any] = {}

        def client(service: str) -> Any:
            if service not in clients:
                clients[service] = boto3.client(service, region_name=REGION)  # type: ignore[call-overload]
            return clients[service]

        yield client


@pytest.fixture()
def assembly(tmp_path: Path) -> AssemblyWriter:
    return AssemblyWriter(tmp_path)


@pytest.fixture()
def deploy(aws: Callable[[str], Any], assembly: AssemblyWriter) -> Callable[[], Deployment]:
    return lambda: Deployer(aws, account=ACCOUNT, region=REGION).deploy(assembly.directory)


ROLE = {
    "Type": "AWS::IAM::Role",
    "Properties": {
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
    },
}


def parameter(name: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"Type": "AWS::SSM::Parameter", "Properties": {"Name": name, "Type": "String", "Value": value, **extra}}


def ssm_value(aws: Callable[[str], Any], name: str) -> str:
    return str(aws("ssm").get_parameter(Name=name)["Parameter"]["Value"])


def test_intrinsic_functions_resolve_into_what_is_created(
    assembly: AssemblyWriter, deploy: Callable[[], Deployment], aws: Callable[[str], Any]
) -> None:
    assembly.stack(
        "Main",
        {
            "Bucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {"BucketName": {"Fn::Sub": "${AWS::StackName}-data-${AWS::AccountId}-${AWS::Region}"}},
            },
            "Joined": parameter(
                "/t/join",
                {
                    "Fn::Join": [
                        "/",
                        [
                            {"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]},
                            {"Fn::GetAtt": ["Bucket", "Arn"]},
                            {"Ref": "AWS::Partition"},
                        ],
                    ]
                },
            ),
            "Chosen": parameter(
                "/t/if",
                {"Fn::If": ["IsProd", "prod-value", "dev-value"]},
                Description={"Fn::If": ["IsProd", "only in prod", {"Ref": "AWS::NoValue"}]},
            ),
            "Substituted": parameter(
                "/t/sub",
                {
                    "Fn::Sub": [
                        "${Size}:${!Literal}:${Bucket.Arn}",
                        {"Size": {"Fn::FindInMap": ["Sizes", "Small", "Value"]}},
                    ]
                },
            ),
            "ProdOnly": {**parameter("/t/prod", "x"), "Condition": "IsProd"},
        },
        Parameters={"Stage": {"Type": "String", "Default": "dev"}},
        Conditions={"IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}},
        Mappings={"Sizes": {"Small": {"Value": "s"}}},
    )

    deployment = deploy()

    bucket = "test-main-data-123456789012-eu-west-1"
    assert deployment.stack("test-main").physical_id("Bucket") == bucket
    assert ssm_value(aws, "/t/join") == f"b/arn:aws:s3:::{bucket}/aws"
    assert ssm_value(aws, "/t/if") == "dev-value"
    assert (
        "Description"
        not in aws("ssm").describe_parameters(ParameterFilters=[{"Key": "Name", "Values": ["/t/if"]}])["Parameters"][0]
    )
    assert ssm_value(aws, "/t/sub") == f"s:${{Literal}}:arn:aws:s3:::{bucket}"
    assert "ProdOnly" not in [r.logical_id for r in deployment.resources]
    with pytest.raises(aws("ssm").exceptions.ParameterNotFound):
        aws("ssm").get_parameter(Name="/t/prod")


def test_stacks_deploy_after_the_stacks_they_import_from(
    assembly: AssemblyWriter, deploy: Callable[[], Deployment], aws: Callable[[str], Any]
) -> None:
    assembly.stack(
        "Consumer",
        {
            "Imported": parameter("/t/imported", {"Fn::ImportValue": "shared-topic-arn"}),
            "Read": parameter(
                "/t/read",
                {"Fn::GetStackOutput": {"StackName": "test-producer", "OutputName": "TopicName", "Region": REGION}},
            ),
        },
        depends_on=("Producer",),
    )
    assembly.stack(
        "Producer",
        {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "alerts"}}},
        Outputs={
            "TopicArn": {"Value": {"Ref": "Topic"}, "Export": {"Name": "shared-topic-arn"}},
            "TopicName": {"Value": {"Fn::GetAtt": ["Topic", "TopicName"]}},
        },
    )

    deployment = deploy()

    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts"
    assert [stack.stack_name for stack in deployment.stacks] == ["test-producer", "test-consumer"]
    assert deployment.stack("test-producer").outputs == {"TopicArn": topic_arn, "TopicName": "alerts"}
    assert deployment.exports == {"shared-topic-arn": topic_arn}
    assert ssm_value(aws, "/t/imported") == topic_arn
    assert ssm_value(aws, "/t/read") == "alerts"


def test_resources_are_created_after_what_they_reference_or_depend_on(
    assembly: AssemblyWriter, deploy: Callable[[], Deployment], aws: Callable[[str], Any]
) -> None:
    assembly.stack(
        "Main",
        {
            "RolePolicy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyName": "read-data",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
                    },
                    "Roles": [{"Ref": "Role"}],
                },
            },
            "Last": {**parameter("/t/last", "x"), "DependsOn": "RolePolicy"},
            "Role": ROLE,
        },
    )

    deployment = deploy()

    assert [r.logical_id for r in deployment.resources] == ["Role", "RolePolicy", "Last"]
    role_name = deployment.stack("test-main").physical_id("Role")
    assert role_name.startswith("test-main-Role-")
    assert aws("iam").list_role_policies(RoleName=role_name)["PolicyNames"] == ["read-data"]


def test_a_dependency_cycle_is_an_error_that_names_it() -> None:
    resources = {
        "A": parameter("/a", {"Ref": "B"}),
        "B": {**parameter("/b", "x"), "DependsOn": ["A"]},
    }
    with pytest.raises(DeployError, match="cycle: A -> B -> A"):
        creation_order(resources)


def test_directory_assets_are_zipped_uploaded_and_used_by_functions(
    assembly: AssemblyWriter, deploy: Callable[[], Deployment], aws: Callable[[str], Any]
) -> None:
    key = assembly.directory_asset("Main", "abc123", {"handler.py": "def handler(event, context):\n    return 42\n"})
    assembly.stack(
        "Main",
        {
            "Role": ROLE,
            "Data": {"Type": "AWS::S3::Bucket"},
            "Function": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Code": {
                        "S3Bucket": {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"},
                        "S3Key": key,
                    },
                    "Handler": "handler.handler",
                    "Runtime": "python3.12",
                    "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                    "Environment": {"Variables": {"DATA_BUCKET": {"Ref": "Data"}}},
                },
            },
        },
    )

    deployment = deploy()

    asset_bucket = f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}"
    assert deployment.uploaded_assets == [f"s3://{asset_bucket}/{key}"]
    archive = zipfile.ZipFile(io.BytesIO(aws("s3").get_object(Bucket=asset_bucket, Key=key)["Body"].read()))
    assert archive.read("handler.py").decode().endswith("return 42\n")
    function_name = deployment.stack("test-main").physical_id("Function")
    configuration = aws("lambda").get_function(FunctionName=function_name)["Configuration"]
    assert configuration["Handler"] == "handler.handler"
    data_bucket = deployment.stack("test-main").physical_id("Data")
    assert configuration["Environment"]["Variables"] == {"DATA_BUCKET": data_bucket}
    assert data_bucket == data_bucket.lower() and data_bucket.startswith("test-main-data-")


def test_state_machines_run_with_their_substituted_definition(
    assembly: AssemblyWriter, deploy: Callable[[], Deployment], aws: Callable[[str], Any]
) -> None:
    definition = {
        "StartAt": "Hello",
        "States": {"Hello": {"Type": "Pass", "Result": {"greeting": "${Greeting}"}, "End": True}},
    }
    assembly.stack(
        "Main",
        {
            "Role": ROLE,
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "StateMachineName": "greeter",
                    "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                    "DefinitionString": {"Fn::Join": ["", [json.dumps(definition)]]},
                    "DefinitionSubstitutions": {"Greeting": {"Fn::Sub": "hello from ${AWS::Region}"}},
                },
            },
            "Queue": {"Type": "AWS::StepFunctions::Activity", "Properties": {"Name": "work"}},
        },
    )

    deployment = deploy()

    sfn = aws("stepfunctions")
    machine_arn = deployment.stack("test-main").physical_id("Machine")
    assert machine_arn == f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:greeter"
    execution_arn = sfn.start_execution(stateMachineArn=machine_arn)["executionArn"]
    deadline = time.monotonic() + 10
    while (described := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution never finished"
        time.sleep(0.05)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"greeting": f"hello from {REGION}"}
    assert [a["name"] for a in sfn.list_activities()["activities"]] == ["work"]


def test_buckets_get_their_policy_versioning_encryption_and_access_logging(
    assembly: AssemblyWriter, deploy: Callable[[], Deployment], aws: Callable[[str], Any]
) -> None:
    assembly.stack(
        "Main",
        {
            "Data": {
                "Type": "AWS::S3::Bucket",
                "Properties": {
                    "BucketName": "data",
                    "VersioningConfiguration": {"Status": "Enabled"},
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                        ]
                    },
                    "LoggingConfiguration": {"DestinationBucketName": {"Ref": "Logs"}, "LogFilePrefix": "data/"},
                },
            },
            "Logs": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "access-logs"}},
            # Created after the bucket that logs into it: logging must still be accepted.
            "LogsPolicy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": {"Ref": "Logs"},
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "logging.s3.amazonaws.com"},
                                "Action": "s3:PutObject",
                                "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": ["Logs", "Arn"]}, "/*"]]},
                                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
                            },
                            {
                                "Effect": "Deny",
                                "Principal": {"AWS": "*"},
                                "Action": "s3:*",
                                "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": ["Logs", "Arn"]}, "/*"]]},
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            },
                        ],
                    },
                },
            },
        },
    )

    deployment = deploy()

    s3 = aws("s3")
    assert s3.get_bucket_versioning(Bucket="data")["Status"] == "Enabled"
    rules = s3.get_bucket_encryption(Bucket="data")["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_logging(Bucket="data")["LoggingEnabled"] == {
        "TargetBucket": "access-logs",
        "TargetPrefix": "data/",
    }
    policy = json.loads(s3.get_bucket_policy(Bucket="access-logs")["Policy"])
    assert policy["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": "arn:aws:s3:::access-logs/*",
        }
    ]
    # The emulator cannot evaluate conditions: the TLS-only denial is left out (and reported), so objects can be put.
    note = next(r.note for r in deployment.resources if r.logical_id == "LogsPolicy")
    assert "left out: Deny s3:* if aws:SecureTransport" in note
    assert "condition not checked: Allow s3:PutObject if aws:SourceAccount" in note
    s3.put_object(Bucket="access-logs", Key="data/x.log", Body=b"log line")


def test_types_the_emulator_lacks_are_reported_not_dropped(
    assembly: AssemblyWriter, deploy: Callable[[], Deployment], aws: Callable[[str], Any]
) -> None:
    assembly.stack(
        "Main",
        {
            "Cdn": {"Type": "AWS::CloudFront::Distribution", "Properties": {"DistributionConfig": {}}},
            "Seeder": {"Type": "Custom::SeedData", "Properties": {"ServiceToken": "arn:aws:lambda:x"}},
            "Domain": parameter("/t/domain", {"Fn::GetAtt": ["Cdn", "DomainName"]}),
        },
    )

    deployment = deploy()

    missing = {r.logical_id: r for r in deployment.not_emulated}
    assert set(missing) == {"Cdn", "Seeder"}
    assert all(r.status == NOT_EMULATED and r.note for r in missing.values())
    assert "custom resource" in missing["Seeder"].note
    assert ssm_value(aws, "/t/domain") == f"{missing['Cdn'].physical_id}.DomainName"


@pytest.mark.parametrize(
    ("resources", "sections", "message"),
    [
        ({"P": parameter("/p", {"Ref": "Nope"})}, {}, "Ref to 'Nope', which is neither a parameter nor a resource"),
        (
            {"B": {"Type": "AWS::S3::Bucket"}, "P": parameter("/p", {"Fn::GetAtt": ["B", "Colour"]})},
            {},
            "resource 'B' has no attribute 'Colour'",
        ),
        ({"P": {**parameter("/p", "x"), "DependsOn": "Ghost"}}, {}, "DependsOn 'Ghost', which is not in the template"),
        ({"P": parameter("/p", {"Fn::ImportValue": "nobody"})}, {}, "Fn::ImportValue 'nobody' is not exported"),
        (
            {
                "S": {
                    "Type": "AWS::SNS::Subscription",
                    "Properties": {
                        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:t",
                        "Protocol": "pigeon",
                        "Endpoint": "x",
                    },
                }
            },
            {},
            "cannot create S (AWS::SNS::Subscription)",
        ),
        (
            {"P": parameter("/p", "x")},
            {
                "Rules": {
                    "OnlyOnMonday": {
                        "Assertions": [{"Assert": {"Fn::Equals": ["a", "b"]}, "AssertDescription": "not Monday"}]
                    }
                }
            },
            "rule OnlyOnMonday: not Monday",
        ),
    ],
    ids=["unknown-ref", "unknown-attribute", "missing-depends-on", "missing-export", "refused-by-emulator", "rule"],
)
def test_bad_templates_fail_with_one_line_naming_the_problem(
    assembly: AssemblyWriter,
    deploy: Callable[[], Deployment],
    resources: dict[str, Any],
    sections: dict[str, Any],
    message: str,
) -> None:
    assembly.stack("Main", resources, **sections)
    with pytest.raises(DeployError, match=re.escape(message)) as raised:
        deploy()
    assert "\n" not in str(raised.value)
    assert raised.value.exit_code == 1


def test_an_assembly_for_another_environment_is_refused(
    assembly: AssemblyWriter, deploy: Callable[[], Deployment]
) -> None:
    assembly.stack("Main", {"P": parameter("/p", "x")}, environment="aws://111122223333/us-west-2")
    with pytest.raises(DeployError, match="targets aws://111122223333/us-west-2 but the emulator is"):
        deploy()


def test_a_folder_without_an_assembly_is_refused(tmp_path: Path, aws: Callable[[str], Any]) -> None:
    with pytest.raises(AssemblyError, match=r"no cloud assembly at .*manifest\.json is missing"):
        Deployer(aws, account=ACCOUNT, region=REGION).deploy(tmp_path)
