"""`datapipe taskrunner`: bad input gets one line and a non-zero exit; signals stop a serving runner as documented."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from datapipe.cli import cli
from datapipe.taskrunner.cli import ServeOptions, choose_credentials, serve
from datapipe.taskrunner.contract import RUNNER_INTERRUPTED, S3Location
from tests.taskrunner.conftest import ACTIVITY_ARN, LOG_BUCKET, PRINCIPAL, FakeActivity, shell_task


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, ["taskrunner", *args])


def one_line_error(result: Any) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return str(lines[0])


@pytest.fixture()
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Error: --worker-group (--workerGroup) is required"),
        (("--workerGroup", "wg/../x"), "Error: --worker-group must be up to 28 letters"),
        (("--workerGroup=wg-12345", "--tasks", "0"), "Error: --tasks must be more than 0 and at most 64, got 0"),
        (("--workerGroup=wg-12345", "--tasks", "two"), "Error: --tasks must be a number, got 'two'"),
        (("--workerGroup=wg-12345", "--tasks", "1.5"), "Error: --tasks must be a whole number, got '1.5'"),
        (("--workerGroup=wg-12345", "--accessId", "AKIDEXAMPLE"), "Error: --accessId and --secretKey go together"),
        (("--workerGroup=wg-12345", "--logUri", "/var/log/x"), "Error: --log-uri must be s3://bucket/prefix"),
        (("--workerGroup=wg-12345", "--config", "/nonexistent/credentials.json"), "Error: --config: cannot read"),
        (("--workerGroup=wg-12345", "--keepAttempts", "-1"), "Error: --keep-attempts must be a whole number from 0"),
        (("--workerGroup=wg-12345", "--keepAttempts", "two"), "Error: --keep-attempts must be a whole number from 0"),
        (("--workerGroup=wg-12345", "--taskRoleArn", "my-role"), "Error: --task-role-arn must be an IAM role ARN"),
        (
            (
                "--workerGroup=wg-12345",
                "--taskRoleArn",
                "arn:aws:iam::123456789012:role/r",
                "--task-role-duration",
                "60",
            ),
            "Error: --task-role-duration must be a whole number of seconds from 900 to 43200",
        ),
    ],
)
def test_bad_options_get_one_line_naming_the_option(args: tuple[str, ...], message: str) -> None:
    assert one_line_error(invoke(*args)).startswith(message)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("access-id: x", "is not JSON"),
        ('["access-id"]', "must hold a JSON object"),
        ('{"access-id": "AKIDEXAMPLE"}', "needs both 'access-id' and 'private-key'"),
        ('{"access-id": "AKIDEXAMPLE", "private-key": ""}', "'private-key' in"),
    ],
)
def test_a_bad_credentials_file_is_named(tmp_path: Path, content: str, message: str) -> None:
    credentials = tmp_path / "credentials.json"
    credentials.write_text(content)
    line = one_line_error(invoke("--workerGroup=wg-12345", "--config", str(credentials)))
    assert line.startswith("Error: --config: ")
    assert message in line
    assert str(credentials) in line


def test_an_unknown_activity_is_named_with_its_worker_group(aws: None, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({"access-id": "AKIDEXAMPLE", "private-key": "very-secret-value"}))
    credentials.chmod(0o600)
    result = invoke(
        "--workerGroup=wg-404", "--region=eu-west-1", "--config", str(credentials), "--output", str(tmp_path)
    )
    line = one_line_error(result)
    assert line == (
        "Error: activity arn:aws:states:eu-west-1:123456789012:activity:datapipe-dev-activity-wg-404 of worker group "
        "'wg-404' does not exist: deploy the WorkerGroups stack with this worker group, or check --worker-group, "
        "--stage and --region"
    )
    assert "very-secret-value" not in result.output


def test_an_existing_activity_passes_the_checks_in_its_stage(aws: None) -> None:
    """The control for the test above: with the activity deployed the runner gets as far as polling it."""
    from datapipe.taskrunner.cli import Credentials, check_activity, make_clients

    boto3.client("stepfunctions", region_name="eu-west-1").create_activity(name="datapipe-test-activity-wg-1")
    clients = make_clients(credentials=Credentials(), region="eu-west-1", endpoint=None, tasks=2)
    check_activity(clients, "arn:aws:states:eu-west-1:123456789012:activity:datapipe-test-activity-wg-1", "wg-1")


# ---------------------------------------------------------------------------------------------------------------------
# Serving, stopped by real signals


def serve_in_main_thread(tmp_path: Path, activity: FakeActivity, s3: Any) -> int:
    options = ServeOptions(
        worker_group="wg-12345",
        runner_id="runner-a",
        principal=PRINCIPAL,
        output_dir=tmp_path / "output",
        tasks=2,
        heartbeat_interval=5,
        log_upload_interval=3600,
    )
    destination = S3Location(LOG_BUCKET, "taskrunner/")
    return serve(options, sfn=activity, s3=s3, activity_arn=ACTIVITY_ARN, log_destination=destination)


def signal_later(steps: list[tuple[Any, ...]]) -> threading.Thread:
    """Run (wait-for-callable, timeout) or ("signal",) steps in a thread, signalling this process."""

    def run() -> None:
        for step in steps:
            if step[0] == "signal":
                os.kill(os.getpid(), signal.SIGTERM if len(step) == 1 else step[1])
            else:
                step[0]()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def runner_log_keys(s3: Any) -> list[str]:
    listing = s3.list_objects_v2(Bucket=LOG_BUCKET, Prefix=f"taskrunner/wg-12345/{PRINCIPAL}/runners/runner-a/")
    return [item["Key"] for item in listing.get("Contents", [])]


def test_sigterm_lets_the_task_finish_backs_up_logs_and_exits_zero(
    tmp_path: Path, activity: FakeActivity, s3: Any
) -> None:
    token = activity.add_task(shell_task("sleep 0.5; mkdir new-directory"))
    signal_later([(lambda: time.sleep(0.2),), ("signal",)])

    code = serve_in_main_thread(tmp_path, activity, s3)

    assert code == 0
    assert activity.report(token)["status"] == "SUCCEEDED"
    assert list((tmp_path / "output").rglob("new-directory"))
    keys = runner_log_keys(s3)
    assert len(keys) == 1 and keys[0].split("/")[-1].startswith("TaskRunner.log.")
    text = s3.get_object(Bucket=LOG_BUCKET, Key=keys[0])["Body"].read().decode()
    assert "received SIGTERM" in text and "stopped (clean)" in text


def test_a_second_signal_kills_the_command_reports_it_and_exits_non_zero(
    tmp_path: Path, activity: FakeActivity, s3: Any
) -> None:
    token = activity.add_task(shell_task("sleep 30"))
    signal_later(
        [
            (lambda: time.sleep(0.5),),
            ("signal", signal.SIGINT),
            (lambda: time.sleep(0.3),),
            ("signal", signal.SIGTERM),
        ]
    )

    code = serve_in_main_thread(tmp_path, activity, s3)

    assert code == 1
    assert activity.report(token)["error"] == RUNNER_INTERRUPTED
    text = s3.get_object(Bucket=LOG_BUCKET, Key=runner_log_keys(s3)[0])["Body"].read().decode()
    assert "killing 1 running command(s)" in text


def test_command_line_keys_take_precedence_over_the_credentials_file(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials.json"
    credentials.write_text(
        json.dumps(
            {"access-id": "FROMFILE", "private-key": "file-secret", "region": "eu-west-1", "log-uri": "s3://b/p"}
        )
    )
    from_file = choose_credentials(credentials, None, None)
    assert (from_file.access_key_id, from_file.secret_access_key, from_file.region) == (
        "FROMFILE",
        "file-secret",
        "eu-west-1",
    )
    overridden = choose_credentials(credentials, "FROMFLAGS", "flag-secret")
    assert (overridden.access_key_id, overridden.secret_access_key) == ("FROMFLAGS", "flag-secret")
    assert (overridden.region, overridden.log_uri) == ("eu-west-1", "s3://b/p")  # the file's other settings stay
    assert choose_credentials(None, None, None).access_key_id is None  # the default chain


def test_a_secret_key_on_the_command_line_works_but_warns(aws: None, tmp_path: Path) -> None:
    result = invoke(
        "--workerGroup=wg-404",
        "--region=eu-west-1",
        "--accessId",
        "AKIDEXAMPLE",
        "--secretKey",
        "very-secret-value",
        "--output",
        str(tmp_path),
    )
    assert result.exit_code == 2  # it went as far as looking the activity up, with those keys
    first, second = result.stderr.strip().splitlines()
    assert first.startswith("Warning: --secretKey on the command line can be read by every process of this machine")
    assert second.startswith("Error: activity arn:aws:states:eu-west-1:123456789012:activity:datapipe-dev-activity")
    assert "very-secret-value" not in result.output


def test_a_credentials_file_others_can_read_is_warned_about(aws: None, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({"access-id": "AKIDEXAMPLE", "private-key": "very-secret-value"}))
    credentials.chmod(0o644)
    result = invoke(
        "--workerGroup=wg-404", "--region=eu-west-1", "--config", str(credentials), "--output", str(tmp_path)
    )
    assert result.stderr.splitlines()[0] == f"Warning: --config: {credentials} can be read by other users; chmod 600 it"
