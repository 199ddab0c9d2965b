"""RdsDatabase, JdbcDatabase and RedshiftDatabase objects of a Data Pipeline definition, and where they lead.

A definition names its database the way Data Pipeline did. The credentials are either `secretId` (datapipe's field: the
ARN or name of a Secrets Manager secret holding username and password), or `username` with `passwordSecret` (a
reference to a secret holding the password alone: a Secrets Manager ARN or name, or `ssm:<SecureString name>`; the
importer writes it for a `*password` of `#{*myParameter}`). A `*password` written into the object is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from datapipe.databases.credentials import SSM_PREFIX, Credentials
from datapipe.databases.urls import Endpoint, Engine, parse_jdbc_url
from datapipe.errors import DatapipeError

DATABASE_TYPES = ("RdsDatabase", "JdbcDatabase", "RedshiftDatabase")
SECRET_FIELD = "secretId"
PASSWORD_SECRET_FIELD = "passwordSecret"
# A reference is a name, an ARN or ssm:<name>; SSM parameter names are the longest (2,048 characters).
MAX_REFERENCE_CHARACTERS = 2100
# Java driver classes of the supported engines, to catch a connectionString and a jdbcDriverClass that disagree.
DRIVER_CLASS_ENGINES = {
    "org.postgresql.Driver": Engine.POSTGRESQL,
    "com.mysql.jdbc.Driver": Engine.MYSQL,
    "com.mysql.cj.jdbc.Driver": Engine.MYSQL,
    "org.mariadb.jdbc.Driver": Engine.MYSQL,
    "com.amazon.redshift.jdbc.Driver": Engine.REDSHIFT,
    "com.amazon.redshift.jdbc41.Driver": Engine.REDSHIFT,
    "com.amazon.redshift.jdbc42.Driver": Engine.REDSHIFT,
}
# The `engine` value of RDS-managed secrets.
RDS_ENGINES = {
    "mysql": Engine.MYSQL,
    "mariadb": Engine.MYSQL,
    "aurora-mysql": Engine.MYSQL,
    "aurora": Engine.MYSQL,
    "postgres": Engine.POSTGRESQL,
    "aurora-postgresql": Engine.POSTGRESQL,
    "redshift": Engine.REDSHIFT,
}
PASSWORD_REFUSED = (
    "passwords are not read from definitions: write #{*myPassword} and give the secret parameter *myPassword a "
    "reference with --values ('secretsmanager:<name>', a secret ARN or 'ssm:<SecureString name>'), or name a secret "
    f"holding username and password in {SECRET_FIELD}"
)
# Without a secretId, the Data API signs in with temporary credentials: on a cluster as DbUser (the caller may call
# redshift:GetClusterCredentials for exactly that user and database), on a workgroup as the caller's IAM identity
# (redshift-serverless:GetCredentials). The password is then never read.
DATA_API_PASSWORD_UNUSED = (
    "the Redshift Data API signs in with temporary credentials (GetClusterCredentials as username on a cluster, "
    "GetCredentials as the workflow's IAM identity on a workgroup): no password is read"
)
# GetClusterCredentials' constraints on DbUser and DbName (Redshift API reference): both end up in IAM ARNs, so nothing
# else (a `*`, a `/`) may pass. Cluster identifiers and workgroup names as Redshift accepts them.
REDSHIFT_SIGN_IN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+.@-]{0,63}")
CLUSTER_IDENTIFIER = re.compile(r"(?=.{1,63}\Z)[a-z](?:-?[a-z0-9])*")
WORKGROUP_NAME = re.compile(r"[a-z0-9-]{3,64}")
DEFAULT_DATABASE = {Engine.POSTGRESQL: "postgres", Engine.REDSHIFT: "dev"}


def text_field(obj: Mapping[str, object], name: str) -> str | None:
    """A string field of a definition object, or None when absent; anything else is refused naming it."""
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise DatapipeError(f"{obj.get('id') or '?'}.{name}: expected a non-empty string")
    return value


def text_list_field(obj: Mapping[str, object], name: str) -> list[str]:
    """A field that a definition gives as one string or as a list of them (a repeated key)."""
    value = obj.get(name, [])
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(item, str) for item in values):
        raise DatapipeError(f"{obj.get('id') or '?'}.{name}: expected a string or a list of strings")
    return values


@dataclass(frozen=True)
class DatabaseSpec:
    """One database object of a definition: everything but the credentials, which are read when a task runs."""

    object_id: str
    object_type: str
    secret_id: str | None  # a secret with username and password; else username and password_secret
    endpoint: Endpoint | None = None  # from connectionString
    database_name: str | None = None
    rds_instance_id: str | None = None
    cluster_id: str | None = None
    workgroup_name: str | None = None
    region: str | None = None
    username: str | None = None
    password_secret: str | None = None  # a reference to a secret holding the password alone

    @property
    def credentials_reference(self) -> str:
        """The one secret the credentials are read from: who runs the SQL must be allowed to read it."""
        return str(self.secret_id or self.password_secret)

    @classmethod
    def from_object(cls, obj: Mapping[str, object]) -> DatabaseSpec:
        """A definition object (`{"id": ..., "type": "RdsDatabase", ...}`) -> DatabaseSpec, or a one-line error."""
        object_id = str(obj.get("id") or "database")
        object_type = obj.get("type")
        if object_type not in DATABASE_TYPES:
            raise DatapipeError(f"{object_id}.type: {object_type!r} is not one of {', '.join(DATABASE_TYPES)}")

        def text(name: str) -> str | None:
            value = text_field(obj, name)
            return value.strip() if value is not None else None

        if obj.get("*password"):
            raise DatapipeError(f"{object_id}.*password: {PASSWORD_REFUSED}")
        secret_id, username, password_secret = text(SECRET_FIELD), text("username"), text(PASSWORD_SECRET_FIELD)
        if secret_id is not None and password_secret is not None:
            raise DatapipeError(
                f"{object_id}.{PASSWORD_SECRET_FIELD}: give either {SECRET_FIELD} or username with a password "
                "secret, not both"
            )
        if secret_id is None and password_secret is None:
            raise DatapipeError(
                f"{object_id}.{SECRET_FIELD}: required: the ARN or name of a Secrets Manager secret (or username with "
                f"{PASSWORD_SECRET_FIELD})"
            )
        if password_secret is not None and username is None:
            raise DatapipeError(f"{object_id}.username: required with a password secret (the secret holds the "
                                "password alone)")
        for name, reference in ((SECRET_FIELD, secret_id), (PASSWORD_SECRET_FIELD, password_secret)):
            if reference is not None and len(reference) > MAX_REFERENCE_CHARACTERS:
                raise DatapipeError(f"{object_id}.{name}: a secret reference of at most {MAX_REFERENCE_CHARACTERS} "
                                    f"characters, got {len(reference)}")
        connection_string = text("connectionString")
        endpoint = (
            parse_jdbc_url(connection_string, where=f"{object_id}.connectionString") if connection_string else None
        )
        spec = cls(
            object_id=object_id,
            object_type=str(object_type),
            secret_id=secret_id,
            endpoint=endpoint,
            database_name=text("databaseName"),
            rds_instance_id=text("rdsInstanceId"),
            cluster_id=text("clusterId"),
            workgroup_name=text("workgroupName"),
            region=text("region"),
            username=username if password_secret is not None else None,
            password_secret=password_secret,
        )
        spec._check(driver_class=text("jdbcDriverClass"))
        return spec

    def _check(self, *, driver_class: str | None) -> None:
        where = self.object_id
        if self.object_type == "JdbcDatabase":
            if self.endpoint is None:
                raise DatapipeError(f"{where}.connectionString: required for a JdbcDatabase")
            if driver_class is None:
                raise DatapipeError(
                    f"{where}.jdbcDriverClass: required for a JdbcDatabase (e.g. org.postgresql.Driver)"
                )
            class_engine = DRIVER_CLASS_ENGINES.get(driver_class)
            if class_engine is not None and class_engine != self.endpoint.engine:
                raise DatapipeError(
                    f"{where}.jdbcDriverClass: {driver_class} is a {class_engine.value} driver but connectionString "
                    f"names a {self.endpoint.engine.value} database"
                )
        elif self.object_type == "RdsDatabase":
            if self.rds_instance_id is None:
                raise DatapipeError(f"{where}.rdsInstanceId: required for an RdsDatabase")
            if self.endpoint is None and (self.password_secret or "").startswith(SSM_PREFIX):
                # an SSM parameter holds the password alone: nothing says where the instance is
                raise DatapipeError(
                    f"{where}.rdsInstanceId: an RdsDatabase finds its host, port and engine in its secret, as RDS "
                    "writes a database's credentials (username, password, engine, host, port): name a Secrets "
                    "Manager secret, not an SSM parameter, or use a JdbcDatabase and its connectionString"
                )
        else:
            given = [
                name
                for name, value in (
                    ("clusterId", self.cluster_id),
                    ("connectionString", self.endpoint),
                    ("workgroupName", self.workgroup_name),
                )
                if value is not None
            ]
            if len(given) != 1:
                raise DatapipeError(
                    f"{where}.clusterId: a RedshiftDatabase needs exactly one of clusterId, connectionString, "
                    f"workgroupName (given: {', '.join(given) or 'none'})"
                )
            if self.cluster_id is not None and not CLUSTER_IDENTIFIER.fullmatch(self.cluster_id):
                raise DatapipeError(
                    f"{where}.clusterId: {self.cluster_id[:80]!r} is not a cluster identifier (lowercase letters, "
                    "digits and single hyphens, starting with a letter, at most 63 characters)"
                )
            if self.workgroup_name is not None and not WORKGROUP_NAME.fullmatch(self.workgroup_name):
                raise DatapipeError(
                    f"{where}.workgroupName: {self.workgroup_name[:80]!r} is not a workgroup name (3 to 64 lowercase "
                    "letters, digits and hyphens)"
                )
            if self.endpoint is not None and self.endpoint.engine == Engine.MYSQL:
                raise DatapipeError(
                    f"{where}.connectionString: a RedshiftDatabase needs a jdbc:redshift: or jdbc:postgresql: URL"
                )

    def engine(self, credentials: Credentials) -> Engine:
        if self.object_type == "RedshiftDatabase":
            return Engine.REDSHIFT
        if self.endpoint is not None:
            return self.endpoint.engine
        engine = RDS_ENGINES.get((credentials.engine or "").lower())
        if engine is None:
            raise DatapipeError(
                f"{self.object_id}: secret {self.credentials_reference!r} must give 'engine' (mysql, mariadb, "
                f"postgres, aurora-mysql or aurora-postgresql) for an RdsDatabase, got {credentials.engine!r}"
            )
        return engine

    def target(self, credentials: Credentials) -> ConnectionTarget:
        """Host, port and database: connectionString first, then the secret (RDS-managed secrets carry them)."""
        engine = self.engine(credentials)
        host = self.endpoint.host if self.endpoint else credentials.host
        if not host:
            raise DatapipeError(
                f"{self.object_id}: no host to connect to: give connectionString, "
                f"or a secret {self.credentials_reference!r} with 'host'"
            )
        port = self.endpoint.port if self.endpoint else (credentials.port or engine.default_port)
        database = (
            self.database_name
            or (self.endpoint.database if self.endpoint else None)
            or credentials.dbname
            or DEFAULT_DATABASE.get(engine)
        )
        return ConnectionTarget(engine=engine, host=host, port=port, database=database)

    def data_api_parameters(self) -> dict[str, str]:
        """What ExecuteStatement/BatchExecuteStatement of the Redshift Data API need to reach this database."""
        if self.object_type != "RedshiftDatabase" or (self.cluster_id is None and self.workgroup_name is None):
            raise DatapipeError(
                f"{self.object_id}: the Redshift Data API needs a RedshiftDatabase with clusterId or workgroupName"
            )
        database = self.database_name or DEFAULT_DATABASE[Engine.REDSHIFT]
        where = (
            {"ClusterIdentifier": self.cluster_id} if self.cluster_id else {"WorkgroupName": str(self.workgroup_name)}
        )
        if self.secret_id is not None:
            return {**where, "Database": database, "SecretArn": self.secret_id}
        if self.workgroup_name is not None:  # the database user is the caller's IAM identity
            return {**where, "Database": database}
        for name, value in (("username", str(self.username)), ("databaseName", database)):
            if not REDSHIFT_SIGN_IN_NAME.fullmatch(value):
                raise DatapipeError(
                    f"{self.object_id}.{name}: {value[:80]!r} is not a name GetClusterCredentials accepts (a letter, "
                    "then up to 63 letters, digits, _, +, ., @ or -)"
                )
        return {**where, "Database": database, "DbUser": str(self.username)}


@dataclass(frozen=True)
class ConnectionTarget:
    engine: Engine
    host: str
    port: int
    database: str | None

    def describe(self) -> str:
        return f"{self.engine.value}://{self.host}:{self.port}/{self.database or ''}"
