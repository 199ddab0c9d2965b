"""What SqlActivity and CopyActivity do with a SQL database: run a script, copy a query to S3, load S3 into a table.

Each operation takes an open database and an injected S3 client, runs in one transaction (all or nothing), and
turns any failure into one line naming the object and field, with the database's own message.
"""

from __future__ import annotations

import contextlib
import io
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from datapipe.databases.connections import OpenDatabase, driver_message
from datapipe.databases.csvstream import CsvReader, format_row
from datapipe.databases.sqltext import split_script
from datapipe.errors import DatapipeError
from datapipe.naming import BUCKET_NAME_PATTERN

S3_URI = re.compile(rf"s3://(?P<bucket>{BUCKET_NAME_PATTERN})/(?P<key>.*)", re.DOTALL)
MIN_PART_BYTES = 5 * 1024 * 1024  # S3's smallest part but the last
READ_CHUNK_BYTES = 256 * 1024
INSERT_BATCH_ROWS = 1000
GZIP_WBITS = 31  # zlib's gzip container


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str, *, where: str) -> S3Location:
        match = S3_URI.fullmatch(uri)
        if match is None:
            raise DatapipeError(f"{where}: {uri[:120]!r} is not an S3 URI (s3://bucket/key)")
        return cls(match["bucket"], match["key"])

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def _failed(where: str, error: BaseException) -> DatapipeError:
    return DatapipeError(f"{where}: {driver_message(error)}", exit_code=1)


def _rollback(database: OpenDatabase) -> None:
    # the connection may be gone already; the first error is the one to report
    with contextlib.suppress(Exception):
        database.connection.rollback()


def run_script(
    database: OpenDatabase, script: str, arguments: Sequence[str | None] = (), *, where: str, field: str = "script"
) -> list[int]:
    """SqlActivity: the statements of `script` in order, one transaction; `?` take `arguments` in order, as values.

    Returns each statement's row count (-1 where the driver gives none).
    """
    statements = split_script(script, database.engine, where=f"{where}.{field}")
    if not statements:
        raise DatapipeError(f"{where}.{field}: holds no SQL statement")
    wanted = sum(statement.parameter_count for statement in statements)
    if wanted != len(arguments):
        raise DatapipeError(
            f"{where}.scriptArgument: the script has {wanted} ? placeholders but {len(arguments)} arguments"
        )
    counts: list[int] = []
    remaining = list(arguments)
    try:
        with database.connection.cursor() as cursor:
            for number, statement in enumerate(statements, start=1):
                values, remaining = remaining[: statement.parameter_count], remaining[statement.parameter_count :]
                try:
                    cursor.execute(statement.text, values or None)
                except Exception as error:
                    raise DatapipeError(
                        f"{where}.{field}: statement {number} failed: {driver_message(error)}", exit_code=1
                    ) from None
                counts.append(cursor.rowcount)
        database.connection.commit()
    except BaseException:
        _rollback(database)
        raise
    return counts


def copy_query_to_s3(
    database: OpenDatabase,
    select_query: str,
    *,
    s3: Any,
    destination: S3Location,
    delimiter: str = ",",
    gzipped: bool = False,
    part_bytes: int = 8 * 1024 * 1024,
    where: str,
) -> int:
    """CopyActivity SQL -> S3: the rows of `select_query` as CSV at `destination`; returns the row count.

    The result is streamed from a server-side cursor into a multipart upload, so memory holds one part at a time;
    the object appears only when complete (a failed copy aborts the upload).
    """
    statements = split_script(select_query, database.engine, where=f"{where}.selectQuery")
    if len(statements) != 1 or statements[0].parameter_count:
        raise DatapipeError(f"{where}.selectQuery: must be one SELECT statement without ? placeholders")
    part_bytes = max(part_bytes, MIN_PART_BYTES)
    buffer = io.BytesIO()
    compressor = zlib.compressobj(wbits=GZIP_WBITS) if gzipped else None
    upload_id: str | None = None
    parts: list[dict[str, Any]] = []
    rows = 0

    def send_part() -> None:
        nonlocal upload_id
        if upload_id is None:
            upload_id = s3.create_multipart_upload(Bucket=destination.bucket, Key=destination.key)["UploadId"]
        number = len(parts) + 1
        response = s3.upload_part(
            Bucket=destination.bucket,
            Key=destination.key,
            UploadId=upload_id,
            PartNumber=number,
            Body=buffer.getvalue(),
        )
        parts.append({"PartNumber": number, "ETag": response["ETag"]})
        buffer.seek(0)
        buffer.truncate()

    try:
        try:
            cursor = database.server_cursor()
            cursor.execute(statements[0].text)
            for row in _fetch_all(cursor):
                data = format_row(row, delimiter=delimiter).encode("utf-8")
                buffer.write(compressor.compress(data) if compressor else data)
                rows += 1
                if buffer.tell() >= part_bytes:
                    send_part()
            cursor.close()
            database.connection.commit()
            if compressor:
                buffer.write(compressor.flush())
        except DatapipeError:
            raise
        except Exception as error:
            raise _failed(f"{where}.selectQuery", error) from None
        if upload_id is None:
            s3.put_object(Bucket=destination.bucket, Key=destination.key, Body=buffer.getvalue())
        else:
            if buffer.tell():
                send_part()
            s3.complete_multipart_upload(
                Bucket=destination.bucket, Key=destination.key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
    except BaseException:
        _rollback(database)
        if upload_id is not None:
            s3.abort_multipart_upload(Bucket=destination.bucket, Key=destination.key, UploadId=upload_id)
        raise
    return rows


def _fetch_all(cursor: Any) -> Iterator[Sequence[object]]:
    while batch := cursor.fetchmany(2000):
        yield from batch


def s3_objects(s3: Any, source: S3Location, *, where: str, as_prefix: bool = False) -> list[str]:
    """The keys a source names: itself, or every object under it when it ends with `/` (a directoryPath).

    `as_prefix`: every key that starts with it, as Redshift's COPY reads an object path.
    """
    if not as_prefix and not source.key.endswith("/") and source.key:
        return [source.key]
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=source.bucket, Prefix=source.key):
        keys.extend(item["Key"] for item in page.get("Contents", []) if not item["Key"].endswith("/"))
    if not keys:
        raise DatapipeError(f"{where}: no object under {source}", exit_code=1)
    return keys


def copy_s3_to_table(
    database: OpenDatabase,
    insert_query: str,
    *,
    s3: Any,
    source: S3Location,
    delimiter: str = ",",
    gzipped: bool = False,
    batch_rows: int = INSERT_BATCH_ROWS,
    where: str,
) -> int:
    """CopyActivity S3 -> SQL: every CSV record of `source` through `insert_query` (`?` per field); returns rows.

    Records are read in chunks and inserted in batches, all in one transaction: a bad record loads nothing.
    """
    statements = split_script(insert_query, database.engine, where=f"{where}.insertQuery")
    if len(statements) != 1 or not statements[0].parameter_count:
        raise DatapipeError(f"{where}.insertQuery: must be one INSERT statement with a ? for each CSV field")
    statement = statements[0]
    rows = 0
    try:
        with database.connection.cursor() as cursor:
            for key in s3_objects(s3, source, where=f"{where}.input"):
                location = S3Location(source.bucket, key)
                try:
                    body = s3.get_object(Bucket=source.bucket, Key=key)["Body"]
                except s3.exceptions.NoSuchKey:
                    raise DatapipeError(f"{where}.input: {location} does not exist", exit_code=1) from None
                chunks = body.iter_chunks(READ_CHUNK_BYTES)
                if gzipped:
                    chunks = gunzipped(chunks, where=f"{where}.input {location}")
                reader = CsvReader(chunks, delimiter=delimiter, where=f"{where}.input {location}")
                batch: list[list[str | None]] = []
                for record in reader:
                    if len(record) != statement.parameter_count:
                        raise DatapipeError(
                            f"{where}.input {location}: record {reader.line} has {len(record)} fields but insertQuery "
                            f"takes {statement.parameter_count}",
                            exit_code=1,
                        )
                    batch.append(record)
                    if len(batch) >= batch_rows:
                        rows += _insert(cursor, statement.text, batch, where=where, line=reader.line)
                        batch = []
                if batch:
                    rows += _insert(cursor, statement.text, batch, where=where, line=reader.line)
        database.connection.commit()
    except BaseException:
        _rollback(database)
        raise
    return rows


def gunzipped(chunks: Iterable[bytes], *, where: str) -> Iterator[bytes]:
    """The decompressed bytes of a gzip stream (several members too), at most READ_CHUNK_BYTES at a time, so that a
    small object that inflates enormously never sits in memory whole."""
    decompressor, fed = zlib.decompressobj(wbits=GZIP_WBITS), False
    try:
        for chunk in chunks:
            pending = chunk
            while True:
                fed = fed or bool(pending)
                output = decompressor.decompress(pending, READ_CHUNK_BYTES)
                if output:
                    yield output
                if decompressor.eof:  # another member may follow
                    pending = decompressor.unused_data
                    decompressor, fed = zlib.decompressobj(wbits=GZIP_WBITS), False
                    if not pending:
                        break
                    continue
                pending = decompressor.unconsumed_tail
                # an output cut at the limit may leave more inside zlib even when the input is used up
                if not pending and len(output) < READ_CHUNK_BYTES:
                    break
    except zlib.error as error:
        raise DatapipeError(f"{where}: not gzip data ({error})", exit_code=1) from None
    if fed:
        raise DatapipeError(f"{where}: the gzip data is truncated", exit_code=1)


def _insert(cursor: Any, text: str, batch: list[list[str | None]], *, where: str, line: int) -> int:
    try:
        cursor.executemany(text, batch)
    except Exception as error:
        first = line - len(batch) + 1
        raise DatapipeError(
            f"{where}.insertQuery: records {first}-{line} failed: {driver_message(error)}", exit_code=1
        ) from None
    return len(batch)
