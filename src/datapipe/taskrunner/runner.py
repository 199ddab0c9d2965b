"""Running one task attempt: stage, run the command in its own process group, heartbeat, upload logs, report.

The rule that matters most: a task is reported successful only when its command exited 0 and its outputs were
staged back; every other ending is reported as a failure with an error name from `contract`, or (when Step
Functions has already given the task up) not reported at all.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boto3.exceptions import S3TransferFailedError, S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from datapipe.taskrunner.contract import (
    COMMAND_FAILED,
    INTERNAL_ERROR,
    INVALID_TASK,
    RUNNER_INTERRUPTED,
    STAGING_FAILED,
    InvalidTask,
    S3Location,
    ShellTask,
    safe_path_part,
)

STDERR_TAIL_LINES = 20
STDERR_TAIL_CHARACTERS = 4000
# Errors that mean Step Functions no longer waits for this token: stop working on it, report nothing.
GONE_TOKEN_ERRORS = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})
# Up to this size a file goes up in one PutObject; the transfer manager costs a thread pool per call.
SINGLE_PUT_BYTES = 8 * 1024 * 1024
# What an S3 transfer can raise: boto3's transfer manager wraps ClientError in its own exceptions on upload.
TRANSFER_ERRORS = (ClientError, BotoCoreError, S3UploadFailedError, S3TransferFailedError, OSError)


class StagingError(Exception):
    """Moving a task's data or script between S3 and the working directory failed."""


@dataclass
class RunningTask:
    """A task this runner holds. `interrupt` kills its command (the second-signal path); `abandon` does the same
    when Step Functions has given the task up, after which nothing may be reported for it."""

    token: str
    process: subprocess.Popen[bytes] | None = None
    interrupted: bool = False
    gone: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, process: subprocess.Popen[bytes]) -> None:
        """Remember the command's process, killing it at once if the task was interrupted or abandoned meanwhile."""
        with self._lock:
            self.process = process
            if self.interrupted or self.gone:
                _kill_group(process)

    def interrupt(self) -> None:
        with self._lock:
            self.interrupted = True
            if self.process is not None:
                _kill_group(self.process)

    def abandon(self) -> None:
        with self._lock:
            self.gone = True
            if self.process is not None:
                _kill_group(self.process)


class Heartbeat:
    """Heartbeats a task from a thread of its own, for as long as the task is being worked on (staging included)."""

    def __init__(self, *, sfn: Any, running: RunningTask, interval: float, logger: logging.Logger, label: str) -> None:
        self._sfn = sfn
        self._running = running
        self._interval = interval
        self._logger = logger
        self._label = label
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{label}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._sfn.send_task_heartbeat(taskToken=self._running.token)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in GONE_TOKEN_ERRORS:
                    self._logger.warning("task %s: Step Functions gave the task up; stopping it", self._label)
                    self._running.abandon()
                    return
                self._logger.warning("task %s: heartbeat failed: %s", self._label, error)
            except BotoCoreError as error:
                self._logger.warning("task %s: heartbeat failed: %s", self._label, error)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.killpg(process.pid, signal.SIGKILL)  # the command started its own session: pgid == pid


def stderr_tail(path: Path) -> str:
    """The last lines of a stderr file, bounded in size so that it fits a SendTaskFailure cause."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - STDERR_TAIL_CHARACTERS * 2))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = text.splitlines()[-STDERR_TAIL_LINES:]
    return "\n".join(lines)[-STDERR_TAIL_CHARACTERS:]


@dataclass(frozen=True)
class RunnerIdentity:
    worker_group: str
    runner_id: str
    hostname: str = field(default_factory=socket.gethostname)


class TaskExecutor:
    """Runs task attempts for one worker group and reports them to Step Functions."""

    def __init__(
        self,
        *,
        sfn: Any,
        s3: Any,
        identity: RunnerIdentity,
        output_dir: Path,
        log_destination: S3Location | None,
        heartbeat_interval: float,
        logger: logging.Logger,
    ) -> None:
        self._sfn = sfn
        self._s3 = s3
        self.identity = identity
        self.output_dir = output_dir
        self._log_destination = log_destination
        self._heartbeat_interval = heartbeat_interval
        self._logger = logger

    def attempt_dir(self, task: ShellTask) -> Path:
        return self.output_dir / "tasks" / safe_path_part(self.identity.worker_group) / task.attempt_path

    # -----------------------------------------------------------------------------------------------------------
    def execute(self, running: RunningTask, task_input: str) -> str:
        """Run one task to its end and report it; returns what was reported (for logs and tests)."""
        try:
            task = ShellTask.from_input(task_input)
        except InvalidTask as error:
            self._logger.error("rejected a task: %s", error)
            return self._fail(running, INVALID_TASK, str(error))
        try:
            return self._execute(running, task)
        except Exception as error:  # a bug or an unexpected OS error: never leave Step Functions waiting silently
            self._logger.exception("task %s failed inside the runner", task.attempt_path)
            return self._fail(running, INTERNAL_ERROR, f"{type(error).__name__}: {error}")

    def _execute(self, running: RunningTask, task: ShellTask) -> str:
        attempt_dir = self.attempt_dir(task)
        work_dir = attempt_dir / "work"
        work_dir.mkdir(parents=True, exist_ok=True)
        stdout_path, stderr_path = attempt_dir / "stdout", attempt_dir / "stderr"
        self._logger.info("task %s: starting in %s", task.attempt_path, work_dir)
        interval = self._heartbeat_interval
        if task.heartbeat_seconds:
            interval = min(interval, task.heartbeat_seconds / 3)
        with Heartbeat(sfn=self._sfn, running=running, interval=interval, logger=self._logger, label=task.attempt_path):
            started = time.monotonic()
            outcome = self._run(running, task, attempt_dir, stdout_path, stderr_path)
            duration = round(time.monotonic() - started, 3)
            logs = self._upload_attempt_logs(task, stdout_path, stderr_path)
            staged: list[str] = []
            if outcome is None and task.stage and not running.gone:
                try:
                    staged = self._stage_out(task, attempt_dir)
                except StagingError as error:
                    outcome = (STAGING_FAILED, str(error))

        if running.gone:
            return "abandoned"
        if running.interrupted:
            where = f"task runner {self.identity.runner_id} was stopped while the command ran"
            return self._fail(running, RUNNER_INTERRUPTED, f"{where} (logs: {logs['stderr']})")
        if outcome is not None:
            error_name, message = outcome
            first, _, rest = message.partition("\n")
            return self._fail(running, error_name, f"{first} (logs: {logs['stderr']})" + (f"\n{rest}" if rest else ""))
        output = {
            "exitCode": 0,
            "stdout": logs["stdout"],
            "stderr": logs["stderr"],
            "output": staged,
            "workerGroup": self.identity.worker_group,
            "taskrunnerId": self.identity.runner_id,
            "hostname": self.identity.hostname,
            "attempt": task.attempt,
            "durationSeconds": duration,
        }
        return self._succeed(running, output)

    def _run(
        self, running: RunningTask, task: ShellTask, attempt_dir: Path, stdout_path: Path, stderr_path: Path
    ) -> tuple[str, str] | None:
        """Stage in and run the command; None when it exited 0, else (error name, message with the stderr tail)."""
        env = dict(os.environ)
        env.update(
            {
                "DATAPIPE_WORKER_GROUP": self.identity.worker_group,
                "DATAPIPE_TASKRUNNER_ID": self.identity.runner_id,
                "DATAPIPE_ATTEMPT": str(task.attempt),
            }
        )
        try:
            argv = self._prepare(task, attempt_dir, env)
        except StagingError as error:
            stderr_path.write_text(f"staging failed: {error}\n")
            return STAGING_FAILED, str(error)
        with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
            try:
                process = subprocess.Popen(
                    argv,
                    cwd=attempt_dir / "work",
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    start_new_session=True,  # its own process group, so that a kill reaches its children too
                )
            except OSError as error:  # e.g. a script whose #! names a missing interpreter
                stderr.write(f"cannot start {argv[0]}: {error.strerror}\n".encode())
                return COMMAND_FAILED, f"command could not start: {error.strerror}"
        running.attach(process)
        exit_code = process.wait()
        if exit_code == 0:
            return None
        how = f"exit code {exit_code}" if exit_code > 0 else f"killed by signal {-exit_code}"
        return COMMAND_FAILED, f"command failed with {how}\n{stderr_tail(stderr_path)}"

    # -----------------------------------------------------------------------------------------------------------
    def _prepare(self, task: ShellTask, attempt_dir: Path, env: dict[str, str]) -> list[str]:
        """The command line to run, after staging inputs and the script; staging variables go into `env`."""
        if task.stage:
            for number, location in enumerate(task.inputs, start=1):
                folder = attempt_dir / f"input{number}"
                self._download_prefix(location, folder)
                env[f"INPUT{number}_STAGING_DIR"] = str(folder)
            for number, _location in enumerate(task.outputs, start=1):
                folder = attempt_dir / f"output{number}"
                folder.mkdir(parents=True, exist_ok=True)
                env[f"OUTPUT{number}_STAGING_DIR"] = str(folder)
        shell = shutil.which("bash") or "/bin/sh"
        if task.command is not None:
            # As in Data Pipeline: scriptArgument values are the positional parameters $1, $2, ...
            return [shell, "-c", task.command, task.activity_id, *task.script_arguments]
        assert task.script_uri is not None
        script = attempt_dir / "script"
        self._download(task.script_uri, script)
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        with script.open("rb") as handle:
            has_interpreter = handle.read(2) == b"#!"
        runnable = [str(script)] if has_interpreter else [shell, str(script)]
        return [*runnable, *task.script_arguments]

    def _download(self, location: S3Location, target: Path) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._s3.download_file(location.bucket, location.key, str(target))
        except TRANSFER_ERRORS as error:
            raise StagingError(f"cannot download {location.uri}: {error}") from None

    def _download_prefix(self, location: S3Location, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        prefix = location.as_prefix
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=prefix)
            keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        except (ClientError, BotoCoreError) as error:
            raise StagingError(f"cannot list {location.uri}: {error}") from None
        for key in keys:
            relative = key[len(prefix) :]
            if not relative or relative.endswith("/") or ".." in Path(relative).parts:
                continue
            self._download(S3Location(location.bucket, key), folder / relative)

    def _put_file(self, path: Path, target: S3Location) -> None:
        """One PutObject for a small file (most logs); the transfer manager, with multipart, for a large one."""
        if path.stat().st_size <= SINGLE_PUT_BYTES:
            with path.open("rb") as body:
                self._s3.put_object(Bucket=target.bucket, Key=target.key, Body=body)
        else:
            self._s3.upload_file(str(path), target.bucket, target.key)

    def _stage_out(self, task: ShellTask, attempt_dir: Path) -> list[str]:
        written = []
        for number, location in enumerate(task.outputs, start=1):
            folder = attempt_dir / f"output{number}"
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                target = location.child(path.relative_to(folder).as_posix())
                try:
                    self._put_file(path, target)
                except TRANSFER_ERRORS as error:
                    raise StagingError(f"cannot upload {path.name} to {target.uri}: {error}") from None
                written.append(target.uri)
        return written

    def _upload_attempt_logs(self, task: ShellTask, stdout: Path, stderr: Path) -> dict[str, str]:
        """Upload stdout and stderr of the attempt; the local path stands in for a log that could not be uploaded."""
        locations = {}
        for name, path in (("stdout", stdout), ("stderr", stderr)):
            path.touch(exist_ok=True)
            locations[name] = str(path)
            if self._log_destination is None:
                continue
            target = self._log_destination.child(
                f"{safe_path_part(self.identity.worker_group)}/{task.attempt_path}/{name}"
            )
            try:
                self._put_file(path, target)
                locations[name] = target.uri
            except TRANSFER_ERRORS as error:
                self._logger.warning("task %s: cannot upload %s to %s: %s", task.attempt_path, name, target.uri, error)
        return locations

    # -----------------------------------------------------------------------------------------------------------
    def _succeed(self, running: RunningTask, output: dict[str, Any]) -> str:
        try:
            self._sfn.send_task_success(taskToken=running.token, output=json.dumps(output))
        except (ClientError, BotoCoreError) as error:
            self._logger.error("could not report success: %s", error)
            return "unreported"
        self._logger.info("task succeeded in %.1f s, stdout %s", output["durationSeconds"], output["stdout"])
        return "succeeded"

    def _fail(self, running: RunningTask, error_name: str, cause: str) -> str:
        try:
            self._sfn.send_task_failure(taskToken=running.token, error=error_name, cause=cause[:32768])
        except (ClientError, BotoCoreError) as error:
            self._logger.error("could not report failure %s: %s", error_name, error)
            return "unreported"
        first_line = cause.splitlines()[0] if cause else ""
        self._logger.info("task failed: %s: %s", error_name, first_line)
        return error_name
