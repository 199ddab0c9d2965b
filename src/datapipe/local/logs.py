"""Where the emulator's internal messages go: a log file, and the console only when asked (`--verbose`).

moto's interpreter logs every error a state raises (`Exception=FailureEventException ... at '<... object at 0x..>'`,
`NoSuchJsonPathError` for a Choice that tests an absent field), even when the execution catches it and behaves as
designed; the server logs its own failures. A user of `datapipe local up` needs none of that on the console.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# The loggers of the emulator's own machinery (moto's services and interpreter, the HTTP server).
INTERNAL_LOGGERS = ("moto", "werkzeug")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"


@contextmanager
def internal_logs(log_file: Path, *, verbose: bool) -> Iterator[Path]:
    """While the block runs, internal messages go to `log_file` (replaced), and to stderr when `verbose`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [logging.FileHandler(log_file, mode="w", encoding="utf-8")]
    if verbose:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    saved: dict[str, bool] = {}
    for name in INTERNAL_LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = logger.propagate
        logger.propagate = False  # not to the root logger, whose last-resort handler prints to stderr
        for handler in handlers:
            logger.addHandler(handler)
    try:
        yield log_file
    finally:
        for name, propagate in saved.items():
            logger = logging.getLogger(name)
            for handler in handlers:
                logger.removeHandler(handler)
            logger.propagate = propagate
        for handler in handlers:
            handler.close()
