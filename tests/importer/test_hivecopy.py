"""HiveCopyActivity: the Hive script generated from its data nodes (checked against scripts written by hand from the
Data Pipeline reference and EMR's DynamoDB connector documentation), and bad definitions refused naming the field."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from datapipe.cli import cli
from datapipe.importer.model import build_model
from datapipe.importer.plan import EMR_STEPS, Activity, make_plan
from datapipe.importer.reader import parse_definition

CLUSTER = {"id": "Cluster", "type": "EmrCluster", "releaseLabel": "emr-6.15.0"}
CSV_IN = {"id": "In", "type": "S3DataNode", "directoryPath": "s3://bucket/in/", "dataFormat": {"ref": "Rows"}}
ROWS = {"id": "Rows", "type": "CSV", "column": ["id BIGINT", "name STRING"]}
TSV_OUT = {"id": "Out", "type": "S3DataNode", "directoryPath": "s3://bucket/out/", "dataFormat": {"ref": "Tabs"}}
TABS = {"id": "Tabs", "type": "TSV"}
ORDERS = {"id": "Orders", "type": "DynamoDBDataNode", "tableName": "Orders"}


def copy(activity_id: str = "CopyCsv", **fields: Any) -> dict[str, Any]:
    return {"id": activity_id, "type": "HiveCopyActivity", "runsOn": {"ref": "Cluster"}, "input": {"ref": "In"},
            "output": {"ref": "Out"}, **fields}


def definition(*objects: dict[str, Any], **sections: Any) -> str:
    return json.dumps({"objects": [{"id": "Default", "scheduleType": "ondemand"}, CLUSTER, *objects], **sections})


def planned(*objects: dict[str, Any]) -> Activity:
    plan = make_plan(build_model(parse_definition(definition(*objects), source="copy.json")))
    assert plan.errors == [] and plan.deployable, plan.errors
    [activity] = plan.activities
    assert activity.target == EMR_STEPS and activity.resource == "Cluster"
    return activity


def step_args(activity: Activity) -> list[list[str]]:
    return [[step.jar.describe(), *(arg.describe() for arg in step.args)] for step in activity.steps]


def import_errors(write_definition: Callable[..., Path], *objects: dict[str, Any], **sections: Any) -> list[str]:
    path = write_definition(json.loads(definition(*objects))["objects"], **sections)
    result = CliRunner().invoke(cli, ["import", str(path), "--json"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    return list(json.loads(result.output)["errors"])


def test_an_s3_csv_folder_is_copied_to_an_s3_tsv_folder_with_the_input_columns() -> None:
    activity = planned(copy(), CSV_IN, ROWS, TSV_OUT, TABS)
    script = (
        "DROP TABLE IF EXISTS copy_copycsv_input; "
        "CREATE EXTERNAL TABLE copy_copycsv_input (`id` bigint, `name` string) "
        "ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://bucket/in/'; "
        "DROP TABLE IF EXISTS copy_copycsv_output; "
        "CREATE EXTERNAL TABLE copy_copycsv_output (`id` bigint, `name` string) "
        "ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' LOCATION 's3://bucket/out/'; "
        "INSERT OVERWRITE TABLE copy_copycsv_output SELECT * FROM copy_copycsv_input;"
    )
    assert step_args(activity) == [["command-runner.jar", "hive", "-e", script]]


def test_a_custom_format_gives_its_separator() -> None:
    activity = planned(copy(), CSV_IN, ROWS, TSV_OUT, {"id": "Tabs", "type": "Custom", "columnSeparator": "|"})
    assert "CREATE EXTERNAL TABLE copy_copycsv_output (`id` bigint, `name` string) ROW FORMAT DELIMITED FIELDS " \
        "TERMINATED BY '|' LOCATION 's3://bucket/out/';" in step_args(activity)[0][3]


def test_a_dynamodb_table_is_exported_to_s3_as_whole_items_without_columns() -> None:
    out = {"id": "Out", "type": "S3DataNode", "directoryPath": "s3://bucket/orders/"}
    activity = planned(copy("Export", input={"ref": "Orders"}), {**ORDERS, "readThroughputPercent": "0.25"}, out)
    script = (
        "DROP TABLE IF EXISTS copy_export_input; "
        "CREATE EXTERNAL TABLE copy_export_input (item map<string,string>) "
        "STORED BY 'org.apache.hadoop.hive.dynamodb.DynamoDBStorageHandler' "
        'TBLPROPERTIES ("dynamodb.table.name" = "Orders", "dynamodb.throughput.read.percent" = "0.25"); '
        "DROP TABLE IF EXISTS copy_export_output; "
        "CREATE EXTERNAL TABLE copy_export_output (item map<string,string>) "
        "ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' LOCATION 's3://bucket/orders/'; "
        "INSERT OVERWRITE TABLE copy_export_output SELECT * FROM copy_export_input;"
    )
    assert step_args(activity) == [["command-runner.jar", "hive", "-e", script]]


def test_an_s3_folder_is_loaded_into_dynamodb_with_a_column_mapping_and_the_filter() -> None:
    activity = planned(copy("Load", output={"ref": "Orders"}, filterSql="`amount` > 100 AND name <> 'x'"),
                       CSV_IN, {"id": "Rows", "type": "CSV", "column": ["orderId STRING", "amount BIGINT"]},
                       {**ORDERS, "writeThroughputPercent": ".5", "readThroughputPercent": "0.9"})
    script = (
        "DROP TABLE IF EXISTS copy_load_input; "
        "CREATE EXTERNAL TABLE copy_load_input (`orderId` string, `amount` bigint) "
        "ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://bucket/in/'; "
        "DROP TABLE IF EXISTS copy_load_output; "
        "CREATE EXTERNAL TABLE copy_load_output (`orderId` string, `amount` bigint) "
        "STORED BY 'org.apache.hadoop.hive.dynamodb.DynamoDBStorageHandler' "
        'TBLPROPERTIES ("dynamodb.table.name" = "Orders", '
        '"dynamodb.column.mapping" = "orderId:orderId,amount:amount", "dynamodb.throughput.write.percent" = ".5"); '
        "INSERT OVERWRITE TABLE copy_load_output SELECT * FROM copy_load_input WHERE `amount` > 100 AND name <> 'x';"
    )
    assert step_args(activity) == [["command-runner.jar", "hive", "-e", script]]


def test_the_reference_example_filters_on_the_run_time_read_when_the_run_starts() -> None:
    # The example of the HiveCopyActivity reference page: DynamoDB to DynamoDB, the filter on the scheduled start.
    formats = [{"id": "DataFormat.1", "type": "DynamoDBExportDataFormat", "column": "timeStamp BIGINT"},
               {"id": "DataFormat.2", "type": "DynamoDBExportDataFormat"}]
    nodes = [{"id": "DynamoDBDataNode.1", "type": "DynamoDBDataNode", "tableName": "item_mapped_table_restore_temp",
              "dataFormat": {"ref": "DataFormat.1"}},
             {"id": "DynamoDBDataNode.2", "type": "DynamoDBDataNode", "tableName": "restore_table",
              "region": "us_west_1", "dataFormat": {"ref": "DataFormat.2"}}]
    activity = planned(*formats, *nodes, copy(
        "HiveTransform.1", input={"ref": "DynamoDBDataNode.1"}, output={"ref": "DynamoDBDataNode.2"},
        filterSql="`timeStamp` > unix_timestamp(\"#{@scheduledStartTime}\", \"yyyy-MM-dd'T'HH:mm:ss\")"))
    [[_, _, _, script]] = step_args(activity)
    handler = "STORED BY 'org.apache.hadoop.hive.dynamodb.DynamoDBStorageHandler'"
    assert script == (
        f"DROP TABLE IF EXISTS copy_hivetransform_1_input; CREATE EXTERNAL TABLE copy_hivetransform_1_input "
        f'(`timeStamp` bigint) {handler} TBLPROPERTIES ("dynamodb.table.name" = "item_mapped_table_restore_temp", '
        f'"dynamodb.column.mapping" = "timeStamp:timeStamp"); '
        f"DROP TABLE IF EXISTS copy_hivetransform_1_output; CREATE EXTERNAL TABLE copy_hivetransform_1_output "
        f'(`timeStamp` bigint) {handler} TBLPROPERTIES ("dynamodb.table.name" = "restore_table", '
        f'"dynamodb.column.mapping" = "timeStamp:timeStamp"); '
        "INSERT OVERWRITE TABLE copy_hivetransform_1_output SELECT * FROM copy_hivetransform_1_input WHERE "
        "`timeStamp` > unix_timestamp(\"{$.run.year}-{$.run.month}-{$.run.day}T{$.run.hour}:{$.run.minute}:"
        "{$.run.second}\", \"yyyy-MM-dd'T'HH:mm:ss\");"
    )


def test_with_generated_scripts_path_the_script_is_written_there_as_arguments_then_run_from_there(
    tmp_path: Path,
) -> None:
    # 1,000 columns of 22 characters ("`column_0000` string, ") in two tables make a script of about 44,400
    # characters: five pieces of at most 10,280, the most one EMR step argument holds.
    columns = [f"column_{index:04} STRING" for index in range(1000)]
    activity = planned(copy(generatedScriptsPath="s3://bucket/scripts/"), CSV_IN, {**ROWS, "column": columns},
                       TSV_OUT, TABS)
    [write, run] = step_args(activity)
    assert write[:5] == ["command-runner.jar", "bash", "-c", 'printf "%s" "${@:1:$#-1}" | aws s3 cp - "${@: -1}"',
                         "datapipe"]
    assert write[-1] == "s3://bucket/scripts/copy_copycsv.q"
    assert run == ["command-runner.jar", "hive-script", "--run-hive-script", "--args", "-f",
                   "s3://bucket/scripts/copy_copycsv.q"]
    pieces = write[5:-1]
    assert len(pieces) == 5 and all(len(piece) <= 10280 for piece in pieces)
    # The step's command, run by bash with an `aws` that keeps what it is given, writes the whole script.
    fake = tmp_path / "aws"
    fake.write_text('#!/bin/sh\ncat > "$KEPT"\necho "$@" > "$KEPT.args"\n')
    fake.chmod(0o755)
    kept = tmp_path / "kept"
    environment = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "KEPT": str(kept)}
    subprocess.run(write[1:], env=environment, check=True, timeout=30)
    script = kept.read_text()
    assert script.startswith("DROP TABLE IF EXISTS copy_copycsv_input; CREATE EXTERNAL TABLE copy_copycsv_input "
                             "(`column_0000` string, `column_0001` string, ")
    assert script.endswith("`column_0999` string) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' LOCATION "
                           "'s3://bucket/out/'; INSERT OVERWRITE TABLE copy_copycsv_output SELECT * FROM "
                           "copy_copycsv_input;")
    assert script.count("`column_0500` string") == 2
    assert (tmp_path / "kept.args").read_text().split() == ["s3", "cp", "-", "s3://bucket/scripts/copy_copycsv.q"]


def test_a_script_too_long_for_a_step_argument_needs_generated_scripts_path(
    write_definition: Callable[..., Path],
) -> None:
    columns = [f"column_{index:04} STRING" for index in range(1000)]
    errors = import_errors(write_definition, copy(), CSV_IN, {**ROWS, "column": columns}, TSV_OUT, TABS)
    assert len(errors) == 1 and errors[0].startswith("CopyCsv.generatedScriptsPath: not given, and the generated "
                                                     "Hive script (")


def test_a_filter_on_a_parameter_given_when_the_run_starts_is_refused(write_definition: Callable[..., Path]) -> None:
    errors = import_errors(write_definition, copy(filterSql="id > #{myMinimum}"), CSV_IN, ROWS, TSV_OUT, TABS,
                           parameters=[{"id": "myMinimum", "type": "Integer"}])
    assert len(errors) == 1 and errors[0].startswith("CopyCsv.filterSql: the code that runs may not depend on "
                                                     "myMinimum, a parameter given when the run starts")


def test_bad_definitions_are_refused_naming_the_object_and_field(write_definition: Callable[..., Path]) -> None:
    cases: list[tuple[list[dict[str, Any]], str]] = [
        ([copy(), CSV_IN, {**ROWS, "column": ["id BIGINT; DROP TABLE x"]}, TSV_OUT, TABS], "Rows.column: "),
        ([copy(), CSV_IN, {**ROWS, "column": ["id BIGINT", "ID STRING"]}, TSV_OUT, TABS], "Rows.column: ID is "),
        ([copy(), {**CSV_IN, "directoryPath": "s3://bucket/in'; DROP TABLE x; --/"}, ROWS, TSV_OUT, TABS],
         "In.directoryPath: may not hold quotes"),
        ([copy(), {**CSV_IN, "directoryPath": "/local/in/"}, ROWS, TSV_OUT, TABS], "In.directoryPath: must be an s3"),
        ([copy(), {"id": "In", "type": "S3DataNode", "filePath": "s3://bucket/in.csv"}, TSV_OUT, TABS],
         "In.filePath: a Hive table reads and writes a folder"),
        ([copy(output={"ref": "Orders"}), CSV_IN, ROWS, {**ORDERS, "tableName": "a\"b"}],
         "Orders.tableName: "),
        ([copy(output={"ref": "Orders"}), CSV_IN, ROWS, {**ORDERS, "writeThroughputPercent": "1.5"}],
         "Orders.writeThroughputPercent: must be a number from 0.1 to 1.0, got '1.5'"),
        ([copy(filterSql="WHERE id > 1"), CSV_IN, ROWS, TSV_OUT, TABS], "CopyCsv.filterSql: give only the predicates"),
        ([copy(output=None), CSV_IN, ROWS], "CopyCsv.output: HiveCopyActivity copies exactly one output data node"),
        ([copy(), CSV_IN, ROWS, TSV_OUT, {**TABS, "column": ["id STRING"]}], "Out.dataFormat: its columns differ"),
        ([copy(), CSV_IN, ROWS, TSV_OUT, {"id": "Tabs", "type": "Custom", "columnSeparator": "'"}],
         "Tabs.columnSeparator: must be a tab or one printable character"),
        ([copy(), CSV_IN, ROWS, TSV_OUT, {"id": "Tabs", "type": "RegEx", "inputRegEx": "(.*)"}],
         "Out.dataFormat: Tabs is a RegEx"),
        ([copy(generatedScriptsPath="hdfs:///scripts"), CSV_IN, ROWS, TSV_OUT, TABS],
         "CopyCsv.generatedScriptsPath: must be an s3:// folder"),
    ]
    for objects, expected in cases:
        objects = [{k: v for k, v in o.items() if v is not None} for o in objects]
        errors = import_errors(write_definition, *objects)
        assert any(error.startswith(expected) for error in errors), (expected, errors)
        assert all("\n" not in error for error in errors)


def test_huge_values_are_refused_or_planned_in_time(write_definition: Callable[..., Path]) -> None:
    columns = [f"c{index} STRING" for index in range(5_000)]
    started = time.perf_counter()
    activity = planned(copy(generatedScriptsPath="s3://bucket/scripts"), CSV_IN, {**ROWS, "column": columns},
                       TSV_OUT, TABS)
    assert "`c4999` string) ROW FORMAT" in "".join(arg.describe() for arg in activity.steps[0].args[4:-1])
    errors = import_errors(write_definition, copy(), CSV_IN, {**ROWS, "column": ["x" * 1_000_000 + " STRING"]},
                           TSV_OUT, TABS)
    assert any(e.startswith("Rows.column: ") and len(e) < 300 for e in errors)
    errors = import_errors(write_definition, copy(generatedScriptsPath="s3://bucket/scripts/",
                                                  filterSql="name = 'x' OR " * 30_000 + "true"),
                           CSV_IN, ROWS, TSV_OUT, TABS)
    [error] = errors  # the filter alone is 420,004 characters
    assert error.startswith("CopyCsv.filterSql: the generated Hive script would be 42") and error.endswith(
        " characters, more than the 262144 a Step Functions task's input may carry")
    assert time.perf_counter() - started < 10


def test_the_cluster_role_may_read_the_input_table_and_write_the_output_table_only() -> None:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from datapipe.naming import Naming
    from stacks.pipeline_dynamodb import emr_dynamodb_statements
    from stacks.pipelines import PipelineEmrRoles, emr_buckets

    restore = {"id": "Restore", "type": "DynamoDBDataNode", "tableName": "restore_table"}
    plan = make_plan(build_model(parse_definition(definition(
        copy("RestoreCopy", input={"ref": "Orders"}, output={"ref": "Restore"}), ORDERS, restore), source="c.json")))
    assert plan.deployable, plan.errors
    stack = cdk.Stack(cdk.App(), "Roles", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    roles = PipelineEmrRoles(stack, "EmrRoles", naming=Naming(), buckets=emr_buckets([plan]))
    for statement in emr_dynamodb_statements(stack, [plan]):
        roles.instance_role.add_to_policy(statement)
    statements = [s for policy in Template.from_stack(stack).find_resources("AWS::IAM::Policy").values()
                  for s in policy["Properties"]["PolicyDocument"]["Statement"] if "dynamodb" in json.dumps(s)]

    def table_arn(name: str) -> dict[str, Any]:
        return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":dynamodb:eu-west-1:123456789012:table/{name}"]]}

    assert statements == [
        {"Action": ["dynamodb:DescribeTable", "dynamodb:Scan", "dynamodb:Query"], "Effect": "Allow",
         "Resource": table_arn("Orders")},
        {"Action": ["dynamodb:DescribeTable", "dynamodb:BatchWriteItem"], "Effect": "Allow",
         "Resource": table_arn("restore_table")},
    ]


def test_a_hive_copy_on_a_worker_group_is_reported_unsupported(write_definition: Callable[..., Path]) -> None:
    on_worker_group = {**copy(), "workerGroup": "wg-1"}
    del on_worker_group["runsOn"]
    path = write_definition(json.loads(definition(on_worker_group, CSV_IN, ROWS, TSV_OUT, TABS))["objects"])
    result = CliRunner().invoke(cli, ["import", str(path)])
    assert result.exit_code == 1
    assert "  unsupported: CopyCsv (HiveCopyActivity): HiveCopyActivity is mapped only with runsOn an EmrCluster" \
        in result.output
