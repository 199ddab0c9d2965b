"""The S3 remote: push then pull gives the same version; half-pushed versions stay invisible; pulls verify."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from datapipe.bundles import transfer
from datapipe.bundles.manifest import BundleError
from datapipe.bundles.remote import Remote, RemoteURL
from datapipe.bundles.store import LocalContext
from tests.bundles.conftest import BUCKET, REMOTE_URL


def test_push_then_pull_into_another_context_gives_the_same_version(
    s3: Any, context: LocalContext, words: Path, data_dir: Path
) -> None:
    manifest = context.commit("words", [words], tags={"source": "test"})
    remote = Remote(REMOTE_URL, "default", client=s3)
    assert remote.push(context, manifest) is True
    assert remote.push(context, manifest) is False  # immutable: already there

    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    prefix = f"team/default/words/{manifest.uuid}/"
    assert keys == [f"{prefix}files/a.txt", f"{prefix}files/more/b.txt", f"{prefix}manifest.json"]

    other = LocalContext(data_dir / "elsewhere", "default")
    found = remote.find("words", tags={"source": "test"})
    assert found == manifest
    assert remote.pull(other, found) is True
    assert other.versions("words") == [manifest]
    assert (other.files_dir(manifest) / "more" / "b.txt").read_text() == "the cat sat\n"
    assert remote.pull(other, found) is False


def test_a_version_whose_push_stopped_half_way_is_not_visible(s3: Any, context: LocalContext, words: Path) -> None:
    manifest = context.commit("words", [words])
    (context.files_dir(manifest) / "more" / "b.txt").unlink()  # the upload of this file will fail
    remote = Remote(REMOTE_URL, "default", client=s3)

    with pytest.raises(BundleError, match=f"push of bundle 'words' version {manifest.uuid}.*No such file"):
        remote.push(context, manifest)
    assert remote.versions() == []
    with pytest.raises(BundleError, match="bundle 'words' is not on remote s3://bundle-remote/team"):
        remote.find("words")
    with pytest.raises(BundleError, match=f"has no version {manifest.uuid}"):
        remote.find("words", version=manifest.uuid)


def test_pull_verifies_every_checksum_and_keeps_nothing_on_mismatch(
    s3: Any, context: LocalContext, words: Path, data_dir: Path
) -> None:
    manifest = context.commit("words", [words])
    remote = Remote(REMOTE_URL, "default", client=s3)
    remote.push(context, manifest)
    s3.put_object(Bucket=BUCKET, Key=f"team/default/words/{manifest.uuid}/files/more/b.txt", Body=b"the cat SAT\n")

    other = LocalContext(data_dir / "elsewhere", "default")
    with pytest.raises(BundleError, match=r"file 'more/b\.txt' does not match its sha256 after download"):
        remote.pull(other, manifest)
    assert other.versions() == []
    assert not any((other.root / ".staging").iterdir())


def test_large_files_go_in_parallel_parts_with_a_progress_bar(
    s3: Any, context: LocalContext, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr(transfer, "PART_SIZE", 5 * transfer.MIB)  # S3's smallest part, to keep the test small
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (48 * 1024))  # 12 MiB: three parts
    manifest = context.commit("big", [big])
    remote = Remote(REMOTE_URL, "default", client=s3, show_progress=True)
    remote.push(context, manifest)

    head = s3.head_object(Bucket=BUCKET, Key=f"team/default/big/{manifest.uuid}/files/big.bin")
    assert head["ETag"].strip('"').endswith("-3")  # a multipart upload of three parts
    other = LocalContext(data_dir / "elsewhere", "default")
    remote.pull(other, manifest)
    assert (other.files_dir(manifest) / "big.bin").read_bytes() == big.read_bytes()
    progress = capsys.readouterr().err
    assert "push big" in progress and "pull big" in progress
    assert "12.6 MB" in progress  # rich's byte counter reached the whole size


def test_remote_url_parsing() -> None:
    assert RemoteURL.parse("s3://bucket-1/a/b/") == RemoteURL("bucket-1", "a/b/")
    assert str(RemoteURL.parse("s3://bucket-1")) == "s3://bucket-1"
    for bad in ("bucket/a", "s3://", "s3://UPPER/a", "http://bucket/a"):
        with pytest.raises(BundleError, match=f"remote '{bad}' must be s3://BUCKET"):
            RemoteURL.parse(bad)


def test_removing_from_the_remote_hides_the_version_first(s3: Any, context: LocalContext, words: Path) -> None:
    manifest = context.commit("words", [words])
    remote = Remote(REMOTE_URL, "default", client=s3)
    remote.push(context, manifest)
    remote.delete(manifest)
    assert remote.versions() == []
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
