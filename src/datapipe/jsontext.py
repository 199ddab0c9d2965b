"""Reading JSON that a user, a file or a remote hands us: every failure is one line naming where it came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datapipe.errors import DatapipeError

SHOWN_CHARACTERS = 60  # of a bad value quoted in a message: enough to recognise it, never a whole document


def shown(value: object) -> str:
    """`value` quoted for a one-line message, cut to a recognisable length."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARACTERS else f"{text[:SHOWN_CHARACTERS]}... ({len(text)} characters)"


def parse_json(text: str | bytes, *, what: str, error: type[DatapipeError] = DatapipeError) -> Any:
    """`json.loads(text)`, with errors as one line naming `what` (an option, a file, an object).

    Python's parser recurses once per nesting level, so a document nested a few thousand deep raises RecursionError;
    it is turned into the same kind of one-line error as a syntax error. `error` is the DatapipeError subclass raised.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as bad:
        raise error(f"{what} is not JSON: {bad.msg} at line {bad.lineno} column {bad.colno}") from None
    except UnicodeDecodeError as bad:
        raise error(f"{what} is not JSON: not UTF-8 text ({bad.reason} at byte {bad.start})") from None
    except RecursionError:
        raise error(f"{what} nests arrays or objects too deeply to be read") from None


def read_json_object(
    path: Path,
    *,
    what: str,
    shape: str = "a JSON object",
    error: type[DatapipeError] = DatapipeError,
    shown_as: str | None = None,
) -> dict[str, Any]:
    """The JSON object in a file that `what` (an option, a setting, a context) names; every failure is one line
    naming `what` and the file (`shown_as`, else its path); `shape` says what the file must hold."""
    name = shown_as or str(path)
    try:
        text = path.read_bytes()
    except OSError as bad:
        raise error(f"{what}: cannot read {name}: {bad.strerror}") from None
    data = parse_json(text, what=f"{what}: {name}", error=error)
    if not isinstance(data, dict):
        raise error(f"{what}: {name} must hold {shape}")
    return data
