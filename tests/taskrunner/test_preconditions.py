"""ShellCommandPrecondition on the executor: the command's exit status is the answer, and only a task that could not
run at all fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from datapipe.taskrunner.contract import COMMAND_FAILED
from datapipe.taskrunner.runner import RunningTask, TaskExecutor
from tests.taskrunner.conftest import ACTIVITY_ARN, FakeActivity, s3_text, shell_task


def run(executor: TaskExecutor, activity: FakeActivity, payload: dict[str, Any]) -> dict[str, Any]:
    token = activity.add_task(payload)
    task = activity.get_activity_task(activityArn=ACTIVITY_ARN, workerName="runner-a")
    executor.execute(RunningTask(token=task["taskToken"]), task["input"])
    return activity.report(token)


def precondition(command: str | None, **fields: Any) -> dict[str, Any]:
    return shell_task(command, type="ShellCommandPrecondition", activityId="InputReady", **fields)


def test_the_exit_status_is_the_answer(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any
) -> None:
    executor = make_executor()
    holds = run(executor, activity, precondition("echo checked; exit 0", execution="run-1"))["output"]
    assert (holds["holds"], holds["exitCode"]) == (True, 0)
    assert s3_text(s3, holds["stdout"]) == "checked\n"
    not_yet = run(executor, activity, precondition("echo 'not there' >&2; exit 3", execution="run-2"))
    assert not_yet["status"] == "SUCCEEDED"
    assert (not_yet["output"]["holds"], not_yet["output"]["exitCode"]) == (False, 3)
    assert s3_text(s3, not_yet["output"]["stderr"]) == "not there\n"
    killed = run(executor, activity, precondition("kill -9 $$", execution="run-3"))["output"]
    assert (killed["holds"], killed["exitCode"]) == (False, -9)  # the signal that killed it, as documented


def test_a_precondition_that_cannot_run_fails(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any
) -> None:
    executor = make_executor()
    missing_interpreter = "printf '#!/no/such/interpreter\\n' > check && chmod +x check && ./check"
    # The command itself starts (bash), so a failing inner program is an answer; a command bash cannot start is not.
    answer = run(executor, activity, precondition(missing_interpreter, execution="run-4"))
    assert answer["status"] == "SUCCEEDED" and answer["output"]["holds"] is False
    s3.put_object(Bucket="datapipe-test-data", Key="check.sh", Body=b"#!/no/such/interpreter\n")
    cannot_start = run(
        executor, activity, precondition(None, scriptUri="s3://datapipe-test-data/check.sh", execution="run-5")
    )
    assert (cannot_start["status"], cannot_start["error"]) == ("FAILED", COMMAND_FAILED)
    assert cannot_start["cause"].startswith("command could not start")
