"""AWS Batch without Docker: a job's container command runs as a local process.

The image is not pulled; the process gets what a transform's image holds instead: `python` is this interpreter
(datapipe installed), and the pipe root (the project the emulator serves: the folder holding cdk.json and app.py
where it started, else the checkout datapipe runs from) is first on PYTHONPATH, so the project's transforms import.
The command comes from the job definition's containerProperties (or the submission's ContainerOverrides), each
argument that is a placeholder `Ref::name` replaced by parameter `name` (SubmitJob's Parameters over the job
definition's defaults) in one pass, so a value is never searched for placeholders again; an argument with no such
parameter stays as it is. (moto's own substitution replaced any argument containing `Ref::name`: `Ref::inputVersion`
took the value of `input`.) describe_jobs shows the substituted command, as AWS does. The environment is this
process's (so boto3 in the job reaches the emulator) plus the job definition's and the overrides' variables and
AWS_BATCH_*; the working directory is a fresh temporary
directory. Output lines go to CloudWatch Logs where AWS would put them: with the job definition's `awslogs` log
configuration, its `awslogs-group` and stream `<awslogs-stream-prefix>/default/<job id>`; otherwise `/aws/batch/job`,
stream `<job definition>/default/<job id>`. The job moves SUBMITTED -> RUNNABLE -> STARTING -> RUNNING ->
SUCCEEDED / FAILED, with exit code and status reason, as `describe_jobs` shows.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moto.batch.models import Job

import datapipe
from datapipe.local import clients
from datapipe.local.seams import seam
from datapipe.project import nearest_project_dir

if TYPE_CHECKING:
    from datapipe.local.options import EmulatorContext as Extensions

JOB_RUN = seam(Job, "run", ("self",), "the container command runs as a local process")
JOB_CONTAINER_DETAILS = seam(
    Job,
    "_container_details",
    ("self",),
    "describe_jobs shows the container's exit code, reason and log configuration, as AWS does",
)

LOG_GROUP = "/aws/batch/job"
CONTAINER_NAME = "default"  # Batch's name for a job's one container, the middle part of its log stream
IMAGE_PYTHONS = ("python", "python3")  # the interpreter an image provides; here, the emulator's own
_pipe_root: Path | None = None  # set by install()


def pipe_root() -> Path | None:
    """The folder a transform's image would hold: the project where the emulator started, else datapipe's checkout."""
    return nearest_project_dir() or nearest_project_dir(Path(datapipe.__file__).parent)


def log_destination(job: Job) -> tuple[str, str]:
    """(log group, log stream) of the job, as AWS Batch names them for the job definition's log configuration."""
    properties = job.job_definition.container_properties or {}
    logging = properties.get("logConfiguration") or {}
    options = logging.get("options") or {}
    prefix = options.get("awslogs-stream-prefix") or job.job_definition.name
    stream = f"{prefix}/{CONTAINER_NAME}/{job.job_id}"
    if logging.get("logDriver") == "awslogs" and options.get("awslogs-group"):
        return str(options["awslogs-group"]), stream
    return LOG_GROUP, stream


def _set_status(job: Job, status: str) -> None:
    job.status = status


def _environment(job: Job) -> dict[str, str]:
    properties = job.job_definition.container_properties or {}
    variables = {str(e["name"]): str(e.get("value", "")) for e in properties.get("environment", [])}
    variables.update({str(e["name"]): str(e.get("value", "")) for e in job.container_overrides.get("environment", [])})
    endpoint = clients.endpoint_url()
    reach_emulator = {"AWS_ENDPOINT_URL": endpoint} if endpoint and "AWS_ENDPOINT_URL" not in os.environ else {}
    image = {}
    if _pipe_root is not None:
        image["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_pipe_root), os.environ.get("PYTHONPATH")]))
    return {
        **os.environ,
        **reach_emulator,
        **image,
        **variables,
        "AWS_BATCH_JOB_ID": job.job_id,
        "AWS_BATCH_JQ_NAME": job.job_queue.name,
        "AWS_BATCH_JOB_ATTEMPT": str(len(job.attempts)),
        "AWS_BATCH_CE_NAME": "local",
    }


PLACEHOLDER = "Ref::"


def substituted_command(job: Job) -> list[str]:
    """The job's container command as AWS Batch runs it: `Ref::name` arguments replaced by the job's parameters."""
    properties = job.job_definition.container_properties or {}
    command = job.container_overrides.get("command") or properties.get("command") or []
    # moto's Job.parameters already holds the job definition's defaults overlaid with SubmitJob's.
    parameters = {str(key): str(value) for key, value in (job.parameters or {}).items()}
    return [
        parameters.get(part.removeprefix(PLACEHOLDER), part) if part.startswith(PLACEHOLDER) else part
        for part in (str(part) for part in command)
    ]


def _command(job: Job) -> list[str]:
    parts = substituted_command(job)
    if parts and parts[0] in IMAGE_PYTHONS:
        parts[0] = sys.executable
    return parts


def _timeout_seconds(job: Job) -> float | None:
    timeout = job.timeout or job.job_definition.timeout or {}
    seconds = timeout.get("attemptDurationSeconds") if isinstance(timeout, dict) else None
    return float(seconds) if seconds else None


def _put_logs(job: Job, lines: list[tuple[int, str]]) -> None:
    group, job.log_stream_name = log_destination(job)
    logs = job._log_backend
    logs.ensure_log_group(group)
    logs.ensure_log_stream(group, job.log_stream_name)
    if lines:
        logs.put_log_events(group, job.log_stream_name, [{"timestamp": t, "message": m} for t, m in lines])


def _finish(job: Job, *, success: bool, exit_code: int | None, reason: str | None) -> None:
    job.exit_code = exit_code
    if reason:
        job.job_stopped_reason = reason
    job._mark_stopped(success=success)


def run_job(job: Job, extensions: Extensions) -> None:
    job._transitions = []  # the runner sets every status itself; moto's describe-driven progression stays out
    step = extensions.options.batch_transition_seconds * extensions.options.time_scale
    try:
        if job.depends_on and not job._wait_for_dependencies():
            return
        for status in ("RUNNABLE", "STARTING"):
            time.sleep(step)
            if job.stop:
                _finish(job, success=False, exit_code=None, reason=job.job_stopped_reason or "Terminated")
                return
            _set_status(job, status)
        job.job_started_at = datetime.now()
        job._start_attempt()
        job.log_stream_name = log_destination(job)[1]
        _set_status(job, "RUNNING")
        fault = extensions.faults.take("batch_job", [job.job_name, job.job_definition.name])
        if fault is not None:
            _put_logs(job, [(int(time.time() * 1000), fault.cause)])
            _finish(job, success=False, exit_code=1, reason=fault.cause)
            return
        command = _command(job)
        if not command:
            _finish(job, success=False, exit_code=None, reason="CannotStartContainerError: the job has no command")
            return
        exit_code, lines, reason = _run_process(job, command)
        _put_logs(job, lines)
        if reason is not None:
            _finish(job, success=False, exit_code=exit_code, reason=reason)
        elif exit_code != 0:
            _finish(job, success=False, exit_code=exit_code, reason="Essential container in task exited")
        else:
            _finish(job, success=True, exit_code=0, reason=None)
    except Exception as error:  # the job fails visibly rather than hanging RUNNING
        _finish(job, success=False, exit_code=None, reason=f"Emulator error: {error}")


def _run_process(job: Job, command: list[str]) -> tuple[int | None, list[tuple[int, str]], str | None]:
    workdir = tempfile.mkdtemp(prefix=f"batch-{job.job_id[:8]}-")
    lines: list[tuple[int, str]] = []
    try:
        try:
            process = subprocess.Popen(
                command,
                cwd=workdir,
                env=_environment(job),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        except OSError as error:
            return None, [], f"CannotStartContainerError: {command[0]}: {error.strerror}"

        def collect() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append((int(time.time() * 1000), line.rstrip("\n")))

        reader = threading.Thread(target=collect, daemon=True)
        reader.start()
        timeout = _timeout_seconds(job)
        started = time.monotonic()
        reason: str | None = None
        while process.poll() is None:
            if job.stop:
                process.kill()
                reason = job.job_stopped_reason or "Terminated"
            elif timeout is not None and time.monotonic() - started > timeout:
                process.kill()
                reason = "Job attempt duration exceeded timeout"
            try:
                process.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                continue
        reader.join(timeout=5)
        return process.returncode, lines, reason
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def install(extensions: Extensions) -> None:
    global _pipe_root
    _pipe_root = pipe_root()

    def run(self: Job) -> None:
        run_job(self, extensions)

    def container_details(self: Job) -> dict[str, Any]:
        overrides = copy.deepcopy(self.container_overrides)
        details: dict[str, Any] = JOB_CONTAINER_DETAILS.call_original(self)
        self.container_overrides = overrides  # moto appends AWS_BATCH_JOB_ID to the overrides on every describe
        details["command"] = substituted_command(self)
        log_configuration = (self.job_definition.container_properties or {}).get("logConfiguration")
        if log_configuration:  # AWS reports the job definition's; moto leaves it out
            details["logConfiguration"] = copy.deepcopy(log_configuration)
        if self.exit_code is not None:
            details["exitCode"] = self.exit_code
        if self.job_stopped_reason and self.status == "FAILED":
            details["reason"] = self.job_stopped_reason
        return details

    JOB_RUN.patch(run)
    JOB_CONTAINER_DETAILS.patch(container_details)
