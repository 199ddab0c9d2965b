"""Reads of Amazon EMR that Step Functions has no native integration for.

The workflow invokes this function to check a cluster it was handed before acting on it, for the cause of a
failure (the failed step's reason and where its logs are) and for the summary at the end. Every request names an
`Action`; the answer is `{"ok": true, "result": ...}` or, for a request that cannot be served,
`{"ok": false, "error": {"type": ..., "message": ...}}` so that the workflow can carry on with its cleanup.
Throttling and service faults are raised, for the caller's retry policy.
Values that come back in a message or a log line are shown as bounded summaries, whatever their size.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

logger = Logger()
metrics = Metrics(namespace="datapipe")
# Importing the X-Ray SDK costs more than importing boto3, and a Tracer imports it even when it will not trace:
# the Tracer exists only where Powertools traces (in Lambda, unless POWERTOOLS_TRACE_DISABLED is true).
# It patches botocore only, the one library this function calls out with: Powertools' default patches every library
# the X-Ray SDK supports that can be imported, importing each (HTTP clients, database drivers) on a cold start.
TRACED_LIBRARIES = ("botocore",)
tracer = None if Tracer._is_tracer_disabled() else Tracer(patch_modules=TRACED_LIBRARIES)

# No EMR stubs ship with this project's type packages: the client is a boto3 EMR client.
EmrClient = Any
Result = dict[str, Any]

ACTIVE_CLUSTER_STATES = ("STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING", "TERMINATING")
STEP_STATES = ("PENDING", "CANCEL_PENDING", "RUNNING", "COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED")
# EMR's cluster id: "j-" and up to 13 upper-case letters or digits.
CLUSTER_ID = re.compile(r"j-[0-9A-Z]{1,13}")
STEP_ID = re.compile(r"s-[0-9A-Z]{1,255}")
# Errors the request itself caused; anything else (throttling, internal errors) is raised for a retry.
REQUEST_ERRORS = {"InvalidRequestException", "ValidationException", "ResourceNotFoundException"}
MAX_LIST_ITEMS = 1000
ENDED_CLUSTER_STATES = ("TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS")
# Verdicts of CheckCluster, which the workflow's Choice reads.
ALLOWED = "Allowed"
NOT_ALLOWED = "NotAllowed"
UNAVAILABLE = "Unavailable"
# A bad value is shown by its first characters only: a 10 MB field must not become a 10 MB message or log line.
SHOWN_CHARACTERS = 60
_shown = reprlib.Repr()
_shown.maxstring = _shown.maxother = SHOWN_CHARACTERS
_shown.maxlevel, _shown.maxdict, _shown.maxlist = 2, 6, 6


class BadRequest(Exception):
    """The request is malformed: the message names the field."""


def handler(event: Mapping[str, Any], context: LambdaContext) -> Result:
    return _powertools_handle(event, context)


def _handle(event: Mapping[str, Any], context: LambdaContext) -> Result:
    return serve(event, boto3.client("emr"))


# Powertools wraps an inner function so that `handler` stays a plain, typed entry point.
_traced_handle = _handle if tracer is None else tracer.capture_lambda_handler(_handle)
_powertools_handle = metrics.log_metrics(logger.inject_lambda_context(clear_state=True)(_traced_handle))


def serve(request: Any, emr: EmrClient) -> Result:
    """Answer one request with the given EMR client; never raises for a bad request."""
    action = request.get("Action") if isinstance(request, Mapping) else None
    try:
        if not isinstance(request, Mapping):
            raise BadRequest("the request must be a JSON object with an 'Action'")
        read = ACTIONS.get(str(action))
        if read is None:
            raise BadRequest(f"field 'Action' must be one of {', '.join(sorted(ACTIONS))}; got {shown(action)}")
        result = read(request, emr)
    except BadRequest as error:
        metrics.add_metric(name="BadRequests", unit=MetricUnit.Count, value=1)
        logger.warning("bad request", extra={"action": shown(action), "reason": str(error)})
        return {"ok": False, "error": {"type": "BadRequest", "message": str(error)}}
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code not in REQUEST_ERRORS:
            raise
        metrics.add_metric(name="RejectedReads", unit=MetricUnit.Count, value=1)
        message = bounded(str(error.response.get("Error", {}).get("Message", error)))
        logger.warning("EMR rejected the read", extra={"action": shown(action), "code": code, "reason": message})
        return {"ok": False, "error": {"type": code, "message": message}}
    metrics.add_metric(name="Reads", unit=MetricUnit.Count, value=1)
    return {"ok": True, "result": _json_ready(result)}


# ---------------------------------------------------------------------------------------------------------------------
# Plain reads


def describe_cluster(request: Mapping[str, Any], emr: EmrClient) -> Result:
    cluster: Result = emr.describe_cluster(ClusterId=_cluster_id(request))["Cluster"]
    return cluster


def describe_step(request: Mapping[str, Any], emr: EmrClient) -> Result:
    step_id = _text(request, "StepId", STEP_ID, "a step id such as s-1234567890ABC")
    step: Result = emr.describe_step(ClusterId=_cluster_id(request), StepId=step_id)["Step"]
    return step


def list_steps(request: Mapping[str, Any], emr: EmrClient) -> Result:
    states = _states(request, "StepStates", STEP_STATES, default=())
    steps = list(_steps(emr, _cluster_id(request), states))
    return {"Steps": steps, "Count": len(steps)}


def list_clusters(request: Mapping[str, Any], emr: EmrClient) -> Result:
    """Clusters in the given states (active ones by default), filtered by exact name and/or a tag."""
    states = _states(request, "States", (*ACTIVE_CLUSTER_STATES, "TERMINATED", "TERMINATED_WITH_ERRORS"),
                     default=ACTIVE_CLUSTER_STATES)
    name = request.get("Name")
    if name is not None and (not isinstance(name, str) or not name):
        raise BadRequest("field 'Name' must be a non-empty text")
    tag = _tag(request, "Tag") if request.get("Tag") is not None else None
    found = []
    for summary in _paginate(emr.list_clusters, "Clusters", ClusterStates=list(states)):
        if name is not None and summary.get("Name") != name:
            continue
        if tag is not None:
            tags = emr.describe_cluster(ClusterId=summary["Id"])["Cluster"].get("Tags", [])
            if tag not in tags:
                continue
        found.append(summary)
    return {"Clusters": found, "Count": len(found)}


# ---------------------------------------------------------------------------------------------------------------------
# Reads that the workflow asks for


def check_cluster(request: Mapping[str, Any], emr: EmrClient) -> Result:
    """Whether the workflow may act on a cluster it was handed: the cluster exists, is not ending, and carries the
    tag of the deployment that created it (`CreatedBy`) or the tag its owner opts it in with (`OptIn`).

    The `Verdict` is Allowed, NotAllowed or Unavailable; the one-line `Message` names the cluster and, for a cluster
    that is not allowed, the tag to add. A malformed id is a bad request, answered before any EMR call.
    """
    cluster_id = _cluster_id(request)
    created_by = _tag(request, "CreatedBy")
    opt_in = _tag(request, "OptIn")
    verdict: Result = {"ClusterId": cluster_id}
    try:
        cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in REQUEST_ERRORS:
            raise
        return {**verdict, "Verdict": UNAVAILABLE,
                "Message": f"cluster {cluster_id} was not found in this account and region"}
    state = cluster["Status"]["State"]
    tags = cluster.get("Tags", [])
    verdict.update(ClusterState=state, TerminationProtected=bool(cluster.get("TerminationProtected")))
    if created_by not in tags and opt_in not in tags:
        return {**verdict, "Verdict": NOT_ALLOWED,
                "Message": f"cluster {cluster_id} is not this deployment's: it carries neither the tag "
                f"{created_by['Key']}={created_by['Value']} of the clusters the workflow creates nor the opt-in tag; "
                f"its owner can let the workflow use it by tagging it {opt_in['Key']}={opt_in['Value']}"}
    if state in ENDED_CLUSTER_STATES:
        return {**verdict, "Verdict": UNAVAILABLE, "Message": f"cluster {cluster_id} is {state}: no step can run on it"}
    return {**verdict, "Verdict": ALLOWED, "Message": f"cluster {cluster_id} may be used ({state})"}


def describe_failure(request: Mapping[str, Any], emr: EmrClient) -> Result:
    """What went wrong: the workflow's error, the cluster's failed steps with their reasons and log locations, and
    a one-line `Message` that the workflow fails with."""
    error = str(request.get("Error") or "States.TaskFailed")
    cause = str(request.get("Cause") or "")
    report: Result = {"Error": error, "Cause": cause, "FailedSteps": []}
    if request.get("ClusterId") is None:  # the failure came before a cluster existed
        report["Message"] = f"{error}: {cause}" if cause else error
        return report
    cluster_id = _cluster_id(request)
    report["ClusterId"] = cluster_id
    try:
        cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
        failed_steps = list(_steps(emr, cluster_id, ("FAILED",)))
    except ClientError as client_error:
        if client_error.response.get("Error", {}).get("Code") not in REQUEST_ERRORS:
            raise
        # The cluster cannot be read (a wrong id was handed in): the workflow's own error is all there is.
        report["Message"] = f"{error}: {cause} (cluster {cluster_id} could not be read)"
        return report
    log_uri = _log_uri(cluster)
    report["ClusterState"] = cluster["Status"]["State"]
    report["ClusterStateReason"] = cluster["Status"].get("StateChangeReason", {}).get("Message", "")
    for step in failed_steps:
        details = step["Status"].get("FailureDetails", {})
        report["FailedSteps"].append(
            {
                "Id": step["Id"],
                "Name": step["Name"],
                "Reason": details.get("Reason", ""),
                "Message": details.get("Message", ""),
                "LogFile": details.get("LogFile", ""),
                "LogLocation": f"{log_uri}{cluster_id}/steps/{step['Id']}/" if log_uri else "",
            }
        )
    parts = [f"{error}: {cause}" if cause else error]
    for step in report["FailedSteps"]:
        why = step["Reason"] or step["Message"] or "no reason given"
        where = f"; logs: {step['LogFile'] or step['LogLocation']}" if step["LogFile"] or step["LogLocation"] else ""
        parts.append(f"step '{step['Name']}' ({step['Id']}) failed: {why}{where}")
    report["Message"] = " | ".join(parts)
    return report


def summarize(request: Mapping[str, Any], emr: EmrClient) -> Result:
    """The cluster's state and every step with its state: what `datapipe start --follow` prints at the end."""
    cluster_id = _cluster_id(request)
    cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    steps = [
        {"Id": s["Id"], "Name": s["Name"], "State": s["Status"]["State"]} for s in _steps(emr, cluster_id, ())
    ]
    return {
        "ClusterId": cluster_id,
        "ClusterName": cluster.get("Name", ""),
        "ClusterState": cluster["Status"]["State"],
        "ReleaseLabel": cluster.get("ReleaseLabel", ""),
        "LogUri": _log_uri(cluster),
        "Steps": list(reversed(steps)),  # EMR lists the newest first; a summary reads in run order
    }


ACTIONS: dict[str, Callable[[Mapping[str, Any], EmrClient], Result]] = {
    "CheckCluster": check_cluster,
    "DescribeCluster": describe_cluster,
    "DescribeStep": describe_step,
    "ListSteps": list_steps,
    "ListClusters": list_clusters,
    "DescribeFailure": describe_failure,
    "Summarize": summarize,
}


# ---------------------------------------------------------------------------------------------------------------------
# Helpers


def _steps(emr: EmrClient, cluster_id: str, states: tuple[str, ...]) -> Iterator[Result]:
    arguments: dict[str, Any] = {"ClusterId": cluster_id}
    if states:
        arguments["StepStates"] = list(states)
    return _paginate(emr.list_steps, "Steps", **arguments)


def _paginate(call: Callable[..., Result], key: str, **arguments: Any) -> Iterator[Result]:
    """Follow EMR's `Marker` pages, up to MAX_LIST_ITEMS items so that one answer stays within Lambda's limits."""
    returned = 0
    marker = None
    while True:
        page = call(**arguments, **({"Marker": marker} if marker else {}))
        for item in page.get(key, []):
            if returned == MAX_LIST_ITEMS:
                return
            returned += 1
            yield item
        marker = page.get("Marker")
        if not marker:
            return


def _cluster_id(request: Mapping[str, Any]) -> str:
    return _text(request, "ClusterId", CLUSTER_ID, "a cluster id: j- and 1 to 13 upper-case letters or digits")


def _text(request: Mapping[str, Any], field: str, pattern: re.Pattern[str], describe: str) -> str:
    value = request.get(field)
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise BadRequest(f"field '{field}' must be {describe}; got {shown(value)}")
    return value


def _tag(request: Mapping[str, Any], field: str) -> dict[str, str]:
    tag = request.get(field)
    if not (isinstance(tag, Mapping) and isinstance(tag.get("Key"), str) and tag["Key"]
            and isinstance(tag.get("Value"), str)):
        raise BadRequest(f"field '{field}' must be an object with text 'Key' and 'Value'; got {shown(tag)}")
    return {"Key": tag["Key"], "Value": tag["Value"]}


def _states(
    request: Mapping[str, Any], field: str, allowed: tuple[str, ...], *, default: tuple[str, ...]
) -> tuple[str, ...]:
    value = request.get(field)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) and v in allowed for v in value):
        raise BadRequest(f"field '{field}' must be a list of {', '.join(allowed)}; got {shown(value)}")
    return tuple(value)


def shown(value: Any) -> str:
    """A bounded summary of any value: its start, and a long text's length."""
    summary = _shown.repr(value)
    if isinstance(value, str) and len(value) > SHOWN_CHARACTERS:
        summary += f" ({len(value)} characters)"
    return summary


def bounded(text: str, limit: int = 1000) -> str:
    """A message from elsewhere (EMR's own), cut to `limit` characters."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _log_uri(cluster: Mapping[str, Any]) -> str:
    """The cluster's LogUri as an s3:// folder (EMR reports it with the legacy s3n:// scheme)."""
    uri = str(cluster.get("LogUri") or "")
    if uri.startswith("s3n://"):
        uri = "s3://" + uri.removeprefix("s3n://")
    return uri if not uri or uri.endswith("/") else uri + "/"


def _json_ready(value: Any) -> Any:
    """EMR answers carry datetimes; the Lambda runtime serializes with json, so they become ISO 8601 text."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return value
