"""The fixtures' servers are real and reachable with the password user."""

from __future__ import annotations

import psycopg
import pymysql

from tests.databases.conftest import PASSWORD, USER, Server


def test_postgres_server_answers(postgres_server: Server) -> None:
    with psycopg.connect(
        host=postgres_server.host, port=postgres_server.port, user=USER, password=PASSWORD, dbname="postgres"
    ) as connection:
        assert connection.execute("select 40 + 2").fetchone() == (42,)


def test_mariadb_server_answers(mariadb_server: Server) -> None:
    connection = pymysql.connect(
        host=mariadb_server.host, port=mariadb_server.port, user=USER, password=PASSWORD, database="datapipe"
    )
    with connection.cursor() as cursor:
        cursor.execute("select version()")
        (version,) = cursor.fetchone()
    connection.close()
    assert "MariaDB" in version
