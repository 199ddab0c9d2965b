"""Data Pipeline's date functions and Joda-Time `format` patterns: one implementation for the importer and the run.

The importer computes dates known at import time with these functions; a run's own dates (`@scheduledStartTime`,
`@actualStartTime`) are known only when it starts, so the importer writes each expression on them as a small tree
(`{"function": name, "arguments": [...]}`, `{"time": name}`, numbers and text) fixed by the definition, and the
run-values Lambda evaluates the trees here with the run's times. The module uses the standard library only, because
it ships in that Lambda's asset beside the handler.

Bounded work whatever the input: trees nest at most `MAX_TREE_DEPTH` deep, a shift that always leaves the years 1 to
9999 is refused before it is tried, and a result is at most `MAX_RESULT_LENGTH` characters.
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Union

MAX_TREE_DEPTH = 40  # the importer nests functions at most 32 deep; a run's tree adds a few levels
MAX_RESULT_LENGTH = 256 * 1024  # Step Functions' limit on a state's data
MAX_PATTERN_GROWTH = 7  # a format pattern's result is at most this many times its length ('z' -> 'UTC' is 3x)
DEFAULT_PATTERN = "YYYY-MM-dd'T'HH:mm:ss"  # how a date reads where text is wanted

RUN_TIMES = ("scheduledStartTime", "actualStartTime")
SHIFT_UNITS = ("Minutes", "Hours", "Days", "Weeks", "Months", "Years")
SHIFTS = frozenset(f"{sign}{unit}" for sign in ("plus", "minus") for unit in SHIFT_UNITS)
DATE_RESULTS = frozenset({"midnight", "firstOfMonth", "yesterday", "sunday", *SHIFTS})
NUMBER_RESULTS = frozenset({"year", "month", "day", "hour", "minute", "dayOfYear"})
FUNCTIONS = frozenset({"makeDate", "makeDateTime", "format", *DATE_RESULTS, *NUMBER_RESULTS})

# The most of each unit that a date within the years 1 to 9999 can move (the span is under 3.66 million days).
_SPAN_DAYS = 9999 * 366
_LARGEST_SHIFT = {"Minutes": _SPAN_DAYS * 1440, "Hours": _SPAN_DAYS * 24, "Days": _SPAN_DAYS, "Weeks": _SPAN_DAYS // 7,
                  "Months": 9999 * 12, "Years": 9999}
_PERIOD = re.compile(r"\s*([0-9]{1,9})\s*(minute|hour|day|week|month|year)s?\s*", re.IGNORECASE)

Value = Union[datetime, int, str]  # noqa: UP007 (a runtime alias, not only an annotation)


class ExpressionError(ValueError):
    """An expression that has no value: the message says why, in one line."""


# ----------------------------------------------------------------------------------------------------------------------
# The functions


def call(name: str, arguments: list[Value]) -> Value:
    """One of Data Pipeline's date functions applied to evaluated arguments."""
    if name in ("makeDate", "makeDateTime"):
        wanted = 3 if name == "makeDate" else 5
        numbers = [a for a in arguments if isinstance(a, int)]
        if len(arguments) != wanted or len(numbers) != wanted:
            raise ExpressionError(f"{name} takes {wanted} numbers")
        hour, minute = (numbers[3], numbers[4]) if wanted == 5 else (0, 0)
        try:
            return datetime(numbers[0], numbers[1], numbers[2], hour, minute)
        except (ValueError, OverflowError) as error:
            raise ExpressionError(f"{name}({','.join(map(str, numbers))}) is not a date: {error}") from None
    if name == "format":
        if len(arguments) != 2 or not isinstance(arguments[0], datetime) or not isinstance(arguments[1], str):
            raise ExpressionError("format takes a date and a pattern")
        return format_date(arguments[0], arguments[1])
    if name not in FUNCTIONS:
        raise ExpressionError(f"unknown function '{name}'")
    when = arguments[0] if arguments else None
    if not isinstance(when, datetime):
        raise ExpressionError(f"{name} needs a date as its first argument")
    if name in SHIFTS:
        if len(arguments) != 2 or not isinstance(arguments[1], int):
            raise ExpressionError(f"{name} takes a date and a whole number")
        return shift(when, name, arguments[1])
    if len(arguments) != 1:
        raise ExpressionError(f"{name} takes one date")
    parts = {"year": when.year, "month": when.month, "day": when.day, "hour": when.hour, "minute": when.minute,
               "dayOfYear": when.timetuple().tm_yday}
    if name in parts:
        return parts[name]
    try:
        if name == "midnight":
            return when.replace(hour=0, minute=0, second=0, microsecond=0)
        if name == "firstOfMonth":
            return when.replace(day=1)
        if name == "yesterday":
            return when - timedelta(days=1)
        return when - timedelta(days=(when.weekday() + 1) % 7)  # sunday: the same day when it is a Sunday
    except OverflowError:
        raise ExpressionError(f"{name} gives a date outside the years 1 to 9999") from None


def check_shift(name: str, amount: int) -> None:
    """Refuses a shift that takes every date out of the years 1 to 9999 (so none is ever tried at length)."""
    unit = name.removeprefix("plus").removeprefix("minus")
    if abs(amount) > _LARGEST_SHIFT[unit]:
        raise ExpressionError(f"{name} gives a date outside the years 1 to 9999")


def shift(when: datetime, name: str, amount: int) -> datetime:
    """`plusDays(when, 3)`, `minusMonths(when, 1)`, ...: months and years keep the day, or the month's last one."""
    check_shift(name, amount)
    unit = name.removeprefix("plus").removeprefix("minus")
    signed = amount if name.startswith("plus") else -amount
    try:
        if unit in ("Months", "Years"):
            months = when.month - 1 + signed * (12 if unit == "Years" else 1)
            year, month = when.year + months // 12, months % 12 + 1
            if not 1 <= year <= 9999:
                raise ValueError(year)
            return when.replace(year=year, month=month, day=min(when.day, calendar.monthrange(year, month)[1]))
        return when + timedelta(**{unit.lower(): signed})
    except (ValueError, OverflowError):
        raise ExpressionError(f"{name} gives a date outside the years 1 to 9999") from None


def period_shift(period: str) -> tuple[str, int] | None:
    """A schedule's period ("1 day", "15 Minutes") as the function that adds it: ("plusDays", 1)."""
    match = _PERIOD.fullmatch(period)
    if match is None:
        return None
    return f"plus{match.group(2).capitalize()}s", int(match.group(1))


# ----------------------------------------------------------------------------------------------------------------------
# Joda-Time patterns

_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = tuple(calendar.month_name)[1:]  # the C locale's English names, as Data Pipeline prints them
_PATTERN_LETTERS = "GCYxweEyDMdaKhHkmsSzZ"
_LITERAL = re.compile(r"[^'A-Za-z]+")  # Joda-Time reads every ASCII letter as a field, anything else as text


def pattern_groups(pattern: str) -> list[tuple[str, str]]:
    """A pattern as ("literal", text) and ("letters", "yyyy") groups; a letter Joda-Time does not know is refused."""
    groups: list[tuple[str, str]] = []
    pos = 0
    while pos < len(pattern):
        char = pattern[pos]
        if char == "'":
            if pattern.startswith("''", pos):  # '' is one quote, inside or outside quoted text
                groups.append(("literal", "'"))
                pos += 2
                continue
            pieces: list[str] = []
            pos += 1
            while True:
                end = pattern.find("'", pos)
                if end < 0:
                    raise ExpressionError("a quote in the format pattern is not closed")
                pieces.append(pattern[pos:end])
                if not pattern.startswith("''", end):
                    break
                pieces.append("'")
                pos = end + 2
            groups.append(("literal", "".join(pieces)))
            pos = end + 1
            continue
        if char.isascii() and char.isalpha():
            if char not in _PATTERN_LETTERS:
                raise ExpressionError(f"the pattern letter '{char}' is not one of Joda-Time's ({_PATTERN_LETTERS})")
            end = pos
            while end < len(pattern) and pattern[end] == char:
                end += 1
            groups.append(("letters", pattern[pos:end]))
            pos = end
            continue
        literal = _LITERAL.match(pattern, pos)
        end = literal.end() if literal else pos + 1
        groups.append(("literal", pattern[pos:end]))
        pos = end
    return groups


def check_pattern(pattern: str) -> None:
    """Refuses a pattern `format` cannot print, or one whose result could pass the length limit."""
    if len(pattern) * MAX_PATTERN_GROWTH > MAX_RESULT_LENGTH:
        raise ExpressionError(f"the format pattern is longer than {MAX_RESULT_LENGTH // MAX_PATTERN_GROWTH} "
                              "characters")
    pattern_groups(pattern)


def format_date(when: datetime, pattern: str) -> str:
    """`when` (UTC) printed with a Joda-Time pattern, in English, as Data Pipeline's `format` prints it."""
    check_pattern(pattern)
    return "".join(text if kind == "literal" else _field(when, text) for kind, text in pattern_groups(pattern))


def _number(value: int, letters: str) -> str:
    return str(value).zfill(len(letters))


def _text(value: str, letters: str) -> str:
    return value if len(letters) >= 4 else value[:3]  # four letters or more: the full form, else the short one


def _field(when: datetime, letters: str) -> str:
    letter = letters[0]
    iso_year, iso_week, iso_day = when.isocalendar()
    twelve = when.hour % 12
    if letter in "yYx":
        year = iso_year if letter == "x" else when.year
        return f"{year % 100:02d}" if len(letters) == 2 else _number(year, letters)
    numbers = {"C": when.year // 100, "w": iso_week, "e": iso_day, "D": when.timetuple().tm_yday, "d": when.day,
               "K": twelve, "h": twelve or 12, "H": when.hour, "k": when.hour or 24, "m": when.minute,
               "s": when.second}
    if letter in numbers:
        return _number(numbers[letter], letters)
    if letter == "M":
        return _text(_MONTH_NAMES[when.month - 1], letters) if len(letters) >= 3 else _number(when.month, letters)
    if letter == "E":
        return _text(_DAY_NAMES[when.weekday()], letters)
    if letter == "S":  # fraction of the second, truncated to as many digits as letters
        return f"{when.microsecond:06d}000"[: len(letters)].ljust(len(letters), "0")
    if letter == "a":
        return "AM" if when.hour < 12 else "PM"
    if letter == "G":
        return "AD"
    if letter == "z":  # a run's times are UTC
        return "Coordinated Universal Time" if len(letters) >= 4 else "UTC"
    return {1: "+0000", 2: "+00:00"}.get(len(letters), "UTC")  # Z: the offset, or the zone's id from ZZZ on


# ----------------------------------------------------------------------------------------------------------------------
# Trees evaluated when a run starts


def as_text(value: Value) -> str:
    """How a value reads in text: a date with `DEFAULT_PATTERN`."""
    if isinstance(value, datetime):
        return format_date(value, DEFAULT_PATTERN)
    return str(value)


def parse_time(text: object, what: str) -> datetime:
    """A run's time as Step Functions gives it (`2024-01-31T06:00:00Z`, fractions and offsets too), in UTC."""
    if not isinstance(text, str) or len(text) > 64:
        raise ExpressionError(f"'{what}' must be a timestamp such as 2024-01-31T06:00:00Z")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ExpressionError(f"'{what}' must be a timestamp such as 2024-01-31T06:00:00Z, not {text!r}") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def longest_text(tree: Any) -> int:
    """The most characters a tree's value can have as text (the importer bounds a run's values with it)."""
    if isinstance(tree, dict) and tree.get("function") == "format" and len(tree.get("arguments", [])) == 2:
        return len(str(tree["arguments"][1])) * MAX_PATTERN_GROWTH
    if isinstance(tree, dict) and tree.get("function") in NUMBER_RESULTS:
        return 4  # a year, day, hour, minute or day of the year
    return len(DEFAULT_PATTERN)  # a date, printed with the default pattern


def evaluate(tree: Any, times: Mapping[str, datetime], depth: int = 0) -> Value:
    """A tree the importer wrote, with the run's times."""
    if depth > MAX_TREE_DEPTH:
        raise ExpressionError(f"the expression nests deeper than {MAX_TREE_DEPTH} levels")
    if isinstance(tree, bool):
        raise ExpressionError("an expression holds true or false, which no function takes")
    if isinstance(tree, int | str):
        return tree
    if isinstance(tree, dict) and set(tree) == {"time"}:
        if tree["time"] not in times:
            raise ExpressionError(f"unknown run time {str(tree['time'])[:40]!r}")
        return times[tree["time"]]
    if isinstance(tree, dict) and set(tree) == {"function", "arguments"} and isinstance(tree["arguments"], list):
        arguments = [evaluate(argument, times, depth + 1) for argument in tree["arguments"]]
        return call(str(tree["function"]), arguments)
    raise ExpressionError("an expression must be a number, a text, a run time or a function call")


def evaluate_all(expressions_json: str, times: Mapping[str, datetime]) -> dict[str, str]:
    """Every expression of a run (a JSON object of name -> tree) as text."""
    try:
        expressions = json.loads(expressions_json)
    except (ValueError, RecursionError):
        raise ExpressionError("the expressions are not JSON") from None
    if not isinstance(expressions, dict):
        raise ExpressionError("the expressions must be a JSON object of name -> expression")
    values: dict[str, str] = {}
    length = 0
    for name, tree in expressions.items():
        try:
            values[name] = as_text(evaluate(tree, times))
        except ExpressionError as error:
            raise ExpressionError(f"{name}: {error}") from None
        length += len(values[name])
        if length > MAX_RESULT_LENGTH:
            raise ExpressionError(f"the values are longer than {MAX_RESULT_LENGTH} characters together")
    return values
