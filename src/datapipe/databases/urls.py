"""JDBC connection strings of the engines datapipe can reach with a Python driver, and one-line refusals of the rest."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import parse_qsl, unquote

from datapipe.errors import DatapipeError


class Engine(Enum):
    """An engine and the wire protocol its driver speaks."""

    POSTGRESQL = "postgresql"
    MYSQL = "mysql"
    REDSHIFT = "redshift"

    @property
    def default_port(self) -> int:
        return {Engine.POSTGRESQL: 5432, Engine.MYSQL: 3306, Engine.REDSHIFT: 5439}[self]

    @property
    def speaks_postgresql(self) -> bool:
        """Redshift speaks PostgreSQL's wire protocol, so psycopg reaches it."""
        return self != Engine.MYSQL


# The JDBC sub-protocol (`jdbc:<name>:`) of each supported engine; MariaDB speaks MySQL's protocol.
SUBPROTOCOLS = {
    "postgresql": Engine.POSTGRESQL,
    "mysql": Engine.MYSQL,
    "mariadb": Engine.MYSQL,
    "redshift": Engine.REDSHIFT,
}
# What an unsupported engine would need, for the refusal.
NEEDS = {
    "oracle": "an Oracle driver (python-oracledb)",
    "sqlserver": "a SQL Server driver (pymssql or pyodbc with Microsoft's ODBC driver)",
    "jtds": "a SQL Server driver (pymssql or pyodbc with Microsoft's ODBC driver)",
    "db2": "an IBM Db2 driver (ibm_db)",
    "sqlite": "a local file, which a pipeline's database cannot be",
    "snowflake": "the Snowflake connector (snowflake-connector-python)",
    "h2": "a Java runtime with the H2 driver",
    "aws-wrapper": "the AWS JDBC wrapper (Java); name the engine under it instead (jdbc:postgresql: or jdbc:mysql:)",
}
SUBPROTOCOL = re.compile(r"jdbc:(?P<subprotocol>[a-z0-9-]+):", re.IGNORECASE)
# A DNS name or an IPv4 address (IPv6 ones come in brackets): what a driver can connect to, at most 253 characters.
HOST_NAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?")
BRACKETED_IPV6 = re.compile(r"\[[0-9a-fA-F:.]{2,45}\]")
JDBC_URL = re.compile(
    r"jdbc:(?P<subprotocol>[a-z0-9-]+):(?://(?P<host>\[[0-9a-fA-F:.]+\]|[^/:?;]+)(?::(?P<port>[^/?;]*))?)?"
    r"(?:/(?P<database>[^?;]*))?(?:[?;](?P<properties>.*))?",
    re.DOTALL,
)


@dataclass(frozen=True)
class Endpoint:
    """Where a database listens, as a connection string gives it."""

    engine: Engine
    host: str
    port: int
    database: str | None
    properties: dict[str, str] = field(default_factory=dict)


def parse_jdbc_url(url: str, *, where: str) -> Endpoint:
    """`jdbc:postgresql://host:5432/db?ssl=true` -> Endpoint; `where` names the field in errors."""
    shape = "jdbc:<engine>://<host>[:<port>]/<database>"
    prefix = SUBPROTOCOL.match(url.strip())
    if prefix is None:
        raise DatapipeError(f"{where}: {url[:80]!r} is not a JDBC URL ({shape})")
    subprotocol = prefix["subprotocol"].lower()
    engine = SUBPROTOCOLS.get(subprotocol)
    if engine is None:
        need = NEEDS.get(subprotocol, f"a Python driver for {subprotocol!r}")
        supported = ", ".join(f"jdbc:{name}:" for name in SUBPROTOCOLS)
        raise DatapipeError(
            f"{where}: jdbc:{subprotocol}: URLs are not supported: they would need {need} (supported: {supported})"
        )
    match = JDBC_URL.fullmatch(url.strip())
    if match is None:
        raise DatapipeError(f"{where}: {url[:80]!r} is not a JDBC URL ({shape})")
    host = match["host"]
    if not host:
        raise DatapipeError(f"{where}: {url[:80]!r} names no host (jdbc:{subprotocol}://<host>[:<port>]/<database>)")
    if BRACKETED_IPV6.fullmatch(host) is None and HOST_NAME.fullmatch(host) is None:
        raise DatapipeError(f"{where}: host {host[:80]!r} is not a host name or an IP address")
    port_text = match["port"]
    if port_text is None or port_text == "":
        port = engine.default_port
    elif port_text.isdigit() and 0 < int(port_text) < 65536:
        port = int(port_text)
    else:
        raise DatapipeError(f"{where}: port {port_text[:20]!r} is not a number from 1 to 65535")
    properties = (
        dict(parse_qsl(match["properties"].replace(";", "&"), keep_blank_values=True)) if match["properties"] else {}
    )
    database = unquote(match["database"]) if match["database"] else None
    return Endpoint(engine=engine, host=host.strip("[]"), port=port, database=database, properties=properties)
