"""What every extension module may depend on: the emulator's options and the context it runs in.

The extension modules (emr, activities, lambda_runner, batch_runner, ...) import this module, never
`datapipe.local.extensions`, which imports them to install them: the dependency goes one way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from datapipe.errors import DatapipeError

if TYPE_CHECKING:
    from datapipe.local.faults import Faults


@dataclass(frozen=True)
class EmulatorOptions:
    """How fast simulated things happen. Durations are in seconds and multiplied by `time_scale`.

    The defaults are fast: a cluster boots in 1.5 s, a step runs 1 s, a termination takes 0.5 s.
    """

    time_scale: float = 1.0
    emr_boot_seconds: float = 1.5
    emr_step_duration: float = 1.0
    emr_termination_seconds: float = 0.5
    batch_transition_seconds: float = 0.1  # each of SUBMITTED -> RUNNABLE -> STARTING
    poll_interval: float = 0.05  # how often waiting integrations re-check (no busy loops)
    activity_poll_seconds: float = 60.0  # GetActivityTask long poll, as in AWS
    wait_scale: float = 1.0  # multiplies the time of every Wait state (real time by default; 0.05 in e2e tests)
    # multiplies the intervals at which .sync EMR tasks check (60 s, then 300 s); None: wait_scale's
    sync_check_scale: float | None = None
    endpoint_url: str | None = None  # the server's URL; default: AWS_ENDPOINT_URL of this process
    cache_dir: str | None = None  # where Lambda code is extracted; default: a temporary directory

    def __post_init__(self) -> None:
        for name in (
            "time_scale",
            "emr_boot_seconds",
            "emr_step_duration",
            "emr_termination_seconds",
            "batch_transition_seconds",
            "activity_poll_seconds",
            "wait_scale",
        ):
            if getattr(self, name) < 0:
                raise DatapipeError(f"emulator option '{name}' must be zero or more, got {getattr(self, name)}")
        if self.sync_check_scale is not None and self.sync_check_scale < 0:
            raise DatapipeError(f"emulator option 'sync_check_scale' must be zero or more, got {self.sync_check_scale}")
        if not 0 < self.poll_interval <= 1:
            raise DatapipeError(f"emulator option 'poll_interval' must be in (0, 1] seconds, got {self.poll_interval}")


class EmulatorContext(Protocol):
    """What an extension reads from the installed extensions while it runs (they read options on every use)."""

    options: EmulatorOptions
    faults: Faults
    cache_dir: str
