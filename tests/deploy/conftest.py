"""Hand-written cloud assemblies deployed into moto's in-memory mock, to test the deployer piece by piece."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from datapipe.local.deploy import Deployer, Deployment

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
