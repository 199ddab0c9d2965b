"""boto3 clients for the deployed account or for a running emulator, chosen the same way by every CLI command.

Where requests go, first match wins:
1. an explicit endpoint (`--endpoint-url`);
2. the `AWS_ENDPOINT_URL` environment variable (boto3's own setting);
3. the emulator of this project, when `.datapipe/local.json` exists at or above the current folder
   (`{"endpointUrl": ..., "region": ..., "pid": ...}`, written by `datapipe local up`) and its process still runs;
4. AWS, with the usual credential chain.
The region follows the same order (`--region`, then AWS_REGION / AWS_DEFAULT_REGION, then the emulator's file).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from datapipe.errors import DatapipeError

LOCAL_STATE_FILE = Path(".datapipe") / "local.json"
# moto accepts any credentials; fixed ones keep real ones from being sent to a local server.
EMULATOR_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local", "aws_session_token": "local"}


@dataclass(frozen=True)
class Target:
    """Where clients send requests. `endpoint_url` None means AWS itself."""

    endpoint_url: str | None
    region: str | None
    source: str  # "option", "environment", "emulator" or "aws": for messages such as "cannot reach ..."

    @property
    def is_emulator(self) -> bool:
        return self.source == "emulator"

    def describe(self) -> str:
        if self.endpoint_url:
            return f"the emulator at {self.endpoint_url}" if self.is_emulator else self.endpoint_url
        return f"AWS ({self.region or 'default region'})"


def find_local_state(start: Path | None = None) -> Path | None:
    """The emulator's state file at or above `start`, if a running emulator wrote one."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / LOCAL_STATE_FILE
        if candidate.is_file():
            return candidate
    return None


def read_local_state(path: Path) -> dict[str, Any] | None:
    """The emulator's endpoint and region from its state file; None when the emulator that wrote it has exited."""
    try:
        state = json.loads(path.read_text())
    except OSError as error:
        raise DatapipeError(f"cannot read {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise DatapipeError(f"{path} is not JSON ({error.msg}); remove it or restart the emulator") from None
    endpoint = state.get("endpointUrl", state.get("endpoint_url")) if isinstance(state, dict) else None
    if not isinstance(endpoint, str) or not endpoint:
        raise DatapipeError(f"{path} must hold an object with 'endpointUrl'; remove it or restart the emulator")
    pid = state.get("pid")
    if isinstance(pid, int) and not _process_exists(pid):
        return None  # left behind by an emulator that is gone
    region = state.get("region")
    return {"endpoint_url": endpoint, "region": region if isinstance(region, str) else None}


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def resolve_target(
    endpoint_url: str | None = None, region: str | None = None, *, start: Path | None = None
) -> Target:
    environment_region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if endpoint_url:
        return Target(endpoint_url, region or environment_region, "option")
    if os.environ.get("AWS_ENDPOINT_URL"):
        return Target(os.environ["AWS_ENDPOINT_URL"], region or environment_region, "environment")
    state_file = find_local_state(start)
    state = read_local_state(state_file) if state_file is not None else None
    if state is not None:
        return Target(state["endpoint_url"], region or state["region"] or environment_region, "emulator")
    return Target(None, region or environment_region, "aws")


def client(service: str, target: Target | None = None, **config: Any) -> Any:
    """A boto3 client of `service` for `target` (resolved from the defaults when None)."""
    target = target or resolve_target()
    arguments: dict[str, Any] = {"region_name": target.region, **config}
    if target.endpoint_url:
        arguments["endpoint_url"] = target.endpoint_url
    if target.is_emulator:
        arguments.update(EMULATOR_CREDENTIALS)
    make_client: Any = boto3.client  # the service is a run-time string, not one of the typed literals
    return make_client(service, **arguments)
