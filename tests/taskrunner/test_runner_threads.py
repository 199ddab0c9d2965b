"""Poller threads and the two-step shutdown."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from datapipe.taskrunner.contract import RUNNER_INTERRUPTED
from datapipe.taskrunner.poller import TaskRunner
from datapipe.taskrunner.runner import TaskExecutor
from tests.taskrunner.conftest import ACTIVITY_ARN, FakeActivity, shell_task


def make_runner(executor: TaskExecutor, activity: FakeActivity, logger: logging.Logger, tasks: int) -> TaskRunner:
    return TaskRunner(sfn=activity, activity_arn=ACTIVITY_ARN, executor=executor, tasks=tasks, logger=logger)


def wait_until(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_two_poller_threads_run_two_tasks_at_once(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, logger: logging.Logger, tmp_path: Path
) -> None:
    # Each command says it runs, then waits up to 4 s for the other to say so too: both succeed only side by side.
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    command = (
        'touch "$MEETING/$1"; for i in $(seq 200); do '
        '[ -e "$MEETING/run-0" ] && [ -e "$MEETING/run-1" ] && exit 0; sleep 0.02; done; exit 1'
    )
    runner = make_runner(make_executor(), activity, logger, tasks=2)
    tasks = [
        shell_task(command, execution=f"run-{i}", scriptArgument=[f"run-{i}"], environment={"MEETING": str(meeting)})
        for i in range(2)
    ]
    tokens = [activity.add_task(task) for task in tasks]
    runner.start()
    reports = [activity.report(token) for token in tokens]
    runner.request_stop()
    assert runner.wait(timeout=5)

    assert [r["status"] for r in reports] == ["SUCCEEDED", "SUCCEEDED"], "the two tasks did not run side by side"


def test_first_stop_lets_the_running_task_finish_and_takes_no_new_one(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, logger: logging.Logger
) -> None:
    executor = make_executor()
    runner = make_runner(executor, activity, logger, tasks=1)
    running = activity.add_task(shell_task("sleep 0.5; mkdir finished"))
    runner.start()
    wait_until(lambda: runner.running_count == 1)

    runner.request_stop()
    queued = activity.add_task(shell_task("true", execution="run-2"))
    assert runner.wait(timeout=5)

    assert activity.report(running)["status"] == "SUCCEEDED"
    assert not runner.killed
    time.sleep(activity.poll_seconds * 3)
    assert not activity.reported(queued), "a task was started after the stop request"
    assert list(executor.output_dir.rglob("finished"))


def test_second_stop_kills_the_command_and_reports_it_for_a_retry_elsewhere(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, logger: logging.Logger
) -> None:
    runner = make_runner(make_executor(), activity, logger, tasks=2)
    token = activity.add_task(shell_task("sleep 30"))
    runner.start()
    wait_until(lambda: runner.running_count == 1)
    started = time.monotonic()

    assert runner.request_stop() == 1
    assert not runner.wait(timeout=0.3)  # still running its task
    assert runner.request_stop() == 2
    assert runner.wait(timeout=5)

    assert time.monotonic() - started < 3
    assert runner.killed
    assert activity.report(token)["error"] == RUNNER_INTERRUPTED


def test_a_task_received_after_the_stop_request_is_handed_back_unstarted(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, logger: logging.Logger
) -> None:
    activity.poll_seconds = 0.5
    executor = make_executor()
    runner = make_runner(executor, activity, logger, tasks=1)
    runner.start()
    wait_until(lambda: activity.polls >= 1)  # a long poll is in flight
    runner.request_stop()
    token = activity.add_task(shell_task("mkdir should-not-exist"))  # ... and it receives a task

    report = activity.report(token)
    assert report["error"] == RUNNER_INTERRUPTED
    assert "did not start the task" in report["cause"]
    assert not list(executor.output_dir.rglob("should-not-exist"))


def test_a_long_poll_in_flight_does_not_delay_the_exit(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, logger: logging.Logger
) -> None:
    activity.poll_seconds = 30  # as long as a real GetActivityTask can hold the request
    runner = make_runner(make_executor(), activity, logger, tasks=2)
    runner.start()
    wait_until(lambda: activity.polls >= 2)
    started = time.monotonic()
    runner.request_stop()
    assert runner.wait(timeout=5)
    assert time.monotonic() - started < 1


def test_polling_survives_service_errors(
    make_executor: Callable[..., TaskExecutor],
    activity: FakeActivity,
    logger: logging.Logger,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("datapipe.taskrunner.poller.POLL_ERROR_BACKOFF_SECONDS", (0.01,))
    failures = iter([ClientError({"Error": {"Code": "ThrottlingException"}}, "GetActivityTask"), ConnectionError()])
    real_poll = activity.get_activity_task

    def flaky_poll(**kwargs: Any) -> dict[str, Any]:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real_poll(**kwargs)

    monkeypatch.setattr(activity, "get_activity_task", flaky_poll)
    token = activity.add_task(shell_task("true"))
    runner = make_runner(make_executor(), activity, logger, tasks=1)
    runner.start()
    assert activity.report(token)["status"] == "SUCCEEDED"
    runner.request_stop()
    assert runner.wait(timeout=5)
