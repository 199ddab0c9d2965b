"""AWS Lambda functions (code from the uploaded assets), permissions, layer versions, event source mappings."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from datapipe.local.deploy.model import (
    Created,
    Handler,
    ResourceRequest,
)
from datapipe.local.deploy.values import pick, tag_map


def _function(r: ResourceRequest) -> Created:
    lambda_ = r.client("lambda")
    name = r.name("FunctionName", 64)
    code = r.get("Code", {})
    if "ZipFile" in code:
        code = {"ZipFile": _inline_code_zip(code["ZipFile"], r.get("Runtime", ""), r.get("Handler", "index.handler"))}
    create: dict[str, Any] = {
        "FunctionName": name,
        "Code": code,
        **pick(
            r.properties,
            "Runtime Role Handler Description Timeout MemorySize Environment Architectures TracingConfig "
            "EphemeralStorage LoggingConfig PackageType DeadLetterConfig VpcConfig KmsKeyArn ImageConfig",
        ),
    }
    note = ""
    layers = r.get("Layers", [])
    own_layers = [arn for arn in layers if f":{r.account}:layer:" in arn]
    if own_layers:
        create["Layers"] = own_layers
    if len(own_layers) < len(layers):
        # Public layers (e.g. the Powertools managed layer) live in other accounts; in-process runs import the
        # packages installed with datapipe instead.
        note = "layers of other accounts not attached: " + ", ".join(a for a in layers if a not in own_layers)
    if r.get("Tags"):
        create["Tags"] = tag_map(r.get("Tags"))
    function = lambda_.create_function(**create)
    return Created(name, {"Arn": function["FunctionArn"]}, note=note)


def _inline_code_zip(source: str, runtime: str, handler: str) -> bytes:
    module = handler.rsplit(".", 1)[0] or "index"
    suffix = ".py" if runtime.startswith("python") else ".js"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(module + suffix, source)
    return buffer.getvalue()


def _permission(r: ResourceRequest) -> Created:
    statement_id = r.generated_name(100)
    r.client("lambda").add_permission(
        FunctionName=r.get("FunctionName"),
        StatementId=statement_id,
        **pick(r.properties, "Action Principal SourceArn SourceAccount PrincipalOrgID"),
    )
    return Created(statement_id)


def _layer_version(r: ResourceRequest) -> Created:
    layer = r.client("lambda").publish_layer_version(
        LayerName=r.name("LayerName", 64),
        Content=r.get("Content"),
        **pick(r.properties, "Description CompatibleRuntimes CompatibleArchitectures LicenseInfo"),
    )
    return Created(layer["LayerVersionArn"], {"LayerVersionArn": layer["LayerVersionArn"]})


def _event_source_mapping(r: ResourceRequest) -> Created:
    mapping = r.client("lambda").create_event_source_mapping(
        **pick(r.properties, "EventSourceArn FunctionName BatchSize Enabled StartingPosition")
    )
    return Created(mapping["UUID"], {"Id": mapping["UUID"]})


HANDLERS: dict[str, Handler] = {
    "AWS::Lambda::Function": _function,
    "AWS::Lambda::Permission": _permission,
    "AWS::Lambda::LayerVersion": _layer_version,
    "AWS::Lambda::EventSourceMapping": _event_source_mapping,
}
