"""Amazon EMR as its API reference documents it, for the calls the workflow's integrations make.

RunJobFlow, AddJobFlowSteps, DescribeCluster, ListSteps, DescribeStep, SetTerminationProtection and
TerminateJobFlows, including what EMR answers for a cluster that does not exist or has ended. Against AWS this
starts one single-node cluster (m5.xlarge) and terminates it at once; it needs the default EMR roles
(`aws emr create-default-roles`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import unique, wait_until

UNKNOWN_CLUSTER = "j-1A2B3C4D5E6F7"  # well-formed, and no such cluster
ACTIVE = ("STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING")


def hive_step(name: str) -> dict[str, Any]:
    return {
        "Name": name,
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["echo", name]},
    }


@pytest.fixture(scope="module")
def cluster(clients: Callable[[str], Any]) -> Iterator[str]:
    emr = clients("emr")
    started = emr.run_job_flow(
        Name=unique("cluster"),
        ReleaseLabel="emr-7.5.0",
        Applications=[{"Name": "Hadoop"}],
        Instances={"MasterInstanceType": "m5.xlarge", "InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
        VisibleToAllUsers=True,
        Tags=[{"Key": "purpose", "Value": "datapipe-conformance"}],
    )
    cluster_id = str(started["JobFlowId"])
    assert started["ClusterArn"].endswith(f":cluster/{cluster_id}")
    yield cluster_id
    if state_of(emr, cluster_id) in ACTIVE:  # a test failed before the last one terminated it
        emr.set_termination_protection(JobFlowIds=[cluster_id], TerminationProtected=False)
        emr.terminate_job_flows(JobFlowIds=[cluster_id])


def state_of(emr: Any, cluster_id: str) -> str:
    return str(emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"])


def test_a_new_cluster_is_described_with_its_request(clients: Callable[[str], Any], cluster: str) -> None:
    described = clients("emr").describe_cluster(ClusterId=cluster)["Cluster"]
    assert described["Id"] == cluster
    assert described["Name"].startswith("dpconf-cluster-")
    assert described["Status"]["State"] in ACTIVE
    assert "CreationDateTime" in described["Status"]["Timeline"]
    assert described["ReleaseLabel"] == "emr-7.5.0"
    assert described["TerminationProtected"] is False
    assert described["AutoTerminate"] is False
    assert {"Key": "purpose", "Value": "datapipe-conformance"} in described["Tags"]


def test_steps_are_added_and_listed_newest_first(clients: Callable[[str], Any], cluster: str) -> None:
    emr = clients("emr")
    step_ids = emr.add_job_flow_steps(JobFlowId=cluster, Steps=[hive_step("first"), hive_step("second")])["StepIds"]
    assert len(step_ids) == 2 and all(step_id.startswith("s-") for step_id in step_ids)
    listed = emr.list_steps(ClusterId=cluster)["Steps"]
    ours = [step for step in listed if step["Id"] in step_ids]
    # ListSteps: "returns steps in reverse order (the newest first)".
    assert [step["Name"] for step in ours] == ["second", "first"]
    step = emr.describe_step(ClusterId=cluster, StepId=step_ids[0])["Step"]
    assert step["Name"] == "first" and step["ActionOnFailure"] == "CONTINUE"
    assert step["Status"]["State"] in ("PENDING", "RUNNING", "COMPLETED")
    assert step["Config"]["Jar"] == "command-runner.jar" and step["Config"]["Args"] == ["echo", "first"]


def test_a_pending_step_is_cancelled(clients: Callable[[str], Any], cluster: str) -> None:
    emr = clients("emr")
    _, waiting = emr.add_job_flow_steps(JobFlowId=cluster, Steps=[hive_step("runs"), hive_step("waits")])["StepIds"]
    answer = emr.cancel_steps(ClusterId=cluster, StepIds=[waiting])["CancelStepsInfoList"]
    assert [(info["StepId"], info["Status"]) for info in answer] == [(waiting, "SUBMITTED")]
    wait_until(
        "the step to be CANCELLED",
        lambda: emr.describe_step(ClusterId=cluster, StepId=waiting)["Step"]["Status"]["State"] == "CANCELLED",
        timeout=300,
        interval=1,
    )


def test_a_protected_cluster_is_not_terminated(clients: Callable[[str], Any], cluster: str) -> None:
    emr = clients("emr")
    emr.set_termination_protection(JobFlowIds=[cluster], TerminationProtected=True)
    assert emr.describe_cluster(ClusterId=cluster)["Cluster"]["TerminationProtected"] is True
    with pytest.raises(ClientError) as refused:
        emr.terminate_job_flows(JobFlowIds=[cluster])
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "termination protected" in refused.value.response["Error"]["Message"]
    assert state_of(emr, cluster) in ACTIVE
    emr.set_termination_protection(JobFlowIds=[cluster], TerminationProtected=False)
    assert emr.describe_cluster(ClusterId=cluster)["Cluster"]["TerminationProtected"] is False


@pytest.mark.parametrize(
    ("call", "arguments"),
    [
        ("describe_cluster", {"ClusterId": UNKNOWN_CLUSTER}),
        ("list_steps", {"ClusterId": UNKNOWN_CLUSTER}),
        ("set_termination_protection", {"JobFlowIds": [UNKNOWN_CLUSTER], "TerminationProtected": True}),
    ],
)
def test_an_unknown_cluster_is_not_valid(clients: Callable[[str], Any], call: str, arguments: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as refused:
        getattr(clients("emr"), call)(**arguments)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert refused.value.response["Error"]["Code"] == "InvalidRequestException"
    assert refused.value.response["Error"]["Message"] == f"Cluster id '{UNKNOWN_CLUSTER}' is not valid."


def test_steps_for_an_unknown_cluster_are_refused(clients: Callable[[str], Any]) -> None:
    with pytest.raises(ClientError) as refused:
        clients("emr").add_job_flow_steps(JobFlowId=UNKNOWN_CLUSTER, Steps=[hive_step("lost")])
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert refused.value.response["Error"]["Message"] == "Specified job flow ID does not exist."


def test_terminating_an_unknown_cluster_is_a_client_error(clients: Callable[[str], Any]) -> None:
    with pytest.raises(ClientError) as refused:
        clients("emr").terminate_job_flows(JobFlowIds=[UNKNOWN_CLUSTER])
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert UNKNOWN_CLUSTER in refused.value.response["Error"]["Message"]


def test_an_unknown_step_is_a_client_error(clients: Callable[[str], Any], cluster: str) -> None:
    with pytest.raises(ClientError) as refused:
        clients("emr").describe_step(ClusterId=cluster, StepId="s-1A2B3C4D5E6F7")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert refused.value.response["Error"]["Code"] == "InvalidRequestException"


def test_an_ended_cluster_takes_no_steps(clients: Callable[[str], Any], cluster: str) -> None:
    """Last in this module: it terminates the module's cluster."""
    emr = clients("emr")
    emr.terminate_job_flows(JobFlowIds=[cluster])
    assert state_of(emr, cluster) in ("TERMINATING", "TERMINATED")
    wait_until("the cluster to be TERMINATED", lambda: state_of(emr, cluster) == "TERMINATED", timeout=900, interval=2)
    described = emr.describe_cluster(ClusterId=cluster)["Cluster"]["Status"]
    assert described["StateChangeReason"]["Code"] == "USER_REQUEST"
    with pytest.raises(ClientError) as refused:
        emr.add_job_flow_steps(JobFlowId=cluster, Steps=[hive_step("late")])
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert refused.value.response["Error"]["Message"] == (
        "A job flow that is shutting down, terminated, or finished may not be modified."
    )
    emr.terminate_job_flows(JobFlowIds=[cluster])  # terminating again is accepted
