"""Redshift's `COPY table FROM 'dynamodb://Table' ... READRATIO n` for the emulator: a Scan of the emulator's table.

Redshift's rules (Database Developer Guide, "Loading data from an Amazon DynamoDB table" and the COPY data-source
parameters): columns match attribute names case-insensitively, and an item holding two attributes that differ only
in case fails the COPY; attributes without a column are discarded; a column without an attribute gets NULL, or an
empty string in a character column unless EMPTYASNULL; only scalar STRING and NUMBER attributes load, any other type
in a matched attribute fails the COPY; READRATIO (1 to 200) is required and no file-format option is accepted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql

# The options a COPY from DynamoDB refuses: they describe files, which a DynamoDB source has none of.
FILE_FORMAT_OPTIONS = ("CSV", "DELIMITER", "FORMAT", "GZIP", "IGNOREHEADER", "IGNOREBLANKLINES", "QUOTE", "NULL",
                       "REMOVEQUOTES")
CHARACTER_TYPES = {"text", "varchar", "bpchar", "char", "name"}
READRATIO_RANGE = (1, 200)


class CopyRefused(Exception):
    """The COPY cannot run: one line naming the option, table or attribute at fault."""


def read_ratio(options: dict[str, str]) -> int:
    value = options.get("READRATIO")
    if value is None:
        raise CopyRefused("COPY from DynamoDB: READRATIO is required")
    low, high = READRATIO_RANGE
    if not value.isdigit() or not low <= int(value) <= high:
        raise CopyRefused(f"COPY from DynamoDB: READRATIO {value[:20]!r} is not an integer from {low} to {high}")
    return int(value)


def copy_from_dynamodb(
    connection: psycopg.Connection[Any],
    *,
    table: str,
    columns: list[str],
    source: str,
    options: dict[str, str],
    dynamodb: Any,
) -> int:
    """Loads every item of the DynamoDB table `source` names into `table`; the number of rows loaded."""
    refused = [name for name in FILE_FORMAT_OPTIONS if name in options]
    if refused:
        raise CopyRefused(f"COPY from DynamoDB: {refused[0]} is not an option of a DynamoDB source")
    read_ratio(options)
    table_name = source.removeprefix("dynamodb://")
    target = sql.SQL(table)
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("SELECT * FROM {} LIMIT 0").format(target))
        types = connection.adapters.types
        described = {
            column.name.lower(): (column.name, getattr(types.get(column.type_code), "name", ""))
            for column in cursor.description or []
        }
    chosen = [name.strip().strip('"').lower() for name in columns] or list(described)
    unknown = [name for name in chosen if name not in described]
    if unknown:
        raise CopyRefused(f"COPY: column {unknown[0]!r} does not exist in {table}")
    character = [described[name][1] in CHARACTER_TYPES for name in chosen]
    empty_as_null, blanks_as_null = "EMPTYASNULL" in options, "BLANKSASNULL" in options
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        target, sql.SQL(", ").join(sql.Identifier(described[name][0]) for name in chosen)
    )
    with connection.cursor() as cursor:
        with cursor.copy(statement) as loader:
            for item in _items(dynamodb, table_name):
                by_name = _attributes_by_lower_name(item)
                row: list[str | None] = []
                for name, is_character in zip(chosen, character, strict=True):
                    found = by_name.get(name)
                    if found is None:
                        row.append(None if empty_as_null or not is_character else "")
                        continue
                    value: str | None = _scalar(found)
                    if (empty_as_null and value == "") or (blanks_as_null and value is not None and not value.strip()):
                        value = None
                    row.append(value)
                loader.write_row(row)
        return cursor.rowcount


def _items(dynamodb: Any, table_name: str) -> Iterator[dict[str, Any]]:
    try:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table_name):
            yield from page.get("Items", [])
    except dynamodb.exceptions.ResourceNotFoundException:
        raise CopyRefused(f"COPY: DynamoDB table {table_name[:255]!r} does not exist") from None


def _attributes_by_lower_name(item: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    by_name: dict[str, tuple[str, dict[str, Any]]] = {}
    for name, value in item.items():
        lower = name.lower()
        if lower in by_name:
            raise CopyRefused(f"COPY: an item holds attributes that differ only in case: {by_name[lower][0]}, {name}")
        by_name[lower] = (name, value)
    return by_name


def _scalar(attribute: tuple[str, dict[str, Any]]) -> str:
    name, value = attribute
    kind, inner = next(iter(value.items()))
    if kind in ("S", "N"):
        return str(inner)
    raise CopyRefused(
        f"COPY: attribute {name[:255]!r} is of DynamoDB type {kind}: COPY loads STRING and NUMBER attributes only"
    )
