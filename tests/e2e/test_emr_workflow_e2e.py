"""The EMR workflow on the emulator, with the whole app deployed: both seed inputs, injected failures, a stop, and
clusters handed in that the workflow may or may not act on. The app waits on EMR's events (emr.waitMode=events, the
default); a second deployment of the workflow alone, under the stage `sync`, runs with emr.waitMode=sync.

After every run, no cluster that the execution created is left in a non-terminated state; a handed-in cluster is
acted on only when its owner opted it in (tag datapipe:reuse=datapipe-dev). Runs that do not disturb each other run
side by side. The e2e emulator runs the seed's two 10-second Wait states at a small scale
(tests/e2e/conftest.py), so a full run takes a few seconds of simulated cluster boot and steps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from datapipe.cli import cli
from datapipe.local.deploy.deployer import Deployer
from datapipe.naming import Naming
from datapipe.workflows import RunResult, describe_result, follow_execution, start_execution
from tests.e2e.helpers import clusters_of, execution_name, wait_for

pytestmark = pytest.mark.e2e

NAMING = Naming()
OPTED_IN = {"datapipe:reuse": "datapipe-dev"}  # the documented opt-in tag, for prefix datapipe and stage dev
ENDED = ("TERMINATED", "TERMINATED_WITH_ERRORS")
CREATE_AND_TERMINATE = {"CreateCluster": True, "TerminateCluster": True}
RUN_TIMEOUT = 120.0
# The states that wait for EMR's events (emr.waitMode=events), after Create_A_Cluster, Step_One, Step_Three and
# Terminate_Cluster.
EVENT_WAITS = ("Wait_For_Cluster_Ready", "Wait_For_Step_One", "Wait_For_Step_Three", "Wait_For_Cluster_Termination")


@pytest.fixture()
def faults(emulator: Any) -> Iterator[Any]:
    emulator.faults.clear()
    yield emulator.faults
    emulator.faults.clear()


def workflow_arn(emulator: Any) -> str:
    return NAMING.state_machine_arn("emr-workflow", account=emulator.account, region=emulator.region)


def start(emulator: Any, execution_input: dict[str, Any]) -> str:
    return start_execution(emulator.client("stepfunctions"), workflow_arn(emulator), execution_input, execution_name())


def finish(emulator: Any, execution_arn: str) -> RunResult:
    result = follow_execution(
        emulator.client("stepfunctions"), execution_arn, poll_seconds=0.2, timeout_seconds=RUN_TIMEOUT
    )
    assert result.status != "RUNNING", f"{execution_arn} still running after {RUN_TIMEOUT} s"
    return result


def entered(result: RunResult) -> list[str]:
    return [e.name for e in result.events if e.kind == "entered"]




def assert_nothing_left_running(emulator: Any, execution_arn: str) -> dict[str, str]:
    """The execution's clusters, once every one of them has terminated (the reaper acts asynchronously)."""
    none = {"(no cluster)": "TERMINATED"}

    def settled() -> dict[str, str] | None:
        found = clusters_of(emulator.client("emr"), execution_arn)
        return (found or none) if all(state in ENDED for state in found.values()) else None

    found = wait_for(f"the clusters of {execution_arn} to terminate", settled, timeout=30)
    return {} if found == none else dict(found)


def handed_cluster(emulator: Any, *, tags: dict[str, str] | None = None, protected: bool = False) -> str:
    """A cluster someone else runs, for `CreateCluster: false`: it carries no execution tag, only `tags`."""
    emr = emulator.client("emr")
    cluster_id = emr.run_job_flow(
        Name="shared-cluster",
        ReleaseLabel="emr-7.12.0",
        Instances={
            "KeepJobFlowAliveWhenNoSteps": True,
            "InstanceFleets": [
                {
                    "InstanceFleetType": "MASTER",
                    "TargetOnDemandCapacity": 1,
                    "InstanceTypeConfigs": [{"InstanceType": "m5.xlarge"}],
                },
                {
                    "InstanceFleetType": "CORE",
                    "TargetOnDemandCapacity": 1,
                    "InstanceTypeConfigs": [{"InstanceType": "m5.xlarge"}],
                },
            ],
        },
        JobFlowRole="shared-instance-profile",
        ServiceRole="shared-service-role",
        StepConcurrencyLevel=2,
        Tags=[{"Key": key, "Value": value} for key, value in (tags or {}).items()],
    )["JobFlowId"]
    wait_for(
        "the shared cluster",
        lambda: emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"] == "WAITING",
    )
    if protected:
        emr.set_termination_protection(JobFlowIds=[cluster_id], TerminationProtected=True)
    return str(cluster_id)


def cli_report(output: str) -> dict[str, Any]:
    """The `--json` document of `datapipe start`. Lambdas run inside this test process on the emulator, and their
    metrics lines land in the same captured stdout; a real CLI process prints only the document."""
    for line in reversed(output.splitlines()):
        if line.startswith("{") and '"executionArn"' in line:
            return dict(json.loads(line))
    raise AssertionError(f"no JSON report in: {output[-2000:]}")


def cluster(emulator: Any, cluster_id: str) -> dict[str, Any]:
    return dict(emulator.client("emr").describe_cluster(ClusterId=cluster_id)["Cluster"])


# ---------------------------------------------------------------------------------------------------------------------
# Runs that succeed, and a stop


def test_both_seed_inputs_succeed_and_a_stopped_run_is_reaped(emulator: Any, faults: Any) -> None:
    shared = handed_cluster(emulator, tags=OPTED_IN)
    sfn = emulator.client("stepfunctions")
    reuse = start(emulator, {"CreateCluster": False, "TerminateCluster": False, "ClusterId": shared})
    to_stop = start(emulator, CREATE_AND_TERMINATE)
    # Stopped midway, while its cluster runs Step_One (a step lasts 1 s; the scaled waits after it 0.5 s each): a
    # stopped execution runs no Catch. A short interval, so that the stop lands while the step still runs.
    assert wait_for(
        "the run to stop to reach Step_One",
        lambda: "Step_One" in entered(describe_result(sfn, to_stop)),
        interval=0.05,
    )
    sfn.stop_execution(executionArn=to_stop, error="e2e", cause="stopped midway")

    # The first seed input, through the CLI as a user runs it; the other two executions run meanwhile.
    cli_run = CliRunner().invoke(
        cli,
        [
            "start",
            "emr-workflow",
            "--input",
            json.dumps(CREATE_AND_TERMINATE),
            "--follow",
            "--json",
            "--poll",
            "0.2",
            "--endpoint-url",
            emulator.endpoint_url,
            "--region",
            emulator.region,
        ],
    )
    assert cli_run.exit_code == 0, cli_run.output
    created = cli_report(cli_run.output)
    assert created["status"] == "SUCCEEDED"
    states = [e["name"] for e in created["events"] if e["kind"] == "entered"]
    for state in (
        "Validate_Input",
        "Create_A_Cluster",
        "Merge_Results",
        "Enable_Termination_Protection",
        "Step_One",
        "Step_Two (async)",
        "Cancel_Step_Two",
        "Step_Three",
        "Disable_Termination_Protection",
        "Terminate_Cluster",
        "Wrapping_Up",
        "Summarize_Run",
    ):
        assert state in states, state
    summary = created["output"]["Summary"]["result"]
    assert [s["Name"] for s in summary["Steps"]] == ["The first step", "The second step", "The third step"]
    assert_waits_ended_on_emr_events(emulator, created["executionArn"], states)
    assert list(assert_nothing_left_running(emulator, created["executionArn"]).values()) == ["TERMINATED"]

    reused = finish(emulator, reuse)
    assert reused.status == "SUCCEEDED", reused.cause
    assert "Create_A_Cluster" not in entered(reused) and "Terminate_Cluster" not in entered(reused)
    assert not {"Enable_Termination_Protection", "Disable_Termination_Protection"} & set(entered(reused))
    shared_now = cluster(emulator, shared)
    assert shared_now["Status"]["State"] == "WAITING"  # reused, not removed
    assert shared_now["TerminationProtected"] is False
    assert clusters_of(emulator.client("emr"), reuse) == {}

    # The reaper removed the stopped execution's cluster.
    stopped = finish(emulator, to_stop)
    assert stopped.status == "ABORTED"
    assert "Cleanup_Terminate_Cluster" not in entered(stopped)
    assert list(assert_nothing_left_running(emulator, to_stop).values()) == ["TERMINATED"]


def test_a_bad_input_fails_before_any_emr_call(emulator: Any) -> None:
    before = len(emulator.client("emr").list_clusters()["Clusters"])
    result = CliRunner().invoke(
        cli,
        [
            "start",
            "emr-workflow",
            "--input",
            '{"CreateCluster": false, "TerminateCluster": false}',
            "--follow",
            "--json",
            "--endpoint-url",
            emulator.endpoint_url,
            "--region",
            emulator.region,
        ],
    )
    assert result.exit_code == 1
    report = cli_report(result.output)
    assert (report["status"], report["error"]) == ("FAILED", "datapipe.InvalidInput")
    assert "'ClusterId'" in report["cause"]
    assert len(emulator.client("emr").list_clusters()["Clusters"]) == before


# ---------------------------------------------------------------------------------------------------------------------
# Injected failures


def test_a_failed_create_leaves_no_cluster(emulator: Any, faults: Any) -> None:
    faults.fail_emr_call("createCluster", cause="no capacity")
    execution = start(emulator, CREATE_AND_TERMINATE)
    result = finish(emulator, execution)
    assert result.status == "FAILED"
    assert "no capacity" in result.cause
    assert "Enable_Termination_Protection" not in entered(result)
    assert_nothing_left_running(emulator, execution)


def test_a_failed_step_one_terminates_the_created_cluster_and_names_the_step(emulator: Any, faults: Any) -> None:
    faults.fail_emr_step("The first step", reason="Hive query failed")
    execution = start(emulator, CREATE_AND_TERMINATE)
    result = finish(emulator, execution)
    assert result.status == "FAILED"
    assert "step 'The first step'" in result.cause and "Hive query failed" in result.cause
    assert "/steps/" in result.cause  # where its logs are
    assert {"Cleanup_Disable_Termination_Protection", "Cleanup_Terminate_Cluster"} <= set(entered(result))
    assert list(assert_nothing_left_running(emulator, execution).values()) == ["TERMINATED"]


def test_a_failed_cancel_of_step_two_is_cleaned_up(emulator: Any, faults: Any) -> None:
    faults.fail_emr_call("cancelStep", cause="cancel refused")
    execution = start(emulator, CREATE_AND_TERMINATE)
    result = finish(emulator, execution)
    assert result.status == "FAILED"
    assert "cancel refused" in result.cause
    assert "Cleanup_Terminate_Cluster" in entered(result)
    assert_nothing_left_running(emulator, execution)


def test_a_failed_step_three_cleans_up_a_created_cluster_but_never_a_handed_one(emulator: Any, faults: Any) -> None:
    faults.fail_emr_step("The third step", reason="out of memory")
    shared = handed_cluster(emulator, tags=OPTED_IN, protected=True)
    created = start(emulator, CREATE_AND_TERMINATE)
    handed = start(emulator, {"CreateCluster": False, "TerminateCluster": True, "ClusterId": shared})

    for execution in (created, handed):
        result = finish(emulator, execution)
        assert result.status == "FAILED"
        assert "step 'The third step'" in result.cause and "out of memory" in result.cause
    sfn = emulator.client("stepfunctions")
    assert {"Cleanup_Disable_Termination_Protection", "Cleanup_Terminate_Cluster"} <= set(
        entered(describe_result(sfn, created)))
    assert not {"Cleanup_Disable_Termination_Protection", "Cleanup_Terminate_Cluster"} & set(
        entered(describe_result(sfn, handed)))
    assert_nothing_left_running(emulator, created)
    shared_now = cluster(emulator, shared)
    assert shared_now["Status"]["State"] == "WAITING"
    assert shared_now["TerminationProtected"] is True  # a failed run leaves a handed-in cluster as it found it


def test_a_failed_terminate_is_finished_by_the_reaper(emulator: Any, faults: Any) -> None:
    faults.fail_emr_call("terminateCluster", cause="terminate refused")
    execution = start(emulator, CREATE_AND_TERMINATE)
    result = finish(emulator, execution)
    assert result.status == "FAILED"
    assert "terminate refused" in result.cause
    assert {"Terminate_Cluster", "Cleanup_Terminate_Cluster", "Workflow_Failed"} <= set(entered(result))
    # The reaper calls EMR directly, as it does in AWS: only the workflow's integration was made to fail.
    assert list(assert_nothing_left_running(emulator, execution).values()) == ["TERMINATED"]


def test_graph_draws_the_deployed_workflow(emulator: Any) -> None:
    result = CliRunner().invoke(
        cli, ["graph", "emr-workflow", "--endpoint-url", emulator.endpoint_url, "--region", emulator.region]
    )
    assert result.exit_code == 0, result.output
    chart = result.output
    assert chart.startswith("flowchart TD\n")
    assert "start(( )) --> Validate_Input" in chart
    assert 'subgraph Add_Steps_Parallel["Add_Steps_Parallel"]' in chart
    assert 'Should_Create_Cluster -- "CreateCluster == false" --> Check_Handed_In_Cluster' in chart
    assert 'Step_Three -. "catch States.ALL" .-> Describe_Failure' in chart
    assert 'Created_By_This_Execution -- "CreateCluster == true" --> Cleanup_Disable_Termination_Protection' in chart


# ---------------------------------------------------------------------------------------------------------------------
# Clusters handed in: only those this deployment created or that their owner opted in


def steps_of(emulator: Any, cluster_id: str) -> list[str]:
    return [s["Name"] for s in emulator.client("emr").list_steps(ClusterId=cluster_id)["Steps"]]


def test_a_foreign_protected_cluster_is_refused_before_any_change(emulator: Any) -> None:
    foreign = handed_cluster(emulator, tags={"team": "analytics"}, protected=True)
    result = CliRunner().invoke(
        cli,
        [
            "start",
            "emr-workflow",
            "--input",
            json.dumps({"CreateCluster": False, "TerminateCluster": True, "ClusterId": foreign}),
            "--follow",
            "--json",
            "--poll",
            "0.2",
            "--endpoint-url",
            emulator.endpoint_url,
            "--region",
            emulator.region,
        ],
    )
    assert result.exit_code == 1, result.output
    report = cli_report(result.output)
    assert (report["status"], report["error"]) == ("FAILED", "datapipe.ClusterNotAllowed")
    assert foreign in report["cause"] and "datapipe:reuse=datapipe-dev" in report["cause"]
    states = [e["name"] for e in report["events"] if e["kind"] == "entered"]
    assert states[-2:] == ["Is_Cluster_Allowed", "Cluster_Not_Allowed"]
    now = cluster(emulator, foreign)
    assert (now["Status"]["State"], now["TerminationProtected"]) == ("WAITING", True)
    assert steps_of(emulator, foreign) == []


def test_an_opted_in_cluster_runs_the_steps_and_keeps_or_loses_it_as_asked(emulator: Any) -> None:
    kept = handed_cluster(emulator, tags=OPTED_IN, protected=True)
    ended = handed_cluster(emulator, tags=OPTED_IN, protected=True)
    keep = start(emulator, {"CreateCluster": False, "TerminateCluster": False, "ClusterId": kept})
    end = start(emulator, {"CreateCluster": False, "TerminateCluster": True, "ClusterId": ended})

    kept_run, ended_run = finish(emulator, keep), finish(emulator, end)
    assert kept_run.status == "SUCCEEDED", kept_run.cause
    assert ended_run.status == "SUCCEEDED", ended_run.cause
    steps = ["The third step", "The second step", "The first step"]  # EMR lists the newest first
    assert steps_of(emulator, kept) == steps and steps_of(emulator, ended) == steps
    assert not {"Enable_Termination_Protection", "Disable_Termination_Protection"} & set(entered(kept_run))
    now = cluster(emulator, kept)
    assert (now["Status"]["State"], now["TerminationProtected"]) == ("WAITING", True)  # unchanged
    assert "Disable_Termination_Protection" in entered(ended_run)
    assert "Enable_Termination_Protection" not in entered(ended_run)
    assert wait_for("the opted-in cluster to terminate",
                    lambda: cluster(emulator, ended)["Status"]["State"] in ENDED)


@pytest.mark.parametrize(
    ("cluster_id", "error", "cause"),
    [
        ("j-../../x", "datapipe.InvalidInput", "field 'ClusterId' must be a cluster id"),
        # Within Step Functions' 256 KiB limit on state data, the reader refuses it and shows its start only.
        ("j-" + "A" * 200_000, "datapipe.InvalidInput", "(200002 characters)"),
        # Beyond it, the engine fails the execution at the first state, as AWS does (AWS refuses it at the start).
        ("j-" + "A" * 10_000_000, "States.DataLimitExceeded", "exceeding the maximum number of bytes"),
        ("j-1234567890ABC", "datapipe.ClusterUnavailable", "cluster j-1234567890ABC was not found"),
    ],
    ids=["path", "200 KB", "10 MB", "unknown"],
)
def test_a_malformed_or_unknown_cluster_id_fails_in_one_line_before_any_emr_call(
    emulator: Any, cluster_id: str, error: str, cause: str
) -> None:
    execution = start(emulator, {"CreateCluster": False, "TerminateCluster": True, "ClusterId": cluster_id})
    result = finish(emulator, execution)
    assert (result.status, result.error) == ("FAILED", error)
    assert cause in result.cause
    assert len(result.cause) < 300 and "\n" not in result.cause
    assert set(entered(result)) <= {"Validate_Input", "Should_Create_Cluster", "Check_Handed_In_Cluster",
                                    "Is_Cluster_Allowed", "Reject_Malformed_ClusterId", "Cluster_Unavailable"}


# ---------------------------------------------------------------------------------------------------------------------
# How the waits end: EMR's events (the default) or the native .sync


def assert_waits_ended_on_emr_events(emulator: Any, execution: str, states: list[str]) -> None:
    """Each wait of the run came after its task and was answered by the emr_waits function, which kept no token."""
    tasks = ("Create_A_Cluster", "Step_One", "Step_Three", "Terminate_Cluster")
    for task, wait in zip(tasks, EVENT_WAITS, strict=True):
        assert states.index(wait) > states.index(task), wait
    history = emulator.client("stepfunctions").get_execution_history(executionArn=execution, maxResults=1000)
    callbacks = [e for e in history["events"] if e["type"] == "TaskSucceeded"
                 and e["taskSucceededEventDetails"]["resource"] == "invoke.waitForTaskToken"]
    assert len(callbacks) == len(EVENT_WAITS)
    ready = json.loads(callbacks[0]["taskSucceededEventDetails"]["output"])  # what createCluster.sync outputs
    assert ready["Status"]["State"] in ("WAITING", "RUNNING") and ready["ClusterId"].startswith("j-")
    table = emulator.client("dynamodb").scan(TableName=NAMING.name("emr-waits"))
    assert [i for i in table["Items"] if i["ClusterId"]["S"] == ready["ClusterId"]] == []


SYNC = Naming(stage="sync")


@pytest.fixture(scope="module")
def sync_workflow(emulator: Any, cdk_json_context: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> str:
    """The workflow alone with emr.waitMode=sync, as `datapipe-sync-emr-workflow` next to the app's."""
    import aws_cdk as cdk

    from stacks.config import load_settings
    from stacks.emr_workflow import EmrWorkflow

    outdir = tmp_path_factory.mktemp("sync-workflow")
    app = cdk.App(context=cdk_json_context, outdir=str(outdir))
    stack = cdk.Stack(app, "SyncWorkflow", stack_name=SYNC.stack("emr-workflow"),
                      env=cdk.Environment(account=emulator.account, region=emulator.region))
    EmrWorkflow(stack, "EmrWorkflow", naming=SYNC, settings=load_settings({"emr.waitMode": "sync"}).emr,
                removal_policy=cdk.RemovalPolicy.DESTROY)
    app.synth()
    Deployer(emulator.client, account=emulator.account, region=emulator.region).deploy(outdir)
    return SYNC.state_machine_arn("emr-workflow", account=emulator.account, region=emulator.region)


def test_sync_mode_succeeds_and_a_failed_step_is_cleaned_up_with_its_cause(
    emulator: Any, faults: Any, sync_workflow: str
) -> None:
    sfn = emulator.client("stepfunctions")
    faults.fail_emr_step("The first step", reason="Hive query failed", times=1)
    failing = start_execution(sfn, sync_workflow, CREATE_AND_TERMINATE, execution_name())
    # The fault goes to the first step of that name to run: the happy run starts once the failing run's step took it.
    wait_for("the failing run's Step_One to take the fault", lambda: not faults.list(), interval=0.05)
    happy = finish(emulator, start_execution(sfn, sync_workflow, CREATE_AND_TERMINATE, execution_name()))
    assert happy.status == "SUCCEEDED", happy.cause
    assert not set(EVENT_WAITS) & set(entered(happy))
    assert [s["Name"] for s in happy.output["Summary"]["result"]["Steps"]] == [
        "The first step", "The second step", "The third step"]
    assert list(assert_nothing_left_running(emulator, happy.execution_arn).values()) == ["TERMINATED"]

    failed = finish(emulator, failing)
    assert failed.status == "FAILED"
    assert "step 'The first step'" in failed.cause and "Hive query failed" in failed.cause
    assert "/steps/" in failed.cause
    assert {"Cleanup_Disable_Termination_Protection", "Cleanup_Terminate_Cluster"} <= set(entered(failed))
    assert list(assert_nothing_left_running(emulator, failed.execution_arn).values()) == ["TERMINATED"]
