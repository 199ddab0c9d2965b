"""Ends the EMR workflow's waits when EMR says so: the callback of its `.waitForTaskToken` tasks.

The same handler serves the imported pipelines' waits, deployed once more in the pipelines stack with its own table
(stacks/emr_waits.py): each deployment answers only the state machines its role allows.

Two kinds of request reach this function:
- From the workflow (`Action: Await`), a task token and what it waits for: a cluster ready to run steps, a step
  ended, or a cluster terminated. The token is kept in the waits table under the cluster or step id; then one
  Describe call answers at once when the awaited state was reached before the token was kept (no race). The
  workflow invokes it again after a bounded time without an answer (a lost event): the same Describe call then
  ends the wait, or the new token replaces the old one.
- From EventBridge, "EMR Cluster State Change" and "EMR Step Status Change" events: the waits kept under the
  event's cluster or step id that this state ends are answered and removed.

A wait is answered with what the native `.sync` integration gives, so that the states after it are the same in
both modes: SendTaskSuccess with the described cluster (plus `ClusterId`) or step (plus `StepId`), or
SendTaskFailure with that description as JSON for its cause (a failed step's FailureDetails carry its log file) and
the error `datapipe.EmrTaskFailed`: .sync's `States.TaskFailed`, under a name of our own, since the `States.` prefix
is Step Functions' own and a callback may not use it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import reprlib
import time
from collections.abc import Mapping
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
# It patches botocore only, the one library this function calls out with (Powertools' default patches and imports
# every library the X-Ray SDK supports that can be imported: HTTP clients, database drivers).
TRACED_LIBRARIES: tuple[str, ...] = ("botocore",)
tracer = None if Tracer._is_tracer_disabled() else Tracer(patch_modules=TRACED_LIBRARIES)

Client = Any  # boto3 clients (EMR, Step Functions, DynamoDB); no stubs ship with this project's type packages
Result = dict[str, Any]

# What a wait waits for, and the states that end it well or badly (the native .sync integration's outcomes).
CLUSTER_READY = "ClusterReady"
STEP_ENDED = "StepEnded"
CLUSTER_TERMINATED = "ClusterTerminated"
SUCCEEDS: dict[str, tuple[str, ...]] = {
    CLUSTER_READY: ("WAITING", "RUNNING"),
    STEP_ENDED: ("COMPLETED",),
    CLUSTER_TERMINATED: ("TERMINATED",),
}
FAILS: dict[str, tuple[str, ...]] = {
    CLUSTER_READY: ("TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS"),
    STEP_ENDED: ("CANCELLED", "FAILED", "INTERRUPTED"),
    CLUSTER_TERMINATED: ("TERMINATED_WITH_ERRORS",),
}
TASK_FAILED = "datapipe.EmrTaskFailed"
CLUSTER_EVENT = "EMR Cluster State Change"
STEP_EVENT = "EMR Step Status Change"
CLUSTER_ID = re.compile(r"j-[0-9A-Z]{1,13}")
STEP_ID = re.compile(r"s-[0-9A-Z]{1,255}")
MAX_TOKEN_LENGTH = 1024  # Step Functions' task tokens are at most 1024 characters
MAX_CAUSE_LENGTH = 32768  # SendTaskFailure's cause
MAX_NAME_LENGTH = 256  # the execution ARN and the state name that name a waiter
# An answer to a token that already ended (answered, timed out, execution stopped) changes nothing.
GONE_TOKEN_ERRORS = {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}
# Table attributes: the partition key is the cluster or step id the wait is about (what an event names); the sort
# key names the waiter (execution and state), so that a re-check replaces the token it renews.
KEY = "WaitFor"
WAITER = "Waiter"
EXPIRES_AT = "ExpiresAt"
_shown = reprlib.Repr()
_shown.maxstring = _shown.maxother = 60
_shown.maxlevel, _shown.maxdict, _shown.maxlist = 2, 6, 6


class BadRequest(Exception):
    """The request is malformed: the message names the field."""


def handler(event: Mapping[str, Any], context: LambdaContext) -> Result:
    return _powertools_handle(event, context)


def _handle(event: Mapping[str, Any], context: LambdaContext) -> Result:
    return serve(
        event,
        table=boto3.resource("dynamodb").Table(os.environ["WAITS_TABLE"]),
        emr=boto3.client("emr"),
        sfn=boto3.client("stepfunctions"),
        ttl_seconds=int(os.environ.get("WAIT_TTL_SECONDS", "86400")),
    )


_traced_handle = _handle if tracer is None else tracer.capture_lambda_handler(_handle)
_powertools_handle = metrics.log_metrics(logger.inject_lambda_context(clear_state=True)(_traced_handle))


def serve(request: Any, *, table: Any, emr: Client, sfn: Client, ttl_seconds: int) -> Result:
    """Serve one request: an Await from the workflow or an EMR event. Never raises for a malformed request."""
    try:
        if not isinstance(request, Mapping):
            raise BadRequest("the request must be a JSON object")
        if request.get("Action") == "Await":
            return await_state(request, table=table, emr=emr, sfn=sfn, ttl_seconds=ttl_seconds)
        if request.get("source") == "aws.emr":
            return on_event(request, table=table, emr=emr, sfn=sfn)
        raise BadRequest(f"field 'Action' must be Await, or the request an aws.emr event; got {shown(request)}")
    except BadRequest as bad:
        logger.warning("request refused", extra={"reason": str(bad)})
        # A malformed Await holds a token only if its TaskToken is sound: fail that wait rather than let it hang.
        token = request.get("TaskToken") if isinstance(request, Mapping) else None
        if _is_token(token):
            _answer(sfn, {"TaskToken": token}, error="datapipe.InvalidWaitRequest", cause=str(bad))
        return {"ok": False, "error": str(bad)}


def await_state(request: Mapping[str, Any], *, table: Any, emr: Client, sfn: Client, ttl_seconds: int) -> Result:
    """Keep the token under the id it waits on, then answer at once if that state was already reached."""
    until = request.get("Until")
    if until not in SUCCEEDS:
        raise BadRequest(f"field 'Until' must be one of {', '.join(SUCCEEDS)}; got {shown(until)}")
    token = request.get("TaskToken")
    if not _is_token(token):
        raise BadRequest(f"field 'TaskToken' must be a task token of 1 to {MAX_TOKEN_LENGTH} characters")
    cluster_id = _matching(request, "ClusterId", CLUSTER_ID, "a cluster id (j-...)")
    step_id = _matching(request, "StepId", STEP_ID, "a step id (s-...)") if until == STEP_ENDED else None
    execution = _name(request, "Execution")
    state = _name(request, "State")
    item = {
        KEY: step_id or cluster_id,
        WAITER: f"{execution}/{state}",
        "Until": until,
        "ClusterId": cluster_id,
        "TaskToken": token,
        EXPIRES_AT: int(time.time()) + ttl_seconds,
    }
    if step_id:
        item["StepId"] = step_id
    table.put_item(Item=item)
    answered = _answer_if_ended(item, _describe(emr, item), table=table, sfn=sfn)
    metrics.add_metric(name="WaitsAnsweredAtOnce" if answered else "WaitsKept", unit=MetricUnit.Count, value=1)
    return {"ok": True, "answered": answered}


def on_event(event: Mapping[str, Any], *, table: Any, emr: Client, sfn: Client) -> Result:
    """Answer the waits that this EMR event ends."""
    detail = event.get("detail")
    kind = event.get("detail-type")
    if not isinstance(detail, Mapping) or kind not in (CLUSTER_EVENT, STEP_EVENT):
        raise BadRequest(f"field 'detail-type' must be {CLUSTER_EVENT!r} or {STEP_EVENT!r}; got {shown(kind)}")
    state = str(detail.get("state", ""))
    if kind == STEP_EVENT:
        key = _matching(detail, "stepId", STEP_ID, "a step id (s-...)")
    else:
        key = _matching(detail, "clusterId", CLUSTER_ID, "a cluster id (j-...)")
    answered = 0
    description: Result | None = None
    for item in _waits(table, key):
        until = str(item.get("Until"))
        if state not in SUCCEEDS.get(until, ()) + FAILS.get(until, ()):
            continue
        # One Describe per event, for the answer the .sync integration gives; the state it reads is at least as
        # recent as the event's.
        description = description or _describe(emr, item)
        if _answer_if_ended(item, description, table=table, sfn=sfn):
            answered += 1
    metrics.add_metric(name="WaitsAnsweredByEvent", unit=MetricUnit.Count, value=answered)
    return {"ok": True, "answered": answered}


def _waits(table: Any, key: str) -> list[Result]:
    items: list[Result] = []
    arguments: Result = {"KeyConditionExpression": f"{KEY} = :key", "ExpressionAttributeValues": {":key": key},
                         "ConsistentRead": True}
    while True:
        page = table.query(**arguments)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _describe(emr: Client, item: Mapping[str, Any]) -> Result:
    """What the .sync integration outputs: the described step (plus StepId) or cluster (plus ClusterId)."""
    if item["Until"] == STEP_ENDED:
        step = emr.describe_step(ClusterId=item["ClusterId"], StepId=item["StepId"])["Step"]
        return {**_json_ready(step), "StepId": item["StepId"]}
    cluster = emr.describe_cluster(ClusterId=item["ClusterId"])["Cluster"]
    return {**_json_ready(cluster), "ClusterId": item["ClusterId"]}


def _answer_if_ended(item: Mapping[str, Any], description: Result, *, table: Any, sfn: Client) -> bool:
    """Answer the wait if the described state ends it, then forget it; False while it must go on waiting."""
    state = str(description.get("Status", {}).get("State", ""))
    until = str(item["Until"])
    if state in SUCCEEDS[until]:
        _answer(sfn, item, output=description)
    elif state in FAILS[until]:
        _answer(sfn, item, error=TASK_FAILED, cause=json.dumps(description)[:MAX_CAUSE_LENGTH])
    else:
        return False
    # Only this token's item: a re-check may have replaced it with a newer token meanwhile.
    try:
        table.delete_item(
            Key={KEY: item[KEY], WAITER: item[WAITER]},
            ConditionExpression="TaskToken = :token",
            ExpressionAttributeValues={":token": item["TaskToken"]},
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
    return True


def _answer(
    sfn: Client, item: Mapping[str, Any], *, output: Result | None = None, error: str = "", cause: str = ""
) -> None:
    try:
        if error:
            sfn.send_task_failure(taskToken=item["TaskToken"], error=error, cause=cause)
        else:
            sfn.send_task_success(taskToken=item["TaskToken"], output=json.dumps(output))
    except ClientError as client_error:
        code = client_error.response.get("Error", {}).get("Code")
        if code not in GONE_TOKEN_ERRORS:
            raise
        logger.info("the wait had already ended", extra={"code": code, "waiter": item.get(WAITER)})


def _is_token(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_TOKEN_LENGTH


def _matching(request: Mapping[str, Any], field: str, pattern: re.Pattern[str], describe: str) -> str:
    value = request.get(field)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadRequest(f"field '{field}' must be {describe}; got {shown(value)}")
    return value


def _name(request: Mapping[str, Any], field: str) -> str:
    value = request.get(field)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME_LENGTH:
        raise BadRequest(f"field '{field}' must be text of 1 to {MAX_NAME_LENGTH} characters; got {shown(value)}")
    # The sort key stays short whatever the names: the waiter is their digest.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def shown(value: Any) -> str:
    """A bounded summary of a value for messages and logs."""
    return _shown.repr(value)


def _json_ready(value: Any) -> Any:
    """boto3's answer as the JSON Step Functions passes on: timestamps as epoch milliseconds."""
    if isinstance(value, Mapping):
        return {k: _json_ready(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return value
