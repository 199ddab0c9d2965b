"""Amazon S3 multipart uploads and checksums, as the bundle store uses them (the S3 user guide's rules).

The expected ETags and checksums are worked out here from the bytes, by the rules S3 documents: a multipart ETag
is the MD5 of the parts' binary MD5s followed by `-<number of parts>`; a composite checksum is the checksum of the
parts' binary checksums followed by `-<number of parts>`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

MIB = 1024 * 1024
PART_ONE = b"a" * (5 * MIB)  # every part but the last must be at least 5 MiB
PART_TWO = b"tail of the bundle"


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_a_multipart_upload_with_sha256_checksums(clients: Callable[[str], Any], bucket: str) -> None:
    s3 = clients("s3")
    key = "bundles/data.bin"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")["UploadId"]
    parts = []
    for number, body in ((1, PART_ONE), (2, PART_TWO)):
        sent = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body, ChecksumAlgorithm="SHA256"
        )
        assert sent["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
        assert sent["ChecksumSHA256"] == sha256_b64(body)
        parts.append({"PartNumber": number, "ETag": sent["ETag"], "ChecksumSHA256": sent["ChecksumSHA256"]})
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [(1, len(PART_ONE)), (2, len(PART_TWO))]
    assert not s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents")  # not visible before completion

    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == len(PART_ONE) + len(PART_TWO)
    part_md5s = hashlib.md5(hashlib.md5(PART_ONE).digest() + hashlib.md5(PART_TWO).digest()).hexdigest()
    assert head["ETag"] == f'"{part_md5s}-2"'
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == PART_ONE + PART_TWO


def test_a_multipart_object_carries_its_composite_checksum(clients: Callable[[str], Any], bucket: str) -> None:
    s3 = clients("s3")
    key = "bundles/composite.bin"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")["UploadId"]
    parts = []
    for number, body in ((1, PART_ONE), (2, PART_TWO)):
        sent = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body, ChecksumAlgorithm="SHA256"
        )
        parts.append({"PartNumber": number, "ETag": sent["ETag"], "ChecksumSHA256": sent["ChecksumSHA256"]})
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    composite = base64.b64encode(
        hashlib.sha256(hashlib.sha256(PART_ONE).digest() + hashlib.sha256(PART_TWO).digest()).digest()
    ).decode()
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == f"{composite}-2"
    got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert got["ChecksumSHA256"] == f"{composite}-2"


def test_a_small_part_before_the_last_is_refused_at_completion(clients: Callable[[str], Any], bucket: str) -> None:
    s3 = clients("s3")
    key = "bundles/small.bin"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    for number, body in ((1, b"too small"), (2, PART_TWO)):
        sent = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
        parts.append({"PartNumber": number, "ETag": sent["ETag"]})
    with pytest.raises(ClientError) as refused:
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    assert refused.value.response["Error"]["Code"] == "EntityTooSmall"
    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    with pytest.raises(ClientError) as gone:
        s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert gone.value.response["Error"]["Code"] == "NoSuchUpload"


def test_a_put_with_a_wrong_checksum_is_refused_and_stores_nothing(clients: Callable[[str], Any], bucket: str) -> None:
    s3 = clients("s3")
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="bundles/bad.bin", Body=b"payload", ChecksumSHA256=sha256_b64(b"other"))
    assert refused.value.response["Error"]["Code"] in ("BadDigest", "InvalidRequest")
    assert not s3.list_objects_v2(Bucket=bucket, Prefix="bundles/bad.bin").get("Contents")


def test_a_put_checksum_is_returned_and_kept(clients: Callable[[str], Any], bucket: str) -> None:
    s3 = clients("s3")
    sent = s3.put_object(Bucket=bucket, Key="bundles/good.bin", Body=b"payload", ChecksumAlgorithm="SHA256")
    assert sent["ChecksumSHA256"] == sha256_b64(b"payload")
    head = s3.head_object(Bucket=bucket, Key="bundles/good.bin", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == sha256_b64(b"payload")
