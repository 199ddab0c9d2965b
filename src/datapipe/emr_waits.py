"""The EMR workflow's event-driven waits as an execution's history shows them (emr.waitMode=events).

A wait is a `lambda:invoke.waitForTaskToken` task whose payload is `{"Action": "Await", "Task": <state>, ...}`, where
`Task` names the EMR task state it waits for (stacks/emr_workflow.py builds it; lambdas/emr_waits serves it). A run
that fails in a wait failed in that task, as it would have with `.sync`: the operate commands report and read the task.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

AWAIT_ACTION = "Await"
WAIT_RESOURCE = "invoke.waitForTaskToken"


def waited_tasks(events: Iterable[Mapping[str, Any]], state_of: Any) -> dict[str, str]:
    """Wait state name -> the EMR task state it waits for, from the history's TaskScheduled events."""
    found: dict[str, str] = {}
    for event in events:
        details = event.get("taskScheduledEventDetails")
        if event.get("type") != "TaskScheduled" or not isinstance(details, Mapping):
            continue
        if details.get("resourceType") != "lambda" or details.get("resource") != WAIT_RESOURCE:
            continue
        try:
            parameters = json.loads(str(details.get("parameters", "")))
        except json.JSONDecodeError:
            continue
        payload = parameters.get("Payload") if isinstance(parameters, Mapping) else None
        if not isinstance(payload, Mapping) or payload.get("Action") != AWAIT_ACTION:
            continue
        if isinstance(payload.get("Task"), str):
            found[str(state_of(event))] = payload["Task"]
    return found
