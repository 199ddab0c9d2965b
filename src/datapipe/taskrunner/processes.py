"""Every process a task started, found and ended when the task ends.

A command may leave processes behind in another session (`setsid sleep 1000 &`) or process group, which a kill of
its own group does not reach. The runner makes itself a child subreaper (Linux), so such orphans stay its
descendants instead of moving to init, and marks each attempt's environment with `DATAPIPE_ATTEMPT_ID`. A task's
processes are then: the command's descendants, the processes seen as its descendants earlier in the attempt, and
any process whose environment carries the attempt's mark. Reading /proc costs one pass over the process table.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ATTEMPT_MARK = "DATAPIPE_ATTEMPT_ID"
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_DUMPABLE = 4
PROC = Path("/proc")


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return int(libc.prctl(option, value, 0, 0, 0)) == 0


def become_subreaper() -> bool:
    """Orphaned descendants of this process are reparented to it rather than to init (Linux 3.4+)."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def forbid_inspection() -> bool:
    """Processes of the same user without CAP_SYS_PTRACE can no longer read this one's memory or environment."""
    return _prctl(_PR_SET_DUMPABLE, 0)


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    parent: int
    start_ticks: int  # with the pid, tells a process from a later one that reused its pid
    state: str
    command: str


def read_process(pid: int) -> ProcessInfo | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    name_end = stat.rfind(")")
    fields = stat[name_end + 2 :].split()
    try:
        command = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        command = ""
    return ProcessInfo(
        pid=pid,
        parent=int(fields[1]),
        start_ticks=int(fields[19]),
        state=fields[0],
        command=command or stat[stat.find("(") + 1 : name_end],
    )


def process_table() -> dict[int, ProcessInfo]:
    table = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (info := read_process(int(entry.name))) is not None:
            table[info.pid] = info
    return table


def carries_mark(pid: int, mark: str) -> bool:
    try:
        environment = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return False
    return f"{ATTEMPT_MARK}={mark}".encode() in environment.split(b"\0")


class ProcessTree:
    """The processes of one attempt: `track` while it runs, `end` when it is over.

    `root` is the command the runner started; its own Popen collects its exit status, so it is never reaped here.
    """

    def __init__(self, root: int, mark: str) -> None:
        self.root = root
        self.mark = mark
        self._known: dict[int, int] = {}  # pid -> start ticks of every process seen in the tree
        if (info := read_process(root)) is not None:
            self._known[root] = info.start_ticks

    def _alive_known(self, table: dict[int, ProcessInfo]) -> set[int]:
        return {pid for pid, ticks in self._known.items() if pid in table and table[pid].start_ticks == ticks}

    def members(self) -> list[ProcessInfo]:
        """Live (non-zombie) processes of the attempt; remembers them, so that they are found again once orphaned."""
        table = process_table()
        children: dict[int, list[int]] = {}
        for info in table.values():
            children.setdefault(info.parent, []).append(info.pid)
        found: set[int] = set()
        pending = list(self._alive_known(table))
        while pending:
            pid = pending.pop()
            if pid not in found:
                found.add(pid)
                pending.extend(children.get(pid, []))
        runner = os.getpid()
        found |= {pid for pid in table if pid not in found and pid != runner and carries_mark(pid, self.mark)}
        found.discard(runner)
        for pid in found:
            self._known[pid] = table[pid].start_ticks
        return sorted((table[pid] for pid in found if table[pid].state != "Z"), key=lambda info: info.pid)

    def track(self) -> None:
        self.members()

    def end(self, *, rounds: int = 20) -> list[ProcessInfo]:
        """SIGKILL every process of the attempt until none is left (a fork can race a kill); returns those killed."""
        killed: dict[int, ProcessInfo] = {}
        for _ in range(rounds):
            members = self.members()
            if not members:
                break
            for info in members:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(info.pid, signal.SIGKILL)
                    killed.setdefault(info.pid, info)
            time.sleep(0.01)  # SIGKILL is delivered asynchronously
        self.reap()
        return list(killed.values())

    def reap(self) -> None:
        """Collect the exit status of this attempt's orphans that were reparented to the runner (its subreaper)."""
        table = process_table()
        runner = os.getpid()
        for pid in self._alive_known(table) - {self.root}:
            if table[pid].parent == runner and table[pid].state == "Z":
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
