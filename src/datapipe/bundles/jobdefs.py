"""Batch job definitions for transforms, created when missing and revised only when they no longer fit.

As Disdat does, an existing job definition is reused when its image, vCPUs, memory and job role all match what the
run asks for, and (datapipe's own rule) its command is the transform's fixed command (names.job_command); otherwise a
new revision of the same name is registered (the name never changes, see names.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datapipe.bundles.names import JOB_PARAMETER_DEFAULTS, job_command

# Copied from the newest revision into a new one, so settings made at deploy time (logging, timeout,
# retries, Fargate's execution role and network) survive a change of image or size.
CARRIED_OVER = ("parameters", "retryStrategy", "propagateTags", "timeout", "tags", "platformCapabilities")
LEGACY_SIZE_KEYS = ("vcpus", "memory")


@dataclass(frozen=True)
class JobSpec:
    """What makes two job definitions interchangeable for a run."""

    image: str
    vcpus: float
    memory_mib: int
    job_role_arn: str
    command: tuple[str, ...]  # what the job runs: a revision running anything else is never reused

    @staticmethod
    def of(job_definition: dict[str, Any]) -> JobSpec:
        container = job_definition.get("containerProperties", {})
        sizes = {r["type"]: r["value"] for r in container.get("resourceRequirements", [])}
        return JobSpec(
            image=str(container.get("image", "")),
            vcpus=float(sizes.get("VCPU", container.get("vcpus", 0))),
            memory_mib=int(sizes.get("MEMORY", container.get("memory", 0))),
            job_role_arn=str(container.get("jobRoleArn", "")),
            command=tuple(str(part) for part in container.get("command") or ()),
        )

    def resource_requirements(self) -> list[dict[str, str]]:
        vcpus = int(self.vcpus) if self.vcpus == int(self.vcpus) else self.vcpus
        return [{"type": "VCPU", "value": str(vcpus)}, {"type": "MEMORY", "value": str(self.memory_mib)}]


def newest_active(client: Any, name: str) -> dict[str, Any] | None:
    paginator = client.get_paginator("describe_job_definitions")
    revisions = [
        definition
        for page in paginator.paginate(jobDefinitionName=name, status="ACTIVE")
        for definition in page["jobDefinitions"]
    ]
    return max(revisions, key=lambda d: int(d["revision"])) if revisions else None


def transform_spec(transform: str, *, image: str, vcpus: float, memory_mib: int, job_role_arn: str) -> JobSpec:
    """What a job definition of `transform` must be: these sizes, and the transform's fixed command."""
    return JobSpec(image, vcpus, memory_mib, job_role_arn, tuple(job_command(transform)))


def ensure_job_definition(
    client: Any, name: str, spec: JobSpec, *, transform: str, execution_role_arn: str | None = None
) -> tuple[str, bool]:
    """(ARN, registered?) of a job definition named `name` that matches `spec`, registering a revision if needed."""
    current = newest_active(client, name)
    if current is not None and JobSpec.of(current) == spec:
        return str(current["jobDefinitionArn"]), False

    if current is not None:
        deployed = current["containerProperties"].items()
        container: dict[str, Any] = {key: value for key, value in deployed if key not in LEGACY_SIZE_KEYS}
        extra = {key: current[key] for key in CARRIED_OVER if current.get(key)}
    else:
        container = {}
        extra = {"platformCapabilities": ["FARGATE" if execution_role_arn else "EC2"]}
        if execution_role_arn:
            container["executionRoleArn"] = execution_role_arn
            container["networkConfiguration"] = {"assignPublicIp": "DISABLED"}
    container.update(
        image=spec.image,
        jobRoleArn=spec.job_role_arn,
        resourceRequirements=spec.resource_requirements(),
        command=list(spec.command),
    )
    extra["parameters"] = {**extra.get("parameters", {}), **JOB_PARAMETER_DEFAULTS}
    extra["tags"] = {**extra.get("tags", {}), "datapipe:transform": transform}
    registered = client.register_job_definition(
        jobDefinitionName=name, type="container", containerProperties=container, **extra
    )
    return str(registered["jobDefinitionArn"]), True
