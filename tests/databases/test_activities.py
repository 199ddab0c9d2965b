"""SqlActivity and CopyActivity from definition objects, as Data Pipeline's RDS templates use them, on real servers."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from datapipe.databases.activities import run_copy_activity, run_sql_activity
from datapipe.errors import DatapipeError
from tests.databases.conftest import Server


def database_object(server: Server, aws: dict[str, Any]) -> dict[str, object]:
    """A JdbcDatabase whose secret holds only username and password (the host comes from connectionString)."""
    secret = {key: value for key, value in server.secret().items() if key in ("username", "password")}
    arn = aws["secrets"].create_secret(Name="rds/copy", SecretString=json.dumps(secret))["ARN"]
    scheme, driver = (
        ("postgresql", "org.postgresql.Driver") if server.engine == "postgres" else ("mysql", "com.mysql.jdbc.Driver")
    )
    return {
        "id": "MyDatabase",
        "type": "JdbcDatabase",
        "connectionString": f"jdbc:{scheme}://{server.host}:{server.port}/{server.dbname}",
        "jdbcDriverClass": driver,
        "secretId": arn,
    }


def test_load_s3_into_a_table_then_copy_it_back(server: Server, aws: dict[str, Any]) -> None:
    """ "Load S3 Data into RDS MySQL Table" then "Full Copy of RDS MySQL Table to S3", by their objects."""
    database = database_object(server, aws)
    run_sql_activity(
        {"id": "Reset", "type": "SqlActivity", "script": "drop table if exists visits"},
        database,
        secrets=aws["secrets"],
        s3=aws["s3"],
    )
    aws["s3"].put_object(Bucket="data", Key="incoming/visits.csv", Body=b'1,"Ann, the first"\n2,\n')
    table_node = {
        "id": "VisitsTable",
        "type": "SqlDataNode",
        "table": "visits",
        "createTableSql": "create table visits (id int primary key, visitor varchar(50))",
        "insertQuery": "insert into visits (id, visitor) values (?, ?)",
        "selectQuery": "select id, visitor from visits order by id",
    }
    s3_input = {"id": "Incoming", "type": "S3DataNode", "filePath": "s3://data/incoming/visits.csv"}
    copied = run_copy_activity(
        {"id": "Load", "type": "CopyActivity"}, s3_input, table_node, database, secrets=aws["secrets"], s3=aws["s3"]
    )
    assert copied == 2
    counts = run_sql_activity(
        {
            "id": "Tag",
            "type": "SqlActivity",
            "script": "update visits set visitor = ? where id = ?",
            "scriptArgument": ["Bob", "2"],
        },
        database,
        secrets=aws["secrets"],
        s3=aws["s3"],
    )
    assert counts == [1]
    s3_output = {"id": "Export", "type": "S3DataNode", "directoryPath": "s3://data/export/2026-11-30"}
    assert (
        run_copy_activity(
            {"id": "Unload", "type": "CopyActivity"},
            table_node,
            s3_output,
            database,
            secrets=aws["secrets"],
            s3=aws["s3"],
        )
        == 2
    )
    body = aws["s3"].get_object(Bucket="data", Key="export/2026-11-30/Unload.csv")["Body"].read()
    assert body == b'1,"Ann, the first"\n2,Bob\n'


def test_script_uri_and_tsv(postgres_server: Server, aws: dict[str, Any]) -> None:
    database = database_object(postgres_server, aws)
    aws["s3"].put_object(
        Bucket="data",
        Key="scripts/setup.sql",
        Body=b"drop table if exists tabs; create table tabs (a text, b text); -- done\n",
    )
    run_sql_activity(
        {"id": "Setup", "scriptUri": "s3://data/scripts/setup.sql"}, database, secrets=aws["secrets"], s3=aws["s3"]
    )
    aws["s3"].put_object(Bucket="data", Key="tabs/one.tsv", Body=b"x,1\ty\n")
    node = {
        "id": "Tabs",
        "type": "SqlDataNode",
        "table": "tabs",
        "schemaName": "public",
        "insertQuery": "insert into tabs values (?, ?)",
    }
    assert (
        run_copy_activity(
            {"id": "C"},
            {"id": "In", "type": "S3DataNode", "directoryPath": "s3://data/tabs"},
            node,
            database,
            secrets=aws["secrets"],
            s3=aws["s3"],
            data_format="TSV",
        )
        == 1
    )


@pytest.mark.parametrize(
    ("activity", "input_node", "output_node", "needle"),
    [
        (
            {"id": "A", "script": "select 1", "scriptUri": "s3://data/x.sql"},
            None,
            None,
            "A.script: give exactly one of script and scriptUri",
        ),
        ({"id": "A", "scriptUri": "s3://data/missing.sql"}, None, None, "A.scriptUri: s3://data/missing.sql does not"),
        ({"id": "A", "script": "select ?", "scriptArgument": [1]}, None, None, "A.scriptArgument: expected a string"),
        (
            {"id": "C"},
            {"id": "I", "type": "S3DataNode", "filePath": "s3://data/a.csv"},
            {"id": "T", "type": "SqlDataNode", "table": "t"},
            "T.insertQuery: required",
        ),
        (
            {"id": "C"},
            {"id": "I", "type": "S3DataNode", "filePath": "s3://data/a.csv"},
            {"id": "O", "type": "S3DataNode", "filePath": "s3://data/b.csv"},
            "C.input: a SQL CopyActivity copies between",
        ),
        (
            {"id": "C"},
            {"id": "T", "type": "SqlDataNode", "table": "t; drop table x"},
            {"id": "O", "type": "S3DataNode", "filePath": "s3://data/b.csv"},
            "T.table: ",
        ),
        (
            {"id": "C"},
            {"id": "T", "type": "SqlDataNode", "table": "t"},
            {"id": "O", "type": "S3DataNode", "filePath": "s3://data/b", "directoryPath": "s3://data/c"},
            "O.filePath: give exactly one",
        ),
    ],
)
def test_bad_activities(
    postgres_server: Server,
    aws: dict[str, Any],
    activity: dict[str, object],
    input_node: dict[str, object] | None,
    output_node: dict[str, object] | None,
    needle: str,
) -> None:
    database = database_object(postgres_server, aws)
    with pytest.raises(DatapipeError) as caught:
        if input_node is None or output_node is None:
            run_sql_activity(activity, database, secrets=aws["secrets"], s3=aws["s3"])
        else:
            run_copy_activity(activity, input_node, output_node, database, secrets=aws["secrets"], s3=aws["s3"])
    assert needle in str(caught.value)
    assert "\n" not in str(caught.value)


def test_gzip_both_ways(postgres_server: Server, aws: dict[str, Any]) -> None:
    database = database_object(postgres_server, aws)
    run_sql_activity(
        {"id": "Setup", "script": "drop table if exists zipped; create table zipped (id int, v text)"},
        database,
        secrets=aws["secrets"],
        s3=aws["s3"],
    )
    aws["s3"].put_object(Bucket="data", Key="in.csv.gz", Body=gzip.compress(b"1,one\n") + gzip.compress(b"2,two\n"))
    node = {
        "id": "Zipped",
        "type": "SqlDataNode",
        "table": "zipped",
        "insertQuery": "insert into zipped values (?, ?)",
        "selectQuery": "select id, v from zipped order by id",
    }
    gz_in = {"id": "In", "type": "S3DataNode", "filePath": "s3://data/in.csv.gz", "compression": "gzip"}
    assert run_copy_activity({"id": "Load"}, gz_in, node, database, secrets=aws["secrets"], s3=aws["s3"]) == 2
    gz_out = {"id": "Out", "type": "S3DataNode", "directoryPath": "s3://data/out/", "compression": "GZIP"}
    assert run_copy_activity({"id": "Unload"}, node, gz_out, database, secrets=aws["secrets"], s3=aws["s3"]) == 2
    body = aws["s3"].get_object(Bucket="data", Key="out/Unload.csv.gz")["Body"].read()
    assert gzip.decompress(body) == b"1,one\n2,two\n"
    aws["s3"].put_object(Bucket="data", Key="cut.csv.gz", Body=gzip.compress(b"3,three\n" * 1000)[:-12])
    cut = {**gz_in, "filePath": "s3://data/cut.csv.gz"}
    with pytest.raises(DatapipeError, match=r"^Zipped\.input s3://data/cut\.csv\.gz: the gzip data is truncated$"):
        run_copy_activity({"id": "Load"}, cut, node, database, secrets=aws["secrets"], s3=aws["s3"])
    plain = {**gz_in, "filePath": "s3://data/in.csv.gz", "compression": "none"}
    with pytest.raises(DatapipeError, match=r"not UTF-8|not valid CSV|fields"):
        run_copy_activity({"id": "Load"}, plain, node, database, secrets=aws["secrets"], s3=aws["s3"])
