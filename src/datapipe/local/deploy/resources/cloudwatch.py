"""CloudWatch Logs log groups, CloudWatch alarms and dashboards."""

from __future__ import annotations

from typing import Any

from datapipe.local.deploy.model import (
    Created,
    Handler,
    ResourceRequest,
)
from datapipe.local.deploy.values import json_text, pick, tag_map


def _log_group(r: ResourceRequest) -> Created:
    logs = r.client("logs")
    name = r.name("LogGroupName", 512)
    create: dict[str, Any] = {"logGroupName": name}
    if r.get("Tags"):
        create["tags"] = tag_map(r.get("Tags"))
    logs.create_log_group(**create)
    if r.get("RetentionInDays"):
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(r.get("RetentionInDays")))
    return Created(name, {"Arn": r.arn("logs", f"log-group:{name}:*")})


ALARM_KEYS = (
    "AlarmDescription ActionsEnabled AlarmActions OKActions InsufficientDataActions MetricName Namespace Statistic "
    "ExtendedStatistic Dimensions Period Unit EvaluationPeriods DatapointsToAlarm Threshold ComparisonOperator "
    "TreatMissingData Metrics ThresholdMetricId"
)


def _alarm(r: ResourceRequest) -> Created:
    name = r.name("AlarmName", 255)
    r.client("cloudwatch").put_metric_alarm(AlarmName=name, **pick(r.properties, ALARM_KEYS))
    return Created(name, {"Arn": r.arn("cloudwatch", f"alarm:{name}")})


def _dashboard(r: ResourceRequest) -> Created:
    name = r.name("DashboardName", 255)
    r.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=json_text(r.get("DashboardBody")))
    return Created(name)


HANDLERS: dict[str, Handler] = {
    "AWS::Logs::LogGroup": _log_group,
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::CloudWatch::Dashboard": _dashboard,
}
