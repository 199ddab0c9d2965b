"""S3 refuses an object or part whose declared checksum does not match its bytes (moto stores it regardless).

A client that sends `x-amz-checksum-<algorithm>` (boto3 with `ChecksumSHA256=...`, or its trailing checksum)
expects S3 to check it: `BadDigest`, nothing stored. The bundle store relies on that to never keep a corrupted
bundle, so the emulator checks too, for the algorithms it can compute exactly (SHA256, SHA1, CRC32).

HeadObject with `ChecksumMode=ENABLED` gives a multipart object's composite checksum as S3 does,
`<checksum of the parts' checksums>-<number of parts>` (moto left the suffix out; its GetObject has it).
"""

from __future__ import annotations

from typing import Any

from moto.s3.exceptions import S3ClientError
from moto.s3.responses import S3Response
from moto.s3.utils import compute_checksum

from datapipe.local.seams import seam

DECLARED_CHECKSUM = seam(
    S3Response, "_get_checksum", ("self", "response_headers"), "a declared checksum that does not match is BadDigest"
)
HEAD_OBJECT = seam(
    S3Response,
    "head_object",
    ("self", "bucket_name", "query", "key_name", "headers"),
    "a multipart object's composite checksum carries its number of parts, as GetObject gives it",
)
VERIFIED_ALGORITHMS = ("SHA256", "SHA1", "CRC32")  # moto computes CRC32C and CRC64NVME only with optional packages


class BadDigest(S3ClientError):
    def __init__(self, algorithm: str) -> None:
        super().__init__("BadDigest", f"The {algorithm} you specified did not match the calculated checksum.")


def _declared_header(self: S3Response) -> tuple[str, str] | None:
    """A checksum sent as its own header (`x-amz-checksum-sha256: ...`) without the SDK's algorithm header."""
    for algorithm in VERIFIED_ALGORITHMS:
        value = self.headers.get(f"x-amz-checksum-{algorithm.lower()}")
        if value:
            return algorithm, value
    return None


def _checked(self: S3Response, response_headers: dict[str, Any]) -> tuple[str, str | None]:
    algorithm, declared = DECLARED_CHECKSUM.call_original(self, response_headers)
    if not algorithm and (header := _declared_header(self)) is not None:
        # moto reads a checksum header only next to x-amz-sdk-checksum-algorithm; S3 takes it alone too.
        algorithm, declared = header
        response_headers[f"x-amz-checksum-{algorithm.lower()}"] = declared
    upper = (algorithm or "").upper()
    if declared and upper in VERIFIED_ALGORITHMS:
        actual = compute_checksum(self.body or b"", algorithm=upper)
        actual_text = actual.decode() if isinstance(actual, bytes) else str(actual)
        if actual_text != declared:
            raise BadDigest(upper)
    return algorithm, declared


def _head_object(
    self: S3Response, bucket_name: str, query: dict[str, Any], key_name: str, headers: dict[str, Any]
) -> Any:
    status, response_headers, body = HEAD_OBJECT.call_original(self, bucket_name, query, key_name, headers)
    if status != 200 or headers.get("x-amz-checksum-mode") != "ENABLED" or query.get("partNumber"):
        return status, response_headers, body
    version_id = query.get("versionId", [None])[0]
    key: Any = self.backend.head_object(bucket_name, key_name, version_id=version_id)
    if key is not None and key.checksum_algorithm and key.checksum_type == "COMPOSITE" and key.checksum_parts:
        header = f"x-amz-checksum-{key.checksum_algorithm.lower()}"
        response_headers[header] = f"{key.checksum_value}-{key.checksum_parts}"
        response_headers["x-amz-checksum-type"] = key.checksum_type
    return status, response_headers, body


def install() -> None:
    DECLARED_CHECKSUM.patch(_checked)
    HEAD_OBJECT.patch(_head_object)
