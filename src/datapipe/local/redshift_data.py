"""The Redshift Data API over a PostgreSQL server, for the emulator.

ExecuteStatement, BatchExecuteStatement, DescribeStatement, GetStatementResult, ListStatements and CancelStatement
behave as AWS documents them: a statement is accepted at once (SUBMITTED), runs on its own connection in the
background (STARTED), and ends FINISHED, FAILED (with the database's message in `Error`) or ABORTED. A batch runs in
one transaction. Redshift's own SQL is translated where PostgreSQL differs: `COPY t FROM 's3://bucket/prefix' ...`
reads every object under the prefix from S3 (the injected client: the emulator's S3) and loads it with PostgreSQL's
COPY FROM STDIN, `COPY t FROM 'dynamodb://table' ... READRATIO n` scans the emulator's DynamoDB table
(redshift_dynamodb), and CREATE TABLE drops DISTKEY, SORTKEY, DISTSTYLE, ENCODE and BACKUP. `Database` names the
PostgreSQL database. Authentication is checked as AWS checks it (`authentication`): one way to sign in, and a secret
that exists and holds a username and a password; the statements then run as the server's own user.
"""

from __future__ import annotations

import base64
import datetime
import functools
import gzip
import itertools
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions
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
from datapipe.jsontext import shown
from datapipe.local.postgres_server import PostgresServer
from datapipe.local.redshift_dynamodb import CopyRefused, copy_from_dynamodb
from datapipe.local.seams import seam

PAGE_RECORDS = 1000
RETENTION = datetime.timedelta(hours=24)
TERMINAL = ("FINISHED", "FAILED", "ABORTED")
STATUSES = ("SUBMITTED", "PICKED", "STARTED", "FINISHED", "ABORTED", "FAILED", "ALL")
MAX_SQL_BYTES = 100 * 1024  # the Data API's limit on a query string
MAX_BATCH_STATEMENTS = 40
MAX_LISTED = 100
MAX_STATEMENT_NAME = 2048
# Request members of the API the emulator does not reproduce, with the values it does (the API's defaults): any
# other value is refused by name rather than ignored.
NOT_EMULATED: dict[str, tuple[object, ...]] = {
    "SessionId": (),
    "SessionKeepAliveSeconds": (),
    "WaitTimeSeconds": (),
    "WithEvent": (False,),
    "ResultFormat": ("JSON",),
    "ExecutionMode": ("TRANSACTION",),
}
# The patterns of botocore's model of the API (the service checks them; botocore does not).
CLUSTER_IDENTIFIER = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
WORKGROUP_NAME = re.compile(
    r"([a-z0-9-]{3,63}|arn:(aws(-[a-z]+)*):redshift-serverless:([a-z]{2}(-gov|(-iso[a-z]?))?|eusc-[a-z]+)-[a-z]+-\d{1}"
    r":\d{12}:workgroup/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[a-z0-9-]{1,63}/[a-z0-9-]{1,63}))"
)
STATEMENT_ID = re.compile(r"[a-z0-9]{8}(-[a-z0-9]{4}){3}-[a-z0-9]{12}(:\d{0,2})?")
# GetClusterCredentials' DbUser: a letter, then letters, digits, _ + . @ -, 64 at most; never PUBLIC.
DB_USER = re.compile(r"[A-Za-z][A-Za-z0-9_+.@-]{0,63}")
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
    started: datetime.datetime | None = None
    pid: int = 0
    query_id: int = 0  # Redshift's query id: one per statement the database ran

    def describe(self, now: datetime.datetime) -> dict[str, Any]:
        """The fields of SubStatementData, which DescribeStatement's answer shares: `Error` only when one happened,
        sizes and counts -1 (the API's null) until the statement finished."""
        finished = self.status == "FINISHED"
        described: dict[str, Any] = {
            "Id": self.id,
            "Status": self.status,
            "QueryString": self.query,
            "CreatedAt": self.created,
            "UpdatedAt": self.updated,
            "Duration": self._duration(now),
            "HasResultSet": self.records is not None,
            "ResultRows": self.row_count if finished else -1,
            "ResultSize": self._result_size() if finished else -1,
            "RedshiftQueryId": self.query_id,
        }
        if self.error is not None:
            described["Error"] = self.error
        return described

    def _duration(self, now: datetime.datetime) -> int:
        """Nanoseconds the statement ran: from its start to its end (or to now while it runs)."""
        if self.started is None:
            return 0
        end = self.updated if self.status in TERMINAL else now
        return max(0, int((end - self.started).total_seconds() * 1e9))

    def _result_size(self) -> int:
        """Bytes of the result: each value's text in UTF-8 (how Redshift counts them is not documented)."""
        return sum(_size(value) for record in self.records or [] for value in record)


@dataclass
class _Submission:
    main: _Statement
    database: str
    target: dict[str, str]  # ClusterIdentifier or WorkgroupName, SecretArn or DbUser: as the request gave them
    name: str | None
    parts: list[_Statement]  # one for ExecuteStatement, each sub-statement of a batch
    is_batch: bool
    connection: psycopg.Connection[Any] | None = None
    cancelled: bool = False


class RedshiftDataApi:
    """The API's operations as methods taking and returning the API's JSON shapes (boto3's parameter names).

    `secrets` (a Secrets Manager client) is where SecretArn is looked up, `dynamodb` what COPY from DynamoDB scans;
    without `secrets` a secret is not read (for callers that hold none), only the combination of parameters checked.
    """

    def __init__(
        self,
        *,
        dsn: str,
        s3: Any,
        secrets: Any = None,
        dynamodb: Any = None,
        clock: Callable[[], datetime.datetime] = _utc_now,
    ) -> None:
        self._dsn = dsn
        self._s3 = s3
        self._secrets = secrets
        self._dynamodb = dynamodb
        self._clock = clock
        self._lock = threading.Lock()
        self._submissions: dict[str, _Submission] = {}
        self._threads: list[threading.Thread] = []
        self._query_ids = itertools.count(100_001)

    # -- the operations
    def execute_statement(self, request: dict[str, Any]) -> dict[str, Any]:
        sql_text = _required_text(request, "Sql")
        _check_size(sql_text)
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
        if len(sqls) > MAX_BATCH_STATEMENTS:
            raise DataApiError(
                "ValidationException",
                f"1 validation error detected: Value at 'sqls' failed to satisfy constraint: Member must have length "
                f"less than or equal to {MAX_BATCH_STATEMENTS} (got {len(sqls)} statements)",
            )
        for text in sqls:
            _check_size(text)
        return self._submit(request, sqls, None, is_batch=True)

    def describe_statement(self, request: dict[str, Any]) -> dict[str, Any]:
        submission, part = self._find(_statement_id(request))
        now = self._clock()
        with self._lock:
            statement = part or submission.main
            described = statement.describe(now)
            described["RedshiftPid"] = statement.pid
            described.update(self._credentials(submission))
            if part is not None:  # a batch's sub-statement, described on its own
                return described
            if submission.is_batch:  # its rows and sizes are its sub-statements': its own are the API's null
                described["SubStatements"] = [sub.describe(now) for sub in submission.parts]
                described["HasResultSet"] = any(sub.records is not None for sub in submission.parts)
                described["ResultRows"] = described["ResultSize"] = -1
            elif statement.parameters:
                described["QueryParameters"] = _query_parameters(statement.parameters)
        return described

    def get_statement_result(self, request: dict[str, Any]) -> dict[str, Any]:
        submission, part = self._find(_statement_id(request))
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
            start = _page_start(request)
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
        """Newest first; by default only FINISHED statements, as the API documents."""
        status = request.get("Status", "FINISHED")
        if status not in STATUSES:
            raise DataApiError("ValidationException", f"Status {shown(status)} is not one of {', '.join(STATUSES)}")
        maximum = request.get("MaxResults") or MAX_LISTED
        if not isinstance(maximum, int) or not 0 < maximum <= MAX_LISTED:
            raise DataApiError("ValidationException", f"MaxResults must be an integer from 0 to {MAX_LISTED}")
        filters = {key: request[key] for key in ("ClusterIdentifier", "WorkgroupName", "Database") if key in request}
        if "ClusterIdentifier" in filters and "WorkgroupName" in filters:
            raise DataApiError("ValidationException", "ClusterIdentifier and WorkgroupName can't both be specified")
        name = request.get("StatementName")
        start = _page_start(request)
        with self._lock:
            chosen = []
            for submission in sorted(self._submissions.values(), key=lambda s: s.main.created, reverse=True):
                if status != "ALL" and submission.main.status != status:
                    continue
                if name and not (submission.name or "").startswith(name):
                    continue
                where = {**submission.target, "Database": submission.database}
                if any(where.get(key) != value for key, value in filters.items()):
                    continue
                chosen.append(self._listed(submission))
        answer: dict[str, Any] = {"Statements": chosen[start : start + maximum]}
        if start + maximum < len(chosen):
            answer["NextToken"] = str(start + maximum)
        return answer

    def cancel_statement(self, request: dict[str, Any]) -> dict[str, Any]:
        statement_id = _statement_id(request)
        submission, _ = self._find(statement_id)
        with self._lock:
            if submission.main.status in TERMINAL:
                raise DataApiError(
                    "ValidationException",
                    f"Could not cancel a query that is already in {submission.main.status} state with ID: "
                    f"{statement_id}",
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
            unemulated = [key for key, kept in NOT_EMULATED.items() if key in request and request[key] not in kept]
            if unemulated:
                raise DataApiError("ValidationException", f"{unemulated[0]}: not emulated (see docs/emulator.md)")
            answer = getattr(self, method)(request)
        except DataApiError as error:
            return 400, json.dumps({"__type": error.code, "message": str(error)})
        except (ValueError, RecursionError):  # not JSON, or nested past what a request of this API can hold
            return 400, json.dumps({"__type": "ValidationException", "message": "the request body is not JSON"})
        return 200, json.dumps(answer, default=_json_value)

    def wait(self, timeout: float = 30.0) -> None:
        """Waits for every statement submitted so far to end (for tests and for the emulator's stop)."""
        for thread in list(self._threads):
            thread.join(timeout)

    # -- internals
    def _credentials(self, submission: _Submission) -> dict[str, Any]:
        """What DescribeStatement tells of where and as whom the statement ran."""
        return {"Database": submission.database, **submission.target}

    def _listed(self, submission: _Submission) -> dict[str, Any]:
        """A statement as ListStatements gives it (StatementData: no cluster, database or user)."""
        main = submission.main
        entry: dict[str, Any] = {
            "Id": main.id,
            "Status": main.status,
            "CreatedAt": main.created,
            "UpdatedAt": main.updated,
            "IsBatchStatement": submission.is_batch,
        }
        if submission.is_batch:
            entry["QueryStrings"] = [part.query for part in submission.parts]
        else:
            entry["QueryString"] = main.query
        if main.parameters:
            entry["QueryParameters"] = _query_parameters(main.parameters)
        if "SecretArn" in submission.target:
            entry["SecretArn"] = submission.target["SecretArn"]
        if submission.name:
            entry["StatementName"] = submission.name
        return entry

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
        target = authentication(request, self._secrets)
        database = _required_text(request, "Database")
        name = request.get("StatementName")
        if name is not None and (not isinstance(name, str) or len(name) > MAX_STATEMENT_NAME):
            raise DataApiError(
                "ValidationException",
                f"1 validation error detected: Value at 'statementName' failed to satisfy constraint: Member must have "
                f"length less than or equal to {MAX_STATEMENT_NAME}",
            )
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
            name=name,
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
            if status == "STARTED":
                statement.started = statement.updated
                statement.query_id = next(self._query_ids)
            elif statement.started is None and status in TERMINAL:  # ended before it began: it ran for no time
                statement.started = statement.updated

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
        if submission.is_batch:
            submission.main.query_id = 0  # a batch is no query of its own: its sub-statements are
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
            statement.row_count = self._copy(connection, copy)
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

    def _copy(self, connection: psycopg.Connection[Any], copy: re.Match[str]) -> int:
        options = _copy_options(copy["options"])
        source = copy["source"]
        columns = [name.strip() for name in (copy["columns"] or "").split(",") if name.strip()]
        if source.startswith("dynamodb://"):
            if self._dynamodb is None:
                raise DataApiError("ValidationException", "COPY from DynamoDB: this Data API has no DynamoDB")
            try:
                return copy_from_dynamodb(connection, table=copy["table"], columns=columns, source=source,
                                          options=options, dynamodb=self._dynamodb)
            except CopyRefused as error:
                raise DataApiError("ValidationException", str(error)) from None
        if not source.startswith("s3://"):
            raise DataApiError(
                "ValidationException", f"COPY from {source.split(':')[0]}: only s3:// and dynamodb:// are emulated"
            )
        if "READRATIO" in options:
            raise DataApiError("ValidationException", "COPY: READRATIO is an option of a DynamoDB source, not of S3")
        return self._copy_from_s3(connection, copy["table"], columns, source, options)

    def _copy_from_s3(
        self, connection: psycopg.Connection[Any], table_name: str, columns: list[str], source: str,
        options: dict[str, str],
    ) -> int:
        table = sql.SQL(table_name)
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
    with_value = {"DELIMITER", "IGNOREHEADER", "NULL", "QUOTE", "FORMAT", "READRATIO", *IGNORED_OPTIONS}
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


def _query_parameters(parameters: dict[str, str]) -> list[dict[str, str]]:
    """A statement's named parameters as DescribeStatement and ListStatements give them."""
    return [{"name": name, "value": value} for name, value in parameters.items()]


def _size(value: dict[str, Any]) -> int:
    """Bytes of one field of a record: none for a null, one for a boolean, else its text or bytes."""
    kind, inner = next(iter(value.items()))
    if kind == "isNull":
        return 0
    if kind == "booleanValue":
        return 1
    return len(inner) if isinstance(inner, bytes) else len(str(inner).encode())


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


def authentication(request: dict[str, Any], secrets: Any) -> dict[str, str]:
    """The request's way to sign in, checked as the Data API checks it; what its answers echo.

    One of: SecretArn (with ClusterIdentifier, or the cluster the secret names, or WorkgroupName); ClusterIdentifier
    + DbUser (temporary credentials); ClusterIdentifier alone or WorkgroupName alone (the caller's IAM identity).
    """
    given: dict[str, str] = {}
    for key in ("ClusterIdentifier", "WorkgroupName", "SecretArn", "DbUser"):
        value = request.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise DataApiError("ValidationException", f"{key} must be a non-empty string")
        given[key] = value
    if "ClusterIdentifier" in given and "WorkgroupName" in given:
        raise DataApiError("ValidationException", "ClusterIdentifier and WorkgroupName can't both be specified")
    if "SecretArn" in given and "DbUser" in given:
        raise DataApiError(
            "ValidationException", "SecretArn and DbUser can't both be specified: give one way to authenticate"
        )
    if "WorkgroupName" in given and "DbUser" in given:
        raise DataApiError(
            "ValidationException", "DbUser is for a cluster: a workgroup's user is the IAM identity or the secret's"
        )
    _check_pattern(given, "ClusterIdentifier", CLUSTER_IDENTIFIER, maximum=63)
    _check_pattern(given, "WorkgroupName", WORKGROUP_NAME, maximum=128)
    user = given.get("DbUser")
    if user is not None and (not DB_USER.fullmatch(user) or user.upper() == "PUBLIC"):
        raise DataApiError(
            "ValidationException",
            f"DbUser {shown(user)} is not a database user name: a letter, then letters, digits, _ + . @ or -, "
            "64 characters at most, not PUBLIC",
        )
    cluster = given.get("ClusterIdentifier")
    if "SecretArn" in given and secrets is not None:
        cluster = _secret_cluster(secrets, given["SecretArn"], cluster) or cluster
    if cluster is None and "WorkgroupName" not in given:
        raise DataApiError("ValidationException", "Either ClusterIdentifier or WorkgroupName needs to be specified.")
    return given


def _secret_cluster(secrets: Any, secret_id: str, cluster: str | None) -> str | None:
    """Reads the secret as the Data API does: it must exist and hold a username and a password; a cluster it names
    (dbClusterIdentifier) must be the one asked for. That cluster, if any."""
    try:
        text = secrets.get_secret_value(SecretId=secret_id).get("SecretString")
    except secrets.exceptions.ResourceNotFoundException:
        raise DataApiError(
            "ValidationException", f"Secrets Manager can't find the specified secret: {shown(secret_id)}"
        ) from None
    except botocore.exceptions.ClientError as error:
        raise DataApiError("ValidationException", f"SecretArn {shown(secret_id)}: {_one_line(error)}") from None
    try:
        value = json.loads(text or "")
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(value.get(key), str) and value[key] for key in ("username", "password")
    ):
        raise DataApiError("ValidationException", "username and password in secret cannot be empty")
    named = value.get("dbClusterIdentifier")
    if isinstance(named, str) and named and cluster is not None and named != cluster:
        raise DataApiError(
            "ValidationException",
            f"ClusterIdentifier {shown(cluster)} is not the cluster of the secret ({shown(named)})",
        )
    return named if isinstance(named, str) and named else None


def _check_pattern(given: dict[str, str], key: str, pattern: re.Pattern[str], *, maximum: int) -> None:
    value = given.get(key)
    if value is not None and (len(value) > maximum or not pattern.fullmatch(value)):
        field_name = key[0].lower() + key[1:]
        raise DataApiError(
            "ValidationException",
            f"1 validation error detected: Value {shown(value)} at '{field_name}' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {pattern.pattern} (length 1 to {maximum})",
        )


def _check_size(sql_text: str) -> None:
    if len(sql_text.encode()) > MAX_SQL_BYTES:
        raise DataApiError("ValidationException", "Cannot process query string larger than 100kB")


def _statement_id(request: dict[str, Any]) -> str:
    statement_id = _required_text(request, "Id")
    if not STATEMENT_ID.fullmatch(statement_id):
        raise DataApiError(
            "ValidationException",
            f"1 validation error detected: Value {shown(statement_id)} at 'id' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {STATEMENT_ID.pattern}",
        )
    return statement_id


def _page_start(request: dict[str, Any]) -> int:
    token = request.get("NextToken")
    if token is None:
        return 0
    if not isinstance(token, str) or not token.isdigit() or len(token) > 12:
        raise DataApiError("ValidationException", f"NextToken {shown(str(token))} is not a token this API gave")
    return int(token)


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
    """The emulator's Data API, one per region as in AWS (a statement, a secret, a table belong to their region), all
    on one PostgreSQL server that starts with the first request and stops with `stop()`."""

    def __init__(self, client: Callable[[str, str], Any]) -> None:
        self._client = client  # (service, region) -> a client of the emulator: S3, Secrets Manager, DynamoDB
        self._server = PostgresServer()
        self._given_dsn: str | None = None
        self._dsn: str | None = None
        self._apis: dict[str, RedshiftDataApi] = {}
        self._lock = threading.Lock()

    def use_database(self, dsn: str | None) -> None:
        """Run the API on a PostgreSQL that is already running (its owner stops it), such as the tests' own server;
        None: on the emulator's server again. Statements under way end first."""
        with self._lock:
            self._forget_apis()
            self._given_dsn, self._dsn = dsn, None

    def api(self, region: str) -> RedshiftDataApi:
        with self._lock:
            if self._dsn is None:
                dsn = self._given_dsn or self._server.start().dsn
                with psycopg.connect(dsn, autocommit=True) as connection:
                    known = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DEFAULT_DATABASE,))
                    if known.fetchone() is None:
                        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEFAULT_DATABASE)))
                self._dsn = dsn
            api = self._apis.get(region)
            if api is None:
                api = self._apis[region] = RedshiftDataApi(
                    dsn=self._dsn,
                    s3=self._client("s3", region),
                    secrets=self._client("secretsmanager", region),
                    dynamodb=self._client("dynamodb", region),
                )
            return api

    def stop(self) -> None:
        with self._lock:
            self._forget_apis()
            self._dsn = None
            self._server.stop()

    def _forget_apis(self) -> None:
        for api in self._apis.values():
            api.wait(timeout=5.0)
        self._apis.clear()


def install(emulated: EmulatedRedshiftData) -> None:
    def call_action(self: RedshiftDataAPIServiceResponse) -> tuple[int, dict[str, str], str]:
        action = self._get_action()
        # every AWS answer carries a request id: Step Functions quotes it in a failed task's cause
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": str(uuid.uuid4())}
        try:
            api = emulated.api(self.region)
        except DatapipeError as error:  # no PostgreSQL here: the API answers, naming why
            return 500, headers, json.dumps({"__type": "InternalServerException", "message": str(error)})
        status, body = api.handle(action, self.body)
        return status, headers, body

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
