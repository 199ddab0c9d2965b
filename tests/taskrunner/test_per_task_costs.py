"""What the runner does per task, made cheaper without changing what it guarantees.

ExitWatch: the runner learns of a command's exit when it happens, not at its next poll, and still gives the exit
status of a command that was killed or had been collected already. Heartbeat: one thread per poller thread, reused
from task to task, never heartbeating a task that is over.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable

from datapipe.taskrunner.processes import ExitWatch
from datapipe.taskrunner.runner import RunningTask, TaskExecutor
from tests.taskrunner.conftest import ACTIVITY_ARN, FakeActivity, shell_task


def started(script: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["bash", "-c", script], start_new_session=True)


def test_the_exit_status_of_a_command_that_ends_within_the_wait() -> None:
    with ExitWatch(started("exit 3")) as watch:
        assert watch.exit_code(within=30) == 3


def test_a_wait_that_ends_before_the_command_gives_none_then_a_kill_is_seen_at_once() -> None:
    process = started("sleep 30")
    with ExitWatch(process) as watch:
        before = time.monotonic()
        assert watch.exit_code(within=0.2) is None
        assert time.monotonic() - before >= 0.2
        process.kill()
        before = time.monotonic()
        assert watch.exit_code(within=30) == -9
        assert time.monotonic() - before < 5  # woken by the exit, not by the end of the 30 s


def test_a_command_collected_before_the_wait_keeps_its_status() -> None:
    process = started("exit 7")
    with ExitWatch(process) as watch:
        process.wait()  # as a kill of an interrupted task does, through Popen.poll
        assert watch.exit_code(within=30) == 7


def test_a_command_longer_than_one_wait_is_followed_to_its_end() -> None:
    with ExitWatch(started("sleep 0.3; exit 4")) as watch:
        waits = 0
        while (code := watch.exit_code(within=0.05)) is None:
            waits += 1
        assert code == 4
        assert waits >= 2


def heartbeat_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("heartbeat-")]


def test_one_heartbeat_thread_serves_a_poller_from_task_to_task(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity
) -> None:
    executor = make_executor(heartbeat_interval=0.1)
    before = set(heartbeat_threads())
    tokens = []
    for number in range(3):
        token = activity.add_task(shell_task("sleep 0.35", execution=f"run-{number}"))
        task = activity.get_activity_task(activityArn=ACTIVITY_ARN, workerName="runner-a")
        assert executor.execute(RunningTask(token=token), task["input"]) == "succeeded"
        tokens.append(token)
    started = set(heartbeat_threads()) - before
    assert len(started) == 1  # not one per task
    # Every task was heartbeated while it ran (every 0.1 s for 0.35 s), and none after it was reported.
    assert all(activity.heartbeats.count(token) >= 2 for token in tokens)
    beats = len(activity.heartbeats)
    time.sleep(0.4)
    assert len(activity.heartbeats) == beats
