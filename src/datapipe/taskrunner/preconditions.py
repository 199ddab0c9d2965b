"""ShellCommandPrecondition tasks: the command runs exactly as a ShellCommandActivity's (attempt folder, logs,
containment, secrets masking); its exit status is the answer. Exit 0 holds; any other exit status does not hold and
is a successful task, `{"holds": false}`, which the state machine reads before waiting `retryDelay` to ask again. A
command that could not be staged or started, or whose runner was stopped, still fails the task.
"""

from __future__ import annotations

from typing import Any

from datapipe.taskrunner.contract import COMMAND_FAILED


def precondition_answer(
    outcome: tuple[str, str] | None, exit_code: int | None
) -> tuple[tuple[str, str] | None, dict[str, Any]]:
    """The shell outcome of a precondition's command as (failure or None, success details)."""
    if outcome is None:
        return None, {"holds": True, "exitCode": 0}
    if outcome[0] == COMMAND_FAILED and exit_code is not None:
        return None, {"holds": False, "exitCode": exit_code}
    return outcome, {}
