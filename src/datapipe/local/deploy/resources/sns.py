"""SNS topics, subscriptions and topic policies."""

from __future__ import annotations

from typing import Any

from datapipe.local.deploy.model import (
    Created,
    Handler,
    ResourceRequest,
)
from datapipe.local.deploy.values import json_text, pick, tag_list, text


def _topic(r: ResourceRequest) -> Created:
    sns = r.client("sns")
    name = r.name("TopicName", 256)
    attributes = {
        key: text(value)
        for key, value in pick(r.properties, "DisplayName KmsMasterKeyId FifoTopic ContentBasedDeduplication").items()
    }
    create: dict[str, Any] = {"Name": name, "Attributes": attributes}
    if r.get("Tags"):
        create["Tags"] = tag_list(r.get("Tags"))
    arn = sns.create_topic(**create)["TopicArn"]
    for subscription in r.get("Subscription", []):
        sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
    return Created(arn, {"TopicArn": arn, "TopicName": name})


def _subscription(r: ResourceRequest) -> Created:
    attributes = {
        key: json_text(r.get(key)) if key in ("FilterPolicy", "RedrivePolicy") else text(r.get(key))
        for key in ("FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy")
        if key in r.properties
    }
    subscription = r.client("sns").subscribe(
        TopicArn=r.get("TopicArn"),
        Protocol=r.get("Protocol"),
        Endpoint=r.get("Endpoint"),
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )
    return Created(subscription["SubscriptionArn"])


def _topic_policy(r: ResourceRequest) -> Created:
    for topic in r.get("Topics", []):
        r.client("sns").set_topic_attributes(
            TopicArn=topic, AttributeName="Policy", AttributeValue=json_text(r.get("PolicyDocument"))
        )
    return Created(r.generated_name())


HANDLERS: dict[str, Handler] = {
    "AWS::SNS::Topic": _topic,
    "AWS::SNS::Subscription": _subscription,
    "AWS::SNS::TopicPolicy": _topic_policy,
}
