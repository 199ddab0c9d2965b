"""Open connections through maintained drivers: psycopg 3 (PostgreSQL and Redshift's wire protocol), PyMySQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from datapipe.databases.credentials import Credentials
from datapipe.databases.model import ConnectionTarget, DatabaseSpec
from datapipe.databases.urls import Engine
from datapipe.errors import DatapipeError

CONNECT_TIMEOUT_SECONDS = 10


@dataclass
class OpenDatabase:
    """A DB-API connection (autocommit off) and what the operations need to know about it."""

    engine: Engine
    connection: Any
    where: str  # the database object's id, for messages

    def server_cursor(self) -> Any:
        """A cursor that streams a result from the server instead of loading all of it."""
        if self.engine.speaks_postgresql:
            cursor = self.connection.cursor(name="datapipe_stream")
            cursor.itersize = 2000
            return cursor
        import pymysql.cursors

        return self.connection.cursor(pymysql.cursors.SSCursor)


def driver_message(error: BaseException) -> str:
    """The database's own message in one line (PyMySQL: `(code) text`); never a connection string or password."""
    args: tuple[object, ...] = tuple(getattr(error, "args", ()))
    text = f"({args[0]}) {args[1]}" if len(args) == 2 and isinstance(args[0], int) else str(error)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def open_target(target: ConnectionTarget, credentials: Credentials, *, where: str) -> OpenDatabase:
    try:
        if target.engine.speaks_postgresql:
            import psycopg

            connection: Any = psycopg.connect(
                host=target.host,
                port=target.port,
                dbname=target.database,
                user=credentials.username,
                password=credentials.password,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name="datapipe",
            )
        else:
            import pymysql

            connection = pymysql.connect(
                host=target.host,
                port=target.port,
                user=credentials.username,
                password=credentials.password,
                database=target.database,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                charset="utf8mb4",
                autocommit=False,
                local_infile=False,
            )
    except ImportError as error:
        raise DatapipeError(
            f"{where}: the database drivers are not installed: pip install 'datapipe[sql]' ({error.name})"
        ) from None
    except Exception as error:
        message = driver_message(error).replace(credentials.password, "***")
        raise DatapipeError(
            f"{where}: cannot connect to {target.describe()} as {credentials.username}: {message}", exit_code=1
        ) from None
    return OpenDatabase(engine=target.engine, connection=connection, where=where)


@contextmanager
def connect(spec: DatabaseSpec, credentials: Credentials) -> Iterator[OpenDatabase]:
    """An open connection to `spec`'s database, closed on exit (an uncommitted transaction is rolled back)."""
    database = open_target(spec.target(credentials), credentials, where=spec.object_id)
    try:
        yield database
    finally:
        database.connection.close()
