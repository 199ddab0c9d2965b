"""Every process a task started, found and ended when the task ends.

A command may leave processes behind in another session (`setsid sleep 1000 &`) or process group, which a kill of
its own group does not reach. The runner makes itself a child subreaper (Linux), so such orphans stay its
descendants instead of moving to init, and marks each attempt's environment with `DATAPIPE_ATTEMPT_ID`. A task's
processes are then: the command's descendants, the processes seen as its descendants earlier in the attempt, any
process whose environment carries the attempt's mark and, when the attempt ends, every orphan the subreaper holds
that belongs to no attempt still running (one that also cleared its environment).

Every one of those processes was started after the command, so its pid is one Linux allocated since the command's
(`AllocatedPids`): a look reads the stat of those processes only, not of the whole process table.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ATTEMPT_MARK = "DATAPIPE_ATTEMPT_ID"
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_DUMPABLE = 4
PROC = Path("/proc")
RESERVED_PIDS = 300  # once the pids of a namespace have wrapped, Linux allocates from here up
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_ENVIRON_CHUNK = 65536


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return int(libc.prctl(option, value, 0, 0, 0)) == 0


_subreaper = False
# The marks of the attempts whose commands run. A command is started while this lock is held, and strays are told
# apart under it too: a child that has not yet exec'd still shows the runner's environment, without its mark.
_running_lock = threading.RLock()
_running_marks: set[str] = set()
_running_roots: set[int] = set()  # commands whose Popen has not collected their exit status yet: never reaped here


def become_subreaper() -> bool:
    """Orphaned descendants of this process are reparented to it rather than to init (Linux 3.4+)."""
    global _subreaper
    _subreaper = _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    return _subreaper


def forbid_inspection() -> bool:
    """Processes of the same user without CAP_SYS_PTRACE can no longer read this one's memory or environment."""
    return _prctl(_PR_SET_DUMPABLE, 0)


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    parent: int
    start_ticks: int  # with the pid, tells a process from a later one that reused its pid
    state: str
    name: str

    @property
    def command(self) -> str:
        """The command line (read when asked: most looks need only pid, parent and state), else the process name."""
        try:
            line = (PROC / str(self.pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            line = ""
        return line.strip() or self.name


def read_process(pid: int) -> ProcessInfo | None:
    # os.open and os.read: a look reads many processes' stat, and a buffered text file costs twice as much per read.
    try:
        descriptor = os.open(f"{PROC}/{pid}/stat", os.O_RDONLY)
        try:
            stat = os.read(descriptor, 4096).decode("utf-8", errors="replace")
        finally:
            os.close(descriptor)
    except OSError:
        return None
    name_end = stat.rfind(")")
    fields = stat[name_end + 2 :].split()
    if len(fields) < 20:  # not a whole stat line: nothing to go by
        return None
    return ProcessInfo(
        pid=pid,
        parent=int(fields[1]),
        start_ticks=int(fields[19]),
        state=fields[0],
        name=stat[stat.find("(") + 1 : name_end],
    )


def process_ids() -> list[int]:
    """The pid of every process (threads are not listed); none where there is no /proc."""
    try:
        names = os.listdir(PROC)
    except OSError:  # not Linux: the kill of the command's process group is all there is
        return []
    return [int(name) for name in names if name.isdigit()]


def read_processes(pids: Iterable[int]) -> dict[int, ProcessInfo]:
    return {info.pid: info for pid in pids if (info := read_process(pid)) is not None}


def process_table() -> dict[int, ProcessInfo]:
    return read_processes(process_ids())


# The kernel's counters, opened once and read with pread: one system call a reading, each a point where a thread
# of the runner gives up the GIL and may wait for it (milliseconds on a busy runner).
_counter_lock = threading.Lock()
_counter_files: dict[Path, int | None] = {}


def _counter(path: Path) -> int | None:
    """The number in a /proc file the kernel keeps up to date (pid_max, ns_last_pid), as it is now."""
    if path not in _counter_files:
        with _counter_lock:
            if path not in _counter_files:
                try:
                    _counter_files[path] = os.open(path, os.O_RDONLY)
                except OSError:
                    _counter_files[path] = None
    descriptor = _counter_files[path]
    if descriptor is None:
        return None
    try:
        return int(os.pread(descriptor, 64, 0))
    except (OSError, ValueError):
        return None


def boot_ticks() -> int:
    """Now, in the clock ticks since boot in which /proc gives a process's start: a process started later never has
    fewer (Linux counts both on CLOCK_BOOTTIME)."""
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    if clock is None:  # not Linux: no /proc to compare with
        return 0
    return time.clock_gettime_ns(clock) // (1_000_000_000 // _CLOCK_TICKS)


class AllocatedPids:
    """The pids Linux has allocated since `first` (a command's): every process started after it has one of them.

    Linux hands out the pids of a namespace in increasing order, from the last one given (`ns_last_pid`) up to
    `pid_max`, then again from RESERVED_PIDS. The pids allocated since `first` are then those from `first` to the last
    one given, round the end if the count wrapped. That holds until the count has gone round once entirely, which
    `advance` sees from the distance between its readings as long as one reading follows the previous within less
    than a whole round (pid_max - 300 pids: 32,468 on a default pid_max, millions with systemd's); from then on,
    and where the kernel does not say (no ns_last_pid), `known` is False and every pid counts.
    """

    def __init__(self, first: int) -> None:
        self.first = first
        self.last = first  # no reading yet: the first one measures from `first`
        self._travelled = 0
        self.known = True

    def advance(self) -> bool:
        """Take in the pids allocated up to now; False once they can no longer be told (then every pid counts)."""
        if not self.known:
            return False
        last = _counter(PROC / "sys/kernel/ns_last_pid")
        pid_max = _counter(PROC / "sys/kernel/pid_max")
        if last is None or pid_max is None:
            self.known = False
            return False
        self._travelled += (last - self.last) % pid_max
        self.last = last
        self.known = self._travelled < pid_max - RESERVED_PIDS
        return self.known

    def __contains__(self, pid: int) -> bool:
        if not self.known:
            return True
        if self.first <= self.last:
            return self.first <= pid <= self.last
        return pid >= self.first or pid <= self.last  # the count wrapped round pid_max


@contextlib.contextmanager
def starting_attempt(mark: str) -> Iterator[None]:
    """Start an attempt's command inside this block: its mark counts as running from before the process exists."""
    with _running_lock:
        _running_marks.add(mark)
        try:
            yield
        except BaseException:
            _running_marks.discard(mark)
            raise


def forget_attempt(mark: str, root: int | None = None) -> None:
    with _running_lock:
        _running_marks.discard(mark)
        _running_roots.discard(root or 0)


def mark_of(pid: int) -> str | None:
    """The attempt mark in a process's environment (as it was started), if any."""
    try:
        descriptor = os.open(f"{PROC}/{pid}/environ", os.O_RDONLY)
        try:
            environment = chunk = os.read(descriptor, _ENVIRON_CHUNK)
            while len(chunk) == _ENVIRON_CHUNK:  # a shorter read is the end
                chunk = os.read(descriptor, _ENVIRON_CHUNK)
                environment += chunk
        finally:
            os.close(descriptor)
    except OSError:
        return None
    prefix = f"{ATTEMPT_MARK}=".encode()
    for entry in environment.split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix) :].decode(errors="replace")
    return None


class ProcessTree:
    """The processes of one attempt: `track` while it runs, `end` when it is over.

    `root` is the command the runner started; its own Popen collects its exit status, so it is never reaped here.
    `started`: `boot_ticks()` read before the command was started. Nothing is read from /proc until a look.
    """

    def __init__(self, root: int, mark: str, *, started: int) -> None:
        self.root = root
        self.mark = mark
        self._known: dict[int, int] = {}  # pid -> start ticks of every process seen in the tree
        self._root_start = started
        self._allocated = AllocatedPids(root)
        self._unclaimed: dict[int, int] = {}  # pid -> start ticks of the orphans no running attempt claimed last look
        with _running_lock:
            _running_roots.add(root)

    def look(self) -> dict[int, ProcessInfo]:
        """The processes that may be the attempt's: those started since its command (all, where that is unknown),
        but the commands of other running attempts, which are theirs."""
        pids = process_ids()
        self._allocated.advance()  # read after the listing, so that every pid listed was allocated by then
        return read_processes(
            pid for pid in pids if pid in self._allocated and (pid == self.root or pid not in _running_roots)
        )

    def _alive_known(self, table: dict[int, ProcessInfo]) -> set[int]:
        return {pid for pid, ticks in self._known.items() if pid in table and table[pid].start_ticks == ticks}

    def _strays(self, table: dict[int, ProcessInfo]) -> set[int]:
        """Orphans reparented to the runner (its subreaper) that belong to no other attempt still running, and were
        found so by the look before this one too: a process shows no environment while it execs, so that an orphan
        of another attempt caught at that moment must not be taken for one that cleared its own. The commands of
        running attempts never are (the table may be older than the last one started)."""
        if not _subreaper:  # else the runner's children may be anything its host process started
            return set()
        runner = os.getpid()
        unclaimed = {}
        with _running_lock:
            others = _running_marks - {self.mark}
            for pid, info in table.items():
                if (
                    info.parent == runner
                    and info.state != "Z"
                    and pid not in _running_roots
                    and mark_of(pid) not in others
                ):
                    unclaimed[pid] = info.start_ticks
        strays = {pid for pid, ticks in unclaimed.items() if self._unclaimed.get(pid) == ticks}
        self._unclaimed = unclaimed
        return strays

    def members(self, *, strays: bool = False, table: dict[int, ProcessInfo] | None = None) -> list[ProcessInfo]:
        """Live (non-zombie) processes of the attempt; remembers them, so that they are found again once orphaned.
        With `strays`, also the orphans of the runner that no running attempt claims. `table`: a look just taken."""
        table = self.look() if table is None else table
        children: dict[int, list[int]] = {}
        for info in table.values():
            children.setdefault(info.parent, []).append(info.pid)
        found: set[int] = set()
        pending = list(self._alive_known(table) | (self._strays(table) if strays else set()))
        while pending:
            pid = pending.pop()
            if pid not in found:
                found.add(pid)
                pending.extend(children.get(pid, []))
        runner = os.getpid()
        # Only a process started after the command can carry its mark: the environment of older ones is not read.
        found |= {
            pid
            for pid, info in table.items()
            if pid not in found and info.start_ticks >= self._root_start and mark_of(pid) == self.mark
        }
        found.discard(runner)
        for pid in found:
            self._known[pid] = table[pid].start_ticks
        return sorted((table[pid] for pid in found if table[pid].state != "Z"), key=lambda info: info.pid)

    def track(self) -> None:
        """Note the processes of the command while it runs (its exit status not collected: its pid is its own)."""
        table = self.look()
        if self.root not in self._known and (info := table.get(self.root)) is not None:
            self._known[self.root] = info.start_ticks
        self.members(table=table)

    def end(self, *, rounds: int = 20) -> list[tuple[int, str]]:
        """SIGKILL every process of the attempt until none is left (a fork can race a kill); returns the pid and
        command line of each process killed."""
        killed: dict[int, str] = {}
        settled: dict[int, ProcessInfo] | None = None  # the look that found none of the attempt's processes left
        for _ in range(rounds):
            table = self.look()
            members = self.members(strays=True, table=table)
            if not members and not self._unclaimed:
                settled = table
                break
            for info in members:
                command = killed.get(info.pid) or info.command  # read while the process still has one
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(info.pid, signal.SIGKILL)
                    killed[info.pid] = command
            time.sleep(0.01)  # SIGKILL is delivered asynchronously
        forget_attempt(self.mark, self.root)
        if _subreaper or set(self._known) - {self.root}:
            self.reap(settled)  # the zombies of the processes killed are in that look already
        return list(killed.items())

    def reap(self, table: dict[int, ProcessInfo] | None = None) -> None:
        """Collect the exit status of orphans reparented to the runner (its subreaper): this attempt's, and as a
        subreaper any other started since its command that ended by itself (an orphan is always started in the time
        of the attempt it belongs to, so that the end of that attempt reaps it at the latest). Never a command a
        Popen waits for. `table`: a look just taken."""
        table = self.look() if table is None else table
        runner = os.getpid()
        with _running_lock:
            candidates = {pid for pid, info in table.items() if info.parent == runner} if _subreaper else set()
            candidates |= self._alive_known(table) - {self.root}
            for pid in candidates - _running_roots - {self.root}:
                if table[pid].parent == runner and table[pid].state == "Z":
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, os.WNOHANG)


class ExitWatch:
    """Waits for a started command to exit, woken by the exit itself where Linux gives a pidfd (5.3+): Popen.wait with
    a timeout polls with growing sleeps, which added several milliseconds to every short command."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self._poll: select.poll | None = None
        self._fd: int | None = None
        with contextlib.suppress(AttributeError, OSError):  # not Linux, or a kernel before 5.3
            self._fd = os.pidfd_open(process.pid)
            self._poll = select.poll()
            self._poll.register(self._fd, select.POLLIN)

    def __enter__(self) -> ExitWatch:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)

    def exit_code(self, within: float) -> int | None:
        """The command's exit status if it ends within `within` seconds, else None."""
        if self._process.returncode is not None:  # collected already (a kill checks whether it still runs)
            return self._process.returncode
        if self._poll is None:
            try:
                return self._process.wait(timeout=within)
            except subprocess.TimeoutExpired:
                return None
        if not self._poll.poll(within * 1000):
            return None
        return self._process.wait()  # it has exited: collecting its status does not block
