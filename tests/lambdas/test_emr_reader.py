"""lambdas/emr_reader against moto's EMR: every read, pagination, the workflow's reads, and bad requests."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emr.models import emr_backends

from lambdas.emr_reader import handler as reader
from tests.lambdas.emr_helpers import add_step, make_cluster

EXECUTION_TAG = "datapipe:execution"


def ok(answer: dict[str, Any]) -> Any:
    assert answer["ok"] is True, answer
    json.dumps(answer)  # what the Lambda runtime does with it: datetimes must already be text
    return answer["result"]


def set_step_state(cluster_id: str, step_id: str, state: str) -> None:
    """moto runs no jobs; the test puts a step into the state a real run would reach."""
    cluster = emr_backends[DEFAULT_ACCOUNT_ID]["eu-west-1"].clusters[cluster_id]
    next(step for step in cluster.steps if step.id == step_id).state = state


def test_describe_cluster_through_the_handler(emr: Any, lambda_context: Any) -> None:
    cluster_id = make_cluster(emr, name="nightly")
    answer = reader.handler({"Action": "DescribeCluster", "ClusterId": cluster_id}, lambda_context)
    cluster = ok(answer)
    assert cluster["Id"] == cluster_id
    assert cluster["Name"] == "nightly"
    assert isinstance(cluster["Status"]["Timeline"]["CreationDateTime"], str)


def test_describe_step(emr: Any) -> None:
    cluster_id = make_cluster(emr)
    step_id = add_step(emr, cluster_id, "The first step")
    step = ok(reader.serve({"Action": "DescribeStep", "ClusterId": cluster_id, "StepId": step_id}, emr))
    assert (step["Id"], step["Name"]) == (step_id, "The first step")


def test_list_steps_follows_every_page_and_filters_by_state(emr: Any) -> None:
    cluster_id = make_cluster(emr)
    step_ids = [add_step(emr, cluster_id, f"step {n}") for n in range(57)]  # moto pages by 50
    listed = ok(reader.serve({"Action": "ListSteps", "ClusterId": cluster_id}, emr))
    assert listed["Count"] == 57
    assert {s["Id"] for s in listed["Steps"]} == set(step_ids)

    set_step_state(cluster_id, step_ids[3], "FAILED")
    failed = ok(reader.serve({"Action": "ListSteps", "ClusterId": cluster_id, "StepStates": ["FAILED"]}, emr))
    assert [s["Id"] for s in failed["Steps"]] == [step_ids[3]]


def test_list_clusters_by_name_and_by_tag(emr: Any) -> None:
    mine = make_cluster(emr, name="WorkflowCluster", tags={EXECUTION_TAG: "arn:exec:1"})
    other_run = make_cluster(emr, name="WorkflowCluster", tags={EXECUTION_TAG: "arn:exec:2"})
    unrelated = make_cluster(emr, name="adhoc")
    emr.terminate_job_flows(JobFlowIds=[other_run])

    by_name = ok(reader.serve({"Action": "ListClusters", "Name": "WorkflowCluster"}, emr))
    assert [c["Id"] for c in by_name["Clusters"]] == [mine]  # active ones only, by default

    by_tag = ok(reader.serve({"Action": "ListClusters", "Tag": {"Key": EXECUTION_TAG, "Value": "arn:exec:1"}}, emr))
    assert [c["Id"] for c in by_tag["Clusters"]] == [mine]

    everything = ok(reader.serve({"Action": "ListClusters", "States": ["TERMINATED", "WAITING", "RUNNING"]}, emr))
    assert {c["Id"] for c in everything["Clusters"]} == {mine, other_run, unrelated}


def test_describe_failure_names_the_failed_step_and_its_log_folder(emr: Any) -> None:
    cluster_id = make_cluster(emr)
    add_step(emr, cluster_id, "The first step")
    failed_step = add_step(emr, cluster_id, "The third step")
    set_step_state(cluster_id, failed_step, "FAILED")

    request = {"Action": "DescribeFailure", "ClusterId": cluster_id, "Error": "States.TaskFailed", "Cause": "failed"}
    report = ok(reader.serve(request, emr))
    assert [s["Name"] for s in report["FailedSteps"]] == ["The third step"]
    log_folder = f"s3://datapipe-dev-logs-123456789012-eu-west-1/emr/{cluster_id}/steps/{failed_step}/"
    assert report["FailedSteps"][0]["LogLocation"] == log_folder
    assert report["Message"].startswith("States.TaskFailed: failed")
    assert f"step 'The third step' ({failed_step}) failed" in report["Message"]
    assert log_folder in report["Message"]


def test_describe_failure_before_any_cluster_and_for_an_unknown_cluster(emr: Any) -> None:
    early = ok(reader.serve({"Action": "DescribeFailure", "Error": "States.Timeout", "Cause": "too slow"}, emr))
    assert early["Message"] == "States.Timeout: too slow"
    assert early["FailedSteps"] == []

    unknown = ok(reader.serve({"Action": "DescribeFailure", "ClusterId": "j-NOSUCHCLUSTER", "Error": "E"}, emr))
    assert "could not be read" in unknown["Message"]


def test_summarize_lists_steps_in_run_order(emr: Any) -> None:
    cluster_id = make_cluster(emr)
    names = ["The first step", "The second step", "The third step"]
    for name in names:
        add_step(emr, cluster_id, name)
    summary = ok(reader.serve({"Action": "Summarize", "ClusterId": cluster_id}, emr))
    assert summary["ClusterId"] == cluster_id
    assert summary["LogUri"] == "s3://datapipe-dev-logs-123456789012-eu-west-1/emr/"
    assert [s["Name"] for s in summary["Steps"]] == names


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        ({"Action": "Nope"}, "Action"),
        ({}, "Action"),
        ({"Action": "DescribeCluster"}, "ClusterId"),
        ({"Action": "DescribeCluster", "ClusterId": "cluster-1"}, "ClusterId"),
        ({"Action": "DescribeStep", "ClusterId": "j-ABC"}, "StepId"),
        ({"Action": "ListSteps", "ClusterId": "j-ABC", "StepStates": ["DONE"]}, "StepStates"),
        ({"Action": "ListClusters", "Tag": {"Key": "k"}}, "Tag"),
        ({"Action": "ListClusters", "Name": ""}, "Name"),
        ({"Action": "ListClusters", "States": "WAITING"}, "States"),
    ],
)
def test_bad_requests_get_an_error_result_naming_the_field(emr: Any, request_body: dict[str, Any], field: str) -> None:
    answer = reader.serve(request_body, emr)
    assert answer["ok"] is False
    assert answer["error"]["type"] == "BadRequest"
    assert f"'{field}'" in answer["error"]["message"]


def test_a_request_that_is_not_an_object(emr: Any, lambda_context: Any) -> None:
    answer = reader.handler(["DescribeCluster"], lambda_context)  # type: ignore[arg-type]
    assert answer["ok"] is False
    assert "JSON object" in answer["error"]["message"]


def test_emr_rejecting_the_read_is_an_error_result(emr: Any) -> None:
    answer = reader.serve({"Action": "DescribeCluster", "ClusterId": "j-NOSUCHCLUSTER"}, emr)
    assert answer["ok"] is False
    assert answer["error"]["type"] == "InvalidRequestException"


def test_throttling_is_raised_for_the_callers_retry() -> None:
    class ThrottledEmr:
        def describe_cluster(self, **_: Any) -> Any:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "DescribeCluster")

    with pytest.raises(ClientError, match="Rate exceeded"):
        reader.serve({"Action": "DescribeCluster", "ClusterId": "j-ABC"}, ThrottledEmr())
