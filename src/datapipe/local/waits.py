"""Wait states at a chosen pace: the emulator's `wait_scale` multiplies the time every Wait state waits.

moto's interpreter works out how long a Wait state waits (Seconds, SecondsPath, or Timestamp/TimestampPath
relative to now) and then sleeps that many whole seconds in `WaitFunction._wait_interval`. The seam replaces that
sleep: the same number of seconds times `wait_scale`, ended early when the execution is stopped. At 1.0 (the
default) moto's own wait runs unchanged, so `datapipe demo` and `datapipe local up` keep real time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

from datapipe.local.seams import seam

WAIT_INTERVAL = seam(
    WaitFunction,
    "_wait_interval",
    ("self", "env", "wait_seconds"),
    "Wait states last wait_scale times their time (Seconds, SecondsPath, Timestamp, TimestampPath)",
)
# How long to pause when the execution's state event is set but the execution still runs (an unrelated wake-up),
# so that the loop below never spins.
_SPURIOUS_WAKE_PAUSE = 0.05


def scaled_wait(env: Any, wait_seconds: float, scale: float) -> None:
    """Wait `wait_seconds * scale` seconds, or less if the execution stops meanwhile."""
    deadline = time.monotonic() + max(0.0, wait_seconds) * scale
    while env.is_running():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        if env.program_state_event.wait(left) and env.is_running():
            time.sleep(min(left, _SPURIOUS_WAKE_PAUSE))


def install(wait_scale: Callable[[], float]) -> None:
    """`wait_scale()` gives the scale in force (read at every Wait state, so that `configure()` applies at once)."""

    def wait_interval(self: WaitFunction, env: Any, wait_seconds: int) -> None:
        scale = wait_scale()
        if scale == 1.0:
            WAIT_INTERVAL.call_original(self, env, wait_seconds)
        else:
            scaled_wait(env, wait_seconds, scale)

    WAIT_INTERVAL.patch(wait_interval)
