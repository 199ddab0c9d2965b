"""The task contract between whatever sends tasks to a worker group (or a Batch job) and the task runner.

Producers (the worker-groups stack, the Data Pipeline importer) send the input that `parse_task` reads: a
ShellCommandActivity or ShellCommandPrecondition (`ShellTask`), or a SqlActivity or CopyActivity (`DatabaseTask`).
The runner answers with a success output or with one of the error names below. docs/taskrunner.md describes both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from datapipe.databases.activities import DELIMITERS, SQL_NODE_TYPES, S3Node, SqlNode
from datapipe.databases.model import DATABASE_TYPES as DATABASE_OBJECT_TYPES
from datapipe.databases.model import DatabaseSpec, text_field, text_list_field
from datapipe.errors import DatapipeError
from datapipe.jsontext import parse_json, shown
from datapipe.naming import BUCKET_NAME_PATTERN

SHELL_COMMAND_ACTIVITY = "ShellCommandActivity"
SHELL_COMMAND_PRECONDITION = "ShellCommandPrecondition"
SQL_ACTIVITY = "SqlActivity"
COPY_ACTIVITY = "CopyActivity"
SHELL_TYPES = (SHELL_COMMAND_ACTIVITY, SHELL_COMMAND_PRECONDITION)
DATABASE_TYPES = (SQL_ACTIVITY, COPY_ACTIVITY)
TASK_TYPES = (*SHELL_TYPES, *DATABASE_TYPES)
# Step Functions hands an activity at most 256 KiB of input; a Batch job's DATAPIPE_TASK is bounded the same way.
MAX_TASK_INPUT_BYTES = 256 * 1024

# Error names sent with SendTaskFailure; state machines retry or catch on them.
COMMAND_FAILED = "TaskRunner.CommandFailed"
RUNNER_INTERRUPTED = "TaskRunner.Interrupted"
INVALID_TASK = "TaskRunner.InvalidTask"
STAGING_FAILED = "TaskRunner.StagingFailed"
SECRET_UNAVAILABLE = "TaskRunner.SecretUnavailable"
SQL_FAILED = "TaskRunner.SqlFailed"
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
DATA_FORMATS = tuple(DELIMITERS)
MAX_OBJECT_ID_CHARACTERS = 1024
MAX_SECRET_ID_CHARACTERS = 2048  # Secrets Manager's bound on a SecretId


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
            raise InvalidTask(f"field '{field}' must be an s3://bucket/key URI, got {shown(uri)}")
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
class Envelope:
    """The fields every task type shares: where it comes from, which attempt, and its environment."""

    workflow: str
    execution: str
    activity_id: str
    attempt: int  # 1 on the first attempt, as in Data Pipeline's Attempt=N
    heartbeat_seconds: int | None
    environment: tuple[tuple[str, str], ...]
    secrets: tuple[tuple[str, str], ...]

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Envelope:
        attempt = data.get("attempt", 0)
        if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 0:
            raise InvalidTask(f"field 'attempt' must be a whole number from 0, got {shown(attempt)}")
        environment = _variables(data, "environment", reference=False)
        secrets = _variables(data, "secrets", reference=True)
        both = sorted({name for name, _ in environment} & {name for name, _ in secrets})
        if both:
            raise InvalidTask(f"field 'secrets.{both[0]}': {both[0]} is also in field 'environment'")
        heartbeat = data.get("heartbeatSeconds")
        if heartbeat is not None and (not isinstance(heartbeat, int) or isinstance(heartbeat, bool) or heartbeat < 1):
            raise InvalidTask(f"field 'heartbeatSeconds' must be a whole number from 1, got {shown(heartbeat)}")
        return cls(
            workflow=_name(data, "workflow", alias="pipelineId"),
            execution=_name(data, "execution"),
            activity_id=_name(data, "activityId"),
            attempt=attempt + 1,
            heartbeat_seconds=heartbeat,
            environment=environment,
            secrets=secrets,
        )


def task_data(text: str) -> dict[str, Any]:
    """The task input as a JSON object with a known `type`; size and nesting bounded."""
    if isinstance(text, str | bytes) and len(text) > MAX_TASK_INPUT_BYTES:
        raise InvalidTask(f"task input is {len(text)} characters, over the {MAX_TASK_INPUT_BYTES} a task may have")
    if not isinstance(text, str | bytes):
        raise InvalidTask("task input is not JSON (no text)")
    try:
        data = parse_json(text, what="task input")
    except DatapipeError as error:
        raise InvalidTask(str(error)) from None
    if not isinstance(data, dict):
        raise InvalidTask("task input must be a JSON object")
    if data.get("type") not in TASK_TYPES:
        raise InvalidTask(f"field 'type' must be one of {', '.join(TASK_TYPES)}, got {shown(data.get('type'))}")
    return data


def parse_task(text: str) -> ShellTask | DatabaseTask:
    """The task of any type; InvalidTask naming the field otherwise."""
    data = task_data(text)
    if data["type"] in DATABASE_TYPES:
        return DatabaseTask.from_data(data)
    return ShellTask.from_data(data)


@dataclass(frozen=True)
class DatabaseTask:
    """One attempt of a SqlActivity or CopyActivity: the definition's objects, resolved, as datapipe.databases takes
    them. What SQL runs and where is fixed by these objects; run-time values reach it only as `scriptArgument`."""

    kind: str  # SqlActivity or CopyActivity
    envelope: Envelope
    activity: dict[str, Any]
    database: dict[str, Any]
    input: dict[str, Any] | None = None
    output: dict[str, Any] | None = None
    data_format: str | None = None

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> DatabaseTask:
        kind = str(data["type"])
        envelope = Envelope.from_data(data)
        for name, values in (("environment", envelope.environment), ("secrets", envelope.secrets)):
            if values:  # refused rather than ignored: no process runs to receive them
                raise InvalidTask(
                    f"field '{name}': a {kind} task runs no command; run-time values reach its SQL only as "
                    "activity.scriptArgument, and the database's credentials through database.secretId (or "
                    "database.username with database.passwordSecret)"
                )
        activity = _definition_object(data, "activity", types=(kind,))
        database = _definition_object(data, "database", types=DATABASE_OBJECT_TYPES)
        secret_id = database.get("secretId")
        if isinstance(secret_id, str) and len(secret_id) > MAX_SECRET_ID_CHARACTERS:
            raise InvalidTask(
                f"field 'database.secretId' must be a secret's name or ARN, at most {MAX_SECRET_ID_CHARACTERS} "
                f"characters, got {len(secret_id)}"
            )
        input_node = output_node = None
        data_format = data.get("dataFormat")
        if data_format is not None and data_format not in DATA_FORMATS:
            raise InvalidTask(f"field 'dataFormat' must be one of {', '.join(DATA_FORMATS)}, got {shown(data_format)}")
        if kind == COPY_ACTIVITY:
            node_types = (*SQL_NODE_TYPES, "S3DataNode")
            input_node = _definition_object(data, "input", types=node_types)
            output_node = _definition_object(data, "output", types=node_types)
            if (input_node["type"] == "S3DataNode") == (output_node["type"] == "S3DataNode"):
                raise InvalidTask(
                    f"fields 'input' and 'output': a CopyActivity task copies between a SQL data node and an "
                    f"S3DataNode, got {input_node['type']} -> {output_node['type']}"
                )
        else:
            for name in ("input", "output"):
                if data.get(name) is not None:
                    raise InvalidTask(f"field '{name}' is for CopyActivity tasks, not {kind}")
        task = cls(kind, envelope, activity, database, input_node, output_node, data_format)
        task.check_objects()
        return task

    def check_objects(self) -> None:
        """What datapipe.databases would refuse before connecting, refused now as a malformed task."""
        checks: list[tuple[str, Callable[[], object]]] = [("database", lambda: DatabaseSpec.from_object(self.database))]
        if self.kind == SQL_ACTIVITY:
            checks.append(("activity", self._check_script))
        for name, node in (("input", self.input), ("output", self.output)):
            if node is not None and node["type"] == "S3DataNode":
                checks.append((name, partial(S3Node.from_object, node, data_format=self.data_format)))
            elif node is not None:
                checks.append((name, partial(SqlNode.from_object, node)))
        for name, check in checks:
            try:
                check()
            except DatapipeError as error:
                raise InvalidTask(f"field '{name}': {error}") from None

    def _check_script(self) -> None:
        script, script_uri = text_field(self.activity, "script"), text_field(self.activity, "scriptUri")
        if (script is None) == (script_uri is None):
            raise DatapipeError(f"{self.activity['id']}.script: give exactly one of script and scriptUri")
        text_list_field(self.activity, "scriptArgument")

    @property
    def workflow(self) -> str:
        return self.envelope.workflow

    @property
    def activity_id(self) -> str:
        return self.envelope.activity_id

    @property
    def attempt(self) -> int:
        return self.envelope.attempt

    @property
    def heartbeat_seconds(self) -> int | None:
        return self.envelope.heartbeat_seconds

    @property
    def attempt_path(self) -> str:
        return attempt_path_of(self.envelope)


def _definition_object(data: dict[str, Any], field: str, *, types: tuple[str, ...]) -> dict[str, Any]:
    """A definition object of the task (`activity`, `database`, `input`, `output`): an object with an id and a type."""
    value = data.get(field)
    if not isinstance(value, dict):
        raise InvalidTask(f"field '{field}' must be the definition's object (a JSON object), got {shown(value)}")
    object_id = value.get("id")
    if not isinstance(object_id, str) or not object_id.strip() or len(object_id) > MAX_OBJECT_ID_CHARACTERS:
        raise InvalidTask(
            f"field '{field}.id' must be a non-empty string of at most {MAX_OBJECT_ID_CHARACTERS} "
            f"characters, got {shown(object_id)}"
        )
    if value.get("type") not in types:
        raise InvalidTask(f"field '{field}.type' must be one of {', '.join(types)}, got {shown(value.get('type'))}")
    return value


def attempt_path_of(envelope: Envelope) -> str:
    """`<workflow>/<activity>/<execution>/Attempt=N`: where an attempt's logs and files go."""
    parts = (envelope.workflow, envelope.activity_id, envelope.execution)
    return "/".join(safe_path_part(part) for part in parts) + f"/Attempt={envelope.attempt}"


@dataclass(frozen=True)
class ShellTask:
    """One attempt of a ShellCommandActivity (or ShellCommandPrecondition), as sent to a worker group's activity."""

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

    precondition: bool = False  # a ShellCommandPrecondition: a non-zero exit means "does not hold", not a failure

    @classmethod
    def from_input(cls, text: str) -> ShellTask:
        data = task_data(text)
        if data["type"] not in SHELL_TYPES:
            raise InvalidTask(f"field 'type' must be one of {', '.join(SHELL_TYPES)}, got {shown(data['type'])}")
        return cls.from_data(data)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ShellTask:
        command, script_uri = data.get("command"), data.get("scriptUri")
        if (command is None) == (script_uri is None):
            raise InvalidTask("exactly one of the fields 'command' and 'scriptUri' must be given")
        if command is not None and (not isinstance(command, str) or not command.strip()):
            raise InvalidTask("field 'command' must be a non-empty string")
        arguments = _string_list(data, "scriptArgument")
        stage = data.get("stage", False)
        if not isinstance(stage, bool):
            raise InvalidTask(f"field 'stage' must be true or false, got {shown(stage)}")
        envelope = Envelope.from_data(data)
        return cls(
            workflow=envelope.workflow,
            execution=envelope.execution,
            activity_id=envelope.activity_id,
            attempt=envelope.attempt,
            command=command,
            script_uri=S3Location.parse(script_uri, field="scriptUri") if script_uri is not None else None,
            script_arguments=arguments,
            stage=stage,
            inputs=tuple(S3Location.parse(u, field=f"input[{i}]") for i, u in enumerate(_string_list(data, "input"))),
            outputs=tuple(
                S3Location.parse(u, field=f"output[{i}]") for i, u in enumerate(_string_list(data, "output"))
            ),
            heartbeat_seconds=envelope.heartbeat_seconds,
            environment=envelope.environment,
            secrets=envelope.secrets,
            precondition=data["type"] == SHELL_COMMAND_PRECONDITION,
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
        raise InvalidTask(f"field '{field}'{also} must be a non-empty string, got {shown(value)}")
    return value


def _string_list(data: dict[str, Any], field: str) -> tuple[str, ...]:
    value = data.get(field, [])
    if isinstance(value, str):  # Data Pipeline allows a single value where a list is expected
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str | int | float) for item in value):
        raise InvalidTask(f"field '{field}' must be a list of strings, got {shown(value)}")
    return tuple(str(item) for item in value)


def _variables(data: dict[str, Any], field: str, *, reference: bool) -> tuple[tuple[str, str], ...]:
    """`environment` (NAME -> plain value) or `secrets` (NAME -> secret reference), checked name by name."""
    value = data.get(field, {})
    if not isinstance(value, dict):
        raise InvalidTask(f"field '{field}' must be an object of NAME: value, got {type(value).__name__}")
    checked = []
    for name, item in value.items():
        if not isinstance(name, str) or _VARIABLE_NAME.match(name) is None:
            raise InvalidTask(f"field '{field}': {shown(name)} is not a shell variable name (letters, digits, '_')")
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
