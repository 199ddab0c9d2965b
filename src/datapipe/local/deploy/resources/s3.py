"""Amazon S3 buckets (with their configuration) and bucket policies."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from datapipe.local.deploy.model import (
    Created,
    Handler,
    ResourceRequest,
)
from datapipe.local.deploy.values import pick, tag_list


def _bucket(r: ResourceRequest) -> Created:
    s3 = r.client("s3")
    name = r.name("BucketName", 63, lowercase=True)
    create: dict[str, Any] = {"Bucket": name}
    if r.region != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": r.region}
    s3.create_bucket(**create)
    if "VersioningConfiguration" in r.properties:
        s3.put_bucket_versioning(
            Bucket=name, VersioningConfiguration={"Status": r.properties["VersioningConfiguration"]["Status"]}
        )
    if "BucketEncryption" in r.properties:
        rules = [
            {
                "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                **pick(rule, "BucketKeyEnabled"),
            }
            for rule in r.properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in r.properties:
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=r.properties["PublicAccessBlockConfiguration"]
        )
    if "OwnershipControls" in r.properties:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=r.properties["OwnershipControls"])
    if "LifecycleConfiguration" in r.properties:
        rules = [_lifecycle_rule(rule) for rule in r.properties["LifecycleConfiguration"]["Rules"]]
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    if "NotificationConfiguration" in r.properties:
        s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration=_bucket_notifications(r.properties["NotificationConfiguration"])
        )
    if r.get("Tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(r.get("Tags"))})
    return Created(
        name,
        {
            "Arn": f"arn:{r.partition}:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{r.region}.amazonaws.com",
            "DualStackDomainName": f"{name}.s3.dualstack.{r.region}.amazonaws.com",
            "WebsiteURL": f"http://{name}.s3-website-{r.region}.amazonaws.com",
        },
        finalize=_bucket_logging(r, name),
    )


def _bucket_logging(r: ResourceRequest, name: str) -> Callable[[], None] | None:
    """Access logging, applied once the stack's other resources exist.

    S3 checks that the target bucket lets the logging service write, and the target's bucket policy is a
    separate resource that templates do not order before the source bucket.
    """
    logging = r.get("LoggingConfiguration") or {}
    if "DestinationBucketName" not in logging:
        return None
    status = {
        "LoggingEnabled": {
            "TargetBucket": logging["DestinationBucketName"],
            "TargetPrefix": logging.get("LogFilePrefix", ""),
        }
    }
    return lambda: r.client("s3").put_bucket_logging(Bucket=name, BucketLoggingStatus=status)


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "Id" in rule:
        converted["ID"] = rule["Id"]
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": rule["ExpirationInDays"]}
    if "Transitions" in rule:
        converted["Transitions"] = [
            {"Days": t["TransitionInDays"], "StorageClass": t["StorageClass"]} for t in rule["Transitions"]
        ]
    if "NoncurrentVersionExpiration" in rule:
        converted["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
        }
    elif "NoncurrentVersionExpirationInDays" in rule:
        converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": rule["NoncurrentVersionExpirationInDays"]}
    if "AbortIncompleteMultipartUpload" in rule:
        converted["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    return converted


def _bucket_notifications(config: Mapping[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    if config.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        converted["EventBridgeConfiguration"] = {}
    for source, target, arn_key in (
        ("LambdaConfigurations", "LambdaFunctionConfigurations", "Function"),
        ("QueueConfigurations", "QueueConfigurations", "Queue"),
        ("TopicConfigurations", "TopicConfigurations", "Topic"),
    ):
        if source in config:
            converted[target] = [
                {
                    f"{arn_key}Arn" if arn_key != "Function" else "LambdaFunctionArn": item[arn_key],
                    "Events": [item["Event"]],
                }
                | ({"Filter": {"Key": {"FilterRules": item["Filter"]["S3Key"]["Rules"]}}} if "Filter" in item else {})
                for item in config[source]
            ]
    return converted


def _bucket_policy(r: ResourceRequest) -> Created:
    """The policy as far as the emulator can evaluate it.

    moto checks a bucket policy on object requests but has none of the request context that conditions read
    (aws:SecureTransport, s3:TlsVersion, aws:SourceArn, ...), and it treats any matching conditioned statement as a
    denial. Applied as written, the TLS-only statements every bucket carries would refuse every object request. So
    conditioned Deny statements are left out, conditioned Allow statements (e.g. the grant to the S3 logging
    service) keep their effect without the condition, and both are named in the deployment report. The emulator
    does not check identity policies either (moto's default), so local runs are not an access-control test.
    """
    document = r.get("PolicyDocument")
    if isinstance(document, str):
        document = json.loads(document)
    statements = document.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    kept: list[dict[str, Any]] = []
    changes: list[str] = []
    for statement in statements:
        if "Condition" not in statement:
            kept.append(statement)
        elif statement.get("Effect") == "Deny":
            changes.append(f"left out: {_statement_summary(statement)}")
        else:
            kept.append({key: value for key, value in statement.items() if key != "Condition"})
            changes.append(f"condition not checked: {_statement_summary(statement)}")
    if kept:
        r.client("s3").put_bucket_policy(Bucket=r.get("Bucket"), Policy=json.dumps({**document, "Statement": kept}))
    return Created(r.generated_name(), note="; ".join(changes))


def _statement_summary(statement: Mapping[str, Any]) -> str:
    keys = sorted({key for condition in statement["Condition"].values() for key in condition})
    return f"{statement.get('Effect')} {statement.get('Action')} if {', '.join(keys)}"


HANDLERS: dict[str, Handler] = {
    "AWS::S3::Bucket": _bucket,
    "AWS::S3::BucketPolicy": _bucket_policy,
}
