"""JDBC URLs, database objects and SQL scripts: hand-worked expectations; hostile input refused in one line."""

from __future__ import annotations

import pytest

from datapipe.databases.model import DatabaseSpec
from datapipe.databases.sqltext import checked_identifier, split_script
from datapipe.databases.urls import Engine, parse_jdbc_url
from datapipe.errors import DatapipeError


@pytest.mark.parametrize(
    ("url", "engine", "host", "port", "database"),
    [
        ("jdbc:postgresql://db.example.com:6543/sales?ssl=true", Engine.POSTGRESQL, "db.example.com", 6543, "sales"),
        ("jdbc:postgresql://endpoint/database?tcpKeepAlive=true", Engine.POSTGRESQL, "endpoint", 5432, "database"),
        ("jdbc:mysql://rds.example.com:3307/shop", Engine.MYSQL, "rds.example.com", 3307, "shop"),
        ("jdbc:mariadb://10.0.0.5/shop", Engine.MYSQL, "10.0.0.5", 3306, "shop"),
        (
            "jdbc:redshift://cluster.abc.eu-west-1.redshift.amazonaws.com:5439/dev",
            Engine.REDSHIFT,
            "cluster.abc.eu-west-1.redshift.amazonaws.com",
            5439,
            "dev",
        ),
        ("jdbc:redshift://cluster/", Engine.REDSHIFT, "cluster", 5439, None),
        ("jdbc:postgresql://[::1]:5433/x", Engine.POSTGRESQL, "::1", 5433, "x"),
    ],
)
def test_supported_urls(url: str, engine: Engine, host: str, port: int, database: str | None) -> None:
    endpoint = parse_jdbc_url(url, where="Db.connectionString")
    assert (endpoint.engine, endpoint.host, endpoint.port, endpoint.database) == (engine, host, port, database)


def test_url_properties() -> None:
    assert parse_jdbc_url("jdbc:mysql://h/d?useSSL=true&x=", where="w").properties == {"useSSL": "true", "x": ""}


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("jdbc:oracle:thin:@host:1521:orcl", "jdbc:oracle: URLs are not supported: they would need an Oracle driver"),
        ("jdbc:sqlserver://host:1433;databaseName=x", "would need a SQL Server driver"),
        ("jdbc:db2://host:50000/x", "would need an IBM Db2 driver"),
        ("jdbc:foo://h/x", "would need a Python driver for 'foo'"),
        ("postgresql://h/x", "is not a JDBC URL"),
        ("jdbc:postgresql:///x", "names no host"),
        ("jdbc:postgresql://" + "[" * 10_000 + "/x", "host '[[[["),
        ("jdbc:postgresql://db host/x", "host 'db host' is not a host name or an IP address"),
        ("jdbc:postgresql://" + "h" * 300 + "/x", "is not a host name or an IP address"),
        ("jdbc:postgresql://h:99999/x", "port '99999' is not a number from 1 to 65535"),
        ("jdbc:postgresql://h:abc/x", "port 'abc'"),
        ("", "is not a JDBC URL"),
    ],
)
def test_bad_urls_one_line(url: str, needle: str) -> None:
    with pytest.raises(DatapipeError) as caught:
        parse_jdbc_url(url, where="MyDb.connectionString")
    message = str(caught.value)
    assert message.startswith("MyDb.connectionString: ")
    assert needle in message
    assert "\n" not in message


def test_long_hostile_url_is_refused_quickly() -> None:
    with pytest.raises(DatapipeError, match=r"names no host|not a JDBC URL"):
        parse_jdbc_url("jdbc:postgresql:" + "/" * 200_000, where="w")


SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"


@pytest.mark.parametrize(
    ("obj", "needle"),
    [
        (
            {"id": "D", "type": "RdsDatabase", "rdsInstanceId": "x", "*password": "hunter2", "secretId": SECRET},
            "D.*password: passwords are not read from definitions",
        ),
        ({"id": "D", "type": "RdsDatabase", "rdsInstanceId": "x"}, "D.secretId: required"),
        ({"id": "D", "type": "RdsDatabase", "secretId": SECRET}, "D.rdsInstanceId: required"),
        (
            {"id": "D", "type": "JdbcDatabase", "secretId": SECRET, "jdbcDriverClass": "org.postgresql.Driver"},
            "D.connectionString: required",
        ),
        (
            {"id": "D", "type": "JdbcDatabase", "secretId": SECRET, "connectionString": "jdbc:postgresql://h/d"},
            "D.jdbcDriverClass: required",
        ),
        (
            {
                "id": "D",
                "type": "JdbcDatabase",
                "secretId": SECRET,
                "connectionString": "jdbc:postgresql://h/d",
                "jdbcDriverClass": "com.mysql.jdbc.Driver",
            },
            "D.jdbcDriverClass: com.mysql.jdbc.Driver is a mysql driver",
        ),
        (
            {
                "id": "D",
                "type": "RedshiftDatabase",
                "secretId": SECRET,
                "clusterId": "c",
                "connectionString": "jdbc:redshift://h/d",
            },
            "exactly one of clusterId, connectionString, workgroupName",
        ),
        ({"id": "D", "type": "RedshiftDatabase", "secretId": SECRET}, "(given: none)"),
        ({"id": "D", "type": "MongoDatabase", "secretId": SECRET}, "D.type: 'MongoDatabase' is not one of"),
        ({"id": "D", "type": "RdsDatabase", "secretId": 7, "rdsInstanceId": "x"}, "D.secretId: expected a non-empty"),
    ],
)
def test_bad_database_objects(obj: dict[str, object], needle: str) -> None:
    with pytest.raises(DatapipeError) as caught:
        DatabaseSpec.from_object(obj)
    assert needle in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_redshift_data_api_parameters() -> None:
    spec = DatabaseSpec.from_object(
        {"id": "R", "type": "RedshiftDatabase", "clusterId": "analytics", "databaseName": "sales", "secretId": SECRET}
    )
    assert spec.data_api_parameters() == {"ClusterIdentifier": "analytics", "Database": "sales", "SecretArn": SECRET}
    serverless = DatabaseSpec.from_object(
        {"id": "R", "type": "RedshiftDatabase", "workgroupName": "etl-wg", "secretId": "s"}  # 3 to 64 characters
    )
    assert serverless.data_api_parameters() == {"WorkgroupName": "etl-wg", "Database": "dev", "SecretArn": "s"}


def test_split_script_keeps_quoted_semicolons_and_question_marks() -> None:
    script = (
        "insert into t values ('a;b?', ?); -- a comment; with ?\n"
        "/* block; ? */ update t set x = $body$ ; ? $body$ where y = ?;;\n"
        "select \"we;ird?\" from t where z like '10%'"
    )
    statements = split_script(script, Engine.POSTGRESQL, where="A.script")
    assert [s.parameter_count for s in statements] == [1, 1, 0]
    assert statements[0].text == "insert into t values ('a;b?', %s)"
    assert statements[2].text == "select \"we;ird?\" from t where z like '10%%'"


def test_split_script_mysql_backslash_and_backticks() -> None:
    statements = split_script("insert into `a;b` values ('it\\'s; ?', ?); # c; ?\nselect 1", Engine.MYSQL, where="w")
    assert [s.parameter_count for s in statements] == [1, 0]


@pytest.mark.parametrize("script", ["select 'open", "select 1 /* open", "select $$ open", 'select "open'])
def test_unterminated_quotes_are_one_line_errors(script: str) -> None:
    with pytest.raises(DatapipeError, match=r"^A\.script: unterminated"):
        split_script(script, Engine.POSTGRESQL, where="A.script")


def test_split_script_is_linear() -> None:
    script = "select 1;" * 200_000 + "'" + "x" * 1_000_000 + "'"
    assert len(split_script(script, Engine.POSTGRESQL, where="w")) == 200_001


@pytest.mark.parametrize("name", ["orders", "public.orders", "_t$1"])
def test_identifiers(name: str) -> None:
    assert checked_identifier(name, where="N.tableName") == name


@pytest.mark.parametrize("name", ["", "a.b.c", "x; drop table y", '"q"', "1abc"])
def test_identifiers_refused(name: str) -> None:
    with pytest.raises(DatapipeError, match=r"^N\.tableName: .* is not a plain table or column name"):
        checked_identifier(name, where="N.tableName")
