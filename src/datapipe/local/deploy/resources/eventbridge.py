"""EventBridge event buses and rules with their targets."""

from __future__ import annotations

from typing import Any

from datapipe.local.deploy.model import (
    Created,
    Handler,
    ResourceRequest,
)
from datapipe.local.deploy.values import json_text, pick


def _event_bus(r: ResourceRequest) -> Created:
    name = r.get("Name")
    arn = r.client("events").create_event_bus(Name=name)["EventBusArn"]
    return Created(name, {"Arn": arn, "Name": name})


def _rule(r: ResourceRequest) -> Created:
    events = r.client("events")
    name = r.name("Name", 64)
    bus = r.get("EventBusName")
    put: dict[str, Any] = {"Name": name, **pick(r.properties, "ScheduleExpression State Description RoleArn")}
    if bus:
        put["EventBusName"] = bus.rsplit("/", 1)[-1]
    if "EventPattern" in r.properties:
        put["EventPattern"] = json_text(r.get("EventPattern"))
    arn = events.put_rule(**put)["RuleArn"]
    targets = [dict(target) for target in r.get("Targets", [])]
    for target in targets:
        if "Input" in target:
            target["Input"] = json_text(target["Input"])
    if targets:
        events.put_targets(Rule=name, Targets=targets, **({"EventBusName": put["EventBusName"]} if bus else {}))
    physical_id = f"{put['EventBusName']}|{name}" if bus and put["EventBusName"] != "default" else name
    return Created(physical_id, {"Arn": arn})


HANDLERS: dict[str, Handler] = {
    "AWS::Events::EventBus": _event_bus,
    "AWS::Events::Rule": _rule,
}
