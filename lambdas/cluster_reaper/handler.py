"""Terminates the EMR clusters that a workflow execution created, once that execution has ended badly.

A stopped or timed-out execution runs no Catch, so its cleanup path never runs. EventBridge sends this function
the "Step Functions Execution Status Change" event of such an execution; the workflow tags every cluster it creates
with the execution's ARN, so the clusters to remove are the active ones carrying that tag. Clusters the execution
was handed (input `ClusterId`) carry no such tag and are left alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="datapipe")

EmrClient = Any  # a boto3 EMR client; no EMR stubs ship with this project's type packages
EXECUTION_TAG = "datapipe:execution"  # the key the workflow tags its clusters with; the value is the execution ARN
ENDED_BADLY = ("ABORTED", "TIMED_OUT", "FAILED")
# TERMINATING is left out: it is already on its way, and terminating it again changes nothing.
LIVE_CLUSTER_STATES = ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"]


def handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _handle(event, context)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def _handle(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    return reap(event, boto3.client("emr"))


def reap(event: Mapping[str, Any], emr: EmrClient) -> dict[str, Any]:
    """Turn protection off and terminate every live cluster tagged with the event's execution."""
    detail = event.get("detail") if isinstance(event, Mapping) else None
    execution_arn = detail.get("executionArn") if isinstance(detail, Mapping) else None
    status = detail.get("status") if isinstance(detail, Mapping) else None
    if not isinstance(execution_arn, str) or not execution_arn.startswith("arn:"):
        logger.warning("not an execution status change event", extra={"event": event})
        return {"ok": False, "error": "field 'detail.executionArn' must be an execution ARN", "terminated": []}
    if status not in ENDED_BADLY:
        return {"ok": True, "executionArn": execution_arn, "status": status, "terminated": []}

    logger.append_keys(execution_arn=execution_arn, status=status)
    clusters = list(clusters_tagged(emr, EXECUTION_TAG, execution_arn))
    if clusters:
        # Protection first: EMR refuses to terminate a protected cluster.
        for cluster_id in clusters:
            emr.set_termination_protection(JobFlowIds=[cluster_id], TerminationProtected=False)
        emr.terminate_job_flows(JobFlowIds=clusters)
        logger.info("terminated the execution's clusters", extra={"clusters": clusters})
    metrics.add_metric(name="ReapedClusters", unit=MetricUnit.Count, value=len(clusters))
    return {"ok": True, "executionArn": execution_arn, "status": status, "terminated": clusters}


def clusters_tagged(emr: EmrClient, key: str, value: str) -> Iterator[str]:
    """Ids of live clusters that carry the tag key=value (ListClusters returns no tags, so each is described)."""
    marker = None
    while True:
        page = emr.list_clusters(ClusterStates=LIVE_CLUSTER_STATES, **({"Marker": marker} if marker else {}))
        for summary in page.get("Clusters", []):
            tags = emr.describe_cluster(ClusterId=summary["Id"])["Cluster"].get("Tags", [])
            if {"Key": key, "Value": value} in tags:
                yield summary["Id"]
        marker = page.get("Marker")
        if not marker:
            return
