"""The deployer: a cloud assembly's stacks, in dependency order, created through the services' own APIs."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from datapipe.local.assembly import CloudAssembly, FileAsset, StackArtifact, read_assembly
from datapipe.local.deploy.evaluator import TemplateEvaluator, creation_order
from datapipe.local.deploy.model import (
    BOOTSTRAP_VERSION,
    NOT_EMULATED,
    ClientFactory,
    Created,
    DeployedResource,
    DeployedStack,
    DeployError,
    Deployment,
    ResourceRequest,
)
from datapipe.local.deploy.resources import HANDLERS, not_emulated_reason
from datapipe.local.deploy.values import text


class Deployer:
    """Deploys every stack of an assembly into the emulator reached through `client`."""

    def __init__(self, client: ClientFactory, *, account: str, region: str, partition: str = "aws") -> None:
        self.client = client
        self.account = account
        self.region = region
        self.partition = partition

    def deploy(self, assembly_dir: Path | str) -> Deployment:
        assembly = read_assembly(Path(assembly_dir))
        self._check_environment(assembly)
        deployment = Deployment(account=self.account, region=self.region)
        self._bootstrap(assembly)
        self._upload_assets(assembly, deployment)
        if assembly.docker_image_assets:
            deployment.notes.append(
                f"{len(assembly.docker_image_assets)} Docker image asset(s) not built: no Docker engine locally"
            )
        for stack in assembly.stacks:
            deployment.stacks.append(self._deploy_stack(stack, deployment))
        return deployment

    def _check_environment(self, assembly: CloudAssembly) -> None:
        for stack in assembly.stacks:
            if stack.account not in (None, self.account) or stack.region not in (None, self.region):
                raise DeployError(
                    f"stack '{stack.stack_name}' targets aws://{stack.account}/{stack.region} but the emulator is "
                    f"aws://{self.account}/{self.region}; synthesize without an account or with these values"
                )

    def _substitute_environment(self, text: str) -> str:
        return (
            text.replace("${AWS::AccountId}", self.account)
            .replace("${AWS::Region}", self.region)
            .replace("${AWS::Partition}", self.partition)
        )

    def _bootstrap(self, assembly: CloudAssembly) -> None:
        """What `cdk bootstrap` leaves behind: the version parameter and the asset buckets the templates name."""
        ssm = self.client("ssm")
        for parameter in {stack.bootstrap_version_parameter for stack in assembly.stacks} - {None}:
            ssm.put_parameter(Name=str(parameter), Value=BOOTSTRAP_VERSION, Type="String", Overwrite=True)
        s3 = self.client("s3")
        existing = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
        for bucket in sorted({self._substitute_environment(asset.bucket_name) for asset in assembly.file_assets}):
            if bucket not in existing:
                create: dict[str, Any] = {"Bucket": bucket}
                if self.region != "us-east-1":
                    create["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
                s3.create_bucket(**create)

    def _upload_assets(self, assembly: CloudAssembly, deployment: Deployment) -> None:
        s3 = self.client("s3")
        for asset in assembly.file_assets:
            bucket = self._substitute_environment(asset.bucket_name)
            key = self._substitute_environment(asset.object_key)
            s3.put_object(Bucket=bucket, Key=key, Body=_asset_bytes(asset))
            deployment.uploaded_assets.append(f"s3://{bucket}/{key}")

    def _parameter_values(self, stack: StackArtifact, template: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, parameter in template.get("Parameters", {}).items():
            if "Default" not in parameter:
                raise DeployError(f"stack '{stack.stack_name}': parameter '{name}' has no default and no value")
            default = parameter["Default"]
            kind = str(parameter.get("Type", "String"))
            if kind.startswith("AWS::SSM::Parameter::Value<"):
                try:
                    default = self.client("ssm").get_parameter(Name=default)["Parameter"]["Value"]
                except ClientError:
                    raise DeployError(
                        f"stack '{stack.stack_name}': parameter '{name}' reads SSM parameter '{default}', "
                        "which does not exist"
                    ) from None
                if kind.endswith("<List<String>>") or kind.endswith("<CommaDelimitedList>"):
                    default = default.split(",")
            elif kind in ("CommaDelimitedList", "List<Number>") or kind.startswith("List<"):
                default = [item.strip() for item in str(default).split(",")]
            values[name] = default
        return values

    def _check_rules(self, stack: StackArtifact, template: Mapping[str, Any], evaluator: TemplateEvaluator) -> None:
        for rule_name, rule in template.get("Rules", {}).items():
            if "RuleCondition" in rule and not evaluator.resolve(rule["RuleCondition"]):
                continue
            for assertion in rule.get("Assertions", []):
                if not evaluator.resolve(assertion["Assert"]):
                    description = assertion.get("AssertDescription", "an assertion failed")
                    raise DeployError(f"stack '{stack.stack_name}': rule {rule_name}: {description}")

    def _deploy_stack(self, stack: StackArtifact, deployment: Deployment) -> DeployedStack:
        template = stack.template()
        stack_id = (
            f"arn:{self.partition}:cloudformation:{self.region}:{self.account}:stack/{stack.stack_name}/"
            f"{uuid.uuid5(uuid.NAMESPACE_URL, stack.stack_name)}"
        )
        evaluator = TemplateEvaluator(
            template=template,
            stack_name=stack.stack_name,
            stack_id=stack_id,
            account=self.account,
            region=self.region,
            partition=self.partition,
            exports=deployment.exports,
            stack_outputs={deployed.stack_name: deployed.outputs for deployed in deployment.stacks},
            parameter_values=self._parameter_values(stack, template),
        )
        self._check_rules(stack, template, evaluator)
        deployed = DeployedStack(artifact_id=stack.artifact_id, stack_name=stack.stack_name, stack_id=stack_id)
        resources: dict[str, Any] = template.get("Resources", {})
        for logical_id in creation_order(resources):
            definition = resources[logical_id]
            if "Condition" in definition and not evaluator.condition(definition["Condition"]):
                continue
            created = self._create(stack, logical_id, definition, evaluator)
            evaluator.resources[logical_id] = created
            deployed.resources.append(
                DeployedResource(
                    stack_name=stack.stack_name,
                    logical_id=logical_id,
                    resource_type=definition["Type"],
                    physical_id=created.physical_id,
                    status=created.status,
                    note=created.note,
                )
            )
        for logical_id, created in evaluator.resources.items():
            if created.finalize is not None:
                self._guarded(stack, logical_id, resources[logical_id]["Type"], created.finalize)
        for output_name, output in template.get("Outputs", {}).items():
            if "Condition" in output and not evaluator.condition(output["Condition"]):
                continue
            value = text(evaluator.resolve(output["Value"]))
            deployed.outputs[output_name] = value
            if "Export" in output:
                export_name = str(evaluator.resolve(output["Export"]["Name"]))
                if export_name in deployment.exports:
                    raise DeployError(f"stack '{stack.stack_name}': export '{export_name}' is already exported")
                deployment.exports[export_name] = value
        return deployed

    def _create(
        self, stack: StackArtifact, logical_id: str, definition: Mapping[str, Any], evaluator: TemplateEvaluator
    ) -> Created:
        resource_type = definition.get("Type", "")
        request = ResourceRequest(
            logical_id=logical_id,
            resource_type=resource_type,
            properties=evaluator.resolve(definition.get("Properties", {})),
            stack_name=stack.stack_name,
            account=self.account,
            region=self.region,
            partition=self.partition,
            client=self.client,
        )
        handler = HANDLERS.get(resource_type)
        if handler is None:
            return Created(request.generated_name(), status=NOT_EMULATED, note=not_emulated_reason(resource_type))
        return self._guarded(stack, logical_id, resource_type, lambda: handler(request))

    def _guarded(self, stack: StackArtifact, logical_id: str, resource_type: str, action: Callable[[], Any]) -> Any:
        """Run `action`, turning what the emulator refuses into a one-line error that names the resource."""
        try:
            return action()
        except (ClientError, BotoCoreError, KeyError, TypeError) as error:
            raise DeployError(
                f"stack '{stack.stack_name}': cannot create {logical_id} ({resource_type}): {_describe(error)}"
            ) from error


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Message") or error)
    if isinstance(error, KeyError):
        return f"missing property {error}"
    return str(error)


def _asset_bytes(asset: FileAsset) -> bytes:
    if not asset.source.exists():
        raise DeployError(f"asset {asset.asset_hash}: {asset.source} does not exist in the assembly")
    if asset.packaging == "zip" and asset.source.is_dir():
        return _zip_directory(asset.source)
    return asset.source.read_bytes()


def _zip_directory(directory: Path) -> bytes:
    """A reproducible zip of a directory, as the CDK CLI publishes directory assets."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(directory).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (path.stat().st_mode & 0o777) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()
