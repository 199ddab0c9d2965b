"""Amazon ECR repositories."""

from __future__ import annotations

from typing import Any

from datapipe.local.deploy.model import (
    Created,
    Handler,
    ResourceRequest,
)
from datapipe.local.deploy.values import camel, pick, tag_list


def _repository(r: ResourceRequest) -> Created:
    create: dict[str, Any] = {"repositoryName": r.name("RepositoryName", 256, lowercase=True)}
    create.update(camel(pick(r.properties, "ImageTagMutability ImageScanningConfiguration EncryptionConfiguration")))
    if r.get("Tags"):
        create["tags"] = tag_list(r.get("Tags"))
    repository = r.client("ecr").create_repository(**create)["repository"]
    return Created(
        repository["repositoryName"], {"Arn": repository["repositoryArn"], "RepositoryUri": repository["repositoryUri"]}
    )


HANDLERS: dict[str, Handler] = {
    "AWS::ECR::Repository": _repository,
}
