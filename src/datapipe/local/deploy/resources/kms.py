"""KMS keys and aliases."""

from __future__ import annotations

from typing import Any

from datapipe.local.deploy.model import (
    Created,
    Handler,
    ResourceRequest,
)
from datapipe.local.deploy.values import json_text, pick, tag_map


def _kms_key(r: ResourceRequest) -> Created:
    kms = r.client("kms")
    create: dict[str, Any] = pick(r.properties, "Description KeyUsage KeySpec MultiRegion")
    if "KeyPolicy" in r.properties:
        create["Policy"] = json_text(r.get("KeyPolicy"))
    if r.get("Tags"):
        create["Tags"] = [{"TagKey": k, "TagValue": v} for k, v in tag_map(r.get("Tags")).items()]
    key = kms.create_key(**create)["KeyMetadata"]
    if r.get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=key["KeyId"])
    return Created(key["KeyId"], {"Arn": key["Arn"], "KeyId": key["KeyId"]})


def _kms_alias(r: ResourceRequest) -> Created:
    r.client("kms").create_alias(AliasName=r.get("AliasName"), TargetKeyId=r.get("TargetKeyId"))
    return Created(r.get("AliasName"))


HANDLERS: dict[str, Handler] = {
    "AWS::KMS::Key": _kms_key,
    "AWS::KMS::Alias": _kms_alias,
}
