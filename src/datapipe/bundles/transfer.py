"""Parallel S3 transfers with a progress bar: many files at once, and large files in parallel parts.

Built on s3transfer's TransferManager (what boto3's upload_file and the AWS CLI use underneath), fed with every file
of a bundle at once so that small files overlap, and with the sizes the manifest already knows so that a download
needs no HeadObject first.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from s3transfer.manager import TransferConfig, TransferManager
from s3transfer.subscribers import BaseSubscriber

MIB = 1024 * 1024
PART_SIZE = 16 * MIB  # parts of at least this size go in parallel; S3 allows up to 10,000 parts per object
CONCURRENCY = 16


@dataclass(frozen=True)
class FileTransfer:
    local: Path
    key: str
    size: int


def s3_client(concurrency: int = CONCURRENCY) -> Any:
    """An S3 client whose connection pool is as large as the number of transfers running at once."""
    return boto3.client("s3", config=Config(max_pool_connections=concurrency + 4, retries={"mode": "standard"}))


def transfer_config(concurrency: int = CONCURRENCY, part_size: int = PART_SIZE) -> TransferConfig:
    return TransferConfig(
        multipart_threshold=part_size,
        multipart_chunksize=part_size,
        max_request_concurrency=concurrency,
        max_request_queue_size=10 * concurrency,
        max_submission_queue_size=10 * concurrency,
        max_io_queue_size=1000,
    )


class _Progress(BaseSubscriber):
    """Feeds bytes moved to the progress bar and, for downloads, tells s3transfer the size it already knows."""

    def __init__(self, bar: Progress | None, task: TaskID | None, size: int | None = None) -> None:
        self._bar, self._task, self._size = bar, task, size

    def on_queued(self, future: Any, **kwargs: Any) -> None:
        if self._size is not None:
            future.meta.provide_transfer_size(self._size)

    def on_progress(self, future: Any, bytes_transferred: int, **kwargs: Any) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, bytes_transferred)


@contextmanager
def progress_bar(
    label: str, total: int, *, show: bool | None = None
) -> Iterator[tuple[Progress | None, TaskID | None]]:
    """A rich bar on stderr, shown when stderr is a terminal (or when asked); nothing otherwise."""
    console = Console(stderr=True)
    if show is None:
        show = console.is_terminal
    if not show:
        yield None, None
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=not sys.stderr.isatty(),
    )
    with bar:
        yield bar, bar.add_task(label, total=total)


def upload(
    client: Any, bucket: str, files: Sequence[FileTransfer], *, label: str, show_progress: bool | None = None
) -> None:
    """Upload every file, in parallel; raises the first failure after cancelling the rest."""
    with (
        progress_bar(label, sum(f.size for f in files), show=show_progress) as (bar, task),
        TransferManager(client, transfer_config()) as manager,
    ):
        futures = [manager.upload(str(f.local), bucket, f.key, subscribers=[_Progress(bar, task)]) for f in files]
        for future in futures:
            future.result()


def download(
    client: Any, bucket: str, files: Sequence[FileTransfer], *, label: str, show_progress: bool | None = None
) -> None:
    """Download every file, in parallel, creating folders as needed; raises the first failure."""
    for f in files:
        f.local.parent.mkdir(parents=True, exist_ok=True)
    with (
        progress_bar(label, sum(f.size for f in files), show=show_progress) as (bar, task),
        TransferManager(client, transfer_config()) as manager,
    ):
        futures = [
            manager.download(bucket, f.key, str(f.local), subscribers=[_Progress(bar, task, f.size)]) for f in files
        ]
        for future in futures:
            future.result()
