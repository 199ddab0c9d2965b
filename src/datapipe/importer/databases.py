"""Data Pipeline's database objects in an imported pipeline: SqlActivity, RedshiftCopyActivity and CopyActivity with a
SqlDataNode or MySqlDataNode on one side.

- On a RedshiftDatabase reachable by the Redshift Data API (clusterId, workgroupName, or a connectionString whose host
  is a cluster's or workgroup's endpoint), the statements run from the state machine itself (`REDSHIFT_DATA`):
  datapipe.databases.redshift_copy gives a RedshiftCopyActivity's statements, a SqlActivity's script is split into its
  statements here.
- On any other database (RdsDatabase, JdbcDatabase, a MySqlDataNode's own connection), the work is a task of the
  worker-group contract (docs/taskrunner.md) for the runner of the activity's `workerGroup`, which runs it with
  datapipe.databases.

The definition fixes every SQL text, table and database field: they must be known at import time. Values known only
when the run starts reach SQL as bound arguments (`scriptArgument`), and may appear in an S3 data node's path.
Every check of datapipe.databases.model (the credentials, the JDBC URL's engine) runs at import time. A `*password`
of `#{*myParameter}` (a secret parameter whose value is a reference), or of `#{myParameter}` (a plain one whose value,
from --values or its default, is a reference), with `username` becomes the database's `username` and
`passwordSecret`: whoever runs the SQL reads the password at run time; any other `*password` is refused, its value
never repeated. On Redshift through the Data API, username without a secretId signs in with temporary credentials
(DbUser on a cluster, the workflow's IAM identity on a workgroup) and the password is not read.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from datapipe.databases.activities import SQL_NODE_TYPES, S3Node, SqlNode
from datapipe.databases.literal_values import literal_characters, refused_characters
from datapipe.databases.merge_keys import catalog_names
from datapipe.databases.model import (
    DATA_API_PASSWORD_UNUSED,
    PASSWORD_REFUSED,
    PASSWORD_SECRET_FIELD,
    DatabaseSpec,
    text_list_field,
)
from datapipe.databases.redshift_copy import (
    DEFAULT_READ_RATIO,
    MERGE_FROM_CATALOG,
    RedshiftCopy,
    copy_statements,
    merge_source,
    takes_default_read_ratio,
)
from datapipe.databases.sqltext import rewrite_code, segments, split_statements
from datapipe.databases.urls import Engine, parse_jdbc_url
from datapipe.datefunctions import ExpressionError
from datapipe.errors import DatapipeError
from datapipe.importer.expressions import PARAMETERS_PATH, RUN_PATH, RUN_VALUES_PATH, RuntimePath, Text
from datapipe.importer.fields import DATA_API, RUNS_ON_WINS, reason_for
from datapipe.importer.reader import Problem
from datapipe.importer.secrets import SECRET_REFERENCE_HINT, secret_reference

if TYPE_CHECKING:
    from datapipe.importer.model import Pipeline, PipelineObject
    from datapipe.importer.plan import Activity, _Planner

REDSHIFT_DATA = "redshift-data"
DATABASE_ACTIVITY_TYPES = ("SqlActivity", "RedshiftCopyActivity")
# COPY runs with the role the cluster (or workgroup) has as its default: no role ARN sits in the definition.
COPY_ROLE = "default"
# A cluster's endpoint (<cluster>.<id>.<region>.redshift.amazonaws.com) or a workgroup's (...redshift-serverless...).
REDSHIFT_HOST = re.compile(
    r"^(?P<name>[a-z][a-z0-9-]{0,62})\.[a-z0-9]+\.[a-z0-9-]+\.(?P<kind>redshift|redshift-serverless)\.amazonaws\.com$"
)
DATABASE_FIELDS = ("connectionString", "jdbcDriverClass", "databaseName", "rdsInstanceId", "clusterId",
                   "workgroupName", "region", "secretId")
SQL_NODE_FIELDS = ("table", "schemaName", "selectQuery", "insertQuery", "createTableSql")
S3_NODE_PATHS = ("filePath", "directoryPath")
MYSQL_DRIVER = "com.mysql.jdbc.Driver"
# `*password` as Data Pipeline's definitions write it: a reference to one parameter, a secret one (`*my...`) or a plain
# one whose value must then be a reference too.
PASSWORD_PARAMETER = re.compile(r"\s*#\{\s*(?P<parameter>\*?[A-Za-z][A-Za-z0-9_]{0,255})\s*\}\s*")
# The Redshift Data API's limits: statements of one BatchExecuteStatement, and the size of one statement.
MAX_BATCH_STATEMENTS = 40
MAX_STATEMENT_BYTES = 100_000
# Stands for a value of the run in a COPY's source while its statements are written (refused in the source's text).
RUN_VALUE_MARK = "\x00"
# Values of the run in one COPY source: real ones hold a date or its six parts; the bound keeps the state small.
MAX_SOURCE_RUN_VALUES = 20
# The parts of the run's split time (expressions.RUN_PATH), as a Joda-Time pattern prints each of them.
RUN_TIME_PATTERNS = {"year": "YYYY", "month": "MM", "day": "dd", "hour": "HH", "minute": "mm", "second": "ss"}

TextValue = Text | list[Text]


@dataclass
class RedshiftStatements:
    """What one Data API call runs: where (`target`), the statements, and `:name` parameters of a single statement."""

    target: dict[str, str]  # ClusterIdentifier or WorkgroupName, Database, and SecretArn or DbUser (or neither)
    sqls: list[str]  # as the report shows them; a run's value as {$.runtime.<name>}
    parameters: list[tuple[str, Text]] = field(default_factory=list)
    # statements holding values of the run (a COPY's source prefix): index -> the statement with those values
    run_time_sqls: dict[int, Text] = field(default_factory=dict)
    # the run values they hold, which the run-values Lambda checks against their patterns before any SQL runs
    checked_values: list[str] = field(default_factory=list)
    # a merge on the table's own key, which the run reads from the catalog before it writes the statement at `index`
    merge_from_catalog: MergeFromCatalog | None = None


@dataclass(frozen=True)
class MergeFromCatalog:
    """What the merge-keys Lambda needs besides the catalog's answer: all of it the definition's, fixed at import."""

    index: int  # of the merge statement among the statements
    mode: str  # KEEP_EXISTING or OVERWRITE_EXISTING
    table: str  # as the statements write it (schema.table)
    source: str  # staging or staging2
    schema_name: str  # the catalog's bound parameters: the names as Redshift stores them
    table_name: str


@dataclass
class SqlTask:
    """A task of the worker-group contract: the definition's objects, resolved, as datapipe.databases takes them."""

    task_type: str  # SqlActivity or CopyActivity
    objects: dict[str, dict[str, TextValue]]  # activity, input, output, database
    data_format: str | None = None


@dataclass
class SqlWork:
    database_id: str
    secret_id: str
    redshift: RedshiftStatements | None = None
    task: SqlTask | None = None

    @property
    def secrets(self) -> dict[str, str]:
        """The database secret, in the form Plan.secrets gives (a name -> the reference)."""
        return {f"DATABASE_{re.sub(r'[^A-Za-z0-9_]', '_', self.database_id)}": self.secret_id}


class _Refused(Exception):
    """Stops planning one activity; the problem or reason is already recorded."""


def is_database_activity(obj: PipelineObject, pipeline: Pipeline) -> bool:
    if obj.type in DATABASE_ACTIVITY_TYPES:
        return True
    if obj.type != "CopyActivity":
        return False
    nodes = [pipeline.objects.get(node_id) for key in ("input", "output") for node_id in obj.refs(key)]
    return any(node is not None and node.type in SQL_NODE_TYPES for node in nodes)


def database_activity(
    planner: _Planner, obj: PipelineObject, *, resource: PipelineObject | None, worker_group: str | None
) -> Activity | None:
    """The plan of one database activity, or None (with the problem or the reason recorded)."""
    try:
        return _Mapper(planner, obj).activity(resource, worker_group)
    except _Refused:
        if obj.id not in planner.reasons and not any(p.object_id == obj.id for p in planner.problems):
            # the problem is another object's (its database, a data node): the activity says why it is not planned
            planner.problems.append(Problem(obj.id, "", f"cannot be planned: {planner.problems[-1]}"))
        return None


class _Mapper:
    def __init__(self, planner: _Planner, obj: PipelineObject) -> None:
        self.planner = planner
        self.pipeline = planner.pipeline
        self.evaluator = planner.evaluator
        self.obj = obj

    # -- shared -------------------------------------------------------------------------------------------------------

    def problem(self, object_id: str, key: str, message: str) -> _Refused:
        self.planner.problems.append(Problem(object_id, key, message))
        return _Refused()

    def refused(self, error: DatapipeError, fallback: str) -> _Refused:
        """A one-line error of datapipe.databases (`Object.field: message`) as the problem of that object and field."""
        text = str(error)
        match = re.match(r"^([^.:\s]+)\.([^:\n]+): (.*)$", text, re.DOTALL)
        if match and match.group(1) in self.pipeline.objects:
            return self.problem(match.group(1), match.group(2), match.group(3))
        match = re.match(r"^([^.:\s]+): (.*)$", text, re.DOTALL)
        if match and match.group(1) in self.pipeline.objects:
            return self.problem(match.group(1), "", match.group(2))
        return self.problem(fallback, "", text)

    def referenced(self, owner: PipelineObject, key: str, wanted: tuple[str, ...]) -> PipelineObject:
        targets = owner.refs(key)
        if len(targets) != 1:
            raise self.problem(owner.id, key, f"{owner.type} needs exactly one {key} ({' or '.join(wanted)})")
        target = self.pipeline.objects[targets[0]]
        if target.type not in wanted:
            raise self.problem(owner.id, key, f"refers to {target.id}, a {target.type}; it must be a "
                               f"{' or '.join(wanted)}")
        return target

    def static(self, obj: PipelineObject, keys: tuple[str, ...], purpose: str) -> dict[str, object]:
        """The object's fields, each known at import time (it shapes the SQL or says where the database is)."""
        result: dict[str, object] = {"id": obj.id, "type": obj.type}
        for key in keys:
            if not obj.fields.get(key):
                continue
            texts = self.evaluator.field_texts(obj, key)
            if texts is None:
                raise _Refused()
            if not all(text.is_static for text in texts):
                raise self.problem(obj.id, key, f"must be known at import time ({purpose}); give its parameters a "
                                   "value with --values or a default")
            values = [text.static for text in texts]
            result[key] = values if len(values) > 1 or key in ("primaryKeys", "commandOptions") else values[0]
        if obj.fields.get("*password") and "secretId" in keys:  # a database object's, or a MySqlDataNode's
            if isinstance(result.get("connectionString"), str):  # an engine no driver reaches says so first
                try:
                    parse_jdbc_url(str(result["connectionString"]), where=f"{obj.id}.connectionString")
                except DatapipeError as error:
                    raise self.refused(error, obj.id) from None
            result.update(self.password_credentials(obj))
        return result

    def password_credentials(self, obj: PipelineObject) -> dict[str, object]:
        """`username` and `*password: #{*myParameter}` -> username and the reference of the password's secret.

        The value of `*password` is never repeated in a message: it may be the password itself.
        """
        values = obj.fields["*password"]
        match = PASSWORD_PARAMETER.fullmatch(values[0]) if len(values) == 1 and isinstance(values[0], str) else None
        if match is None:
            obj.not_applied("*password", reason_for(obj.type, "*password") or "")
            raise self.problem(obj.id, "*password", PASSWORD_REFUSED)
        if obj.fields.get("secretId"):
            raise self.problem(obj.id, "*password", "give either secretId or username and *password, not both")
        parameter_id = match.group("parameter")
        parameter = self.pipeline.parameters.get(parameter_id)
        if parameter is None:
            secret = f"*{parameter_id}"
            hint = f" ({secret} is: write #{{{secret}}})" if secret in self.pipeline.parameters else ""
            raise self.problem(obj.id, "*password", f"refers to {parameter_id}, which is not a declared "
                               f"parameter{hint}")
        given = self.pipeline.values.get(parameter_id) or parameter.default or []
        reference = secret_reference(given[0]) if len(given) == 1 and isinstance(given[0], str) else None
        if reference is None and not parameter_id.startswith("*"):  # probably the password itself: never repeated
            raise self.problem(obj.id, "*password", f"refers to {parameter_id}, a plain parameter whose value (from "
                               "--values or its default) is not a reference to a secret, so it would be the password "
                               f"itself: {SECRET_REFERENCE_HINT}")
        if reference is None:  # a value that is not a reference is reported on the parameter, never repeated
            raise self.problem(obj.id, "*password", f"the secret {parameter_id} needs a reference as its value: "
                               f"{SECRET_REFERENCE_HINT}")
        if not obj.fields.get("username"):
            raise self.problem(obj.id, "username", "required with *password: the secret holds the password alone")
        username = self.evaluator.static_field(obj, "username", purpose="it says who connects to the database")
        if username is None:
            raise _Refused()
        return {"username": username, PASSWORD_SECRET_FIELD: reference}

    def data_format(self, node: PipelineObject) -> str | None:
        format_object = self.pipeline.objects.get(node.ref("dataFormat") or "")
        return format_object.type if format_object is not None else None

    def database(self, database: dict[str, object]) -> DatabaseSpec:
        try:
            spec = DatabaseSpec.from_object(database)
        except DatapipeError as error:
            raise self.refused(error, str(database["id"])) from None
        self.planner.targets[spec.object_id] = (
            f"database reached with the credentials of secret {spec.secret_id}" if spec.secret_id is not None else
            f"database reached as user {spec.username}, the password read at run time from {spec.password_secret}")
        if spec.region is not None:  # read for the model's checks; nothing is sent to another region
            self.pipeline.objects[spec.object_id].not_applied("region", reason_for(spec.object_type, "region") or "")
        for key in ("username", "jdbcProperties", "jdbcDriverJarUri"):
            if key == "username" and spec.secret_id is None:  # the credentials' own username
                continue
            if self.pipeline.objects[spec.object_id].own.get(key):
                self.planner.note(spec.object_id, f"{key} is not used (credentials come from secretId; the drivers "
                                  "are Python's)")
        return spec

    # -- the activity -------------------------------------------------------------------------------------------------

    def activity(self, resource: PipelineObject | None, worker_group: str | None) -> Activity:
        from datapipe.importer.plan import ACTIVITY_TASK, BATCH_JOB, Activity

        obj = self.obj
        if obj.type == "RedshiftCopyActivity":
            work = self.redshift_copy()
        elif obj.type == "SqlActivity":
            database_object = self.referenced(obj, "database", ("RdsDatabase", "JdbcDatabase", "RedshiftDatabase"))
            database = self.static(database_object, DATABASE_FIELDS, "it says where the database is")
            spec = self.database(database)
            work = self.redshift_sql(spec) if self.data_api(spec) is not None else self.sql_task(spec, database)
        else:
            work = self.copy_task()
        if work.redshift is not None:
            for key in ("runsOn", "workerGroup"):
                if obj.own.get(key):
                    self.planner.note(obj.id, f"{key} is not used: the Redshift Data API runs the statements")
                obj.not_applied(key, DATA_API)
            if obj.fields.get("queue"):
                self.planner.note(obj.id, "queue (Redshift's query group) is not applied")
                obj.not_applied("queue", reason_for(obj.type, "queue") or "")
            call = "executeStatement" if len(work.redshift.sqls) == 1 else "batchExecuteStatement"
            self.planner.targets[obj.id] = (f"Redshift Data API {call} ({len(work.redshift.sqls)} statement(s)) on "
                                            f"{work.database_id}, then describeStatement until it ends")
            return Activity(id=obj.id, type=obj.type, target=REDSHIFT_DATA, sql=work)
        if resource is None and worker_group:
            self.planner.targets[obj.id] = (f"{work.task.task_type if work.task else obj.type} task for worker "
                                            f"group '{worker_group}' (StepFunctionsInvokeActivity)")
            return Activity(id=obj.id, type=obj.type, target=ACTIVITY_TASK, worker_group=worker_group, sql=work)
        if resource is not None and resource.type == "Ec2Resource":
            if worker_group:
                obj.not_applied("workerGroup", RUNS_ON_WINS)
            self.planner.targets[obj.id] = (f"Batch job (BatchSubmitJob) running datapipe taskrunner exec-task for "
                                            f"resource {resource.id}")
            return Activity(id=obj.id, type=obj.type, target=BATCH_JOB, resource=resource.id, sql=work)
        if resource is not None:
            self.planner.reasons[obj.id] = f"{obj.type} on {work.database_id} runs on a worker group or an " \
                f"Ec2Resource, not on a {resource.type}"
        else:
            self.planner.reasons[obj.id] = f"{obj.type} on {work.database_id} needs a workerGroup whose task " \
                "runner reaches the database, or runsOn an Ec2Resource (a Batch job)"
        raise _Refused()

    # -- Redshift through the Data API --------------------------------------------------------------------------------

    def data_api(self, spec: DatabaseSpec) -> DatabaseSpec | None:
        """The spec with its cluster or workgroup, when the Data API reaches it; None for another database."""
        if spec.object_type != "RedshiftDatabase":
            return None
        if spec.endpoint is None:
            return spec
        match = REDSHIFT_HOST.match(spec.endpoint.host.lower())
        if match is None:
            return None
        key = "cluster_id" if match.group("kind") == "redshift" else "workgroup_name"
        changes: dict[str, object] = {key: match.group("name"), "endpoint": None,
                                      "database_name": spec.database_name or spec.endpoint.database}
        return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]

    def redshift_target(self, spec: DatabaseSpec) -> dict[str, str]:
        reachable = self.data_api(spec)
        if reachable is None:
            raise self.problem(spec.object_id, "connectionString", "the Redshift Data API needs a cluster or "
                               "workgroup endpoint (<name>.<id>.<region>.redshift.amazonaws.com), or give clusterId "
                               "or workgroupName")
        try:
            target = reachable.data_api_parameters()
        except DatapipeError as error:  # a user or database name GetClusterCredentials refuses
            raise self.refused(error, spec.object_id) from None
        if "SecretArn" not in target:
            database = self.pipeline.objects[spec.object_id]
            database.not_applied("*password", DATA_API_PASSWORD_UNUSED)
            self.planner.targets[spec.object_id] = (
                f"database reached through the Redshift Data API as {target['DbUser']} with temporary credentials "
                "(redshift:GetClusterCredentials)" if "DbUser" in target else
                "database reached through the Redshift Data API as the workflow's IAM identity, with temporary "
                "credentials (redshift-serverless:GetCredentials)")
        return target

    def redshift_sql(self, spec: DatabaseSpec) -> SqlWork:
        obj = self.obj
        if obj.fields.get("scriptUri"):
            self.planner.reasons[obj.id] = ("scriptUri on a RedshiftDatabase is not mapped: the Redshift Data API "
                                            "takes the SQL text; put the script in the script field")
            raise _Refused()
        script = self.evaluator.static_field(obj, "script", purpose="it is the SQL that runs")
        arguments = self.evaluator.field_texts(obj, "scriptArgument")
        if script is None or arguments is None:
            raise _Refused()
        where = f"{obj.id}.script"
        try:
            statements = split_statements(script, Engine.REDSHIFT, where=where)
            placeholders = [sum(text.count("?") for code, text in segments(s, Engine.REDSHIFT, where=where) if code)
                            for s in statements]
        except DatapipeError as error:
            raise self.refused(error, obj.id) from None
        if not statements:
            raise self.problem(obj.id, "script", "holds no SQL statement")
        if len(statements) > MAX_BATCH_STATEMENTS:
            raise self.problem(obj.id, "script", f"holds {len(statements)} statements; the Redshift Data API runs at "
                               f"most {MAX_BATCH_STATEMENTS} in one transaction (BatchExecuteStatement)")
        if max(len(statement.encode()) for statement in statements) > MAX_STATEMENT_BYTES:
            raise self.problem(obj.id, "script", f"holds a statement over {MAX_STATEMENT_BYTES // 1000} kB, the "
                               "Redshift Data API's limit")
        if sum(placeholders) != len(arguments):
            raise self.problem(obj.id, "scriptArgument", f"the script has {sum(placeholders)} ? placeholders but "
                               f"{len(arguments)} arguments")
        parameters: list[tuple[str, Text]] = []
        if arguments:
            if len(statements) > 1:
                raise self.problem(obj.id, "scriptArgument", "the Redshift Data API binds arguments to a script of "
                                   "one statement only (BatchExecuteStatement takes no parameters)")
            numbers = iter(range(1, len(arguments) + 1))
            statements = [rewrite_code(statements[0], Engine.REDSHIFT,
                                       lambda code: re.sub(r"\?", lambda _: f":arg{next(numbers)}", code),
                                       where=where)]
            parameters = [(f"arg{index}", text) for index, text in enumerate(arguments, start=1)]
        target = self.redshift_target(spec)
        return SqlWork(spec.object_id, spec.credentials_reference,
                       redshift=RedshiftStatements(target, statements, parameters))

    def redshift_copy(self) -> SqlWork:
        obj = self.obj
        source = self.referenced(obj, "input", ("S3DataNode", "DynamoDBDataNode"))
        sink = self.referenced(obj, "output", ("RedshiftDataNode",))
        database_object = self.referenced(sink, "database", ("RedshiftDatabase",))
        purpose = "it is part of the COPY's SQL"
        activity = self.static(obj, ("insertMode", "commandOptions", "transformSql"), purpose)
        input_node = self.static(source, ("compression", "tableName", "readThroughputPercent"), purpose)
        paths, run_values = self.copy_source(source)
        output_node = self.static(sink, ("tableName", "schemaName", "createTableSql", "primaryKeys"), purpose)
        spec = self.database(self.static(database_object, DATABASE_FIELDS, "it says where the database is"))
        target = self.redshift_target(spec)
        try:
            copy = RedshiftCopy.from_objects(activity, {**input_node, **paths}, output_node, iam_role=COPY_ROLE,
                                             data_format=self.data_format(source))
            statements = copy_statements(copy, key_from_catalog=True)
        except DatapipeError as error:  # a run's value is shown as its path, not as its mark
            shown_error = re.sub(r"\\x00(\d+)\\x00", lambda m: "{" + run_values[int(m.group(1))].path + "}", str(error))
            raise self.refused(DatapipeError(shown_error), obj.id) from None
        if takes_default_read_ratio(input_node, text_list_field(activity, "commandOptions")):
            self.planner.note(obj.id, f"COPY from DynamoDB reads with READRATIO {DEFAULT_READ_RATIO} (Redshift "
                              f"requires one): {source.id} gives no readThroughputPercent, and {DEFAULT_READ_RATIO} "
                              "percent is what Data Pipeline's DynamoDB samples default it to")
        merge = None
        if MERGE_FROM_CATALOG in statements:
            names = catalog_names(copy.table)
            merge = MergeFromCatalog(statements.index(MERGE_FROM_CATALOG), copy.insert_mode, copy.table,
                                     merge_source(copy), schema_name=names["schema"], table_name=names["table"])
            statements[merge.index] = (f"{{the {copy.insert_mode} merge on the primary key of {copy.table}, read from "
                                       "the catalog when the run starts}")
            self.planner.note(obj.id, f"insertMode {copy.insert_mode} merges on the primary key of {copy.table}, read "
                              "from the cluster's catalog when the run starts: the data node gives no primaryKeys and "
                              "no createTableSql with a PRIMARY KEY")
        run_time = {index: _unmarked(sql, run_values) for index, sql in enumerate(statements) if RUN_VALUE_MARK in sql}
        shown = [run_time[index].describe() if index in run_time else sql for index, sql in enumerate(statements)]
        checked = [path.path.removeprefix(f"{RUN_VALUES_PATH}.") for path in run_values]
        return SqlWork(spec.object_id, spec.credentials_reference,
                       redshift=RedshiftStatements(target, shown, run_time_sqls=run_time,
                                                   checked_values=list(dict.fromkeys(checked)),
                                                   merge_from_catalog=merge))

    def copy_source(self, node: PipelineObject) -> tuple[dict[str, object], list[RuntimePath]]:
        """An S3 input's path for the COPY's FROM literal: known at import time, or with values that the run-values
        Lambda computes from the run's times through a pattern the definition fixes, and checks before any SQL runs
        (datapipe.databases.literal_values). Each such value stands in the text as a mark: its index in the list."""
        paths: dict[str, object] = {}
        run_values: list[RuntimePath] = []
        for key in S3_NODE_PATHS:
            if not node.fields.get(key):
                continue
            texts = self.evaluator.field_texts(node, key)
            if texts is None:
                raise _Refused()
            if len(texts) != 1:
                raise self.problem(node.id, key, "the COPY reads one location: give one path")
            pieces: list[str] = []
            for part in texts[0].parts:
                if isinstance(part, str):
                    refused = refused_characters(part)  # the pattern's literal text too, which the run's split
                    if refused:  # time leaves as text of the definition
                        raise self.problem(node.id, key, f"holds {refused!r}, which the COPY's source may not (a "
                                           "quote, backslash, semicolon or blank)")
                    pieces.append(part)
                else:
                    pieces.append(f"{RUN_VALUE_MARK}{len(run_values)}{RUN_VALUE_MARK}")
                    run_values.append(self.literal_run_value(node, key, part))
            paths[key] = "".join(pieces)
        if len(run_values) > MAX_SOURCE_RUN_VALUES:
            raise self.problem(node.id, next(k for k in S3_NODE_PATHS if node.fields.get(k)), "holds "
                               f"{len(run_values)} values of the run; a COPY's source takes at most "
                               f"{MAX_SOURCE_RUN_VALUES} (each is one argument of the statement's States.Format)")
        return paths, run_values

    def literal_run_value(self, node: PipelineObject, key: str, part: object) -> RuntimePath:
        """The run-values Lambda's value for a part of the run, when it may be written into the COPY's SQL."""
        tree = None
        if isinstance(part, RuntimePath) and part.path.startswith(f"{RUN_PATH}."):
            # a component of the split run time: the Lambda computes it too, so that it is checked like the rest
            component = part.path.removeprefix(f"{RUN_PATH}.")
            if component in RUN_TIME_PATTERNS:
                tree = {"function": "format",
                        "arguments": [{"time": "scheduledStartTime"}, RUN_TIME_PATTERNS[component]]}
        elif isinstance(part, RuntimePath) and part.path.startswith(f"{RUN_VALUES_PATH}."):
            tree = self.evaluator.run_expressions.get(part.path.removeprefix(f"{RUN_VALUES_PATH}."))
        if tree is None:
            path = part.path if isinstance(part, RuntimePath) else "a secret"
            fix = (f"give {path.removeprefix(f'{PARAMETERS_PATH}.')} a value with --values or a default; "
                   if path.startswith(f"{PARAMETERS_PATH}.") else f"{path} is not; ")
            raise self.problem(node.id, key, f"must be known at import time (it is part of the COPY's SQL): {fix}only "
                               "the run's time, through a format pattern of the definition, may be computed when the "
                               "run starts")
        try:
            literal_characters(tree)
        except ExpressionError as error:
            raise self.problem(node.id, key, f"the COPY's SQL may hold the run's time formatted only with digits and "
                               f"literal characters: {error}") from None
        value = self.evaluator.run_value(tree).parts[0]
        assert isinstance(value, RuntimePath)
        return value

    # -- tasks for a worker group's runner ----------------------------------------------------------------------------

    def sql_task(self, spec: DatabaseSpec, database: dict[str, object]) -> SqlWork:
        obj = self.obj
        activity: dict[str, TextValue] = {"id": Text.of(obj.id), "type": Text.of(obj.type)}
        for key in ("script", "scriptUri"):
            if obj.fields.get(key):
                value = self.evaluator.static_field(obj, key, purpose="it is the SQL that runs")
                if value is None:
                    raise _Refused()
                activity[key] = Text.of(value)
        arguments = self.evaluator.field_texts(obj, "scriptArgument")
        if arguments is None:
            raise _Refused()
        activity["scriptArgument"] = arguments
        objects = {"activity": activity, "database": _texts(database)}
        return SqlWork(spec.object_id, spec.credentials_reference, task=SqlTask("SqlActivity", objects))

    def copy_task(self) -> SqlWork:
        obj = self.obj
        nodes = ("SqlDataNode", "MySqlDataNode", "S3DataNode")
        source = self.referenced(obj, "input", nodes)
        sink = self.referenced(obj, "output", nodes)
        sql_node, s3_node = (source, sink) if source.type in SQL_NODE_TYPES else (sink, source)
        if s3_node.type != "S3DataNode":
            raise self.problem(obj.id, "output" if sink is s3_node else "input", "a SQL CopyActivity copies between "
                               "a SqlDataNode or MySqlDataNode and an S3DataNode")
        node = self.static(sql_node, SQL_NODE_FIELDS, "it is part of the SQL that runs")
        if sql_node.type == "MySqlDataNode":
            database = self.mysql_database(sql_node)
        else:
            database = self.static(self.referenced(sql_node, "database", ("RdsDatabase", "JdbcDatabase",
                                                                          "RedshiftDatabase")),
                                   DATABASE_FIELDS, "it says where the database is")
        spec = self.database(database)
        s3_fields = self.s3_node(s3_node)
        data_format = self.data_format(s3_node)
        try:
            SqlNode.from_object(node)
            S3Node.from_object({key: value.describe() if isinstance(value, Text) else value
                                for key, value in s3_fields.items()}, data_format=data_format)
        except DatapipeError as error:
            raise self.refused(error, obj.id) from None
        sql_texts = _texts(node)
        objects: dict[str, dict[str, TextValue]] = {
                   "activity": {"id": Text.of(obj.id), "type": Text.of(obj.type)},
                   "input": sql_texts if sql_node is source else s3_fields,
                   "output": sql_texts if sql_node is sink else s3_fields,
                   "database": _texts(database)}
        return SqlWork(spec.object_id, spec.credentials_reference, task=SqlTask("CopyActivity", objects, data_format))

    def mysql_database(self, node: PipelineObject) -> dict[str, object]:
        """A MySqlDataNode carries its own connection: as the JdbcDatabase it stands for."""
        fields = self.static(node, ("connectionString", "secretId"), "it says where the database is")
        database: dict[str, object] = {**fields, "type": "JdbcDatabase", "jdbcDriverClass": MYSQL_DRIVER}
        if not fields.get("connectionString"):
            raise self.problem(node.id, "connectionString", "required for a MySqlDataNode (jdbc:mysql://host/db)")
        return database

    def s3_node(self, node: PipelineObject) -> dict[str, TextValue]:
        """An S3 data node's path may hold the run's values: it is data, never SQL."""
        result: dict[str, TextValue] = {"id": Text.of(node.id), "type": Text.of(node.type)}
        for key in S3_NODE_PATHS:
            if node.fields.get(key):
                text = self.evaluator.field_text(node, key)
                if text is None:
                    raise _Refused()
                result[key] = text
        if node.fields.get("compression"):
            compression = self.evaluator.static_field(node, "compression", purpose="it says how the data is read")
            if compression is None:
                raise _Refused()
            result["compression"] = Text.of(compression)
        return result


def _unmarked(sql: str, run_values: list[RuntimePath]) -> Text:
    """A statement with the marks of copy_source replaced by the run values they stand for."""
    pieces = sql.split(RUN_VALUE_MARK)  # text, index, text, index, ..., text
    return Text.of(*(piece if position % 2 == 0 else run_values[int(piece)] for position, piece in enumerate(pieces)))


def _texts(fields: dict[str, object]) -> dict[str, TextValue]:
    return {key: [Text.of(str(v)) for v in value] if isinstance(value, list) else Text.of(str(value))
            for key, value in fields.items() if key != "*password"}
