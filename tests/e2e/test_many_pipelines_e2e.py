"""A hundred imported pipelines on the emulator: a stack each, deployed beside the app, listed in full, one run.

The definitions are copies of the two examples (bench/pipelines_scale.py), deployed as app.py groups them
(`add_pipeline_stacks`) under a stage of their own, so that the session's app is not touched.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from click.testing import CliRunner

from bench.pipelines_scale import write_definitions
from datapipe.cli import cli
from datapipe.naming import Naming
from tests.e2e.helpers import cluster_of, ended_execution, start_execution, synth_pipelines, wait_for

pytestmark = pytest.mark.e2e

COUNT = 100
NAMING = Naming(stage="scale")


@pytest.fixture(scope="module")
def many_pipelines(
    emulator: Any, tmp_path_factory: pytest.TempPathFactory, cdk_json_context: dict[str, object]
) -> dict[str, Any]:

    from datapipe.local.deploy import Deployer

    folder = tmp_path_factory.mktemp("many")
    names = write_definitions(folder / "definitions", COUNT)
    synth_pipelines(emulator, cdk_json_context, folder / "definitions", folder / "out", naming=NAMING)
    started = time.perf_counter()
    deployment = Deployer(emulator.client, account=emulator.account, region=emulator.region).deploy(folder / "out")
    return {"names": names, "deployment": deployment, "seconds": time.perf_counter() - started}


def test_a_hundred_definitions_deploy_as_a_stack_each_in_well_under_a_minute(many_pipelines: dict[str, Any]) -> None:
    deployment = many_pipelines["deployment"]
    assert sorted(stack.stack_name for stack in deployment.stacks) == sorted(
        [NAMING.stack("pipelines")] + [NAMING.stack(f"pipeline-{name}") for name in many_pipelines["names"]])
    assert many_pipelines["seconds"] < 60, f"deploying {COUNT} pipelines took {many_pipelines['seconds']:.1f} s"


def test_ls_lists_all_hundred_past_the_first_page_of_list_state_machines(
    emulator: Any, many_pipelines: dict[str, Any]
) -> None:
    # The session's app is deployed too: with it, the machines fill more than one page (moto's is 100, as AWS's).
    first_page = emulator.client("stepfunctions").list_state_machines()
    assert "nextToken" in first_page
    result = CliRunner().invoke(cli, ["ls", "--json", "--stage", "scale", "--endpoint-url", emulator.endpoint_url,
                                      "--region", emulator.region])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = lines.index("{")
    listed = json.loads("\n".join(lines[start:start + lines[start:].index("}") + 1]))["workflows"]
    assert sorted(w["name"] for w in listed) == sorted(f"pipeline-{name}" for name in many_pipelines["names"])
    # Every other copy is the shell example, with its daily schedule: the schedules' listing is complete too.
    schedules = {w["name"]: w["triggers"] for w in listed}
    assert sum(1 for triggers in schedules.values() if triggers) == COUNT // 2


def test_one_of_the_hundred_runs_its_cluster_with_the_shared_roles_and_terminates_it(
    emulator: Any, many_pipelines: dict[str, Any]
) -> None:
    name = many_pipelines["names"][42]  # an even index: a copy of the EMR example
    sfn = emulator.client("stepfunctions")
    arn = NAMING.state_machine_arn(f"pipeline-{name}", account=emulator.account, region=emulator.region)
    payload = {"scheduledStartTime": "2026-11-21T06:00:00Z", "parameters": {"myOutputFolder": "s3://scale-out/o"}}
    result = ended_execution(sfn, start_execution(sfn, arn, payload), 60)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    cluster_id = json.loads(result["output"])["clusters"]["WordCountCluster"]["ClusterId"]
    cluster = emulator.client("emr").describe_cluster(ClusterId=cluster_id)["Cluster"]
    assert cluster["Status"]["State"] == "TERMINATED"
    assert cluster["ServiceRole"] == NAMING.name("pipeline-emr-service")
    assert {"Key": "datapipe:workflow", "Value": NAMING.state_machine(f"pipeline-{name}")} in cluster["Tags"]


def test_a_stopped_run_of_the_last_stack_is_reaped_by_the_one_shared_reaper(
    emulator: Any, many_pipelines: dict[str, Any]
) -> None:
    """The shared reaper's rule matches the pipelines by ARN prefix: a machine of any stack, however many."""
    sfn, emr = emulator.client("stepfunctions"), emulator.client("emr")
    name = many_pipelines["names"][-2]  # the last copy of the EMR example
    arn = NAMING.state_machine_arn(f"pipeline-{name}", account=emulator.account, region=emulator.region)
    payload = {"scheduledStartTime": "2026-11-21T06:00:00Z", "parameters": {"myOutputFolder": "s3://scale-out/o"}}
    execution = start_execution(sfn, arn, payload)

    cluster_id = wait_for("the run to create a cluster", lambda: cluster_of(emr, execution), timeout=30)
    sfn.stop_execution(executionArn=execution, error="e2e", cause="stopped while the cluster runs")
    wait_for("the stopped run's cluster to terminate",
             lambda: emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"] in ("TERMINATING",
                                                                                                "TERMINATED"),
             timeout=30)
