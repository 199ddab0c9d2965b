"""ExitWatch: the runner learns of a command's exit when it happens, not at its next poll, and still gives the exit
status of a command that was killed or had been collected already."""

from __future__ import annotations

import subprocess
import time

from datapipe.taskrunner.processes import ExitWatch


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
