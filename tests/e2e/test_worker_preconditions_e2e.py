"""A ShellCommandPrecondition on a worker group, answered by a real `datapipe taskrunner` process on the emulator.

Two imported pipelines, deployed as app.py groups pipelines (`add_pipeline_stacks`) under a stage of their own: each
has an activity on worker group wg-12345 gated by a shell precondition, which runs on that group, whose command
tests for a file, its path fixed in the definition. One runner serves both. Wait states run at 1/20 of their time:
a retryDelay of 1 minute takes 3 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datapipe.naming import Naming
from tests.e2e.helpers import ended_execution, start_execution, wait_for

pytestmark = pytest.mark.e2e

NAMING = Naming(stage="wprecond")
WORKER_GROUP = "wg-12345"
RUNNER_LOGS = "wprecond-runner-logs"
# The runner is a local process: a file the test creates is what the precondition's command tests.
ARRIVES = Path(f"/tmp/datapipe-e2e-arrives-{uuid.uuid4().hex}")
NEVER = Path(f"/tmp/datapipe-e2e-never-{uuid.uuid4().hex}")


def definition(marker: Path, **timing: str) -> dict[str, Any]:
    """An activity on the worker group that prints the file its precondition waits for. Data Pipeline's
    ShellCommandPrecondition has no workerGroup field: it runs where the activity it gates runs, here the group."""
    return {"objects": [
        {"id": "Default", "scheduleType": "ondemand"},
        {"id": "FileThere", "type": "ShellCommandPrecondition", "command": f"test -e {marker}",
         "retryDelay": "1 minutes", **timing},
        {"id": "Load", "type": "ShellCommandActivity", "workerGroup": WORKER_GROUP, "command": f"cat {marker}",
         "precondition": {"ref": "FileThere"}},
    ]}


DEFINITIONS = {
    "file-arrives": definition(ARRIVES, preconditionTimeout="10 minutes"),
    # 2 minutes / 1 minute apart: two checks, one wait of 3 s here.
    "file-never": definition(NEVER, preconditionTimeout="2 minutes"),
}


@pytest.fixture(scope="module")
def workflows(emulator: Any, tmp_path_factory: pytest.TempPathFactory,
              cdk_json_context: dict[str, object]) -> dict[str, str]:
    import aws_cdk as cdk

    from datapipe.local.deploy import Deployer
    from stacks.common import encrypt_log_groups
    from stacks.config import PipelineSettings, WorkerGroupSettings
    from stacks.pipelines import add_pipeline_stacks

    folder = tmp_path_factory.mktemp("worker-preconditions")
    (folder / "definitions").mkdir()
    for name, objects in DEFINITIONS.items():
        (folder / "definitions" / f"{name}.json").write_text(json.dumps(objects))
    app = cdk.App(context=cdk_json_context, outdir=str(folder / "out"))
    env = cdk.Environment(account=emulator.account, region=emulator.region)

    def stack_props(unit: str, description: str) -> dict[str, Any]:
        return {"stack_name": NAMING.stack(unit), "description": description, "env": env, "naming": NAMING,
                "removal_policy": cdk.RemovalPolicy.DESTROY}

    add_pipeline_stacks(app, stack_props=stack_props, naming=NAMING, settings=PipelineSettings(),
                        worker_groups=WorkerGroupSettings(names=(WORKER_GROUP,)),
                        definitions_dir=folder / "definitions")
    for stack in app.node.children:
        if isinstance(stack, cdk.Stack):
            encrypt_log_groups(stack, removal_policy=cdk.RemovalPolicy.DESTROY)
    app.synth()
    Deployer(emulator.client, account=emulator.account, region=emulator.region).deploy(folder / "out")
    # The session's WorkerGroups stack has the dev stage's activity; this stage's is created as a deployer would.
    emulator.client("stepfunctions").create_activity(name=NAMING.activity(WORKER_GROUP))
    emulator.client("s3").create_bucket(Bucket=RUNNER_LOGS,
                                        CreateBucketConfiguration={"LocationConstraint": emulator.region})
    return {name: NAMING.state_machine_arn(f"pipeline-{name}", account=emulator.account, region=emulator.region)
            for name in DEFINITIONS}


@pytest.fixture(scope="module")
def task_runner(emulator: Any, workflows: dict[str, str]) -> Iterator[None]:
    from datapipe.local.server import CLEARED_VARIABLES

    environment = {**{k: v for k, v in os.environ.items() if k not in CLEARED_VARIABLES},
                   **{k: v for k, v in emulator.env().items() if k != "AWS_ENDPOINT_URL"}}
    runner = subprocess.Popen(
        [sys.executable, "-m", "datapipe.cli", "taskrunner", "--workerGroup", WORKER_GROUP, "--stage", "wprecond",
         "--endpoint", emulator.endpoint_url, "--region", emulator.region, "--log-uri", f"s3://{RUNNER_LOGS}/taskrunner"],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    yield
    runner.terminate()
    runner.wait(timeout=30)


@pytest.fixture(scope="module")
def runs(emulator: Any, workflows: dict[str, str], task_runner: None) -> Iterator[dict[str, str]]:
    """One run of each pipeline, started together so that their waits overlap: name -> execution ARN."""
    sfn = emulator.client("stepfunctions")
    yield {name: start_execution(sfn, arn, {}) for name, arn in workflows.items()}
    ARRIVES.unlink(missing_ok=True)


def states_entered(sfn: Any, execution: str) -> list[str]:
    events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def runner_answers(sfn: Any, execution: str) -> list[Any]:
    """The `holds` of every task the runner completed, in order (a task that failed has none: it is not here)."""
    events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    return [json.loads(e["activitySucceededEventDetails"]["output"]).get("holds")
            for e in events if "activitySucceededEventDetails" in e]


def test_a_run_waits_for_the_file_and_its_activity_runs_once_the_file_exists(
    emulator: Any, runs: dict[str, str]
) -> None:
    sfn, s3 = emulator.client("stepfunctions"), emulator.client("s3")
    execution = runs["file-arrives"]
    wait_for("a check on the worker group that does not hold, then a wait",
             lambda: "Wait_Before_Checking_FileThere_Load" in states_entered(sfn, execution), timeout=30)
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    assert "Load" not in states_entered(sfn, execution)
    ARRIVES.write_text("the file arrived\n")
    result = ended_execution(sfn, execution, timeout=60)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    entered = states_entered(sfn, execution)
    # The runner answered each check (a task failure would skip Does_It_Hold): no, then yes, then the activity.
    answers = runner_answers(sfn, execution)
    assert answers[0] is False and answers[-2:] == [True, None], answers
    assert entered.count("Does_It_Hold_FileThere_Load") == entered.count("Check_FileThere_Load") >= 2
    # A worker-group task's state is named after its activity.
    assert entered.index("Load") > entered.index("Wait_Before_Checking_FileThere_Load")
    # The activity ran on the runner after the file appeared: its stdout is the file's text.
    bucket, key = json.loads(result["output"])["Load"]["stdout"].removeprefix("s3://").split("/", 1)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode() == "the file arrived\n"


def test_a_precondition_that_never_holds_fails_the_run_naming_it_within_its_timeout(
    emulator: Any, runs: dict[str, str]
) -> None:
    sfn = emulator.client("stepfunctions")
    execution = runs["file-never"]
    result = ended_execution(sfn, execution, timeout=60)
    took = (result["stopDate"] - result["startDate"]).total_seconds()
    assert result["status"] == "FAILED" and result["error"] == "PreconditionFailed", result
    assert result["cause"].startswith("precondition FileThere") and "2 checks" in result["cause"], result["cause"]
    entered = states_entered(sfn, execution)
    assert "Load" not in entered and entered.count("Does_It_Hold_FileThere_Load") == 2
    assert runner_answers(sfn, execution) == [False, False]  # answered by the runner, not failed tasks
    # One retryDelay (3 s at the e2e wait scale) between the two checks: about 3.5 s with the runner's answers,
    # within the preconditionTimeout of 2 minutes (6 s here), with room for a loaded machine.
    assert 3 <= took < 10, took
