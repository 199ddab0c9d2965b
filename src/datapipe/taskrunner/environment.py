"""What a task's command gets in its environment, and what never leaves the runner: its keys and secret values.

A task's environment is the runner's, less every AWS credential variable; plus the task's `environment` values,
its `secrets` (read by the runner just before the command starts) and, with `--taskRoleArn`, short-lived keys of
that role. Secret values are masked (`***`) in the attempt's stdout and stderr before they are kept or uploaded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from datapipe.taskrunner.contract import SSM_SECRET_PREFIX
from datapipe.taskrunner.proxy import PROXY_PASSWORD_VARIABLE

# The variables through which the AWS SDKs and CLI take keys; a task gets none of the runner's.
CREDENTIAL_VARIABLES = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CREDENTIAL_EXPIRATION",
    }
)
# ...and the runner's other secrets that its environment may hold.
RUNNER_ONLY_VARIABLES = CREDENTIAL_VARIABLES | {PROXY_PASSWORD_VARIABLE}
MASK = b"***"
_CHUNK = 1024 * 1024
_SESSION_NAME_UNSAFE = re.compile(r"[^\w+=,.@-]")


class SecretUnavailable(Exception):
    """A secret a task names could not be read; the message names the variable and the reference, never a value."""


def base_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The runner's environment without its credentials (its keys, its proxy password)."""
    return {name: value for name, value in environ.items() if name not in RUNNER_ONLY_VARIABLES}


def read_secret(reference: str, *, secrets_manager: Any, ssm: Any) -> str:
    """The value behind `arn-or-name` (Secrets Manager) or `ssm:<name>` (an SSM parameter, decrypted)."""
    if reference.startswith(SSM_SECRET_PREFIX):
        answer = ssm.get_parameter(Name=reference[len(SSM_SECRET_PREFIX) :], WithDecryption=True)
        return str(answer["Parameter"]["Value"])
    answer = secrets_manager.get_secret_value(SecretId=reference)
    if "SecretString" in answer:
        return str(answer["SecretString"])
    return bytes(answer["SecretBinary"]).decode("utf-8", errors="strict")


def read_secrets(secrets: Iterable[tuple[str, str]], *, secrets_manager: Any, ssm: Any) -> dict[str, str]:
    values = {}
    for name, reference in secrets:
        try:
            values[name] = read_secret(reference, secrets_manager=secrets_manager, ssm=ssm)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            raise SecretUnavailable(f"cannot read the secret of {name} ({reference}): {code}") from None
        except (BotoCoreError, UnicodeDecodeError) as error:
            raise SecretUnavailable(f"cannot read the secret of {name} ({reference}): {type(error).__name__}") from None
        if "\0" in values[name]:
            raise SecretUnavailable(f"the secret of {name} ({reference}) holds a NUL character")
    return values


@dataclass(frozen=True)
class TaskRole:
    """A role the runner assumes for every attempt, so that a command gets short-lived keys of that role only."""

    arn: str
    duration_seconds: int = 3600

    def credentials(self, *, sts: Any, session_name: str) -> dict[str, str]:
        answer = sts.assume_role(
            RoleArn=self.arn,
            RoleSessionName=_SESSION_NAME_UNSAFE.sub("-", session_name)[:64].ljust(2, "-"),
            DurationSeconds=self.duration_seconds,
        )["Credentials"]
        return {
            "AWS_ACCESS_KEY_ID": answer["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": answer["SecretAccessKey"],
            "AWS_SESSION_TOKEN": answer["SessionToken"],
        }


def masked_texts(values: Iterable[str]) -> list[bytes]:
    """What to mask for these secret values: each value, and each line of a value of several lines."""
    texts = set()
    for value in values:
        if value:
            texts.add(value.encode())
            texts.update(line.strip().encode() for line in value.splitlines() if line.strip())
    return sorted(texts, key=len, reverse=True)


def mask_file(path: Path, texts: list[bytes]) -> None:
    """Replace every occurrence of `texts` in the file with `***`, in one pass and bounded memory."""
    if not texts or not path.exists():
        return
    pattern = re.compile(b"|".join(re.escape(text) for text in texts))
    keep = len(texts[0]) - 1  # the longest text; a match starting this close to a chunk's end may go on in the next
    masked = path.with_name(path.name + ".masked")
    with path.open("rb") as source, masked.open("wb") as sink:
        carry = b""
        while chunk := source.read(_CHUNK):
            data = carry + chunk
            cut = max(0, len(data) - keep)
            position = 0
            for match in pattern.finditer(data):
                if match.start() >= cut:
                    break
                sink.write(data[position : match.start()] + MASK)
                position = match.end()
            cut = max(cut, position)
            sink.write(data[position:cut])
            carry = data[cut:]
        sink.write(pattern.sub(MASK, carry))
    os.replace(masked, path)
