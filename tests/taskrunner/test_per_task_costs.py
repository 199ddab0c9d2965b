"""What the runner does per task, made cheaper without changing what it guarantees.

AllocatedPids: when a task ends, the runner reads the processes started since its command only, and still finds
every process the task left. ExitWatch: the runner learns of a command's exit when it happens, not at its next poll,
and still gives the exit status of a command that was killed or had been collected already. Heartbeat: one thread per
poller thread, reused from task to task, never heartbeating a task that is over.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from datapipe.taskrunner import processes
from datapipe.taskrunner.processes import (
    ATTEMPT_MARK,
    AllocatedPids,
    ExitWatch,
    ProcessTree,
    boot_ticks,
    forget_attempt,
    starting_attempt,
)
from datapipe.taskrunner.runner import RunningTask, TaskExecutor, shell_for
from tests.taskrunner.conftest import ACTIVITY_ARN, DATA_BUCKET, FakeActivity, s3_text, shell_task
from tests.taskrunner.test_task_executor import run
from tests.taskrunner.test_task_isolation import marked_processes


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
    executor = make_executor(heartbeat_interval=0.05)
    before = set(heartbeat_threads())
    tokens = []
    for number in range(3):
        token = activity.add_task(shell_task("sleep 0.2", execution=f"run-{number}"))
        task = activity.get_activity_task(activityArn=ACTIVITY_ARN, workerName="runner-a")
        assert executor.execute(RunningTask(token=token), task["input"]) == "succeeded"
        tokens.append(token)
    started = set(heartbeat_threads()) - before
    assert len(started) == 1  # not one per task
    # Every task was heartbeated while it ran (every 0.05 s for 0.2 s), and none after it was reported.
    assert all(activity.heartbeats.count(token) >= 2 for token in tokens)
    beats = len(activity.heartbeats)
    time.sleep(0.2)
    assert len(activity.heartbeats) == beats


# ---------------------------------------------------------------------------------------------------------------------
# The end of an attempt reads the processes started since its command, not the whole process table


def kernel_counters(root: Path, *, pid_max: int, last_pid: int | None) -> None:
    kernel = root / "sys/kernel"
    kernel.mkdir(parents=True, exist_ok=True)
    (kernel / "pid_max").write_text(f"{pid_max}\n")
    if last_pid is not None:
        (kernel / "ns_last_pid").write_text(f"{last_pid}\n")


def test_the_pids_allocated_since_a_command_are_those_up_to_the_last_one_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("datapipe.taskrunner.processes.PROC", tmp_path)
    kernel_counters(tmp_path, pid_max=32768, last_pid=1000)
    allocated = AllocatedPids(1000)
    kernel_counters(tmp_path, pid_max=32768, last_pid=1010)
    assert allocated.advance()
    assert [pid in allocated for pid in (999, 1000, 1005, 1010, 1011, 20000)] == [False, True, True, True, False, False]


def test_the_pids_allocated_round_the_end_of_pid_max_go_on_from_300(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 32761..32767, then (pid_max reached) 300..305: the kernel starts again above its reserved pids.
    monkeypatch.setattr("datapipe.taskrunner.processes.PROC", tmp_path)
    kernel_counters(tmp_path, pid_max=32768, last_pid=32760)
    allocated = AllocatedPids(32760)
    kernel_counters(tmp_path, pid_max=32768, last_pid=305)
    assert allocated.advance()
    inside = [pid in allocated for pid in (32759, 32760, 32767, 300, 305, 306, 1000)]
    assert inside == [False, True, True, True, True, False, False]


def test_once_the_pids_have_gone_round_entirely_every_pid_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # From 1000 to 20000, then on round pid_max to 1001: past the first pid again, so a pid below it may be new too.
    monkeypatch.setattr("datapipe.taskrunner.processes.PROC", tmp_path)
    kernel_counters(tmp_path, pid_max=32768, last_pid=1000)
    allocated = AllocatedPids(1000)
    kernel_counters(tmp_path, pid_max=32768, last_pid=20000)
    assert allocated.advance() and 500 not in allocated
    kernel_counters(tmp_path, pid_max=32768, last_pid=1001)
    assert not allocated.advance()
    assert 500 in allocated and 25000 in allocated


def test_where_the_kernel_does_not_tell_the_last_pid_every_pid_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("datapipe.taskrunner.processes.PROC", tmp_path)
    kernel_counters(tmp_path, pid_max=32768, last_pid=None)
    allocated = AllocatedPids(1000)
    assert not allocated.advance()
    assert 1 in allocated and 1000 in allocated and 32767 in allocated


@pytest.fixture()
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids whose stat the runner reads."""
    read: list[int] = []
    original = processes.read_process

    def counted(pid: int) -> processes.ProcessInfo | None:
        read.append(pid)
        return original(pid)

    monkeypatch.setattr(processes, "read_process", counted)
    return read


def test_a_process_older_than_the_command_is_not_read_and_the_tasks_orphan_still_ends(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any, reads: list[int]
) -> None:
    older = subprocess.Popen(["sleep", "30"])
    try:
        report = run(make_executor(), activity, shell_task("setsid sleep 1021 & sleep 0.2"))
    finally:
        older.kill()
        older.wait()
    assert report["status"] == "SUCCEEDED", report
    assert marked_processes("sleep 1021") == []
    assert "sleep 1021)" in s3_text(s3, report["output"]["stderr"])
    assert reads and older.pid not in reads


def test_when_the_pids_may_have_gone_round_every_process_is_read_and_the_orphan_still_ends(
    make_executor: Callable[..., TaskExecutor],
    activity: FakeActivity,
    s3: Any,
    reads: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(processes, "RESERVED_PIDS", 10**9)  # as if a whole round of pids had gone by at once
    older = subprocess.Popen(["sleep", "30"])
    try:
        report = run(make_executor(), activity, shell_task("setsid sleep 1022 & sleep 0.2"))
    finally:
        older.kill()
        older.wait()
    assert report["status"] == "SUCCEEDED", report
    assert marked_processes("sleep 1022") == []
    assert "sleep 1022)" in s3_text(s3, report["output"]["stderr"])
    assert older.pid in reads


def test_the_clock_read_before_a_command_starts_is_never_after_its_start_in_proc() -> None:
    before = boot_ticks()
    process = subprocess.Popen(["sleep", "5"])
    try:
        stat = Path(f"/proc/{process.pid}/stat").read_text()
        start_ticks = int(stat[stat.rfind(")") + 2 :].split()[19])  # field 22 of proc(5): starttime
    finally:
        process.kill()
        process.wait()
    assert before <= start_ticks <= boot_ticks()


def test_a_child_seen_while_the_command_ran_ends_with_it_though_it_left_its_session_and_cleared_its_environment(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any
) -> None:
    # Without the mark and out of the command's session, the child is the attempt's only because the runner saw it
    # as the command's descendant at its look half a second in (this test's process is no subreaper).
    report = run(make_executor(), activity, shell_task("setsid env -i sleep 1023 & sleep 0.7"))
    assert report["status"] == "SUCCEEDED", report
    assert marked_processes("sleep 1023") == []
    assert "sleep 1023)" in s3_text(s3, report["output"]["stderr"])


def test_the_shell_is_looked_up_once_not_for_every_task(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[str] = []
    original = shutil.which

    def which(name: str, path: str | None = None) -> str | None:
        lookups.append(name)
        return original(name, path=path)

    shell_for.cache_clear()
    monkeypatch.setattr(shutil, "which", which)
    executor = make_executor()
    for number in range(3):
        assert run(executor, activity, shell_task("true", execution=f"run-{number}"))["status"] == "SUCCEEDED"
    assert lookups == ["bash"]


def test_an_attempt_whose_command_never_started_still_uploads_both_logs(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any
) -> None:
    # The logs are opened for upload without a touch first: stdout, never written here, is created empty.
    report = run(make_executor(), activity, shell_task(None, scriptUri=f"s3://{DATA_BUCKET}/scripts/missing.sh"))
    assert report["status"] == "FAILED"
    prefix = report["cause"].split("(logs: ")[1].split(")")[0].removesuffix("/stderr")
    assert s3_text(s3, f"{prefix}/stdout") == ""
    assert "staging failed" in s3_text(s3, f"{prefix}/stderr")


# ---------------------------------------------------------------------------------------------------------------------
# As a child subreaper: what another running attempt holds is never taken for a stray


@pytest.fixture()
def ended_attempt(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProcessTree]:
    """An attempt whose command has exited, in a runner that is a child subreaper (this test's process stands in)."""
    monkeypatch.setattr(processes, "_subreaper", True)
    started = boot_ticks()
    with starting_attempt("mark-a"):
        command = subprocess.Popen(["true"], start_new_session=True)
        tree = ProcessTree(command.pid, "mark-a", started=started)
    command.wait()
    yield tree
    forget_attempt("mark-a", command.pid)


def test_the_command_of_another_running_attempt_is_never_a_stray_even_while_it_execs(
    ended_attempt: ProcessTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    with starting_attempt("mark-b"):
        other = subprocess.Popen(["sleep", "30"], start_new_session=True, env={**os.environ, ATTEMPT_MARK: "mark-b"})
        table = ended_attempt.look()  # taken while attempt b's command was being started, as another thread may
        ProcessTree(other.pid, "mark-b", started=boot_ticks())
    monkeypatch.setattr(processes, "mark_of", lambda pid: None)  # every environment reads empty, as during an exec
    try:
        assert other.pid in table
        for _look in range(2):
            assert other.pid not in [info.pid for info in ended_attempt.members(strays=True, table=table)]
        assert ended_attempt.end() == []
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
        forget_attempt("mark-b", other.pid)


def test_an_orphan_is_a_stray_when_two_looks_find_it_unclaimed_not_when_one_catches_it_in_an_exec(
    ended_attempt: ProcessTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    with starting_attempt("mark-b"):
        pass  # attempt b runs
    claimed = subprocess.Popen(["sleep", "30"], env={**os.environ, ATTEMPT_MARK: "mark-b"})
    cleared = subprocess.Popen(["sleep", "30"], env={})
    original = processes.mark_of
    caught: set[int] = set()

    def in_exec_once(pid: int) -> str | None:
        if pid == claimed.pid and pid not in caught:  # its first look finds it in an exec
            caught.add(pid)
            return None
        return original(pid)

    monkeypatch.setattr(processes, "mark_of", in_exec_once)
    try:
        killed = dict(ended_attempt.end())
        assert claimed.poll() is None
        assert cleared.pid in killed
        assert processes.read_process(cleared.pid) is None  # ended and reaped
    finally:
        for process in (claimed, cleared):
            process.kill()
            process.wait()
        forget_attempt("mark-b")
