"""The plan of preconditions, actions, lateness, reportProgressTimeout and failureAndRerunMode.

Expected values are worked by hand from Data Pipeline's object reference: the number of checks is
min(preconditionTimeout / retryDelay, maximumRetries + 1); Exists checks what its data node names.
"""

from __future__ import annotations

import json
from typing import Any

from datapipe.importer.actions import Alarm, Terminate
from datapipe.importer.model import build_model
from datapipe.importer.plan import Plan, make_plan
from datapipe.importer.preconditions import S3_KEY, S3_PREFIX, SHELL, TABLE, TABLE_DATA
from datapipe.importer.reader import parse_definition
from tests.timing import growth

DEFAULT = {"id": "Default", "scheduleType": "ondemand"}
TOPIC = "arn:aws:sns:eu-west-1:123456789012:ops"
TELL = {"id": "Tell", "type": "SnsAlarm", "topicArn": TOPIC, "subject": "s", "message": "#{node.@id} failed"}


def plan_of(*objects: dict[str, Any]) -> Plan:
    default = [] if any(o["id"] == "Default" for o in objects) else [DEFAULT]
    text = json.dumps({"objects": [*default, *objects]})
    return make_plan(build_model(parse_definition(text, source="test-pipeline.json")))


def shell(activity_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": activity_id, "type": "ShellCommandActivity", "workerGroup": "wg-1", "command": "true", **fields}


def errors(plan: Plan) -> list[str]:
    return plan.errors + [f"{o.id}: {o.reason}" for o in plan.objects if o.status == "unsupported"]


def test_each_precondition_type_becomes_its_check() -> None:
    plan = plan_of(
        {"id": "Key", "type": "S3KeyExists", "s3Key": "s3://in-bucket/ready/_SUCCESS"},
        {"id": "Prefix", "type": "S3PrefixNotEmpty", "s3Prefix": "s3://in-bucket/parts/"},
        {"id": "Table", "type": "DynamoDBTableExists", "tableName": "orders"},
        {"id": "Rows", "type": "DynamoDBDataExists", "tableName": "orders"},
        {"id": "Script", "type": "ShellCommandPrecondition", "command": "test -s /data/x", "scriptArgument": "a"},
        {"id": "There", "type": "Exists"},
        {"id": "File", "type": "S3DataNode", "filePath": "s3://in-bucket/file.csv", "precondition": {"ref": "There"}},
        {"id": "Folder", "type": "S3DataNode", "directoryPath": "s3://in-bucket/dir/",
         "precondition": {"ref": "There"}},
        shell("Load", input=[{"ref": "File"}, {"ref": "Folder"}],
              precondition=[{"ref": "Key"}, {"ref": "Prefix"}, {"ref": "Table"}, {"ref": "Rows"}, {"ref": "Script"}]),
    )
    assert plan.deployable, errors(plan)
    [load] = plan.activities
    found = {(p.id, p.owner): p for p in load.preconditions}
    assert [(p.id, p.owner) for p in load.preconditions] == [
        ("Key", "Load"), ("Prefix", "Load"), ("Table", "Load"), ("Rows", "Load"), ("Script", "Load"),
        ("There", "File"), ("There", "Folder")]
    assert (found["Key", "Load"].kind, found["Key", "Load"].bucket, found["Key", "Load"].key.static) == (
        S3_KEY, "in-bucket", "ready/_SUCCESS")
    assert (found["Prefix", "Load"].kind, found["Prefix", "Load"].key.static) == (S3_PREFIX, "parts/")
    assert (found["Table", "Load"].kind, found["Table", "Load"].table) == (TABLE, "orders")
    assert (found["Rows", "Load"].kind, found["Rows", "Load"].table) == (TABLE_DATA, "orders")
    script = found["Script", "Load"]
    assert script.kind == SHELL and script.shell is not None and script.shell.command == "test -s /data/x"
    assert [a.static for a in script.shell.arguments] == ["a"]
    # Exists on a file is the key; on a directory, a key under it.
    assert (found["There", "File"].kind, found["There", "File"].key.static) == (S3_KEY, "file.csv")
    assert (found["There", "Folder"].kind, found["There", "Folder"].key.static) == (S3_PREFIX, "dir/")


def test_exists_on_a_dynamodb_node_checks_its_table() -> None:
    plan = plan_of(
        {"id": "Cluster", "type": "EmrCluster", "releaseLabel": "emr-7.5.0"},
        {"id": "There", "type": "Exists"},
        {"id": "Orders", "type": "DynamoDBDataNode", "tableName": "orders", "precondition": {"ref": "There"}},
        {"id": "Export", "type": "HiveActivity", "runsOn": {"ref": "Cluster"}, "hiveScript": "select 1",
         "input": {"ref": "Orders"}},
    )
    assert plan.deployable, errors(plan)
    [check] = plan.activities[0].preconditions
    assert (check.kind, check.table, check.owner) == (TABLE, "orders", "Orders")


def test_checks_are_bounded_by_the_timeout_and_by_maximum_retries() -> None:
    plan = plan_of(
        {"id": "ByTimeout", "type": "S3KeyExists", "s3Key": "s3://b-1/k", "retryDelay": "10 minutes",
         "preconditionTimeout": "2 hours"},
        {"id": "ByRetries", "type": "S3KeyExists", "s3Key": "s3://b-1/k", "retryDelay": "10 minutes",
         "preconditionTimeout": "2 hours", "maximumRetries": "3"},
        {"id": "Defaults", "type": "S3KeyExists", "s3Key": "s3://b-1/k"},
        shell("Load", precondition=[{"ref": "ByTimeout"}, {"ref": "ByRetries"}, {"ref": "Defaults"}]),
    )
    checks = {p.id: (p.interval_seconds, p.max_checks) for p in plan.activities[0].preconditions}
    # 2 hours / 10 minutes = 12 checks; maximumRetries 3 = the first check and 3 more; the settings' defaults.
    assert checks == {"ByTimeout": (600, 12), "ByRetries": (600, 4), "Defaults": (60, 60)}


def test_alarms_of_preconditions_data_nodes_and_clusters_are_planned() -> None:
    plan = plan_of(
        TELL,
        {"id": "Key", "type": "S3KeyExists", "s3Key": "s3://b-1/k", "onFail": {"ref": "Tell"},
         "onSuccess": {"ref": "Tell"}},
        {"id": "Raw", "type": "S3DataNode", "filePath": "s3://b-1/k", "precondition": {"ref": "Key"},
         "onFail": {"ref": "Tell"}, "onSuccess": {"ref": "Tell"}},
        {"id": "Cluster", "type": "EmrCluster", "releaseLabel": "emr-7.5.0", "onFail": {"ref": "Tell"},
         "onSuccess": {"ref": "Tell"}},
        {"id": "Count", "type": "HiveActivity", "runsOn": {"ref": "Cluster"}, "hiveScript": "select 1",
         "input": {"ref": "Raw"}},
    )
    assert plan.deployable, errors(plan)
    [check] = plan.activities[0].preconditions
    for actions in (check.on_fail, check.on_success, check.owner_on_fail, check.owner_on_success):
        [alarm] = actions
        assert isinstance(alarm, Alarm) and alarm.topic_arn == TOPIC
    # node.@id of a precondition's or data node's alarm is the activity it gates.
    assert isinstance(check.on_fail[0], Alarm) and check.on_fail[0].message.static == "Count failed"
    [cluster] = plan.clusters
    assert [a.id for a in cluster.on_fail] == ["Tell"] and [a.id for a in cluster.on_success] == ["Tell"]
    target = next(o.target for o in plan.objects if o.id == "Tell")
    assert "Key fails" in target and "Raw succeeds" in target and "Cluster fails" in target


def test_lateness_terminate_progress_and_cascade_are_planned() -> None:
    plan = plan_of(
        {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "Daily"}},
        {"id": "Daily", "type": "Schedule", "period": "1 day", "startDateTime": "2026-11-01T06:00:00"},
        TELL, {"id": "Stop", "type": "Terminate"},
        shell("Load", lateAfterTimeout="2 hours", onLateAction=[{"ref": "Tell"}, {"ref": "Stop"}],
              reportProgressTimeout="10 minutes", failureAndRerunMode="cascade", onFail={"ref": "Stop"}),
        shell("Publish", dependsOn={"ref": "Load"}),
        shell("Audit", dependsOn={"ref": "Publish"}, failureAndRerunMode="CASCADE"),
    )
    assert plan.deployable, errors(plan)
    load = plan.activities[0]
    assert load.late is not None and load.late.after_seconds == 7200
    assert [type(a) for a in load.late.actions] == [Alarm, Terminate]
    assert [type(a) for a in load.on_fail] == [Terminate]
    assert load.heartbeat_seconds == 600
    assert load.cascade_failed == ["Publish"]  # its direct consumers; Publish is in mode NONE
    assert {a.id: a.cascade_failed for a in plan.activities} == {"Load": ["Publish"], "Publish": [], "Audit": []}
    target = next(o.target for o in plan.objects if o.id == "Load")
    assert target.endswith("; when it fails, cascade-failed (not run): Publish; watched: late when not finished "
                           "2 hours after the run's scheduled start (Tell, Stop); heartbeat every 600 s at most")


def test_report_progress_timeout_off_a_worker_group_is_a_note() -> None:
    plan = plan_of({"id": "Host", "type": "Ec2Resource", "role": "R", "resourceRole": "RR"},
                   {"id": "Job", "type": "ShellCommandActivity", "runsOn": {"ref": "Host"}, "command": "true",
                    "reportProgressTimeout": "10 minutes"})
    assert plan.deployable and plan.activities[0].heartbeat_seconds is None
    assert "reportProgressTimeout is not applied" in next(o.reason for o in plan.objects if o.id == "Job")


def test_wrong_uses_are_named_by_object_and_field() -> None:
    plan = plan_of(
        TELL, {"id": "Stop", "type": "Terminate"},
        {"id": "There", "type": "Exists"},
        {"id": "BadTable", "type": "DynamoDBTableExists", "tableName": "no tables/here"},
        {"id": "BadBucket", "type": "S3PrefixNotEmpty", "s3Prefix": "s3://Not_A_Bucket!/x"},
        {"id": "NoBucket", "type": "S3KeyExists", "s3Key": "in-bucket/no-scheme"},
        shell("A", precondition={"ref": "There"}),
        shell("B", precondition=[{"ref": "BadTable"}, {"ref": "BadBucket"}, {"ref": "NoBucket"}]),
        shell("C", onSuccess={"ref": "Stop"}, onLateAction={"ref": "Tell"}),
        shell("D", failureAndRerunMode="x" * 100000),
    )
    assert not plan.deployable
    found = "\n".join(plan.errors)
    assert "There.type: Exists checks that a data node exists; A is an activity" in found
    assert "BadTable.tableName: 'no tables/here' is not a DynamoDB table name" in found
    assert "BadBucket.s3Prefix: 'Not_A_Bucket!' is not an S3 bucket name" in found
    assert "NoBucket.s3Key: must start with s3://<bucket>/ known at import time" in found
    assert "C.onSuccess: Stop is a Terminate action" in found
    assert "C.lateAfterTimeout: onLateAction needs a lateAfterTimeout" in found
    assert "D.failureAndRerunMode: must be CASCADE or NONE" in found and len(found) < 5000


def test_a_shell_precondition_of_an_emr_activity_is_unsupported_with_its_reason() -> None:
    plan = plan_of(
        {"id": "Cluster", "type": "EmrCluster", "releaseLabel": "emr-7.5.0"},
        {"id": "Script", "type": "ShellCommandPrecondition", "command": "true"},
        {"id": "Count", "type": "HiveActivity", "runsOn": {"ref": "Cluster"}, "hiveScript": "select 1",
         "precondition": {"ref": "Script"}},
    )
    status = next(o for o in plan.objects if o.id == "Script")
    assert status.status == "unsupported" and "runs on an EmrCluster" in status.reason


def test_many_activities_sharing_preconditions_and_alarms_import_in_linear_time() -> None:
    def objects(count: int) -> list[dict[str, Any]]:
        shared: list[dict[str, Any]] = [
            TELL, {"id": "Key", "type": "S3KeyExists", "s3Key": "s3://b-1/k", "onFail": {"ref": "Tell"}},
            {"id": "Raw", "type": "S3DataNode", "filePath": "s3://b-1/k", "precondition": {"ref": "Key"},
             "onFail": {"ref": "Tell"}}]
        return shared + [shell(f"A{i}", input={"ref": "Raw"}, onFail={"ref": "Tell"}, failureAndRerunMode="cascade",
                               lateAfterTimeout="1 hour", onLateAction={"ref": "Tell"}) for i in range(count)]

    def planned(count: int) -> None:
        plan = plan_of(*objects(count))
        assert plan.deployable, plan.errors[:3]

    assert growth(planned, 250, 1000) < 8  # four times the objects: linear about 4x, quadratic 16x


def test_actions_and_lateness_that_are_not_applied_are_reported() -> None:
    plan = plan_of(
        TELL,
        {"id": "Host", "type": "Ec2Resource", "role": "R", "resourceRole": "RR", "onFail": {"ref": "Tell"}},
        {"id": "Raw", "type": "S3DataNode", "filePath": "s3://b-1/k", "lateAfterTimeout": "1 hour",
         "onLateAction": {"ref": "Tell"}},
        {"id": "Ready", "type": "S3KeyExists", "s3Key": "s3://b-1/k", "role": "R", "attemptTimeout": "1 hour"},
        {"id": "Job", "type": "ShellCommandActivity", "runsOn": {"ref": "Host"}, "command": "true",
         "input": {"ref": "Raw"}, "precondition": {"ref": "Ready"}},
    )
    assert plan.deployable, errors(plan)
    reasons = {o.id: o.reason for o in plan.objects}
    assert "lateAfterTimeout/onLateAction are not applied: a data node is late when its preconditions" in reasons["Raw"]
    assert "onFail/onSuccess of an Ec2Resource are not applied" in reasons["Host"]
    assert "attemptTimeout is not applied" in reasons["Ready"] and "role is not assumed" in reasons["Ready"]
    fields = {o.id: o.fields for o in plan.objects}  # and the field accounting lists each of them as not applied
    assert {key for key, _ in fields["Raw"].not_applied} == {"lateAfterTimeout", "onLateAction"}
    assert "onFail" in {key for key, _ in fields["Host"].not_applied}
    assert {key for key, _ in fields["Ready"].not_applied} == {"role", "attemptTimeout"}
