"""Poller threads and shutdown.

`--tasks N` threads each long-poll GetActivityTask and run what they get, as Task Runner's task threads do.
Shutdown follows the rq model: the first stop request ends polling and lets running tasks finish; the second
kills their commands, which are then reported as `TaskRunner.Interrupted` so that Step Functions retries them
on another runner. Poller threads are daemons: a long poll in flight never delays the exit.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from datapipe.taskrunner.contract import RUNNER_INTERRUPTED
from datapipe.taskrunner.runner import RunningTask, TaskExecutor

POLL_ERROR_BACKOFF_SECONDS = (1, 2, 5, 10, 30)


class TaskRunner:
    def __init__(
        self,
        *,
        sfn: Any,
        activity_arn: str,
        executor: TaskExecutor,
        tasks: int,
        logger: logging.Logger,
    ) -> None:
        self._sfn = sfn
        self.activity_arn = activity_arn
        self._executor = executor
        self._threads_wanted = tasks
        self._logger = logger
        self._stopping = threading.Event()
        self._killing = threading.Event()
        self._changed = threading.Condition()
        self._running: dict[str, RunningTask] = {}
        self._threads: list[threading.Thread] = []
        self.outcomes: list[str] = []
        self.stop_requests = 0

    # -----------------------------------------------------------------------------------------------------------
    def start(self) -> None:
        for number in range(1, self._threads_wanted + 1):
            thread = threading.Thread(target=self._poll, name=f"poller-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def request_stop(self) -> int:
        """First call: stop polling. Second: kill running commands too. Returns how many requests so far."""
        with self._changed:
            self.stop_requests += 1
            running = list(self._running.values())
            if self.stop_requests == 1:
                self._stopping.set()
                self._logger.info("stopping: no new tasks; waiting for %d running task(s)", len(running))
            elif not self._killing.is_set():
                self._killing.set()
                self._logger.warning("stopping now: killing %d running command(s)", len(running))
                for task in running:
                    task.interrupt()
            self._changed.notify_all()
            return self.stop_requests

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def killed(self) -> bool:
        return self._killing.is_set()

    @property
    def running_count(self) -> int:
        with self._changed:
            return len(self._running)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until stopping and nothing runs (True), or until `timeout` passes (False).

        Waits in short slices so that signal handlers in the main thread get to run.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while not (self._stopping.is_set() and not self._running):
                if not any(thread.is_alive() for thread in self._threads) and not self._running:
                    return True
                remaining = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    # -----------------------------------------------------------------------------------------------------------
    def _poll(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                response = self._sfn.get_activity_task(
                    activityArn=self.activity_arn, workerName=self._executor.identity.runner_id
                )
            except Exception as error:  # the service or network is down, or an answer was garbled: keep polling
                delay = POLL_ERROR_BACKOFF_SECONDS[min(failures, len(POLL_ERROR_BACKOFF_SECONDS) - 1)]
                failures += 1
                self._logger.warning("GetActivityTask failed (retrying in %d s): %s", delay, error)
                self._stopping.wait(delay)
                continue
            failures = 0
            token = response.get("taskToken")
            if not token:
                continue  # the long poll ended without work
            running = RunningTask(token=token)
            with self._changed:
                self._running[token] = running
                hand_back = self._stopping.is_set()
            try:
                if hand_back:
                    self._hand_back(token)
                else:
                    outcome = self._executor.execute(running, response.get("input", "{}"))
                    self.outcomes.append(outcome)
            finally:
                with self._changed:
                    self._running.pop(token, None)
                    self._changed.notify_all()

    def _hand_back(self, token: str) -> None:
        """A task that arrived after the first stop request: fail it unstarted so that another runner takes it."""
        try:
            self._sfn.send_task_failure(
                taskToken=token,
                error=RUNNER_INTERRUPTED,
                cause=f"task runner {self._executor.identity.runner_id} was stopping and did not start the task",
            )
            self.outcomes.append("handed back")
        except (ClientError, BotoCoreError) as error:
            self._logger.error("could not hand back a task received while stopping: %s", error)
