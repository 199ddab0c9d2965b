"""Preconditions, alarms, lateness and Terminate of imported pipelines, run on the emulator.

Definitions written here are imported, built by the same construct the pipelines stack uses, deployed beside the
app under a stage of their own, and run. Alarms go to an SNS topic with an SQS queue subscribed, where the test
reads them back. Wait states run at 1/20 of their time: a retryDelay of 1 minute takes 3 s, and a lateness deadline
30 s ahead 1.5 s. Lateness counts from the run's scheduledStartTime, so the late pipelines are scheduled (a daily
schedule far in the future, which never fires here) and their runs are started with a scheduledStartTime that puts the
deadline where a test wants it: just ahead, or long past (a catch-up run).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from datapipe.naming import Naming
from tests.e2e.helpers import ended_execution, start_execution, wait_for

pytestmark = pytest.mark.e2e

NAMING = Naming(stage="precond")
APP_NAMING = Naming()  # the app's Batch queue runs the jobs
BUCKET = "precond-landing"
TABLE, EMPTY_TABLE = "precond-orders", "precond-empty"
TOPIC = "precond-alarms"
# Batch jobs run as local processes here: a file the test creates is what their commands test.
CASCADE_MARKER = f"/tmp/datapipe-e2e-cascade-{uuid.uuid4().hex}"
SHELL_MARKER = f"/tmp/datapipe-e2e-shell-check-{uuid.uuid4().hex}"


def definitions(topic_arn: str) -> dict[str, dict[str, Any]]:
    """Each a small pipeline whose one Batch job echoes; what differs is what gates it."""

    def pipeline(name: str, *objects: dict[str, Any], scheduled: bool = False, **load: Any) -> dict[str, Any]:
        alarm = {"id": "Tell", "type": "SnsAlarm", "topicArn": topic_arn, "subject": "#{node.@id}",
                 "message": f"{name}: #{{node.@id}} of #{{format(node.@scheduledStartTime, 'YYYY-MM-dd')}}"}
        default = ([{"id": "Default", "scheduleType": "cron", "schedule": {"ref": "Daily"}},
                    {"id": "Daily", "type": "Schedule", "period": "1 day", "startDateTime": "2099-01-01T00:00:00"}]
                   if scheduled else [{"id": "Default", "scheduleType": "ondemand"}])
        return {"objects": [
            *default, alarm,
            {"id": "Host", "type": "Ec2Resource", "role": "R", "resourceRole": "RR"},
            {"id": "Load", "type": "ShellCommandActivity", "runsOn": {"ref": "Host"}, "command": "echo loaded",
             **load},
            *objects]}

    waiting = {"retryDelay": "1 minutes", "preconditionTimeout": "10 minutes"}
    return {
        "wait-for-key": pipeline(
            "wait-for-key",
            {"id": "Ready", "type": "S3KeyExists", "s3Key": f"s3://{BUCKET}/ready/#{{format(@scheduledStartTime, "
             "'YYYY-MM-dd')}/_SUCCESS", **waiting},
            precondition={"ref": "Ready"}),
        "never-there": pipeline(
            "never-there",
            {"id": "Parts", "type": "S3PrefixNotEmpty", "s3Prefix": f"s3://{BUCKET}/never/", "retryDelay": "1 minutes",
             "maximumRetries": "1", "onFail": {"ref": "Tell"}},
            precondition={"ref": "Parts"}),
        "tables": pipeline(
            "tables",
            {"id": "Orders", "type": "DynamoDBTableExists", "tableName": TABLE},
            {"id": "HasOrders", "type": "DynamoDBDataExists", "tableName": TABLE},
            precondition=[{"ref": "Orders"}, {"ref": "HasOrders"}]),
        "empty-table": pipeline(
            "empty-table",
            {"id": "HasRows", "type": "DynamoDBDataExists", "tableName": EMPTY_TABLE, "retryDelay": "1 minutes",
             "maximumRetries": "1"},
            precondition={"ref": "HasRows"}),
        "late": pipeline(
            "late",
            {"id": "Late", "type": "S3KeyExists", "s3Key": f"s3://{BUCKET}/late/{LATE_KEY}", **waiting},
            precondition={"ref": "Late"}, lateAfterTimeout="30 minutes", onLateAction={"ref": "Tell"}, scheduled=True),
        "late-node": pipeline(
            "late-node",
            {"id": "Arrived", "type": "S3KeyExists", "s3Key": f"s3://{BUCKET}/late-node/_SUCCESS", **waiting},
            {"id": "Raw", "type": "S3DataNode", "directoryPath": f"s3://{BUCKET}/late-node/",
             "precondition": {"ref": "Arrived"}, "lateAfterTimeout": "2 hours", "onLateAction": {"ref": "Tell"}},
            input={"ref": "Raw"}, scheduled=True),
        "shell-check": pipeline(
            "shell-check",
            {"id": "Marked", "type": "ShellCommandPrecondition", "command": f"test -f {SHELL_MARKER}", **waiting},
            precondition={"ref": "Marked"}),
        "cascade": {"objects": [
            {"id": "Default", "scheduleType": "ondemand", "failureAndRerunMode": "CASCADE"},
            {"id": "Host", "type": "Ec2Resource", "role": "R", "resourceRole": "RR"},
            {"id": "Extract", "type": "ShellCommandActivity", "runsOn": {"ref": "Host"},
             "command": f"test -f {CASCADE_MARKER}"},
            {"id": "Publish", "type": "ShellCommandActivity", "runsOn": {"ref": "Host"}, "command": "echo published",
             "dependsOn": {"ref": "Extract"}}]},
        "cascade-alarm": {"objects": [
            {"id": "Default", "scheduleType": "ondemand", "failureAndRerunMode": "CASCADE"},
            {"id": "Tell", "type": "SnsAlarm", "topicArn": topic_arn, "subject": "failed", "message": "alarm: failed"},
            {"id": "Host", "type": "Ec2Resource", "role": "R", "resourceRole": "RR"},
            {"id": "Extract", "type": "ShellCommandActivity", "runsOn": {"ref": "Host"},
             "command": f"test -f {CASCADE_MARKER}", "onFail": {"ref": "Tell"}},
            {"id": "Publish", "type": "ShellCommandActivity", "runsOn": {"ref": "Host"}, "command": "echo published",
             "dependsOn": {"ref": "Extract"}}]},
        "terminated": pipeline(
            "terminated",
            {"id": "Stop", "type": "Terminate"},
            {"id": "NotYet", "type": "S3KeyExists", "s3Key": f"s3://{BUCKET}/not-yet/_SUCCESS", **waiting},
            precondition={"ref": "NotYet"}, lateAfterTimeout="1 hours", onLateAction=[{"ref": "Tell"}, {"ref": "Stop"}],
            scheduled=True),
    }


@pytest.fixture(scope="module")
def alarms(emulator: Any) -> tuple[str, str]:
    """The alarms' topic with a queue subscribed: (topic ARN, queue URL)."""
    sns, sqs = emulator.client("sns"), emulator.client("sqs")
    topic_arn = sns.create_topic(Name=TOPIC)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=TOPIC)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    return topic_arn, queue_url


@pytest.fixture(scope="module")
def workflows(emulator: Any, alarms: tuple[str, str], tmp_path_factory: pytest.TempPathFactory,
              cdk_json_context: dict[str, object]) -> dict[str, str]:
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3

    from datapipe.bundles.names import job_queue_name
    from datapipe.importer import import_file
    from datapipe.local.deploy import Deployer
    from stacks.config import PipelineSettings, WorkerGroupSettings
    from stacks.pipelines import PipelineWorkflow, ShellJobDefinition, batch_buckets
    from stacks.run_values import PipelineRunValues

    emulator.client("s3").create_bucket(Bucket=BUCKET,
                                        CreateBucketConfiguration={"LocationConstraint": emulator.region})
    dynamodb = emulator.client("dynamodb")
    for table in (TABLE, EMPTY_TABLE):
        dynamodb.create_table(TableName=table, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                              BillingMode="PAY_PER_REQUEST")
    dynamodb.put_item(TableName=TABLE, Item={"id": {"S": "order-1"}})
    folder = tmp_path_factory.mktemp("preconditions")
    plans = []
    for name, definition in definitions(alarms[0]).items():
        (folder / f"{name}.json").write_text(json.dumps(definition))
        plans.append(import_file(folder / f"{name}.json"))
    assert all(plan.deployable for plan in plans), [plan.errors for plan in plans]
    app = cdk.App(context=cdk_json_context, outdir=str(folder / "out"))
    stack = cdk.Stack(app, "PreconditionPipelines", stack_name=NAMING.stack("pipelines"),
                      env=cdk.Environment(account=emulator.account, region=emulator.region))
    jobs = ShellJobDefinition(stack, "Jobs", naming=NAMING, image="amazonlinux:2023", fargate=False,
                              buckets=batch_buckets(plans), removal_policy=cdk.RemovalPolicy.DESTROY)
    queue = f"arn:aws:batch:{emulator.region}:{emulator.account}:job-queue/{job_queue_name(APP_NAMING)}"
    # The lateness deadlines are run values: the stage's own run-values function, as the pipelines stack deploys it.
    PipelineRunValues(stack, "RunValues", naming=NAMING, powertools_layer_version=27,
                      removal_policy=cdk.RemovalPolicy.DESTROY)
    for plan in plans:
        PipelineWorkflow(stack, plan.name, naming=NAMING, plan=plan, settings=PipelineSettings(),
                         worker_groups=WorkerGroupSettings(), job_queue_arn=queue,
                         job_definition_arn=jobs.job_definition.job_definition_arn,
                         log_bucket=s3.Bucket.from_bucket_name(stack, f"Logs{plan.name}", BUCKET),
                         removal_policy=cdk.RemovalPolicy.DESTROY)
    app.synth()
    Deployer(emulator.client, account=emulator.account, region=emulator.region).deploy(folder / "out")
    return {plan.name: NAMING.state_machine_arn(f"pipeline-{plan.name}", account=emulator.account,
                                                region=emulator.region) for plan in plans}


RUN_TIME = "2026-11-21T06:00:00Z"
LATE_KEY = "#{format(@scheduledStartTime, 'YYYY-MM-dd-HH-mm-ss')}/_SUCCESS"  # each run of "late" waits for its own
STARTED_TOGETHER = ("wait-for-key", "never-there", "tables", "empty-table", "terminated", "shell-check")
LATE_IN = 30  # seconds of real time from a late run's start to its deadline (1.5 s at the tests' wait scale)


def scheduled_ago(delta: timedelta) -> str:
    """A scheduledStartTime `delta` before now, in whole seconds as schedules give it."""
    return (datetime.now(UTC).replace(microsecond=0) - delta).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def runs(emulator: Any, workflows: dict[str, str]) -> dict[str, tuple[str, float, str]]:
    """One run of each pipeline, all started at once (their waits overlap): name -> (execution ARN, start time,
    scheduledStartTime). "terminated" was scheduled days ago (a catch-up run); "late" and "late-node" so that their
    deadline is LATE_IN s ahead; "on-time", a run of "late" whose key is there, 10 minutes ago (its deadline 20 minutes
    ahead)."""
    sfn = emulator.client("stepfunctions")
    starts = {name: (name, RUN_TIME) for name in STARTED_TOGETHER}
    starts["late"] = ("late", scheduled_ago(timedelta(minutes=30) - timedelta(seconds=LATE_IN)))
    starts["late-node"] = ("late-node", scheduled_ago(timedelta(hours=2) - timedelta(seconds=LATE_IN)))
    starts["on-time"] = ("late", scheduled_ago(timedelta(minutes=10)))
    on_time = starts["on-time"][1].replace("T", "-").replace(":", "-").removesuffix("Z")  # as LATE_KEY formats it
    emulator.client("s3").put_object(Bucket=BUCKET, Key=f"late/{on_time}/_SUCCESS", Body=b"")
    return {name: (start_execution(sfn, workflows[workflow], {"scheduledStartTime": when}), time.monotonic(), when)
            for name, (workflow, when) in starts.items()}


class Inbox:
    """The alarms read from the queue so far: several runs publish at once, so none is dropped unread."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self.sqs, self.queue_url, self.bodies = sqs, queue_url, list[str]()

    def wait(self, prefix: str, timeout: float = 20.0) -> str:
        """The first alarm whose message starts with `prefix`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((body for body in self.bodies if body.startswith(prefix)), None)
            if found is not None:
                return found
            for message in self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                                    WaitTimeSeconds=1).get("Messages", []):
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                self.bodies.append(message["Body"])
        raise AssertionError(f"no alarm starting with {prefix!r} within {timeout} s (got {self.bodies})")


@pytest.fixture(scope="module")
def inbox(emulator: Any, alarms: tuple[str, str]) -> Inbox:
    return Inbox(emulator.client("sqs"), alarms[1])


def states_entered(sfn: Any, execution: str) -> list[str]:
    events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def test_a_run_waits_for_its_key_and_goes_on_once_it_appears(emulator: Any, runs: dict[str, tuple[str, float, str]]
                                                             ) -> None:
    sfn, s3 = emulator.client("stepfunctions"), emulator.client("s3")
    execution, *_ = runs["wait-for-key"]
    wait_for("a check that finds no key and waits",
             lambda: "Wait_Before_Checking_Ready_Load" in states_entered(sfn, execution), timeout=20)
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    s3.put_object(Bucket=BUCKET, Key="ready/2026-11-21/_SUCCESS", Body=b"")  # the run's own date, worked by hand
    result = ended_execution(sfn, execution, timeout=60)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert "Run_Load" in states_entered(sfn, execution)


def test_a_shell_precondition_on_an_ec2_resource_is_a_batch_job_whose_exit_code_decides(
    emulator: Any, runs: dict[str, tuple[str, float, str]]
) -> None:
    sfn = emulator.client("stepfunctions")
    execution, *_ = runs["shell-check"]
    wait_for("a check whose command exits non-zero, and a wait",
             lambda: "Wait_Before_Checking_Marked_Load" in states_entered(sfn, execution), timeout=20)
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    with open(SHELL_MARKER, "w"):
        pass
    try:
        result = ended_execution(sfn, execution, timeout=60)
    finally:
        os.remove(SHELL_MARKER)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    entered = states_entered(sfn, execution)
    assert entered.count("Run_Marked_Load") >= 2 and "Run_Load" in entered


def test_a_precondition_that_never_holds_fails_the_run_naming_it_and_alarms(
    emulator: Any, runs: dict[str, tuple[str, float, str]], inbox: Inbox
) -> None:
    sfn = emulator.client("stepfunctions")
    execution, *_ = runs["never-there"]
    result = ended_execution(sfn, execution, timeout=60)
    assert result["status"] == "FAILED" and result["error"] == "PreconditionFailed"
    assert "precondition Parts" in result["cause"] and f"s3://{BUCKET}/never/" in result["cause"]
    assert "2 checks" in result["cause"]  # maximumRetries 1: the first check and one retry
    assert "Run_Load" not in states_entered(sfn, execution)
    # The precondition's onFail, with the expressions evaluated for the activity it gates.
    assert inbox.wait("never-there:") == "never-there: Load of 2026-11-21"


def test_dynamodb_checks_read_the_table_on_the_emulator(emulator: Any, runs: dict[str, tuple[str, float, str]]) -> None:
    sfn = emulator.client("stepfunctions")
    result = ended_execution(sfn, runs["tables"][0], timeout=60)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    result = ended_execution(sfn, runs["empty-table"][0], timeout=60)
    assert result["status"] == "FAILED" and result["error"] == "PreconditionFailed"
    assert f"DynamoDB table {EMPTY_TABLE}" in result["cause"]


def wait_seconds(sfn: Any, execution: str, state: str) -> tuple[float, dict[str, Any]]:
    """How long a Wait state waited (from the history's timestamps), and the input it received."""
    events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    entered = next(e for e in events if e.get("stateEnteredEventDetails", {}).get("name") == state)
    exited = next(e for e in events if e.get("stateExitedEventDetails", {}).get("name") == state)
    waited = (exited["timestamp"] - entered["timestamp"]).total_seconds()
    return waited, json.loads(entered["stateEnteredEventDetails"]["input"])


def test_a_late_activity_alarms_at_its_deadline_while_its_run_goes_on(
    emulator: Any, runs: dict[str, tuple[str, float, str]], inbox: Inbox
) -> None:
    sfn = emulator.client("stepfunctions")
    execution, _, scheduled = runs["late"]
    day = scheduled[:10]
    assert inbox.wait("late:") == f"late: Load of {day}"
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    # Late at scheduledStartTime + 30 minutes, worked out here: the Wait read that timestamp, and waited for it.
    waited, state = wait_seconds(sfn, execution, "Wait_Until_Load_Is_Late")
    deadline = datetime.strptime(scheduled, "%Y-%m-%dT%H:%M:%SZ") + timedelta(minutes=30)
    assert deadline.strftime("%Y-%m-%dT%H:%M:%SZ") in state["runtime"].values()
    assert LATE_IN * 0.05 - 1.2 <= waited <= LATE_IN * 0.05 + 1.5, waited  # moto waits whole seconds, scaled
    assert "Notify_Tell_Load_late" in states_entered(sfn, execution)
    sfn.stop_execution(executionArn=execution)  # a watched run that ends: the on-time run below


def test_an_activity_that_ends_before_its_deadline_is_not_late(
    emulator: Any, runs: dict[str, tuple[str, float, str]]
) -> None:
    sfn = emulator.client("stepfunctions")
    execution, started, _ = runs["on-time"]
    result = ended_execution(sfn, execution, timeout=30)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    entered = states_entered(sfn, execution)
    # Its end stopped the watcher at once (its deadline, 20 minutes ahead, would be a minute here): no alarm.
    assert "Wait_Until_Load_Is_Late" in entered and "Notify_Tell_Load_late" not in entered
    assert time.monotonic() - started < 30


def test_a_data_node_not_ready_by_its_deadline_alarms(
    emulator: Any, runs: dict[str, tuple[str, float, str]], inbox: Inbox
) -> None:
    sfn = emulator.client("stepfunctions")
    execution, _, scheduled = runs["late-node"]
    # node.@id is the data node in its own alarm.
    assert inbox.wait("late-node:") == f"late-node: Raw of {scheduled[:10]}"
    entered = states_entered(sfn, execution)
    assert "Notify_Tell_Raw_Load_late" in entered and "Run_Load" not in entered
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"  # its checks go on
    sfn.stop_execution(executionArn=execution)


def test_a_run_started_on_demand_is_never_late(emulator: Any, workflows: dict[str, str]) -> None:
    sfn = emulator.client("stepfunctions")
    execution = start_execution(sfn, workflows["terminated"], {})  # its catch-up run is terminated at once
    wait_for("its watcher's end", lambda: "No_Lateness_On_Demand_Load" in states_entered(sfn, execution), timeout=20)
    assert "Wait_Until_Load_Is_Late" not in states_entered(sfn, execution)
    sfn.stop_execution(executionArn=execution)


def test_a_catch_up_run_is_late_at_once_and_terminate_ends_it(
    emulator: Any, runs: dict[str, tuple[str, float, str]], inbox: Inbox
) -> None:
    sfn = emulator.client("stepfunctions")
    execution, *_ = runs["terminated"]  # scheduled 2026-11-21 06:00, 1 hour: late since 07:00 that day
    result = ended_execution(sfn, execution, timeout=60)
    assert result["status"] == "FAILED" and result["error"] == "Terminated", result
    assert "terminated by Stop" in result["cause"]
    lasted = (result["stopDate"] - result["startDate"]).total_seconds()
    assert lasted < 10, lasted  # at once: not after the hour (3 minutes here), nor the precondition's 10 checks
    assert "Run_Load" not in states_entered(sfn, execution)
    assert inbox.wait("terminated:") == "terminated: Load of 2026-11-21"
    # Rerun from the start (it ended in its Terminate's Fail): the same scheduledStartTime, but a rerun is not watched
    # again, or it would be terminated at once again.
    from click.testing import CliRunner

    from datapipe.cli import cli

    rerun = CliRunner().invoke(cli, ["rerun", execution, "--stage", "precond", "--from-start", "--json"])
    assert rerun.exit_code == 0, rerun.output
    again = json.loads(rerun.output)["executionArn"]
    wait_for("the rerun's watcher's end", lambda: "No_Lateness_On_Demand_Load" in states_entered(sfn, again),
             timeout=20)
    assert "Wait_Until_Load_Is_Late" not in states_entered(sfn, again)
    sfn.stop_execution(executionArn=again)


def test_a_cascade_failed_consumer_runs_when_the_run_is_redriven(emulator: Any, workflows: dict[str, str]) -> None:
    from click.testing import CliRunner

    from datapipe.cli import cli

    sfn = emulator.client("stepfunctions")
    execution = start_execution(sfn, workflows["cascade"], {})
    result = ended_execution(sfn, execution, timeout=60)
    assert result["status"] == "FAILED" and "Run_Publish" not in states_entered(sfn, execution)
    with open(CASCADE_MARKER, "w"):
        pass
    try:
        rerun = CliRunner().invoke(cli, ["rerun", execution, "--stage", "precond", "--json"])
        assert rerun.exit_code == 0, rerun.output
        assert json.loads(rerun.output)["action"] == "redriven"
        result = ended_execution(sfn, execution, timeout=60)
        assert result["status"] == "SUCCEEDED", result.get("cause")
        # The redrive resumed at the failed activity and ran its cascade-failed consumer.
        assert states_entered(sfn, execution).count("Run_Extract") == 2
        assert states_entered(sfn, execution).count("Run_Publish") == 1
    finally:
        os.remove(CASCADE_MARKER)


def test_a_run_that_failed_through_its_on_fail_path_is_rerun_from_the_start_only_when_asked(
    emulator: Any, workflows: dict[str, str], inbox: Inbox
) -> None:
    from click.testing import CliRunner

    from datapipe.cli import cli

    sfn = emulator.client("stepfunctions")
    execution = start_execution(sfn, workflows["cascade-alarm"], {})
    result = ended_execution(sfn, execution, timeout=60)
    assert result["status"] == "FAILED" and "cascade-failed, not run: Publish" in result["cause"]
    assert inbox.wait("alarm:") == "alarm: failed"
    # Its last state is the Fail at the end of Extract's onFail path: a redrive would fail there again at once.
    rerun = CliRunner().invoke(cli, ["rerun", execution, "--stage", "precond"])
    assert rerun.exit_code == 1 and len(rerun.output.strip().splitlines()) == 1, rerun.output
    assert "ended in its Fail state Extract_Failed_In_Its_Task" in rerun.output and "--from-start" in rerun.output
    assert sfn.describe_execution(executionArn=execution).get("redriveCount", 0) == 0
    rerun = CliRunner().invoke(cli, ["rerun", execution, "--stage", "precond", "--from-start", "--json"])
    assert rerun.exit_code == 0, rerun.output
    again = json.loads(rerun.output)
    assert again["action"] == "started" and again["reason"] == "--from-start"
    sfn.stop_execution(executionArn=again["executionArn"])


def test_a_cluster_not_running_by_its_deadline_alarms_and_keeps_its_id(
    emulator: Any, alarms: tuple[str, str], inbox: Inbox, tmp_path: Any
) -> None:
    from tests.e2e.helpers import imported_state_machine

    definition = {"objects": [
        {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "Daily"}},
        {"id": "Daily", "type": "Schedule", "period": "1 day", "startDateTime": "2099-01-01T00:00:00"},
        {"id": "Tell", "type": "SnsAlarm", "topicArn": alarms[0], "subject": "late", "message": "cluster: #{node.@id}"},
        {"id": "Cluster", "type": "EmrCluster", "releaseLabel": "emr-7.5.0", "lateAfterTimeout": "1 hour",
         "onLateAction": {"ref": "Tell"}},
        {"id": "Count", "type": "EmrActivity", "runsOn": {"ref": "Cluster"}, "step": "command-runner.jar,echo,hi"}]}
    sfn = emulator.client("stepfunctions")
    machine = imported_state_machine(emulator, tmp_path, "late-cluster", definition)
    # A catch-up run, scheduled days ago: late at once, while its cluster is being created; the run goes on.
    execution = start_execution(sfn, machine, {"scheduledStartTime": RUN_TIME})
    assert inbox.wait("cluster:") == "cluster: Cluster"
    result = ended_execution(sfn, execution, timeout=90)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    entered = states_entered(sfn, execution)
    assert entered.index("Notify_Tell_Cluster_late") < entered.index("Cluster_Cluster_Running") \
        < entered.index("Run_Count_1")
    # The id left the watch as the cause of Datapipe.Finished and was put back: the step and the end used it.
    cluster_id = json.loads(result["output"])["clusters"]["Cluster"]["ClusterId"]
    assert emulator.client("emr").describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"] == "TERMINATED"
