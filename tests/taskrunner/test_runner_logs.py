"""The runner's own log: hourly files, gzip after eight hours, backups of what changed."""

from __future__ import annotations

import datetime as dt
import gzip
import logging
import threading
import time
from pathlib import Path
from typing import Any

from datapipe.taskrunner.contract import S3Location
from datapipe.taskrunner.logs import HourlyFileHandler, LogShipper, log_file_name
from tests.taskrunner.conftest import LOG_BUCKET


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def test_records_go_to_the_file_of_their_utc_hour(tmp_path: Path) -> None:
    handler = HourlyFileHandler(tmp_path)
    for when, message in ((at("2026-11-21T22:59:59"), "late"), (at("2026-11-21T23:00:00"), "next hour")):
        record = logging.LogRecord("t", logging.INFO, __file__, 1, message, None, None)
        record.created = when
        handler.emit(record)
    handler.close()
    assert (tmp_path / "TaskRunner.log.2026-11-21-22").read_text() == "late\n"
    assert (tmp_path / "TaskRunner.log.2026-11-21-23").read_text() == "next hour\n"
    assert log_file_name(at("2026-01-02T03:04:05")) == "TaskRunner.log.2026-01-02-03"


def test_files_older_than_eight_hours_are_gzipped_and_backed_up_once(
    tmp_path: Path, s3: Any, logger: logging.Logger
) -> None:
    now = at("2026-11-21T20:30:00")
    for hour, text in (("2026-11-21-11", "old"), ("2026-11-21-12", "eight hours ago"), ("2026-11-21-20", "now")):
        (tmp_path / f"TaskRunner.log.{hour}").write_text(text)
    (tmp_path / "unrelated.txt").write_text("not a log")
    shipper = LogShipper(
        directory=tmp_path,
        s3=s3,
        destination=S3Location(LOG_BUCKET, "taskrunner/wg-12345/runners/r1/"),
        logger=logger,
        clock=lambda: now,
    )

    written = shipper.ship()

    # 11:00-12:00 ended 8.5 h ago: compressed. 12:00-13:00 ended 7.5 h ago: not yet.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "TaskRunner.log.2026-11-21-11.gz",
        "TaskRunner.log.2026-11-21-12",
        "TaskRunner.log.2026-11-21-20",
        "unrelated.txt",
    ]
    assert gzip.decompress((tmp_path / "TaskRunner.log.2026-11-21-11.gz").read_bytes()) == b"old"
    prefix = f"s3://{LOG_BUCKET}/taskrunner/wg-12345/runners/r1/"
    assert written == [
        prefix + "TaskRunner.log.2026-11-21-11.gz",
        prefix + "TaskRunner.log.2026-11-21-12",
        prefix + "TaskRunner.log.2026-11-21-20",
    ]
    assert shipper.ship() == []  # nothing changed since
    with (tmp_path / "TaskRunner.log.2026-11-21-20").open("a") as current:
        current.write(" and later")
    assert shipper.ship() == [prefix + "TaskRunner.log.2026-11-21-20"]
    body = s3.get_object(Bucket=LOG_BUCKET, Key="taskrunner/wg-12345/runners/r1/TaskRunner.log.2026-11-21-20")["Body"]
    assert body.read() == b"now and later"


def test_a_failed_backup_is_logged_and_retried_next_round(tmp_path: Path, s3: Any, logger: logging.Logger) -> None:
    (tmp_path / log_file_name(at("2026-11-21T20:00:00"))).write_text("x")
    shipper = LogShipper(
        directory=tmp_path, s3=s3, destination=S3Location("no-such-bucket", "p/"), logger=logger, clock=lambda: 0
    )
    assert shipper.ship() == []
    s3.create_bucket(Bucket="no-such-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert shipper.ship() == ["s3://no-such-bucket/p/TaskRunner.log.2026-11-21-20"]


def test_the_shipper_backs_up_on_its_interval_until_stopped(tmp_path: Path, s3: Any, logger: logging.Logger) -> None:
    (tmp_path / log_file_name(at("2026-11-21T20:00:00"))).write_text("first")
    shipper = LogShipper(
        directory=tmp_path,
        s3=s3,
        destination=S3Location(LOG_BUCKET, "r/"),
        logger=logger,
        interval_seconds=0.05,
        clock=lambda: at("2026-11-21T20:30:00"),
    )
    stop = threading.Event()
    thread = threading.Thread(target=shipper.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while s3.list_objects_v2(Bucket=LOG_BUCKET, Prefix="r/").get("KeyCount", 0) == 0:
            assert time.monotonic() < deadline, "nothing was backed up on the interval"
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
