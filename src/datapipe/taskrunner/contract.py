"""The task contract between whatever sends ShellCommandActivity tasks to a worker group and the task runner.

Producers (the worker-groups stack, the Data Pipeline importer) send the input that `ShellTask.from_input` reads;
the runner answers with `success_output` or with one of the error names below. docs/taskrunner.md describes both.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from datapipe.naming import BUCKET_NAME_PATTERN

SHELL_COMMAND_ACTIVITY = "ShellCommandActivity"

# Error names sent with SendTaskFailure; state machines retry or catch on them.
COMMAND_FAILED = "TaskRunner.CommandFailed"
RUNNER_INTERRUPTED = "TaskRunner.Interrupted"
INVALID_TASK = "TaskRunner.InvalidTask"
STAGING_FAILED = "TaskRunner.StagingFailed"
SECRET_UNAVAILABLE = "TaskRunner.SecretUnavailable"
INTERNAL_ERROR = "TaskRunner.InternalError"

_S3_URI = re.compile(rf"^s3://(?P<bucket>{BUCKET_NAME_PATTERN})(?:/(?P<key>.*))?$")
_UNSAFE_PATH_CHARACTERS = re.compile(r"[^A-Za-z0-9._=-]")
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Variables a task may not set: the runner's own and the staging folders (the runner sets them), credentials (the
# runner decides which a task gets), and those that make bash or the dynamic loader run code of their choosing.
_RESERVED_VARIABLE = re.compile(
    r"^(DATAPIPE_.*|AWS_.*|(INPUT|OUTPUT)[0-9]+_STAGING_DIR|BASH_ENV|ENV|SHELLOPTS|BASHOPTS|PS4|PROMPT_COMMAND|IFS"
    r"|PATH|LD_.*|BASH_FUNC_.*)$"
)
SSM_SECRET_PREFIX = "ssm:"


class InvalidTask(ValueError):
    """The task input does not follow the contract; the message names the field."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str, *, field: str) -> S3Location:
        match = _S3_URI.match(uri.strip()) if isinstance(uri, str) else None
        if match is None:
            raise InvalidTask(f"field '{field}' must be an s3://bucket/key URI, got {uri!r}")
        return cls(bucket=match["bucket"], key=match["key"] or "")

    @property
    def as_prefix(self) -> str:
        """The key as a folder: empty, or ending in a slash."""
        return self.key if not self.key or self.key.endswith("/") else self.key + "/"

    def child(self, relative: str) -> S3Location:
        return S3Location(self.bucket, self.as_prefix + relative)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def safe_path_part(value: str) -> str:
    """A value usable as one folder name, locally and in an S3 key: no slashes, no `..`."""
    cleaned = _UNSAFE_PATH_CHARACTERS.sub("_", value)
    return "_" if cleaned in ("", ".", "..") else cleaned


@dataclass(frozen=True)
class ShellTask:
    """One attempt of a ShellCommandActivity, as sent to a worker group's activity."""

    workflow: str
    execution: str
    activity_id: str
    attempt: int  # 1 on the first attempt, as in Data Pipeline's Attempt=N
    command: str | None
    script_uri: S3Location | None
    script_arguments: tuple[str, ...]
    stage: bool
    inputs: tuple[S3Location, ...]
    outputs: tuple[S3Location, ...]
    heartbeat_seconds: int | None
    environment: tuple[tuple[str, str], ...] = ()  # (NAME, value): plain data, e.g. declared parameters' values
    secrets: tuple[tuple[str, str], ...] = ()  # (NAME, reference): read by the runner just before the command starts

    @classmethod
    def from_input(cls, text: str) -> ShellTask:
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as error:
            raise InvalidTask(f"task input is not JSON ({error})") from None
        if not isinstance(data, dict):
            raise InvalidTask("task input must be a JSON object")
        if data.get("type") != SHELL_COMMAND_ACTIVITY:
            raise InvalidTask(f"field 'type' must be {SHELL_COMMAND_ACTIVITY!r}, got {data.get('type')!r}")
        command, script_uri = data.get("command"), data.get("scriptUri")
        if (command is None) == (script_uri is None):
            raise InvalidTask("exactly one of the fields 'command' and 'scriptUri' must be given")
        if command is not None and (not isinstance(command, str) or not command.strip()):
            raise InvalidTask("field 'command' must be a non-empty string")
        arguments = _string_list(data, "scriptArgument")
        stage = data.get("stage", False)
        if not isinstance(stage, bool):
            raise InvalidTask(f"field 'stage' must be true or false, got {stage!r}")
        attempt = data.get("attempt", 0)
        if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 0:
            raise InvalidTask(f"field 'attempt' must be a whole number from 0, got {attempt!r}")
        environment = _variables(data, "environment", reference=False)
        secrets = _variables(data, "secrets", reference=True)
        both = sorted({name for name, _ in environment} & {name for name, _ in secrets})
        if both:
            raise InvalidTask(f"field 'secrets.{both[0]}': {both[0]} is also in field 'environment'")
        heartbeat = data.get("heartbeatSeconds")
        if heartbeat is not None and (not isinstance(heartbeat, int) or isinstance(heartbeat, bool) or heartbeat < 1):
            raise InvalidTask(f"field 'heartbeatSeconds' must be a whole number from 1, got {heartbeat!r}")
        return cls(
            workflow=_name(data, "workflow", alias="pipelineId"),
            execution=_name(data, "execution"),
            activity_id=_name(data, "activityId"),
            attempt=attempt + 1,
            command=command,
            script_uri=S3Location.parse(script_uri, field="scriptUri") if script_uri is not None else None,
            script_arguments=arguments,
            stage=stage,
            inputs=tuple(S3Location.parse(u, field=f"input[{i}]") for i, u in enumerate(_string_list(data, "input"))),
            outputs=tuple(
                S3Location.parse(u, field=f"output[{i}]") for i, u in enumerate(_string_list(data, "output"))
            ),
            heartbeat_seconds=heartbeat,
            environment=environment,
            secrets=secrets,
        )

    @property
    def attempt_path(self) -> str:
        """`<workflow>/<activity>/<execution>/Attempt=N`: where this attempt's logs and files go."""
        parts = (self.workflow, self.activity_id, self.execution)
        return "/".join(safe_path_part(part) for part in parts) + f"/Attempt={self.attempt}"


def _name(data: dict[str, Any], field: str, *, alias: str | None = None) -> str:
    value = data.get(field)
    if value is None and alias is not None:
        value = data.get(alias)
    if not isinstance(value, str) or not value:
        also = f" (or '{alias}')" if alias else ""
        raise InvalidTask(f"field '{field}'{also} must be a non-empty string, got {value!r}")
    return value


def _string_list(data: dict[str, Any], field: str) -> tuple[str, ...]:
    value = data.get(field, [])
    if isinstance(value, str):  # Data Pipeline allows a single value where a list is expected
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str | int | float) for item in value):
        raise InvalidTask(f"field '{field}' must be a list of strings, got {value!r}")
    return tuple(str(item) for item in value)


def _variables(data: dict[str, Any], field: str, *, reference: bool) -> tuple[tuple[str, str], ...]:
    """`environment` (NAME -> plain value) or `secrets` (NAME -> secret reference), checked name by name."""
    value = data.get(field, {})
    if not isinstance(value, dict):
        raise InvalidTask(f"field '{field}' must be an object of NAME: value, got {type(value).__name__}")
    checked = []
    for name, item in value.items():
        if not isinstance(name, str) or _VARIABLE_NAME.match(name) is None:
            raise InvalidTask(f"field '{field}': {name!r} is not a shell variable name (letters, digits, '_')")
        if _RESERVED_VARIABLE.match(name):
            raise InvalidTask(f"field '{field}.{name}': {name} is reserved for the runner and may not be set by a task")
        if reference:
            if not isinstance(item, str) or not item.strip() or item.strip() == SSM_SECRET_PREFIX:
                raise InvalidTask(
                    f"field '{field}.{name}' must be a Secrets Manager secret ARN or name, or ssm:<parameter name>"
                )
            text = item.strip()
        else:
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise InvalidTask(f"field '{field}.{name}' must be a string or a number, got {type(item).__name__}")
            text = str(item)
        if "\0" in text:
            raise InvalidTask(f"field '{field}.{name}' holds a NUL character, which no environment variable can")
        checked.append((name, text))
    return tuple(checked)
