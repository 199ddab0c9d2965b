"""Run values written into SQL (a RedshiftCopyActivity's source prefix): the run-values function checks each value
named in `checked` against the characters its pattern writes, and refuses a pattern that could write anything else.

Expected values worked by hand: 2026-11-21T06:30:45Z with 'YYYY-MM-dd-HH-mm-ss' is 2026-11-21-06-30-45; with
'YYYY/DDD' day 325 of 2026 (304 days to the end of October, plus 21).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from datapipe.databases.literal_values import check_literal_values
from datapipe.datefunctions import ExpressionError
from lambdas.run_values import handler as run_values

SCHEDULED = "2026-11-21T06:30:45Z"


def formatted(pattern: str) -> dict[str, Any]:
    return {"function": "format", "arguments": [{"time": "scheduledStartTime"}, pattern]}


def request(expressions: dict[str, Any], checked: Any, *, time: str = SCHEDULED) -> dict[str, Any]:
    return {"time": time, "actualStartTime": SCHEDULED, "expressions": json.dumps(expressions), "checked": checked}


def test_checked_values_of_digits_and_literal_characters_pass(lambda_context: Any) -> None:
    expressions = {"value1": formatted("YYYY-MM-dd-HH-mm-ss"), "value2": formatted("YYYY/DDD"),
                   "value3": {"function": "hour", "arguments": [{"time": "scheduledStartTime"}]},
                   "value4": formatted("EEE")}  # text, but not written into SQL: not checked
    assert run_values.handler(request(expressions, ["value1", "value2", "value3"]), lambda_context) == {
        "value1": "2026-11-21-06-30-45", "value2": "2026/325", "value3": "6", "value4": "Sat"}


@pytest.mark.parametrize(("pattern", "message"), [
    ("YYYY''MM", "value1: the pattern's literal text holds \"'\", which may not be written into SQL"),
    ("YYYY\\MM", "value1: the pattern's literal text holds '\\\\', which may not be written into SQL"),
    ("YYYY;MM", "value1: the pattern's literal text holds ';'"),
    ("YYYY MM", "value1: the pattern's literal text holds ' '"),
    ("YYYY-EEE", "value1: the pattern letters 'EEE' print text, not a number"),
    ("MMMM", "value1: the pattern letters 'MMMM' print text, not a number"),
    ("hh-a", "value1: the pattern letters 'a' print text"),
    ("Z", "value1: the pattern letters 'Z' print text"),
])
def test_a_checked_value_whose_pattern_could_write_more_fails_the_run_in_one_line(
    lambda_context: Any, pattern: str, message: str
) -> None:
    with pytest.raises(ExpressionError) as raised:
        run_values.handler(request({"value1": formatted(pattern)}, ["value1"]), lambda_context)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


@pytest.mark.parametrize(("checked", "expressions", "message"), [
    ("value1", {"value1": formatted("YYYY")}, "field 'checked' must be a list of the expressions' names"),
    (["value9"], {"value1": formatted("YYYY")}, "value9: not one of the expressions"),
    (["value1"], {"value1": {"function": "midnight", "arguments": [{"time": "scheduledStartTime"}]}},
     "value1: only format(<the run's time>, 'pattern') or a number of the run's time may be written into SQL"),
])
def test_a_bad_checked_list_is_refused(lambda_context: Any, checked: Any, expressions: Any, message: str) -> None:
    with pytest.raises(ExpressionError, match=r"^" + message.replace("(", r"\(").replace(")", r"\)")):
        run_values.handler(request(expressions, checked), lambda_context)


@pytest.mark.parametrize("time", [SCHEDULED + "'", "2026-11-21T06:30:45Z; DROP TABLE t", "2" * 100_000, "now"])
def test_a_hostile_time_gives_no_value_at_all(lambda_context: Any, time: str) -> None:
    with pytest.raises(ExpressionError, match=r"^'time' must be a timestamp such as 2024-01-31T06:00:00Z"):
        run_values.handler(request({"value1": formatted("YYYY-MM-dd")}, ["value1"], time=time), lambda_context)


def test_a_value_that_is_not_of_its_patterns_shape_is_refused() -> None:
    """The last line of defence: whatever computed it, a value with a character its pattern never writes is refused."""
    expressions = json.dumps({"value1": formatted("YYYY-MM-dd")})
    check_literal_values(["value1"], expressions, {"value1": "2026-11-21"})
    with pytest.raises(ExpressionError, match=r"^value1: the value holds characters its pattern does not write"):
        check_literal_values(["value1"], expressions, {"value1": "2026-11-21' OR '1'='1"})
