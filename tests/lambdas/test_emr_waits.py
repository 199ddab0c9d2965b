"""lambdas/emr_waits against moto's EMR and DynamoDB: a wait kept and answered by an event, a token not found, a
state reached before the token was kept (answered at once), a failed step's cause, tokens that already ended, and
malformed requests. Step Functions' answers are recorded (moto's SendTask* do nothing)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emr.models import emr_backends

from lambdas.emr_waits import handler as waits
from tests.lambdas.emr_helpers import add_step, make_cluster

TABLE = "datapipe-dev-emr-waits"
EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:datapipe-dev-emr-workflow:run-1"


class RecordedStepFunctions:
    """The SendTask* calls the function makes; a token in `gone` is answered as Step Functions answers an ended one."""

    def __init__(self) -> None:
        self.answers: list[dict[str, Any]] = []
        self.gone: set[str] = set()

    def _record(self, answer: dict[str, Any]) -> None:
        if answer["taskToken"] in self.gone:
            raise ClientError({"Error": {"Code": "TaskTimedOut", "Message": "Task Timed Out"}}, "SendTaskSuccess")
        self.answers.append(answer)

    def send_task_success(self, **answer: Any) -> None:
        self._record({**answer, "output": json.loads(answer["output"])})

    def send_task_failure(self, **answer: Any) -> None:
        self._record(answer)


@pytest.fixture()
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name="eu-west-1")
        table = dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "WaitFor", "KeyType": "HASH"},
                       {"AttributeName": "Waiter", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "WaitFor", "AttributeType": "S"},
                                  {"AttributeName": "Waiter", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield {"table": table, "emr": boto3.client("emr", region_name="eu-west-1"), "sfn": RecordedStepFunctions()}


def serve(aws: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = waits.serve(request, table=aws["table"], emr=aws["emr"], sfn=aws["sfn"], ttl_seconds=600)
    return answer


def cluster_obj(cluster_id: str) -> Any:
    return emr_backends[DEFAULT_ACCOUNT_ID]["eu-west-1"].clusters[cluster_id]


def set_cluster_state(cluster_id: str, state: str) -> None:
    cluster_obj(cluster_id).state = state


def set_step_state(cluster_id: str, step_id: str, state: str) -> None:
    next(step for step in cluster_obj(cluster_id).steps if step.id == step_id).state = state


def await_request(until: str, cluster_id: str, step_id: str | None = None, token: str = "token-1",
                  state: str = "Wait") -> dict[str, Any]:
    request = {"Action": "Await", "TaskToken": token, "Until": until, "ClusterId": cluster_id,
               "Execution": EXECUTION, "State": state}
    if step_id:
        request["StepId"] = step_id
    return request


def emr_event(detail_type: str, **detail: Any) -> dict[str, Any]:
    """An event shaped like the examples of EMR's documentation (Amazon EMR Management Guide, "Monitoring Amazon
    EMR events with CloudWatch")."""
    return {"version": "0", "id": "1", "detail-type": detail_type, "source": "aws.emr", "account": "123456789012",
            "time": "2026-11-30T07:00:00Z", "region": "eu-west-1", "resources": [], "detail": detail}


def kept(aws: dict[str, Any]) -> list[dict[str, Any]]:
    return list(aws["table"].scan()["Items"])


def test_a_step_wait_is_kept_then_answered_by_its_event_with_the_described_step(aws: dict[str, Any]) -> None:
    cluster_id = make_cluster(aws["emr"])
    step_id = add_step(aws["emr"], cluster_id, "Step_One")
    set_step_state(cluster_id, step_id, "RUNNING")

    assert serve(aws, await_request("StepEnded", cluster_id, step_id)) == {"ok": True, "answered": False}
    assert aws["sfn"].answers == []
    [item] = kept(aws)
    assert (item["WaitFor"], item["TaskToken"], item["Until"]) == (step_id, "token-1", "StepEnded")
    assert item["ExpiresAt"] > 0  # the table's TTL attribute

    # An event for another step, and a non-final one for this step, answer nothing.
    serve(aws, emr_event("EMR Step Status Change", stepId="s-OTHER", clusterId=cluster_id, state="COMPLETED"))
    serve(aws, emr_event("EMR Step Status Change", stepId=step_id, clusterId=cluster_id, state="RUNNING"))
    assert aws["sfn"].answers == []

    set_step_state(cluster_id, step_id, "COMPLETED")
    answer = serve(aws, emr_event("EMR Step Status Change", stepId=step_id, clusterId=cluster_id, state="COMPLETED",
                                  name="Step_One", severity="INFO", actionOnFailure="CONTINUE", message="done"))
    assert answer == {"ok": True, "answered": 1}
    [success] = aws["sfn"].answers
    assert success["taskToken"] == "token-1"
    assert success["output"]["StepId"] == step_id
    assert success["output"]["Name"] == "Step_One"
    assert success["output"]["Status"]["State"] == "COMPLETED"
    assert kept(aws) == []


def test_an_event_no_wait_is_kept_for_answers_nothing(aws: dict[str, Any]) -> None:
    cluster_id = make_cluster(aws["emr"])
    answer = serve(aws, emr_event("EMR Cluster State Change", clusterId=cluster_id, state="WAITING"))
    assert answer == {"ok": True, "answered": 0}
    assert aws["sfn"].answers == []


def test_a_step_that_ended_before_its_token_was_kept_is_answered_at_once(aws: dict[str, Any]) -> None:
    cluster_id = make_cluster(aws["emr"])
    step_id = add_step(aws["emr"], cluster_id, "Step_Three")
    set_step_state(cluster_id, step_id, "COMPLETED")  # its event came before the token: the race

    assert serve(aws, await_request("StepEnded", cluster_id, step_id)) == {"ok": True, "answered": True}
    [success] = aws["sfn"].answers
    assert success["output"]["Status"]["State"] == "COMPLETED"
    assert kept(aws) == []


def test_a_failed_step_fails_the_wait_as_sync_does_with_its_description_as_cause(aws: dict[str, Any]) -> None:
    cluster_id = make_cluster(aws["emr"])
    step_id = add_step(aws["emr"], cluster_id, "Step_One")
    serve(aws, await_request("StepEnded", cluster_id, step_id))
    set_step_state(cluster_id, step_id, "FAILED")
    serve(aws, emr_event("EMR Step Status Change", stepId=step_id, clusterId=cluster_id, state="FAILED"))

    [failure] = aws["sfn"].answers
    assert failure["error"] == "datapipe.EmrTaskFailed"
    cause = json.loads(failure["cause"])
    assert (cause["StepId"], cause["Name"], cause["Status"]["State"]) == (step_id, "Step_One", "FAILED")
    assert kept(aws) == []


def test_cluster_waits_succeed_and_fail_on_the_states_sync_uses(aws: dict[str, Any]) -> None:
    cluster_id = make_cluster(aws["emr"])
    set_cluster_state(cluster_id, "STARTING")
    serve(aws, await_request("ClusterReady", cluster_id, token="ready"))
    serve(aws, emr_event("EMR Cluster State Change", clusterId=cluster_id, state="BOOTSTRAPPING"))
    assert aws["sfn"].answers == []
    set_cluster_state(cluster_id, "WAITING")
    serve(aws, emr_event("EMR Cluster State Change", clusterId=cluster_id, state="WAITING"))
    [ready] = aws["sfn"].answers
    assert (ready["taskToken"], ready["output"]["ClusterId"]) == ("ready", cluster_id)
    assert ready["output"]["Status"]["State"] == "WAITING"

    serve(aws, await_request("ClusterTerminated", cluster_id, token="gone", state="Wait_For_Termination"))
    set_cluster_state(cluster_id, "TERMINATED_WITH_ERRORS")
    serve(aws, emr_event("EMR Cluster State Change", clusterId=cluster_id, state="TERMINATED_WITH_ERRORS"))
    failure = aws["sfn"].answers[1]
    assert (failure["taskToken"], failure["error"]) == ("gone", "datapipe.EmrTaskFailed")
    assert json.loads(failure["cause"])["Status"]["State"] == "TERMINATED_WITH_ERRORS"


def test_a_cluster_that_terminates_while_starting_fails_the_ready_wait(aws: dict[str, Any]) -> None:
    cluster_id = make_cluster(aws["emr"])
    set_cluster_state(cluster_id, "TERMINATING")
    assert serve(aws, await_request("ClusterReady", cluster_id))["answered"] is True
    assert aws["sfn"].answers[0]["error"] == "datapipe.EmrTaskFailed"


def test_a_recheck_replaces_the_token_of_the_same_wait(aws: dict[str, Any]) -> None:
    """A timed-out wait invokes the function again with a new token: one item per waiter, holding the newest."""
    cluster_id = make_cluster(aws["emr"])
    step_id = add_step(aws["emr"], cluster_id, "Step_One")
    set_step_state(cluster_id, step_id, "RUNNING")
    serve(aws, await_request("StepEnded", cluster_id, step_id, token="first"))
    serve(aws, await_request("StepEnded", cluster_id, step_id, token="second"))
    assert [item["TaskToken"] for item in kept(aws)] == ["second"]


def test_a_token_that_already_ended_is_forgotten_without_error(aws: dict[str, Any]) -> None:
    cluster_id = make_cluster(aws["emr"])
    step_id = add_step(aws["emr"], cluster_id, "Step_One")
    set_step_state(cluster_id, step_id, "RUNNING")
    serve(aws, await_request("StepEnded", cluster_id, step_id, token="stopped"))
    aws["sfn"].gone.add("stopped")  # the execution was stopped meanwhile
    set_step_state(cluster_id, step_id, "CANCELLED")
    assert serve(aws, emr_event("EMR Step Status Change", stepId=step_id, clusterId=cluster_id,
                                state="CANCELLED"))["ok"] is True
    assert kept(aws) == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"Until": "Forever"}, "'Until'"),
        ({"ClusterId": "j-../../x" * 100_000}, "'ClusterId'"),
        ({"StepId": ["s-1"]}, "'StepId'"),
        ({"Execution": ""}, "'Execution'"),
        ({"TaskToken": "t" * 5000}, "'TaskToken'"),
    ],
)
def test_a_malformed_await_names_its_field_and_fails_a_sound_token(
    aws: dict[str, Any], change: dict[str, Any], named: str
) -> None:
    request = {**await_request("StepEnded", "j-ABC", "s-DEF"), **change}
    answer = serve(aws, request)
    assert answer["ok"] is False and named in answer["error"]
    assert len(answer["error"]) < 300  # a huge value is quoted short
    if change.get("TaskToken") is None:
        [failure] = aws["sfn"].answers
        assert failure["error"] == "datapipe.InvalidWaitRequest" and named in failure["cause"]
    assert kept(aws) == []


def test_an_unrelated_event_is_refused_in_one_line(aws: dict[str, Any]) -> None:
    answer = serve(aws, {"source": "aws.emr", "detail-type": "EMR Auto Scaling Policy State Change", "detail": {}})
    assert answer["ok"] is False and "'detail-type'" in answer["error"]
    assert serve(aws, [1, 2])["ok"] is False  # type: ignore[arg-type]


def test_the_handler_reads_its_table_from_the_environment(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    monkeypatch.setenv("WAITS_TABLE", TABLE)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    cluster_id = make_cluster(aws["emr"])
    answer = waits.handler(emr_event("EMR Cluster State Change", clusterId=cluster_id, state="WAITING"),
                           lambda_context)
    assert answer == {"ok": True, "answered": 0}
