"""DynamoDB tables: keys, billing, encryption, time to live and point-in-time recovery as the template sets them."""

from __future__ import annotations

from typing import Any

from datapipe.local.deploy.model import (
    Created,
    Handler,
    ResourceRequest,
)
from datapipe.local.deploy.values import pick, tag_list


def _table(r: ResourceRequest) -> Created:
    dynamodb = r.client("dynamodb")
    name = r.name("TableName", 255)
    create: dict[str, Any] = {
        "TableName": name,
        **pick(r.properties, "KeySchema AttributeDefinitions GlobalSecondaryIndexes LocalSecondaryIndexes "
               "ProvisionedThroughput StreamSpecification"),
        "BillingMode": r.get("BillingMode", "PROVISIONED"),
    }
    sse = r.get("SSESpecification")
    if sse:
        create["SSESpecification"] = {
            "Enabled": bool(sse.get("SSEEnabled")),
            **({"SSEType": sse["SSEType"]} if sse.get("SSEType") else {}),
            **({"KMSMasterKeyId": sse["KMSMasterKeyId"]} if sse.get("KMSMasterKeyId") else {}),
        }
    if r.get("Tags"):
        create["Tags"] = tag_list(r.get("Tags"))
    table = dynamodb.create_table(**create)["TableDescription"]
    ttl = r.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
        )
    recovery = r.get("PointInTimeRecoverySpecification")
    if recovery and recovery.get("PointInTimeRecoveryEnabled"):
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    attributes = {"Arn": table["TableArn"]}
    if table.get("LatestStreamArn"):
        attributes["StreamArn"] = table["LatestStreamArn"]
    return Created(name, attributes)


HANDLERS: dict[str, Handler] = {
    "AWS::DynamoDB::Table": _table,
}
