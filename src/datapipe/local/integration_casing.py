"""Parameter and result casing of the integrations whose AWS API is camelCase (Batch, Step Functions, ECS, and the
AWS SDK integrations such as `aws-sdk:sfn:listExecutions`).

A state passes `JobName`, `StateMachineArn`, `TaskDefinition`; the APIs take `jobName`, `stateMachineArn`,
`taskDefinition`, and Step Functions hands results back PascalCase (`JobId`, `ExecutionArn`, `Status`). moto's
interpreter leaves both conversions empty, so these integrations fail on their first call. The emulator maps
names through botocore's model of the operation, with the interpreter's own helpers.
"""

from __future__ import annotations

import datetime
from functools import cache
from typing import Any

from botocore.session import get_session
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch import (
    StateTaskServiceBatch,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs import (
    StateTaskServiceEcs,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)

from datapipe.local.seams import Seam, seam

_PARAMETERS = ("self", "parameters", "boto_service_name", "service_action_name")
_RESPONSE = ("self", "response", "boto_service_name", "service_action_name")
SEAMS: list[tuple[Seam, Seam]] = [
    (
        seam(service, "_normalise_parameters", _PARAMETERS, f"{name}: PascalCase parameters -> the API's names"),
        seam(service, "_normalise_response", _RESPONSE, f"{name}: results PascalCase, as Step Functions returns"),
    )
    for name, service in (
        ("batch", StateTaskServiceBatch),
        ("states", StateTaskServiceSfn),
        ("ecs", StateTaskServiceEcs),
        ("aws-sdk", StateTaskServiceAwsSdk),
    )
]


@cache
def operation_shapes(service: str, action: str) -> tuple[Any, Any]:
    """(input shape, output shape) of `action` (`submitJob`, `describe_jobs`) of a botocore service."""
    operation = "".join(part[:1].upper() + part[1:] for part in action.split("_"))
    model = get_session().get_service_model(service).operation_model(operation)
    return model.input_shape, model.output_shape


def _timestamps_as_numbers(value: Any) -> None:
    """boto3's datetimes become epoch milliseconds, as in Step Functions results (and JSON can hold them)."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in list(items):
        if isinstance(inner, datetime.datetime):
            value[key] = int(inner.timestamp() * 1000)
        else:
            _timestamps_as_numbers(inner)


def install() -> None:
    for parameters_seam, response_seam in SEAMS:

        def normalise_parameters(
            self: Any,
            parameters: dict[str, Any],
            boto_service_name: str | None = None,
            service_action_name: str | None = None,
            _original: Seam = parameters_seam,
        ) -> None:
            _original.call_original(self, parameters, boto_service_name, service_action_name)
            service = self._get_boto_service_name(boto_service_name)
            self._to_boto_request(
                parameters, operation_shapes(service, service_action_name or self.resource.api_action)[0]
            )

        def normalise_response(
            self: Any,
            response: Any,
            boto_service_name: str | None = None,
            service_action_name: str | None = None,
            _original: Seam = response_seam,
        ) -> None:
            _original.call_original(self, response, boto_service_name, service_action_name)
            service = self._get_boto_service_name(boto_service_name)
            self._from_boto_response(
                response, operation_shapes(service, service_action_name or self.resource.api_action)[1]
            )
            _timestamps_as_numbers(response)

        parameters_seam.patch(normalise_parameters)
        response_seam.patch(normalise_response)
