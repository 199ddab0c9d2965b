"""The task input contract: what producers send, and the one-line errors for what they get wrong."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from datapipe.taskrunner.contract import DatabaseTask, InvalidTask, S3Location, ShellTask, parse_task
from tests.taskrunner.conftest import shell_task


def parse(payload: dict[str, Any]) -> ShellTask:
    return ShellTask.from_input(json.dumps(payload))


def test_the_sample_pipelines_input_parses_and_lays_out_attempt_one() -> None:
    task = parse(shell_task("mkdir new-directory"))
    assert task.command == "mkdir new-directory"
    assert task.attempt == 1  # RetryCount 0 is Data Pipeline's Attempt=1
    assert task.attempt_path == "datapipe-dev-create-directory/CreateDirectory/run-1/Attempt=1"


def test_importer_style_input_with_pipeline_id_script_uri_and_staging() -> None:
    payload = shell_task(
        None,
        workflow=None,
        pipelineId="df-0123",
        scriptUri="s3://scripts-bucket/jobs/run.sh",
        scriptArgument=["a", 2],
        stage=True,
        input=["s3://data-bucket/in/"],
        output=["s3://data-bucket/out"],
        attempt=2,
    )
    del payload["workflow"]
    task = parse(payload)
    assert task.workflow == "df-0123"
    assert task.script_uri == S3Location("scripts-bucket", "jobs/run.sh")
    assert task.script_arguments == ("a", "2")
    assert task.inputs == (S3Location("data-bucket", "in/"),)
    assert task.outputs[0].as_prefix == "out/"
    assert task.attempt_path.endswith("/Attempt=3")


def test_names_from_the_input_cannot_escape_the_log_folder() -> None:
    task = parse(shell_task(workflow="../../etc", execution="a/b"))
    assert ".." not in task.attempt_path.split("/")
    assert task.attempt_path.startswith(".._.._etc/CreateDirectory/a_b/")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            shell_task(type="CopyActivity"),
            "field 'type' must be one of ShellCommandActivity, ShellCommandPrecondition, got 'CopyActivity'",
        ),
        (shell_task(None), "exactly one of the fields 'command' and 'scriptUri'"),
        (shell_task("ls", scriptUri="s3://bucket-a/x.sh"), "exactly one of the fields 'command' and 'scriptUri'"),
        (shell_task(" "), "field 'command' must be a non-empty string"),
        (shell_task(scriptArgument={"a": 1}), "field 'scriptArgument' must be a list of strings"),
        (shell_task(stage="yes"), "field 'stage' must be true or false"),
        (shell_task(attempt=-1), "field 'attempt' must be a whole number from 0"),
        (shell_task(heartbeatSeconds=0), "field 'heartbeatSeconds' must be a whole number from 1"),
        (shell_task(input=["/local/dir"]), "field 'input[0]' must be an s3://bucket/key URI"),
        (shell_task(execution=""), "field 'execution' must be a non-empty string"),
        (shell_task(workflow=None), "field 'workflow' (or 'pipelineId') must be a non-empty string"),
    ],
)
def test_a_bad_field_is_named(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTask, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        parse(payload)


def test_input_that_is_not_a_json_object_is_rejected() -> None:
    with pytest.raises(InvalidTask, match="not JSON"):
        ShellTask.from_input("mkdir x")
    with pytest.raises(InvalidTask, match="must be a JSON object"):
        ShellTask.from_input("[1]")


def test_environment_and_secrets_fields_parse_name_by_name() -> None:
    task = parse(
        shell_task(
            environment={"DIRECTORY": "new-directory", "COUNT": 3},
            secrets={
                "DB_PASSWORD": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf",
                "TOKEN": "ssm:/t",
            },
        )
    )
    assert task.environment == (("DIRECTORY", "new-directory"), ("COUNT", "3"))
    assert task.secrets == (
        ("DB_PASSWORD", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"),
        ("TOKEN", "ssm:/t"),
    )
    assert parse(shell_task()).environment == () and parse(shell_task()).secrets == ()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (shell_task(environment=["A=1"]), "field 'environment' must be an object of NAME: value"),
        (shell_task(environment={"1ABC": "x"}), "field 'environment': '1ABC' is not a shell variable name"),
        (shell_task(environment={"A B": "x"}), "field 'environment': 'A B' is not a shell variable name"),
        (shell_task(environment={"A": {"b": 1}}), "field 'environment.A' must be a string or a number"),
        (shell_task(environment={"A": True}), "field 'environment.A' must be a string or a number"),
        (shell_task(environment={"A": "x\0y"}), "field 'environment.A' holds a NUL character"),
        (
            shell_task(environment={"AWS_ACCESS_KEY_ID": "x"}),
            "field 'environment.AWS_ACCESS_KEY_ID': AWS_ACCESS_KEY_ID is",
        ),
        (
            shell_task(environment={"DATAPIPE_ATTEMPT": "9"}),
            "field 'environment.DATAPIPE_ATTEMPT': DATAPIPE_ATTEMPT is",
        ),
        (shell_task(environment={"OUTPUT1_STAGING_DIR": "/"}), "field 'environment.OUTPUT1_STAGING_DIR': OUTPUT1_STAG"),
        (shell_task(environment={"BASH_ENV": "/tmp/x"}), "field 'environment.BASH_ENV': BASH_ENV is reserved"),
        (shell_task(environment={"LD_PRELOAD": "/tmp/x.so"}), "field 'environment.LD_PRELOAD': LD_PRELOAD is reserved"),
        (shell_task(secrets={"AWS_SECRET_ACCESS_KEY": "s"}), "field 'secrets.AWS_SECRET_ACCESS_KEY': AWS_SECRET_ACC"),
        (shell_task(secrets={"TOKEN": ""}), "field 'secrets.TOKEN' must be a Secrets Manager secret ARN or name"),
        (shell_task(secrets={"TOKEN": "ssm:"}), "field 'secrets.TOKEN' must be a Secrets Manager secret ARN or name"),
        (shell_task(secrets={"TOKEN": 5}), "field 'secrets.TOKEN' must be a Secrets Manager secret ARN or name"),
        (shell_task(environment={"T": "1"}, secrets={"T": "s"}), "field 'secrets.T': T is also in field 'environment'"),
    ],
)
def test_a_bad_environment_or_secret_is_named(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTask, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        parse(payload)


def test_many_variables_parse_in_linear_time() -> None:
    payload = shell_task(environment={f"V{i}": str(i) for i in range(10_000)})  # near the 256 KiB of an input
    started = time.monotonic()
    assert len(parse(payload).environment) == 10_000
    assert time.monotonic() - started < 2


# ---------------------------------------------------------------------------------------------------------------------
# SqlActivity, CopyActivity and ShellCommandPrecondition tasks

DATABASE = {
    "id": "SalesDb",
    "type": "JdbcDatabase",
    "connectionString": "jdbc:postgresql://db.example.com:5432/sales",
    "jdbcDriverClass": "org.postgresql.Driver",
    "secretId": "db/creds",
}


def sql_task(**fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "SqlActivity",
        "workflow": "datapipe-dev-sales",
        "execution": "run-1",
        "activityId": "LoadSales",
        "attempt": 0,
        "activity": {
            "id": "LoadSales",
            "type": "SqlActivity",
            "script": "INSERT INTO t VALUES (?)",
            "scriptArgument": "a",
        },
        "database": DATABASE,
    }
    payload.update(fields)
    return payload


def copy_task(**fields: Any) -> dict[str, Any]:
    payload = sql_task(
        type="CopyActivity",
        activity={"id": "Export", "type": "CopyActivity"},
        input={"id": "Orders", "type": "SqlDataNode", "table": "orders"},
        output={"id": "Out", "type": "S3DataNode", "directoryPath": "s3://bucket-a/out/"},
    )
    payload.update(fields)
    return payload


def test_each_task_type_parses_to_its_kind() -> None:
    sql = parse_task(json.dumps(sql_task()))
    assert isinstance(sql, DatabaseTask) and sql.kind == "SqlActivity"
    assert sql.attempt_path == "datapipe-dev-sales/LoadSales/run-1/Attempt=1"
    copy = parse_task(json.dumps(copy_task(dataFormat="TSV")))
    assert isinstance(copy, DatabaseTask) and (copy.kind, copy.data_format) == ("CopyActivity", "TSV")
    assert copy.input is not None and copy.input["table"] == "orders"
    precondition = parse_task(json.dumps(shell_task("test -e x", type="ShellCommandPrecondition")))
    assert isinstance(precondition, ShellTask) and precondition.precondition
    assert not parse(shell_task()).precondition


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (sql_task(type="HiveActivity"), "field 'type' must be one of ShellCommandActivity, ShellCommandPrecondition, "),
        (sql_task(activity=None), "field 'activity' must be the definition's object (a JSON object), got None"),
        (sql_task(activity=["LoadSales"]), "field 'activity' must be the definition's object"),
        (sql_task(activity={"type": "SqlActivity", "script": "x"}), "field 'activity.id' must be a non-empty string"),
        (sql_task(activity={"id": "A", "type": "CopyActivity"}), "field 'activity.type' must be one of SqlActivity"),
        (sql_task(activity={"id": "A", "type": "SqlActivity"}), "field 'activity': A.script: give exactly one of"),
        (
            sql_task(activity={"id": "A", "type": "SqlActivity", "script": 5}),
            "field 'activity': A.script: expected a non-empty string",
        ),
        (
            sql_task(activity={"id": "A", "type": "SqlActivity", "script": "x", "scriptArgument": [{"a": 1}]}),
            "field 'activity': A.scriptArgument: expected a string or a list of strings",
        ),
        (sql_task(database={"id": "Db", "type": "MongoDatabase"}), "field 'database.type' must be one of RdsDatabase"),
        (
            sql_task(database={**DATABASE, "secretId": None}),
            "field 'database': SalesDb.secretId: required: the ARN or name of a Secrets Manager secret",
        ),
        (
            sql_task(database={**DATABASE, "*password": "hunter2"}),
            "field 'database': SalesDb.*password: passwords are not read from definitions",
        ),
        (
            sql_task(database={**DATABASE, "connectionString": "jdbc:oracle:thin:@h:1521:x"}),
            "field 'database': SalesDb.connectionString: jdbc:oracle: URLs are not supported",
        ),
        (sql_task(input={"id": "X", "type": "S3DataNode"}), "field 'input' is for CopyActivity tasks, not SqlActivity"),
        (sql_task(environment={"DAY": "2026-11-30"}), "field 'environment': a SqlActivity task runs no command"),
        (sql_task(secrets={"TOKEN": "t"}), "field 'secrets': a SqlActivity task runs no command"),
        (copy_task(dataFormat="JSON"), "field 'dataFormat' must be one of CSV, TSV, got 'JSON'"),
        (copy_task(input=None), "field 'input' must be the definition's object"),
        (
            copy_task(output={"id": "Out2", "type": "SqlDataNode", "table": "t"}),
            "fields 'input' and 'output': a CopyActivity task copies between a SQL data node and an S3DataNode, "
            "got SqlDataNode -> SqlDataNode",
        ),
        (
            copy_task(input={"id": "Orders", "type": "SqlDataNode", "table": "orders; DROP TABLE x"}),
            "field 'input': Orders.table:",
        ),
        (
            copy_task(output={"id": "Out", "type": "S3DataNode", "directoryPath": "/local/out"}),
            "field 'output': Out.directoryPath:",
        ),
    ],
)
def test_a_bad_database_task_field_is_named(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTask) as raised:
        parse_task(json.dumps(payload))
    assert str(raised.value).startswith(message), str(raised.value)
    assert "\n" not in str(raised.value)


def test_hostile_task_inputs_get_one_short_line() -> None:
    with pytest.raises(InvalidTask, match=r"^task input nests arrays or objects too deeply to be read$"):
        parse_task('{"type": "SqlActivity", "activity": ' + "[" * 100_000)
    huge = json.dumps(sql_task(activity={"id": "A", "type": "SqlActivity", "script": "SELECT 1;" * 40_000}))
    started = time.monotonic()
    with pytest.raises(InvalidTask, match=r"^task input is 360\d{3} characters, over the 262144 a task may have$"):
        parse_task(huge)
    assert time.monotonic() - started < 0.5
    with pytest.raises(InvalidTask) as raised:
        parse_task(json.dumps(sql_task(type="x" * 100_000)))
    assert len(str(raised.value)) < 300
    with pytest.raises(InvalidTask) as raised:
        parse_task(json.dumps(sql_task(activity={"id": "i" * 5000, "type": "SqlActivity", "script": "x"})))
    assert str(raised.value).startswith("field 'activity.id' must be a non-empty string of at most 1024 characters")
    assert len(str(raised.value)) < 300
    for payload in (
        copy_task(
            output={"id": "Out", "type": "S3DataNode", "directoryPath": "s3://b-1/o/", "compression": "z" * 99_000}
        ),
        sql_task(database={**DATABASE, "secretId": "s" * 99_000}),
        sql_task(database={**DATABASE, "connectionString": "jdbc:postgresql://" + "[" * 99_000}),
    ):
        with pytest.raises(InvalidTask) as raised:
            parse_task(json.dumps(payload))
        assert len(str(raised.value)) < 300, str(raised.value)[:300]
