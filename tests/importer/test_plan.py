"""The plan: order, targets, clusters, preconditions, alarms, schedules, and per-object reasons."""

from __future__ import annotations

import json
from typing import Any

from datapipe.importer.actions import Alarm
from datapipe.importer.expressions import RuntimePath, Text
from datapipe.importer.model import build_model
from datapipe.importer.plan import ACTIVITY_TASK, BATCH_JOB, EMR_STEPS, Plan, make_plan, parse_period, split_commas
from datapipe.importer.reader import parse_definition

DEFAULT = {"id": "Default", "scheduleType": "ondemand", "role": "R", "resourceRole": "RR"}


def plan_of(*objects: dict[str, Any], default: dict[str, Any] | None = None, **sections: Any) -> Plan:
    text = json.dumps({"objects": [default or DEFAULT, *objects], **sections})
    return make_plan(build_model(parse_definition(text, source="test-pipeline.json")))


def shell(activity_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": activity_id, "type": "ShellCommandActivity", "workerGroup": "wg-1", "command": "true", **fields}


def test_activities_are_staged_by_depends_on_and_by_the_data_they_read() -> None:
    plan = plan_of(
        shell("Extract", output={"ref": "Raw"}),
        {"id": "Raw", "type": "S3DataNode", "directoryPath": "s3://b/raw/"},
        shell("Clean", input={"ref": "Raw"}),  # waits for Extract through the data node
        shell("Audit", dependsOn={"ref": "Extract"}),
        shell("Publish", dependsOn=[{"ref": "Clean"}, {"ref": "Audit"}]),
        shell("Independent"),
    )
    assert [[a.id for a in stage] for stage in plan.stages] == [["Extract", "Independent"], ["Clean", "Audit"],
                                                                ["Publish"]]
    assert plan.deployable and plan.schedule is None


def test_targets_by_where_an_activity_runs() -> None:
    plan = plan_of(
        {"id": "Host", "type": "Ec2Resource", "terminateAfter": "2 hours"},
        {"id": "Cluster", "type": "EmrCluster", "releaseLabel": "emr-7.5.0", "coreInstanceCount": "3",
         "applications": ["spark", "hive"], "bootstrapAction": "s3://b/boot.sh,--fast, --safe",
         "configuration": {"ref": "Spark"}, "terminateAfter": "3 hours"},
        {"id": "Spark", "type": "EmrConfiguration", "classification": "spark", "property": {"ref": "Max"}},
        {"id": "Max", "type": "Property", "key": "maximizeResourceAllocation", "value": "true"},
        shell("OnWorkers", maximumRetries="2", retryDelay="5 minutes", attemptTimeout="1 hour"),
        {"id": "OnHost", "type": "ShellCommandActivity", "runsOn": {"ref": "Host"}, "command": "echo $1",
         "scriptArgument": ["a"]},
        {"id": "OnCluster", "type": "EmrActivity", "runsOn": {"ref": "Cluster"}, "step": ["x.jar,1\\,2,3", "y.jar"],
         "preStepCommand": "echo pre", "postStepCommand": "echo post"},
    )
    by_id = {a.id: a for a in plan.activities}
    assert by_id["OnWorkers"].target == ACTIVITY_TASK and by_id["OnWorkers"].worker_group == "wg-1"
    assert (by_id["OnWorkers"].retries, by_id["OnWorkers"].retry_delay_seconds) == (2, 300)
    assert by_id["OnWorkers"].attempt_timeout_seconds == 3600
    assert by_id["OnHost"].target == BATCH_JOB and by_id["OnHost"].resource_timeout_seconds == 7200
    emr = by_id["OnCluster"]
    assert emr.target == EMR_STEPS and emr.resource_timeout_seconds == 3 * 3600
    assert [s.name for s in emr.steps] == ["OnCluster-pre-1", "OnCluster-1", "OnCluster-2", "OnCluster-post-1"]
    assert emr.steps[1].jar == Text.of("x.jar") and emr.steps[1].args == [Text.of("1,2"), Text.of("3")]
    [cluster] = plan.clusters
    assert (cluster.release_label, cluster.core_instance_count, cluster.applications) == ("emr-7.5.0", 3,
                                                                                          ["Spark", "Hive"])
    assert cluster.bootstrap_actions == [("s3://b/boot.sh", ["--fast", "--safe"])]
    assert [(c.classification, c.properties) for c in cluster.configurations] == [
        ("spark", {"maximizeResourceAllocation": "true"})]
    assert plan.deployable


def test_preconditions_alarms_and_schedules() -> None:
    plan = plan_of(
        {"id": "Hourly", "type": "Schedule", "period": "2 hours", "startDateTime": "2030-01-01T00:00:00",
         "occurrences": "3"},
        {"id": "Ready", "type": "S3KeyExists", "role": "R", "s3Key": "s3://in-bucket/#{format(@scheduledStartTime,"
         "'YYYY-MM-dd')}/_SUCCESS", "retryDelay": "10 minutes", "preconditionTimeout": "1 hour"},
        {"id": "Tell", "type": "SnsAlarm", "topicArn": "arn:aws:sns:eu-west-1:123456789012:t", "subject": "failed",
         "message": "#{node.@id} failed"},
        shell("Load", precondition={"ref": "Ready"}, onFail={"ref": "Tell"}, onSuccess={"ref": "Tell"}),
        default={"id": "Default", "scheduleType": "cron", "schedule": {"ref": "Hourly"}},
    )
    [load] = plan.activities
    [check] = load.preconditions
    assert (check.bucket, check.interval_seconds, check.max_checks) == ("in-bucket", 600, 6)
    assert check.key.parts[-1] == "/_SUCCESS" and RuntimePath("$.run.day") in check.key.parts
    [on_fail], [on_success] = load.on_fail, load.on_success
    assert isinstance(on_fail, Alarm) and isinstance(on_success, Alarm)
    assert on_fail.message == Text.of("Load failed") and on_success.topic_arn.endswith(":t")
    assert plan.schedule is not None and plan.schedule.expression == "rate(2 hours)"
    assert plan.schedule.end is not None and plan.schedule.end.isoformat() == "2030-01-01T04:00:00"


def test_unsupported_objects_are_reported_with_reasons_and_block_deployment() -> None:
    plan = plan_of(
        {"id": "Db", "type": "RdsDatabase", "rdsInstanceId": "db", "username": "u", "*password": "p"},
        {"id": "Query", "type": "SqlActivity", "database": {"ref": "Db"}, "script": "select 1", "workerGroup": "w"},
        {"id": "Pig", "type": "PigActivity", "workerGroup": "w", "script": "x"},
    )
    statuses = {o.id: (o.status, o.reason) for o in plan.objects}
    assert statuses["Db"][0] == "error" and statuses["Db"][1].startswith("*password: passwords are not read")
    assert statuses["Query"][0] == "error" and "cannot be planned: Db.*password" in statuses["Query"][1]
    assert statuses["Pig"][0] == "unsupported" and "runsOn an EmrCluster" in statuses["Pig"][1]
    assert statuses["Default"] == ("mapped", "")
    assert not plan.deployable


def test_fields_that_shape_resources_must_be_known_at_import_time() -> None:
    plan = plan_of(
        {"id": "Cluster", "type": "EmrCluster", "coreInstanceCount": "#{myCount}", "releaseLabel": "emr-7.5.0"},
        {"id": "Job", "type": "EmrActivity", "runsOn": {"ref": "Cluster"}, "step": "a.jar"},
        parameters=[{"id": "myCount", "type": "Integer"}],
    )
    errors = {o.id: o.reason for o in plan.objects if o.status == "error"}
    assert "must be known at import time" in errors["Cluster"] and "--values" in errors["Cluster"]
    assert not plan.deployable


def test_periods_and_comma_lists() -> None:
    assert parse_period("15 minutes") == 900 and parse_period("1 Day") == 86400 and parse_period("soon") is None
    text = Text.of("a.jar,x,", RuntimePath("$.p"), "/y,z\\,w")
    assert split_commas(text) == [Text.of("a.jar"), Text.of("x"), Text.of(RuntimePath("$.p"), "/y"),
                                  Text.of("z,w")]
