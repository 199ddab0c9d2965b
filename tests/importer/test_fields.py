"""Nothing dropped in silence: every field of every object type of Data Pipeline's reference, used in a definition,
is either applied or reported as not applied with a reason; and docs/importer.md shows the same table as the code.

The field lists come from the reference pages (outside the repository, beside the checkout): the field tables of
each `dp-object-*.md` page, the runtime and system fields (set by the service) left out.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from datapipe.cli import cli
from datapipe.importer import schema
from datapipe.importer.fields import DATA_API, RUNS_ON_WINS, UNEXPLAINED, UNREACHED, type_status, types_table

REFERENCE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "datapipeline"
DOC = Path(__file__).resolve().parents[2] / "docs" / "importer.md"
TABLE_START, TABLE_END = "<!-- types-table:start -->", "<!-- types-table:end -->"


def reference_fields() -> dict[str, dict[str, str]]:
    """Type -> {field: slot type} from the reference's field tables (not the runtime and system ones)."""
    if not REFERENCE_DIR.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the Data Pipeline reference is not at {REFERENCE_DIR}; CI must have it")
        pytest.skip(f"the Data Pipeline reference is not at {REFERENCE_DIR}")
    found: dict[str, dict[str, str]] = {}
    pages = sorted(REFERENCE_DIR.glob("dp-object-*.md")) + sorted(REFERENCE_DIR.glob("dp-dynamodb*exists.md"))
    for page in pages:
        lines = page.read_text(encoding="utf-8").splitlines()
        title = re.match(r"# ([^\s<]+)", lines[0]) if lines else None
        fields: dict[str, str] = {}
        section = False
        for index, line in enumerate(lines):
            cells = [cell.strip().replace("\\", "") for cell in line.split("|")[1:-1]]
            if not cells:
                continue
            if index + 1 < len(lines) and lines[index + 1].startswith("| ---"):  # a table's header
                section = "Runtime" not in cells[0] and "System" not in cells[0]
            elif section and not line.startswith("| ---") and len(cells) >= 3:
                fields[cells[0]] = cells[2]
        if title and fields:
            found[title.group(1).replace("\\", "")] = fields
    assert len(found) >= 30, f"only {len(found)} types parsed from {REFERENCE_DIR}: has the page format changed?"
    return found


# Values a definition would hold, so that the planner reads each field as it would in a real pipeline.
VALUES: dict[str, str] = {
    "command": "echo hello", "scriptUri": "s3://bucket/script.sh", "step": "command-runner.jar,echo,hello",
    "jarUri": "s3://bucket/job.jar", "hiveScript": "SELECT 1;", "script": "SELECT 1", "directoryPath":
    "s3://bucket/dir/", "filePath": "s3://bucket/file.csv", "manifestFilePath": "s3://bucket/manifest",
    "s3Key": "s3://bucket/key", "s3Prefix": "s3://bucket/prefix/", "topicArn": "arn:aws:sns:us-east-1:123456789012:t",
    "period": "1 day", "startDateTime": "2024-01-01T00:00:00", "endDateTime": "2024-02-01T00:00:00",
    "scheduleType": "cron", "failureAndRerunMode": "cascade", "insertMode": "KEEP_EXISTING",
    "pipelineLogUri": "s3://bucket/logs/", "applications": "hive", "hadoopSchedulerType": "PARALLEL_FAIR_SCHEDULING",
    "bootstrapAction": "s3://bucket/bootstrap.sh,arg", "classification": "core-site", "key": "fs.x", "value": "1",
    "volumeType": "gp2", "sizeInGB": "100", "iops": "1000", "volumesPerInstance": "1", "ebsOptimized": "true",
    "hostname": "proxy.example.com", "port": "3128", "stage": "true", "stdout": "s3://bucket/stdout",
    "stderr": "s3://bucket/stderr", "region": "us-east-1", "releaseLabel": "emr-6.15.0", "amiVersion": "3.11.0",
    "instanceType": "m5.xlarge", "masterInstanceType": "m5.xlarge", "coreInstanceType": "m5.xlarge",
    "taskInstanceType": "m5.xlarge", "imageId": "ami-12345678", "subnetId": "subnet-12345678",
    "securityGroupIds": "sg-12345678", "additionalMasterSecurityGroupIds": "sg-12345678",
    "additionalSlaveSecurityGroupIds": "sg-12345678", "emrManagedMasterSecurityGroupId": "sg-12345678",
    "emrManagedSlaveSecurityGroupId": "sg-12345678", "serviceAccessSecurityGroupId": "sg-12345678",
    "spotBidPrice": "0.5", "masterInstanceBidPrice": "0.5", "coreInstanceBidPrice": "0.5",
    "taskInstanceBidPrice": "0.5", "compression": "none", "s3EncryptionType": "SERVER_SIDE_ENCRYPTION",
    "tableName": "table", "resizeClusterMaxInstances": "4", "maximumRetries": "1", "occurrences": "3",
    "startAt": "FIRST_ACTIVATION_DATE_TIME", "terminateAfter": "2 hours", "*password": "ssm:/proxy/password",
    "connectionString": "jdbc:postgresql://db.example.com:5432/app", "jdbcDriverClass": "org.postgresql.Driver",
    "secretId": "app-database", "table": "events", "selectQuery": "SELECT * FROM events",
    "insertQuery": "INSERT INTO events VALUES (?)", "createTableSql": "CREATE TABLE events (id int)",
    "schemaName": "public", "primaryKeys": "id", "clusterId": "warehouse",
    "workgroupName": "analytics",
}
# Values of one type that differ from the others' (a MySqlDataNode's connection is MySQL's).
TYPE_VALUES: dict[tuple[str, str], str] = {("MySqlDataNode", "connectionString"): "jdbc:mysql://db.example.com/app",
                                           ("HiveCopyActivity", "generatedScriptsPath"): "s3://bucket/scripts/"}
SLOT_VALUES = {"Period": "1 hours", "Integer": "1", "Boolean": "true", "DateTime": "2024-01-01T00:00:00"}


def value_for(object_type: str, key: str, slot: str) -> str:
    if (object_type, key) in TYPE_VALUES:
        return TYPE_VALUES[(object_type, key)]
    if key in VALUES:
        return VALUES[key]
    for prefix, value in SLOT_VALUES.items():
        if slot.startswith(prefix):
            return value
    return "value"


# Objects the tested object is used with: the ones its references point to, and the ones that use it.
FIXTURES: list[dict[str, Any]] = [
    {"id": "Default"},
    {"id": "FxSchedule", "type": "Schedule", "period": "1 day", "startDateTime": "2024-01-01T00:00:00"},
    {"id": "FxCluster", "type": "EmrCluster", "releaseLabel": "emr-6.15.0"},
    {"id": "FxEc2", "type": "Ec2Resource", "role": "DataPipelineDefaultRole",
     "resourceRole": "DataPipelineDefaultResourceRole"},
    {"id": "FxIn", "type": "S3DataNode", "directoryPath": "s3://bucket/in/"},
    {"id": "FxOut", "type": "S3DataNode", "directoryPath": "s3://bucket/out/"},
    {"id": "FxPrecondition", "type": "S3KeyExists", "s3Key": "s3://bucket/ready"},
    {"id": "FxAlarm", "type": "SnsAlarm", "topicArn": "arn:aws:sns:us-east-1:123456789012:t", "subject": "s",
     "message": "m"},
    {"id": "FxDatabase", "type": "RdsDatabase", "rdsInstanceId": "db", "secretId": "app-database"},
    {"id": "FxRedshift", "type": "RedshiftDatabase", "clusterId": "warehouse", "secretId": "warehouse-secret"},
    {"id": "FxTable", "type": "RedshiftDataNode", "tableName": "events", "primaryKeys": "id",
     "database": {"ref": "FxRedshift"}},
    {"id": "FxFormat", "type": "CSV"},
    {"id": "FxConfiguration", "type": "EmrConfiguration", "classification": "core-site"},
    {"id": "FxProperty", "type": "Property", "key": "fs.x", "value": "1"},
    {"id": "FxProxy", "type": "HttpProxy", "hostname": "proxy.example.com", "port": "3128"},
    {"id": "FxScript", "type": "ShellScriptConfig", "scriptUri": "s3://bucket/script.sh"},
    {"id": "FxEbs", "type": "EbsConfiguration"},
    {"id": "FxVolume", "type": "VolumeSpecification", "volumeType": "gp2", "sizeInGB": "10"},
]
FIXTURE_OF_KIND = {
    schema.SCHEDULE: "FxSchedule", schema.DATA_NODE: "FxIn", schema.PRECONDITION: "FxPrecondition",
    schema.ACTION: "FxAlarm", schema.DATABASE: "FxDatabase", schema.DATA_FORMAT: "FxFormat",
    schema.CONFIGURATION: "FxConfiguration", schema.PROPERTY: "FxProperty", schema.PROXY: "FxProxy",
    schema.SCRIPT_CONFIG: "FxScript", schema.EBS: "FxEbs",
}
EMR_FAMILY = {"EmrActivity", "HadoopActivity", "HiveActivity", "PigActivity", "HiveCopyActivity"}


def fixture_ref(object_type: str, key: str) -> dict[str, str]:
    spec = schema.TYPES[object_type]
    if key == "parent":
        return {"ref": "Default"}
    if key == "runsOn":
        return {"ref": "FxCluster" if object_type in EMR_FAMILY else "FxEc2"}
    if object_type == "RedshiftCopyActivity" and key == "output":
        return {"ref": "FxTable"}
    if object_type == "RedshiftDataNode" and key == "database":
        return {"ref": "FxRedshift"}
    if key in ("input", "output"):
        return {"ref": "FxIn" if key == "input" else "FxOut"}
    if key == "dependsOn":
        return {"ref": "FxRunner"}
    if key == "volumeSpecification":
        return {"ref": "FxVolume"}
    if key == "ebsBlockDeviceConfig":
        return {"ref": "FxBlock"}
    kinds = spec.refs.get(key) or next(t.refs[key] for t in schema.TYPES.values() if key in t.refs)
    return {"ref": FIXTURE_OF_KIND[kinds[0]]}


def users_of(tested: str, object_type: str) -> list[dict[str, Any]]:
    """The objects that make the planner reach the tested object, as a real pipeline would."""
    kind = schema.TYPES[object_type].kind
    runner: dict[str, Any] = {"id": "FxRunner", "type": "ShellCommandActivity", "runsOn": {"ref": "FxEc2"},
                              "command": "echo hello"}
    emr_runner: dict[str, Any] = {"id": "FxEmrRunner", "type": "EmrActivity", "runsOn": {"ref": "FxCluster"},
                                  "step": "command-runner.jar,echo,hello"}
    block = {"id": "FxBlock", "type": "EbsBlockDeviceConfig", "volumeSpecification": {"ref": "FxVolume"}}
    ref = {"ref": tested}
    if kind == schema.ACTIVITY:
        return [runner]
    if object_type == "Ec2Resource":
        return [{**runner, "runsOn": ref}]
    if object_type == "EmrCluster":
        return [{**emr_runner, "runsOn": ref}, runner]
    if object_type == "DynamoDBDataNode":  # read by EMR steps
        return [runner, {"id": "FxHive", "type": "HiveActivity", "runsOn": {"ref": "FxCluster"},
                         "hiveScript": "SELECT 1;", "input": ref}]
    if object_type in ("SqlDataNode", "MySqlDataNode"):  # copied to S3 by a SQL CopyActivity
        return [runner, {"id": "FxCopy", "type": "CopyActivity", "input": ref, "output": {"ref": "FxOut"},
                         "runsOn": {"ref": "FxEc2"}}]
    if object_type == "RedshiftDataNode":  # loaded by COPY
        return [runner, {"id": "FxLoad", "type": "RedshiftCopyActivity", "input": {"ref": "FxIn"}, "output": ref,
                         "insertMode": "KEEP_EXISTING"}]
    if kind == schema.DATA_NODE:
        return [{**runner, "input": ref}]
    if object_type == "Exists":  # it checks the data node it guards
        return [{**runner, "input": {"ref": "FxGuarded"}},
                {"id": "FxGuarded", "type": "S3DataNode", "filePath": "s3://bucket/in.csv", "precondition": ref}]
    if kind == schema.PRECONDITION:
        return [{**runner, "precondition": ref}]
    if kind == schema.ACTION:
        return [{**runner, "onFail": ref}]
    if kind == schema.SCHEDULE:
        return [{**runner, "schedule": ref, "scheduleType": "cron"}]
    if kind == schema.DATABASE:
        return [runner, {"id": "FxSql", "type": "SqlActivity", "database": ref, "script": "SELECT 1",
                         "runsOn": {"ref": "FxEc2"}}]
    if kind == schema.DATA_FORMAT:
        return [{**runner, "input": {"ref": "FxFormatted"}},
                {"id": "FxFormatted", "type": "S3DataNode", "directoryPath": "s3://bucket/f/", "dataFormat": ref}]
    if kind == schema.CONFIGURATION:
        return [runner, {**emr_runner, "runsOn": {"ref": "FxConfigured"}},
                {"id": "FxConfigured", "type": "EmrCluster", "releaseLabel": "emr-6.15.0", "configuration": ref}]
    if kind == schema.PROPERTY:
        return [runner, {**emr_runner, "runsOn": {"ref": "FxConfigured"}},
                {"id": "FxConfigured", "type": "EmrCluster", "releaseLabel": "emr-6.15.0",
                 "configuration": {"ref": "FxWithProperty"}},
                {"id": "FxWithProperty", "type": "EmrConfiguration", "classification": "core-site", "property": ref}]
    if kind == schema.PROXY:
        return [{**runner, "runsOn": {"ref": "FxProxied"}},
                {"id": "FxProxied", "type": "Ec2Resource", "role": "r", "resourceRole": "rr", "httpProxy": ref}]
    if kind == schema.SCRIPT_CONFIG:
        return [runner, {"id": "FxHadoop", "type": "HadoopActivity", "runsOn": {"ref": "FxCluster"},
                         "jarUri": "s3://bucket/job.jar", "preActivityTaskConfig": ref}]
    if kind == schema.EBS:
        cluster = {"id": "FxWithEbs", "type": "EmrCluster", "releaseLabel": "emr-6.15.0",
                   "coreEbsConfiguration": {"ref": "FxEbs"}}
        owner = {"FxBlock": block, "FxEbs": {"id": "FxEbs", "type": "EbsConfiguration",
                                             "ebsBlockDeviceConfig": {"ref": "FxBlock"}}}
        used = [runner, {**emr_runner, "runsOn": {"ref": "FxWithEbs"}}, cluster, owner["FxEbs"], block]
        if object_type == "EbsConfiguration":
            cluster["coreEbsConfiguration"] = ref
        elif object_type == "EbsBlockDeviceConfig":
            owner["FxEbs"]["ebsBlockDeviceConfig"] = ref
        else:
            block["volumeSpecification"] = ref
        return used
    raise AssertionError(f"no user for {object_type} ({kind})")


def definition(object_type: str, fields: dict[str, str]) -> dict[str, Any]:
    tested: dict[str, Any] = {"id": "Tested", "type": object_type}
    for key, slot in fields.items():
        if key in ("id", "type") or key.startswith("@"):
            continue
        tested[key] = fixture_ref(object_type, key) if key in schema.REFERENCE_FIELDS else value_for(object_type, key,
                                                                                                    slot)
    users = {o["id"]: o for o in users_of("Tested", object_type)}
    fixtures = [f for f in FIXTURES if f["id"] not in users]
    return {"objects": [*fixtures, *users.values(), tested]}


def test_every_field_of_every_type_in_the_reference_is_in_the_schema() -> None:
    missing: list[str] = []
    for object_type, fields in reference_fields().items():
        if object_type not in schema.TYPES:
            missing.append(object_type)
            continue
        for key in fields:
            # The EmrCluster page lists the EBS objects among its fields; they are object types of their own.
            if key[:1].isupper():
                if key not in schema.TYPES:
                    missing.append(key)
            elif key not in schema.TYPES[object_type].fields:
                missing.append(f"{object_type}.{key}")
    assert missing == []


# Fields of which a definition gives one only: the walk uses the first of each group, then each other one in its
# place, in a definition of its own (the schedule and the RedshiftDatabase refuse two of them, naming the field).
EXCLUSIVE: dict[str, list[tuple[str, ...]]] = {
    "Schedule": [("startDateTime", "startAt"), ("endDateTime", "occurrences")],
    "RedshiftDatabase": [("clusterId", "connectionString", "workgroupName")],
}
# Fields a mapping refuses on purpose: passwords are never read from a definition (the credentials come from the
# secret named in secretId). Given, the import fails with an error that names the field, and the field is reported
# as not applied with the reason.
REFUSED: dict[str, str] = {"*password": "passwords are not read from definitions"}
REFUSING_TYPES = ("JdbcDatabase", "RdsDatabase", "RedshiftDatabase", "MySqlDataNode")


def walked_types() -> dict[str, dict[str, str]]:
    """Type -> {field: slot type}: the reference's fields, and the schema's beyond them (the docs show them too)."""
    walked = reference_fields()
    for key_type in list(walked["EmrCluster"]):  # the EBS objects: their fields are the schema's (no page)
        if key_type[:1].isupper():
            walked[key_type] = {key: "String" for key in schema.TYPES[key_type].fields}
            del walked["EmrCluster"][key_type]
    for object_type, spec in schema.TYPES.items():
        walked[object_type] = {**{key: "String" for key in spec.fields}, **walked.get(object_type, {})}
    return walked


def variants(object_type: str, fields: dict[str, str]) -> list[dict[str, str]]:
    """The definitions of one type the walk imports: every field once, each exclusive one in place of its group's
    first."""
    groups = EXCLUSIVE.get(object_type, [])
    left_out = {key for group in groups for key in group[1:]}
    base = {key: slot for key, slot in fields.items() if key not in left_out}
    if object_type in REFUSING_TYPES:
        base = {key: slot for key, slot in base.items() if key not in REFUSED}
    result = [base]
    for group in groups:
        for other in group[1:]:
            if other in fields:
                result.append({**{k: v for k, v in base.items() if k != group[0]}, other: fields[other]})
    return result


def import_tested(tmp_path: Path, object_type: str, fields: dict[str, str]) -> dict[str, Any]:
    path = tmp_path / f"{object_type}.json"
    path.write_text(json.dumps(definition(object_type, fields)))
    result = CliRunner().invoke(cli, ["import", str(path), "--json"])
    assert "Traceback" not in result.output and result.exit_code in (0, 1), f"{object_type}: {result.output}"
    [tested] = [o for o in json.loads(result.output)["objects"] if o["id"] == "Tested"]
    return tested


def test_each_field_of_each_type_used_in_a_definition_is_applied_or_not_applied_with_its_reason(
    tmp_path: Path,
) -> None:
    silent: list[str] = []
    disagree: list[str] = []
    walked: set[str] = set()
    expected: set[str] = set()
    for object_type, all_fields in sorted(walked_types().items()):
        refused = REFUSED if object_type in REFUSING_TYPES else {}
        expected.update(f"{object_type}.{key}" for key in all_fields
                        if key not in refused and key != "id" and not key.startswith("@"))
        static_applied, _ = type_status(object_type)
        for fields in variants(object_type, all_fields):
            tested = import_tested(tmp_path, object_type, fields)
            applied = set(tested["fields"]["applied"])
            reasons = {entry["field"]: entry["reason"] for entry in tested["fields"]["notApplied"]}
            for key in fields:
                if key.startswith("@") or key == "id":
                    continue
                walked.add(f"{object_type}.{key}")
                if key not in applied and (not reasons.get(key) or reasons[key] == UNEXPLAINED):
                    silent.append(f"{object_type}.{key}")
                elif key in applied and key not in static_applied:
                    disagree.append(f"{object_type}.{key}")
            assert tested["status"] != "error", f"{object_type}: {tested['reason']}"
    assert walked == expected  # every field of every type, the exclusive ones included
    assert silent == [], f"fields neither applied nor reported with a reason: {silent}"
    assert disagree == [], f"applied, but the table of fields.py (and so docs/importer.md) says not: {disagree}"


@pytest.mark.parametrize("object_type", REFUSING_TYPES)
def test_a_refused_field_fails_the_import_naming_it_and_is_reported_with_its_reason(
    tmp_path: Path, object_type: str,
) -> None:
    all_fields = walked_types()[object_type]
    for key, refusal in REFUSED.items():
        assert key in all_fields
        tested = import_tested(tmp_path, object_type, {**variants(object_type, all_fields)[0], key: all_fields[key]})
        assert tested["status"] == "error" and f"{key}: {refusal}" in tested["reason"], tested["reason"]
        reasons = {entry["field"]: entry["reason"] for entry in tested["fields"]["notApplied"]}
        assert key not in tested["fields"]["applied"]
        assert reasons.get(key, UNEXPLAINED).startswith("refused: passwords are not read from definitions"), reasons


def test_the_docs_show_the_table_the_code_uses() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert TABLE_START in text and TABLE_END in text, f"{DOC.name} has no generated table of types"
    shown = text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0].strip()
    assert shown == types_table().strip(), "regenerate it from datapipe.importer.fields.types_table()"


def import_json(path: Path) -> dict[str, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["import", str(path), "--json"])
    assert "Traceback" not in result.output
    return {o["id"]: o for o in json.loads(result.output)["objects"]}


def test_a_field_on_default_is_applied_where_an_object_inherits_and_reads_it(write_definition: Any) -> None:
    objects = import_json(write_definition([
        {"id": "Default", "scheduleType": "ondemand", "workerGroup": "wg-12345", "maximumRetries": "2",
         "attemptStatus": "x"},
        {"id": "Inherits", "type": "ShellCommandActivity", "command": "echo 1"},
        {"id": "Overrides", "type": "ShellCommandActivity", "command": "echo 2", "workerGroup": "wg-2",
         "maximumRetries": "1", "myUnused": "1"},
    ]))
    default = objects["Default"]["fields"]
    assert set(default["applied"]) == {"scheduleType", "workerGroup", "maximumRetries"}
    assert default["notApplied"] == [{"field": "attemptStatus", "reason": "a status Data Pipeline reported at run "
                                      "time, not a setting (in each object that inherits it)"}]
    overrides = objects["Overrides"]["fields"]
    assert set(overrides["applied"]) == {"type", "command", "workerGroup", "maximumRetries"}
    assert overrides["notApplied"] == [{"field": "myUnused", "reason": "a user-defined value: no expression that the "
                                        "importer maps refers to it"}]


def test_a_default_field_that_every_object_sets_itself_says_so(write_definition: Any) -> None:
    objects = import_json(write_definition([
        {"id": "Default", "scheduleType": "ondemand", "workerGroup": "wg-unused"},
        {"id": "Own", "type": "ShellCommandActivity", "command": "echo 1", "workerGroup": "wg-1"},
    ]))
    assert objects["Default"]["fields"]["notApplied"] == [
        {"field": "workerGroup", "reason": "every object that would inherit it sets its own value"}]


def test_the_fields_of_an_object_without_a_mapping_carry_its_reason(write_definition: Any) -> None:
    objects = import_json(write_definition([
        {"id": "Default", "scheduleType": "ondemand", "workerGroup": "wg-1"},
        {"id": "Run", "type": "ShellCommandActivity", "command": "echo 1"},
        {"id": "Hive", "type": "HiveActivity", "hiveScript": "SELECT 1;", "input": {"ref": "In"}},
        {"id": "In", "type": "S3DataNode", "directoryPath": "s3://bucket/in/"},
    ]))
    reasons = {entry["field"]: entry["reason"] for entry in objects["Hive"]["fields"]["notApplied"]}
    # type is structural; input was read for ordering, but in vain; workerGroup comes from Default
    assert set(reasons) == {"hiveScript", "input"}
    assert all(reason.startswith("HiveActivity is not mapped: HiveActivity is mapped only with runsOn an EmrCluster")
               for reason in reasons.values())


def test_the_report_lists_applied_fields_and_each_field_not_applied_with_its_reason(write_definition: Any) -> None:
    path = write_definition([
        {"id": "Default", "scheduleType": "ondemand"},
        {"id": "Box", "type": "Ec2Resource", "role": "r", "resourceRole": "rr", "imageId": "ami-12345678"},
        {"id": "Run", "type": "ShellCommandActivity", "command": "echo 1", "runsOn": {"ref": "Box"}},
    ])
    result = CliRunner().invoke(cli, ["import", str(path), "--report"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    lines = [" ".join(line.replace("│", " ").split()) for line in result.output.splitlines()]
    assert "Run ShellCommandActivity mapped Batch job (BatchSubmitJob) for resource Box type, command, runsOn" \
        in lines
    assert "Fields not applied" in lines
    assert "Box imageId Batch runs the job in a container image on the compute environment's ECS-optimized AMI" \
        in lines


def test_no_field_of_a_corpus_definition_is_left_without_a_reason(corpus_definition: Path) -> None:
    from tests.importer.conftest import import_sample

    plan = import_sample(corpus_definition)
    silent = [f"{o.id}.{key}" for o in plan.objects for key, reason in o.fields.not_applied if reason == UNEXPLAINED]
    assert silent == []
    for report in plan.objects:  # every own field is in one of the two lists, once
        listed = report.fields.applied + [key for key, _ in report.fields.not_applied]
        assert len(listed) == len(set(listed))


def reasons_of(entry: dict[str, Any]) -> dict[str, str]:
    return {item["field"]: item["reason"] for item in entry["fields"]["notApplied"]}


def test_a_field_an_error_kept_the_planner_from_reaching_is_reported_as_not_reached(write_definition: Any) -> None:
    objects = import_json(write_definition([
        {"id": "Default", "scheduleType": "ondemand"},
        {"id": "Box", "type": "Ec2Resource", "role": "r", "resourceRole": "rr", "instanceType": "m5.large"},
        {"id": "Spare", "type": "Ec2Resource", "role": "r", "resourceRole": "rr", "instanceType": "m5.large"},
        {"id": "Db", "type": "RdsDatabase", "rdsInstanceId": "db", "secretId": "s", "*password": "written-here"},
        {"id": "Load", "type": "SqlActivity", "database": {"ref": "Db"}, "script": "SELECT 1", "runsOn": {"ref": "Box"},
         "maximumRetries": "2"},
    ]))
    assert objects["Db"]["status"] == "error" and "*password: passwords are not read" in objects["Db"]["reason"]
    assert reasons_of(objects["Box"])["instanceType"] == UNREACHED  # Batch sizes the job by it once Load is planned
    assert reasons_of(objects["Load"])["maximumRetries"] == UNREACHED
    assert reasons_of(objects["Spare"])["instanceType"] == "no mapped activity uses this object"  # nothing refers to it
    assert reasons_of(objects["Db"])["*password"].startswith("refused: passwords are not read from definitions")


def test_a_field_applied_in_some_uses_only_is_applied_in_the_table_and_says_why_not_in_another(
    write_definition: Any,
) -> None:
    objects = import_json(write_definition([
        {"id": "Default", "scheduleType": "ondemand", "workerGroup": "wg-1"},
        {"id": "In", "type": "S3DataNode", "filePath": "s3://bucket/in.csv.gz", "compression": "gzip"},
        {"id": "Out", "type": "S3DataNode", "directoryPath": "s3://bucket/out/", "precondition": {"ref": "Ready"}},
        {"id": "Ready", "type": "S3KeyExists", "s3Key": "s3://bucket/ready"},
        {"id": "Run", "type": "ShellCommandActivity", "command": "zcat in.csv.gz", "input": {"ref": "In"},
         "output": {"ref": "Out"}},
    ]))
    assert reasons_of(objects["In"])["compression"].startswith("applied by Redshift COPY and SQL copies")
    assert reasons_of(objects["Out"])["precondition"].startswith("checked before each activity that reads this "
                                                                 "data node")
    applied, _ = type_status("S3DataNode")
    assert {"compression", "precondition", "filePath", "dataFormat"} <= set(applied)


def test_the_fields_a_database_activity_reads_without_applying_are_reported(write_definition: Any) -> None:
    objects = import_json(write_definition([
        {"id": "Default", "scheduleType": "ondemand"},
        {"id": "Box", "type": "Ec2Resource", "role": "r", "resourceRole": "rr"},
        {"id": "Warehouse", "type": "RedshiftDatabase", "clusterId": "warehouse", "secretId": "s",
         "region": "eu-west-1"},
        {"id": "App", "type": "RdsDatabase", "rdsInstanceId": "db", "secretId": "s"},
        {"id": "OnRedshift", "type": "SqlActivity", "database": {"ref": "Warehouse"}, "script": "SELECT 1",
         "runsOn": {"ref": "Box"}, "workerGroup": "wg-1", "queue": "etl"},
        {"id": "OnRds", "type": "SqlActivity", "database": {"ref": "App"}, "script": "SELECT 1",
         "runsOn": {"ref": "Box"}, "workerGroup": "wg-1"},
    ]))
    redshift = reasons_of(objects["OnRedshift"])
    assert redshift["runsOn"] == redshift["workerGroup"] == "the Redshift Data API runs the statements from the " \
        "state machine"
    assert "default WLM queue" in redshift["queue"]
    assert "stack's region" in reasons_of(objects["Warehouse"])["region"]
    assert reasons_of(objects["OnRds"])["workerGroup"] == RUNS_ON_WINS
    assert "runsOn" in objects["OnRds"]["fields"]["applied"]


def test_the_fields_of_an_object_nothing_refers_to_say_so(write_definition: Any) -> None:
    objects = import_json(write_definition([
        {"id": "Default", "scheduleType": "ondemand", "workerGroup": "wg-1"},
        {"id": "Spare", "type": "Ec2Resource", "role": "r", "resourceRole": "rr", "instanceType": "m5.large",
         "lateAfterTimeout": "1 hour"},  # the planner looks at its lateness fields to report them, and at no other
        {"id": "Run", "type": "ShellCommandActivity", "command": "echo 1"},
    ]))
    assert objects["Spare"]["status"] == "mapped"
    assert reasons_of(objects["Spare"])["instanceType"] == "no mapped activity uses this object"


def test_fields_the_planner_notes_as_not_applied_are_not_counted_applied(write_definition: Any) -> None:
    objects = import_json(write_definition([
        {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "Daily"}},
        {"id": "Daily", "type": "Schedule", "period": "1 day", "startAt": "FIRST_ACTIVATION_DATE_TIME",
         "occurrences": "3"},
        {"id": "Cluster", "type": "EmrCluster", "releaseLabel": "emr-7.5.0"},
        {"id": "Box", "type": "Ec2Resource", "role": "r", "resourceRole": "rr"},
        {"id": "Batch", "type": "ShellCommandActivity", "command": "echo 1", "runsOn": {"ref": "Box"},
         "stdout": "s3://bucket/out.txt", "stderr": "s3://bucket/err.txt"},
        {"id": "OnEmr", "type": "ShellCommandActivity", "command": "echo 2", "runsOn": {"ref": "Cluster"},
         "stage": "true", "lateAfterTimeout": "1 hour"},
    ]))
    assert all(o["status"] == "mapped" for o in objects.values()), objects
    batch = reasons_of(objects["Batch"])
    assert batch["stdout"] == batch["stderr"] == "not redirected: the task runner and Batch keep a task's output in " \
        "their logs"
    on_emr = reasons_of(objects["OnEmr"])
    assert on_emr["stage"].startswith("not applied on EMR")
    assert on_emr["lateAfterTimeout"] == "it has no onLateAction: nothing happens when it is late"
    assert {"period", "startAt", "occurrences"} <= set(objects["Daily"]["fields"]["applied"])


def test_the_table_says_a_redshift_copy_runs_from_the_state_machine_whatever_it_runs_on() -> None:
    applied, not_applied = type_status("RedshiftCopyActivity")
    assert dict(not_applied)["runsOn"] == dict(not_applied)["workerGroup"] == DATA_API
    assert {"insertMode", "transformSql", "commandOptions"} <= set(applied)
    for emr_activity in ("EmrActivity", "HadoopActivity", "HiveActivity", "PigActivity"):  # only on an EmrCluster
        applied, not_applied = type_status(emr_activity)
        assert {"reportProgressTimeout", "workerGroup"} <= dict(not_applied).keys() and "runsOn" in applied
