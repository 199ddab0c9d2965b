"""SQL text as the drivers need it: a script split into statements, and `?` placeholders turned into `%s`.

One scan, linear in the script's length, tells code from quoted text and comments so that a `;` or `?` inside
'a string', "an identifier", `a MySQL identifier`, $$a PostgreSQL body$$ or a comment is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from datapipe.databases.urls import Engine
from datapipe.errors import DatapipeError

DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


@dataclass(frozen=True)
class Statement:
    """A statement in the driver's paramstyle (`%s`, with literal `%` doubled) and how many values it takes."""

    text: str
    parameter_count: int


def segments(sql: str, engine: Engine, *, where: str) -> Iterator[tuple[bool, str]]:
    """(is_code, text) pieces of `sql`; quoted text and comments are not code."""
    mysql = engine == Engine.MYSQL
    position, length, code_start = 0, len(sql), 0
    while position < length:
        char = sql[position]
        end = -1
        if char in "'\"`" and (char != "`" or mysql):
            end = _closing_quote(sql, position, backslash=mysql and char != "`")
            if end < 0:
                raise DatapipeError(f"{where}: unterminated {char} quote starting at character {position + 1}")
        elif (char == "-" and sql.startswith("--", position)) or (char == "#" and mysql):
            newline = sql.find("\n", position)
            end = length if newline < 0 else newline
        elif char == "/" and sql.startswith("/*", position):
            close = sql.find("*/", position + 2)
            if close < 0:
                raise DatapipeError(f"{where}: unterminated /* comment starting at character {position + 1}")
            end = close + 2
        elif (
            char == "$"
            and not mysql
            and (tag := DOLLAR_TAG.match(sql, position)) is not None
            and (position == 0 or not (sql[position - 1].isalnum() or sql[position - 1] == "_"))
        ):
            close = sql.find(tag.group(0), tag.end())
            if close < 0:
                raise DatapipeError(f"{where}: unterminated {tag.group(0)} quote starting at character {position + 1}")
            end = close + len(tag.group(0))
        if end < 0:
            position += 1
            continue
        if code_start < position:
            yield True, sql[code_start:position]
        yield False, sql[position:end]
        position = code_start = end
    if code_start < length:
        yield True, sql[code_start:]


def _closing_quote(sql: str, start: int, *, backslash: bool) -> int:
    """The index after the quote closing the one at `start` (a doubled quote, or a backslash in MySQL, escapes)."""
    quote, position = sql[start], start + 1
    while True:
        close = sql.find(quote, position)
        if close < 0:
            return -1
        if backslash:
            # an odd run of backslashes right before the quote escapes it
            run = 0
            while sql[close - 1 - run] == "\\" and close - 1 - run > start:
                run += 1
            if run % 2:
                position = close + 1
                continue
        if sql.startswith(quote * 2, close):
            position = close + 2
            continue
        return close + 1


def split_statements(script: str, engine: Engine, *, where: str) -> list[str]:
    """A script's statements as written, split at `;` outside quotes and comments; blank ones dropped."""
    statements: list[str] = []
    pieces: list[str] = []
    for is_code, text in segments(script, engine, where=where):
        parts = text.split(";") if is_code else [text]
        for index, part in enumerate(parts):
            if index:
                statements.append("".join(pieces).strip())
                pieces.clear()
            pieces.append(part)
    statements.append("".join(pieces).strip())
    return [statement for statement in statements if statement]


def split_script(script: str, engine: Engine, *, where: str) -> list[Statement]:
    """A script of statements separated by `;` -> statements with `?` placeholders as `%s`; blank ones dropped."""
    statements = []
    for text in split_statements(script, engine, where=where):
        pieces, count = [], 0
        for is_code, piece in segments(text, engine, where=where):
            pieces.append(piece.replace("%", "%%").replace("?", "%s") if is_code else piece.replace("%", "%%"))
            count += piece.count("?") if is_code else 0
        statements.append(Statement("".join(pieces), count))
    return statements


def rewrite_code(sql: str, engine: Engine, rewrite: Callable[[str], str], *, where: str) -> str:
    """`sql` with `rewrite` applied to its code only (quoted text and comments kept as written)."""
    return "".join(rewrite(text) if is_code else text for is_code, text in segments(sql, engine, where=where))


IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)?")


def checked_identifier(name: str, *, where: str) -> str:
    """A table or column name (`name` or `schema.name`) written as SQL, unquoted so the engine folds case as usual.

    Anything else is refused rather than quoted: these names are spliced into generated statements.
    """
    if not IDENTIFIER.fullmatch(name):
        raise DatapipeError(f"{where}: {name[:80]!r} is not a plain table or column name (letters, digits, _ and $)")
    return name


CREATE_TABLE = re.compile(r"\s*create\s+(?:temp\s+|temporary\s+)?table\s+(?!if\s+not\s+exists)", re.IGNORECASE)


def create_if_missing(create_table_sql: str) -> str:
    """`CREATE TABLE t ...` as `CREATE TABLE IF NOT EXISTS t ...`: Data Pipeline runs createTableSql only when the
    table does not exist, which PostgreSQL, MySQL and Redshift all say this way."""
    return CREATE_TABLE.sub(lambda match: match.group(0) + "IF NOT EXISTS ", create_table_sql, count=1)
