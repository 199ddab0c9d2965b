"""boto3 clients for the deployed account or for a running emulator, chosen the same way by every CLI command.

Where requests go, first match wins:
1. an explicit endpoint (`--endpoint-url`);
2. the `AWS_ENDPOINT_URL` environment variable (boto3's own setting);
3. the emulator of the project the command runs in: `.datapipe/local.json` in the nearest folder holding cdk.json and
   app.py, written by `datapipe local up` for that very folder, by a process of this user that still runs (its pid
   and start time match), in a file that only this user can write;
4. AWS, with the usual credential chain.
The region follows the same order (`--region`, then AWS_REGION / AWS_DEFAULT_REGION, then the emulator's file).

`explain(error)` is the one place that turns AWS client set-up and connection errors into one line saying what to do;
the CLI applies it to whatever a command lets through.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3

from datapipe.errors import DatapipeError
from datapipe.jsontext import parse_json, shown
from datapipe.project import nearest_project_dir

LOCAL_STATE_FILE = Path(".datapipe") / "local.json"
# moto accepts any credentials; fixed ones keep real ones from being sent to a local server.
EMULATOR_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local", "aws_session_token": "local"}
# A region is one DNS label (botocore refuses anything else); AWS's own are lower case.
REGION_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
START_EMULATOR = "start the emulator in the project with `datapipe local up`"
CREDENTIALS_REJECTED = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
}


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
        return f"AWS ({self.region or 'no region'})"


# ---------------------------------------------------------------------------------------------------------------------
# Checking what the user gave


def check_endpoint_url(value: str, *, source: str) -> str:
    """An http(s) URL with a host (and a valid port, if any); `source` names the option, variable or key."""
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a port that is not a number, a bracket left open
        parts, port_ok = None, False
    printable = value.isprintable() and not any(character.isspace() for character in value)
    if parts is None or not port_ok or not printable or parts.scheme not in ("http", "https") or not parts.hostname:
        raise DatapipeError(
            f"{source} must be an http:// or https:// URL such as http://127.0.0.1:4566, got {shown(value)}"
        )
    return value


def check_region(value: str, *, source: str) -> str:
    if REGION_PATTERN.fullmatch(value) is None:
        raise DatapipeError(f"{source} must be a region name such as eu-west-1, got {shown(value)}")
    return value


# ---------------------------------------------------------------------------------------------------------------------
# The emulator of this project


def find_local_state(start: Path | None = None) -> Path | None:
    """The emulator's state file of the project at or above `start` (never of a folder above that project)."""
    project = nearest_project_dir(start)
    if project is None:
        return None
    candidate = project / LOCAL_STATE_FILE
    return candidate if candidate.is_file() else None


def process_start(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, from /proc), so that a reused pid is not mistaken for it;
    None where /proc does not say (the pid alone is then checked)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # after "pid (command) ": the command may hold spaces
    return fields[19] if len(fields) > 19 else None  # field 22 of proc(5), counted from field 3


def _own_running_process(pid: int) -> bool:
    """Process `pid` runs, as this user."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or another user's
        return False
    except OverflowError:
        return False
    owner = Path(f"/proc/{pid}")
    return not owner.exists() or not hasattr(os, "getuid") or owner.stat().st_uid == os.getuid()


def _check_file_is_private(path: Path) -> None:
    """Only this user may have written the file that decides where this user's requests go.

    Group write is allowed: with a umask of 002 (user-private groups) a user's own files are group-writable.
    """
    if not hasattr(os, "getuid"):
        return
    info = path.stat()
    if info.st_uid != os.getuid() or info.st_mode & stat.S_IWOTH:
        raise DatapipeError(
            f"{path} is not trusted: it belongs to another user or others may write it; remove it, or pass "
            "--endpoint-url"
        )


def read_local_state(path: Path) -> dict[str, Any] | None:
    """The emulator's endpoint and region from its state file; None when it was not written by an emulator that still
    runs for this project (stopped, a reused pid, a file copied from another folder)."""
    try:
        _check_file_is_private(path)
        text = path.read_bytes()
    except OSError as error:
        raise DatapipeError(f"cannot read {path}: {error.strerror}") from None
    state = parse_json(text, what=str(path))
    if not isinstance(state, dict):
        raise DatapipeError(f"{path} must hold a JSON object with 'endpointUrl'; remove it or restart the emulator")
    endpoint = state.get("endpointUrl")
    if not isinstance(endpoint, str) or not endpoint:
        raise DatapipeError(f"{path} must hold an object with 'endpointUrl'; remove it or restart the emulator")
    check_endpoint_url(endpoint, source=f"'endpointUrl' in {path}")
    region = state.get("region")
    if region is not None and (not isinstance(region, str) or not region):
        raise DatapipeError(f"'region' in {path} must be a region name such as eu-west-1")
    if region is not None:
        check_region(region, source=f"'region' in {path}")
    pid, started, project = state.get("pid"), state.get("processStart"), state.get("projectDir")
    if not isinstance(pid, int) or isinstance(pid, bool) or not _own_running_process(pid):
        return None  # left behind by an emulator that is gone (or never said which process it was)
    running_since = process_start(pid)
    if running_since is not None and started != running_since:
        return None  # the pid now belongs to another process (or the record does not say which start it had)
    if not isinstance(project, str) or Path(project) != path.parent.parent.resolve():
        return None  # written for another folder (copied, or moved)
    return {"endpoint_url": endpoint, "region": region}


def local_state_record(*, endpoint_url: str, region: str, project_dir: Path) -> dict[str, Any]:
    """What `datapipe local up` writes for the commands run in `project_dir`: `read_local_state` checks every field."""
    pid = os.getpid()
    return {
        "endpointUrl": endpoint_url,
        "region": region,
        "pid": pid,
        "processStart": process_start(pid),
        "projectDir": str(project_dir.resolve()),
    }


def write_local_state(path: Path, record: dict[str, Any]) -> None:
    """Write the emulator's state file readable and writable by this user only, whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        stream.write(json.dumps(record, indent=2) + "\n")
    os.replace(temporary, path)


# ---------------------------------------------------------------------------------------------------------------------
# Choosing the target and making clients


def resolve_target(
    endpoint_url: str | None = None, region: str | None = None, *, start: Path | None = None
) -> Target:
    if region is not None:
        check_region(region, source="--region")
    if endpoint_url is not None:
        endpoint = check_endpoint_url(endpoint_url, source="--endpoint-url")
        return Target(endpoint, region or environment_region(), "option")
    if os.environ.get("AWS_ENDPOINT_URL"):
        endpoint = check_endpoint_url(os.environ["AWS_ENDPOINT_URL"], source="AWS_ENDPOINT_URL")
        return Target(endpoint, region or environment_region(), "environment")
    state_file = find_local_state(start)
    state = read_local_state(state_file) if state_file is not None else None
    if state is not None:
        return Target(state["endpoint_url"], region or state["region"] or environment_region(), "emulator")
    return Target(None, region or environment_region(), "aws")


def environment_region() -> str | None:
    """AWS_REGION, else AWS_DEFAULT_REGION, checked."""
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if os.environ.get(variable):
            return check_region(os.environ[variable], source=variable)
    return None


def client(service: str, target: Target | None = None, **config: Any) -> Any:
    """A boto3 client of `service` for `target` (resolved from the defaults when None).

    Set-up errors (no region, say) become one-line DatapipeErrors here; errors of later calls go through `explain`.
    """
    target = target or resolve_target()
    arguments: dict[str, Any] = {"region_name": target.region, **config}
    if target.endpoint_url:
        arguments["endpoint_url"] = target.endpoint_url
    if target.is_emulator:
        arguments.update(EMULATOR_CREDENTIALS)
    make_client: Any = boto3.client  # the service is a run-time string, not one of the typed literals
    try:
        return make_client(service, **arguments)
    except Exception as error:
        explained = explain(error, target=target)
        if explained is None:
            raise
        raise explained from None


# ---------------------------------------------------------------------------------------------------------------------
# Errors in one line


def explain(error: BaseException, *, target: Target | None = None, doing: str = "") -> DatapipeError | None:
    """One line saying what went wrong with an AWS client and what to do; None for errors that are not AWS's.

    `doing` ("listing triggers") starts the line when given.
    """
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        CredentialRetrievalError,
        InvalidRegionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    where = target.describe() if target is not None else "AWS"
    prefix = (f"{doing} on {where}: " if target is not None else f"{doing}: ") if doing else ""
    code = 2  # the machine's set-up is wrong: the user fixes it
    if isinstance(error, NoRegionError):
        message = f"no AWS region: pass --region or set AWS_REGION, or {START_EMULATOR}"
    elif isinstance(error, InvalidRegionError):
        message = f"{error}: pass --region or set AWS_REGION to a region name such as eu-west-1"
    elif isinstance(error, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
        found = "no AWS credentials" if isinstance(error, NoCredentialsError) else f"unusable credentials ({error})"
        message = (
            f"{found}: configure them (`aws configure`, AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), "
            f"or {START_EMULATOR}"
        )
    elif isinstance(error, ConnectionError):
        code = 1
        hint = (
            f"is it running? {START_EMULATOR}, or check --endpoint-url and AWS_ENDPOINT_URL"
            if target is not None and target.endpoint_url
            else "check the network and --region"
        )
        message = f"{error}; {hint}" if doing else f"cannot reach {where}: {error}; {hint}"
    elif isinstance(error, ClientError):
        details = error.response.get("Error", {})
        error_code, text = details.get("Code", "error"), details.get("Message") or ""
        code = 1
        message = f"{error_code}: {text}".rstrip(": ")
        if error_code in CREDENTIALS_REJECTED:
            code = 2
            message = f"the credentials were rejected ({message}); configure valid ones (`aws configure`)"
    elif isinstance(error, BotoCoreError):
        code = 1
        message = str(error)
    elif isinstance(error, ValueError) and str(error).startswith("Invalid endpoint"):
        message = f"{error}: pass --endpoint-url or set AWS_ENDPOINT_URL to a URL such as http://127.0.0.1:4566"
    else:
        return None
    return DatapipeError(prefix + message, exit_code=code)

