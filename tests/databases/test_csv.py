"""The CSV stream: every way a record can be cut across chunks, hostile bytes, and linear time on a huge field."""

from __future__ import annotations

import gzip
import time

import pytest

from datapipe.databases.csvstream import CsvReader, format_row
from datapipe.databases.operations import READ_CHUNK_BYTES, gunzipped
from datapipe.errors import DatapipeError

# Worked by hand: PostgreSQL's CSV convention (unquoted empty = NULL, "" = empty string), quotes doubled.
TEXT = '1,,"",plain,"a ""q"", b","l1\nl2"\r\n2,x\n'
RECORDS = [["1", None, "", "plain", 'a "q", b', "l1\nl2"], ["2", "x"]]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_records_cut_anywhere(size: int) -> None:
    data = TEXT.encode()
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    assert list(CsvReader(chunks, where="w")) == RECORDS


def test_writer_matches_the_convention() -> None:
    assert format_row([1, None, "", "plain", 'a "q", b', "l1\nl2"]) == '1,,"",plain,"a ""q"", b","l1\nl2"\n'
    assert format_row(["a\tb", "c"], delimiter="\t") == '"a\tb"\tc\n'


def test_multibyte_characters_cut_between_chunks() -> None:
    data = "é,✓\n".encode()
    assert list(CsvReader([data[i : i + 1] for i in range(len(data))], where="w")) == [["é", "✓"]]


def test_last_line_without_newline_and_empty_input() -> None:
    assert list(CsvReader([b"a,b"], where="w")) == [["a", "b"]]
    assert list(CsvReader([], where="w")) == []


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b'1,"open\n2,x\n', "record 1 is not valid CSV"),
        (b'ok\n1,ab"c\n', "record 2 is not valid CSV"),
        (b"1,\xff\xfe\n", "record 1 is not UTF-8 text"),
    ],
)
def test_hostile_input_is_one_line(data: bytes, needle: str) -> None:
    with pytest.raises(DatapipeError) as caught:
        list(CsvReader([data], where="Node.input s3://b/k"))
    assert str(caught.value).startswith("Node.input s3://b/k: ")
    assert needle in str(caught.value)


@pytest.mark.parametrize("delimiter", ['"', "\n", ",,", ""])
def test_bad_delimiters(delimiter: str) -> None:
    with pytest.raises(DatapipeError, match="delimiter"):
        CsvReader([b""], delimiter=delimiter, where="w")


def test_huge_quoted_field_in_small_chunks_is_linear() -> None:
    """A 4 MB quoted field read 4 kB at a time: each doubling of the buffer rescans it, not each chunk."""

    def seconds(size: int) -> float:
        data = b'"' + b"x" * size + b'"\n'
        chunks = (data[i : i + 4096] for i in range(0, len(data), 4096))
        started = time.perf_counter()
        [[value]] = list(CsvReader(chunks, where="w"))
        assert value is not None and len(value) == size
        return time.perf_counter() - started

    small, large = seconds(1_000_000), seconds(4_000_000)
    assert large < 1.0
    assert large < small * 12  # four times the input; quadratic would be about sixteen times


def test_unterminated_huge_field_fails_in_linear_time() -> None:
    """No catastrophic backtracking: 8 MB after an opening quote is refused in well under a second."""
    data = b'1,"' + b"x" * 8_000_000
    started = time.perf_counter()
    with pytest.raises(DatapipeError, match="record 1 is not valid CSV"):
        list(CsvReader((data[i : i + 65536] for i in range(0, len(data), 65536)), where="w"))
    assert time.perf_counter() - started < 2.0


def test_gunzip_members_and_cuts() -> None:
    data = bytes(range(256)) * 40_000 + b"x" * 3_000_000
    compressed = gzip.compress(data) + gzip.compress(b"second member")
    for size in (7, 1000, len(compressed)):
        pieces = [compressed[i : i + size] for i in range(0, len(compressed), size)]
        assert b"".join(gunzipped(pieces, where="w")) == data + b"second member"


def test_gunzip_bomb_comes_out_in_bounded_pieces() -> None:
    """200 MB of zeros in a 200 kB object: never more than one read chunk at a time."""
    bomb = gzip.compress(b"\0" * 200_000_000)
    total = 0
    for piece in gunzipped([bomb], where="w"):
        assert len(piece) <= READ_CHUNK_BYTES
        total += len(piece)
    assert total == 200_000_000


@pytest.mark.parametrize(
    ("data", "needle"), [(b"plain text", "not gzip data"), (gzip.compress(b"a" * 999)[:-5], "truncated")]
)
def test_gunzip_refuses_bad_data(data: bytes, needle: str) -> None:
    with pytest.raises(DatapipeError, match=needle):
        list(gunzipped([data], where="w"))
