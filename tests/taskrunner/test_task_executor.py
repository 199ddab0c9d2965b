"""One task attempt end to end: the command runs, its logs land in S3 in Data Pipeline's layout, the report is right."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from datapipe.taskrunner.contract import COMMAND_FAILED, INVALID_TASK, RUNNER_INTERRUPTED, STAGING_FAILED, S3Location
from datapipe.taskrunner.runner import RunningTask, TaskExecutor
from tests.taskrunner.conftest import (
    ACTIVITY_ARN,
    DATA_BUCKET,
    LOG_BUCKET,
    PRINCIPAL,
    FakeActivity,
    s3_text,
    shell_task,
)

# <log URI><group>/<principal>/attempts/<workflow>/<activity>/<execution>/Attempt=N: the runner's own prefix.
LOG_PREFIX = (
    f"s3://{LOG_BUCKET}/taskrunner/wg-12345/{PRINCIPAL}/attempts/datapipe-dev-create-directory/CreateDirectory/run-1"
)


def run(executor: TaskExecutor, activity: FakeActivity, payload: dict[str, Any] | str) -> dict[str, Any]:
    token = activity.add_task(payload)
    task = activity.get_activity_task(activityArn=ACTIVITY_ARN, workerName="runner-a")
    executor.execute(RunningTask(token=task["taskToken"]), task["input"])
    return activity.report(token)


def test_the_seed_command_creates_its_directory_and_reports_success_with_log_locations(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any
) -> None:
    executor = make_executor()
    report = run(executor, activity, shell_task("mkdir new-directory && echo made it"))

    assert report["status"] == "SUCCEEDED"
    output = report["output"]
    assert output["exitCode"] == 0
    assert output["stdout"] == f"{LOG_PREFIX}/Attempt=1/stdout"
    assert output["stderr"] == f"{LOG_PREFIX}/Attempt=1/stderr"
    assert s3_text(s3, output["stdout"]) == "made it\n"
    assert (output["workerGroup"], output["taskrunnerId"], output["attempt"]) == ("wg-12345", "runner-a", 1)
    work_dir = executor.output_dir / "tasks/wg-12345/datapipe-dev-create-directory/CreateDirectory/run-1/Attempt=1/work"
    assert (work_dir / "new-directory").is_dir()


def test_a_failing_command_is_reported_failed_with_the_tail_of_its_stderr(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any
) -> None:
    command = "for i in $(seq 1 50); do echo line-$i >&2; done; echo 'disk full' >&2; exit 3"
    report = run(make_executor(), activity, shell_task(command, attempt=1))

    assert report["status"] == "FAILED"
    assert report["error"] == COMMAND_FAILED
    cause = report["cause"]
    assert cause.startswith(f"command failed with exit code 3 (logs: {LOG_PREFIX}/Attempt=2/stderr)")
    assert cause.endswith("disk full")
    assert "line-50" in cause and "line-10\n" not in cause  # only the tail
    assert "disk full" in s3_text(s3, f"{LOG_PREFIX}/Attempt=2/stderr")


def test_script_arguments_are_the_positional_parameters(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any
) -> None:
    report = run(make_executor(), activity, shell_task('echo "$1-$2"', scriptArgument=["first", "second"]))
    assert s3_text(s3, report["output"]["stdout"]) == "first-second\n"


def test_a_script_from_s3_runs_with_its_arguments(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any
) -> None:
    s3.put_object(Bucket=DATA_BUCKET, Key="scripts/greet.sh", Body=b'echo "hello $1" > greeting.txt\n')
    executor = make_executor()
    report = run(
        executor, activity, shell_task(None, scriptUri=f"s3://{DATA_BUCKET}/scripts/greet.sh", scriptArgument=["wg"])
    )
    assert report["status"] == "SUCCEEDED"
    greeting = next(executor.output_dir.rglob("greeting.txt"))
    assert greeting.read_text() == "hello wg\n"


def test_a_missing_script_fails_as_staging_not_as_a_command(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity
) -> None:
    report = run(make_executor(), activity, shell_task(None, scriptUri=f"s3://{DATA_BUCKET}/scripts/missing.sh"))
    assert report["error"] == STAGING_FAILED
    assert f"s3://{DATA_BUCKET}/scripts/missing.sh" in report["cause"]


def test_staging_brings_inputs_down_and_pushes_outputs_up(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any
) -> None:
    s3.put_object(Bucket=DATA_BUCKET, Key="in/part-0.txt", Body=b"b\na\n")
    s3.put_object(Bucket=DATA_BUCKET, Key="in/sub/part-1.txt", Body=b"c\n")
    command = (
        'cat "$INPUT1_STAGING_DIR"/part-0.txt "$INPUT1_STAGING_DIR"/sub/part-1.txt | sort > "$OUTPUT1_STAGING_DIR"/all'
    )
    payload = shell_task(command, stage=True, input=[f"s3://{DATA_BUCKET}/in/"], output=[f"s3://{DATA_BUCKET}/out"])
    report = run(make_executor(), activity, payload)

    assert report["status"] == "SUCCEEDED", report
    assert report["output"]["output"] == [f"s3://{DATA_BUCKET}/out/all"]
    assert s3_text(s3, f"s3://{DATA_BUCKET}/out/all") == "a\nb\nc\n"


def test_outputs_are_not_pushed_when_the_command_fails(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any
) -> None:
    payload = shell_task(
        'echo partial > "$OUTPUT1_STAGING_DIR"/x; exit 1', stage=True, output=[f"s3://{DATA_BUCKET}/out/"]
    )
    report = run(make_executor(), activity, payload)
    assert report["error"] == COMMAND_FAILED
    assert s3.list_objects_v2(Bucket=DATA_BUCKET, Prefix="out/").get("KeyCount") == 0


def test_a_task_that_breaks_the_contract_is_failed_with_the_field_named(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity
) -> None:
    report = run(make_executor(), activity, json.dumps({"type": "ShellCommandActivity", "command": "true"}))
    assert report == {"status": "FAILED", "error": INVALID_TASK, "cause": report["cause"]}
    assert "field 'workflow'" in report["cause"]


def test_heartbeats_keep_a_long_command_alive(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity
) -> None:
    # heartbeatSeconds 1 asks for a heartbeat every third of a second, whatever the runner's own interval.
    report = run(make_executor(heartbeat_interval=60), activity, shell_task("sleep 1.2", heartbeatSeconds=1))
    assert report["status"] == "SUCCEEDED"
    assert 2 <= len(activity.heartbeats) <= 5


def test_a_task_that_step_functions_gave_up_is_killed_and_not_reported(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, tmp_path: Path
) -> None:
    executor = make_executor(heartbeat_interval=0.1)
    token = activity.add_task(shell_task("sleep 30; touch finished"))
    task = activity.get_activity_task(activityArn=ACTIVITY_ARN, workerName="runner-a")
    activity.gone.add(token)
    started = time.monotonic()
    outcome = executor.execute(RunningTask(token=token), task["input"])
    assert outcome == "abandoned"
    assert time.monotonic() - started < 5
    assert not activity.reported(token)
    assert not list(executor.output_dir.rglob("finished"))


def test_an_interrupted_task_is_killed_with_its_children_and_reported_interrupted(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity
) -> None:
    executor = make_executor()
    token = activity.add_task(shell_task("(sleep 30; touch child-survived) & sleep 30"))
    task = activity.get_activity_task(activityArn=ACTIVITY_ARN, workerName="runner-a")
    running = RunningTask(token=token)
    worker = threading.Thread(target=executor.execute, args=(running, task["input"]))
    worker.start()
    deadline = time.monotonic() + 5
    while running.process is None and time.monotonic() < deadline:
        time.sleep(0.02)
    running.interrupt()
    worker.join(timeout=5)
    assert not worker.is_alive()

    report = activity.report(token)
    assert report["error"] == RUNNER_INTERRUPTED
    assert "runner-a was stopped while the command ran" in report["cause"]
    assert running.process is not None
    assert live_members_of_group(running.process.pid) == []  # the background child was killed too


def live_members_of_group(pgid: int) -> list[int]:
    """Processes of a process group that are not zombies (a zombie waits for a reaper, it runs nothing)."""
    time.sleep(0.2)  # SIGKILL is delivered asynchronously
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def test_a_log_bucket_that_refuses_uploads_does_not_lose_the_report(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity
) -> None:
    executor = make_executor(log_destination=S3Location("bucket-that-does-not-exist", "taskrunner/"))
    report = run(executor, activity, shell_task("echo still here"))
    assert report["status"] == "SUCCEEDED"
    stdout = Path(report["output"]["stdout"])  # the local file stands in for the upload that failed
    assert stdout.read_text() == "still here\n"


def test_a_script_that_cannot_start_fails_as_a_command_with_the_reason(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any
) -> None:
    s3.put_object(Bucket=DATA_BUCKET, Key="scripts/odd.sh", Body=b"#!/no/such/interpreter\necho hi\n")
    report = run(make_executor(), activity, shell_task(None, scriptUri=f"s3://{DATA_BUCKET}/scripts/odd.sh"))
    assert report["error"] == COMMAND_FAILED
    assert report["cause"].startswith("command could not start: No such file or directory (logs: s3://")


def test_large_logs_go_up_through_the_transfer_manager(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("datapipe.taskrunner.runner.SINGLE_PUT_BYTES", 4)  # so that a short line counts as large
    report = run(make_executor(), activity, shell_task("echo 'a longer line than four bytes'"))
    assert s3_text(s3, report["output"]["stdout"]) == "a longer line than four bytes\n"
