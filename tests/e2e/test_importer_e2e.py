"""Imported pipelines on the emulator, with the whole app deployed.

The examples in pipelines/ are adapted from the corpus (EFSBackup's 2-node shape; the hadoop-activity and
HadoopTerasort EMR samples). A run is started as the pipeline's schedule starts it: with `scheduledStartTime`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datapipe.naming import Naming
from datapipe.taskrunner.contract import ShellTask
from tests.e2e.helpers import cluster_of, ended_execution, start_execution, wait_for

pytestmark = pytest.mark.e2e

NAMING = Naming()
RUN_TIME = "2026-11-21T06:00:00Z"
# The task contract's 'environment' and 'secrets' (docs/taskrunner.md), once the runner reads them.
RUNNER_READS_ENVIRONMENT = "environment" in {f.name for f in dataclasses.fields(ShellTask)}
RUNNER_READS_SECRETS = "secrets" in {f.name for f in dataclasses.fields(ShellTask)}


def run_to_end(emulator: Any, workflow: str, payload: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    sfn = emulator.client("stepfunctions")
    arn = NAMING.state_machine_arn(workflow, account=emulator.account, region=emulator.region)
    return ended_execution(sfn, start_execution(sfn, arn, payload), timeout)


@pytest.fixture()
def task_runner(emulator: Any, subprocess_env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """`datapipe taskrunner` for wg-12345, as a person would start it on a server of the worker group.

    The long poll the stopped runner leaves on the emulator ends when its connection closes, so it takes no task
    of a later test.
    """
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "datapipe.cli",
            "taskrunner",
            "--workerGroup",
            "wg-12345",
            "--endpoint",
            emulator.endpoint_url,
            "--region",
            emulator.region,
        ],
        env=subprocess_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield runner
    runner.terminate()
    runner.wait(timeout=30)


def test_a_scheduled_start_time_that_is_not_a_timestamp_fails_the_run_at_once(emulator: Any) -> None:
    result = run_to_end(emulator, "pipeline-shell-with-dependencies",
                        {"scheduledStartTime": "2026-11-21T06:00:00Z$(touch pwned)"})
    assert result["status"] == "FAILED" and result["error"] == "InvalidScheduledStartTime"


def test_the_shell_pipeline_runs_its_stages_on_the_task_runner_and_batch(
    emulator: Any, task_runner: subprocess.Popen[str]
) -> None:
    result = run_to_end(emulator, "pipeline-shell-with-dependencies", {"scheduledStartTime": RUN_TIME})
    assert result["status"] == "SUCCEEDED", result.get("cause")
    output = json.loads(result["output"])
    # The worker group's runner ran the first and the last activity, with the parameter and the run's date (the
    # date as environment variables of the command, which a runner that reads the task's 'environment' sets).
    s3 = emulator.client("s3")
    bucket, key = output["InitBackup"]["stdout"].removeprefix("s3://").split("/", 1)
    if RUNNER_READS_ENVIRONMENT:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().strip() == (
            "init daily backup for 2026-11-21")
    bucket, key = output["FinalizeBackup"]["stdout"].removeprefix("s3://").split("/", 1)
    assert (
        s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().strip() == "finalize the daily backup, keeping 7"
    )
    # Batch ran the two parts in between, with their scriptArguments as $1 and $2.
    events = emulator.client("logs").filter_log_events(logGroupName=f"/datapipe/{NAMING.name('pipeline-shell-jobs')}")[
        "events"
    ]  # the job definition's awslogs group, where Batch writes the job's output
    lines = {e["message"].strip() for e in events}
    assert {"backup part 1 of 2 for 2026-11-21", "backup part 2 of 2 for 2026-11-21"} <= lines


def test_the_emr_pipeline_creates_runs_and_terminates_its_cluster(emulator: Any) -> None:
    payload = {"scheduledStartTime": RUN_TIME, "parameters": {"myOutputFolder": "s3://word-counts/out"}}
    result = run_to_end(emulator, "pipeline-emr-word-count", payload)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    cluster_id = json.loads(result["output"])["clusters"]["WordCountCluster"]["ClusterId"]
    emr = emulator.client("emr")
    assert emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"] == "TERMINATED"
    steps = emr.list_steps(ClusterId=cluster_id)["Steps"]
    assert sorted((s["Name"], s["Status"]["State"]) for s in steps) == sorted(
        [
            ("WordCount-pre-1", "COMPLETED"),
            ("WordCount-1", "COMPLETED"),
            ("WordCount-post-1", "COMPLETED"),
            ("ListOutput", "COMPLETED"),
        ]
    )
    word_count = next(s for s in steps if s["Name"] == "WordCount-1")
    assert word_count["Config"]["Args"][-1] == "s3://word-counts/out/2026-11-21-06-00-00/"


def test_a_failed_step_still_terminates_the_cluster(emulator: Any) -> None:
    emulator.faults.fail_emr_step("ListOutput")
    payload = {"scheduledStartTime": RUN_TIME, "parameters": {"myOutputFolder": "s3://word-counts/out"}}
    result = run_to_end(emulator, "pipeline-emr-word-count", payload)
    assert result["status"] == "FAILED" and result["error"] == "PipelineFailed"
    emr = emulator.client("emr")
    tagged = [c for c in emr.list_clusters()["Clusters"] if c["Name"] == NAMING.name("emr-word-count-WordCountCluster")]
    assert tagged and all(c["Status"]["State"] in ("TERMINATING", "TERMINATED") for c in tagged)


def test_a_run_without_its_parameters_fails_before_any_cluster_exists(emulator: Any) -> None:
    emr = emulator.client("emr")
    before = len(emr.list_clusters()["Clusters"])
    result = run_to_end(emulator, "pipeline-emr-word-count", {"scheduledStartTime": RUN_TIME})
    assert result["status"] == "FAILED" and result["error"] == "MissingParameters"
    assert "myOutputFolder" in result["cause"]
    assert len(emr.list_clusters()["Clusters"]) == before


def test_a_stopped_run_has_its_cluster_reaped(emulator: Any) -> None:
    """A stopped execution runs no Catch: the pipelines' reaper, started by the execution's end, terminates it."""
    sfn, emr = emulator.client("stepfunctions"), emulator.client("emr")
    arn = NAMING.state_machine_arn("pipeline-emr-word-count", account=emulator.account, region=emulator.region)
    payload = {"scheduledStartTime": RUN_TIME, "parameters": {"myOutputFolder": "s3://word-counts/out"}}
    execution = start_execution(sfn, arn, payload)

    cluster_id = wait_for("the run to create a cluster", lambda: cluster_of(emr, execution), timeout=30)
    sfn.stop_execution(executionArn=execution, error="e2e", cause="stopped while the cluster runs")
    wait_for(
        "the stopped run's cluster to terminate",
        lambda: emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"] in ("TERMINATING",
                                                                                           "TERMINATED"),
        timeout=30,
    )
    assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"


# -- samples of the corpus as they are, deployed beside the app ------------------------------------------------------

from tests.importer.conftest import CORPUS_DIR, samples_absent  # noqa: E402 (beside the tests that use it)

CORPUS_NAMING = Naming(stage="corpus")
CORPUS_VALUES = {
    "HadoopTerasort/TeraSortHadoopBenchmark.json": {"myS3Path": "s3://corpus-terasort/run"},
    "EFSBackup/1-Node-EFSBackupPipeline.json": {"myShellCmd": 'echo "backup $1 to $2 every $3, keep $4 ($5)"'},
    "hadoop-activity/hadoop-activity-world-count-fair.json": {
        "myFairConfig": "s3://corpus-config/fair-scheduler.xml", "myPipelineLogUri": "s3://corpus-logs/wordcount",
        "myOutputFolder": "s3://corpus-wordcount/out"},
}


@pytest.fixture(scope="module")
def corpus_pipelines(emulator: Any, tmp_path_factory: pytest.TempPathFactory,
                     cdk_json_context: dict[str, object]) -> dict[str, str]:
    """Two samples imported unchanged (with a values file for their parameters) and deployed: name -> workflow."""
    if not CORPUS_DIR.is_dir():
        samples_absent()
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3

    from datapipe.bundles.names import job_queue_name
    from datapipe.importer import import_file
    from datapipe.local.deploy import Deployer
    from stacks.config import PipelineSettings, WorkerGroupSettings
    from stacks.pipelines import PipelineEmrRoles, PipelineWorkflow, ShellJobDefinition, batch_buckets, emr_buckets

    folder = tmp_path_factory.mktemp("corpus-app")
    plans = []
    for index, (sample, values) in enumerate(CORPUS_VALUES.items()):
        values_file = folder / f"values-{index}.json"
        values_file.write_text(json.dumps({"values": values}))
        plans.append(import_file(CORPUS_DIR / sample, values_path=values_file))
    assert all(plan.deployable for plan in plans), [plan.errors for plan in plans]
    for plan in plans:
        plan.schedule = None  # the runs are started here; no schedule is left in the session's emulator
    app = cdk.App(context=cdk_json_context, outdir=str(folder / "out"))
    stack = cdk.Stack(app, "CorpusPipelines", stack_name=CORPUS_NAMING.stack("pipelines"),
                      env=cdk.Environment(account=emulator.account, region=emulator.region))
    jobs = ShellJobDefinition(stack, "Jobs", naming=CORPUS_NAMING, image="amazonlinux:2023", fargate=False,
                              buckets=batch_buckets(plans), removal_policy=cdk.RemovalPolicy.DESTROY)
    roles = PipelineEmrRoles(stack, "Roles", naming=CORPUS_NAMING, buckets=emr_buckets(plans))
    queue = f"arn:aws:batch:{emulator.region}:{emulator.account}:job-queue/{job_queue_name(NAMING)}"  # the app's
    for plan in plans:
        PipelineWorkflow(stack, plan.name, naming=CORPUS_NAMING, plan=plan, settings=PipelineSettings(),
                         worker_groups=WorkerGroupSettings(), emr_roles=roles, job_queue_arn=queue,
                         job_definition_arn=jobs.job_definition.job_definition_arn,
                         log_bucket=s3.Bucket.from_bucket_name(stack, f"Logs{plan.name}", "corpus-logs"),
                         removal_policy=cdk.RemovalPolicy.DESTROY)
    app.synth()
    Deployer(emulator.client, account=emulator.account, region=emulator.region).deploy(folder / "out")
    return {plan.source: f"pipeline-{plan.name}" for plan in plans}


def test_the_terasort_sample_runs_its_dependent_steps_and_shell_command_on_its_cluster(
    emulator: Any, corpus_pipelines: dict[str, str]
) -> None:
    sfn = emulator.client("stepfunctions")
    workflow = corpus_pipelines["TeraSortHadoopBenchmark.json"]
    arn = CORPUS_NAMING.state_machine_arn(workflow, account=emulator.account, region=emulator.region)
    result = ended_execution(sfn, start_execution(sfn, arn, {"scheduledStartTime": RUN_TIME}), timeout=90)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    cluster_id = json.loads(result["output"])["clusters"]["EmrCluster_HadoopTerasort"]["ClusterId"]
    emr = emulator.client("emr")
    assert emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"] == "TERMINATED"
    steps = sorted(emr.list_steps(ClusterId=cluster_id)["Steps"], key=lambda s: s["Status"]["Timeline"]
                   ["CreationDateTime"])
    assert [(s["Name"], s["Status"]["State"]) for s in steps] == [
        ("TeraGen_1GB", "COMPLETED"), ("TeraSort", "COMPLETED"), ("TeraValidate", "COMPLETED"),
        ("ProcessJHIST", "COMPLETED")]
    assert steps[1]["Config"]["Args"] == ["terasort", "s3://corpus-terasort/run/HadoopTerasort/input",
                                          "s3://corpus-terasort/run/HadoopTerasort/output"]


def test_the_efs_sample_runs_its_shell_command_on_batch(emulator: Any, corpus_pipelines: dict[str, str]) -> None:
    workflow = corpus_pipelines["1-Node-EFSBackupPipeline.json"]
    sfn = emulator.client("stepfunctions")
    arn = CORPUS_NAMING.state_machine_arn(workflow, account=emulator.account, region=emulator.region)
    result = ended_execution(sfn, start_execution(sfn, arn, {}), timeout=60)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    lines = {e["message"].strip() for e in emulator.client("logs").filter_log_events(
        logGroupName=f"/datapipe/{CORPUS_NAMING.name('pipeline-shell-jobs')}")["events"]}
    assert "backup 10.0.1.32:/ to 10.0.1.75:/ every daily, keep 7 (backup-fs-12345678)" in lines


def test_the_fair_scheduler_sample_runs_its_two_jobs_in_parallel_on_one_cluster(
    emulator: Any, corpus_pipelines: dict[str, str]
) -> None:
    sfn, emr = emulator.client("stepfunctions"), emulator.client("emr")
    workflow = corpus_pipelines["hadoop-activity-world-count-fair.json"]
    arn = CORPUS_NAMING.state_machine_arn(workflow, account=emulator.account, region=emulator.region)
    result = ended_execution(sfn, start_execution(sfn, arn, {"scheduledStartTime": RUN_TIME}), timeout=90)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    cluster_id = json.loads(result["output"])["clusters"]["EmrClusterId_pmtY0"]["ClusterId"]
    cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    assert cluster["Status"]["State"] == "TERMINATED"
    steps = {s["Name"]: s for s in emr.list_steps(ClusterId=cluster_id)["Steps"]}
    assert sorted(steps) == ["HadoopActivity_1", "HadoopActivity_2"]
    assert all(s["Status"]["State"] == "COMPLETED" for s in steps.values())
    queue_1 = steps["HadoopActivity_1"]["Config"]["Args"]
    assert queue_1[0] == "-Dmapreduce.job.queuename=queue_1"
    assert queue_1[-1] == "s3://corpus-wordcount/out/2026-11-21T06:00:00/queue_1/"


# -- issue 11: a value the run is started with is data, and a secret is only a reference -----------------------------

SECRET_NAME = "datapipe-e2e/api-token"
HOSTILE_WORD = "w; touch {marker} $(touch {marker}) `touch {marker}`"


def secret_test_definition() -> dict[str, Any]:
    return {
        "objects": [
            {"id": "Default", "scheduleType": "ondemand"},
            {"id": "Host", "type": "Ec2Resource", "role": "R", "resourceRole": "RR"},
            {"id": "Call", "type": "ShellCommandActivity", "workerGroup": "wg-12345",
             "command": "echo word: #{myWord}; printf %s #{*myToken} | sha256sum"},
            {"id": "Echo", "type": "ShellCommandActivity", "runsOn": {"ref": "Host"}, "dependsOn": {"ref": "Call"},
             "command": "echo batch word: #{myWord}"},
        ],
        "parameters": [{"id": "myWord", "type": "String"}, {"id": "*myToken", "type": "String"}],
    }


def text_of_every_log_group(logs: Any) -> str:
    events = []
    groups = [g for page in logs.get_paginator("describe_log_groups").paginate() for g in page["logGroups"]]
    for group in groups:
        pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group["logGroupName"])
        events += [e["message"] for page in pages for e in page["events"]]
    return "\n".join(events)


def text_of_every_object(s3: Any, bucket: str, prefix: str) -> str:
    texts = []
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        texts.append(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode(errors="replace"))
    return "\n".join(texts)


def test_a_secret_is_read_at_run_time_and_a_starters_value_is_never_run(
    emulator: Any, task_runner: subprocess.Popen[str], tmp_path: Path, assembly_dir: Path
) -> None:
    from click.testing import CliRunner

    from datapipe.cli import cli

    secret = f"s3cr3t-{uuid.uuid4().hex}"
    secrets = emulator.client("secretsmanager")
    try:
        secrets.create_secret(Name=SECRET_NAME, SecretString=secret)
    except secrets.exceptions.ResourceExistsException:
        secrets.put_secret_value(SecretId=SECRET_NAME, SecretString=secret)
    (tmp_path / "secret-test.json").write_text(json.dumps(secret_test_definition()))
    (tmp_path / "values.json").write_text(json.dumps({"values": {"*myToken": f"secretsmanager:{SECRET_NAME}"}}))
    asl_file = tmp_path / "secret-test.asl.json"
    result = CliRunner().invoke(cli, ["import", str(tmp_path / "secret-test.json"), "--values",
                                      str(tmp_path / "values.json"), "--asl", str(asl_file), "--account",
                                      emulator.account, "--region", emulator.region])
    assert result.exit_code == 0, result.output
    asl = json.loads(asl_file.read_text())
    assert asl["States"]["Call"]["Parameters"]["secrets"] == {"myToken": SECRET_NAME}
    # --asl names the job definition without its revision; the stack refers to the deployed one, revision included.
    batch = emulator.client("batch")
    deployed = batch.describe_job_definitions(jobDefinitionName=NAMING.name("pipeline-shell-job-definition"),
                                              status="ACTIVE")["jobDefinitions"][-1]["jobDefinitionArn"]
    asl["States"]["Run_Echo"]["Parameters"]["JobDefinition"] = deployed
    asl_file.write_text(json.dumps(asl))
    sfn = emulator.client("stepfunctions")
    machine = sfn.create_state_machine(name=f"secret-test-{uuid.uuid4().hex[:8]}", definition=asl_file.read_text(),
                                       roleArn=f"arn:aws:iam::{emulator.account}:role/secret-test")["stateMachineArn"]
    marker = tmp_path / "pwned"
    word = HOSTILE_WORD.format(marker=marker)
    execution_arn = start_execution(sfn, machine, {"parameters": {"myWord": word}})
    ended = ended_execution(sfn, execution_arn, timeout=90)
    assert ended["status"] == "SUCCEEDED", ended.get("cause")

    # The starter's value was data: printed as it is by Batch, and none of its commands ran.
    assert f"batch word: {word}" in text_of_every_log_group(emulator.client("logs"))
    assert not marker.exists()

    # The secret's value is nowhere: not in the templates, the ASL, the execution's history, input or output, the
    # log groups, nor the task runner's attempt logs.
    templates = "\n".join(path.read_text() for path in assembly_dir.glob("*.template.json"))
    history = json.dumps(sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"],
                         default=str)
    s3 = emulator.client("s3")
    attempt_logs = text_of_every_object(s3, NAMING.log_bucket(emulator.account, emulator.region), "taskrunner/")
    for place, text in {"templates": templates, "ASL": asl_file.read_text(), "history": history,
                        "execution": json.dumps(ended, default=str),
                        "log groups": text_of_every_log_group(emulator.client("logs")),
                        "attempt logs": attempt_logs}.items():
        assert secret not in text, f"the secret is in the {place}"
    output = json.loads(ended["output"])
    bucket, key = output["Call"]["stdout"].removeprefix("s3://").split("/", 1)
    stdout = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    if RUNNER_READS_ENVIRONMENT:
        assert f"word: {word}" in stdout
    if RUNNER_READS_SECRETS:  # the command got the value: its digest is in the log, the value itself is not
        assert hashlib.sha256(secret.encode()).hexdigest() in stdout
