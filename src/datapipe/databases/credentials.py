"""Database credentials read from a secret at run time, never from a definition or a template.

Either a Secrets Manager secret (`secretId`) holding the JSON that RDS and Redshift write for their managed secrets:
`{"username": ..., "password": ..., "host": ..., "port": ..., "dbname": ..., "engine": ...}` (only username and
password are required); or the definition's `username` with a secret holding the password alone (`passwordSecret`:
a Secrets Manager secret whose SecretString is the password, or `ssm:<name>`, an SSM SecureString). The password never
appears in a message, a log or a repr.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from datapipe.errors import DatapipeError

if TYPE_CHECKING:
    from datapipe.databases.model import DatabaseSpec

SSM_PREFIX = "ssm:"


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
    text = _secret_string(secret_id, secrets=secrets, where=where,
                          holding="be a JSON string with username and password")
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise DatapipeError(f"{where}: secret {secret_id!r} is not a JSON object with username and password")
    for name in ("username", "password"):
        if not isinstance(document.get(name), str) or not document[name]:
            raise DatapipeError(f"{where}: secret {secret_id!r} has no {name!r} (a non-empty string)")
    return Credentials(username=document["username"], password=document["password"],
                       **connection_fields(document, secret_id, where=where))


def connection_fields(document: dict[str, Any], secret_id: str, *, where: str) -> dict[str, Any]:
    """host, port, dbname and engine of a secret as RDS writes them (each may be absent), checked."""
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
    return {**optional, "port": port}


def read_database_credentials(spec: DatabaseSpec, *, secrets: Any, ssm: Any = None) -> Credentials:
    """The credentials of a database object, through the injected Secrets Manager (`secrets`) and SSM clients."""
    if spec.secret_id is not None:
        return read_credentials(spec.secret_id, secrets=secrets, where=spec.object_id)
    assert spec.username is not None and spec.password_secret is not None  # DatabaseSpec.from_object checks both
    password, document = read_password_secret(spec.password_secret, secrets=secrets, ssm=ssm, where=spec.object_id)
    if spec.object_type == "RdsDatabase" and spec.endpoint is None:
        # the instance's host, port and engine: in the secret, as RDS's console writes a database's credentials
        fields = connection_fields(document or {}, spec.password_secret, where=spec.object_id)
        instance = (document or {}).get("dbInstanceIdentifier")
        if instance is not None and instance != spec.rds_instance_id:
            raise DatapipeError(f"{spec.object_id}.rdsInstanceId: secret {spec.password_secret!r} is for the instance "
                                f"{str(instance)[:80]!r}, not {spec.rds_instance_id!r}")
        return Credentials(username=spec.username, password=password, **fields)
    return Credentials(username=spec.username, password=password)


def read_password_secret(
    reference: str, *, secrets: Any, ssm: Any, where: str
) -> tuple[str, dict[str, Any] | None]:
    """The password behind `reference`: an SSM SecureString (`ssm:<name>`, decrypted) or a Secrets Manager secret
    whose SecretString is the password (or, as RDS writes its secrets, a JSON object with `password`); and that JSON
    object, when the secret is one."""
    document: Any = None
    if reference.startswith(SSM_PREFIX):
        name = reference.removeprefix(SSM_PREFIX)
        if ssm is None:
            raise DatapipeError(f"{where}: cannot read SSM parameter {name!r}: no SSM client was given")
        try:
            text = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            raise DatapipeError(f"{where}: SSM parameter {name!r} does not exist") from None
        except Exception as error:  # ClientError and connection errors: their text holds no secret value
            raise DatapipeError(f"{where}: cannot read SSM parameter {name!r}: {_first_line(error)}") from None
    else:
        text = _secret_string(reference, secrets=secrets, where=where, holding="hold the password as a string")
        try:
            document = json.loads(text) if text.lstrip().startswith("{") else None
        except (ValueError, RecursionError):
            document = None
        if isinstance(document, dict) and isinstance(document.get("password"), str):
            text = document["password"]
    if not isinstance(text, str) or not text:
        raise DatapipeError(f"{where}: the password secret {reference!r} is empty")
    return text, document if isinstance(document, dict) else None


def _secret_string(secret_id: str, *, secrets: Any, where: str, holding: str) -> str:
    """The SecretString of a Secrets Manager secret; a missing, unreadable or binary secret as one line (`holding`:
    what the secret must hold, said of a binary one)."""
    try:
        value = secrets.get_secret_value(SecretId=secret_id)
    except secrets.exceptions.ResourceNotFoundException:
        raise DatapipeError(f"{where}: secret {secret_id!r} does not exist in Secrets Manager") from None
    except Exception as error:  # botocore's ClientError and connection errors: their text holds no secret value
        raise DatapipeError(f"{where}: cannot read secret {secret_id!r}: {_first_line(error)}") from None
    text = value.get("SecretString")
    if text is None:
        raise DatapipeError(f"{where}: secret {secret_id!r} is binary; it must {holding}")
    return text


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
