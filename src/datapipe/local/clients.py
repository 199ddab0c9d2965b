"""boto3 clients that reach the emulator from inside it (the Step Functions interpreter, the integrations).

moto's interpreter builds its clients for `localhost:$MOTO_PORT`; the embedded server listens on whatever port
part B chose and publishes it as `AWS_ENDPOINT_URL`. Inside a `mock_aws` context (unit tests) no endpoint is used:
moto intercepts botocore directly.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from moto.core.models import botocore_stubber
from moto.settings import moto_server_port
from moto.stepfunctions.parser.asl.utils import boto_client as moto_boto_client

from datapipe.local.seams import seam

_CLIENTS: dict[tuple[str, str, str | None, bool], BaseClient] = {}
_CLIENTS_LOCK = threading.Lock()
_configured_endpoint: str | None = None

INTERPRETER_CLIENT = seam(
    moto_boto_client,
    "boto_client_for",
    ("region", "service", "state_credentials"),
    "the interpreter's service integrations must reach the embedded server's port",
)

# Modules of the interpreter that imported `boto_client_for` by name: each gets the emulator-aware factory.
_IMPORTERS = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_glue",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
)


def configure_endpoint(endpoint_url: str | None) -> None:
    """An explicit endpoint (EmulatorOptions.endpoint_url) wins over AWS_ENDPOINT_URL."""
    global _configured_endpoint
    _configured_endpoint = endpoint_url


def endpoint_url() -> str | None:
    """Where the emulator's own server listens; None when moto intercepts botocore in this process."""
    if botocore_stubber.enabled:
        return None
    return _configured_endpoint or os.environ.get("AWS_ENDPOINT_URL") or f"http://localhost:{moto_server_port()}"


def client(service: str, region: str, *, validate: bool = True) -> Any:
    """A cached client for `service` in `region` that talks to the emulator (never to AWS)."""
    endpoint = endpoint_url()
    key = (service, region, endpoint, validate)
    with _CLIENTS_LOCK:
        cached = _CLIENTS.get(key)
        if cached is None:
            session: Any = boto3.session.Session()
            cached = session.client(
                service,
                region_name=region,
                endpoint_url=endpoint,
                aws_access_key_id="emulator",
                aws_secret_access_key="emulator",
                config=Config(
                    retries={"max_attempts": 0, "total_max_attempts": 1},
                    read_timeout=120,
                    parameter_validation=validate,
                ),
            )
            _CLIENTS[key] = cached
        return cached


def interpreter_client(region: str, service: str, state_credentials: Any = None) -> BaseClient:
    """Drop-in for moto's `boto_client_for`: the emulator's endpoint, no client-side validation (as moto's)."""
    return client(service, region, validate=False)


def install() -> None:
    import importlib

    INTERPRETER_CLIENT.patch(interpreter_client)
    for module_name in _IMPORTERS:
        module = importlib.import_module(module_name)
        if getattr(module, "boto_client_for", None) is INTERPRETER_CLIENT.original:
            module.boto_client_for = interpreter_client  # type: ignore[attr-defined]


def uninstall() -> None:
    import importlib

    for module_name in _IMPORTERS:
        module = importlib.import_module(module_name)
        if getattr(module, "boto_client_for", None) is interpreter_client:
            module.boto_client_for = INTERPRETER_CLIENT.original  # type: ignore[attr-defined]
    INTERPRETER_CLIENT.restore()


def unpatched_importers() -> list[str]:
    """Interpreter modules that still hold moto's original factory (expected: none after install)."""
    import importlib

    stale = []
    for module_name in _IMPORTERS:
        module = importlib.import_module(module_name)
        if not hasattr(module, "boto_client_for"):
            stale.append(f"{module_name} no longer imports boto_client_for")
        elif module.boto_client_for is not interpreter_client:
            stale.append(module_name)
    return stale
