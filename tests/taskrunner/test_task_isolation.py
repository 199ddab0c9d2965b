"""What a task may touch: only its attempt folder, no runner keys, its own log keys; its processes end with it."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from datapipe.taskrunner.contract import COMMAND_FAILED, SECRET_UNAVAILABLE, STAGING_FAILED
from datapipe.taskrunner.environment import TaskRole, mask_file
from datapipe.taskrunner.processes import process_table
from datapipe.taskrunner.runner import Retention, RunningTask, TaskExecutor
from tests.taskrunner.conftest import (
    ACTIVITY_ARN,
    DATA_BUCKET,
    LOG_BUCKET,
    PRINCIPAL,
    FakeActivity,
    s3_text,
    shell_task,
)
from tests.taskrunner.test_task_executor import LOG_PREFIX, run

# ---------------------------------------------------------------------------------------------------------------------
# Stage-in and stage-out stay in the attempt folder


@pytest.mark.parametrize("relative", ["/tmp/escaped-{n}", "../../../../escaped-{n}", "a/../../escaped-{n}"])
def test_an_input_key_that_leads_out_of_the_attempt_folder_fails_the_task_naming_the_key(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any, tmp_path: Path, relative: str
) -> None:
    # `in//tmp/x` was written to /tmp/x on the host; a key with `..` must not climb out either.
    target = relative.format(n=os.getpid())
    s3.put_object(Bucket=DATA_BUCKET, Key=f"in/{target}", Body=b"planted")
    s3.put_object(Bucket=DATA_BUCKET, Key="in/fine.txt", Body=b"ok")
    executor = make_executor()
    report = run(executor, activity, shell_task("touch ran", stage=True, input=[f"s3://{DATA_BUCKET}/in/"]))

    assert report["error"] == STAGING_FAILED
    assert report["cause"].startswith(f"s3://{DATA_BUCKET}/in/{target} would be written outside the attempt folder")
    assert not Path(f"/tmp/escaped-{os.getpid()}").exists()
    assert [p.name for p in tmp_path.rglob(f"escaped-{os.getpid()}")] == []
    assert not list(executor.output_dir.rglob("ran"))  # the command never ran


def test_stage_out_does_not_follow_a_link_out_of_the_attempt_folder(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any, tmp_path: Path
) -> None:
    private = tmp_path / "host-private.txt"
    private.write_text("host secret")
    command = f'echo result > "$OUTPUT1_STAGING_DIR/part"; ln -s {private} "$OUTPUT1_STAGING_DIR/leak"'
    payload = shell_task(command, stage=True, output=[f"s3://{DATA_BUCKET}/out/"])
    report = run(make_executor(), activity, payload)

    assert report["error"] == STAGING_FAILED
    assert report["cause"].startswith(f"output1/leak is a link to {private}, outside the attempt folder")
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=DATA_BUCKET, Prefix="out/").get("Contents", [])]
    assert "out/leak" not in keys


def test_a_link_inside_the_attempt_folder_is_staged_as_its_file(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any
) -> None:
    command = 'echo inside > ../kept.txt; ln -s ../kept.txt "$OUTPUT1_STAGING_DIR/copy"'  # cwd is work/
    payload = shell_task(command, stage=True, output=[f"s3://{DATA_BUCKET}/out/"])
    report = run(make_executor(), activity, payload)
    assert report["status"] == "SUCCEEDED", report
    assert s3_text(s3, f"s3://{DATA_BUCKET}/out/copy") == "inside\n"


# ---------------------------------------------------------------------------------------------------------------------
# Keys: the task never gets the runner's own


RUNNER_KEYS = {"AWS_ACCESS_KEY_ID": "AKIARUNNEROWNKEY0001", "AWS_SECRET_ACCESS_KEY": "runner-own-secret-key"}


def test_a_task_never_sees_the_runners_keys_from_its_environment(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any
) -> None:
    environ = {**os.environ, **RUNNER_KEYS, "AWS_SESSION_TOKEN": "runner-token"}
    report = run(make_executor(environ=environ), activity, shell_task("env"))
    printed = s3_text(s3, report["output"]["stdout"])
    for value in (*RUNNER_KEYS.values(), "runner-token"):
        assert value not in printed
    assert "AWS_ACCESS_KEY_ID=" not in printed and "DATAPIPE_WORKER_GROUP=wg-12345" in printed


def test_with_a_task_role_a_task_gets_that_roles_short_lived_keys_only(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any
) -> None:
    iam = boto3.client("iam", region_name="eu-west-1")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "*"}]}
    role = iam.create_role(RoleName="task-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    sts = boto3.client("sts", region_name="eu-west-1")
    executor = make_executor(environ={**os.environ, **RUNNER_KEYS}, sts=sts, task_role=TaskRole(arn=role))
    report = run(executor, activity, shell_task("env"))

    printed = dict(line.split("=", 1) for line in s3_text(s3, report["output"]["stdout"]).splitlines() if "=" in line)
    assert printed["AWS_ACCESS_KEY_ID"].startswith("ASIA")  # temporary keys of an assumed role
    assert printed["AWS_ACCESS_KEY_ID"] != RUNNER_KEYS["AWS_ACCESS_KEY_ID"]
    assert printed["AWS_SESSION_TOKEN"]
    assert RUNNER_KEYS["AWS_SECRET_ACCESS_KEY"] not in printed.values()
    who = boto3.client(
        "sts",
        region_name="eu-west-1",
        aws_access_key_id=printed["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=printed["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=printed["AWS_SESSION_TOKEN"],
    ).get_caller_identity()
    assert who["Arn"].startswith("arn:aws:sts::123456789012:assumed-role/task-role/runner-a")


# ---------------------------------------------------------------------------------------------------------------------
# environment and secrets fields


def test_environment_values_are_data_never_shell_code(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any
) -> None:
    hostile = "x; touch injected $(touch injected2) `touch injected3`"
    executor = make_executor()
    report = run(executor, activity, shell_task('mkdir -- "$NAME" && ls', environment={"NAME": hostile}))
    assert report["status"] == "SUCCEEDED", report
    assert s3_text(s3, report["output"]["stdout"]) == hostile + "\n"
    assert not [p for p in executor.output_dir.rglob("injected*")]


@pytest.fixture()
def secrets(s3: Any) -> Iterator[tuple[Any, Any]]:
    """Secrets Manager and SSM, in the same moto as the S3 fixture."""
    sm = boto3.client("secretsmanager", region_name="eu-west-1")
    ssm = boto3.client("ssm", region_name="eu-west-1")
    sm.create_secret(Name="db/password", SecretString="s3cr3t-Pa55")
    ssm.put_parameter(Name="/prod/token", Value="tok-123456", Type="SecureString")
    yield sm, ssm


def test_secrets_reach_the_command_and_no_log_output_or_cause(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any, secrets: tuple[Any, Any]
) -> None:
    sm, ssm = secrets
    executor = make_executor(secrets_manager=sm, ssm=ssm)
    command = (
        'test "$DB_PASSWORD" = s3cr3t-Pa55 && test "$TOKEN" = tok-123456 && echo "got $DB_PASSWORD"; '
        'echo "token $TOKEN" >&2; exit 4'
    )
    report = run(
        executor, activity, shell_task(command, secrets={"DB_PASSWORD": "db/password", "TOKEN": "ssm:/prod/token"})
    )

    assert report["error"] == COMMAND_FAILED
    assert report["cause"].endswith("token ***")
    assert s3_text(s3, f"{LOG_PREFIX}/Attempt=1/stdout") == "got ***\n"
    attempt = executor.output_dir / "tasks/wg-12345/datapipe-dev-create-directory/CreateDirectory/run-1/Attempt=1"
    for path in attempt.rglob("*"):
        if path.is_file():
            assert b"s3cr3t-Pa55" not in path.read_bytes() and b"tok-123456" not in path.read_bytes()
    assert "s3cr3t" not in json.dumps(report)


def test_a_secret_that_cannot_be_read_fails_the_task_naming_the_variable(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, secrets: tuple[Any, Any]
) -> None:
    sm, ssm = secrets
    executor = make_executor(secrets_manager=sm, ssm=ssm)
    report = run(executor, activity, shell_task("touch ran", secrets={"API_KEY": "no/such/secret"}))
    assert report["error"] == SECRET_UNAVAILABLE
    assert report["cause"].startswith("cannot read the secret of API_KEY (no/such/secret): ResourceNotFoundException")
    assert not list(executor.output_dir.rglob("ran"))


def test_masking_finds_a_value_across_chunk_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("datapipe.taskrunner.environment._CHUNK", 7)
    path = tmp_path / "log"
    path.write_bytes(b"a-SECRET-b SECRETSECRET\nline2-part c SEC")
    mask_file(path, [b"line2-part", b"SECRET"])
    assert path.read_bytes() == b"a-***-b ******\n*** c SEC"


# ---------------------------------------------------------------------------------------------------------------------
# Logs: each attempt's own keys, never overwritten


def test_attempt_logs_never_overwrite_an_existing_object(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any
) -> None:
    key = f"taskrunner/wg-12345/{PRINCIPAL}/attempts/datapipe-dev-create-directory/CreateDirectory/run-1/Attempt=1"
    s3.put_object(Bucket=LOG_BUCKET, Key=f"{key}/stdout", Body=b"an earlier run's log")
    report = run(make_executor(), activity, shell_task("echo new"))
    assert report["status"] == "SUCCEEDED"
    assert s3_text(s3, f"s3://{LOG_BUCKET}/{key}/stdout") == "an earlier run's log"
    assert Path(report["output"]["stdout"]).read_text() == "new\n"  # kept on the host, named in the result
    assert report["output"]["stderr"] == f"s3://{LOG_BUCKET}/{key}/stderr"


# ---------------------------------------------------------------------------------------------------------------------
# The whole process tree ends with the task


def marked_processes(word: str) -> list[int]:
    return [info.pid for info in process_table().values() if word in info.command and info.state != "Z"]


def test_a_setsid_child_does_not_outlive_its_task(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any
) -> None:
    # `sleep 1001` in a session of its own: a kill of the command's process group cannot reach it.
    report = run(make_executor(), activity, shell_task("setsid sleep 1001 & setsid sh -c 'sleep 1002' & sleep 0.3"))
    assert report["status"] == "SUCCEEDED"
    assert marked_processes("sleep 1001") == [] and marked_processes("sleep 1002") == []
    stderr = s3_text(s3, report["output"]["stderr"])
    assert "[datapipe taskrunner] ended 3 process(es) the task left running:" in stderr  # sh, and its sleep
    assert "(sleep 1001)" in stderr


def test_a_task_given_up_by_step_functions_ends_its_setsid_children(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, s3: Any
) -> None:
    executor = make_executor(heartbeat_interval=0.1)
    token = activity.add_task(shell_task("setsid sleep 1003 & sleep 30"))
    task = activity.get_activity_task(activityArn=ACTIVITY_ARN, workerName="runner-a")
    running = RunningTask(token=token)
    worker = threading.Thread(target=executor.execute, args=(running, task["input"]))
    worker.start()
    deadline = time.monotonic() + 5
    while not marked_processes("sleep 1003") and time.monotonic() < deadline:
        time.sleep(0.05)
    activity.gone.add(token)  # the task timed out: the next heartbeat learns it
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert marked_processes("sleep 1003") == []
    stderr = s3_text(s3, f"{LOG_PREFIX}/Attempt=1/stderr")
    assert "ended" in stderr and "(sleep 1003)" in stderr


# ---------------------------------------------------------------------------------------------------------------------
# Attempt folders: kept, the last N, or removed on success


def attempts_on_disk(executor: TaskExecutor) -> list[str]:
    return sorted(p.parent.name for p in executor.tasks_dir.glob("*/*/*/Attempt=*"))


def test_keep_attempts_keeps_the_last_n_folders(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity
) -> None:
    executor = make_executor(retention=Retention(keep_attempts=2))
    for number in range(1, 5):
        run(executor, activity, shell_task("head -c 100000 /dev/zero > big", execution=f"run-{number}"))
    assert attempts_on_disk(executor) == ["run-3", "run-4"]


def test_remove_on_success_keeps_only_failed_attempts(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity
) -> None:
    executor = make_executor(retention=Retention(remove_on_success=True))
    assert run(executor, activity, shell_task("true", execution="ok"))["status"] == "SUCCEEDED"
    assert run(executor, activity, shell_task("exit 1", execution="broken"))["status"] == "FAILED"
    assert attempts_on_disk(executor) == ["broken"]


def test_by_default_every_attempt_folder_stays(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity
) -> None:
    executor = make_executor()
    for name in ("one", "two", "three"):
        run(executor, activity, shell_task("true", execution=name))
    assert attempts_on_disk(executor) == ["one", "three", "two"]


def test_without_proc_a_task_still_runs_and_its_group_is_the_tree(
    make_executor: Callable[..., TaskExecutor], activity: FakeActivity, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("datapipe.taskrunner.processes.PROC", tmp_path / "no-proc")
    report = run(make_executor(), activity, shell_task("echo fine"))
    assert report["status"] == "SUCCEEDED", report
