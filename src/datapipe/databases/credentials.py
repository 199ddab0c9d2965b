"""Database credentials read from a Secrets Manager secret at run time, never from a definition or a template.

The secret holds the JSON that RDS and Redshift write for their managed secrets:
`{"username": ..., "password": ..., "host": ..., "port": ..., "dbname": ..., "engine": ...}`; only username and
password are required. The password never appears in a message, a log or a repr.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from datapipe.errors import DatapipeError


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    host: str | None = None
    port: int | None = None
    dbname: str | None = None
    engine: str | None = None


def read_credentials(secret_id: str, *, secrets: Any, where: str) -> Credentials:
    """The secret `secret_id` (ARN or name) through the injected Secrets Manager client `secrets`."""
    try:
        value = secrets.get_secret_value(SecretId=secret_id)
    except secrets.exceptions.ResourceNotFoundException:
        raise DatapipeError(f"{where}: secret {secret_id!r} does not exist in Secrets Manager") from None
    except Exception as error:  # botocore's ClientError and connection errors: their text holds no secret value
        raise DatapipeError(f"{where}: cannot read secret {secret_id!r}: {_first_line(error)}") from None
    text = value.get("SecretString")
    if text is None:
        raise DatapipeError(
            f"{where}: secret {secret_id!r} is binary; it must be a JSON string with username and password"
        )
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise DatapipeError(f"{where}: secret {secret_id!r} is not a JSON object with username and password")
    for name in ("username", "password"):
        if not isinstance(document.get(name), str) or not document[name]:
            raise DatapipeError(f"{where}: secret {secret_id!r} has no {name!r} (a non-empty string)")
    port = document.get("port")
    if port is not None:
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise DatapipeError(f"{where}: secret {secret_id!r} has a 'port' that is not a number from 1 to 65535")
    optional = {name: document.get(name) for name in ("host", "dbname", "engine")}
    for name, text_value in optional.items():
        if text_value is not None and not isinstance(text_value, str):
            raise DatapipeError(f"{where}: secret {secret_id!r} has a {name!r} that is not a string")
    return Credentials(
        username=document["username"],
        password=document["password"],
        host=optional["host"],
        port=port,
        dbname=optional["dbname"],
        engine=optional["engine"],
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
