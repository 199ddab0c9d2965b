"""The run-values function: the importer's trees evaluated with a run's times; a bad request is one line.

Expected values are worked out by hand: 2024-03-31T00:00 minus one month is 2024-02-29 (February has 29 days in
2024); 13:05 is 01 PM; Sunday 31 March 2024 is day 31+29+31 = 91 of its year and in ISO week 13.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from datapipe.datefunctions import ExpressionError
from lambdas.run_values import handler as run_values

SCHEDULED = "2024-03-31T13:05:00Z"


def start(time: str = "scheduledStartTime") -> dict[str, Any]:
    return {"time": time}


def call(name: str, *arguments: Any) -> dict[str, Any]:
    return {"function": name, "arguments": list(arguments)}


def request(expressions: Any, *, time: Any = SCHEDULED, actual: Any = "2024-03-31T13:07:30.123Z") -> dict[str, Any]:
    return {"time": time, "actualStartTime": actual,
            "expressions": expressions if isinstance(expressions, str) else json.dumps(expressions)}


def test_the_handler_gives_each_expression_its_text(lambda_context: Any) -> None:
    expressions = {
        "month": call("format", call("minusMonths", start(), 1), "YYYY-MM-dd"),
        "clock": call("format", start(), "hh a"),
        "week": call("format", start(), "EEE D w"),
        "day": call("day", call("plusDays", start(), 1)),
        "actual": call("format", start("actualStartTime"), "HH:mm:ss.SSS"),
        "plain": call("midnight", start()),
    }
    assert run_values.handler(request(expressions), lambda_context) == {
        "month": "2024-02-29", "clock": "01 PM", "week": "Sun 91 13", "day": "1", "actual": "13:07:30.123",
        "plain": "2024-03-31T00:00:00",
    }


def test_times_with_an_offset_are_read_in_utc(lambda_context: Any) -> None:
    answer = run_values.handler(request({"v": call("format", start(), "YYYY-MM-dd HH:mm")},
                                        time="2024-04-01T01:30:00+02:00"), lambda_context)
    assert answer == {"v": "2024-03-31 23:30"}


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "the request must be a JSON object with 'time', 'actualStartTime' and 'expressions'"),
        (request({"v": start()}, time="2024-13-01T00:00:00Z"), "'time' must be a timestamp such as"),
        (request({"v": start()}, time="$(touch pwned)"), "'time' must be a timestamp such as"),
        (request({"v": start()}, actual=None), "'actualStartTime' must be a timestamp such as"),
        (request({"v": start()}, time="2" * 100_000), "'time' must be a timestamp such as"),
        ({"time": SCHEDULED, "actualStartTime": SCHEDULED, "expressions": {"v": 1}},
         "field 'expressions' must be the JSON text"),
        (request("{not json"), "the expressions are not JSON"),
        (request("[" * 100_000 + "]" * 100_000), "the expressions are not JSON"),
        (request({"v": call("open", "/etc/passwd")}), "v: unknown function 'open'"),
        (request({"v": {"time": "__import__"}}), "v: unknown run time '__import__'"),
        (request({"v": call("plusYears", start(), 8000)}), "v: plusYears gives a date outside the years 1 to 9999"),
        (request({"v": call("plusDays", start(), 10**30)}), "v: plusDays gives a date outside the years 1 to 9999"),
        (request({"v": call("format", start(), "YYYY q")}), "v: the pattern letter 'q' is not one of Joda-Time's"),
        (request({"v": call("format", start(), "y" * 1_000_000)}), "v: the format pattern is longer than"),
        (request({f"v{i}": call("format", start(), "x" * 30_000) for i in range(10)}),
         "the values are longer than 262144 characters together"),
        (request({"v": json.loads("[" * 0 + '{"function": "midnight", "arguments": [' * 60 + '{"time": '
                                  '"scheduledStartTime"}' + "]}" * 60)}), "v: the expression nests deeper than 40"),
        (request({"v": call("minusDays", start(), True)}), "v: an expression holds true or false"),
    ],
    ids=["not-an-object", "month-13", "shell-text", "no-actual-start", "huge-time", "expressions-not-text",
         "not-json", "json-nested-100000", "unknown-function", "unknown-time", "past-9999", "shift-10^30",
         "bad-letter", "pattern-1MB", "values-too-long", "nested-60", "boolean"],
)
def test_a_bad_request_fails_with_one_line_naming_the_field(
    event: Any, message: str, lambda_context: Any
) -> None:
    with pytest.raises(ExpressionError) as raised:
        run_values.handler(event, lambda_context)
    assert message in str(raised.value) and "\n" not in str(raised.value) and len(str(raised.value)) < 300
