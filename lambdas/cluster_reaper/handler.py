"""Terminates the EMR clusters that a workflow execution created, once that execution has ended badly.

A stopped or timed-out execution runs no Catch, so its cleanup path never runs. EventBridge sends this function
the "Step Functions Execution Status Change" event of such an execution; the workflow tags every cluster it creates
with the execution's ARN and with the state machine's name, so the clusters to remove are the live ones carrying
both (the second is also what the function's IAM policy requires). Clusters the execution was handed (input
`ClusterId`) carry no execution tag and are left alone. An event that is not such a status change is logged as a
bounded summary: an event can be megabytes long.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Iterator, Mapping
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics(namespace="datapipe")
# Importing the X-Ray SDK costs more than importing boto3, and a Tracer imports it even when it will not trace:
# the Tracer exists only where Powertools traces (in Lambda, unless POWERTOOLS_TRACE_DISABLED is true).
# It patches botocore only, the one library this function calls out with: Powertools' default patches every library
# the X-Ray SDK supports that can be imported, importing each (HTTP clients, database drivers) on a cold start.
TRACED_LIBRARIES = ("botocore",)
tracer = None if Tracer._is_tracer_disabled() else Tracer(patch_modules=TRACED_LIBRARIES)

EmrClient = Any  # a boto3 EMR client; no EMR stubs ship with this project's type packages
# The keys the workflows tag their clusters with: the execution ARN, and the state machine's name.
EXECUTION_TAG = "datapipe:execution"
WORKFLOW_TAG = "datapipe:workflow"
# arn:<partition>:states:<region>:<account>:execution:<state machine>:<execution>; names have at most 80 characters.
EXECUTION_ARN = re.compile(r"arn:aws[a-z-]*:states:[a-z0-9-]{1,40}:[0-9]{12}:execution:([^:\s]{1,80}):[^:\s]{1,80}")
ENDED_BADLY = ("ABORTED", "TIMED_OUT", "FAILED")
# TERMINATING is left out: it is already on its way, and terminating it again changes nothing.
LIVE_CLUSTER_STATES = ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"]
_summary = reprlib.Repr()
_summary.maxstring = _summary.maxother = 60
_summary.maxlevel, _summary.maxdict, _summary.maxlist = 2, 6, 6


def handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _powertools_handle(event, context)


def _handle(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    return reap(event, boto3.client("emr"))


# Powertools wraps an inner function so that `handler` stays a plain, typed entry point.
_traced_handle = _handle if tracer is None else tracer.capture_lambda_handler(_handle)
_powertools_handle = metrics.log_metrics(logger.inject_lambda_context(clear_state=True)(_traced_handle))


def reap(event: Mapping[str, Any], emr: EmrClient) -> dict[str, Any]:
    """Turn protection off and terminate every live cluster that the event's execution created."""
    detail = event.get("detail") if isinstance(event, Mapping) else None
    execution_arn = detail.get("executionArn") if isinstance(detail, Mapping) else None
    status = detail.get("status") if isinstance(detail, Mapping) else None
    arn = EXECUTION_ARN.fullmatch(execution_arn) if isinstance(execution_arn, str) else None
    if arn is None or not isinstance(status, str):
        logger.warning("not an execution status change event", extra={"event": _summary.repr(event)})
        metrics.add_metric(name="RefusedEvents", unit=MetricUnit.Count, value=1)
        return {"ok": False, "error": "fields 'detail.executionArn' and 'detail.status' must be an execution ARN "
                "and its status", "terminated": []}
    if status not in ENDED_BADLY:
        return {"ok": True, "executionArn": execution_arn, "status": _summary.repr(status), "terminated": []}

    logger.append_keys(execution_arn=execution_arn, status=status)
    state_machine = arn.group(1)
    clusters = list(clusters_tagged(emr, {EXECUTION_TAG: arn.group(0), WORKFLOW_TAG: state_machine}))
    if clusters:
        # Protection first: EMR refuses to terminate a protected cluster.
        for cluster_id in clusters:
            emr.set_termination_protection(JobFlowIds=[cluster_id], TerminationProtected=False)
        emr.terminate_job_flows(JobFlowIds=clusters)
        logger.info("terminated the execution's clusters", extra={"clusters": clusters})
    metrics.add_metric(name="ReapedClusters", unit=MetricUnit.Count, value=len(clusters))
    return {"ok": True, "executionArn": execution_arn, "status": status, "terminated": clusters}


def clusters_tagged(emr: EmrClient, wanted: Mapping[str, str]) -> Iterator[str]:
    """Ids of live clusters that carry every wanted tag (ListClusters returns no tags, so each is described)."""
    marker = None
    while True:
        page = emr.list_clusters(ClusterStates=LIVE_CLUSTER_STATES, **({"Marker": marker} if marker else {}))
        for summary in page.get("Clusters", []):
            tags = emr.describe_cluster(ClusterId=summary["Id"])["Cluster"].get("Tags", [])
            if all({"Key": key, "Value": value} in tags for key, value in wanted.items()):
                yield summary["Id"]
        marker = page.get("Marker")
        if not marker:
            return
