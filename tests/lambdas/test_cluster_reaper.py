"""lambdas/cluster_reaper against moto's EMR: it terminates exactly the live clusters of the failed execution."""

from __future__ import annotations

from typing import Any

from lambdas.cluster_reaper import handler as reaper
from tests.lambdas.emr_helpers import make_cluster

EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:datapipe-dev-emr-workflow:run-1"
OTHER_EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:datapipe-dev-emr-workflow:run-2"


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
    created = make_cluster(emr, tags={reaper.EXECUTION_TAG: EXECUTION})
    emr.set_termination_protection(JobFlowIds=[created], TerminationProtected=True)
    another_run = make_cluster(emr, tags={reaper.EXECUTION_TAG: OTHER_EXECUTION})
    handed_in = make_cluster(emr)  # a cluster given to the execution carries no execution tag

    result = reaper.handler(status_change("ABORTED"), lambda_context)

    assert result["terminated"] == [created]
    assert state_of(emr, created) in ("TERMINATING", "TERMINATED")
    assert state_of(emr, another_run) not in ("TERMINATING", "TERMINATED")
    assert state_of(emr, handed_in) not in ("TERMINATING", "TERMINATED")


def test_timed_out_and_failed_executions_are_reaped_too(emr: Any) -> None:
    for status in ("TIMED_OUT", "FAILED"):
        cluster = make_cluster(emr, tags={reaper.EXECUTION_TAG: EXECUTION})
        assert reaper.reap(status_change(status), emr)["terminated"] == [cluster]


def test_a_succeeded_execution_keeps_its_cluster(emr: Any) -> None:
    """TerminateCluster false leaves a cluster running on purpose."""
    cluster = make_cluster(emr, tags={reaper.EXECUTION_TAG: EXECUTION})
    assert reaper.reap(status_change("SUCCEEDED"), emr)["terminated"] == []
    assert state_of(emr, cluster) not in ("TERMINATING", "TERMINATED")


def test_nothing_to_reap_is_fine(emr: Any) -> None:
    assert reaper.reap(status_change("FAILED"), emr) == {
        "ok": True, "executionArn": EXECUTION, "status": "FAILED", "terminated": []
    }


def test_an_event_without_an_execution_is_refused(emr: Any) -> None:
    cluster = make_cluster(emr, tags={reaper.EXECUTION_TAG: EXECUTION})
    result = reaper.reap({"detail": {"status": "FAILED"}}, emr)
    assert result["ok"] is False
    assert "detail.executionArn" in result["error"]
    assert state_of(emr, cluster) not in ("TERMINATING", "TERMINATED")
