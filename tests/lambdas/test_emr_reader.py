"""lambdas/emr_reader against moto's EMR: every read, pagination, the workflow's reads, and bad requests."""

from __future__ import annotations

import io
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


# ---------------------------------------------------------------------------------------------------------------------
# CheckCluster: may the workflow act on a cluster it was handed?

CREATED_BY = {"Key": "datapipe:workflow", "Value": "datapipe-dev-emr-workflow"}
OPT_IN = {"Key": "datapipe:reuse", "Value": "datapipe-dev"}


def check(emr: Any, cluster_id: Any) -> dict[str, Any]:
    return reader.serve({"Action": "CheckCluster", "ClusterId": cluster_id, "CreatedBy": CREATED_BY, "OptIn": OPT_IN},
                        emr)


class NoEmr:
    """An EMR client that fails the test if anything calls it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"EMR was called: {name}")


@pytest.mark.parametrize(
    "tags",
    [{"datapipe:workflow": "datapipe-dev-emr-workflow"}, {"datapipe:reuse": "datapipe-dev"}],
    ids=["created by this deployment", "opted in by its owner"],
)
def test_a_cluster_of_this_deployment_or_opted_in_is_allowed(emr: Any, tags: dict[str, str]) -> None:
    cluster_id = make_cluster(emr, tags={"team": "analytics", **tags})
    verdict = ok(check(emr, cluster_id))
    assert (verdict["ClusterId"], verdict["Verdict"], verdict["ClusterState"]) == (cluster_id, "Allowed", "WAITING")


@pytest.mark.parametrize(
    "tags",
    [{}, {"datapipe:reuse": "datapipe-prod"}, {"datapipe:workflow": "datapipe-prod-emr-workflow"},
     {"datapipe:execution": "arn:aws:states:eu-west-1:123456789012:execution:datapipe-dev-emr-workflow:x"}],
    ids=["untagged", "opted in for another stage", "created by another stage", "execution tag only"],
)
def test_any_other_cluster_is_not_allowed_and_the_message_names_the_tag_to_add(emr: Any, tags: dict[str, str]) -> None:
    cluster_id = make_cluster(emr, tags=tags)
    verdict = ok(check(emr, cluster_id))
    assert verdict["Verdict"] == "NotAllowed"
    assert f"cluster {cluster_id} is not this deployment's" in verdict["Message"]
    assert "tagging it datapipe:reuse=datapipe-dev" in verdict["Message"]
    assert "\n" not in verdict["Message"]


def test_an_unknown_or_ended_cluster_is_unavailable(emr: Any) -> None:
    unknown = ok(check(emr, "j-1234567890ABC"))
    assert unknown["Verdict"] == "Unavailable"
    assert unknown["Message"] == "cluster j-1234567890ABC was not found in this account and region"
    ended = make_cluster(emr, tags={"datapipe:reuse": "datapipe-dev"})
    emr.terminate_job_flows(JobFlowIds=[ended])
    verdict = ok(check(emr, ended))
    assert verdict["Verdict"] == "Unavailable"
    assert verdict["Message"] == f"cluster {ended} is TERMINATED: no step can run on it"


@pytest.mark.parametrize(
    "cluster_id",
    ["j-../../x", "j-", "j-1234567890ABCD", "j-abc", "J-ABC", " j-ABC", "j-ABC\n", "s-ABC", None, 7, ["j-ABC"],
     "j-" + "A" * 10_000_000],
    ids=["path", "empty", "14 characters", "lower case", "upper J", "leading space", "newline", "step id", "null",
         "number", "list", "10 MB"],
)
def test_a_malformed_cluster_id_is_refused_before_any_emr_call_with_a_bounded_message(cluster_id: Any) -> None:
    answer = check(NoEmr(), cluster_id)
    assert answer["ok"] is False and answer["error"]["type"] == "BadRequest"
    message = answer["error"]["message"]
    assert message.startswith("field 'ClusterId' must be a cluster id: j- and 1 to 13 upper-case letters or digits")
    assert len(message) < 300


def test_check_cluster_needs_both_tags(emr: Any) -> None:
    for field in ("CreatedBy", "OptIn"):
        request = {"Action": "CheckCluster", "ClusterId": "j-ABC", "CreatedBy": CREATED_BY, "OptIn": OPT_IN}
        request[field] = {"Key": "", "Value": "x" * 1_000_000}
        answer = reader.serve(request, NoEmr())
        assert answer["ok"] is False and f"'{field}'" in answer["error"]["message"]
        assert len(answer["error"]["message"]) < 400


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        ({"Action": "A" * 10_000_000}, "Action"),
        ({"Action": "DescribeStep", "ClusterId": "j-ABC", "StepId": "s-" + "1" * 10_000_000}, "StepId"),
        ({"Action": "ListSteps", "ClusterId": "j-ABC", "StepStates": ["DONE"] * 1_000_000}, "StepStates"),
        ({"Action": "ListClusters", "Tag": {"Key": "k" * 10_000_000}}, "Tag"),
    ],
    ids=["Action", "StepId", "StepStates", "Tag"],
)
def test_a_huge_bad_value_is_echoed_as_a_bounded_summary(
    request_body: dict[str, Any], field: str, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = io.StringIO()  # what the function writes to its log group, as Powertools formats it
    monkeypatch.setattr(reader.logger.registered_handler, "stream", log)
    answer = reader.handler(request_body, lambda_context)
    assert answer["ok"] is False and f"'{field}'" in answer["error"]["message"]
    assert len(answer["error"]["message"]) < 400
    assert "bad request" in log.getvalue()
    assert max(len(line) for line in log.getvalue().splitlines()) < 2000
