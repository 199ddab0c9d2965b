"""How a test checks that work grows linearly with its input, on a machine that other work may load."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_seconds(work: Callable[[], object], *, repeats: int = 3) -> float:
    """The fastest of `repeats` runs: a pause of the machine (another process, a collection) lengthens one run only."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def growth(work: Callable[[int], object], small: int, large: int, *, repeats: int = 3) -> float:
    """How many times longer `work(large)` takes than `work(small)`, each the best of `repeats` runs."""
    return best_seconds(lambda: work(large), repeats=repeats) / best_seconds(lambda: work(small), repeats=repeats)
