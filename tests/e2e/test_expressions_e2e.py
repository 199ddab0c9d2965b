"""Expressions on the run's own times, evaluated when a run starts: a pipeline of its own on the emulator.

The definition is deployed as app.py groups pipelines (`add_pipeline_stacks`, with cdk-nag) under a stage of its own,
so that the session's app is not touched; the worker group's activity of that stage is created here (the session's
WorkerGroups stack has the dev stage's), and `datapipe taskrunner` serves it as a person would start it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datapipe.naming import Naming
from tests.e2e.helpers import ended_execution, start_execution, synth_pipelines

pytestmark = pytest.mark.e2e

NAMING = Naming(stage="expr")
WORKER_GROUP = "wg-12345"
DEFINITION = {"objects": [
    {"id": "Default", "name": "Default", "scheduleType": "cron", "schedule": {"ref": "Daily"}},
    {"id": "Daily", "name": "Daily", "type": "Schedule", "period": "1 day", "startDateTime": "2030-01-01T00:00:00"},
    {"id": "Report", "name": "Report", "type": "ShellCommandActivity", "workerGroup": WORKER_GROUP,
     "command": "echo \"#{format(minusDays(@scheduledStartTime,1),'YYYY-MM-dd')} "
                "#{format(@scheduledStartTime,'EEE hh a')} until #{@scheduledEndTime} "
                "$(echo #{format(@scheduledStartTime,'HH:mm')})\""},
]}


@pytest.fixture(scope="module")
def deployed(emulator: Any, tmp_path_factory: pytest.TempPathFactory, cdk_json_context: dict[str, object]) -> Path:

    from datapipe.local.deploy import Deployer

    folder = tmp_path_factory.mktemp("expressions")
    (folder / "definitions").mkdir()
    (folder / "definitions" / "yesterday.json").write_text(json.dumps(DEFINITION))
    synth_pipelines(emulator, cdk_json_context, folder / "definitions", folder / "out", naming=NAMING,
                    worker_groups=(WORKER_GROUP,), nag=True)
    Deployer(emulator.client, account=emulator.account, region=emulator.region).deploy(folder / "out")
    emulator.client("stepfunctions").create_activity(name=NAMING.activity(WORKER_GROUP))
    emulator.client("s3").create_bucket(Bucket="expressions-runner-logs",
                                        CreateBucketConfiguration={"LocationConstraint": emulator.region})
    return folder / "out"


@pytest.fixture()
def task_runner(emulator: Any, subprocess_env: dict[str, str]) -> Iterator[None]:
    runner = subprocess.Popen(
        [sys.executable, "-m", "datapipe.cli", "taskrunner", "--workerGroup", WORKER_GROUP, "--stage", "expr",
         "--endpoint", emulator.endpoint_url, "--region", emulator.region,
         "--log-uri", "s3://expressions-runner-logs/taskrunner"],
        env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    yield
    runner.terminate()
    runner.wait(timeout=30)


def run(emulator: Any, payload: dict[str, Any]) -> dict[str, Any]:
    sfn = emulator.client("stepfunctions")
    arn = NAMING.state_machine_arn("pipeline-yesterday", account=emulator.account, region=emulator.region)
    return ended_execution(sfn, start_execution(sfn, arn, payload), 60)


def test_a_shell_task_gets_the_day_before_the_scheduled_start_formatted(
    emulator: Any, deployed: Path, task_runner: None
) -> None:
    # Friday 1 March 2024, 13:05 UTC: the day before is the leap day; 13:05 is 01 PM; a daily run ends a day later.
    result = run(emulator, {"scheduledStartTime": "2024-03-01T13:05:00Z"})
    assert result["status"] == "SUCCEEDED", result.get("cause")
    output = json.loads(result["output"])
    assert output["runtime"] == {"value1": "2024-02-29", "value2": "Fri 01 PM", "value3": "2024-03-02T13:05:00"}
    bucket, key = output["Report"]["stdout"].removeprefix("s3://").split("/", 1)
    stdout = emulator.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode().strip()
    assert stdout == "2024-02-29 Fri 01 PM until 2024-03-02T13:05:00 13:05"


def test_a_scheduled_start_far_in_the_future_fails_the_run_with_the_reason(emulator: Any, deployed: Path) -> None:
    # The day's end is 10000-01-01: outside Data Pipeline's years; the run fails before any task, naming why.
    result = run(emulator, {"scheduledStartTime": "9999-12-31T06:00:00Z"})
    assert result["status"] == "FAILED" and result["error"] == "ExpressionError"
    assert "value3: plusDays gives a date outside the years 1 to 9999" in result["cause"]


def test_a_scheduled_start_with_an_offset_is_refused_before_any_value(emulator: Any, deployed: Path) -> None:
    # 01:30 at +02:00 is 23:30 the day before in UTC: only a UTC time is taken, so every value reads one time.
    result = run(emulator, {"scheduledStartTime": "2024-04-01T01:30:00+02:00"})
    assert result["status"] == "FAILED" and result["error"] == "InvalidScheduledStartTime"
