"""lambdas/cluster_reaper against moto's EMR: it terminates exactly the live clusters of the failed execution."""

from __future__ import annotations

import io
from typing import Any

import pytest

from lambdas.cluster_reaper import handler as reaper
from tests.lambdas.emr_helpers import make_cluster

EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:datapipe-dev-emr-workflow:run-1"
OTHER_EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:datapipe-dev-emr-workflow:run-2"
WORKFLOW = "datapipe-dev-emr-workflow"


def created_by(execution_arn: str) -> dict[str, str]:
    """The tags the workflow puts on a cluster it creates."""
    return {reaper.EXECUTION_TAG: execution_arn, reaper.WORKFLOW_TAG: WORKFLOW}


def status_change(status: str, execution_arn: str = EXECUTION) -> dict[str, Any]:
    """The EventBridge event Step Functions sends when an execution changes status."""
    return {
        "version": "0",
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {
            "executionArn": execution_arn,
            "stateMachineArn": "arn:aws:states:eu-west-1:123456789012:stateMachine:datapipe-dev-emr-workflow",
            "status": status,
        },
    }


def state_of(emr: Any, cluster_id: str) -> str:
    return str(emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"])


def test_a_stopped_execution_loses_its_protected_cluster_and_nothing_else(
    emr: Any, lambda_context: Any) -> None:
    created = make_cluster(emr, tags=created_by(EXECUTION))
    emr.set_termination_protection(JobFlowIds=[created], TerminationProtected=True)
    another_run = make_cluster(emr, tags=created_by(OTHER_EXECUTION))
    handed_in = make_cluster(emr)  # a cluster given to the execution carries no execution tag

    result = reaper.handler(status_change("ABORTED"), lambda_context)

    assert result["terminated"] == [created]
    assert state_of(emr, created) in ("TERMINATING", "TERMINATED")
    assert state_of(emr, another_run) not in ("TERMINATING", "TERMINATED")
    assert state_of(emr, handed_in) not in ("TERMINATING", "TERMINATED")


def test_timed_out_and_failed_executions_are_reaped_too(emr: Any) -> None:
    for status in ("TIMED_OUT", "FAILED"):
        cluster = make_cluster(emr, tags=created_by(EXECUTION))
        assert reaper.reap(status_change(status), emr)["terminated"] == [cluster]


def test_a_succeeded_execution_keeps_its_cluster(emr: Any) -> None:
    """TerminateCluster false leaves a cluster running on purpose."""
    cluster = make_cluster(emr, tags=created_by(EXECUTION))
    assert reaper.reap(status_change("SUCCEEDED"), emr)["terminated"] == []
    assert state_of(emr, cluster) not in ("TERMINATING", "TERMINATED")


def test_nothing_to_reap_is_fine(emr: Any) -> None:
    assert reaper.reap(status_change("FAILED"), emr) == {
        "ok": True, "executionArn": EXECUTION, "status": "FAILED", "terminated": []
    }


def test_an_event_without_an_execution_is_refused(emr: Any) -> None:
    cluster = make_cluster(emr, tags=created_by(EXECUTION))
    result = reaper.reap({"detail": {"status": "FAILED"}}, emr)
    assert result["ok"] is False
    assert "detail.executionArn" in result["error"]
    assert state_of(emr, cluster) not in ("TERMINATING", "TERMINATED")


def test_a_cluster_carrying_the_execution_tag_but_not_the_workflow_tag_is_left_alone(emr: Any) -> None:
    """The execution tag alone can be copied onto any cluster; IAM also requires the workflow's tag to change one."""
    copied = make_cluster(emr, tags={reaper.EXECUTION_TAG: EXECUTION})
    other_workflow = make_cluster(emr, tags={reaper.EXECUTION_TAG: EXECUTION, reaper.WORKFLOW_TAG: "someone-else"})
    assert reaper.reap(status_change("FAILED"), emr)["terminated"] == []
    for cluster in (copied, other_workflow):
        assert state_of(emr, cluster) not in ("TERMINATING", "TERMINATED")


@pytest.mark.parametrize(
    "event",
    [
        {"detail": {"executionArn": "x" * 20_000_000, "status": "FAILED"}},
        {"detail": {"executionArn": "arn:" + "x" * 20_000_000, "status": "FAILED"}},
        {"detail": {"executionArn": EXECUTION, "status": ["FAILED"] * 2_000_000}},
        {"junk": "y" * 20_000_000},
    ],
    ids=["20 MB text", "20 MB text that starts like an ARN", "status list of 2 million", "20 MB other field"],
)
def test_a_huge_event_is_refused_and_logged_as_a_bounded_summary(
    emr: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch, event: dict[str, Any]
) -> None:
    cluster = make_cluster(emr, tags=created_by(EXECUTION))
    log = io.StringIO()  # what the function writes to its log group, as Powertools formats it
    monkeypatch.setattr(reaper.logger.registered_handler, "stream", log)
    result = reaper.handler(event, lambda_context)
    assert result["ok"] is False and result["terminated"] == []
    assert len(str(result)) < 500
    logged = log.getvalue()
    assert "not an execution status change event" in logged
    assert max(len(line) for line in logged.splitlines()) < 2000  # it was one 20 MB line
    assert state_of(emr, cluster) not in ("TERMINATING", "TERMINATED")
