"""The definition's username with a secret holding the password alone (`passwordSecret`): what the importer makes of
`*password: #{*myParameter}`. Read from Secrets Manager (a plain SecretString, or RDS's JSON with `password`) or an SSM
SecureString, through moto; every failure names the object and the reference, never the value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from datapipe.databases.credentials import read_database_credentials
from datapipe.databases.model import DatabaseSpec
from datapipe.errors import DatapipeError

SECRET_PASSWORD = "s3cr3t 'quoted' \"twice\""


@pytest.fixture()
def clients() -> Iterator[dict[str, Any]]:
    with mock_aws():
        yield {"secrets": boto3.client("secretsmanager", region_name="eu-west-1"),
               "ssm": boto3.client("ssm", region_name="eu-west-1")}


def spec(reference: str) -> DatabaseSpec:
    return DatabaseSpec.from_object({"id": "MyDb", "type": "JdbcDatabase", "jdbcDriverClass": "org.postgresql.Driver",
                                     "connectionString": "jdbc:postgresql://db:5432/sales", "username": "loader",
                                     "passwordSecret": reference})


@pytest.mark.parametrize("stored", [SECRET_PASSWORD, json.dumps({"username": "admin", "password": SECRET_PASSWORD})])
def test_a_secrets_manager_password_is_the_secret_string_or_its_password(clients: dict[str, Any], stored: str) -> None:
    clients["secrets"].create_secret(Name="db/pw", SecretString=stored)
    credentials = read_database_credentials(spec("db/pw"), **clients)
    # the username is the definition's, even when RDS's JSON names another one
    assert (credentials.username, credentials.password) == ("loader", SECRET_PASSWORD)
    assert SECRET_PASSWORD not in repr(credentials)


def test_an_ssm_securestring_is_read_decrypted(clients: dict[str, Any]) -> None:
    clients["ssm"].put_parameter(Name="/db/pw", Value=SECRET_PASSWORD, Type="SecureString")
    credentials = read_database_credentials(spec("ssm:/db/pw"), **clients)
    assert (credentials.username, credentials.password) == ("loader", SECRET_PASSWORD)


@pytest.mark.parametrize(("reference", "prepare", "expected"), [
    ("db/none", None, "MyDb: secret 'db/none' does not exist in Secrets Manager"),
    ("ssm:/db/none", None, "MyDb: SSM parameter '/db/none' does not exist"),
    ("db/binary", {"Name": "db/binary", "SecretBinary": b"\x00\x01"},
     "MyDb: secret 'db/binary' is binary; it must hold the password as a string"),
    ("db/empty-json", {"Name": "db/empty-json", "SecretString": json.dumps({"password": ""})},
     "MyDb: the password secret 'db/empty-json' is empty"),
])
def test_an_unreadable_password_secret_is_named_never_shown(
    clients: dict[str, Any], reference: str, prepare: dict[str, Any] | None, expected: str
) -> None:
    if prepare is not None:
        clients["secrets"].create_secret(**prepare)
    with pytest.raises(DatapipeError) as caught:
        read_database_credentials(spec(reference), **clients)
    assert str(caught.value) == expected


@pytest.mark.parametrize(("fields", "expected"), [
    ({"passwordSecret": "db/pw"}, "MyDb.username: required with a password secret"),
    ({"username": "u", "passwordSecret": "db/pw", "secretId": "db/creds"},
     "MyDb.passwordSecret: give either secretId or username with a password secret, not both"),
    ({"username": "u", "passwordSecret": "x" * 5000}, "MyDb.passwordSecret: a secret reference of at most 2100"),
    ({"username": "u", "passwordSecret": "db/pw", "*password": "hunter2"},
     "MyDb.*password: passwords are not read from definitions"),
])
def test_a_password_secret_without_its_username_or_beside_secret_id_is_refused(
    fields: dict[str, Any], expected: str
) -> None:
    obj = {"id": "MyDb", "type": "JdbcDatabase", "jdbcDriverClass": "org.postgresql.Driver",
           "connectionString": "jdbc:postgresql://db:5432/sales", **fields}
    with pytest.raises(DatapipeError) as caught:
        DatabaseSpec.from_object(obj)
    assert str(caught.value).startswith(expected) and "hunter2" not in str(caught.value)
