"""The Redshift Data API over a PostgreSQL server, for the emulator.

ExecuteStatement, BatchExecuteStatement, DescribeStatement, GetStatementResult, ListStatements and CancelStatement
behave as AWS documents them: a statement is accepted at once (SUBMITTED), runs on its own connection in the
background (STARTED), and ends FINISHED, FAILED (with the database's message in `Error`) or ABORTED. A batch runs in
one transaction. Redshift's own SQL is translated where PostgreSQL differs: `COPY t FROM 's3://bucket/prefix' ...`
reads every object under the prefix from S3 (the injected client: the emulator's S3) and loads it with PostgreSQL's
COPY FROM STDIN, and CREATE TABLE drops DISTKEY, SORTKEY, DISTSTYLE, ENCODE and BACKUP. `Database` names the
PostgreSQL database; credentials (SecretArn, DbUser) are accepted and not checked, like the rest of the emulator.
"""

from __future__ import annotations

import base64
import datetime
import functools
import gzip
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from moto.redshiftdata.responses import RedshiftDataAPIServiceResponse
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from psycopg import conninfo, sql

from datapipe.databases.operations import S3Location, s3_objects
from datapipe.databases.sqltext import rewrite_code, segments
from datapipe.databases.urls import Engine
from datapipe.errors import DatapipeError
from datapipe.local.postgres_server import PostgresServer
from datapipe.local.seams import seam

PAGE_RECORDS = 1000
RETENTION = datetime.timedelta(hours=24)
TERMINAL = ("FINISHED", "FAILED", "ABORTED")
COPY = re.compile(
    r"\s*copy\s+(?P<table>[A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)?)\s*(?:\((?P<columns>[^)]*)\))?\s*from\s+'(?P<source>[^']*)'"
    r"(?P<options>.*)",
    re.IGNORECASE | re.DOTALL,
)
CREATE_TABLE = re.compile(r"\s*create\s+(?:(?:local\s+)?(?:temp|temporary)\s+)?table\b", re.IGNORECASE)
REDSHIFT_TABLE_ATTRIBUTES = re.compile(
    r"\b(?:compound\s+|interleaved\s+)?sortkey\b(?:\s*\([^)]*\))?|\bdistkey\b(?:\s*\([^)]*\))?"
    r"|\bdiststyle\s+\w+|\bencode\s+\w+|\bbackup\s+(?:yes|no)\b",
    re.IGNORECASE,
)
OPTION_TOKEN = re.compile(r"\s*('(?:[^']|'')*'|[A-Za-z_]+|\d+)", re.DOTALL)
NAMED_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
# COPY options that change nothing here: credentials (the emulator checks no IAM) and tuning.
IGNORED_OPTIONS = {
    "IAM_ROLE": 1,
    "CREDENTIALS": 1,
    "ACCESS_KEY_ID": 1,
    "SECRET_ACCESS_KEY": 1,
    "SESSION_TOKEN": 1,
    "REGION": 1,
    "COMPUPDATE": 1,
    "STATUPDATE": 1,
    "TIMEFORMAT": 1,
    "DATEFORMAT": 1,
}


OPERATIONS = {
    "ExecuteStatement": "execute_statement",
    "BatchExecuteStatement": "batch_execute_statement",
    "DescribeStatement": "describe_statement",
    "GetStatementResult": "get_statement_result",
    "ListStatements": "list_statements",
    "CancelStatement": "cancel_statement",
}


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class DataApiError(Exception):
    """An error the API answers with: `code` is the AWS error code (ValidationException, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class _Statement:
    id: str
    query: str
    parameters: dict[str, str] | None = None
    status: str = "SUBMITTED"
    error: str | None = None
    columns: list[dict[str, Any]] = field(default_factory=list)
    records: list[list[dict[str, Any]]] | None = None
    row_count: int = -1
    created: datetime.datetime = field(default_factory=_utc_now)
    updated: datetime.datetime = field(default_factory=_utc_now)
    pid: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Status": self.status,
            "QueryString": self.query,
            "Error": self.error or "",
            "HasResultSet": self.records is not None,
            "ResultRows": self.row_count,
            "ResultSize": sum(len(str(record)) for record in self.records or []),
            "CreatedAt": self.created,
            "UpdatedAt": self.updated,
            "RedshiftQueryId": 0,
            "RedshiftPid": self.pid,
            "Duration": int((self.updated - self.created).total_seconds() * 1e9),
        }


@dataclass
class _Submission:
    main: _Statement
    database: str
    target: dict[str, str]  # ClusterIdentifier or WorkgroupName, SecretArn or DbUser
    name: str | None
    parts: list[_Statement]  # one for ExecuteStatement, each sub-statement of a batch
    is_batch: bool
    connection: psycopg.Connection[Any] | None = None
    cancelled: bool = False


class RedshiftDataApi:
    """The API's operations as methods taking and returning the API's JSON shapes (boto3's parameter names)."""

    def __init__(self, *, dsn: str, s3: Any, clock: Callable[[], datetime.datetime] = _utc_now) -> None:
        self._dsn = dsn
        self._s3 = s3
        self._clock = clock
        self._lock = threading.Lock()
        self._submissions: dict[str, _Submission] = {}
        self._threads: list[threading.Thread] = []

    # -- the operations
    def execute_statement(self, request: dict[str, Any]) -> dict[str, Any]:
        sql_text = _required_text(request, "Sql")
        parameters = request.get("Parameters")
        named = None
        if parameters is not None:
            if not isinstance(parameters, list) or not all(
                isinstance(p, dict) and isinstance(p.get("name"), str) and isinstance(p.get("value"), str)
                for p in parameters
            ):
                raise DataApiError("ValidationException", "Parameters must be a list of {name, value} strings")
            named = {p["name"]: p["value"] for p in parameters}
        return self._submit(request, [sql_text], named, is_batch=False)

    def batch_execute_statement(self, request: dict[str, Any]) -> dict[str, Any]:
        sqls = request.get("Sqls")
        if not isinstance(sqls, list) or not sqls or not all(isinstance(s, str) and s.strip() for s in sqls):
            raise DataApiError("ValidationException", "Sqls must be a list of 1 to 40 SQL statements")
        if len(sqls) > 40:
            raise DataApiError("ValidationException", "Sqls must be a list of 1 to 40 SQL statements")
        return self._submit(request, sqls, None, is_batch=True)

    def describe_statement(self, request: dict[str, Any]) -> dict[str, Any]:
        submission, part = self._find(_required_text(request, "Id"))
        with self._lock:
            described = (part or submission.main).describe()
            if part is None:
                described.update(self._common(submission))
                if submission.is_batch:
                    described["SubStatements"] = [sub.describe() for sub in submission.parts]
                    described["HasResultSet"] = False
                    described["ResultRows"] = sum(max(sub.row_count, 0) for sub in submission.parts)
                elif submission.main.parameters:
                    described["QueryParameters"] = [
                        {"name": name, "value": value} for name, value in submission.main.parameters.items()
                    ]
        return described

    def get_statement_result(self, request: dict[str, Any]) -> dict[str, Any]:
        submission, part = self._find(_required_text(request, "Id"))
        statement = part or submission.main
        if submission.is_batch and part is None:
            raise DataApiError("ValidationException", "a batch has no result: ask for a sub-statement (Id:N)")
        with self._lock:
            if statement.status != "FINISHED":
                raise DataApiError(
                    "ResourceNotFoundException", f"Query does not have result. Status: {statement.status}"
                )
            if statement.records is None:
                raise DataApiError(
                    "ResourceNotFoundException", "Query does not have result. Please check query status."
                )
            token = request.get("NextToken")
            start = int(token) if isinstance(token, str) and token.isdigit() else 0
            page = statement.records[start : start + PAGE_RECORDS]
            answer: dict[str, Any] = {
                "Records": page,
                "ColumnMetadata": statement.columns,
                "TotalNumRows": len(statement.records),
            }
            if start + PAGE_RECORDS < len(statement.records):
                answer["NextToken"] = str(start + PAGE_RECORDS)
        return answer

    def list_statements(self, request: dict[str, Any]) -> dict[str, Any]:
        status = request.get("Status", "ALL")
        name = request.get("StatementName")
        maximum = int(request.get("MaxResults", 100))
        token = request.get("NextToken")
        start = int(token) if isinstance(token, str) and token.isdigit() else 0
        with self._lock:
            chosen = []
            for submission in sorted(self._submissions.values(), key=lambda s: s.main.created, reverse=True):
                if status != "ALL" and submission.main.status != status:
                    continue
                if name and not (submission.name or "").startswith(name):
                    continue
                entry = {
                    key: value
                    for key, value in submission.main.describe().items()
                    if key in ("Id", "Status", "QueryString", "CreatedAt", "UpdatedAt")
                }
                entry.update(self._common(submission))
                if submission.is_batch:
                    entry["QueryStrings"] = [part.query for part in submission.parts]
                    entry.pop("QueryString")
                chosen.append(entry)
        answer: dict[str, Any] = {"Statements": chosen[start : start + maximum]}
        if start + maximum < len(chosen):
            answer["NextToken"] = str(start + maximum)
        return answer

    def cancel_statement(self, request: dict[str, Any]) -> dict[str, Any]:
        submission, _ = self._find(_required_text(request, "Id"))
        with self._lock:
            if submission.main.status in TERMINAL:
                raise DataApiError(
                    "ValidationException", f"Could not cancel a query that is already in {submission.main.status} state"
                )
            submission.cancelled = True
            connection = submission.connection
        if connection is not None:
            connection.cancel_safe()
        return {"Status": True}

    def handle(self, action: str, body: str | bytes) -> tuple[int, str]:
        """One HTTP request of the API (JSON 1.1, `X-Amz-Target: RedshiftData.<action>`) -> (status, JSON body)."""
        method = OPERATIONS.get(action)
        try:
            if method is None:
                raise DataApiError("ValidationException", f"{action} is not an operation of the Redshift Data API")
            request = json.loads(body or b"{}")
            if not isinstance(request, dict):
                raise DataApiError("ValidationException", "the request body must be a JSON object")
            answer = getattr(self, method)(request)
        except DataApiError as error:
            return 400, json.dumps({"__type": error.code, "message": str(error)})
        except ValueError:
            return 400, json.dumps({"__type": "ValidationException", "message": "the request body is not JSON"})
        return 200, json.dumps(answer, default=_json_value)

    def wait(self, timeout: float = 30.0) -> None:
        """Waits for every statement submitted so far to end (for tests and for the emulator's stop)."""
        for thread in list(self._threads):
            thread.join(timeout)

    # -- internals
    def _common(self, submission: _Submission) -> dict[str, Any]:
        common: dict[str, Any] = {
            "Database": submission.database,
            "IsBatchStatement": submission.is_batch,
            **submission.target,
        }
        if submission.name:
            common["StatementName"] = submission.name
        return common

    def _find(self, statement_id: str) -> tuple[_Submission, _Statement | None]:
        main_id, _, number = statement_id.partition(":")
        with self._lock:
            submission = self._submissions.get(main_id)
        if submission is None:
            raise DataApiError("ResourceNotFoundException", f"Query does not exist: {statement_id}")
        if not number:
            return submission, None
        if not number.isdigit() or not 1 <= int(number) <= len(submission.parts) or not submission.is_batch:
            raise DataApiError("ResourceNotFoundException", f"Query does not exist: {statement_id}")
        return submission, submission.parts[int(number) - 1]

    def _submit(
        self, request: dict[str, Any], sqls: list[str], parameters: dict[str, str] | None, *, is_batch: bool
    ) -> dict[str, Any]:
        database = _required_text(request, "Database")
        target = {
            key: request[key]
            for key in ("ClusterIdentifier", "WorkgroupName", "SecretArn", "DbUser")
            if isinstance(request.get(key), str)
        }
        if ("ClusterIdentifier" in target) == ("WorkgroupName" in target):
            raise DataApiError("ValidationException", "give exactly one of ClusterIdentifier and WorkgroupName")
        main_id = str(uuid.uuid4())
        now = self._clock()
        parts = [
            _Statement(
                id=f"{main_id}:{n}" if is_batch else main_id,
                query=text,
                parameters=parameters,
                created=now,
                updated=now,
            )
            for n, text in enumerate(sqls, start=1)
        ]
        main = _Statement(id=main_id, query="; ".join(sqls), created=now, updated=now) if is_batch else parts[0]
        submission = _Submission(
            main=main,
            database=database,
            target=target,
            name=request.get("StatementName"),
            parts=parts,
            is_batch=is_batch,
        )
        with self._lock:
            self._forget_old(now)
            self._submissions[main_id] = submission
        thread = threading.Thread(target=self._run, args=(submission,), name=f"redshift-data-{main_id}", daemon=True)
        self._threads.append(thread)
        thread.start()
        return {"Id": main_id, "CreatedAt": main.created, "Database": database, **target}

    def _forget_old(self, now: datetime.datetime) -> None:
        """Statements that ended over a day ago, and their results, are gone, as in AWS: memory stays bounded."""
        expired = [
            key
            for key, submission in self._submissions.items()
            if submission.main.status in TERMINAL and now - submission.main.updated > RETENTION
        ]
        for key in expired:
            del self._submissions[key]
        self._threads = [thread for thread in self._threads if thread.is_alive()]

    def _set(self, statement: _Statement, status: str, error: str | None = None) -> None:
        with self._lock:
            statement.status = status
            statement.error = error
            statement.updated = self._clock()

    def _run(self, submission: _Submission) -> None:
        statements = [submission.main, *(submission.parts if submission.is_batch else [])]
        try:
            connection = psycopg.connect(
                conninfo.make_conninfo(self._dsn, dbname=submission.database), application_name="redshift-data"
            )
        except psycopg.Error as error:
            for statement in statements:
                self._set(statement, "FAILED", _one_line(error))
            return
        with self._lock:
            submission.connection = connection
            pid = connection.info.backend_pid
        for statement in statements:
            statement.pid = pid
        self._set(submission.main, "STARTED")  # a batch's sub-statements start one by one
        current = submission.parts[0]
        try:
            with connection.transaction():
                for part in submission.parts:
                    current = part
                    if submission.cancelled:  # cancelled before it began
                        raise psycopg.errors.QueryCanceled("canceling statement due to user request")
                    if submission.is_batch:
                        self._set(part, "STARTED")
                    self._execute(connection, part)
                    if submission.cancelled:
                        raise psycopg.errors.QueryCanceled("canceling statement due to user request")
                    if submission.is_batch:
                        self._set(part, "FINISHED")
            if submission.is_batch:
                self._set(submission.main, "FINISHED")
            else:
                self._set(current, "FINISHED")
        except Exception as error:  # whatever went wrong, the statement must end: a caller polls until it does
            status = "ABORTED" if submission.cancelled else "FAILED"
            message = _one_line(error)
            self._set(current, status, message)
            if submission.is_batch:
                self._set(submission.main, status, message)
                for part in submission.parts:
                    if part.status not in TERMINAL:  # the ones after the failure never ran
                        self._set(part, "ABORTED")
        finally:
            connection.close()

    def _execute(self, connection: psycopg.Connection[Any], statement: _Statement) -> None:
        text = statement.query
        copy = COPY.fullmatch(text.strip().rstrip(";"))
        if copy is not None:
            statement.row_count = self._copy_from_s3(connection, copy)
            return
        if CREATE_TABLE.match(text):
            text = rewrite_code(
                text, Engine.REDSHIFT, lambda code: REDSHIFT_TABLE_ATTRIBUTES.sub("", code), where="Sql"
            )
        values: dict[str, str] | None = None
        if statement.parameters is not None:
            used: set[str] = set()

            def placeholders(code: str) -> str:
                def one(match: re.Match[str]) -> str:
                    used.add(match.group(1))
                    return f"%({match.group(1)})s"

                return NAMED_PARAMETER.sub(one, code.replace("%", "%%"))

            # psycopg reads % in the whole text, quoted parts included
            text = "".join(
                placeholders(piece) if is_code else piece.replace("%", "%%")
                for is_code, piece in segments(text, Engine.REDSHIFT, where="Sql")
            )
            missing = used - statement.parameters.keys()
            if missing:
                raise DataApiError("ValidationException", f"no value for parameter(s) {', '.join(sorted(missing))}")
            values = statement.parameters
        with connection.cursor() as cursor:
            cursor.execute(text.encode() if values is None else text, values)  # bytes: no % interpretation
            statement.row_count = cursor.rowcount
            if cursor.description is not None:
                types = connection.adapters.types
                statement.columns = [
                    {
                        "name": column.name,
                        "label": column.name,
                        "typeName": getattr(types.get(column.type_code), "name", "unknown"),
                        "nullable": 1,
                        "isCaseSensitive": True,
                        "isCurrency": False,
                        "isSigned": True,
                        "length": 0,
                        "precision": 0,
                        "scale": 0,
                        "schemaName": "",
                        "tableName": "",
                    }
                    for column in cursor.description
                ]
                statement.records = [[_field(value) for value in row] for row in cursor.fetchall()]
                statement.row_count = len(statement.records)

    def _copy_from_s3(self, connection: psycopg.Connection[Any], copy: re.Match[str]) -> int:
        options = _copy_options(copy["options"])
        source = copy["source"]
        if not source.startswith("s3://"):
            raise DataApiError(
                "ValidationException", f"COPY from {source.split(':')[0]}: only s3:// sources are emulated"
            )
        table = sql.SQL(copy["table"])
        columns = [name.strip() for name in (copy["columns"] or "").split(",") if name.strip()]
        csv = options.get("CSV") is not None or options.get("FORMAT") == "CSV"
        settings = [sql.SQL("FORMAT {}").format(sql.SQL("csv" if csv else "text"))]
        delimiter = options.get("DELIMITER", "," if csv else "|")
        settings.append(sql.SQL("DELIMITER {}").format(sql.Literal(delimiter)))
        if "QUOTE" in options and csv:
            settings.append(sql.SQL("QUOTE {}").format(sql.Literal(options["QUOTE"])))
        if "NULL" in options:
            settings.append(sql.SQL("NULL {}").format(sql.Literal(options["NULL"])))
        if "EMPTYASNULL" in options and csv:
            if not columns:
                with connection.cursor() as cursor:
                    cursor.execute(sql.SQL("SELECT * FROM {} LIMIT 0").format(table))
                    columns = [column.name for column in cursor.description or []]
            settings.append(sql.SQL("FORCE_NULL ({})").format(sql.SQL(", ").join(map(sql.Identifier, columns))))
        target = table if not columns else sql.SQL("{} ({})").format(table, sql.SQL(", ").join(map(sql.SQL, columns)))
        statement = sql.SQL("COPY {} FROM STDIN ({})").format(target, sql.SQL(", ").join(settings))
        skip = int(options.get("IGNOREHEADER", "0"))
        try:
            location = S3Location.parse(source, where="COPY")
            keys = s3_objects(self._s3, location, where="COPY", as_prefix=True)
        except DatapipeError as error:
            raise DataApiError("ValidationException", f"S3ServiceException: {error}") from None
        with connection.cursor() as cursor:
            with cursor.copy(statement) as loader:
                for key in keys:
                    body = self._s3.get_object(Bucket=location.bucket, Key=key)["Body"]
                    for block in _lines(
                        body, gzipped="GZIP" in options, skip=skip, drop_blank="IGNOREBLANKLINES" in options
                    ):
                        loader.write(block)
            return cursor.rowcount


def _lines(body: Any, *, gzipped: bool, skip: int, drop_blank: bool) -> Iterator[bytes]:
    """The object's bytes, decompressed, less its first `skip` lines (and blank lines), in bounded pieces."""
    stream: Any = gzip.GzipFile(fileobj=body) if gzipped else body
    if not skip and not drop_blank:
        while chunk := stream.read(256 * 1024):
            yield chunk
        return
    for number, line in enumerate(_iter_lines(stream)):
        if number < skip or (drop_blank and not line.strip()):
            continue
        yield line


def _iter_lines(stream: Any) -> Iterable[bytes]:
    pending = b""
    while chunk := stream.read(256 * 1024):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if pending:
        yield pending + b"\n"


def _copy_options(text: str) -> dict[str, str]:
    """Redshift COPY options -> {NAME: value}; flags map to ''. Unknown options are refused by name."""
    tokens = [match.group(1) for match in OPTION_TOKEN.finditer(text)]
    consumed = sum(len(match.group(0)) for match in OPTION_TOKEN.finditer(text))
    if text[consumed:].strip():
        raise DataApiError("ValidationException", f"COPY: cannot read the options {text.strip()[:80]!r}")
    options: dict[str, str] = {}
    with_value = {"DELIMITER", "IGNOREHEADER", "NULL", "QUOTE", "FORMAT", *IGNORED_OPTIONS}
    flags = {
        "CSV",
        "EMPTYASNULL",
        "IGNOREBLANKLINES",
        "GZIP",
        "BLANKSASNULL",
        "TRUNCATECOLUMNS",
        "ACCEPTINVCHARS",
        "ACCEPTANYDATE",
        "REMOVEQUOTES",
    }
    position = 0
    while position < len(tokens):
        name = tokens[position].upper()
        position += 1
        if position < len(tokens) and tokens[position].upper() == "AS":
            position += 1
        if name in flags:
            options[name] = ""
            if name == "CSV" and position < len(tokens) and tokens[position].upper() == "QUOTE":
                continue
        elif name in with_value:
            if position >= len(tokens):
                raise DataApiError("ValidationException", f"COPY: {name} needs a value")
            value = tokens[position]
            position += 1
            options[name] = value[1:-1].replace("''", "'").replace("\\t", "\t") if value.startswith("'") else value
        else:
            raise DataApiError("ValidationException", f"COPY: option {name} is not supported by the emulator")
    if "FORMAT" in options:
        options["FORMAT"] = options["FORMAT"].upper()
    return options


def _field(value: object) -> dict[str, Any]:
    if value is None:
        return {"isNull": True}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"longValue": value}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, bytes | memoryview):
        return {"blobValue": bytes(value)}
    return {"stringValue": str(value)}


def _json_value(value: object) -> object:
    """Timestamps as epoch seconds and blobs as base64, as the JSON protocol carries them."""
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _required_text(request: dict[str, Any], name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str) or not value.strip():
        raise DataApiError("ValidationException", f"{name} is required")
    return value


def _one_line(error: BaseException) -> str:
    text = " ".join(line.strip() for line in str(error).strip().splitlines() if line.strip())
    return text or type(error).__name__


# -- the emulator's Redshift Data API -------------------------------------------------------------------------------
# moto routes `redshift-data` requests to its own responses (statements that never run); the emulator answers them
# with a RedshiftDataApi over a PostgreSQL server started on the first request.

CALL_ACTION = seam(
    RedshiftDataAPIServiceResponse,
    "call_action",
    ("self",),
    "redshift-data requests run their SQL on the emulator's PostgreSQL, COPY reading the emulator's S3",
)
SDK_SERVICE_NAME = seam(
    StateTaskService,
    "_get_boto_service_name",
    ("self", "boto_service_name"),
    "AWS SDK integrations name services without hyphens (aws-sdk:redshiftdata:...); boto3 names them with them",
)
# A Redshift cluster comes with the database `dev`: the default of the Data API's Database in datapipe too.
DEFAULT_DATABASE = "dev"


class EmulatedRedshiftData:
    """The emulator's one RedshiftDataApi: its PostgreSQL server starts with the first request, stops with `stop()`."""

    def __init__(self, s3_client: Callable[[str], Any]) -> None:
        self._s3_client = s3_client
        self._server = PostgresServer()
        self._api: RedshiftDataApi | None = None
        self._lock = threading.Lock()

    def api(self, region: str) -> RedshiftDataApi:
        with self._lock:
            if self._api is None:
                self._server.start()
                with psycopg.connect(self._server.dsn, autocommit=True) as connection:
                    connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEFAULT_DATABASE)))
                self._api = RedshiftDataApi(dsn=self._server.dsn, s3=self._s3_client(region))
            return self._api

    def stop(self) -> None:
        with self._lock:
            if self._api is not None:
                self._api.wait(timeout=5.0)
                self._api = None
            self._server.stop()


def install(emulated: EmulatedRedshiftData) -> None:
    def call_action(self: RedshiftDataAPIServiceResponse) -> tuple[int, dict[str, str], str]:
        action = self._get_action()
        try:
            api = emulated.api(self.region)
        except DatapipeError as error:  # no PostgreSQL here: the API answers, naming why
            body = json.dumps({"__type": "InternalServerException", "message": str(error)})
            return 500, {"Content-Type": "application/x-amz-json-1.1"}, body
        status, body = api.handle(action, self.body)
        return status, {"Content-Type": "application/x-amz-json-1.1"}, body

    CALL_ACTION.patch(call_action)

    def boto_service_name(self: StateTaskService, boto_service_name: str | None = None) -> str:
        name = str(SDK_SERVICE_NAME.call_original(self, boto_service_name))
        return _hyphenated_services().get(name, name)

    SDK_SERVICE_NAME.patch(boto_service_name)


@functools.cache
def _hyphenated_services() -> dict[str, str]:
    """botocore's service names that hold a hyphen, by the name Step Functions' SDK integrations give them."""
    import botocore.session

    names = botocore.session.get_session().get_available_services()
    return {name.replace("-", ""): name for name in names if "-" in name}
