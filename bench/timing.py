"""Small helpers shared by the benchmarks: repeated wall-clock timing of a command, and ratios."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def time_command(
    args: Sequence[str], *, repeat: int, env: dict[str, str] | None = None, cwd: Path | None = None
) -> list[float]:
    """Wall-clock seconds of `repeat` runs of a command; raises if any run fails."""
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(list(args), env=env, cwd=cwd, check=True, capture_output=True)
        seconds.append(time.perf_counter() - start)
    return seconds


def describe(label: str, seconds: list[float]) -> str:
    return f"{label:<44} median {statistics.median(seconds):7.3f} s  (min {min(seconds):.3f}, n={len(seconds)})"


def ratio(ours: list[float], peer: list[float]) -> float:
    return statistics.median(ours) / statistics.median(peer)


def paired_ratio(ours: list[float], peer: list[float]) -> float:
    """The median of the rounds' ratios: a round's two samples ran back to back, under the same machine load."""
    return statistics.median(o / p for o, p in zip(ours, peer, strict=True))
