"""The merge of a RedshiftCopyActivity (KEEP_EXISTING, OVERWRITE_EXISTING) and, when the definition names no key, the
key read from the table itself.

Data Pipeline matched incoming rows on the table's primary key, read from the cluster when the run started, unless the
data node's `primaryKeys` overrode it. When neither `primaryKeys` nor a `createTableSql` with a PRIMARY KEY fixes the
key at import time, the run asks the catalog (`KEY_COLUMNS_SQL`, the schema and table as bound parameters) and
`merge_statement_from_catalog` writes the one statement of the merge that names the key, each column checked and
quoted. Standard library only (with sqltext, urls and errors): the merge-keys Lambda ships these modules, so the
importer and the run share one writer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from datapipe.databases.sqltext import IDENTIFIER
from datapipe.errors import DatapipeError

MERGE_MODES = ("KEEP_EXISTING", "OVERWRITE_EXISTING")
# Redshift documents PostgreSQL's catalog tables as accessible (pg_constraint, pg_class, pg_namespace, pg_attribute),
# and they exist alike in the emulator's PostgreSQL. information_schema.key_column_usage is not used: PostgreSQL 8.0,
# which Redshift's leader node derives from, shows there only the columns of tables the current user owns.
KEY_COLUMNS_SQL = (
    "SELECT a.attname FROM pg_catalog.pg_constraint c "
    "JOIN pg_catalog.pg_class t ON t.oid = c.conrelid "
    "JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace "
    "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) "
    "WHERE c.contype = 'p' AND n.nspname = :schema_name AND t.relname = :table_name ORDER BY a.attnum"
)
# Redshift's standard identifiers, ASCII only: a letter or underscore, then letters, digits, _ or $; 127 bytes at most.
PLAIN_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,126}")
# Redshift allows 1,600 columns in a table; the result comes back in one page of at most 1,000 records.
MAX_KEY_COLUMNS = 1000
DEFAULT_SCHEMA = "public"


def merge_statement(mode: str, *, table: str, source: str, match_columns: Sequence[str]) -> str:
    """The statement of the merge that names the key: KEEP_EXISTING inserts the staged rows whose key is not in the
    table; OVERWRITE_EXISTING deletes the table's rows whose key is staged (the INSERT of every staged row follows).
    `table` is written as given, the columns as given (already checked, quoted or not)."""
    bare_table = table.split(".")[-1]
    matches = " AND ".join(f"{bare_table}.{column} = {source}.{column}" for column in match_columns)
    if mode == "KEEP_EXISTING":
        return f"INSERT INTO {table} SELECT {source}.* FROM {source} WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE " \
               f"{matches})"
    if mode == "OVERWRITE_EXISTING":
        return f"DELETE FROM {table} USING {source} WHERE {matches}"
    raise DatapipeError(f"insertMode: {str(mode)[:40]!r} merges on no key ({', '.join(MERGE_MODES)} do)")


def catalog_names(table: str) -> dict[str, str]:
    """The schema and table as the catalog stores them: Redshift folds unquoted names to lower case, and a table
    without a schema is in PUBLIC, as Data Pipeline's RedshiftDataNode says."""
    schema, _, name = table.rpartition(".")
    return {"schema": (schema or DEFAULT_SCHEMA).lower(), "table": name.lower()}


def quoted_key_columns(result: Any, *, table: str, where: str) -> list[str]:
    """The key columns of the catalog's answer (GetStatementResult's response: `Records` of one string column), each a
    plain identifier, quoted; anything else is refused in one line naming the table and the column."""
    records = result.get("Records") if isinstance(result, Mapping) else None
    if not isinstance(records, list) or result.get("NextToken") or len(records) > MAX_KEY_COLUMNS:
        raise DatapipeError(f"{where}: the key of table {table} could not be read from the catalog (more than "
                            f"{MAX_KEY_COLUMNS} columns, or no list of records)")
    if not records:
        raise DatapipeError(f"{where}: table {table} has no primary key (or does not exist), and the definition "
                            "names none: give the RedshiftDataNode primaryKeys")
    columns: list[str] = []
    for record in records:
        field = record[0] if isinstance(record, list) and len(record) == 1 else None
        name = field.get("stringValue") if isinstance(field, Mapping) else None
        if not isinstance(name, str) or not PLAIN_COLUMN.fullmatch(name) or len(name.encode()) > 127:
            shown = name[:80] if isinstance(name, str) else str(record)[:80]
            raise DatapipeError(f"{where}: table {table} has the key column {shown!r}, which is not a plain name "
                                "(a letter or _, then letters, digits, _ or $): give the RedshiftDataNode primaryKeys")
        columns.append(f'"{name}"')
    return columns


def merge_statement_from_catalog(request: Any) -> str:
    """The merge statement of one run, from the catalog's answer. The request's `mode`, `table`, `source` and `where`
    are the workflow's constants (the definition's), `result` the catalog's answer."""
    if not isinstance(request, Mapping):
        raise DatapipeError("the request must be a JSON object with mode, table, source, where and result")
    texts = {key: request.get(key) for key in ("mode", "table", "source", "where")}
    for key, value in texts.items():
        if not isinstance(value, str) or not value:
            raise DatapipeError(f"field '{key}' of the request must be a non-empty string")
    mode, table, source, where = (str(texts[key]) for key in ("mode", "table", "source", "where"))
    if mode not in MERGE_MODES:
        raise DatapipeError(f"{where[:80]}.insertMode: {mode[:40]!r} merges on no key ({', '.join(MERGE_MODES)} do)")
    if not IDENTIFIER.fullmatch(table) or source not in ("staging", "staging2"):
        raise DatapipeError(f"{where[:80]}: the request's table {table[:80]!r} or source {source[:20]!r} is not one "
                            "the importer writes")
    columns = quoted_key_columns(request.get("result"), table=table, where=where[:80])
    return merge_statement(mode, table=table, source=source, match_columns=columns)
