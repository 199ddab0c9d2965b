"""What a deployment is made of: its report (stacks, resources, outputs), one resource to create, and the errors."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from datapipe.errors import DatapipeError

# The emulator plays an environment bootstrapped with a recent `cdk bootstrap` (templates require 6 or more).
BOOTSTRAP_VERSION = "30"
CREATED = "created"
NOT_EMULATED = "not emulated"
SKIPPED = "skipped"

ClientFactory = Callable[[str], Any]


class DeployError(DatapipeError):
    """A template cannot be evaluated, or the emulator refused one of its resources."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=1)


class NoValue:
    """`AWS::NoValue`: the property it stands for is removed."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = NoValue()


# ---------------------------------------------------------------------------------------------------------------------
# What a deployment produced


@dataclass(frozen=True)
class DeployedResource:
    stack_name: str
    logical_id: str
    resource_type: str
    physical_id: str
    status: str  # CREATED, NOT_EMULATED or SKIPPED
    note: str = ""


@dataclass
class DeployedStack:
    artifact_id: str
    stack_name: str
    stack_id: str
    resources: list[DeployedResource] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    def physical_id(self, logical_id: str) -> str:
        for resource in self.resources:
            if resource.logical_id == logical_id:
                return resource.physical_id
        raise KeyError(f"stack '{self.stack_name}' has no resource '{logical_id}'")


@dataclass
class Deployment:
    account: str
    region: str
    stacks: list[DeployedStack] = field(default_factory=list)
    exports: dict[str, str] = field(default_factory=dict)
    uploaded_assets: list[str] = field(default_factory=list)  # s3://bucket/key
    notes: list[str] = field(default_factory=list)  # assembly-level remarks (e.g. Docker image assets)

    def stack(self, name_or_id: str) -> DeployedStack:
        for stack in self.stacks:
            if name_or_id in (stack.stack_name, stack.artifact_id):
                return stack
        raise KeyError(f"no deployed stack '{name_or_id}'")

    @property
    def resources(self) -> list[DeployedResource]:
        return [resource for stack in self.stacks for resource in stack.resources]

    def resources_of_type(self, resource_type: str) -> list[DeployedResource]:
        return [resource for resource in self.resources if resource.resource_type == resource_type]

    @property
    def not_emulated(self) -> list[DeployedResource]:
        return [resource for resource in self.resources if resource.status == NOT_EMULATED]

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "region": self.region,
            "stacks": [
                {
                    "stackName": stack.stack_name,
                    "stackId": stack.stack_id,
                    "outputs": stack.outputs,
                    "resources": [
                        {
                            "logicalId": resource.logical_id,
                            "type": resource.resource_type,
                            "physicalId": resource.physical_id,
                            "status": resource.status,
                            **({"note": resource.note} if resource.note else {}),
                        }
                        for resource in stack.resources
                    ],
                }
                for stack in self.stacks
            ],
            "exports": self.exports,
            "uploadedAssets": self.uploaded_assets,
            "notes": self.notes,
        }


@dataclass
class Created:
    physical_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    status: str = CREATED
    note: str = ""
    finalize: Callable[[], Any] | None = None  # configuration that must wait for the rest of the stack


# ---------------------------------------------------------------------------------------------------------------------
# Resources


@dataclass
class ResourceRequest:
    """One resource to create: its resolved properties and what a handler needs around them."""

    logical_id: str
    resource_type: str
    properties: dict[str, Any]
    stack_name: str
    account: str
    region: str
    partition: str
    client: ClientFactory

    def generated_name(self, max_length: int = 64, *, lowercase: bool = False, separator: str = "-") -> str:
        """A CloudFormation-like name `<stack>-<LogicalId>-<SUFFIX>`, stable for a given stack and logical id."""
        suffix = hashlib.sha256(f"{self.stack_name}/{self.logical_id}".encode()).hexdigest()[:12].upper()
        head = f"{self.stack_name}{separator}{self.logical_id}"[: max_length - len(suffix) - 1]
        name = f"{head}{separator}{suffix}"
        return name.lower() if lowercase else name

    def name(self, key: str, max_length: int = 64, *, lowercase: bool = False) -> str:
        given = self.properties.get(key)
        return str(given) if given else self.generated_name(max_length, lowercase=lowercase)

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"

    def get(self, key: str, default: Any = None) -> Any:
        return self.properties.get(key, default)


Handler = Callable[[ResourceRequest], Created]
