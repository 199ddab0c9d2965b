"""SqlActivity and CopyActivity (with SqlDataNode / MySqlDataNode and S3DataNode) run from their definition objects.

The caller (the task runner, a Batch job) resolves references and hands over the objects as a definition has them,
plus the data format type (CSV or TSV) of an S3 data node; the credentials are read from the database's secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from datapipe.databases.connections import connect
from datapipe.databases.credentials import read_database_credentials
from datapipe.databases.model import DatabaseSpec, text_field, text_list_field
from datapipe.databases.operations import S3Location, copy_query_to_s3, copy_s3_to_table, run_script
from datapipe.databases.sqltext import checked_identifier, create_if_missing
from datapipe.errors import DatapipeError
from datapipe.jsontext import shown

SQL_NODE_TYPES = ("SqlDataNode", "MySqlDataNode")
DELIMITERS = {"CSV": ",", "TSV": "\t"}
MAX_SCRIPT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class SqlNode:
    object_id: str
    table: str
    select_query: str | None
    insert_query: str | None
    create_table_sql: str | None

    @classmethod
    def from_object(cls, obj: Mapping[str, object]) -> SqlNode:
        object_id = str(obj.get("id") or "node")
        if obj.get("type") not in SQL_NODE_TYPES:
            raise DatapipeError(f"{object_id}.type: {obj.get('type')!r} is not one of {', '.join(SQL_NODE_TYPES)}")
        table = text_field(obj, "table")
        if table is None:
            raise DatapipeError(f"{object_id}.table: required")
        schema = text_field(obj, "schemaName")
        qualified = f"{schema}.{table}" if schema else table
        return cls(
            object_id=object_id,
            table=checked_identifier(qualified, where=f"{object_id}.table"),
            select_query=text_field(obj, "selectQuery"),
            insert_query=text_field(obj, "insertQuery"),
            create_table_sql=text_field(obj, "createTableSql"),
        )


@dataclass(frozen=True)
class S3Node:
    object_id: str
    location: S3Location
    is_directory: bool
    delimiter: str
    gzipped: bool

    @classmethod
    def from_object(cls, obj: Mapping[str, object], *, data_format: str | None) -> S3Node:
        object_id = str(obj.get("id") or "node")
        if obj.get("type") != "S3DataNode":
            raise DatapipeError(f"{object_id}.type: {obj.get('type')!r} is not S3DataNode")
        file_path, directory_path = text_field(obj, "filePath"), text_field(obj, "directoryPath")
        if (file_path is None) == (directory_path is None):
            raise DatapipeError(f"{object_id}.filePath: give exactly one of filePath and directoryPath")
        format_type = (data_format or "CSV").upper()
        if format_type not in DELIMITERS:
            raise DatapipeError(f"{object_id}.dataFormat: {data_format!r} is not CSV or TSV")
        if directory_path is not None:
            location = S3Location.parse(directory_path.rstrip("/") + "/", where=f"{object_id}.directoryPath")
        else:
            location = S3Location.parse(str(file_path), where=f"{object_id}.filePath")
        compression = (text_field(obj, "compression") or "none").lower()
        if compression not in ("none", "gzip"):
            raise DatapipeError(f"{object_id}.compression: {shown(compression)} is not none or gzip")
        return cls(object_id, location, directory_path is not None, DELIMITERS[format_type], compression == "gzip")


def run_sql_activity(
    activity: Mapping[str, object], database: Mapping[str, object], *, secrets: Any, s3: Any, ssm: Any = None
) -> list[int]:
    """SqlActivity: `script` or the object at `scriptUri`, with `scriptArgument` values bound to its `?`."""
    activity_id = str(activity.get("id") or "SqlActivity")
    script, script_uri = text_field(activity, "script"), text_field(activity, "scriptUri")
    if (script is None) == (script_uri is None):
        raise DatapipeError(f"{activity_id}.script: give exactly one of script and scriptUri")
    if script_uri is not None:
        script = _read_script(s3, S3Location.parse(script_uri, where=f"{activity_id}.scriptUri"), where=activity_id)
    arguments = text_list_field(activity, "scriptArgument")
    spec = DatabaseSpec.from_object(database)
    credentials = read_database_credentials(spec, secrets=secrets, ssm=ssm)
    with connect(spec, credentials) as open_database:
        return run_script(open_database, str(script), arguments, where=activity_id)


def _read_script(s3: Any, location: S3Location, *, where: str) -> str:
    try:
        response = s3.get_object(Bucket=location.bucket, Key=location.key)
    except s3.exceptions.NoSuchKey:
        raise DatapipeError(f"{where}.scriptUri: {location} does not exist", exit_code=1) from None
    if response["ContentLength"] > MAX_SCRIPT_BYTES:
        raise DatapipeError(
            f"{where}.scriptUri: {location} is over {MAX_SCRIPT_BYTES // 2**20} MiB, too big for a script"
        )
    try:
        return str(response["Body"].read().decode("utf-8"))
    except UnicodeDecodeError:
        raise DatapipeError(f"{where}.scriptUri: {location} is not UTF-8 text") from None


def run_copy_activity(
    activity: Mapping[str, object],
    input_node: Mapping[str, object],
    output_node: Mapping[str, object],
    database: Mapping[str, object],
    *,
    secrets: Any,
    s3: Any,
    data_format: str | None = None,
    ssm: Any = None,
) -> int:
    """CopyActivity between a SQL data node and an S3 data node, either way; returns the rows copied.

    SQL -> S3: `selectQuery` (default: every row of `table`) to `filePath`, or to `<directoryPath>/<activity id>.csv`.
    S3 -> SQL: `createTableSql` first when given (only if the table is missing), then each record through `insertQuery`.
    """
    activity_id = str(activity.get("id") or "CopyActivity")
    kinds = (input_node.get("type"), output_node.get("type"))
    spec = DatabaseSpec.from_object(database)
    if kinds[0] in SQL_NODE_TYPES and kinds[1] == "S3DataNode":
        source = SqlNode.from_object(input_node)
        target = S3Node.from_object(output_node, data_format=data_format)
        destination = target.location
        if target.is_directory:
            suffix = ".csv.gz" if target.gzipped else ".csv"
            destination = S3Location(destination.bucket, f"{destination.key}{activity_id}{suffix}")
        credentials = read_database_credentials(spec, secrets=secrets, ssm=ssm)
        with connect(spec, credentials) as open_database:
            query = source.select_query or f"SELECT * FROM {source.table}"
            return copy_query_to_s3(
                open_database,
                query,
                s3=s3,
                destination=destination,
                delimiter=target.delimiter,
                gzipped=target.gzipped,
                where=source.object_id,
            )
    if kinds[0] == "S3DataNode" and kinds[1] in SQL_NODE_TYPES:
        origin = S3Node.from_object(input_node, data_format=data_format)
        sink = SqlNode.from_object(output_node)
        if sink.insert_query is None:
            raise DatapipeError(f"{sink.object_id}.insertQuery: required to copy into {sink.table} (one ? per field)")
        credentials = read_database_credentials(spec, secrets=secrets, ssm=ssm)
        with connect(spec, credentials) as open_database:
            if sink.create_table_sql:
                run_script(
                    open_database,
                    create_if_missing(sink.create_table_sql),
                    where=sink.object_id,
                    field="createTableSql",
                )
            return copy_s3_to_table(
                open_database,
                sink.insert_query,
                s3=s3,
                source=origin.location,
                delimiter=origin.delimiter,
                gzipped=origin.gzipped,
                where=sink.object_id,
            )
    raise DatapipeError(
        f"{activity_id}.input: a SQL CopyActivity copies between a SqlDataNode/MySqlDataNode and an S3DataNode, "
        f"not {kinds[0]} -> {kinds[1]}"
    )
