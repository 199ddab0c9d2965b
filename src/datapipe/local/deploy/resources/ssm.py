"""SSM parameters."""

from __future__ import annotations

from datapipe.local.deploy.model import (
    Created,
    Handler,
    ResourceRequest,
)
from datapipe.local.deploy.values import pick, text


def _ssm_parameter(r: ResourceRequest) -> Created:
    name = r.name("Name", 2048)
    r.client("ssm").put_parameter(
        Name=name,
        Value=text(r.get("Value")),
        Type=r.get("Type", "String"),
        Overwrite=True,
        **pick(r.properties, "Description AllowedPattern Tier DataType"),
    )
    return Created(name, {"Type": r.get("Type", "String"), "Value": text(r.get("Value"))})


HANDLERS: dict[str, Handler] = {
    "AWS::SSM::Parameter": _ssm_parameter,
}
