"""RedshiftCopyActivity as SQL: the statements that load S3 (or DynamoDB) into a Redshift table for each insertMode.

Worked out from Data Pipeline's reference: the data is first COPYed into a temporary table named `staging`
(transformSql, when given, is a SELECT over `staging` whose result becomes a second staging table), then merged
into the target as Redshift's "updating and inserting new data" guide describes, using the merge key (the data
node's primaryKeys, else the PRIMARY KEY of createTableSql, else the table's own primary key read from the catalog
when the run starts: datapipe.databases.merge_keys). The statements run in one transaction, e.g. as one
BatchExecuteStatement of the Redshift Data API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from datapipe.databases.merge_keys import MERGE_MODES, merge_statement
from datapipe.databases.model import text_field, text_list_field
from datapipe.databases.sqltext import checked_identifier, create_if_missing
from datapipe.errors import DatapipeError

INSERT_MODES = ("KEEP_EXISTING", "OVERWRITE_EXISTING", "TRUNCATE", "APPEND")
DATA_FORMATS = {"CSV": "CSV", "TSV": "DELIMITER '\\t'"}
# A backslash could escape the literal's closing quote: an S3 location in a COPY holds none.
SOURCE = re.compile(r"(s3://[^'\\\s]+|dynamodb://[A-Za-z0-9_.-]{3,255})")
# `IAM_ROLE default`: the role the cluster or workgroup has as its default.
DEFAULT_ROLE = "default"
PRIMARY_KEY = re.compile(r"\bprimary\s+key\b", re.IGNORECASE)
# Stands for the merge statement that the run writes from the table's key (copy_statements(key_from_catalog=True)).
MERGE_FROM_CATALOG = "\x01merge on the table's primary key\x01"
# COPY from DynamoDB requires READRATIO; Data Pipeline's samples default readThroughputPercent to 0.25 (or 0.2).
DEFAULT_READ_RATIO = 25
READ_RATIO = re.compile(r"^\s*READRATIO\b", re.IGNORECASE)


@dataclass(frozen=True)
class RedshiftCopy:
    object_id: str
    insert_mode: str
    table: str  # tableName, with schemaName when given: schema.table
    source: str  # s3://bucket/prefix, or dynamodb://table
    iam_role: str
    data_format: str | None = None  # the input data node's format type: CSV or TSV
    command_options: tuple[str, ...] = ()
    create_table_sql: str | None = None
    transform_sql: str | None = None
    primary_keys: tuple[str, ...] = ()

    @classmethod
    def from_objects(
        cls,
        activity: Mapping[str, object],
        input_node: Mapping[str, object],
        output_node: Mapping[str, object],
        *,
        iam_role: str,
        data_format: str | None = None,
    ) -> RedshiftCopy:
        """A RedshiftCopyActivity with its input (S3DataNode or DynamoDBDataNode) and output (RedshiftDataNode)
        objects, references resolved by the caller; `data_format` is the type of the input's dataFormat."""
        activity_id = str(activity.get("id") or "RedshiftCopyActivity")
        insert_mode = text_field(activity, "insertMode")
        if insert_mode is None:
            raise DatapipeError(f"{activity_id}.insertMode: required ({', '.join(INSERT_MODES)})")
        options = text_list_field(activity, "commandOptions")
        input_id = input_node.get("id") or "input"
        if input_node.get("type") == "S3DataNode":
            file_path, directory_path = text_field(input_node, "filePath"), text_field(input_node, "directoryPath")
            if (file_path is None) == (directory_path is None):
                raise DatapipeError(f"{input_id}.filePath: give exactly one of filePath and directoryPath")
            source = str(file_path or str(directory_path).rstrip("/") + "/")
            compression = (text_field(input_node, "compression") or "none").lower()
            if compression not in ("none", "gzip"):
                raise DatapipeError(f"{input_id}.compression: {compression!r} is not none or gzip")
            if compression == "gzip":
                options.append("GZIP")
        elif input_node.get("type") == "DynamoDBDataNode":
            table_name = text_field(input_node, "tableName")
            if table_name is None:
                raise DatapipeError(f"{input_id}.tableName: required")
            source = f"dynamodb://{table_name}"
            percent = input_node.get("readThroughputPercent")
            if percent is not None:
                try:
                    ratio = round(float(str(percent)[:40]) * 100)
                except ValueError:
                    ratio = 0
                if not 10 <= ratio <= 100:
                    raise DatapipeError(f"{input_id}.readThroughputPercent: {str(percent)[:40]!r} is not between 0.1 "
                                        "and 1.0")
                options.append(f"READRATIO {ratio}")
            elif takes_default_read_ratio(input_node, options):
                options.append(f"READRATIO {DEFAULT_READ_RATIO}")
        else:
            raise DatapipeError(
                f"{activity_id}.input: {input_node.get('type')!r} is not an S3DataNode or DynamoDBDataNode"
            )
        output_id = output_node.get("id") or "output"
        if output_node.get("type") != "RedshiftDataNode":
            raise DatapipeError(f"{activity_id}.output: {output_node.get('type')!r} is not a RedshiftDataNode")
        table_name = text_field(output_node, "tableName")
        if table_name is None:
            raise DatapipeError(f"{output_id}.tableName: required")
        schema = text_field(output_node, "schemaName")
        keys = [key.strip() for entry in text_list_field(output_node, "primaryKeys") for key in entry.split(",")]
        return cls(
            object_id=activity_id,
            insert_mode=insert_mode,
            table=f"{schema}.{table_name}" if schema else table_name,
            source=source,
            iam_role=iam_role,
            data_format=data_format.upper() if data_format else None,
            command_options=tuple(options),
            create_table_sql=text_field(output_node, "createTableSql"),
            transform_sql=text_field(activity, "transformSql"),
            primary_keys=tuple(key for key in keys if key),
        )


def takes_default_read_ratio(input_node: Mapping[str, object], command_options: list[str]) -> bool:
    """A COPY from DynamoDB whose definition sets no read ratio (readThroughputPercent, or READRATIO among the
    commandOptions) reads with DEFAULT_READ_RATIO: Redshift requires one."""
    return (input_node.get("type") == "DynamoDBDataNode" and input_node.get("readThroughputPercent") is None
            and not any(READ_RATIO.match(option) for option in command_options))


def merge_key(copy: RedshiftCopy) -> list[str]:
    """The merge key the definition fixes (primaryKeys, else createTableSql's PRIMARY KEY); empty when it names none."""
    where = copy.object_id
    keys = [checked_identifier(key, where=f"{where}.output primaryKeys") for key in copy.primary_keys]
    if not keys and copy.create_table_sql:
        keys = primary_key_of(copy.create_table_sql, where=f"{where}.output createTableSql")
    return keys


def merge_source(copy: RedshiftCopy) -> str:
    """The staging table the merge reads: the COPY's, or transformSql's result."""
    return "staging2" if copy.transform_sql else "staging"


def copy_statements(copy: RedshiftCopy, *, key_from_catalog: bool = False) -> list[str]:
    """The statements of one RedshiftCopyActivity run, in order. With `key_from_catalog`, a merge whose key the
    definition does not fix has `MERGE_FROM_CATALOG` where the statement naming the key goes (the run writes it)."""
    where = copy.object_id
    if copy.insert_mode not in INSERT_MODES:
        raise DatapipeError(f"{where}.insertMode: {copy.insert_mode!r} is not one of {', '.join(INSERT_MODES)}")
    table = checked_identifier(copy.table, where=f"{where}.output tableName")
    if not SOURCE.fullmatch(copy.source):
        raise DatapipeError(f"{where}.input: {copy.source[:120]!r} is not an s3:// or dynamodb:// location")
    if copy.iam_role != DEFAULT_ROLE and ("'" in copy.iam_role or not copy.iam_role.startswith("arn:")):
        raise DatapipeError(
            f"{where}: the IAM role for COPY must be a role ARN or {DEFAULT_ROLE}, got {copy.iam_role[:120]!r}"
        )
    if copy.data_format is not None and copy.data_format not in DATA_FORMATS:
        raise DatapipeError(f"{where}.input dataFormat: {copy.data_format!r} is not one of {', '.join(DATA_FORMATS)}")
    for option in copy.command_options:
        if ";" in option or "--" in option or "/*" in option:
            raise DatapipeError(f"{where}.commandOptions: {option[:80]!r} is not one COPY option")
    keys = merge_key(copy)
    if copy.insert_mode in MERGE_MODES and not keys and not key_from_catalog:
        raise DatapipeError(
            f"{where}.insertMode: {copy.insert_mode} merges on a key: give the data node primaryKeys "
            "or a createTableSql with a PRIMARY KEY"
        )

    role = DEFAULT_ROLE if copy.iam_role == DEFAULT_ROLE else f"'{copy.iam_role}'"
    statements = []
    if copy.create_table_sql:
        statements.append(create_if_missing(copy.create_table_sql))
    statements.append(f"CREATE TEMP TABLE staging (LIKE {table})")
    # Redshift reads DynamoDB items by attribute name: a COPY from DynamoDB takes no format option.
    from_s3 = copy.source.startswith("s3://")
    options = [DATA_FORMATS[copy.data_format]] if copy.data_format and from_s3 else []
    statements.append(
        " ".join([f"COPY staging FROM '{copy.source}' IAM_ROLE {role}", *options, *copy.command_options])
    )
    source = merge_source(copy)
    if copy.transform_sql:
        statements.append(f"CREATE TEMP TABLE staging2 AS {copy.transform_sql.strip().rstrip(';')}")
    if copy.insert_mode in MERGE_MODES:
        statements.append(merge_statement(copy.insert_mode, table=table, source=source, match_columns=keys)
                          if keys else MERGE_FROM_CATALOG)
    if copy.insert_mode != "KEEP_EXISTING":
        if copy.insert_mode == "TRUNCATE":
            # DELETE, not TRUNCATE: Redshift's TRUNCATE commits, which would end the transaction halfway
            statements.append(f"DELETE FROM {table}")
        statements.append(f"INSERT INTO {table} SELECT * FROM {source}")
    statements.extend(f"DROP TABLE {name}" for name in dict.fromkeys(["staging", source]))
    return statements


def primary_key_of(create_table_sql: str, *, where: str) -> list[str]:
    """The PRIMARY KEY columns of a CREATE TABLE (a column's `PRIMARY KEY` or a `PRIMARY KEY (a, b)` element)."""
    start = create_table_sql.find("(")
    if start < 0:
        return []
    elements: list[str] = []
    current: list[str] = []
    depth = 0
    for char in create_table_sql[start + 1 :]:
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                break
            depth -= 1
        if char == "," and depth == 0:
            elements.append("".join(current))
            current = []
        else:
            current.append(char)
    elements.append("".join(current))
    for element in elements:
        text = element.strip()
        if not PRIMARY_KEY.search(text):
            continue
        table_level = re.match(r"(?:constraint\s+\S+\s+)?primary\s+key\s*\(([^)]*)\)", text, re.IGNORECASE)
        names = table_level.group(1).split(",") if table_level else [text.split()[0]]
        return [checked_identifier(name.strip().strip('"').lower(), where=where) for name in names]
    return []
