"""Step Functions state machines (executable, definition after substitutions) and activities."""

from __future__ import annotations

import json
from typing import Any

from datapipe.local.deploy.model import (
    Created,
    DeployError,
    Handler,
    ResourceRequest,
)
from datapipe.local.deploy.values import camel, tag_map, text


def _state_machine(r: ResourceRequest) -> Created:
    sfn = r.client("stepfunctions")
    if "DefinitionString" in r.properties:
        definition = str(r.get("DefinitionString"))
    elif "Definition" in r.properties:
        definition = json.dumps(r.get("Definition"))
    elif "DefinitionS3Location" in r.properties:
        location = r.get("DefinitionS3Location")
        body = (
            r.client("s3")
            .get_object(
                Bucket=location["Bucket"],
                Key=location["Key"],
                **({"VersionId": location["Version"]} if "Version" in location else {}),
            )["Body"]
            .read()
        )
        definition = body.decode()
    else:
        raise DeployError(f"state machine '{r.logical_id}' has no definition")
    for key, value in (r.get("DefinitionSubstitutions") or {}).items():
        definition = definition.replace("${" + key + "}", text(value))
    name = r.name("StateMachineName", 80)
    create: dict[str, Any] = {
        "name": name,
        "definition": definition,
        "roleArn": r.get("RoleArn"),
        "type": r.get("StateMachineType", "STANDARD"),
    }
    if "LoggingConfiguration" in r.properties:
        create["loggingConfiguration"] = camel(r.get("LoggingConfiguration"))
    if "TracingConfiguration" in r.properties:
        create["tracingConfiguration"] = camel(r.get("TracingConfiguration"))
    if r.get("Tags"):
        create["tags"] = [{"key": k, "value": v} for k, v in tag_map(r.get("Tags")).items()]
    machine = sfn.create_state_machine(**create)
    arn = machine["stateMachineArn"]
    return Created(
        arn, {"Arn": arn, "Name": name, "StateMachineRevisionId": machine.get("stateMachineVersionArn", arn)}
    )


def _activity(r: ResourceRequest) -> Created:
    create: dict[str, Any] = {"name": r.name("Name", 80)}
    if r.get("Tags"):
        create["tags"] = [{"key": k, "value": v} for k, v in tag_map(r.get("Tags")).items()]
    arn = r.client("stepfunctions").create_activity(**create)["activityArn"]
    return Created(arn, {"Arn": arn, "Name": create["name"]})


HANDLERS: dict[str, Handler] = {
    "AWS::StepFunctions::StateMachine": _state_machine,
    "AWS::StepFunctions::Activity": _activity,
}
