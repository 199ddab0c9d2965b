"""EventBridge: emit the events AWS services emit, and deliver to the target types moto leaves out.

moto's `Rule.send_to_targets` delivers to CloudWatch Logs, archives, SQS and other buses. The emulator adds
Lambda targets (run in-process by lambda_runner, asynchronously like AWS), SNS topics and Step Functions state
machines (StartExecution), so that rules deployed by the CDK app do what they do in AWS.
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from moto.events.models import Rule, events_backends
from moto.utilities.arns import parse_arn

from datapipe.local.seams import seam

LOG = logging.getLogger(__name__)

SEND_TO_TARGETS = seam(
    Rule,
    "send_to_targets",
    ("self", "original_event", "transform_input"),
    "Lambda, SNS and Step Functions targets of rules",
)

# Targets the emulator delivers to itself. SQS is among them: moto's SQS delivery ignores Input and InputPath and
# leaves "account" out of the event.
_EXTRA_TARGET_SERVICES = ("lambda", "sns", "states", "sqs")


def emit(
    account: str, region: str, *, source: str, detail_type: str, detail: dict[str, Any], resources: list[str]
) -> None:
    """Put one event on the default bus of `account`/`region`, as the AWS service `source` would.

    Delivery happens on one background thread, in order: the emitting service (an EMR lifecycle holding its lock,
    an execution finishing) never waits for a target, and a target that calls back into the emulator cannot
    deadlock it.
    """
    entry = {
        "Source": source,
        "DetailType": detail_type,
        "Detail": json.dumps(detail, default=_json_default),
        "Resources": resources,
        "EventBusName": "default",
    }
    _outbox.put((account, region, entry))
    _ensure_courier()


_outbox: queue.Queue[tuple[str, str, dict[str, Any]]] = queue.Queue()
_courier: threading.Thread | None = None
_courier_lock = threading.Lock()


def _ensure_courier() -> None:
    global _courier
    with _courier_lock:
        if _courier is None or not _courier.is_alive():
            _courier = threading.Thread(target=_deliver_forever, name="eventbridge-courier", daemon=True)
            _courier.start()


def _deliver_forever() -> None:
    while True:
        account, region, entry = _outbox.get()
        try:
            events_backends[account][region].put_events([entry])
        except Exception:  # as in AWS, a broken target never fails the emitting service
            LOG.exception("emitting %s %s failed", entry["Source"], entry["DetailType"])
        finally:
            _outbox.task_done()


def drain(timeout: float = 5.0) -> bool:
    """Wait until every emitted event was handed to EventBridge (for tests and orderly shutdown)."""
    deadline = time.monotonic() + timeout
    while _outbox.unfinished_tasks:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def iso_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def install(invoke_lambda: Callable[[str, str, str, str], None]) -> None:
    """`invoke_lambda(account, region, function_arn, payload)` runs a function asynchronously."""

    def send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
        ours = [t for t in self.targets if parse_arn(t["Arn"]).service in _EXTRA_TARGET_SERVICES]
        if len(ours) < len(self.targets):
            # moto raises on a target type it does not know: it sees only its own (on a copy, the rule stays whole).
            morsel = copy.copy(self)
            morsel.targets = [t for t in self.targets if t not in ours]
            SEND_TO_TARGETS.call_original(morsel, original_event, transform_input)
        if not ours or not self.event_pattern.matches_event(original_event):
            return
        event = as_delivered(original_event)
        for target in ours:
            arn = parse_arn(target["Arn"])
            payload = _target_input(target, event, self)
            try:
                deliver(
                    arn.service,
                    target["Arn"],
                    payload,
                    account=arn.account,
                    region=arn.region,
                    invoke=invoke_lambda,
                    message_group_id=(target.get("SqsParameters") or {}).get("MessageGroupId"),
                )
            except Exception:
                LOG.exception("delivering an event to %s failed", target["Arn"])

    SEND_TO_TARGETS.patch(send_to_targets)


def as_delivered(event: dict[str, Any]) -> dict[str, Any]:
    """The event as EventBridge hands it to a target: `time` as ISO 8601 text, no moto bookkeeping."""
    delivered = {key: value for key, value in event.items() if key != "ingestion-time"}
    when = delivered.get("time")
    if isinstance(when, int | float):
        delivered["time"] = datetime.datetime.fromtimestamp(when, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return delivered


def _target_input(target: dict[str, Any], event: dict[str, Any], rule: Any = None) -> str:
    """The target's Input / InputPath / InputTransformer applied the way EventBridge does for these targets."""
    if target.get("Input"):
        return str(target["Input"])
    if target.get("InputPath"):
        return json.dumps(_lookup(event, str(target["InputPath"])))
    transformer = target.get("InputTransformer")
    if transformer:
        reserved = {"aws.events.rule-name": getattr(rule, "name", ""), "aws.events.rule-arn": getattr(rule, "arn", "")}
        return render_template(
            str(transformer.get("InputTemplate", "")), transformer.get("InputPathsMap", {}), event, reserved
        )
    return json.dumps(event)


def _lookup(document: Any, path: str) -> Any:
    """A value of the event by a simple JSONPath (`$.detail.status`)."""
    value = document
    for part in path.strip().lstrip("$").split("."):
        if part:
            value = value.get(part) if isinstance(value, dict) else None
    return value


def render_template(
    template: str, paths: dict[str, str], event: dict[str, Any], reserved: dict[str, Any] | None = None
) -> str:
    """An InputTemplate with its <placeholders> filled, for JSON templates and plain-text ones alike.

    Inside a JSON string a placeholder takes the value's text; elsewhere in a JSON template its JSON form; in a
    plain-text template (an SNS message, say) its text. moto's own parser only accepts JSON templates.
    """
    values = {name: _lookup(event, path) for name, path in paths.items()}
    values.update(reserved or {})
    values["aws.events.event.json"] = event
    values["aws.events.event"] = {k: v for k, v in event.items() if k != "detail"}
    values["aws.events.event.ingestion-time"] = event.get("time", iso_now())
    probe = re.sub(r"<([A-Za-z0-9_.\-]+)>", "0", template)
    try:
        json.loads(probe)
        is_json = True
    except ValueError:
        is_json = False
    out: list[str] = []
    in_string = False
    position = 0
    for match in re.finditer(r'"|\\.|<([A-Za-z0-9_.\-]+)>', template):
        out.append(template[position : match.start()])
        position = match.end()
        token = match.group(0)
        name = match.group(1)
        if token == '"':
            in_string = not in_string
            out.append(token)
        elif name is None or name not in values:
            out.append(token)
        else:
            value = values[name]
            if is_json and in_string:
                text = value if isinstance(value, str) else json.dumps(value)
                out.append(json.dumps(text)[1:-1])
            elif is_json:
                out.append(json.dumps(value))
            else:
                out.append(value if isinstance(value, str) else json.dumps(value))
    out.append(template[position:])
    return "".join(out)


def deliver(
    service: str,
    arn: str,
    payload: str,
    *,
    account: str,
    region: str,
    invoke: Callable[[str, str, str, str], None],
    message_group_id: str | None = None,
) -> None:
    """Hand `payload` to the target `arn` (a Lambda function, SNS topic, state machine or SQS queue)."""
    if service == "lambda":
        invoke(account, region, arn, payload)
    elif service == "sqs":
        from moto.sqs.models import sqs_backends

        sqs_backends[account][region].send_message(arn.rsplit(":", 1)[1], payload, group_id=message_group_id)
    elif service == "sns":
        from moto.sns.models import sns_backends

        sns_backends[account][region].publish(payload, arn=arn)
    elif service == "states":
        from moto.stepfunctions.responses import get_backend

        backend = get_backend(account, region)
        # StartExecution happens on another thread: the rule's caller (put_events, PutObject) must not wait.
        name = str(uuid.uuid4())
        threading.Thread(
            target=backend.start_execution, args=(arn, name, payload), daemon=True, name=f"event-target-{name}"
        ).start()
