"""SqlActivity and CopyActivity against real PostgreSQL and MariaDB servers, with S3 and Secrets Manager from moto."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import botocore.exceptions
import pytest

from datapipe.databases.connections import OpenDatabase, connect
from datapipe.databases.credentials import read_credentials, read_database_credentials
from datapipe.databases.model import DatabaseSpec
from datapipe.databases.operations import S3Location, copy_query_to_s3, copy_s3_to_table, run_script
from datapipe.errors import DatapipeError
from tests.databases.conftest import PASSWORD, Server, free_port


@contextmanager
def opened(server: Server, aws: dict[str, Any], **secret_overrides: object) -> Iterator[OpenDatabase]:
    """The server as an RdsDatabase whose secret has the RDS shape (engine, host, port, dbname)."""
    aws["secrets"].create_secret(Name="db", SecretString=json.dumps(server.secret(**secret_overrides)))
    spec = DatabaseSpec.from_object({"id": "MyDb", "type": "RdsDatabase", "rdsInstanceId": "db1", "secretId": "db"})
    credentials = read_database_credentials(spec, secrets=aws["secrets"])
    with connect(spec, credentials) as database:
        yield database


def fresh_table(database: OpenDatabase, name: str, columns: str) -> None:
    run_script(database, f"drop table if exists {name}; create table {name} ({columns})", where="Setup")


def rows_of(database: OpenDatabase, query: str) -> list[tuple[Any, ...]]:
    with database.connection.cursor() as cursor:
        cursor.execute(query)
        rows = [tuple(row) for row in cursor.fetchall()]
    database.connection.commit()
    return rows


def test_script_arguments_are_values_not_sql(server: Server, aws: dict[str, Any]) -> None:
    with opened(server, aws) as database:
        fresh_table(database, "people", "name varchar(200), note varchar(200)")
        hostile = "x'); drop table people; --"
        counts = run_script(
            database,
            "insert into people values (?, 'a;b?'); insert into people values (?, ?);\n"
            "update people set note = ? where name = ?",
            [hostile, "bob", None, "changed", "bob"],
            where="MyActivity",
        )
        assert counts == [1, 1, 1]
        assert sorted(rows_of(database, "select name, note from people"), key=str) == sorted(
            [(hostile, "a;b?"), ("bob", "changed")], key=str
        )


def test_script_error_is_one_line_and_rolls_back(server: Server, aws: dict[str, Any]) -> None:
    with opened(server, aws) as database:
        fresh_table(database, "ledger", "id int primary key")
        with pytest.raises(DatapipeError) as caught:
            run_script(database, "insert into ledger values (1); insert into ledger values (1)", where="MyActivity")
        message = str(caught.value)
        assert message.startswith("MyActivity.script: statement 2 failed: ")
        assert "duplicate" in message.lower() and "\n" not in message
        assert rows_of(database, "select count(*) from ledger") == [(0,)]  # the first insert went too


def test_argument_count_mismatch_names_script_argument(server: Server, aws: dict[str, Any]) -> None:
    with opened(server, aws) as database, pytest.raises(DatapipeError, match=r"^A\.scriptArgument: the script has 2"):
        run_script(database, "select ?, ?", ["1"], where="A")


def test_wrong_password_is_one_line_without_password(server: Server, aws: dict[str, Any]) -> None:
    with pytest.raises(DatapipeError) as caught, opened(server, aws, password="not-" + PASSWORD):
        pass
    message = str(caught.value)
    assert message.startswith(f"MyDb: cannot connect to {'postgresql' if server.engine == 'postgres' else 'mysql'}://")
    assert PASSWORD not in message and "not-" not in message and "\n" not in message


@pytest.mark.parametrize(
    ("secret", "needle"),
    [
        ({"password": "p"}, "has no 'username'"),
        ({"username": "u"}, "has no 'password'"),
        ({"username": "u", "password": "p", "port": "http"}, "'port' that is not a number"),
        ("not json {", "is not a JSON object"),
        ([1, 2], "is not a JSON object"),
    ],
)
def test_bad_secrets(aws: dict[str, Any], secret: object, needle: str) -> None:
    text = secret if isinstance(secret, str) else json.dumps(secret)
    aws["secrets"].create_secret(Name="bad", SecretString=text)
    with pytest.raises(DatapipeError) as caught:
        read_credentials("bad", secrets=aws["secrets"], where="MyDb")
    assert str(caught.value).startswith("MyDb: secret 'bad' ")
    assert needle in str(caught.value)
    assert '"p"' not in str(caught.value)


def test_missing_secret(aws: dict[str, Any]) -> None:
    with pytest.raises(DatapipeError, match=r"^MyDb: secret 'nope' does not exist in Secrets Manager$"):
        read_credentials("nope", secrets=aws["secrets"], where="MyDb")


def test_secret_repr_hides_password(aws: dict[str, Any]) -> None:
    aws["secrets"].create_secret(Name="s", SecretString=json.dumps({"username": "u", "password": "hunter2"}))
    assert "hunter2" not in repr(read_credentials("s", secrets=aws["secrets"], where="w"))


def test_rds_secret_without_engine(aws: dict[str, Any], postgres_server: Server) -> None:
    with pytest.raises(DatapipeError, match="must give 'engine'"), opened(postgres_server, aws, engine=None):
        pass


AWKWARD = [
    (1, "plain", "x"),
    (2, None, "null then empty"),
    (3, "", "empty string"),
    (4, 'quote " and, comma', "line\nbreak\r\nand crlf"),
    (5, "unicode é ✓ 😀", "  spaces  "),
    (6, "x" * 100_000, "huge"),
]


def test_sql_to_s3_to_sql_round_trip(server: Server, aws: dict[str, Any]) -> None:
    """NULL and '' stay apart; quotes, delimiters, line breaks, unicode and a 100 kB value survive both ways."""
    with opened(server, aws) as database:
        text_type = "text" if server.engine == "postgres" else "mediumtext"  # MySQL's text holds 64 kB
        fresh_table(database, "source", f"id int, a {text_type}, b {text_type}")
        fresh_table(database, "target", f"id int, a {text_type}, b {text_type}")
        run_script(
            database,
            "insert into source values " + ", ".join(["(?, ?, ?)"] * len(AWKWARD)),
            [None if value is None else str(value) for row in AWKWARD for value in row],
            where="Setup",
        )
        place = S3Location("data", "out/rows.csv")
        assert copy_query_to_s3(
            database, "select id, a, b from source order by id", s3=aws["s3"], destination=place, where="Copy"
        ) == len(AWKWARD)
        text = aws["s3"].get_object(Bucket="data", Key="out/rows.csv")["Body"].read().decode()
        assert text.startswith('1,plain,x\n2,,null then empty\n3,"",empty string\n4,"quote "" and, comma","line\nbreak')
        assert copy_s3_to_table(
            database, "insert into target (id, a, b) values (?, ?, ?)", s3=aws["s3"], source=place, where="Copy"
        ) == len(AWKWARD)
        assert rows_of(database, "select id, a, b from target order by id") == [
            (row[0], row[1], row[2]) for row in AWKWARD
        ]


def test_empty_result_writes_an_empty_object(server: Server, aws: dict[str, Any]) -> None:
    with opened(server, aws) as database:
        fresh_table(database, "nothing", "id int")
        assert (
            copy_query_to_s3(
                database,
                "select id from nothing",
                s3=aws["s3"],
                destination=S3Location("data", "empty.csv"),
                where="Copy",
            )
            == 0
        )
        assert aws["s3"].get_object(Bucket="data", Key="empty.csv")["Body"].read() == b""


def test_bad_record_loads_nothing_and_names_the_record(server: Server, aws: dict[str, Any]) -> None:
    aws["s3"].put_object(Bucket="data", Key="in.csv", Body=b"1,a\n2,b\n3\n4,d\n")
    with opened(server, aws) as database:
        fresh_table(database, "t2", "id int, a text")
        with pytest.raises(DatapipeError, match=r"^Copy.input s3://data/in.csv: record 3 has 1 fields but insertQuery"):
            copy_s3_to_table(
                database,
                "insert into t2 values (?, ?)",
                s3=aws["s3"],
                source=S3Location("data", "in.csv"),
                where="Copy",
            )
        assert rows_of(database, "select count(*) from t2") == [(0,)]


def test_database_rejection_of_a_value_is_one_line(server: Server, aws: dict[str, Any]) -> None:
    aws["s3"].put_object(Bucket="data", Key="in.csv", Body=b"1\nnot-a-number\n")
    with opened(server, aws) as database:
        fresh_table(database, "t3", "id int")
        if server.engine == "mariadb":
            run_script(database, "set session sql_mode = 'STRICT_ALL_TABLES'", where="Setup")
        with pytest.raises(DatapipeError) as caught:
            copy_s3_to_table(
                database, "insert into t3 values (?)", s3=aws["s3"], source=S3Location("data", "in.csv"), where="Copy"
            )
        assert str(caught.value).startswith("Copy.insertQuery: records 1-2 failed: ")
        assert "\n" not in str(caught.value)


def test_directory_source_loads_every_object(postgres_server: Server, aws: dict[str, Any]) -> None:
    for number in range(3):
        aws["s3"].put_object(Bucket="data", Key=f"dir/part-{number}.csv", Body=f"{number}\n".encode())
    with opened(postgres_server, aws) as database:
        fresh_table(database, "t4", "id int")
        assert (
            copy_s3_to_table(
                database, "insert into t4 values (?)", s3=aws["s3"], source=S3Location("data", "dir/"), where="Copy"
            )
            == 3
        )


def test_select_query_error_aborts_upload(server: Server, aws: dict[str, Any]) -> None:
    with opened(server, aws) as database:
        with pytest.raises(DatapipeError, match=r"^Copy\.selectQuery: "):
            copy_query_to_s3(
                database,
                "select * from no_such_table",
                s3=aws["s3"],
                destination=S3Location("data", "x.csv"),
                where="Copy",
            )
        assert "Contents" not in aws["s3"].list_objects_v2(Bucket="data")


ROWS = 100_000


@pytest.fixture(scope="module")
def s3_in_another_process() -> Iterator[Any]:
    """moto's server as a child process, so that this process's heap holds only what the copy itself keeps."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="eu-west-1")
    deadline = time.monotonic() + 30
    while True:
        try:
            s3.create_bucket(Bucket="big", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
            break
        except botocore.exceptions.EndpointConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("moto's server did not start", pytrace=False)
            time.sleep(0.2)
    yield s3
    process.terminate()
    process.wait(timeout=20)


def test_hundred_thousand_rows_with_bounded_memory(
    server: Server, aws: dict[str, Any], s3_in_another_process: Any
) -> None:
    """100,000 rows of ~110 bytes (11 MB of CSV) go to S3 in 5 MiB parts and back; the heap stays far below that."""
    with opened(server, aws) as database:
        fresh_table(database, "big", "id int, payload varchar(120)")
        fresh_table(database, "big_copy", "id int, payload varchar(120)")
        generate = (
            "insert into big select g, repeat('x', 100) || g from generate_series(1, 100000) g"
            if server.engine == "postgres"
            else "insert into big select seq, concat(repeat('x', 100), seq) from seq_1_to_100000"
        )
        run_script(database, generate, where="Setup")
        place = S3Location("big", "big.csv")
        s3 = s3_in_another_process
        tracemalloc.start()
        try:
            assert (
                copy_query_to_s3(
                    database,
                    "select id, payload from big",
                    s3=s3,
                    destination=place,
                    part_bytes=5 * 1024 * 1024,
                    where="Copy",
                )
                == ROWS
            )
            _, peak_out = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            assert (
                copy_s3_to_table(database, "insert into big_copy values (?, ?)", s3=s3, source=place, where="Copy")
                == ROWS
            )
            _, peak_in = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        size = s3.head_object(Bucket="big", Key="big.csv")["ContentLength"]
        assert size > 11_000_000
        print(f"{server.engine}: {size} bytes of CSV, peak Python heap out {peak_out} in {peak_in}")
        assert s3.list_multipart_uploads(Bucket="big").get("Uploads", []) == []
        # one 5 MiB part (kept once by us, once by botocore while sending) out; a read chunk and a batch in
        assert peak_out < 16 * 1024 * 1024
        assert peak_in < 4 * 1024 * 1024
        assert rows_of(database, "select count(*), sum(id) from big_copy") == [(ROWS, ROWS * (ROWS + 1) // 2)]
