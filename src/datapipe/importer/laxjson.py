"""A small JSON reader for definition files as people wrote them.

Differences from `json.loads`, each needed by real Data Pipeline definitions:
- an object keeps every key/value pair in order, so a repeated key (`"step": ..., "step": ...`) is not lost;
- a trailing comma before `]` or `}` is accepted;
- a raw line break or tab inside a string is kept as it is;
- `//` and `/* */` comments are skipped.
Errors name the line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datapipe.errors import DatapipeError


class LaxJsonError(DatapipeError):
    """The text is not JSON even by the lax rules above."""


@dataclass
class JsonObject:
    """A JSON object as an ordered list of pairs; keys may repeat."""

    pairs: list[tuple[str, Any]] = field(default_factory=list)

    def get_all(self, key: str) -> list[Any]:
        return [value for name, value in self.pairs if name == key]

    def get(self, key: str, default: Any = None) -> Any:
        values = self.get_all(key)
        return values[-1] if values else default

    def keys(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self.pairs))

    def __contains__(self, key: object) -> bool:
        return any(name == key for name, _ in self.pairs)


_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_WHITESPACE = " \t\r\n\ufeff"


class _Reader:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.pos = 0

    def fail(self, message: str, pos: int | None = None) -> LaxJsonError:
        at = self.pos if pos is None else pos
        line = self.text.count("\n", 0, at) + 1
        column = at - (self.text.rfind("\n", 0, at) + 1) + 1
        return LaxJsonError(f"{self.source}: {message} at line {line}, column {column}")

    def skip_blank(self) -> None:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in _WHITESPACE:
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.fail("unterminated comment")
                self.pos = end + 2
            else:
                return

    def peek(self) -> str:
        self.skip_blank()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            found = self.text[self.pos] if self.pos < len(self.text) else "end of file"
            raise self.fail(f"expected '{char}' but found '{found}'")
        self.pos += 1

    def value(self) -> Any:
        char = self.peek()
        if char == "{":
            return self.object()
        if char == "[":
            return self.array()
        if char == '"':
            return self.string()
        if char == "-" or char.isdigit():
            return self.number()
        for word, result in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return result
        if not char:
            raise self.fail("unexpected end of file")
        raise self.fail(f"unexpected character '{char}'")

    def object(self) -> JsonObject:
        self.expect("{")
        result = JsonObject()
        while True:
            char = self.peek()
            if char == "}":
                self.pos += 1
                return result
            if char != '"':
                raise self.fail("expected a quoted key or '}'")
            key = self.string()
            self.expect(":")
            result.pairs.append((key, self.value()))
            char = self.peek()
            if char == ",":
                self.pos += 1  # a trailing comma is fine: the loop then meets '}'
            elif char != "}":
                raise self.fail("expected ',' or '}' after a value")

    def array(self) -> list[Any]:
        self.expect("[")
        result: list[Any] = []
        while True:
            if self.peek() == "]":
                self.pos += 1
                return result
            result.append(self.value())
            char = self.peek()
            if char == ",":
                self.pos += 1
            elif char != "]":
                raise self.fail("expected ',' or ']' after a value")

    def string(self) -> str:
        start = self.pos
        self.pos += 1  # the opening quote
        text = self.text
        pieces: list[str] = []
        while True:
            end = self.pos
            while end < len(text) and text[end] not in '"\\':
                end += 1
            pieces.append(text[self.pos : end])
            if end >= len(text):
                raise self.fail("unterminated string", start)
            self.pos = end + 1
            if text[end] == '"':
                return "".join(pieces)
            escape = text[self.pos : self.pos + 1]
            if escape in _ESCAPES:
                pieces.append(_ESCAPES[escape])
                self.pos += 1
            elif escape == "u":
                digits = text[self.pos + 1 : self.pos + 5]
                try:
                    pieces.append(chr(int(digits, 16)))
                except ValueError:
                    raise self.fail("bad \\u escape", self.pos - 1) from None
                self.pos += 5
            else:
                raise self.fail(f"bad escape '\\{escape}'", self.pos - 1)

    def number(self) -> int | float:
        start = self.pos
        allowed = "+-0123456789.eE"
        while self.pos < len(self.text) and self.text[self.pos] in allowed:
            self.pos += 1
        literal = self.text[start : self.pos]
        try:
            return float(literal) if any(c in literal for c in ".eE") else int(literal)
        except ValueError:
            raise self.fail(f"bad number '{literal}'", start) from None


def loads(text: str, *, source: str = "<text>") -> Any:
    """Parse `text`; objects come back as `JsonObject` so that repeated keys survive."""
    reader = _Reader(text, source)
    result = reader.value()
    if reader.peek():
        raise reader.fail("unexpected text after the end of the document")
    return result


def to_plain(value: Any) -> Any:
    """The ordinary Python form (dict keeps the last of a repeated key), for places where repeats do not matter."""
    if isinstance(value, JsonObject):
        return {key: to_plain(inner) for key, inner in value.pairs}
    if isinstance(value, list):
        return [to_plain(inner) for inner in value]
    return value
