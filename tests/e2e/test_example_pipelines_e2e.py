"""The example pipelines of pipelines/ as the app deploys them, run on the session's emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datapipe.naming import Naming
from tests.e2e.helpers import ended_execution, start_execution
from tests.e2e.test_taskrunner_e2e import Runner

pytestmark = pytest.mark.e2e

NAMING = Naming()


@pytest.fixture()
def runner(emulator: Any, subprocess_env: dict[str, str], tmp_path: Path) -> Iterator[Runner]:
    """`datapipe taskrunner --workerGroup wg-12345` of the app's own stage, as a person would start it."""
    env = {**subprocess_env, **{k: v for k, v in emulator.env().items() if k != "AWS_ENDPOINT_URL"}}
    started = Runner(emulator, env, tmp_path / "runner", "runner-examples")
    yield started
    started.close()


def test_the_daily_report_runs_on_the_worker_group_with_the_day_before_from_the_run_values_function(
    emulator: Any, runner: Runner
) -> None:
    sfn, s3 = emulator.client("stepfunctions"), emulator.client("s3")
    arn = NAMING.state_machine_arn("pipeline-daily-report", account=emulator.account, region=emulator.region)
    # The schedule's time of Friday 1 March 2024: the day before is the leap day, a Thursday.
    result = ended_execution(sfn, start_execution(sfn, arn, {"scheduledStartTime": "2024-03-01T06:00:00Z"}), 60)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    output = json.loads(result["output"])
    assert output["runtime"] == {"value1": "2024-02-29", "value2": "Thursday"}
    bucket, key = output["ReportOnYesterday"]["stdout"].removeprefix("s3://").split("/", 1)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode() == "report on 2024-02-29, a Thursday\n"
