"""EventBridge Scheduler schedule groups and schedules."""

from __future__ import annotations

from typing import Any

from datapipe.local.deploy.model import (
    Created,
    Handler,
    ResourceRequest,
)
from datapipe.local.deploy.values import pick


def _schedule_group(r: ResourceRequest) -> Created:
    name = r.name("Name", 64)
    arn = r.client("scheduler").create_schedule_group(Name=name)["ScheduleGroupArn"]
    return Created(name, {"Arn": arn})


def _schedule(r: ResourceRequest) -> Created:
    name = r.name("Name", 64)
    create: dict[str, Any] = {
        "Name": name,
        **pick(
            r.properties,
            "GroupName ScheduleExpression ScheduleExpressionTimezone FlexibleTimeWindow Target State Description "
            "StartDate EndDate KmsKeyArn",
        ),
    }
    arn = r.client("scheduler").create_schedule(**create)["ScheduleArn"]
    return Created(name, {"Arn": arn})


HANDLERS: dict[str, Handler] = {
    "AWS::Scheduler::ScheduleGroup": _schedule_group,
    "AWS::Scheduler::Schedule": _schedule,
}
