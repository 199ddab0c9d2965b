"""The S3 side of bundles: push, pull, list and remove versions under `s3://bucket/prefix/<context>/`.

Remote layout: `<prefix>/<context>/<name>/<uuid>/files/<path>` and, written last, `.../<uuid>/manifest.json`.
A version without its manifest (a push that stopped half way) is never listed nor pulled.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from s3transfer.exceptions import S3UploadFailedError

from datapipe.aws import Target, explain
from datapipe.bundles import transfer
from datapipe.bundles.manifest import MANIFEST_FILE, BundleError, Manifest, check_name, format_tags, sha256_of
from datapipe.bundles.store import FILES_DIR, LocalContext, warn_on_stderr
from datapipe.errors import DatapipeError
from datapipe.naming import BUCKET_NAME_PATTERN

BUCKET_PATTERN = rf"^{BUCKET_NAME_PATTERN}$"


@dataclass(frozen=True)
class RemoteURL:
    bucket: str
    prefix: str  # "" or "a/b/" (always ending with "/")

    @staticmethod
    def parse(url: str) -> RemoteURL:
        match = re.fullmatch(r"s3://([^/]+)/?(.*)", url)
        if match is None or re.fullmatch(BUCKET_PATTERN, match.group(1)) is None:
            raise BundleError(f"remote '{url}' must be s3://BUCKET or s3://BUCKET/PREFIX")
        prefix = match.group(2).strip("/")
        return RemoteURL(bucket=match.group(1), prefix=f"{prefix}/" if prefix else "")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


@contextmanager
def s3_errors(doing: str, target: Target | None = None) -> Iterator[None]:
    """Turn S3 and connection failures into one line that says what was being done (and what to do)."""
    try:
        yield
    except S3UploadFailedError as error:
        raise BundleError(f"{doing}: {error}", exit_code=1) from None
    except (ClientError, BotoCoreError) as error:
        explained = explain(error, target=target, doing=doing)
        raise (explained or BundleError(f"{doing}: {error}", exit_code=1)) from None
    except OSError as error:  # a local file went missing or unreadable mid-transfer
        raise BundleError(
            f"{doing}: {error.strerror or error}: {error.filename or ''}".rstrip(": "), exit_code=1
        ) from None


class Remote:
    """The S3 remote of one context."""

    def __init__(
        self,
        url: str,
        context_name: str,
        *,
        client: Any = None,
        target: Target | None = None,
        show_progress: bool | None = None,
        warn: Callable[[str], None] = warn_on_stderr,
    ) -> None:
        self.url = RemoteURL.parse(url)
        self.target = target
        self.warn = warn
        self.context_name = check_name(context_name, what="context")
        self.client = client or transfer.s3_client(target)
        self.show_progress = show_progress
        self.base = f"{self.url.prefix}{self.context_name}/"

    def version_prefix(self, name: str, version: str) -> str:
        return f"{self.base}{name}/{version}/"

    def check_bucket(self) -> None:
        with s3_errors(f"remote {self.url}: bucket '{self.url.bucket}' is not reachable", self.target):
            self.client.head_bucket(Bucket=self.url.bucket)

    # -- reading ------------------------------------------------------------------------------------------------

    def manifest(self, name: str, version: str) -> Manifest | None:
        key = self.version_prefix(name, version) + MANIFEST_FILE
        try:
            body = self.client.get_object(Bucket=self.url.bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return Manifest.loads(body, source=f"s3://{self.url.bucket}/{key}")

    def _subfolders(self, prefix: str) -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        names = []
        for page in paginator.paginate(Bucket=self.url.bucket, Prefix=prefix, Delimiter="/"):
            names += [entry["Prefix"][len(prefix) :].rstrip("/") for entry in page.get("CommonPrefixes", [])]
        return names

    def versions(self, name: str | None = None) -> list[Manifest]:
        """Every complete version on the remote (of one bundle, or of all), oldest first.

        A manifest that cannot be read as one is left out with a warning naming it: one bad version must not hide
        the others.
        """
        with s3_errors(f"remote {self.url}: cannot list bundles", self.target):
            names = [check_name(name)] if name else self._subfolders(self.base)
            pairs = [(n, v) for n in names for v in self._subfolders(f"{self.base}{n}/")]
            with ThreadPoolExecutor(max_workers=transfer.CONCURRENCY) as pool:
                read = list(pool.map(lambda pair: self._readable_manifest(*pair), pairs))
        found = [m for m in read if m is not None]
        return sorted(found, key=lambda m: (m.created, m.uuid))

    def _readable_manifest(self, name: str, version: str) -> Manifest | None:
        try:
            found = self.manifest(name, version)
        except DatapipeError as error:  # damaged, or not one of ours: skip it (S3 errors still fail the listing)
            self.warn(f"skipped {error}")
            return None
        if found is not None and (found.name, found.uuid) != (name, version):
            self.warn(
                f"skipped manifest s3://{self.url.bucket}/{self.version_prefix(name, version)}{MANIFEST_FILE}: it "
                f"describes bundle '{found.name}' version {found.uuid}, not the folder it is in"
            )
            return None
        return found

    def find(self, name: str, *, version: str | None = None, tags: Mapping[str, str] | None = None) -> Manifest:
        if version:
            with s3_errors(f"remote {self.url}: cannot read bundle '{name}'", self.target):
                found = self.manifest(check_name(name), version)
            if found is None:
                raise BundleError(f"bundle '{name}' has no version {version} on remote {self.url}")
            if tags and not found.matches(tags):
                raise BundleError(f"bundle '{name}' version {version} is not tagged {format_tags(tags)}")
            return found
        candidates = self.versions(name)
        if not candidates:
            raise BundleError(f"bundle '{name}' is not on remote {self.url}")
        if tags:
            candidates = [m for m in candidates if m.matches(tags)]
            if not candidates:
                raise BundleError(f"bundle '{name}' has no version tagged {format_tags(tags)} on remote {self.url}")
        return candidates[-1]

    # -- writing ------------------------------------------------------------------------------------------------

    def push(self, context: LocalContext, manifest: Manifest) -> bool:
        """Upload the files, then the manifest. False when the version was already on the remote."""
        prefix = self.version_prefix(manifest.name, manifest.uuid)
        doing = f"push of bundle '{manifest.name}' version {manifest.uuid} to {self.url}"
        with s3_errors(doing, self.target):
            if self.manifest(manifest.name, manifest.uuid) is not None:
                return False
            files_dir = context.files_dir(manifest)
            transfer.upload(
                self.client,
                self.url.bucket,
                [
                    transfer.FileTransfer(files_dir / e.path, f"{prefix}{FILES_DIR}/{e.path}", e.size)
                    for e in manifest.files
                ],
                label=f"push {manifest.name}",
                show_progress=self.show_progress,
            )
            # Last: only now does the version exist for anyone listing or pulling.
            self.client.put_object(
                Bucket=self.url.bucket,
                Key=prefix + MANIFEST_FILE,
                Body=manifest.dumps().encode(),
                ContentType="application/json",
            )
        return True

    def pull(self, context: LocalContext, manifest: Manifest) -> bool:
        """Download every file, verify every size and sha256, then install. False when already local."""
        if context.has(manifest.name, manifest.uuid):
            return False
        prefix = self.version_prefix(manifest.name, manifest.uuid)
        with context.staging() as staged:
            with s3_errors(f"pull of bundle '{manifest.name}' version {manifest.uuid} from {self.url}", self.target):
                transfer.download(
                    self.client,
                    self.url.bucket,
                    [
                        transfer.FileTransfer(staged / FILES_DIR / e.path, f"{prefix}{FILES_DIR}/{e.path}", e.size)
                        for e in manifest.files
                    ],
                    label=f"pull {manifest.name}",
                    show_progress=self.show_progress,
                )
            with ThreadPoolExecutor(max_workers=4) as pool:  # hashlib releases the GIL on large reads
                digests = list(pool.map(lambda e: sha256_of(staged / FILES_DIR / e.path), manifest.files))
            for entry, digest in zip(manifest.files, digests, strict=True):
                if digest != entry.sha256:
                    raise BundleError(
                        f"bundle '{manifest.name}' version {manifest.uuid}: file '{entry.path}' does not match its "
                        f"sha256 after download (expected {entry.sha256[:12]}..., got {digest[:12]}...); nothing kept",
                        exit_code=1,
                    )
            context.install(staged, manifest)
        return True

    def delete(self, manifest: Manifest) -> None:
        """Remove the manifest first (the version disappears at once), then its files."""
        prefix = self.version_prefix(manifest.name, manifest.uuid)
        with s3_errors(f"removal of bundle '{manifest.name}' version {manifest.uuid} from {self.url}", self.target):
            self.client.delete_object(Bucket=self.url.bucket, Key=prefix + MANIFEST_FILE)
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.url.bucket, Prefix=prefix):
                keys = [{"Key": entry["Key"]} for entry in page.get("Contents", [])]
                if keys:
                    self.client.delete_objects(Bucket=self.url.bucket, Delete={"Objects": keys, "Quiet": True})
