"""A small JSON reader for definition files as people wrote them.

Differences from `json.loads`, each needed by real Data Pipeline definitions:
- an object keeps every key/value pair in order, so a repeated key (`"step": ..., "step": ...`) is not lost;
- a trailing comma before `]` or `}` is accepted;
- a raw line break or tab inside a string is kept as it is;
- `//` and `/* */` comments are skipped.
Errors name the line and column, and the place in the document (`objects[3].step`). Nesting deeper than
`MAX_DEPTH`, a lone UTF-16 surrogate (`\ud800` without its pair) and numbers longer than `MAX_NUMBER_LENGTH`
digits are refused: none occurs in a real definition, and each would otherwise end in a traceback later on.
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


MAX_DEPTH = 64  # real definitions nest four levels deep; Python's stack bears far more than this
MAX_NUMBER_LENGTH = 40  # longer numbers would make int() refuse them (sys.get_int_max_str_digits) or eat time

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_WHITESPACE = " \t\r\n\ufeff"


class _Reader:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.pos = 0
        self.path: list[str | int] = []  # keys and indexes from the top to the value being read

    def where(self) -> str:
        """`objects[3].step: `, the place being read; a deep place shows its first steps only."""
        text = ""
        for step in self.path[:4]:
            text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
        if len(self.path) > 4:
            text += "..."
        return f"{text}: " if text else ""

    def fail(self, message: str, pos: int | None = None) -> LaxJsonError:
        at = self.pos if pos is None else pos
        line = self.text.count("\n", 0, at) + 1
        column = at - (self.text.rfind("\n", 0, at) + 1) + 1
        return LaxJsonError(f"{self.source}: {self.where()}{message} at line {line}, column {column}")

    def enter(self) -> None:
        if len(self.path) >= MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH} levels")

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
        self.enter()
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
            self.path.append(printable(key))
            result.pairs.append((key, self.value()))
            self.path.pop()
            char = self.peek()
            if char == ",":
                self.pos += 1  # a trailing comma is fine: the loop then meets '}'
            elif char != "}":
                raise self.fail("expected ',' or '}' after a value")

    def array(self) -> list[Any]:
        self.enter()
        self.expect("[")
        result: list[Any] = []
        while True:
            if self.peek() == "]":
                self.pos += 1
                return result
            self.path.append(len(result))
            result.append(self.value())
            self.path.pop()
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
                pieces.append(self.code_point())
            else:
                raise self.fail(f"bad escape '\\{escape}'", self.pos - 1)

    def hex4(self, at: int) -> int:
        digits = self.text[at : at + 4]
        if len(digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise self.fail("bad \\u escape", at - 2)
        return int(digits, 16)

    def code_point(self) -> str:
        """The character of `\\uXXXX` (self.pos at the `u`), joining a surrogate pair into one character."""
        start = self.pos - 1
        first = self.hex4(self.pos + 1)
        self.pos += 5
        if 0xDC00 <= first <= 0xDFFF:
            raise self.fail(f"a lone surrogate \\u{first:04x} is not a character", start)
        if 0xD800 <= first <= 0xDBFF:
            second = self.hex4(self.pos + 2) if self.text.startswith("\\u", self.pos) else -1
            if not 0xDC00 <= second <= 0xDFFF:
                raise self.fail(f"a lone surrogate \\u{first:04x} is not a character", start)
            self.pos += 6
            return chr(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
        return chr(first)

    def number(self) -> int | float:
        start = self.pos
        allowed = "+-0123456789.eE"
        while self.pos < len(self.text) and self.text[self.pos] in allowed:
            self.pos += 1
        literal = self.text[start : self.pos]
        if len(literal) > MAX_NUMBER_LENGTH:
            raise self.fail(f"a number longer than {MAX_NUMBER_LENGTH} characters", start)
        try:
            return float(literal) if any(c in literal for c in ".eE") else int(literal)
        except ValueError:
            raise self.fail(f"bad number '{literal}'", start) from None


def printable(text: str, limit: int | None = 60) -> str:
    """Text fit for a one-line message: control and unencodable characters escaped, long text shortened."""
    shown = text if limit is None or len(text) <= limit else text[: limit - 3] + "..."
    if shown.isprintable() and not any("\ud800" <= c <= "\udfff" for c in shown):
        return shown
    return shown.encode("unicode_escape", "backslashreplace").decode("ascii")


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
