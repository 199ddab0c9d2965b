"""The runner's own log: hourly files, gzipped once they are old, copied to S3 every hour and on shutdown.

Like Data Pipeline's Task Runner: `<output>/logs/TaskRunner.log.YYYY-MM-DD-HH` (UTC), compressed with gzip when
older than eight hours, and backed up to the log URI. Task attempt logs (stdout/stderr) are uploaded by the runner
as soon as the attempt ends; this module only handles the runner's own log.
"""

from __future__ import annotations

import datetime as dt
import gzip
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datapipe.taskrunner.contract import S3Location

LOG_FILE_PREFIX = "TaskRunner.log."
_LOG_FILE = re.compile(r"^TaskRunner\.log\.(\d{4}-\d\d-\d\d-\d\d)(\.gz)?$")
_HOUR_FORMAT = "%Y-%m-%d-%H"

Clock = Callable[[], float]


def log_file_name(timestamp: float) -> str:
    return LOG_FILE_PREFIX + dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime(_HOUR_FORMAT)


def _hour_start(name: str) -> float | None:
    match = _LOG_FILE.match(name)
    if match is None:
        return None
    return dt.datetime.strptime(match[1], _HOUR_FORMAT).replace(tzinfo=dt.UTC).timestamp()


class HourlyFileHandler(logging.Handler):
    """A logging handler that writes to the file of the current UTC hour, opening a new file when the hour turns."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        self._name: str | None = None
        self._stream: Any = None
        directory.mkdir(parents=True, exist_ok=True)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            name = log_file_name(record.created)
            self.acquire()
            try:
                if name != self._name:
                    self._close_stream()
                    self._stream = (self.directory / name).open("a", encoding="utf-8")
                    self._name = name
                self._stream.write(message + "\n")
                self._stream.flush()
            finally:
                self.release()
        except Exception:
            self.handleError(record)

    def _close_stream(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def close(self) -> None:
        self.acquire()
        try:
            self._close_stream()
        finally:
            self.release()
        super().close()


class LogShipper:
    """Compresses old hourly files and uploads changed ones under `destination`; `run` repeats that every hour."""

    def __init__(
        self,
        *,
        directory: Path,
        s3: Any,
        destination: S3Location | None,
        logger: logging.Logger,
        compress_after_hours: float = 8,
        interval_seconds: float = 3600,
        clock: Clock = time.time,
    ) -> None:
        self.directory = directory
        self._s3 = s3
        self._destination = destination
        self._logger = logger
        self._compress_after = compress_after_hours * 3600
        self._interval = interval_seconds
        self._clock = clock
        self._uploaded: dict[str, tuple[int, int]] = {}  # file name -> (size, mtime_ns) when last uploaded
        self._lock = threading.Lock()

    def compress_old(self) -> list[Path]:
        """Gzip every hourly file whose hour ended more than `compress_after_hours` ago."""
        compressed = []
        cutoff = self._clock() - self._compress_after
        for path in sorted(self.directory.glob(LOG_FILE_PREFIX + "*")):
            start = _hour_start(path.name)
            if start is None or path.suffix == ".gz" or start + 3600 > cutoff:
                continue
            target = path.with_name(path.name + ".gz")
            with path.open("rb") as source, gzip.open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
            path.unlink()
            self._uploaded.pop(path.name, None)
            compressed.append(target)
        return compressed

    def upload(self) -> list[str]:
        """Copy every hourly file that changed since its last upload; return the S3 URIs written."""
        if self._destination is None:
            return []
        written = []
        for path in sorted(self.directory.glob(LOG_FILE_PREFIX + "*")):
            if _hour_start(path.name) is None:
                continue
            stat = path.stat()
            signature = (stat.st_size, stat.st_mtime_ns)
            if self._uploaded.get(path.name) == signature:
                continue
            target = self._destination.child(path.name)
            try:
                self._s3.upload_file(str(path), target.bucket, target.key)
            except Exception as error:  # a failed backup must not stop the runner; the next round retries
                self._logger.warning("could not back up %s to %s: %s", path.name, target.uri, error)
                continue
            self._uploaded[path.name] = signature
            written.append(target.uri)
        return written

    def ship(self) -> list[str]:
        with self._lock:
            self.compress_old()
            return self.upload()

    def run(self, stop: threading.Event) -> None:
        """Ship every interval until `stop` is set (the final ship on shutdown is the caller's)."""
        while not stop.wait(self._interval):
            self.ship()
