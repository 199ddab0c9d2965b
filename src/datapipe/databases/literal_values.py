"""Values of a run that may stand inside a SQL literal: a RedshiftCopyActivity's source prefix such as
`s3://stage/#{format(@scheduledStartTime, 'YYYY-MM-dd-HH-mm-ss')}`.

An execution's input never becomes SQL text. A value the run-values Lambda computes from the run's own time (which it
has parsed as a timestamp) through a format pattern the definition fixes is data of a fixed shape: it holds only what
the pattern writes. So such a value may be part of a COPY's FROM literal when the pattern writes digits and literal
characters only (no quote, backslash, semicolon or blank among them: refused at import time), and when the Lambda
checks each value against those characters before the state machine uses it. The importer and the Lambda both call
`literal_characters`, so they agree on what a pattern may write.

Standard library only (with datapipe.datefunctions): the module ships in the run-values Lambda beside its handler.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from typing import Any

from datapipe.datefunctions import NUMBER_RESULTS, ExpressionError, pattern_groups

DIGITS = frozenset(string.digits)
# Joda-Time letters that print a number: century, years, week-based year and week, day of week as a number, day of
# year and of month, hours, minutes, seconds, fraction; `M` too with one or two letters (three or more: a month name).
NUMBER_LETTERS = frozenset("CYyxweDdKhHkmsS")
# Characters that could end the SQL literal or the statement, or that an S3 location in a COPY cannot hold.
REFUSED_LITERALS = frozenset("'\"`\\;")


def literal_characters(tree: Any) -> frozenset[str]:
    """The characters the value of `tree` (an expression of datapipe.datefunctions) can hold, when it may be written
    into a SQL literal; ExpressionError saying why otherwise."""
    function = tree.get("function") if isinstance(tree, dict) else None
    arguments = tree.get("arguments") if isinstance(tree, dict) else None
    if function in NUMBER_RESULTS:
        return DIGITS  # a year, month, day, hour, minute or day of the year
    if function != "format" or not isinstance(arguments, list) or len(arguments) != 2:
        raise ExpressionError("only format(<the run's time>, 'pattern') or a number of the run's time may be "
                              "written into SQL")
    pattern = arguments[1]
    if not isinstance(pattern, str):
        raise ExpressionError("the format pattern must be text")
    allowed = set(DIGITS)
    for kind, text in pattern_groups(pattern):
        if kind == "letters":
            if text[0] not in NUMBER_LETTERS and not (text[0] == "M" and len(text) <= 2):
                raise ExpressionError(f"the pattern letters '{text}' print text, not a number: only numbers and "
                                      "literal characters may be written into SQL")
            continue
        refused = refused_characters(text)
        if refused:
            raise ExpressionError(f"the pattern's literal text holds {refused!r}, which may not be written into SQL "
                                  "(a quote, backslash, semicolon or blank)")
        allowed.update(text)
    return frozenset(allowed)


def refused_characters(text: str) -> str:
    """The characters of `text` that may not stand in a SQL literal beside a run's value, each once, in order."""
    return "".join(sorted({c for c in text if c in REFUSED_LITERALS or c.isspace() or not c.isprintable()}))


def check_literal_values(checked: Any, expressions_json: str, values: Mapping[str, str]) -> None:
    """Each value named in `checked` holds only the characters its pattern writes; ExpressionError otherwise."""
    if not checked:
        return
    if not isinstance(checked, list) or not all(isinstance(name, str) for name in checked):
        raise ExpressionError("field 'checked' must be a list of the expressions' names")
    try:
        trees = json.loads(expressions_json)
    except (ValueError, RecursionError):
        raise ExpressionError("the expressions are not JSON") from None
    for name in checked:
        if not isinstance(trees, dict) or name not in trees or name not in values:
            raise ExpressionError(f"{name[:80]}: not one of the expressions")
        try:
            allowed = literal_characters(trees[name])
        except ExpressionError as error:
            raise ExpressionError(f"{name}: {error}") from None
        if not set(values[name]) <= allowed:
            raise ExpressionError(f"{name}: the value holds characters its pattern does not write; it is not "
                                  "written into SQL")
