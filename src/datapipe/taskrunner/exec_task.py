"""One task run outside an activity (`datapipe taskrunner exec-task`, an AWS Batch job's command): the runner's own
code path, TaskExecutor.execute, with the report kept here instead of sent to Step Functions. The job's state machine
reads the outcome from the job: exit status 0 and one JSON line on stdout, or a non-zero exit and a one-line error.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from datapipe.taskrunner.contract import S3Location
from datapipe.taskrunner.environment import TaskRole
from datapipe.taskrunner.runner import RunnerIdentity, RunningTask, TaskExecutor

TASK_VARIABLE = "DATAPIPE_TASK"
TOKEN = "exec-task"  # no Step Functions token: the report stays in this process


@dataclass
class KeptReport:
    """Stands in for Step Functions' SendTask* calls: keeps the one report of the task."""

    output: str | None = None
    error: str | None = None
    cause: str | None = None

    def send_task_heartbeat(self, *, taskToken: str) -> dict[str, Any]:
        return {}

    def send_task_success(self, *, taskToken: str, output: str) -> dict[str, Any]:
        self.output = output
        return {}

    def send_task_failure(self, *, taskToken: str, error: str, cause: str) -> dict[str, Any]:
        self.error, self.cause = error, cause
        return {}


def exec_task(
    task_input: str,
    *,
    clients: Any,
    identity: RunnerIdentity,
    output_dir: Path,
    log_destination: S3Location | None,
    task_role: TaskRole | None,
    logger: logging.Logger,
) -> KeptReport:
    """Run the task to its end; SIGTERM (Batch's TerminateJob) ends its command and fails it as interrupted."""
    report = KeptReport()
    executor = TaskExecutor(
        sfn=report,
        s3=clients.s3,
        identity=identity,
        output_dir=output_dir,
        log_destination=log_destination,
        heartbeat_interval=3600,  # heartbeats go nowhere: Batch's own timeout bounds the job
        logger=logger,
        secrets_manager=clients.secrets_manager,
        ssm=clients.ssm,
        sts=clients.sts,
        task_role=task_role,
    )
    running = RunningTask(token=TOKEN)

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        running.interrupt()

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_signal) if in_main_thread else None
    try:
        executor.execute(running, task_input)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return report
