"""An RdsDatabase with the definition's username and a password secret, as the corpus sample SQLActivityWithTimeout
writes it (rdsInstanceId, username, `*password: #{myRDSPassword}` whose value is a reference): the secret, as RDS's
console writes a database's credentials, also says where the instance is (engine, host, port), and names the instance,
which must be the definition's. Against the PostgreSQL server the tests start, the secret in moto's Secrets Manager.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from datapipe.databases.activities import run_sql_activity
from datapipe.errors import DatapipeError
from tests.database_servers import PASSWORD, Server

DATABASE = {"id": "DatabaseId_rAZmM", "type": "RdsDatabase", "rdsInstanceId": "db-1", "username": "datapipe",
            "passwordSecret": "rds/db-1"}
ACTIVITY = {"id": "ActivityId_wRpKi", "type": "SqlActivity",
            "script": "CREATE TEMP TABLE t (n int); INSERT INTO t VALUES (1), (2); DELETE FROM t WHERE n > ?",
            "scriptArgument": ["0"]}


@pytest.fixture()
def secrets() -> Iterator[Any]:
    """moto's Secrets Manager alone (the script is inline: no S3)."""
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="eu-west-1")


def test_the_password_secret_says_where_the_instance_is(postgres_server: Server, secrets: Any) -> None:
    secret = {**postgres_server.secret(), "dbInstanceIdentifier": "db-1"}
    secrets.create_secret(Name="rds/db-1", SecretString=json.dumps(secret))
    # the definition's username, the secret's password, host, port and engine: two rows inserted, two deleted
    assert run_sql_activity(ACTIVITY, DATABASE, secrets=secrets, s3=None)[-2:] == [2, 2]


@pytest.mark.parametrize(("stored", "expected"), [
    ({"password": PASSWORD, "engine": "postgres"}, "DatabaseId_rAZmM: no host to connect to: give connectionString, "
     "or a secret 'rds/db-1' with 'host'"),
    (PASSWORD, "DatabaseId_rAZmM: secret 'rds/db-1' must give 'engine'"),  # the password alone
    ({"password": PASSWORD, "host": "127.0.0.1", "engine": "postgres", "dbInstanceIdentifier": "db-2"},
     "DatabaseId_rAZmM.rdsInstanceId: secret 'rds/db-1' is for the instance 'db-2', not 'db-1'"),
    ({"password": PASSWORD, "host": "127.0.0.1", "engine": "oracle-ee"}, "DatabaseId_rAZmM: secret 'rds/db-1' must "
     "give 'engine' (mysql, mariadb, postgres, aurora-mysql or aurora-postgresql) for an RdsDatabase, got 'oracle-ee'"),
])
def test_a_secret_that_does_not_say_where_the_instance_is_is_named_never_shown(
    secrets: Any, stored: Any, expected: str
) -> None:
    text = stored if isinstance(stored, str) else json.dumps(stored)
    secrets.create_secret(Name="rds/db-1", SecretString=text)
    with pytest.raises(DatapipeError) as raised:
        run_sql_activity(ACTIVITY, DATABASE, secrets=secrets, s3=None)
    assert str(raised.value).startswith(expected) and PASSWORD not in str(raised.value)
    assert "\n" not in str(raised.value)
