"""AWS Batch API behaviour moto lacks (the jobs themselves run in batch_runner).

CreateComputeEnvironment without `serviceRole`: AWS Batch uses its service-linked role, AWSServiceRoleForBatch,
creating it on first use (moto refuses the request: "ServiceRole is required").
"""

from __future__ import annotations

from typing import Any

from moto.batch.models import BatchBackend

from datapipe.local.seams import seam

BATCH_SERVICE = "batch.amazonaws.com"
CREATE_COMPUTE_ENVIRONMENT = seam(
    BatchBackend,
    "create_compute_environment",
    ("self", "compute_environment_name", "_type", "state", "compute_resources", "service_role", "tags"),
    "without a service role, Batch's service-linked role (as in AWS)",
)


def batch_service_linked_role(backend: BatchBackend) -> str:
    """The ARN of AWSServiceRoleForBatch in the backend's account, created on first use as AWS does."""
    iam = backend.iam_backend
    existing, _ = iam.list_roles(path_prefix=f"/aws-service-role/{BATCH_SERVICE}/")
    if existing:
        return str(existing[0].arn)
    return str(iam.create_service_linked_role(BATCH_SERVICE, description="", suffix="").arn)


def _create_compute_environment(
    self: BatchBackend,
    compute_environment_name: str,
    _type: str,
    state: str,
    compute_resources: dict[str, Any],
    service_role: str | None,
    tags: dict[str, str] | None = None,
) -> Any:
    role = service_role or batch_service_linked_role(self)
    return CREATE_COMPUTE_ENVIRONMENT.call_original(
        self, compute_environment_name, _type, state, compute_resources, role, tags
    )


def install() -> None:
    CREATE_COMPUTE_ENVIRONMENT.patch(_create_compute_environment)
