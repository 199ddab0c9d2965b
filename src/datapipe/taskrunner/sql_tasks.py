"""SqlActivity and CopyActivity tasks on the task runner: datapipe.databases does the SQL work; this module reads the
database's secret first (a Secrets Manager secret, or an SSM SecureString holding the password), so that an unreadable
secret is `TaskRunner.SecretUnavailable`, writes what ran to the attempt's stdout and the error to its stderr, and keeps
the password out of both and out of the cause.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from datapipe.databases.activities import run_copy_activity, run_sql_activity
from datapipe.databases.credentials import read_database_credentials
from datapipe.databases.model import DatabaseSpec
from datapipe.errors import DatapipeError
from datapipe.taskrunner.contract import (
    SECRET_UNAVAILABLE,
    SQL_ACTIVITY,
    SQL_FAILED,
    STAGING_FAILED,
    DatabaseTask,
)
from datapipe.taskrunner.environment import MASK, TaskRole, mask_file, masked_texts
from datapipe.taskrunner.proxy import tell_proxy_refusals

# Of a script written to the attempt's stdout: enough to see what ran, bounded so that a huge script stays cheap.
SHOWN_SCRIPT_CHARACTERS = 64 * 1024

Outcome = tuple[tuple[str, str] | None, dict[str, Any]]


class RememberedSecrets:
    """The Secrets Manager client as datapipe.databases calls it, each secret read once per task; the values read are
    kept only to be masked wherever the task writes."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.exceptions = client.exceptions
        self._answers: dict[str, dict[str, Any]] = {}

    def get_secret_value(self, *, SecretId: str) -> dict[str, Any]:
        if SecretId not in self._answers:
            self._answers[SecretId] = self._client.get_secret_value(SecretId=SecretId)
        return self._answers[SecretId]

    def values(self) -> list[str]:
        """Each secret string, and the password in it on its own (it may show without the JSON around it)."""
        values: list[str] = []
        for answer in self._answers.values():
            text = answer.get("SecretString")
            if not isinstance(text, str):
                continue
            values.append(text)
            try:
                document = json.loads(text)
            except ValueError:
                continue
            if isinstance(document, dict) and isinstance(document.get("password"), str):
                values.append(document["password"])
        return values


class RememberedParameters:
    """The SSM client as datapipe.databases calls it (a SecureString holding a password), each parameter read once
    per task like secrets; the values read are kept only to be masked wherever the task writes."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.exceptions = client.exceptions
        self._answers: dict[tuple[str, bool], dict[str, Any]] = {}

    def get_parameter(self, *, Name: str, WithDecryption: bool) -> dict[str, Any]:
        key = (Name, WithDecryption)
        if key not in self._answers:
            self._answers[key] = self._client.get_parameter(Name=Name, WithDecryption=WithDecryption)
        return self._answers[key]

    def values(self) -> list[str]:
        texts = (answer.get("Parameter", {}).get("Value") for answer in self._answers.values())
        return [text for text in texts if isinstance(text, str)]


def clients_for_task(
    *, s3: Any, secrets_manager: Any, task_role: TaskRole | None, sts: Any, session_name: str, ssm: Any = None
) -> tuple[Any, Any, Any]:
    """S3, Secrets Manager and SSM clients for a task's own work: the runner's, or with `--taskRoleArn` the same
    endpoint, region and settings (the proxy included) with short-lived keys of that role."""
    if task_role is None:
        return s3, secrets_manager, ssm
    keys = task_role.credentials(sts=sts, session_name=session_name)
    session = boto3.Session(
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=keys["AWS_SESSION_TOKEN"],
    )

    def like(client: Any) -> Any:
        meta = client.meta
        twin = session.client(
            meta.service_model.service_name,
            region_name=meta.region_name,
            endpoint_url=meta.endpoint_url,
            config=meta.config,
        )
        if meta.config.proxies:
            tell_proxy_refusals(twin)
        return twin

    return like(s3), like(secrets_manager), like(ssm) if ssm is not None else None


def run_database_task(
    task: DatabaseTask,
    *,
    s3: Any,
    secrets_manager: Any,
    task_role: TaskRole | None,
    sts: Any,
    session_name: str,
    stdout_path: Path,
    stderr_path: Path,
    ssm: Any = None,
) -> Outcome:
    """Run the task; (None, success details) or ((error name, one-line cause), {})."""
    with stdout_path.open("w", encoding="utf-8") as stdout, stderr_path.open("w", encoding="utf-8") as stderr:
        try:
            task_s3, task_secrets, task_ssm = clients_for_task(
                s3=s3, secrets_manager=secrets_manager, task_role=task_role, sts=sts, session_name=session_name, ssm=ssm
            )
        except (ClientError, BotoCoreError) as error:
            assert task_role is not None
            stderr.write(f"cannot assume the task role {task_role.arn}\n")
            return (STAGING_FAILED, f"cannot assume the task role {task_role.arn}: {error}"), {}
        secrets = RememberedSecrets(task_secrets)
        parameters = RememberedParameters(task_ssm) if task_ssm is not None else None
        try:
            outcome = _run(task, s3=task_s3, secrets=secrets, ssm=parameters, stdout=stdout, stderr=stderr)
        finally:
            sensitive = masked_texts([*secrets.values(), *(parameters.values() if parameters else [])])
    for path in (stdout_path, stderr_path):
        mask_file(path, sensitive)
    failure, details = outcome
    if failure is not None:
        failure = (failure[0], _masked(failure[1], sensitive))
    return failure, details


def _run(
    task: DatabaseTask,
    *,
    s3: Any,
    secrets: RememberedSecrets,
    ssm: RememberedParameters | None,
    stdout: Any,
    stderr: Any,
) -> Outcome:
    spec = DatabaseSpec.from_object(task.database)  # checked when the task was parsed
    where = f"{task.kind} {task.activity['id']}"
    stdout.write(f"{where} on {spec.object_type} {spec.object_id}\n")
    try:
        read_database_credentials(spec, secrets=secrets, ssm=ssm)
    except DatapipeError as error:
        stderr.write(f"{where}: {error}\n")
        return (SECRET_UNAVAILABLE, str(error)), {}
    try:
        if task.kind == SQL_ACTIVITY:
            _describe_script(task.activity, stdout)
            stdout.flush()
            counts = run_sql_activity(task.activity, task.database, secrets=secrets, s3=s3, ssm=ssm)
            stdout.write(f"statements run: {len(counts)}; row counts: {counts}\n")
            return None, {"statementsRun": len(counts), "rowCounts": counts}
        assert task.input is not None and task.output is not None
        stdout.write(f"copying {_describe_node(task.input)} to {_describe_node(task.output)}\n")
        stdout.flush()
        rows = run_copy_activity(
            task.activity, task.input, task.output, task.database, secrets=secrets, s3=s3, ssm=ssm,
            data_format=task.data_format,
        )
        stdout.write(f"rows copied: {rows}\n")
        return None, {"rowsCopied": rows}
    except DatapipeError as error:
        message = " ".join(str(error).split()) or type(error).__name__
        stderr.write(f"{where} failed: {message}\n")
        return (SQL_FAILED, message), {}
    except (ClientError, BotoCoreError) as error:  # S3 refused a script, an object or an upload
        message = f"{task.activity['id']}: {' '.join(str(error).split())}"
        stderr.write(f"{where} failed: {message}\n")
        return (SQL_FAILED, message), {}


def _describe_script(activity: dict[str, Any], stdout: Any) -> None:
    script = activity.get("script")
    arguments = activity.get("scriptArgument", [])
    count = 1 if isinstance(arguments, str) else len(arguments)
    if isinstance(script, str):
        shown = script if len(script) <= SHOWN_SCRIPT_CHARACTERS else script[:SHOWN_SCRIPT_CHARACTERS] + "\n[...]"
        stdout.write(f"script ({len(script)} characters, {count} argument(s) bound to its ?):\n{shown}\n")
    else:
        stdout.write(f"script {activity.get('scriptUri')} ({count} argument(s) bound to its ?)\n")


def _describe_node(node: dict[str, Any]) -> str:
    if node["type"] == "S3DataNode":
        return f"{node['id']} ({node.get('filePath') or node.get('directoryPath')})"
    query = node.get("selectQuery") or node.get("insertQuery")
    return f"{node['id']} (table {node.get('table')}" + (f", {query}" if query else "") + ")"


def _masked(text: str, sensitive: list[bytes]) -> str:
    for value in sensitive:
        text = text.replace(value.decode(errors="replace"), MASK.decode())
    return text
