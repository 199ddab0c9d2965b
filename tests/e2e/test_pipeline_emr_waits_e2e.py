"""An imported EMR pipeline (pipelines/emr-word-count.json, deployed with the app) waits on EMR's events on the
emulator: its waits are answered by the pipelines stack's emr_waits function, which EventBridge calls with the
emulator's "EMR Cluster State Change" and "EMR Step Status Change" events; a failed step fails the run with the
step's cause and log file, and the cluster is terminated, as with `.sync`.

A wait that is not answered within 300 s is re-checked (States.Timeout, retried): a run of a few seconds with no
States.Timeout in its history was answered on EMR's events, not by a re-check.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest

from datapipe.naming import Naming
from datapipe.operate.history import History

from .helpers import ended_execution, start_execution

NAMING = Naming()
RUN = {"scheduledStartTime": "2026-11-21T06:00:00Z", "parameters": {"myOutputFolder": "s3://word-counts/out"}}
WAIT_RESOURCE = "invoke.waitForTaskToken"


@pytest.fixture()
def quick_steps(emulator: Any) -> Iterator[None]:
    """Steps of 0.25 s instead of 1 s: still long enough that each wait is kept before its step ends (so that the
    event answers it), short enough to keep the suite's time. The next e2e test configures the default again."""
    emulator.extensions.configure(dataclasses.replace(emulator.options, emr_step_duration=0.25))
    yield
    emulator.extensions.configure(emulator.options)


def run(emulator: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    sfn = emulator.client("stepfunctions")
    arn = NAMING.state_machine_arn("pipeline-emr-word-count", account=emulator.account, region=emulator.region)
    ended = ended_execution(sfn, start_execution(sfn, arn, RUN), timeout=60)
    events = sfn.get_execution_history(executionArn=ended["executionArn"], maxResults=1000)["events"]
    return ended, events


def scheduled_resources(events: list[dict[str, Any]]) -> list[str]:
    return [e["taskScheduledEventDetails"]["resource"] for e in events if e["type"] == "TaskScheduled"]


def no_token_left(emulator: Any, cluster_id: str) -> bool:
    items = emulator.client("dynamodb").scan(TableName=NAMING.name("pipeline-emr-waits"))["Items"]
    return not [item for item in items if item["ClusterId"]["S"] == cluster_id]


@pytest.mark.e2e
def test_the_imported_emr_pipeline_ends_on_emr_events(emulator: Any, quick_steps: None) -> None:
    ended, events = run(emulator)
    assert ended["status"] == "SUCCEEDED", ended.get("cause")
    resources = scheduled_resources(events)
    assert not [r for r in resources if r.endswith(".sync")], resources
    callbacks = [json.loads(e["taskSucceededEventDetails"]["output"]) for e in events
                 if e["type"] == "TaskSucceeded" and e["taskSucceededEventDetails"]["resource"] == WAIT_RESOURCE]
    # What .sync would have output: the cluster ready, the four steps COMPLETED, the cluster TERMINATED.
    assert [c["Status"]["State"] for c in callbacks] == ["WAITING", "COMPLETED", "COMPLETED", "COMPLETED",
                                                          "COMPLETED", "TERMINATED"]
    assert [c["Name"] for c in callbacks[1:5]] == ["WordCount-pre-1", "WordCount-1", "WordCount-post-1",
                                                   "ListOutput"]
    assert not [e for e in events if "States.Timeout" in json.dumps(e, default=str)]  # no re-check was needed
    cluster_id = json.loads(ended["output"])["clusters"]["WordCountCluster"]["ClusterId"]
    assert callbacks[0]["ClusterId"] == cluster_id and no_token_left(emulator, cluster_id)


@pytest.mark.e2e
def test_a_failed_step_fails_the_run_with_its_cause_and_log_and_terminates_the_cluster(
    emulator: Any, quick_steps: None
) -> None:
    emulator.faults.fail_emr_step("WordCount-1", reason="Injected: the word count failed")
    ended, events = run(emulator)
    assert ended["status"] == "FAILED" and ended["error"] == "PipelineFailed"
    # The run's failing state, as the operate commands report it: the EMR task, with the wait's error and cause.
    failure = History(events).failure()
    assert failure is not None and failure.state == "Run_WordCount_1"
    assert failure.error == "datapipe.EmrTaskFailed"
    step = json.loads(failure.cause)
    assert step["Name"] == "WordCount-1" and step["Status"]["State"] == "FAILED"
    details = step["Status"]["FailureDetails"]
    assert details["Reason"] == "Injected: the word count failed"
    assert details["LogFile"].startswith("s3://") and step["StepId"] in details["LogFile"]
    # The activity's maximumRetries (1) ran the step again, as a retry of addStep.sync does; the steps after it never
    # ran; the cleanup terminated the cluster (and waited for it, on its event).
    started = [json.loads(e["taskScheduledEventDetails"]["parameters"])["Step"]["Name"] for e in events
               if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resource"] == "addStep"]
    assert started == ["WordCount-pre-1", "WordCount-1", "WordCount-1"]
    emr = emulator.client("emr")
    [cluster] = [c for c in emr.list_clusters()["Clusters"]
                 if {"Key": "datapipe:execution", "Value": ended["executionArn"]}
                 in emr.describe_cluster(ClusterId=c["Id"])["Cluster"].get("Tags", [])]
    assert cluster["Status"]["State"] == "TERMINATED"
    assert "Wait_For_Cleanup_Terminate_WordCountCluster_after_failure" in History(events).state_names()
    assert no_token_left(emulator, cluster["Id"])
