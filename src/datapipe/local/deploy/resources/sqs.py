"""SQS queues and queue policies."""

from __future__ import annotations

from typing import Any

from datapipe.local.deploy.model import (
    Created,
    Handler,
    ResourceRequest,
)
from datapipe.local.deploy.values import json_text, tag_map, text

SQS_ATTRIBUTES = (
    "DelaySeconds MaximumMessageSize MessageRetentionPeriod ReceiveMessageWaitTimeSeconds VisibilityTimeout "
    "KmsMasterKeyId KmsDataKeyReusePeriodSeconds SqsManagedSseEnabled FifoQueue ContentBasedDeduplication "
    "RedrivePolicy RedriveAllowPolicy"
)


def _queue(r: ResourceRequest) -> Created:
    sqs = r.client("sqs")
    name = r.get("QueueName") or r.generated_name(80 - 5 if r.get("FifoQueue") else 80)
    if r.get("FifoQueue") and not name.endswith(".fifo"):
        name += ".fifo"
    attributes = {
        key: json_text(r.get(key)) if key.startswith("Redrive") else text(r.get(key))
        for key in SQS_ATTRIBUTES.split()
        if key in r.properties
    }
    create: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
    if r.get("Tags"):
        create["tags"] = tag_map(r.get("Tags"))
    url = sqs.create_queue(**create)["QueueUrl"]
    arn = r.arn("sqs", name)
    return Created(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})


def _queue_policy(r: ResourceRequest) -> Created:
    for queue_url in r.get("Queues", []):
        r.client("sqs").set_queue_attributes(
            QueueUrl=queue_url, Attributes={"Policy": json_text(r.get("PolicyDocument"))}
        )
    return Created(r.generated_name())


HANDLERS: dict[str, Handler] = {
    "AWS::SQS::Queue": _queue,
    "AWS::SQS::QueuePolicy": _queue_policy,
}
