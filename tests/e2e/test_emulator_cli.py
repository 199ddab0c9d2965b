"""`datapipe local up` and `datapipe demo` as a user runs them: real processes, real signals, the AWS CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from datapipe.cli import cli
from datapipe.local.assembly import read_assembly
from datapipe.local.server import CLEARED_VARIABLES

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
PROJECT_DIR = Path(__file__).resolve().parents[2]
SEED_STATES = (
    "Should_Create_Cluster",
    "Create_A_Cluster",
    "Merge_Results",
    "Enable_Termination_Protection",
    "Add_Steps_Parallel",
    "Step_One",
    "Wait_10_Seconds",
    "Step_Two (async)",
    "Wait_Another_10_Seconds",
    "Cancel_Step_Two",
    "Step_Three",
    "Disable_Termination_Protection",
    "Should_Terminate_Cluster",
    "Terminate_Cluster",
    "Wrapping_Up",
)
# The states every run with {"CreateCluster": true, "TerminateCluster": true} passes through, in this order.
MAIN_PATH = (
    "Should_Create_Cluster",
    "Create_A_Cluster",
    "Merge_Results",
    "Enable_Termination_Protection",
    "Add_Steps_Parallel",
    "Step_Three",
    "Disable_Termination_Protection",
    "Should_Terminate_Cluster",
    "Terminate_Cluster",
    "Wrapping_Up",
)


class Running:
    """A `datapipe` process whose output is read line by line while it runs."""

    def __init__(self, arguments: list[str], *, cwd: Path, env: dict[str, str], columns: int = 200) -> None:
        self.process = subprocess.Popen(
            [str(BIN / "datapipe"), *arguments],
            cwd=cwd,
            env={**env, "COLUMNS": str(columns)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []

    def wait_for_line(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"no line matching {pattern!r}; output so far:\n{''.join(self.lines)}")

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        output, _ = self.process.communicate(timeout=timeout)
        return self.process.returncode, "".join(self.lines) + output


@pytest.fixture()
def running() -> Iterator[list[Running]]:
    """Processes started by a test; any still alive at the end are killed (by their own id)."""
    started: list[Running] = []
    yield started
    for item in started:
        if item.process.poll() is None:
            item.process.kill()
            item.process.wait(timeout=10)


@pytest.fixture(scope="module")
def demo_run(assembly_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[str]]:
    """`datapipe demo --json`, started once for this module and early (the first test asks for it too): most of
    its half minute is the seed's Wait states, which then overlap the other tests instead of adding to them."""
    project = tmp_path_factory.mktemp("demo-project")
    for name in ("cdk.json", "app.py"):
        shutil.copy(PROJECT_DIR / name, project / name)
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL" and k not in CLEARED_VARIABLES}
    process = subprocess.Popen(
        [str(BIN / "datapipe"), "demo", "--assembly", str(assembly_dir), "--json"],
        cwd=project,
        env={**env, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield process
    if process.poll() is None:
        process.kill()
        process.communicate(timeout=10)


def aws_cli(endpoint: str, region: str, env: dict[str, str], *arguments: str) -> Any:
    result = subprocess.run(
        [str(BIN / "aws"), "--endpoint-url", endpoint, "--region", region, "--output", "json", *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_local_up_serves_the_app_until_interrupted(
    assembly_dir: Path,
    project_copy: Path,
    subprocess_env: dict[str, str],
    running: list[Running],
    demo_run: subprocess.Popen[str],
) -> None:
    # 80 columns and no terminal (a pipe): every stack name whole, one per line; internals only in the log file.
    up = Running(["local", "up", "--assembly", str(assembly_dir)], cwd=project_copy, env=subprocess_env, columns=80)
    running.append(up)
    endpoint = up.wait_for_line(r"export AWS_ENDPOINT_URL=(http://127\.0\.0\.1:\d+)").group(1)
    region = up.wait_for_line(r"export AWS_DEFAULT_REGION=(\S+)").group(1)
    up.wait_for_line(r"Ctrl-C stops the emulator")
    recorded = json.loads((project_copy / ".datapipe" / "local.json").read_text())
    assert recorded["endpointUrl"] == endpoint and recorded["pid"] == up.process.pid

    listed = aws_cli(endpoint, region, subprocess_env, "stepfunctions", "list-state-machines")["stateMachines"]
    workflow = next(m for m in listed if m["name"].endswith("-emr-workflow"))
    # `datapipe start` finds the emulator through the state file (no endpoint in its environment). The workflow
    # rejects an input without CreateCluster in its first state: a run with a short history.
    started = subprocess.run(
        [str(BIN / "datapipe"), "start", "emr-workflow", "--input", "{}", "--follow", "--json", "--poll", "0.2"],
        cwd=project_copy,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 1, started.stderr
    run = json.loads(started.stdout)
    assert run["status"] == "FAILED" and run["executionArn"].startswith(
        workflow["stateMachineArn"].replace(":stateMachine:", ":execution:")
    )
    events = aws_cli(
        endpoint,
        region,
        subprocess_env,
        "stepfunctions",
        "get-execution-history",
        "--execution-arn",
        run["executionArn"],
    )["events"]
    assert events[0]["type"] == "ExecutionStarted"
    assert events[-1]["type"] == "ExecutionFailed"

    second = subprocess.run(
        [str(BIN / "datapipe"), "local", "up", "--assembly", str(assembly_dir)],
        cwd=project_copy,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1
    assert second.stderr.startswith(f"Error: an emulator already runs for this project at {endpoint}")

    up.process.send_signal(signal.SIGINT)
    code, output = up.finish()
    assert code == 0, output
    assert "Emulator stopped." in output
    assert "Traceback" not in output
    for stack in read_assembly(assembly_dir).stacks:
        assert re.search(rf"^stack {re.escape(stack.stack_name)}: \d+ ", output, re.MULTILINE), output
    assert "…" not in output
    # The failed run's Fail state is logged by the interpreter: in the log file, not on the console.
    assert "Exception=" not in output and " object at 0x" not in output
    log = (project_copy / ".datapipe" / "local.log").read_text()
    assert "Exception=FailureEventException" in log
    assert not (project_copy / ".datapipe" / "local.json").exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(endpoint.rsplit(":", 1)[1])), timeout=1).close()


def test_local_up_json_reports_the_deployment_and_stops_on_sigterm(
    assembly_dir: Path, project_copy: Path, subprocess_env: dict[str, str], running: list[Running]
) -> None:
    up = Running(
        ["local", "up", "--assembly", str(assembly_dir), "--json", "--wait-scale", "0.05"],
        cwd=project_copy,
        env=subprocess_env,
    )
    running.append(up)
    report = json.loads(up.wait_for_line(r"^\{.*\}$").group(0))
    assert report["env"]["AWS_ENDPOINT_URL"] == report["endpointUrl"]
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION"} <= set(report["env"])
    stacks = {stack["stackName"]: stack for stack in report["deployment"]["stacks"]}
    assert any(name.endswith("-emr-workflow") for name in stacks)
    assert all(
        resource["status"] in ("created", "not emulated", "skipped")
        for s in stacks.values()
        for resource in s["resources"]
    )

    # --wait-scale 0.05: a state machine that waits 60 s runs in about 3 s.
    sfn = boto3.client(
        "stepfunctions",
        endpoint_url=report["endpointUrl"],
        region_name=report["env"]["AWS_REGION"],
        aws_access_key_id=report["env"]["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=report["env"]["AWS_SECRET_ACCESS_KEY"],
    )
    waiting = sfn.create_state_machine(
        name="waits-a-minute",
        definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 60, "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/waits-a-minute",  # moto's account; roles are not checked
    )["stateMachineArn"]
    started = time.monotonic()
    execution_arn = sfn.start_execution(stateMachineArn=waiting)["executionArn"]
    while sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING":
        assert time.monotonic() - started < 20, "the scaled 60-second Wait state is still waiting after 20 s"
        time.sleep(0.2)
    assert sfn.describe_execution(executionArn=execution_arn)["status"] == "SUCCEEDED"
    assert time.monotonic() - started >= 2.5  # scaled, not skipped

    up.process.send_signal(signal.SIGTERM)
    code, output = up.finish()
    assert code == 0, output


def test_local_up_on_a_taken_port_fails_with_one_line(
    assembly_dir: Path, project_copy: Path, subprocess_env: dict[str, str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(BIN / "datapipe"), "local", "up", "--assembly", str(assembly_dir), "--port", str(port)],
            cwd=project_copy,
            env=subprocess_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["local", "up", "--assembly", "no-such-folder"],
            "option '--assembly': no-such-folder is not a cloud assembly",
        ),
        (["local", "up", "--port", "70000"], "70000 is not in the range 0<=x<=65535"),
        (["local", "up", "--wait-scale", "-1"], "-1.0 is not in the range x>=0"),
        (["demo", "--assembly", "no-such-folder"], "option '--assembly': no-such-folder is not a cloud assembly"),
        (["demo", "--timeout", "0"], "0.0 is not in the range x>=1"),
    ],
)
def test_bad_options_fail_with_one_line(
    project_copy: Path, monkeypatch: pytest.MonkeyPatch, arguments: list[str], message: str
) -> None:
    monkeypatch.chdir(project_copy)
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_demo_without_the_emr_workflow_says_what_is_missing(
    assembly_dir: Path, project_copy: Path, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """An assembly with only the storage stack: the demo deploys it, then names the state machine it lacks."""
    partial = tmp_path / "storage-only"
    partial.mkdir()
    manifest = json.loads((assembly_dir / "manifest.json").read_text())
    keep = {"Storage", "Storage.assets"}
    manifest["artifacts"] = {k: v for k, v in manifest["artifacts"].items() if k in keep}
    (partial / "manifest.json").write_text(json.dumps(manifest))
    for name in ("Storage.template.json", "Storage.assets.json"):
        shutil.copy(assembly_dir / name, partial / name)
    result = subprocess.run(
        [str(BIN / "datapipe"), "demo", "--assembly", str(partial)],
        cwd=project_copy,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: workflow 'emr-workflow': no state machine named datapipe-dev-emr-workflow is deployed; deploy it first"
    )


def test_demo_runs_the_seed_workflow_to_success_and_terminates_its_cluster(
    demo_run: subprocess.Popen[str],
) -> None:
    stdout, stderr = demo_run.communicate(timeout=120)
    result = subprocess.CompletedProcess(demo_run.args, demo_run.returncode, stdout, stderr)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "SUCCEEDED"
    assert summary["clusterState"] == "TERMINATED"
    assert re.fullmatch(r"j-[A-Z0-9]+", summary["clusterId"])
    assert [(s["name"], s["state"]) for s in summary["steps"]] == [
        ("The first step", "COMPLETED"),
        ("The second step", "COMPLETED"),
        ("The third step", "COMPLETED"),
    ]
    # The seed waits 10 s twice; the run takes that plus the simulated cluster boot and steps.
    assert 20 <= summary["seconds"] < 40

    shown = result.stderr
    entered = re.findall(r"→ (.+)$", shown, flags=re.MULTILINE)
    assert set(SEED_STATES) <= set(entered), f"states never shown: {set(SEED_STATES) - set(entered)}"
    assert_in_order(entered, MAIN_PATH)
    assert_in_order(entered, ("Add_Steps_Parallel", "Step_One"))
    assert_in_order(entered, ("Wait_10_Seconds", "Step_Two (async)", "Wait_Another_10_Seconds", "Cancel_Step_Two"))
    assert re.search(rf"cluster {summary['clusterId']} (STARTING|BOOTSTRAPPING)", shown), "no progress while booting"
    assert "step The first step RUNNING" in shown, "no progress while steps run"
    assert f"Cluster {summary['clusterId']}, created by this run: TERMINATED" in shown
    assert "Execution SUCCEEDED" in shown
    assert "Traceback" not in shown


def assert_in_order(shown: list[str], expected: tuple[str, ...]) -> None:
    positions = [shown.index(state) for state in expected]
    assert positions == sorted(positions), f"states shown out of order: {[shown[i] for i in sorted(positions)]}"
