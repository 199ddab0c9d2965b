"""Parallel S3 transfers with a progress bar: many files at once, and large files in parallel parts.

Files smaller than a part go with one request each from a thread pool; larger ones go through s3transfer's
TransferManager (what boto3's upload_file and the AWS CLI use) in parallel parts. Downloads skip S3's per-response
checksums, and with them the HeadObject that s3transfer sends before each GET to learn the object's checksum: a
pull verifies every file's sha256 from the manifest instead, end to end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

from datapipe import aws
from datapipe.aws import Target

MIB = 1024 * 1024
PART_SIZE = 16 * MIB  # parts of at least this size go in parallel; S3 allows up to 10,000 parts per object
CONCURRENCY = 16


@dataclass(frozen=True)
class FileTransfer:
    local: Path
    key: str
    size: int


def s3_client(target: Target | None = None, concurrency: int | None = None) -> Any:
    """An S3 client (for AWS or the emulator, see datapipe.aws) with a pool as large as the transfers at once."""
    pool = 2 * (concurrency or CONCURRENCY) + 4  # the thread pool of small files and s3transfer's, side by side
    config = Config(
        max_pool_connections=pool, retries={"mode": "standard"}, response_checksum_validation="when_required"
    )
    return aws.client("s3", target, config=config)


def transfer_config(concurrency: int | None = None, part_size: int | None = None) -> TransferConfig:
    concurrency = concurrency or CONCURRENCY
    part_size = part_size or PART_SIZE
    return TransferConfig(
        multipart_threshold=part_size,
        multipart_chunksize=part_size,
        max_request_concurrency=concurrency,
        max_request_queue_size=10 * concurrency,
        max_submission_queue_size=10 * concurrency,
        max_io_queue_size=1000,
    )


class _Progress(BaseSubscriber):
    """Feeds the bytes moved to the progress bar."""

    def __init__(self, bar: Progress | None, task: TaskID | None) -> None:
        self._bar, self._task = bar, task

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
    )
    with bar:
        yield bar, bar.add_task(label, total=total)


def _advance(bar: Progress | None, task: TaskID | None, size: int) -> None:
    if bar is not None and task is not None:
        bar.advance(task, size)


def _run_all(
    client: Any,
    files: Sequence[FileTransfer],
    *,
    label: str,
    show_progress: bool | None,
    one_request: Callable[[FileTransfer], None],
    in_parts: Callable[[TransferManager, FileTransfer, BaseSubscriber], Any],
) -> None:
    """Small files with one request each from a thread pool (s3transfer's per-file machinery costs more than the
    request); files of a part or more through s3transfer, in parallel parts. Raises the first failure."""
    small = [f for f in files if f.size < PART_SIZE]
    large = [f for f in files if f.size >= PART_SIZE]
    with (
        progress_bar(label, sum(f.size for f in files), show=show_progress) as (bar, task),
        TransferManager(client, transfer_config()) as manager,
    ):
        pool = ThreadPoolExecutor(max_workers=CONCURRENCY)
        try:

            def one(f: FileTransfer) -> None:
                one_request(f)
                _advance(bar, task, f.size)

            futures: list[Any] = [in_parts(manager, f, _Progress(bar, task)) for f in large]
            futures += [pool.submit(one, f) for f in small]
            for future in futures:
                future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def upload(
    client: Any, bucket: str, files: Sequence[FileTransfer], *, label: str, show_progress: bool | None = None
) -> None:
    """Upload every file, in parallel; raises the first failure."""
    _run_all(
        client,
        files,
        label=label,
        show_progress=show_progress,
        one_request=lambda f: client.put_object(Bucket=bucket, Key=f.key, Body=f.local.read_bytes()),
        in_parts=lambda manager, f, progress: manager.upload(str(f.local), bucket, f.key, subscribers=[progress]),
    )


def download(
    client: Any, bucket: str, files: Sequence[FileTransfer], *, label: str, show_progress: bool | None = None
) -> None:
    """Download every file, in parallel, creating folders as needed; raises the first failure."""
    for f in files:
        f.local.parent.mkdir(parents=True, exist_ok=True)

    def get(f: FileTransfer) -> None:
        f.local.write_bytes(client.get_object(Bucket=bucket, Key=f.key)["Body"].read())

    _run_all(
        client,
        files,
        label=label,
        show_progress=show_progress,
        one_request=get,
        in_parts=lambda manager, f, progress: manager.download(bucket, f.key, str(f.local), subscribers=[progress]),
    )
