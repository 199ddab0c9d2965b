"""Database objects in imported pipelines: the plan of each activity, the refusals, and the synthesized states.

Expected statements are worked by hand from the reference of RedshiftCopyActivity (OVERWRITE_EXISTING: delete the
table's rows whose key is staged, then insert every staged row) and of the Redshift Data API (`:name` parameters,
ClusterIdentifier / Database / SecretArn).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from datapipe.importer.databases import REDSHIFT_DATA
from datapipe.importer.expressions import RuntimePath, Text
from datapipe.importer.model import build_model
from datapipe.importer.plan import ACTIVITY_TASK, BATCH_JOB, MAPPED, Plan, make_plan
from datapipe.importer.reader import parse_definition

DEFAULT = {"id": "Default", "scheduleType": "ondemand"}
WAREHOUSE = {"id": "Warehouse", "type": "RedshiftDatabase", "databaseName": "sales", "secretId": "redshift/loader",
             "connectionString": "jdbc:redshift://sales.abc123xyz.eu-west-1.redshift.amazonaws.com:5439/dev"}
ORDERS_IN = {"id": "Input", "type": "S3DataNode", "filePath": "s3://incoming/orders.tsv", "dataFormat": {"ref": "Tsv"}}
TSV = {"id": "Tsv", "type": "TSV"}
ORDERS = {"id": "Orders", "type": "RedshiftDataNode", "database": {"ref": "Warehouse"}, "tableName": "orders",
          "primaryKeys": "id", "createTableSql": "create table orders (id int, amount int)"}
LOAD = {"id": "Load", "type": "RedshiftCopyActivity", "input": {"ref": "Input"}, "output": {"ref": "Orders"},
        "insertMode": "OVERWRITE_EXISTING", "runsOn": {"ref": "Host"}}
HOST = {"id": "Host", "type": "Ec2Resource", "role": "R", "resourceRole": "RR"}
# No primaryKeys, no createTableSql: the run reads the table's key from the catalog.
KEYLESS_ORDERS = {k: v for k, v in ORDERS.items() if k not in ("primaryKeys", "createTableSql")}
AUDIT = {"id": "Audit", "type": "SqlActivity", "database": {"ref": "Warehouse"}, "dependsOn": {"ref": "Load"},
         "script": "insert into audit values (?, ?) -- a '?' here is no placeholder", "scriptArgument":
         ["#{myBatch}", "loaded"]}
SALES_DB = {"id": "SalesDb", "type": "JdbcDatabase", "connectionString": "jdbc:postgresql://db.internal:5432/sales",
            "jdbcDriverClass": "org.postgresql.Driver", "secretId": "db/sales"}
EXPORT_IN = {"id": "Orders2", "type": "SqlDataNode", "database": {"ref": "SalesDb"}, "table": "orders",
             "selectQuery": "select * from orders"}
EXPORT_OUT = {"id": "Out", "type": "S3DataNode",
              "directoryPath": "s3://exports/#{format(@scheduledStartTime, 'YYYY-MM-dd')}/"}
EXPORT = {"id": "Export", "type": "CopyActivity", "input": {"ref": "Orders2"}, "output": {"ref": "Out"},
          "workerGroup": "wg-1"}


def plan_of(*objects: dict[str, Any], name: str | None = None, **sections: Any) -> Plan:
    text = json.dumps({"objects": [DEFAULT, *objects], **sections})
    return make_plan(build_model(parse_definition(text, source="db-pipeline.json")), name=name)


def redshift_plan(name: str | None = None) -> Plan:
    return plan_of(WAREHOUSE, ORDERS_IN, TSV, ORDERS, LOAD, HOST, AUDIT, name=name,
                   parameters=[{"id": "myBatch", "type": "String"}])


def test_a_redshift_copy_becomes_one_batch_of_statements_through_the_data_api() -> None:
    plan = redshift_plan()
    assert plan.deployable, plan.errors
    load = next(a for a in plan.activities if a.id == "Load")
    assert load.target == REDSHIFT_DATA and load.sql is not None and load.sql.redshift is not None
    # The cluster is the first label of the endpoint's host; databaseName wins over the URL's database.
    assert load.sql.redshift.target == {"ClusterIdentifier": "sales", "Database": "sales",
                                        "SecretArn": "redshift/loader"}
    assert load.sql.redshift.sqls == [
        "create table IF NOT EXISTS orders (id int, amount int)",  # the definition's text, IF NOT EXISTS added
        "CREATE TEMP TABLE staging (LIKE orders)",
        "COPY staging FROM 's3://incoming/orders.tsv' IAM_ROLE default DELIMITER '\\t'",
        "DELETE FROM orders USING staging WHERE orders.id = staging.id",
        "INSERT INTO orders SELECT * FROM staging",
        "DROP TABLE staging",
    ]
    reports = {o.id: o for o in plan.objects}
    assert all(o.status == MAPPED for o in plan.objects)
    assert "runsOn is not used" in reports["Load"].reason


def test_a_redshift_sql_activity_binds_its_arguments_as_data_api_parameters() -> None:
    audit = next(a for a in redshift_plan().activities if a.id == "Audit")
    assert audit.sql is not None and audit.sql.redshift is not None
    assert audit.sql.redshift.sqls == ["insert into audit values (:arg1, :arg2) -- a '?' here is no placeholder"]
    assert audit.sql.redshift.parameters == [("arg1", Text.of(RuntimePath("$.parameters.myBatch"))),
                                             ("arg2", Text.of("loaded"))]


def test_a_sql_copy_on_a_worker_group_is_a_task_of_the_contract() -> None:
    plan = plan_of(SALES_DB, EXPORT_IN, EXPORT_OUT, EXPORT)
    assert plan.deployable, plan.errors
    export = plan.activities[0]
    assert export.target == ACTIVITY_TASK and export.worker_group == "wg-1"
    assert export.sql is not None and export.sql.task is not None
    task = export.sql.task
    assert task.task_type == "CopyActivity" and task.data_format is None
    assert {k: v.static for k, v in task.objects["database"].items()} == {  # type: ignore[union-attr]
        "id": "SalesDb", "type": "JdbcDatabase", "connectionString": "jdbc:postgresql://db.internal:5432/sales",
        "jdbcDriverClass": "org.postgresql.Driver", "secretId": "db/sales"}
    assert not task.objects["output"]["directoryPath"].is_static  # type: ignore[union-attr]
    assert plan.secrets(ACTIVITY_TASK, "wg-1") == {"DATABASE_SalesDb": "db/sales"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"*password": "hunter2"}, "Warehouse.*password: passwords are not read from definitions: write "
         "#{*myPassword} and give the secret parameter *myPassword a reference"),
        ({"secretId": None}, "Warehouse.secretId: required: the ARN or name of a Secrets Manager secret"),
        ({"connectionString": "jdbc:oracle:thin:@db:1521:orcl"},
         "Warehouse.connectionString: jdbc:oracle: URLs are not supported: they would need an Oracle driver"),
        ({"connectionString": "jdbc:redshift://10.0.0.5:5439/dev"},
         "Warehouse.connectionString: the Redshift Data API needs a cluster or workgroup endpoint"),
        ({"connectionString": "jdbc:redshift://#{myHost}:5439/dev"},
         "Warehouse.connectionString: must be known at import time"),
    ],
)
def test_a_database_is_refused_naming_its_object_and_field(change: dict[str, Any], expected: str) -> None:
    warehouse = {k: v for k, v in {**WAREHOUSE, **change}.items() if v is not None}
    plan = plan_of(warehouse, ORDERS_IN, TSV, ORDERS, LOAD, HOST, parameters=[{"id": "myHost", "type": "String"}])
    assert not plan.deployable
    assert any(error.startswith(expected) for error in plan.errors), plan.errors
    assert "hunter2" not in json.dumps([o.as_dict() for o in plan.objects]) + "".join(plan.errors)


@pytest.mark.parametrize(
    ("activity", "expected"),
    [
        ({"script": "delete from a where x = ?; delete from b", "scriptArgument": "1"},
         "Audit.scriptArgument: the Redshift Data API binds arguments to a script of one statement only"),
        ({"script": "select ?", "scriptArgument": ["1", "2"]},
         "Audit.scriptArgument: the script has 1 ? placeholders but 2 arguments"),
        ({"script": "select '#{myBatch}'"}, "Audit.script: must be known at import time"),
        ({"script": "select 'unclosed"}, "Audit.script: "),
        ({"script": "select 1;" * 41}, "Audit.script: holds 41 statements; the Redshift Data API runs at most 40"),
        ({"script": "select '" + "x" * 200_000 + "'"}, "Audit.script: holds a statement over 100 kB"),
    ],
)
def test_sql_that_an_execution_could_change_or_that_cannot_bind_is_refused(
    activity: dict[str, Any], expected: str
) -> None:
    audit = {"id": "Audit", "type": "SqlActivity", "database": {"ref": "Warehouse"}, **activity}
    plan = plan_of(WAREHOUSE, audit, parameters=[{"id": "myBatch", "type": "String"}])
    assert any(error.startswith(expected) for error in plan.errors), plan.errors


def test_a_table_name_that_is_not_a_plain_name_is_refused_naming_the_field() -> None:
    plan = plan_of(WAREHOUSE, ORDERS_IN, TSV, {**ORDERS, "tableName": "orders; drop table x"}, LOAD, HOST)
    assert plan.errors[0] == ("Load.output tableName: 'orders; drop table x' is not a plain table or column name "
                              "(letters, digits, _ and $)")


def test_a_table_name_from_the_run_cannot_reach_a_copy() -> None:
    export_in = {**EXPORT_IN, "table": "#{myTable}"}
    plan = plan_of(SALES_DB, export_in, EXPORT_OUT, EXPORT, parameters=[{"id": "myTable", "type": "String"}])
    assert any(e.startswith("Orders2.table: must be known at import time") for e in plan.errors), plan.errors


def test_a_mysql_data_node_is_its_own_database() -> None:
    node = {"id": "Src", "type": "MySqlDataNode", "connectionString": "jdbc:mysql://db.internal:3306/shop",
            "secretId": "rds/shop", "table": "orders"}
    plan = plan_of(node, {**EXPORT, "input": {"ref": "Src"}}, EXPORT_OUT)
    assert plan.deployable, plan.errors
    task = plan.activities[0].sql.task  # type: ignore[union-attr]
    assert task is not None and task.objects["database"]["jdbcDriverClass"] == Text.of("com.mysql.jdbc.Driver")
    postgres = {**node, "connectionString": "jdbc:postgresql://db.internal/shop"}
    refused = plan_of(postgres, {**EXPORT, "input": {"ref": "Src"}}, EXPORT_OUT)
    assert any(e.startswith("Src.jdbcDriverClass: com.mysql.jdbc.Driver is a mysql driver") for e in refused.errors)


# -- *password as Data Pipeline writes it: a secret parameter, whose value given with --values is a reference ----------

PASSWORD_DB = {**{k: v for k, v in SALES_DB.items() if k != "secretId"}, "username": "#{myDbUser}",
               "*password": "#{*myDbPassword}"}
PASSWORD_PARAMETERS = [{"id": "myDbUser", "type": "String"}, {"id": "*myDbPassword", "type": "String"}]


def password_plan(database: dict[str, Any], password: str | None, *others: dict[str, Any],
                  name: str | None = None) -> Plan:
    values = {"myDbUser": "loader", **({"*myDbPassword": password} if password is not None else {})}
    return plan_of(database, *(others or (EXPORT_IN, EXPORT_OUT, EXPORT)), parameters=PASSWORD_PARAMETERS,
                   values=values, name=name)


def mysql_password_plan(name: str | None = None) -> Plan:
    """A MySqlDataNode with username and *password, copied to S3 by a Batch job (runsOn an Ec2Resource)."""
    node = {"id": "Src", "type": "MySqlDataNode", "connectionString": "jdbc:mysql://db.internal:3306/shop",
            "table": "orders", "username": "#{myDbUser}", "*password": "#{*myDbPassword}"}
    on_host = {**{k: v for k, v in EXPORT.items() if k != "workerGroup"}, "input": {"ref": "Src"},
               "runsOn": {"ref": "Host"}}
    return password_plan(node, "ssm:/shop/loader", on_host, EXPORT_OUT, HOST, name=name)


@pytest.mark.parametrize(("given", "reference"), [
    ("secretsmanager:db/sales-password", "db/sales-password"),
    ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:db/pw-AbCdEf",
     "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db/pw-AbCdEf"),
    ("ssm:/db/sales/password", "ssm:/db/sales/password"),
])
def test_a_secret_password_parameter_becomes_the_username_and_a_password_reference(given: str, reference: str) -> None:
    plan = password_plan(PASSWORD_DB, given)
    assert plan.deployable, plan.errors
    task = plan.activities[0].sql.task  # type: ignore[union-attr]
    assert task is not None
    assert {k: v.static for k, v in task.objects["database"].items()} == {  # type: ignore[union-attr]
        "id": "SalesDb", "type": "JdbcDatabase", "connectionString": "jdbc:postgresql://db.internal:5432/sales",
        "jdbcDriverClass": "org.postgresql.Driver", "username": "loader", "passwordSecret": reference}
    # the worker group's runner may read exactly this secret (the policy pipelines.py builds from Plan.secrets)
    assert plan.secrets(ACTIVITY_TASK, "wg-1") == {"DATABASE_SalesDb": reference}
    [database] = [o for o in plan.objects if o.id == "SalesDb"]
    assert "*password" not in {entry["field"] for entry in database.as_dict()["fields"]["notApplied"]}


def test_a_mysql_data_node_with_a_secret_password_parameter_runs_on_batch_with_it() -> None:
    plan = mysql_password_plan()
    assert plan.deployable, plan.errors
    assert plan.activities[0].target == BATCH_JOB
    work = plan.activities[0].sql
    assert work is not None and work.task is not None and work.secret_id == "ssm:/shop/loader"  # the job role's
    assert work.task.objects["database"]["passwordSecret"] == Text.of("ssm:/shop/loader")


@pytest.mark.parametrize(("database", "password", "expected"), [
    ({**PASSWORD_DB, "*password": "hunter2"}, None,
     "SalesDb.*password: passwords are not read from definitions: write #{*myPassword}"),
    ({**PASSWORD_DB, "*password": "#{myDbUser}"}, None,  # its value, loader, is not a reference: never repeated
     "SalesDb.*password: refers to myDbUser, a plain parameter whose value (from --values or its default) is not a "
     "reference to a secret, so it would be the password itself"),
    ({**PASSWORD_DB, "*password": "#{*myOther}"}, None,
     "SalesDb.*password: refers to *myOther, which is not a declared parameter"),
    (PASSWORD_DB, None, "SalesDb.*password: the secret *myDbPassword needs a reference as its value"),
    (PASSWORD_DB, "hunter2", "*myDbPassword.value: give a reference to the secret, never the secret itself"),
    ({k: v for k, v in PASSWORD_DB.items() if k != "username"}, "ssm:/db/pw",
     "SalesDb.username: required with *password"),
    ({"id": "SalesDb", "type": "RdsDatabase", "rdsInstanceId": "sales", "username": "#{myDbUser}",
      "*password": "#{*myDbPassword}"}, "ssm:/db/pw",
     "SalesDb.rdsInstanceId: an RdsDatabase finds its host, port and engine in its secret, as RDS writes a "
     "database's credentials (username, password, engine, host, port): name a Secrets Manager secret, not an SSM "
     "parameter"),
    ({**PASSWORD_DB, "secretId": "db/sales"}, "ssm:/db/pw",
     "SalesDb.*password: give either secretId or username and *password, not both"),
])
def test_a_password_that_is_not_a_secret_reference_is_refused_never_shown(
    database: dict[str, Any], password: str | None, expected: str
) -> None:
    plan = password_plan(database, password)
    assert not plan.deployable and any(e.startswith(expected) for e in plan.errors), plan.errors
    assert "hunter2" not in json.dumps([o.as_dict() for o in plan.objects]) + "".join(plan.errors)


# -- *password in a plain parameter (#{myPassword}), as two corpus samples write it: its value must be a reference ----

PLAIN_DB = {**PASSWORD_DB, "*password": "#{myDbPassword}"}


def import_json(tmp_path: Path, parameter: dict[str, Any], values: dict[str, str]) -> tuple[int, str]:
    """`datapipe import --json` of the export pipeline whose database takes its password from `parameter`."""
    from click.testing import CliRunner

    from datapipe.cli import cli

    definition = tmp_path / "plain.json"
    definition.write_text(json.dumps({"objects": [DEFAULT, PLAIN_DB, EXPORT_IN, EXPORT_OUT, EXPORT],
                                      "parameters": [{"id": "myDbUser", "type": "String"}, parameter]}))
    values_path = tmp_path / "values.json"
    values_path.write_text(json.dumps({"values": {"myDbUser": "loader", **values}}))
    result = CliRunner().invoke(cli, ["import", str(definition), "--json", "--values", str(values_path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize(("parameter", "values", "reference"), [
    ({"id": "myDbPassword", "type": "String"}, {"myDbPassword": "secretsmanager:db/sales-password"},
     "db/sales-password"),
    ({"id": "myDbPassword", "type": "String", "default": "ssm:/db/sales/password"}, {}, "ssm:/db/sales/password"),
])
def test_a_plain_password_parameter_whose_value_is_a_reference_is_accepted(
    tmp_path: Path, parameter: dict[str, str], values: dict[str, str], reference: str
) -> None:
    code, output = import_json(tmp_path, parameter, values)
    report = json.loads(output)
    assert code == 0 and report["deployable"], report["errors"]
    plan = plan_of(PLAIN_DB, EXPORT_IN, EXPORT_OUT, EXPORT, parameters=[{"id": "myDbUser", "type": "String"},
                                                                        parameter],
                   values={"myDbUser": "loader", **values})
    task = plan.activities[0].sql.task  # type: ignore[union-attr]
    assert task is not None and task.objects["database"]["passwordSecret"] == Text.of(reference)
    assert plan.secrets(ACTIVITY_TASK, "wg-1") == {"DATABASE_SalesDb": reference}


@pytest.mark.parametrize(("parameter", "values"), [
    ({"id": "myDbPassword", "type": "String"}, {"myDbPassword": "hunter2"}),
    ({"id": "myDbPassword", "type": "String", "default": "hunter2"}, {}),
    ({"id": "myDbPassword", "type": "String"}, {"myDbPassword": "hunter2" * 20_000}),
    ({"id": "myDbPassword", "type": "String"}, {}),  # no value: it would come from the execution input
])
def test_a_plain_password_parameter_whose_value_is_no_reference_is_refused_never_shown(
    tmp_path: Path, parameter: dict[str, str], values: dict[str, str]
) -> None:
    code, output = import_json(tmp_path, parameter, values)
    report = json.loads(output)
    assert code == 1 and not report["deployable"]
    assert report["errors"][0].startswith("SalesDb.*password: refers to myDbPassword, a plain parameter whose value "
                                          "(from --values or its default) is not a reference to a secret")
    assert "hunter2" not in output


def test_a_huge_or_repeated_password_is_refused_at_once_never_shown() -> None:
    import time

    huge = "#{*myDbPassword}" + " x" * 500_000  # 1 MB: a reference followed by text is no reference
    for password in (huge, ["#{*myDbPassword}", "#{*myDbPassword}"], "#{" * 100_000 + "*myDbPassword" + "}" * 100_000):
        started = time.perf_counter()
        plan = password_plan({**PASSWORD_DB, "*password": password}, "ssm:/db/pw")
        assert time.perf_counter() - started < 5
        assert any(e.startswith("SalesDb.*password: passwords are not read from definitions") for e in plan.errors)
        assert " x x" not in "".join(plan.errors) and "#{#{" not in "".join(plan.errors)


# A RedshiftDatabase with username and *password: the Data API signs in with temporary credentials, as DbUser on a
# cluster (ClusterIdentifier + Database + DbUser, the Data API's reference), as the caller's IAM identity on a workgroup
# (WorkgroupName + Database); the password is read by nobody, and the report says so.
SIGN_IN_WAREHOUSE = {**{k: v for k, v in WAREHOUSE.items() if k != "secretId"}, "username": "#{myDbUser}",
                     "*password": "#{*myDbPassword}"}
SERVERLESS_URL = "jdbc:redshift://etl.123456789012.eu-west-1.redshift-serverless.amazonaws.com:5439/analytics"


def sign_in_plan(warehouse: dict[str, Any] = SIGN_IN_WAREHOUSE, name: str | None = None) -> Plan:
    return password_plan(warehouse, "secretsmanager:redshift/pw", ORDERS_IN, TSV, ORDERS, LOAD, HOST, name=name)


@pytest.mark.parametrize(("change", "target", "who"), [
    ({}, {"ClusterIdentifier": "sales", "Database": "sales", "DbUser": "loader"},
     "as loader with temporary credentials (redshift:GetClusterCredentials)"),
    ({"connectionString": SERVERLESS_URL}, {"WorkgroupName": "etl", "Database": "sales"},
     "as the workflow's IAM identity, with temporary credentials (redshift-serverless:GetCredentials)"),
])
def test_redshift_without_a_secret_signs_in_with_temporary_credentials(
    change: dict[str, str], target: dict[str, str], who: str
) -> None:
    plan = sign_in_plan({**SIGN_IN_WAREHOUSE, **change})
    assert plan.deployable, plan.errors
    load = next(a for a in plan.activities if a.id == "Load")
    assert load.sql is not None and load.sql.redshift is not None and load.sql.redshift.target == target
    warehouse = next(o for o in plan.objects if o.id == "Warehouse").as_dict()
    assert warehouse["status"] == MAPPED and who in warehouse["target"]
    assert {"field": "*password", "reason": "the Redshift Data API signs in with temporary credentials "
            "(GetClusterCredentials as username on a cluster, GetCredentials as the workflow's IAM identity on a "
            "workgroup): no password is read"} in warehouse["fields"]["notApplied"]


@pytest.mark.parametrize(("change", "expected"), [
    ({"username": "loader*"}, "Warehouse.username: 'loader*' is not a name GetClusterCredentials accepts"),
    ({"username": "team/loader"}, "Warehouse.username: 'team/loader' is not a name GetClusterCredentials accepts"),
    ({"username": "x" * 100_000}, "Warehouse.username: 'xxxxxxxx"),
    ({"databaseName": "sales:*"}, "Warehouse.databaseName: 'sales:*' is not a name GetClusterCredentials accepts"),
    ({"connectionString": None, "clusterId": "*"}, "Warehouse.clusterId: '*' is not a cluster identifier"),
    ({"connectionString": None, "clusterId": "a--b"}, "Warehouse.clusterId: 'a--b' is not a cluster identifier"),
    ({"connectionString": None, "workgroupName": "etl/*"}, "Warehouse.workgroupName: 'etl/*' is not a workgroup"),
])
def test_a_name_that_would_widen_the_sign_in_policy_is_refused(change: dict[str, Any], expected: str) -> None:
    """The user, database, cluster and workgroup become IAM ARNs: a wildcard or a slash never reaches one."""
    warehouse = {k: v for k, v in {**SIGN_IN_WAREHOUSE, **change}.items() if v is not None}
    plan = sign_in_plan(warehouse)
    assert not plan.deployable and plan.errors[0].startswith(expected), plan.errors
    assert max(len(error) for error in plan.errors) < 500


def batch_sql_plan(name: str | None = None) -> Plan:
    sql = {"id": "Run", "type": "SqlActivity", "database": {"ref": "SalesDb"}, "script": "delete from t where d < ?",
           "scriptArgument": "#{myDay}", "runsOn": {"ref": "Host"}}
    return plan_of(SALES_DB, sql, HOST, {"id": "Report", "type": "S3DataNode", "filePath": "s3://reports/x.sql"},
                   name=name, parameters=[{"id": "myDay", "type": "String"}])


def test_sql_on_an_ec2_resource_is_a_batch_job_and_elsewhere_is_reported_not_dropped() -> None:
    plan = batch_sql_plan()
    assert plan.deployable, plan.errors
    assert plan.activities[0].target == BATCH_JOB and plan.activities[0].resource == "Host"
    assert plan.secrets(BATCH_JOB) == {}  # no secret in the job's environment: its job role reads it
    cluster = {"id": "Cluster", "type": "EmrCluster", "releaseLabel": "emr-7.5.0"}
    sql = {"id": "Run", "type": "SqlActivity", "database": {"ref": "SalesDb"}, "script": "select 1"}
    for where, reason in (({"runsOn": {"ref": "Cluster"}}, "not on a EmrCluster"), ({}, "needs a workerGroup")):
        refused = plan_of(SALES_DB, {**sql, **where}, cluster)
        report = next(o for o in refused.objects if o.id == "Run")
        assert report.status == "unsupported" and reason in report.reason and not refused.deployable


def test_many_database_activities_plan_in_linear_time() -> None:
    objects: list[dict[str, Any]] = [WAREHOUSE]
    for index in range(400):
        objects.append({"id": f"Sql{index}", "type": "SqlActivity", "database": {"ref": "Warehouse"},
                        "script": "select 1; " * 40})
    plan = plan_of(*objects)
    assert plan.deployable and len(plan.activities) == 400
    assert all(len(a.sql.redshift.sqls) == 40 for a in plan.activities)  # type: ignore[union-attr]


def test_a_workgroup_endpoint_names_the_serverless_workgroup() -> None:
    serverless = {**WAREHOUSE, "connectionString":
                  "jdbc:redshift://etl.123456789012.eu-west-1.redshift-serverless.amazonaws.com:5439/analytics"}
    load = next(a for a in plan_of(serverless, ORDERS_IN, TSV, ORDERS, LOAD, HOST).activities if a.id == "Load")
    assert load.sql.redshift.target == {"WorkgroupName": "etl", "Database": "sales",  # type: ignore[union-attr]
                                        "SecretArn": "redshift/loader"}


# -- the synthesized states -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def database_template(tmp_path_factory: pytest.TempPathFactory, cdk_json_context: dict[str, object]) -> dict:
    """One stack with the three pipelines and the SQL job definitions, cdk-nag registered (synthesis fails on an
    unacknowledged finding), the template clean for cfn-lint."""
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    from cdk_nag import AwsSolutionsChecks

    from datapipe.naming import Naming
    from stacks.config import PipelineSettings, WorkerGroupSettings
    from stacks.pipeline_merge_keys import PipelineMergeKeys
    from stacks.pipeline_sql import SqlJobDefinitions
    from stacks.pipelines import PipelineWorkflow

    outdir = tmp_path_factory.mktemp("databases")
    app = cdk.App(context=cdk_json_context, outdir=str(outdir))
    stack = cdk.Stack(app, "Databases", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    logs = s3.Bucket.from_bucket_name(stack, "Logs", "db-logs")
    batch_plan = batch_sql_plan("batchsql")
    for name, plan in (("warehouse", redshift_plan("warehouse")),
                       ("export", plan_of(SALES_DB, EXPORT_IN, EXPORT_OUT, EXPORT, name="export")),
                       ("batchsql", batch_plan), ("signin", sign_in_plan(name="signin")),
                       ("serverless", sign_in_plan({**SIGN_IN_WAREHOUSE, "connectionString": SERVERLESS_URL},
                                                   name="serverless")),
                       ("prefix", plan_of(WAREHOUSE, STAGING_IN, TSV, ORDERS, LOAD, HOST, name="prefix")),
                       ("catalogkey", plan_of(WAREHOUSE, ORDERS_IN, TSV, KEYLESS_ORDERS, LOAD, HOST,
                                              name="catalogkey"))):
        PipelineWorkflow(stack, name, naming=Naming(stage="db"), plan=plan, settings=PipelineSettings(),
                         worker_groups=WorkerGroupSettings(names=("wg-1",)), log_bucket=logs,
                         job_queue_arn="arn:aws:batch:eu-west-1:123456789012:job-queue/db",
                         job_definition_arn="unused-shell-job-definition", removal_policy=cdk.RemovalPolicy.DESTROY)
    on_host = {**{k: v for k, v in EXPORT.items() if k != "workerGroup"}, "runsOn": {"ref": "Host"}}
    batch_copy = plan_of(SALES_DB, EXPORT_IN, EXPORT_OUT, on_host, HOST, name="batchcopy")
    assert batch_copy.deployable and batch_plan.deployable
    SqlJobDefinitions(stack, "SqlJobs", naming=Naming(stage="db"), image="example.com/datapipe-sql:1", fargate=False,
                      plans=[batch_plan, batch_copy, mysql_password_plan("batchmysql")],
                      removal_policy=cdk.RemovalPolicy.DESTROY)
    PipelineMergeKeys(stack, "MergeKeys", naming=Naming(stage="db"), powertools_layer_version=27,
                      removal_policy=cdk.RemovalPolicy.DESTROY)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    template = Path(outdir) / "Databases.template.json"
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    linted = subprocess.run([str(cfn_lint), "--format", "parseable", str(template)], capture_output=True, text=True)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    return dict(json.loads(template.read_text()))


def _states(template: dict, fragment: str) -> dict[str, Any]:
    machine = next(r for key, r in template["Resources"].items()
                   if r["Type"] == "AWS::StepFunctions::StateMachine" and fragment in key)
    definition = machine["Properties"]["DefinitionString"]
    parts = definition["Fn::Join"][1] if isinstance(definition, dict) else [definition]
    text = "".join(p if isinstance(p, str) else "REF" for p in parts)
    found: dict[str, Any] = {}
    pending = [json.loads(text)]
    while pending:
        graph = pending.pop()
        for name, state in graph["States"].items():
            found[name] = state
            pending.extend(state.get("Branches", []))
    return found


def _policy(template: dict, fragment: str) -> list[dict[str, Any]]:
    return [s for key, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Policy" and fragment in key
            for s in r["Properties"]["PolicyDocument"]["Statement"]]


def test_the_data_api_states_submit_then_wait_for_the_end(database_template: dict) -> None:
    states = _states(database_template, "warehouse")
    submit = states["Submit_Load"]
    assert submit["Resource"].endswith(":states:::aws-sdk:redshiftdata:batchExecuteStatement")
    assert submit["Parameters"]["ClusterIdentifier"] == "sales" and submit["Parameters"]["Database"] == "sales"
    assert submit["Parameters"]["SecretArn"] == "redshift/loader" and len(submit["Parameters"]["Sqls"]) == 6
    audit = states["Submit_Audit"]
    assert audit["Resource"].endswith(":states:::aws-sdk:redshiftdata:executeStatement")
    assert audit["Parameters"]["Parameters"] == [{"Name": "arg1", "Value.$": "$.parameters.myBatch"},
                                                 {"Name": "arg2", "Value": "loaded"}]
    ended = states["Statement_Ended_Load"]["Choices"]
    assert ended[0] == {"Variable": "$.statements.Load.described.Status", "StringEquals": "FINISHED",
                        "Next": "Statement_Finished_Load"}
    # 24 hours: every 30 s for the first hour (120 checks), then every 120 s (23 h: 690 checks): 810 at most, each
    # 11 history events (Task 5, Choice 2, Pass 2, Wait 2), 8,910 of the 25,000 a Standard workflow keeps.
    assert ended[2]["NumericGreaterThanEquals"] == 810
    assert ended[3] == {"Variable": "$.statements.Load.checks", "NumericGreaterThanEquals": 120,
                        "Next": "Count_Slow_Checks_Load"}
    assert states["Wait_For_Load"]["Seconds"] == 30 and states["Wait_Longer_For_Load"]["Seconds"] == 120
    assert states["Count_Slow_Checks_Load"]["Next"] == "Wait_Longer_For_Load"
    assert states["Wait_Longer_For_Load"]["Next"] == "Describe_Load"
    assert states["Statement_Failed_Load"] == {"Type": "Fail", "Error": "Redshift.StatementFailed",
                                               "CausePath": "$.statements.Load.described.Error"}
    assert states["Run_Load"]["Type"] == "Parallel"


def test_the_data_api_policy_names_the_cluster_and_the_secret_only(database_template: dict) -> None:
    statements = _policy(database_template, "warehouse")
    by_action: dict[str, Any] = {}
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            by_action[action] = statement["Resource"]
    cluster = "arn:{}:redshift:eu-west-1:123456789012:cluster:sales"
    assert json.dumps(by_action["redshift-data:BatchExecuteStatement"]).replace('{"Ref": "AWS::Partition"}', "") \
        .count("cluster:sales") == 1
    assert cluster.split(":", 2)[2] in json.dumps(by_action["redshift-data:ExecuteStatement"])
    assert by_action["redshift-data:DescribeStatement"] == "*"
    assert "secret:redshift/loader-??????" in json.dumps(by_action["secretsmanager:GetSecretValue"])
    # no password anywhere: the batchmysql job's task names its password's secret only by reference (passwordSecret)
    text = json.dumps(database_template).lower().replace("passwords", "").replace("passwordsecret", "")
    assert "password" not in text


def _resources(statement: dict[str, Any]) -> list[str]:
    """A statement's resources as text, the partition written `aws`."""
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    return [json.dumps(r).replace('{"Ref": "AWS::Partition"}', '"aws"') if isinstance(r, dict) else r
            for r in resources]


def test_signing_in_without_a_secret_may_get_credentials_for_that_user_and_database_only(
    database_template: dict
) -> None:
    """redshift:GetClusterCredentials on the dbuser and dbname ARNs (Redshift's IAM reference:
    arn:aws:redshift:<region>:<account>:dbuser:<cluster>/<user>, ...:dbname:<cluster>/<database>), no wildcard."""
    statements = _policy(database_template, "signin")
    [credentials] = [s for s in statements if s["Action"] == "redshift:GetClusterCredentials"]
    assert sorted(_resources(credentials)) == ["arn:aws:redshift:eu-west-1:123456789012:dbname:sales/sales",
                                               "arn:aws:redshift:eu-west-1:123456789012:dbuser:sales/loader"]
    actions = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert not {a for a in actions if a.startswith(("secretsmanager:", "ssm:"))}  # no secret is read
    wildcards = {a for s in statements for r in _resources(s) if "*" in r
                 for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    # DescribeStatement has no resource-level permission; X-Ray and the logs' delivery are every machine's
    assert "redshift:GetClusterCredentials" not in wildcards and "redshift-data:BatchExecuteStatement" not in wildcards
    submit = _states(database_template, "signin")["Submit_Load"]["Parameters"]
    assert {k: v for k, v in submit.items() if k != "Sqls"} == {"ClusterIdentifier": "sales", "Database": "sales",
                                                                 "DbUser": "loader"}


def test_a_workgroup_is_signed_in_to_as_the_state_machines_identity(database_template: dict) -> None:
    statements = _policy(database_template, "serverless")
    granted = {a: _resources(s) for s in statements
               for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    # a workgroup's ARN holds its generated id, which the definition does not know (acknowledged for cdk-nag)
    assert granted["redshift-serverless:GetCredentials"] == [
        "arn:aws:redshift-serverless:eu-west-1:123456789012:workgroup/*"]
    assert not {"redshift:GetClusterCredentials", "secretsmanager:GetSecretValue", "ssm:GetParameter"} & set(granted)
    submit = _states(database_template, "serverless")["Submit_Load"]["Parameters"]
    assert {k: v for k, v in submit.items() if k != "Sqls"} == {"WorkgroupName": "etl", "Database": "sales"}


# billing's staging prefix: the run's time through a fixed pattern (tests/importer/test_databases_run_prefix.py)
STAGING_IN = {**{k: v for k, v in ORDERS_IN.items() if k != "filePath"},
              "directoryPath": "s3://stage/#{format(@scheduledStartTime, 'YYYY-MM-dd-HH-mm-ss')}"}


def test_the_lambda_checks_the_run_values_and_the_copy_is_built_from_them_alone(database_template: dict) -> None:
    states = _states(database_template, "prefix")
    evaluate = states["Evaluate_Run_Time_Expressions"]["Parameters"]
    assert evaluate["checked"] == [f"value{n}" for n in range(1, 7)]
    sqls = states["Submit_Load"]["Parameters"]["Sqls.$"]
    assert sqls.startswith("States.Array(") and sqls.count("States.Format(") == 1
    # the run's values in the SQL are the checked ones only; every other piece is a constant of the definition
    paths = {p for p in re.split(r"[(), ]+", sqls) if p.startswith("$.")}
    assert {p for p in paths if not p.startswith("$.const.")} == {f"$.runtime.value{n}" for n in range(1, 7)}


def test_the_worker_group_task_carries_the_contract(database_template: dict) -> None:
    task = _states(database_template, "export")["Export"]
    parameters = task["Parameters"]
    assert parameters["type"] == "CopyActivity" and parameters["activityId"] == "Export"
    assert parameters["activity"] == {"id": "Export", "type": "CopyActivity"}
    assert parameters["input"] == {"id": "Orders2", "type": "SqlDataNode", "table": "orders",
                                   "selectQuery": "select * from orders"}
    assert parameters["database"]["secretId"] == "db/sales"
    assert set(parameters["output"]) == {"id", "type", "directoryPath.$"}
    assert parameters["output"]["directoryPath.$"].startswith("States.Format(")


def test_sql_on_batch_runs_exec_task_with_the_task_in_its_environment(database_template: dict) -> None:
    states = _states(database_template, "batchsql")
    prepared = states["Prepare_Run"]["Parameters"]
    assert prepared == {"type": "SqlActivity", "workflow.$": "$$.StateMachine.Name", "execution.$": "$$.Execution.Name",
                        "activityId": "Run", "attempt.$": "$$.State.RetryCount",
                        "activity": {"id": "Run", "type": "SqlActivity", "script": "delete from t where d < ?",
                                     "scriptArgument.$": "States.Array($.parameters.myDay)"},
                        "database": {"id": "SalesDb", "type": "JdbcDatabase", "connectionString":
                                     "jdbc:postgresql://db.internal:5432/sales", "jdbcDriverClass":
                                     "org.postgresql.Driver", "secretId": "db/sales"}}
    job = states["Run_Run"]
    assert job["Parameters"]["JobDefinition"] == "datapipe-db-pipeline-batchsql-sql-job-definition"
    assert job["Parameters"]["ContainerOverrides"]["Environment"] == [
        {"Name": "DATAPIPE_TASK", "Value.$": "States.JsonToString($.sqlTasks.Run)"}]
    definitions = {r["Properties"]["JobDefinitionName"]: r for r in database_template["Resources"].values()
                   if r["Type"] == "AWS::Batch::JobDefinition"}
    container = definitions["datapipe-db-pipeline-batchsql-sql-job-definition"]["Properties"]["ContainerProperties"]
    assert container["Command"] == ["datapipe", "taskrunner", "exec-task"]
    assert container["Image"] == "example.com/datapipe-sql:1"
    # Each pipeline's job role reads its own database secret; the copy's role also its S3 node's bucket.
    roles = {key: s for key, r in database_template["Resources"].items() if r["Type"] == "AWS::IAM::Policy"
             and key.startswith("SqlJobs") for s in r["Properties"]["PolicyDocument"]["Statement"]}
    texts = {key: json.dumps(statement) for key, statement in roles.items()}
    assert any("batchsql" in key and "secret:db/sales-??????" in text for key, text in texts.items())
    assert any("batchcopy" in key and "exports" in text for key, text in texts.items())
    assert not any("batchsql" in key and "s3:" in text for key, text in texts.items())


def test_a_password_reference_is_all_the_batch_job_role_may_read(database_template: dict) -> None:
    statements = [s for key, r in database_template["Resources"].items() if r["Type"] == "AWS::IAM::Policy"
                  and key.startswith("SqlJobsbatchmysql") for s in r["Properties"]["PolicyDocument"]["Statement"]]
    reads = [s for s in statements if s["Action"] in ("ssm:GetParameter", "secretsmanager:GetSecretValue")]
    assert [s["Action"] for s in reads] == ["ssm:GetParameter"]
    assert reads[0]["Resource"] == "arn:aws:ssm:eu-west-1:123456789012:parameter/shop/loader"


def test_sql_on_batch_needs_an_image_with_datapipe_sql() -> None:
    import aws_cdk as cdk

    from datapipe.errors import DatapipeError
    from datapipe.naming import Naming
    from stacks.pipeline_sql import SqlJobDefinitions

    stack = cdk.Stack(cdk.App(), "NoImage")
    with pytest.raises(DatapipeError, match=r"set 'pipelines.sqlImage' to an image with datapipe\[sql\] installed"):
        SqlJobDefinitions(stack, "SqlJobs", naming=Naming(), image="", fargate=False, plans=[batch_sql_plan()],
                          removal_policy=cdk.RemovalPolicy.DESTROY)


# -- the corpus -------------------------------------------------------------------------------------------------------

KNOWN_AT_IMPORT = "must be known at import time"
ORACLE = "OracleDatabase.connectionString: jdbc:oracle: URLs are not supported: they would need an Oracle driver " \
    "(python-oracledb)"
# Worked from each sample: what stops it as shipped (parameters without a value that fix SQL or the database), and once
# every parameter has a value and the secret ones a reference (tests/importer/corpus_values; None: it deploys). The rest
# are the samples' own faults: LoadTsvFilesInS3ToRedshift's *password names myRedshiftPassword where it declares
# *myRedshiftPassword; oracle-backup names an Oracle database. S3TsvFilesToRedshiftTablesIfReady merges
# (OVERWRITE_EXISTING) on a key it never names: as in Data Pipeline, the run reads the table's primary key.
# SQLActivityWithTimeout's plain parameter myRDSPassword holds a reference, as billing's *myRedshiftPassword does;
# billing's COPY reads a prefix of the run's time through a fixed pattern, which the run-values Lambda computes.
CORPUS_REASONS: dict[str, tuple[str, str | None]] = {
    "LoadTsvFilesInS3ToRedshift/LoadTsvFilesInS3ToRedshift.json":
        (f"Input_S3_Tsv_Files.filePath: {KNOWN_AT_IMPORT}", "RedshiftCluster.*password: refers to myRedshiftPassword, "
         "which is not a declared parameter (*myRedshiftPassword is: write #{*myRedshiftPassword})"),
    "RDStoS3/RDStoS3Pipeline.json": (f"SourceRDSTable.table: {KNOWN_AT_IMPORT}", None),
    "S3TsvFilesToRedshiftTablesIfReady/S3TsvFilesToRedshiftTablesIfReady.json":
        (f"Input_S3_Tsv_File_1.filePath: {KNOWN_AT_IMPORT}", None),
    "SQLActivityWithTimeout/pipeline.json": (f"DatabaseId_rAZmM.rdsInstanceId: {KNOWN_AT_IMPORT}", None),
    "billing/template.json": (f"S3StagingDataNode.directoryPath: {KNOWN_AT_IMPORT}", None),
    "oracle-backup/definition.json": (ORACLE, ORACLE),
}


@pytest.mark.parametrize("sample", sorted(CORPUS_REASONS))
def test_the_corpus_database_definitions_deploy_with_references_or_are_refused_each_with_its_reason(
    sample: str, tmp_path: Path
) -> None:
    from .conftest import CORPUS_DIR, import_sample, import_with_values, samples_absent

    path = CORPUS_DIR / sample
    if not path.is_file():
        samples_absent()
    as_shipped, with_values = CORPUS_REASONS[sample]
    plan = import_sample(path)
    assert not plan.deployable and plan.errors[0].startswith(as_shipped), plan.errors
    given = import_with_values(path)  # tests/importer/corpus_values: secret parameters get references
    if with_values is None:
        assert given.deployable, given.errors
    else:
        assert given.errors[0].startswith(with_values), given.errors


def test_a_copy_from_dynamodb_with_transform_and_options_keeps_the_definitions_sql() -> None:
    table = {"id": "Source", "type": "DynamoDBDataNode", "tableName": "Orders", "readThroughputPercent": "0.5"}
    load = {**LOAD, "input": {"ref": "Source"}, "insertMode": "APPEND", "commandOptions": ["TIMEFORMAT 'auto'"],
            "transformSql": "select id, amount * 2 as amount from staging"}
    orders = {k: v for k, v in ORDERS.items() if k not in ("primaryKeys", "createTableSql")}
    plan = plan_of(WAREHOUSE, table, orders, load, HOST)
    assert plan.deployable, plan.errors
    # APPEND needs no key; readThroughputPercent 0.5 is READRATIO 50; the options follow the source, in order.
    assert plan.activities[0].sql.redshift.sqls == [  # type: ignore[union-attr]
        "CREATE TEMP TABLE staging (LIKE orders)",
        "COPY staging FROM 'dynamodb://Orders' IAM_ROLE default TIMEFORMAT 'auto' READRATIO 50",
        "CREATE TEMP TABLE staging2 AS select id, amount * 2 as amount from staging",
        "INSERT INTO orders SELECT * FROM staging2",
        "DROP TABLE staging",
        "DROP TABLE staging2",
    ]


# -- a merge on the table's own key -----------------------------------------------------------------------------------


def test_a_merge_whose_key_the_definition_names_keeps_its_statements(database_template: dict) -> None:
    states = _states(database_template, "warehouse")
    assert not [name for name in states if "Key" in name or name.startswith("Write_Merge")]
    # as before the catalog key: worked from ORDERS (primaryKeys id, createTableSql) and LOAD (OVERWRITE_EXISTING)
    assert states["Submit_Load"]["Parameters"]["Sqls"] == [
        "create table IF NOT EXISTS orders (id int, amount int)",
        "CREATE TEMP TABLE staging (LIKE orders)",
        "COPY staging FROM 's3://incoming/orders.tsv' IAM_ROLE default DELIMITER '\\t'",
        "DELETE FROM orders USING staging WHERE orders.id = staging.id",
        "INSERT INTO orders SELECT * FROM staging",
        "DROP TABLE staging",
    ]


def test_a_merge_without_a_key_reads_the_tables_key_from_the_catalog_before_it_merges(database_template: dict) -> None:
    states = _states(database_template, "catalogkey")
    query = states["Submit_Key_Query_Load"]
    assert query["Resource"].endswith(":states:::aws-sdk:redshiftdata:executeStatement")
    # the schema (PUBLIC, as Redshift stores it) and the table are bound parameters, never part of the SQL text
    assert query["Parameters"]["Parameters"] == [{"Name": "schema_name", "Value": "public"},
                                                 {"Name": "table_name", "Value": "orders"}]
    assert "orders" not in query["Parameters"]["Sql"] and "pg_catalog.pg_constraint" in query["Parameters"]["Sql"]
    assert states["Statement_Ended_Key_Query_Load"]["Choices"][0]["Next"] == "Read_Key_Load"
    # 30 minutes at 10 s: 180 checks at most
    assert states["Statement_Ended_Key_Query_Load"]["Choices"][2]["NumericGreaterThanEquals"] == 180
    assert states["Read_Key_Load"]["Resource"].endswith(":states:::aws-sdk:redshiftdata:getStatementResult")
    write = states["Write_Merge_Load"]
    assert write["Parameters"] == {"mode": "OVERWRITE_EXISTING", "table": "orders", "source": "staging",
                                   "where": "Load", "result.$": "$.mergeKeys.Load.result"}
    assert "function:datapipe-db-pipeline-merge-keys" in json.dumps(write["Resource"])
    decided = states["Merge_Key_Read_Load"]
    assert decided["Choices"] == [{"Variable": "$.mergeKeys.Load.answer.refused", "IsPresent": True,
                                   "Next": "Merge_Key_Refused_Load"}]
    assert decided["Default"] == "Submit_Load"
    assert states["Merge_Key_Refused_Load"] == {"Type": "Fail", "Error": "Redshift.MergeKeyRefused",
                                                "CausePath": "$.mergeKeys.Load.answer.refused"}
    # the statements: the function's merge statement in the place of the DELETE, the rest the definition's
    assert states["Submit_Load"]["Parameters"]["Sqls.$"].startswith("States.Array(")
    items = states["Submit_Load"]["Parameters"]["Sqls.$"].removeprefix("States.Array(").removesuffix(")").split(", ")
    assert len(items) == 5 and items[2] == "$.mergeKeys.Load.answer.statement"
    assert all(item.startswith("$.const.") for item in items[:2] + items[3:])


def test_the_catalog_key_adds_the_key_query_its_result_and_the_function_to_the_policy(database_template: dict) -> None:
    by_action: dict[str, Any] = {}
    for statement in _policy(database_template, "catalogkey"):
        for action in statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]:
            by_action.setdefault(action, []).extend(_resources(statement))
    assert by_action["redshift-data:ExecuteStatement"] == ["arn:aws:redshift:eu-west-1:123456789012:cluster:sales"]
    assert by_action["redshift-data:GetStatementResult"] == ["*"]
    invoked = " ".join(by_action["lambda:InvokeFunction"])
    assert "function:datapipe-db-pipeline-merge-keys" in invoked and "function:*" not in invoked
