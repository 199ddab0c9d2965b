"""Reading a CDK cloud assembly (what `cdk synth` writes): its stacks in deployment order and its file assets."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datapipe.errors import DatapipeError

STACK_ARTIFACT = "aws:cloudformation:stack"
ASSET_MANIFEST_ARTIFACT = "cdk:asset-manifest"
NESTED_ASSEMBLY_ARTIFACT = "cdk:cloud-assembly"
UNKNOWN_ACCOUNT = "unknown-account"
UNKNOWN_REGION = "unknown-region"


class AssemblyError(DatapipeError):
    """The cloud assembly is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class FileAsset:
    """A file or a directory (zipped on upload) that a template expects in the bootstrap bucket."""

    asset_hash: str
    source: Path
    packaging: str  # "file" or "zip"
    bucket_name: str  # may hold ${AWS::AccountId}-style placeholders, as the asset manifest writes them
    object_key: str


@dataclass(frozen=True)
class StackArtifact:
    artifact_id: str
    stack_name: str
    template_path: Path
    account: str | None  # None when the assembly was synthesized without an account
    region: str | None
    dependencies: tuple[str, ...]  # ids of the artifacts (stacks, asset manifests) that must be deployed first
    bootstrap_version_parameter: str | None

    def template(self) -> dict[str, Any]:
        try:
            template = json.loads(self.template_path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise AssemblyError(f"stack '{self.stack_name}': cannot read {self.template_path.name}: {error}") from None
        if not isinstance(template, dict):
            raise AssemblyError(f"stack '{self.stack_name}': {self.template_path.name} is not a JSON object")
        return template


@dataclass
class CloudAssembly:
    directory: Path
    stacks: list[StackArtifact] = field(default_factory=list)  # in deployment order
    file_assets: list[FileAsset] = field(default_factory=list)
    docker_image_assets: list[str] = field(default_factory=list)  # hashes; no Docker engine exists locally

    @property
    def region(self) -> str | None:
        """The one region the stacks were synthesized for, or None when they name none (or several)."""
        regions = {stack.region for stack in self.stacks if stack.region}
        return regions.pop() if len(regions) == 1 else None

    def stack(self, name_or_id: str) -> StackArtifact:
        for stack in self.stacks:
            if name_or_id in (stack.stack_name, stack.artifact_id):
                return stack
        raise AssemblyError(f"stack '{name_or_id}' is not in the assembly at {self.directory}")


def read_assembly(directory: Path) -> CloudAssembly:
    """Every stack of the assembly (nested assemblies of CDK Stages included), ordered so dependencies come first."""
    assembly = CloudAssembly(directory=directory)
    stacks: dict[str, StackArtifact] = {}
    other_artifacts: set[str] = set()
    _read_into(directory, assembly, stacks, other_artifacts)
    assembly.stacks = _dependency_order(stacks, other_artifacts)
    return assembly


def _read_manifest(directory: Path) -> dict[str, Any]:
    manifest_path = directory / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        raise AssemblyError(
            f"no cloud assembly at {directory} (manifest.json is missing); run `datapipe synth`"
        ) from None
    except (OSError, json.JSONDecodeError) as error:
        raise AssemblyError(f"cannot read {manifest_path}: {error}") from None
    if not isinstance(manifest, dict):
        raise AssemblyError(f"{manifest_path} is not a JSON object")
    return manifest


def _read_into(
    directory: Path, assembly: CloudAssembly, stacks: dict[str, StackArtifact], other_artifacts: set[str]
) -> None:
    artifacts: dict[str, Any] = _read_manifest(directory).get("artifacts", {})
    for artifact_id, artifact in artifacts.items():
        kind = artifact.get("type")
        if kind != STACK_ARTIFACT:
            other_artifacts.add(artifact_id)
        properties = artifact.get("properties", {})
        if kind == ASSET_MANIFEST_ARTIFACT:
            _read_assets(directory, directory / properties["file"], assembly)
        elif kind == NESTED_ASSEMBLY_ARTIFACT:
            _read_into(directory / properties["directoryName"], assembly, stacks, other_artifacts)
        elif kind == STACK_ARTIFACT:
            account, region = _parse_environment(artifact.get("environment", ""))
            stacks[artifact_id] = StackArtifact(
                artifact_id=artifact_id,
                stack_name=properties.get("stackName", artifact_id),
                template_path=directory / properties["templateFile"],
                account=account,
                region=region,
                dependencies=tuple(artifact.get("dependencies", [])),
                bootstrap_version_parameter=properties.get("bootstrapStackVersionSsmParameter"),
            )


def _parse_environment(environment: str) -> tuple[str | None, str | None]:
    """`aws://123456789012/eu-west-1` -> ("123456789012", "eu-west-1"); unknown parts -> None."""
    _, _, rest = environment.partition("aws://")
    account, _, region = rest.partition("/")
    return (
        account if account and account != UNKNOWN_ACCOUNT else None,
        region if region and region != UNKNOWN_REGION else None,
    )


def _read_assets(directory: Path, manifest_path: Path, assembly: CloudAssembly) -> None:
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise AssemblyError(f"cannot read asset manifest {manifest_path.name}: {error}") from None
    known = {(asset.asset_hash, asset.bucket_name, asset.object_key) for asset in assembly.file_assets}
    for asset_hash, asset in manifest.get("files", {}).items():
        source = asset.get("source", {})
        if "path" not in source:
            raise AssemblyError(
                f"asset {asset_hash} in {manifest_path.name} has no source path (executables unsupported)"
            )
        for destination in asset.get("destinations", {}).values():
            key = (asset_hash, destination["bucketName"], destination["objectKey"])
            if key in known:
                continue
            known.add(key)
            assembly.file_assets.append(
                FileAsset(
                    asset_hash=asset_hash,
                    source=directory / source["path"],
                    packaging=source.get("packaging", "file"),
                    bucket_name=destination["bucketName"],
                    object_key=destination["objectKey"],
                )
            )
    assembly.docker_image_assets.extend(manifest.get("dockerImages", {}))


def _dependency_order(stacks: dict[str, StackArtifact], other_artifacts: set[str]) -> list[StackArtifact]:
    """Depth-first topological order, stable in manifest order; a cycle or a missing stack is an error."""
    ordered: list[StackArtifact] = []
    state: dict[str, str] = {}

    def visit(artifact_id: str, path: tuple[str, ...]) -> None:
        if state.get(artifact_id) == "done":
            return
        if state.get(artifact_id) == "visiting":
            raise AssemblyError(f"stacks depend on each other in a cycle: {' -> '.join((*path, artifact_id))}")
        stack = stacks.get(artifact_id)
        if stack is None:
            raise AssemblyError(f"stack '{path[-1]}' depends on '{artifact_id}', which is not in the assembly")
        state[artifact_id] = "visiting"
        for dependency in stack.dependencies:
            if dependency not in other_artifacts:  # asset manifests are uploaded before any stack
                visit(dependency, (*path, artifact_id))
        state[artifact_id] = "done"
        ordered.append(stack)

    for artifact_id in stacks:
        visit(artifact_id, ())
    return ordered
