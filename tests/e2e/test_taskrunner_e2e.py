"""`datapipe taskrunner` as a real process against the emulator, with the whole app deployed.

The sample pipeline (the seed's CreateDirectory ShellCommandActivity on worker group wg-12345) is the producer. Its
command is fixed; tests that need another command deploy a copy of its definition with that command, as a
deployer would (deploying is the right that decides what runs; starting an execution is not).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datapipe.naming import Naming
from datapipe.taskrunner.processes import process_table
from stacks.worker_groups import SAMPLE_WORKFLOW
from tests.e2e.helpers import ended_execution, wait_for

pytestmark = pytest.mark.e2e

NAMING = Naming()
WORKER_GROUP = "wg-12345"


class Runner:
    """One `datapipe taskrunner` process with its own output folder."""

    def __init__(
        self,
        emulator: Any,
        env: dict[str, str],
        folder: Path,
        runner_id: str,
        *,
        via: str = "flag",
        options: tuple[str, ...] = (),
    ) -> None:
        self.folder = folder
        self.runner_id = runner_id
        folder.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable,
            "-m",
            "datapipe.cli",
            "taskrunner",
            f"--workerGroup={WORKER_GROUP}",
            "--region",
            emulator.region,
            "--taskrunnerId",
            runner_id,
            "--output",
            str(folder / "output"),
            *options,
        ]
        environment = dict(env)
        if via == "flag":
            args += ["--endpoint", emulator.endpoint_url]
        else:
            environment["AWS_ENDPOINT_URL"] = emulator.endpoint_url
        self.stderr_path = folder / "stderr.txt"
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(args, env=environment, stdout=subprocess.DEVNULL, stderr=stderr)

    def attempt_dir(self, execution: str, attempt: int, workflow: str = NAMING.state_machine(SAMPLE_WORKFLOW)) -> Path:
        return self.folder / f"output/tasks/{WORKER_GROUP}/{workflow}/CreateDirectory/{execution}/Attempt={attempt}"

    def stop(self, *signals: signal.Signals, pause: float = 0.3) -> int:
        for number in signals:
            self.process.send_signal(number)
            time.sleep(pause)
        return self.process.wait(timeout=20)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture()
def runners(emulator: Any, subprocess_env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    """Runner processes, killed at the end of the test. The long poll a dead runner leaves on the emulator ends
    as soon as its connection is closed (GetActivityTask hands no task to a worker that hung up)."""
    started: list[Runner] = []
    env = {**subprocess_env, **{k: v for k, v in emulator.env().items() if k != "AWS_ENDPOINT_URL"}}

    def start(runner_id: str, via: str = "flag", options: tuple[str, ...] = ()) -> Runner:
        runner = Runner(emulator, env, tmp_path / runner_id, runner_id, via=via, options=options)
        started.append(runner)
        return runner

    yield start
    for runner in started:
        runner.close()


def sample_arn(emulator: Any) -> str:
    return NAMING.state_machine_arn(SAMPLE_WORKFLOW, account=emulator.account, region=emulator.region)


def start(emulator: Any, state_machine_arn: str, execution_input: dict[str, Any]) -> tuple[str, str]:
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    arn = emulator.client("stepfunctions").start_execution(
        stateMachineArn=state_machine_arn, name=name, input=json.dumps(execution_input)
    )["executionArn"]
    return name, arn


def finished(emulator: Any, execution_arn: str, timeout: float = 30) -> dict[str, Any]:
    return ended_execution(emulator.client("stepfunctions"), execution_arn, timeout)


def s3_text(emulator: Any, uri: str) -> str:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return str(emulator.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode())


def log_bucket(emulator: Any) -> str:
    return NAMING.bucket("logs", emulator.account, emulator.region)


def runner_prefix(emulator: Any) -> str:
    """The log prefix of the runners' principal: `taskrunner/<group>/<aws:userid>/` (what the runner policy allows)."""
    principal = emulator.client("sts").get_caller_identity()["UserId"]
    return f"taskrunner/{WORKER_GROUP}/{principal}/"


def processes_running(word: str) -> list[int]:
    return [info.pid for info in process_table().values() if word in info.command and info.state != "Z"]


def test_a_runner_process_runs_the_sample_pipeline_and_backs_up_its_logs(emulator: Any, runners: Any) -> None:
    runner = runners("runner-seed")
    execution, execution_arn = start(emulator, sample_arn(emulator), {})

    described = finished(emulator, execution_arn)
    assert described["status"] == "SUCCEEDED", runner.stderr
    result = json.loads(described["output"])["CreateDirectory"]
    assert (runner.attempt_dir(execution, 1) / "work/new-directory").is_dir()
    assert result["exitCode"] == 0 and result["taskrunnerId"] == "runner-seed"
    attempt_logs = (
        f"{runner_prefix(emulator)}attempts/{NAMING.state_machine(SAMPLE_WORKFLOW)}/CreateDirectory/{execution}"
    )
    assert result["stdout"] == f"s3://{log_bucket(emulator)}/{attempt_logs}/Attempt=1/stdout"
    assert s3_text(emulator, result["stderr"]) == ""  # mkdir said nothing, and its (empty) log is in the bucket

    assert runner.stop(signal.SIGTERM) == 0, runner.stderr
    listing = emulator.client("s3").list_objects_v2(
        Bucket=log_bucket(emulator), Prefix=f"{runner_prefix(emulator)}runners/runner-seed/TaskRunner.log."
    )
    (runner_log,) = [item["Key"] for item in listing.get("Contents", [])]
    text = emulator.client("s3").get_object(Bucket=log_bucket(emulator), Key=runner_log)["Body"].read().decode()
    assert "task succeeded" in text and "stopped (clean)" in text


def test_the_sample_takes_a_directory_name_as_data(emulator: Any, runners: Any) -> None:
    runner = runners("runner-named")
    execution, execution_arn = start(emulator, sample_arn(emulator), {"directory": "reports-2026"})
    assert finished(emulator, execution_arn)["status"] == "SUCCEEDED", runner.stderr
    assert (runner.attempt_dir(execution, 1) / "work/reports-2026").is_dir()
    assert runner.stop(signal.SIGTERM) == 0


def test_an_input_carrying_a_command_or_shell_text_runs_nothing_else(emulator: Any, runners: Any) -> None:
    """Starting the sample used to run `command` from the input on the worker; now the input is only data."""
    runner = runners("runner-hostile")
    _, given_command = start(emulator, sample_arn(emulator), {"command": "touch pwned-by-command"})
    described = finished(emulator, given_command)
    assert described["status"] == "SUCCEEDED", runner.stderr  # the seed's mkdir ran, and only that
    assert list(runner.folder.rglob("new-directory")) and not list(runner.folder.rglob("pwned*"))

    hostile = "x; touch pwned-1 $(touch pwned-2) `touch pwned-3` && touch pwned-4"
    execution, shell_text = start(emulator, sample_arn(emulator), {"directory": hostile})
    described = finished(emulator, shell_text)
    assert described["status"] == "FAILED", runner.stderr
    assert described["error"] == "TaskRunner.CommandFailed"
    assert "exit code 2" in described["cause"]
    assert described["cause"].endswith(
        f"directory must be letters, digits, dots, dashes or underscores, got: {hostile}"
    )
    assert not list(runner.folder.rglob("pwned*"))
    assert [p.name for p in (runner.attempt_dir(execution, 1) / "work").iterdir()] == []

    _, not_text = start(emulator, sample_arn(emulator), {"directory": ["a", "b"]})
    described = finished(emulator, not_text)
    assert (described["status"], described["error"]) == ("FAILED", "InvalidInput")
    assert runner.stop(signal.SIGTERM) == 0


@pytest.fixture()
def quick_sample(emulator: Any) -> Iterator[Any]:
    """Deploys the sample's definition with another command (and optionally other task fields), a 2 s heartbeat
    timeout and 1 s between retries, as a second state machine; returns its name.

    The test need not wait for the default 60 s; the command is the deployer's to choose, never the input's.
    """
    sfn = emulator.client("stepfunctions")
    deployed = sfn.describe_state_machine(stateMachineArn=sample_arn(emulator))
    created = []

    def deploy(command: str, *, task_timeout: int | None = None, retries: bool = True, **fields: Any) -> str:
        definition = json.loads(deployed["definition"])
        task = definition["States"]["CreateDirectory"]
        task["HeartbeatSeconds"] = task["Parameters"]["heartbeatSeconds"] = 2
        task["Parameters"]["command"] = command
        task["Parameters"].update(fields)
        if task_timeout is not None:
            task["TimeoutSeconds"] = task_timeout
        for retry in task["Retry"]:
            retry["IntervalSeconds"] = 1
        if not retries:
            del task["Retry"]
        name = f"{NAMING.state_machine(SAMPLE_WORKFLOW)}-quick-{uuid.uuid4().hex[:6]}"
        definition_text = json.dumps(definition)
        created.append(sfn.create_state_machine(name=name, definition=definition_text, roleArn=deployed["roleArn"]))
        return name

    yield deploy
    for machine in created:
        sfn.delete_state_machine(stateMachineArn=machine["stateMachineArn"])


def quick_arn(emulator: Any, name: str) -> str:
    return f"arn:aws:states:{emulator.region}:{emulator.account}:stateMachine:{name}"


def test_a_killed_runners_task_goes_to_another_runner_after_the_heartbeat_timeout(
    emulator: Any, runners: Any, quick_sample: Any
) -> None:
    first = runners("runner-killed")
    machine = quick_sample("sleep 2; mkdir handed-over")
    execution, execution_arn = start(emulator, quick_arn(emulator, machine), {})
    # A short interval: the test acts on the task while it runs.
    wait_for(
        "the first runner to start the task",
        lambda: first.attempt_dir(execution, 1, machine).exists(),
        interval=0.05,
    )
    first.process.kill()  # SIGKILL: no report, no more heartbeats
    first.process.wait()

    second = runners("runner-second", via="environment")  # AWS_ENDPOINT_URL instead of --endpoint
    described = finished(emulator, execution_arn, timeout=30)

    assert described["status"] == "SUCCEEDED", second.stderr
    result = json.loads(described["output"])["CreateDirectory"]
    assert (result["taskrunnerId"], result["attempt"]) == ("runner-second", 2)
    assert (second.attempt_dir(execution, 2, machine) / "work/handed-over").is_dir()
    history = emulator.client("stepfunctions").get_execution_history(executionArn=execution_arn)["events"]
    assert "ActivityTimedOut" in [event["type"] for event in history]
    assert second.stop(signal.SIGTERM) == 0


def test_a_second_signal_kills_the_command_and_step_functions_retries_it_elsewhere(
    emulator: Any, runners: Any, quick_sample: Any
) -> None:
    first = runners("runner-stopped")
    machine = quick_sample("setsid sleep 1011 & sleep 30")  # a child in a session of its own, too
    execution, execution_arn = start(emulator, quick_arn(emulator, machine), {})
    # A short interval: the test acts on the task while it runs.
    wait_for("the task's setsid child to start", lambda: processes_running("sleep 1011"), interval=0.05)
    started = time.monotonic()
    assert first.stop(signal.SIGTERM, signal.SIGINT) == 1
    assert time.monotonic() - started < 10
    assert "stopped by a second signal" in first.stderr
    assert processes_running("sleep 1011") == []
    stderr = (first.attempt_dir(execution, 1, machine) / "stderr").read_text()
    assert "[datapipe taskrunner] ended" in stderr and "(sleep 1011)" in stderr

    history = emulator.client("stepfunctions").get_execution_history(executionArn=execution_arn)["events"]
    failures = [e["activityFailedEventDetails"] for e in history if e["type"] == "ActivityFailed"]
    assert [f["error"] for f in failures] == ["TaskRunner.Interrupted"]
    emulator.client("stepfunctions").stop_execution(executionArn=execution_arn)  # the retry waits for a runner


def test_a_worker_group_that_was_not_deployed_is_refused_in_one_line(
    emulator: Any, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**subprocess_env, **emulator.env()}
    result = subprocess.run(
        [sys.executable, "-m", "datapipe.cli", "taskrunner", "--workerGroup=wg-nobody", "--output", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: activity {NAMING.activity_arn('wg-nobody', account=emulator.account, region=emulator.region)} of "
        "worker group 'wg-nobody' does not exist: deploy the WorkerGroups stack with this worker group, or check "
        "--worker-group, --stage and --region"
    ]


def test_a_task_that_times_out_leaves_no_process_behind(emulator: Any, runners: Any, quick_sample: Any) -> None:
    runner = runners("runner-timeout")
    machine = quick_sample("setsid sleep 1012 & sleep 60", task_timeout=3, retries=False)
    execution, execution_arn = start(emulator, quick_arn(emulator, machine), {})
    described = finished(emulator, execution_arn, timeout=30)
    assert (described["status"], described.get("error")) == ("FAILED", "States.Timeout"), runner.stderr
    wait_for("the timed-out task's processes to end", lambda: not processes_running("sleep 1012"), timeout=10)
    stderr_file = runner.attempt_dir(execution, 1, machine) / "stderr"
    wait_for("the attempt log to say what was ended", lambda: "(sleep 1012)" in stderr_file.read_text(), timeout=10)
    assert runner.stop(signal.SIGTERM) == 0


def test_a_command_sees_neither_the_runners_keys_nor_a_secrets_value(
    emulator: Any, runners: Any, quick_sample: Any
) -> None:
    """The runner process has keys in its environment; the command prints its environment and a secret."""
    emulator.client("secretsmanager").create_secret(Name="e2e/db-password", SecretString="pa55-e2e-value")
    runner = runners("runner-keys")
    machine = quick_sample('env; echo "password: $DB_PASSWORD"', secrets={"DB_PASSWORD": "e2e/db-password"})
    _, execution_arn = start(emulator, quick_arn(emulator, machine), {})
    described = finished(emulator, execution_arn)
    assert described["status"] == "SUCCEEDED", runner.stderr
    printed = s3_text(emulator, json.loads(described["output"])["CreateDirectory"]["stdout"])
    assert "password: ***" in printed
    assert "pa55-e2e-value" not in printed and "pa55-e2e-value" not in described["output"]
    assert "AWS_SECRET_ACCESS_KEY" not in printed and "AWS_ACCESS_KEY_ID" not in printed
    history = emulator.client("stepfunctions").get_execution_history(executionArn=execution_arn)["events"]
    assert "pa55-e2e-value" not in json.dumps(history, default=str)
    assert runner.stop(signal.SIGTERM) == 0
    assert "pa55-e2e-value" not in runner.stderr


def zombie_children(pid: int) -> list[int]:
    return [info.pid for info in process_table().values() if info.parent == pid and info.state == "Z"]


def test_an_orphan_that_cleared_its_environment_still_ends_with_its_task(
    emulator: Any, runners: Any, quick_sample: Any
) -> None:
    """`env -i` drops the attempt's mark and the shell exits at once: the runner, a child subreaper, still holds the
    orphan and ends it. A failing task running beside it keeps its own exit code, and no zombie stays behind."""
    runner = runners("runner-subreaper")
    escaping = quick_sample("setsid env -i sleep 1014 & sleep 0.3; exit 0")  # ends before the first look
    failing = quick_sample("sleep 0.5; exit 3", retries=False)
    execution, escaping_arn = start(emulator, quick_arn(emulator, escaping), {})
    _, failing_arn = start(emulator, quick_arn(emulator, failing), {})

    assert finished(emulator, escaping_arn)["status"] == "SUCCEEDED", runner.stderr
    described = finished(emulator, failing_arn)
    assert (described["status"], described["error"]) == ("FAILED", "TaskRunner.CommandFailed")
    assert "exit code 3" in described["cause"]
    assert processes_running("sleep 1014") == []
    assert "(sleep 1014)" in (runner.attempt_dir(execution, 1, escaping) / "stderr").read_text()
    assert zombie_children(runner.process.pid) == []
    assert runner.stop(signal.SIGTERM) == 0


def test_keep_attempts_and_remove_on_success_limit_the_attempt_folders(emulator: Any, runners: Any) -> None:
    keeping = runners("runner-keeps-one", options=("--keepAttempts", "1"))
    first, first_arn = start(emulator, sample_arn(emulator), {"directory": "first"})
    assert finished(emulator, first_arn)["status"] == "SUCCEEDED", keeping.stderr
    second, second_arn = start(emulator, sample_arn(emulator), {"directory": "second"})
    assert finished(emulator, second_arn)["status"] == "SUCCEEDED", keeping.stderr
    # The folders are cleaned up right after the report, so the test waits for that moment.
    wait_for("the older attempt folder to go", lambda: not keeping.attempt_dir(first, 1).exists())
    assert (keeping.attempt_dir(second, 1) / "work/second").is_dir()
    assert keeping.stop(signal.SIGTERM) == 0

    removing = runners("runner-removes", options=("--removeOnSuccess",))
    succeeded, succeeded_arn = start(emulator, sample_arn(emulator), {"directory": "fine"})
    failed, failed_arn = start(emulator, sample_arn(emulator), {"directory": "../bad"})
    assert finished(emulator, succeeded_arn)["status"] == "SUCCEEDED", removing.stderr
    assert finished(emulator, failed_arn)["status"] == "FAILED", removing.stderr
    wait_for("the runner to finish both attempts", lambda: not removing.attempt_dir(succeeded, 1).exists())
    assert (removing.attempt_dir(failed, 1) / "stderr").read_text().startswith("directory must be letters")
    assert removing.stop(signal.SIGTERM) == 0
