"""CSV in both directions, streamed, with NULL and the empty string kept apart.

The convention is PostgreSQL's (and Redshift's COPY ... CSV): an unquoted empty field is NULL, `""` is an empty
string. Fields are quoted when they hold the delimiter, a quote, a line break, or nothing. No header row, as Data
Pipeline's CSV data format and its "Load S3 Data into RDS MySQL Table" template expect.
"""

from __future__ import annotations

import codecs
import datetime
import decimal
import re
from collections.abc import Iterable, Iterator

from datapipe.errors import DatapipeError


def format_value(value: object) -> str | None:
    """A database value as CSV text (None stays None: NULL)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat(sep=" ") if isinstance(value, datetime.datetime) else value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    return str(value)


def format_row(values: Iterable[object], *, delimiter: str = ",") -> str:
    fields = []
    for value in values:
        text = format_value(value)
        if text is None:
            fields.append("")
        elif text == "" or delimiter in text or '"' in text or "\n" in text or "\r" in text:
            fields.append('"' + text.replace('"', '""') + '"')
        else:
            fields.append(text)
    return delimiter.join(fields) + "\n"


class CsvReader:
    """Records of a CSV byte stream, each a list of `str | None`, read chunk by chunk (memory: a chunk, a record).

    `line` counts records for messages: a quoted field with line breaks is still one record.
    """

    def __init__(self, chunks: Iterable[bytes], *, delimiter: str = ",", where: str) -> None:
        if len(delimiter) != 1 or delimiter in '"\r\n':
            raise DatapipeError(
                f"{where}: delimiter {delimiter!r} must be one character other than a quote or line break"
            )
        escaped = re.escape(delimiter)
        self._field = re.compile(rf'(?:"([^"]*(?:""[^"]*)*)"|([^{escaped}"\r\n]*))({escaped}|\r?\n)')
        self._chunks = iter(chunks)
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._where = where
        self._delimiter = delimiter
        self.line = 0

    def __iter__(self) -> Iterator[list[str | None]]:
        buffer, position, at_end = "", 0, False
        record: list[str | None] = []
        while True:
            match = self._field.match(buffer, position)
            if (match is None or match.end() == len(buffer)) and not at_end:
                # the field may go on in the next chunk ("a""b" split in two): read at least as much again as is
                # buffered, so a huge field is scanned a bounded number of times (linear overall)
                buffer = buffer[position:]
                position, wanted = 0, max(len(buffer), 1)
                pieces = [buffer]
                while wanted > 0:
                    chunk = next(self._chunks, None)
                    if chunk is None:
                        at_end = True
                        pieces.append(self._decode(b"", final=True))
                        break
                    text = self._decode(chunk, final=False)
                    pieces.append(text)
                    wanted -= len(text)
                buffer = "".join(pieces)
                if at_end and buffer and not buffer.endswith("\n"):
                    buffer += "\n"
                continue
            if match is None:
                if position < len(buffer):
                    raise DatapipeError(
                        f"{self._where}: record {self.line + 1} is not valid CSV (an unterminated or stray quote?)"
                    )
                return
            quoted, plain, end = match.groups()
            record.append(quoted.replace('""', '"') if quoted is not None else (plain or None))
            position = match.end()
            if end != self._delimiter:
                self.line += 1
                yield record
                record = []

    def _decode(self, data: bytes, *, final: bool) -> str:
        try:
            return self._decoder.decode(data, final)
        except UnicodeDecodeError:
            raise DatapipeError(f"{self._where}: record {self.line + 1} is not UTF-8 text") from None
