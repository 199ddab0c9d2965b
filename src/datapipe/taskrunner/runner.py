"""Running one task attempt: stage, run the command in its own session, heartbeat, end its processes, upload logs,
report, and clean up attempt folders as configured.

The rule that matters most: a task is reported successful only when its command exited 0 and its outputs were
staged back; every other ending is reported as a failure with an error name from `contract`, or (when Step
Functions has already given the task up) not reported at all.
"""

from __future__ import annotations

import contextlib
import functools
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
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from boto3.exceptions import S3TransferFailedError, S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from datapipe.taskrunner.contract import (
    COMMAND_FAILED,
    INTERNAL_ERROR,
    INVALID_TASK,
    RUNNER_INTERRUPTED,
    SECRET_UNAVAILABLE,
    STAGING_FAILED,
    DatabaseTask,
    InvalidTask,
    S3Location,
    ShellTask,
    parse_task,
    safe_path_part,
)
from datapipe.taskrunner.environment import (
    SecretUnavailable,
    TaskRole,
    base_environment,
    mask_file,
    masked_texts,
    read_secrets,
)
from datapipe.taskrunner.preconditions import precondition_answer
from datapipe.taskrunner.processes import (
    ATTEMPT_MARK,
    ExitWatch,
    ProcessTree,
    boot_ticks,
    forget_attempt,
    starting_attempt,
)
from datapipe.taskrunner.sql_tasks import run_database_task

STDERR_TAIL_LINES = 20
STDERR_TAIL_CHARACTERS = 4000
# Errors that mean Step Functions no longer waits for this token: stop working on it, report nothing.
GONE_TOKEN_ERRORS = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})
# Up to this size a file goes up in one PutObject; the transfer manager costs a thread pool per call.
SINGLE_PUT_BYTES = 8 * 1024 * 1024
# What an S3 transfer can raise: boto3's transfer manager wraps ClientError in its own exceptions on upload.
TRANSFER_ERRORS = (ClientError, BotoCoreError, S3UploadFailedError, S3TransferFailedError, OSError)
# How often the runner looks for the processes of a running command, so that it knows them once they are orphaned.
TRACK_INTERVAL_SECONDS = 0.5
RUNNER_NOTE = "[datapipe taskrunner]"
# How long a poller's heartbeat thread waits for its next task before it ends.
HEARTBEAT_IDLE_SECONDS = 300


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
    exit_code: int | None = None  # the command's, once it has exited
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
    """Heartbeats the task in hand from a thread of its own, for as long as the task is being worked on (staging
    included). One per poller thread, reused from task to task: starting and joining a thread for every task cost
    milliseconds of GIL hand-overs. The thread ends after HEARTBEAT_IDLE_SECONDS without a task."""

    def __init__(self, *, sfn: Any, logger: logging.Logger) -> None:
        self._sfn = sfn
        self._logger = logger
        self._changed = threading.Condition()
        self._task: tuple[RunningTask, float, str] | None = None
        self._sending = False
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def beating(self, running: RunningTask, *, interval: float, label: str) -> Iterator[None]:
        with self._changed:
            self._task = (running, interval, label)
            if self._thread is None or not self._thread.is_alive():  # none yet, idle too long, or died of a bug
                name = f"heartbeat-{threading.current_thread().name}"
                self._thread = threading.Thread(target=self._beat, name=name, daemon=True)
                self._thread.start()
            self._changed.notify_all()
        try:
            yield
        finally:
            # The thread is not woken: at its next deadline it finds the task over (waking it costs every task a
            # hand-over of the GIL). One heartbeat on its way is waited for.
            with self._changed:
                self._task = None
                while self._sending:  # no heartbeat goes out for a task once it is over
                    self._changed.wait()

    def _beat(self) -> None:
        with self._changed:
            while True:
                task = self._task
                if task is None:
                    if not self._changed.wait(HEARTBEAT_IDLE_SECONDS) and self._task is None:
                        self._thread = None
                        return
                    continue
                running, interval, label = task
                deadline = time.monotonic() + interval
                while self._task is task and (left := deadline - time.monotonic()) > 0:
                    self._changed.wait(left)
                if self._task is not task:
                    continue
                self._sending = True
                self._changed.release()
                try:
                    gone = self._send(running, label)
                finally:
                    self._changed.acquire()
                    self._sending = False
                    self._changed.notify_all()
                while gone and self._task is task:  # no more heartbeats for a task Step Functions gave up
                    self._changed.wait()

    def _send(self, running: RunningTask, label: str) -> bool:
        """One heartbeat; True when Step Functions has given the task up (the task is then abandoned)."""
        try:
            self._sfn.send_task_heartbeat(taskToken=running.token)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in GONE_TOKEN_ERRORS:
                self._logger.warning("task %s: Step Functions gave the task up; stopping it", label)
                running.abandon()
                return True
            self._logger.warning("task %s: heartbeat failed: %s", label, error)
        except BotoCoreError as error:
            self._logger.warning("task %s: heartbeat failed: %s", label, error)
        return False


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.killpg(process.pid, signal.SIGKILL)  # the command started its own session: pgid == pid


@functools.lru_cache(maxsize=8)
def shell_for(path: str | None) -> str:
    """bash as PATH finds it, else /bin/sh: looked up once per PATH, not on every task (a stat per folder)."""
    return shutil.which("bash", path=path) or "/bin/sh"


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
    # The unique id of the AWS principal the runner acts as (GetCallerIdentity's UserId, IAM's `aws:userid`): its
    # logs go under `<log URI><group>/<principal>/`, the only prefix the runner policy lets it write to.
    principal: str
    hostname: str = field(default_factory=socket.gethostname)

    @property
    def log_prefix(self) -> str:
        return f"{safe_path_part(self.worker_group)}/{self.principal}/"


@dataclass(frozen=True)
class Retention:
    """Which attempt folders stay on disk: all (default), or the last `keep_attempts`, and/or none that succeeded."""

    keep_attempts: int | None = None
    remove_on_success: bool = False


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
        secrets_manager: Any = None,
        ssm: Any = None,
        sts: Any = None,
        task_role: TaskRole | None = None,
        retention: Retention = Retention(),
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self._sfn = sfn
        self._s3 = s3
        self._secrets_manager = secrets_manager
        self._ssm = ssm
        self._sts = sts
        self._task_role = task_role
        self.identity = identity
        self.output_dir = output_dir
        self._log_destination = log_destination
        self._heartbeat_interval = heartbeat_interval
        self._logger = logger
        self._retention = retention
        self._environ = environ
        self._active: set[Path] = set()  # attempt folders in use, never removed by retention
        self._active_lock = threading.Lock()
        self._heartbeats = threading.local()  # each poller thread's Heartbeat

    @property
    def tasks_dir(self) -> Path:
        return self.output_dir / "tasks" / safe_path_part(self.identity.worker_group)

    def attempt_dir(self, task: ShellTask | DatabaseTask) -> Path:
        return self.tasks_dir / task.attempt_path

    # -----------------------------------------------------------------------------------------------------------
    def execute(self, running: RunningTask, task_input: str) -> str:
        """Run one task to its end and report it; returns what was reported (for logs and tests)."""
        try:
            task = parse_task(task_input)
        except InvalidTask as error:
            self._logger.error("rejected a task: %s", error)
            return self._fail(running, INVALID_TASK, str(error))
        attempt_dir = self.attempt_dir(task)
        with self._active_lock:
            self._active.add(attempt_dir)
        outcome = "unreported"
        try:
            outcome = self._execute(running, task)
        except Exception as error:  # a bug or an unexpected OS error: never leave Step Functions waiting silently
            self._logger.exception("task %s failed inside the runner", task.attempt_path)
            outcome = self._fail(running, INTERNAL_ERROR, f"{type(error).__name__}: {error}")
        finally:
            with self._active_lock:
                self._active.discard(attempt_dir)
        self._clean_up(attempt_dir, succeeded=outcome == "succeeded")
        return outcome

    def _execute(self, running: RunningTask, task: ShellTask | DatabaseTask) -> str:
        attempt_dir = self.attempt_dir(task)
        work_dir = attempt_dir / "work"
        work_dir.mkdir(parents=True, exist_ok=True)
        stdout_path, stderr_path = attempt_dir / "stdout", attempt_dir / "stderr"
        self._logger.info("task %s: starting in %s", task.attempt_path, work_dir)
        interval = self._heartbeat_interval
        if task.heartbeat_seconds:
            interval = min(interval, task.heartbeat_seconds / 3)
        heartbeat = getattr(self._heartbeats, "heartbeat", None)
        if heartbeat is None:
            heartbeat = self._heartbeats.heartbeat = Heartbeat(sfn=self._sfn, logger=self._logger)
        with heartbeat.beating(running, interval=interval, label=task.attempt_path):
            started = time.monotonic()
            outcome, details = self._perform(running, task, attempt_dir, stdout_path, stderr_path)
            duration = round(time.monotonic() - started, 3)
            logs = self._upload_attempt_logs(task, stdout_path, stderr_path)
            staged: list[str] = []
            if outcome is None and isinstance(task, ShellTask) and task.stage and not running.gone:
                try:
                    staged = self._stage_out(task, attempt_dir)
                except StagingError as error:
                    outcome = (STAGING_FAILED, str(error))

        if running.gone:
            return "abandoned"
        if running.interrupted and isinstance(task, ShellTask):  # SQL runs on: its transaction's outcome is told
            where = f"task runner {self.identity.runner_id} was stopped while the command ran"
            return self._fail(running, RUNNER_INTERRUPTED, f"{where} (logs: {logs['stderr']})")
        if outcome is not None:
            error_name, message = outcome
            first, _, rest = message.partition("\n")
            return self._fail(running, error_name, f"{first} (logs: {logs['stderr']})" + (f"\n{rest}" if rest else ""))
        output = {
            **details,
            "stdout": logs["stdout"],
            "stderr": logs["stderr"],
            **({"output": staged} if isinstance(task, ShellTask) else {}),
            "workerGroup": self.identity.worker_group,
            "taskrunnerId": self.identity.runner_id,
            "hostname": self.identity.hostname,
            "attempt": task.attempt,
            "durationSeconds": duration,
        }
        return self._succeed(running, output)

    def _perform(
        self,
        running: RunningTask,
        task: ShellTask | DatabaseTask,
        attempt_dir: Path,
        stdout_path: Path,
        stderr_path: Path,
    ) -> tuple[tuple[str, str] | None, dict[str, Any]]:
        """The one place where task types part ways: (failure or None, what the success output adds)."""
        if isinstance(task, DatabaseTask):
            return run_database_task(
                task,
                s3=self._s3,
                secrets_manager=self._secrets_manager,
                task_role=self._task_role,
                sts=self._sts,
                session_name=self.identity.runner_id,
                stdout_path=stdout_path,
                stderr_path=stderr_path,
                ssm=self._ssm,
            )
        outcome = self._run(running, task, attempt_dir, stdout_path, stderr_path)
        if task.precondition:
            return precondition_answer(outcome, running.exit_code)
        return outcome, {"exitCode": 0}

    def _run(
        self, running: RunningTask, task: ShellTask, attempt_dir: Path, stdout_path: Path, stderr_path: Path
    ) -> tuple[str, str] | None:
        """Stage in and run the command; None when it exited 0, else (error name, message with the stderr tail)."""
        mark = uuid.uuid4().hex
        env = base_environment(self._environ)  # never the runner's own keys
        env.update(task.environment)
        env.update(
            {
                "DATAPIPE_WORKER_GROUP": self.identity.worker_group,
                "DATAPIPE_TASKRUNNER_ID": self.identity.runner_id,
                "DATAPIPE_ATTEMPT": str(task.attempt),
                ATTEMPT_MARK: mark,
            }
        )
        try:
            argv = self._prepare(task, attempt_dir, env)
        except StagingError as error:
            stderr_path.write_text(f"staging failed: {error}\n")
            return STAGING_FAILED, str(error)
        if self._task_role is not None:
            try:
                env.update(self._task_role.credentials(sts=self._sts, session_name=self.identity.runner_id))
            except (ClientError, BotoCoreError) as error:
                stderr_path.write_text(f"{RUNNER_NOTE} cannot assume the task role {self._task_role.arn}\n")
                return STAGING_FAILED, f"cannot assume the task role {self._task_role.arn}: {error}"
        try:  # read last, so that the values live no longer than needed
            secret_values = read_secrets(task.secrets, secrets_manager=self._secrets_manager, ssm=self._ssm)
        except SecretUnavailable as error:
            stderr_path.write_text(f"{RUNNER_NOTE} {error}\n")
            return SECRET_UNAVAILABLE, str(error)
        env.update(secret_values)
        started = boot_ticks()
        with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr, starting_attempt(mark):
            try:
                process = subprocess.Popen(
                    argv,
                    cwd=attempt_dir / "work",
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    start_new_session=True,  # its own session and process group, so that a kill reaches its children
                )
            except OSError as error:  # e.g. a script whose #! names a missing interpreter
                stderr.write(f"cannot start {argv[0]}: {error.strerror}\n".encode())
                forget_attempt(mark)
                return COMMAND_FAILED, f"command could not start: {error.strerror}"
            # Known as running before the lock is let go: no reaping thread may collect its exit status.
            tree = ProcessTree(process.pid, mark, started=started)
            watch = ExitWatch(process)  # while the pid surely is the command's
        del env
        running.attach(process)
        with watch:
            while (exit_code := watch.exit_code(within=TRACK_INTERVAL_SECONDS)) is None:
                tree.track()
        running.exit_code = exit_code
        self._note_ended(tree.end(), stderr_path)
        texts = masked_texts(secret_values.values())
        del secret_values
        for path in (stdout_path, stderr_path):
            mask_file(path, texts)
        if exit_code == 0:
            return None
        how = f"exit code {exit_code}" if exit_code > 0 else f"killed by signal {-exit_code}"
        return COMMAND_FAILED, f"command failed with {how}\n{stderr_tail(stderr_path)}"

    def _note_ended(self, killed: list[tuple[int, str]], stderr_path: Path) -> None:
        """Say in the attempt's stderr which processes the runner ended when the command was over."""
        if not killed:
            return
        shown = ", ".join(f"{pid} ({command[:80]})" for pid, command in killed[:20])
        more = f" and {len(killed) - 20} more" if len(killed) > 20 else ""
        note = f"{RUNNER_NOTE} ended {len(killed)} process(es) the task left running: {shown}{more}"
        with stderr_path.open("a", encoding="utf-8", errors="replace") as stderr:
            stderr.write(note + "\n")
        self._logger.info("%s", note.removeprefix(RUNNER_NOTE + " "))

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
        shell = shell_for(os.environ.get("PATH"))
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
            if not relative or relative.endswith("/"):
                continue  # a folder marker
            self._download(
                S3Location(location.bucket, key), contained(folder, relative, key=f"s3://{location.bucket}/{key}")
            )

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
            for path in output_files(folder, attempt_dir):
                target = location.child(path.relative_to(folder).as_posix())
                try:
                    self._put_file(path, target)
                except TRANSFER_ERRORS as error:
                    raise StagingError(f"cannot upload {path.name} to {target.uri}: {error}") from None
                written.append(target.uri)
        return written

    def _upload_attempt_logs(self, task: ShellTask | DatabaseTask, stdout: Path, stderr: Path) -> dict[str, str]:
        """Upload stdout and stderr of the attempt; the local path stands in for a log that could not be uploaded."""
        locations = {}
        for name, path in (("stdout", stdout), ("stderr", stderr)):
            locations[name] = str(path)
            if self._log_destination is None:
                path.touch(exist_ok=True)
                continue
            target = self._log_destination.child(f"{self.identity.log_prefix}attempts/{task.attempt_path}/{name}")
            try:
                # One PutObject (up to 5 GB) that refuses to overwrite: an attempt's logs are written once.
                with open_or_create(path) as body:
                    self._s3.put_object(Bucket=target.bucket, Key=target.key, Body=body, IfNoneMatch="*")
                locations[name] = target.uri
            except TRANSFER_ERRORS as error:
                self._logger.warning("task %s: cannot upload %s to %s: %s", task.attempt_path, name, target.uri, error)
        return locations

    def _clean_up(self, attempt_dir: Path, *, succeeded: bool) -> None:
        """Remove attempt folders as `--removeOnSuccess` and `--keepAttempts` say; never one still in use."""
        retention = self._retention
        doomed: list[Path] = []
        if retention.remove_on_success and succeeded:
            doomed.append(attempt_dir)
        if retention.keep_attempts is not None:
            with self._active_lock:
                active = set(self._active)
            finished = [p for p in self.tasks_dir.glob("*/*/*/Attempt=*") if p.is_dir() and p not in active]
            finished.sort(key=lambda p: p.stat().st_mtime_ns, reverse=True)
            doomed += finished[retention.keep_attempts :]
        for folder in dict.fromkeys(doomed):
            shutil.rmtree(folder, ignore_errors=True)
            for parent in (folder.parent, folder.parent.parent, folder.parent.parent.parent):
                with contextlib.suppress(OSError):  # only empty ones go
                    parent.rmdir()

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


def open_or_create(path: Path) -> BinaryIO:
    """The file to read, created empty if the attempt never wrote it (a command that did not start)."""
    try:
        return path.open("rb")
    except FileNotFoundError:
        path.touch()
        return path.open("rb")


def contained(folder: Path, relative: str, *, key: str) -> Path:
    """`folder/relative`, or StagingError naming the key when that path would not be inside `folder`."""
    parts = Path(relative).parts
    if relative.startswith("/") or "\0" in relative or ".." in parts or not parts:
        raise StagingError(f"{key} would be written outside the attempt folder; rename the object")
    target = folder / relative
    if not target.resolve().is_relative_to(folder.resolve()):
        raise StagingError(f"{key} would be written outside the attempt folder; rename the object")
    return target


def output_files(folder: Path, attempt_dir: Path) -> list[Path]:
    """The files to stage out of `folder`; a link that leads out of the attempt folder (or to a folder) fails."""
    root = attempt_dir.resolve()
    files = []
    for directory, folders, names in os.walk(folder, followlinks=False):
        for name in sorted(folders + names):
            path = Path(directory) / name
            if not path.is_symlink():
                if name in names and path.is_file():
                    files.append(path)
                continue
            shown = path.relative_to(attempt_dir).as_posix()
            resolved = path.resolve()
            if not resolved.is_relative_to(root):
                raise StagingError(f"{shown} is a link to {resolved}, outside the attempt folder: not staged out")
            if not resolved.is_file():
                raise StagingError(f"{shown} is a link to a folder or to nothing: stage out files only")
            files.append(path)
    return sorted(files)
