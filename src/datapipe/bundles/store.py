"""The local side of bundles: contexts in the user's data folder, each holding immutable bundle versions.

Layout of a context folder:
    context.json                      {"remote": "s3://bucket/prefix"}
    bundles/<name>/<uuid>/manifest.json
    bundles/<name>/<uuid>/files/...   the bundle's files
    .staging/                         versions being built; renamed into bundles/ only when complete
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid as uuid_module
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import click

from datapipe.bundles.manifest import (
    HASH_CHUNK,
    MANIFEST_FILE,
    BundleError,
    FileEntry,
    Lineage,
    Manifest,
    check_name,
    format_tags,
    sha256_of,
)
from datapipe.errors import DatapipeError
from datapipe.jsontext import read_json_object
from datapipe.listing import one_line

DATA_DIR_ENV = "DATAPIPE_DATA_DIR"
CONTEXT_ENV = "DATAPIPE_CONTEXT"
DEFAULT_CONTEXT = "default"
FILES_DIR = "files"


def warn_on_stderr(message: str) -> None:
    """How bundle stores report what they skipped: one line on stderr, so that stdout stays the listing."""
    click.echo(f"Warning: {one_line(message)}", err=True)


def default_data_dir() -> Path:
    """$DATAPIPE_DATA_DIR, else the XDG data folder ($XDG_DATA_HOME or ~/.local/share) + /datapipe."""
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "datapipe"


def copy_and_hash(source: Path, target: Path) -> FileEntry:
    """Copy one file while computing its sha256, so that a commit reads each byte once."""
    digest = hashlib.sha256()
    size = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as reader, target.open("wb") as writer:
        while chunk := reader.read(HASH_CHUNK):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
    return FileEntry(path="", size=size, sha256=digest.hexdigest())


def collect_sources(sources: Iterable[Path]) -> dict[str, Path]:
    """Bundle path -> local file. A file goes in under its own name; a folder contributes what is inside it."""
    collected: dict[str, Path] = {}
    for source in sources:
        if source.is_dir():
            found = {p.relative_to(source).as_posix(): p for p in sorted(source.rglob("*")) if p.is_file()}
        elif source.is_file():
            found = {source.name: source}
        else:
            raise BundleError(f"path '{source}' does not exist")
        for bundle_path, path in found.items():
            if bundle_path in collected:
                raise BundleError(f"file '{bundle_path}' would be added twice ({collected[bundle_path]} and {path})")
            collected[bundle_path] = path
    return collected


class LocalContext:
    """One named context: a folder of bundle versions and, optionally, the S3 remote they are pushed to."""

    def __init__(self, data_dir: Path, name: str, *, warn: Callable[[str], None] = warn_on_stderr) -> None:
        self.name = check_name(name, what="context")
        self.warn = warn
        self.data_dir = data_dir
        self.root = data_dir / "contexts" / name
        self.bundles_dir = self.root / "bundles"

    # -- configuration ------------------------------------------------------------------------------------------

    @property
    def exists(self) -> bool:
        return self.root.is_dir()

    def _config(self) -> dict[str, str]:
        path = self.root / "context.json"
        if not path.is_file():
            return {}
        data = read_json_object(
            path, what=f"context '{self.name}'", shape='a JSON object such as {"remote": ...}', error=BundleError
        )
        return {str(k): str(v) for k, v in data.items()}

    @property
    def remote(self) -> str | None:
        return self._config().get("remote")

    def require_remote(self) -> str:
        remote = self.remote
        if not remote:
            raise BundleError(
                f"context '{self.name}' has no remote; set one with `datapipe remote {self.name} s3://BUCKET/PREFIX`"
            )
        return remote

    def set_remote(self, url: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        config = {**self._config(), "remote": url}
        temporary = self.root / "context.json.tmp"
        temporary.write_text(json.dumps(config, indent=2) + "\n")
        temporary.replace(self.root / "context.json")

    # -- reading ------------------------------------------------------------------------------------------------

    def versions(self, name: str | None = None) -> list[Manifest]:
        """Every local version (of one bundle, or of all), oldest first."""
        pattern = f"{check_name(name)}/*/{MANIFEST_FILE}" if name else f"*/*/{MANIFEST_FILE}"
        found = [m for m in map(self._readable_manifest, self.bundles_dir.glob(pattern)) if m is not None]
        return sorted(found, key=lambda m: (m.created, m.uuid))

    def _readable_manifest(self, path: Path) -> Manifest | None:
        """The manifest at `path`; a damaged one is left out with a warning naming it, so the others stay usable."""
        try:
            return Manifest.loads(path.read_bytes(), source=str(path))
        except DatapipeError as error:
            self.warn(f"skipped {error}")
        except OSError as error:
            self.warn(f"skipped {path}: {error.strerror}")
        return None

    def find(self, name: str, *, version: str | None = None, tags: Mapping[str, str] | None = None) -> Manifest:
        """The version asked for, or the newest one carrying every tag asked for."""
        candidates = self.versions(name)
        if not candidates:
            raise BundleError(f"bundle '{name}' is not in context '{self.name}'")
        if version:
            chosen = [m for m in candidates if m.uuid == version]
            if not chosen:
                raise BundleError(f"bundle '{name}' has no version {version} in context '{self.name}'")
            candidates = chosen
        if tags:
            candidates = [m for m in candidates if m.matches(tags)]
            if not candidates:
                raise BundleError(f"bundle '{name}' has no version tagged {format_tags(tags)} in context '{self.name}'")
        return candidates[-1]

    def has(self, name: str, version: str) -> bool:
        return (self.bundles_dir / name / version / MANIFEST_FILE).is_file()

    def files_dir(self, manifest: Manifest) -> Path:
        return self.bundles_dir / manifest.name / manifest.uuid / FILES_DIR

    # -- writing ------------------------------------------------------------------------------------------------

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A private folder for a version being built; removed on the way out unless `install` moved it."""
        folder = self.root / ".staging" / uuid_module.uuid4().hex
        (folder / FILES_DIR).mkdir(parents=True)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def install(self, staged: Path, manifest: Manifest) -> Manifest:
        """Write the manifest last, then make the whole version visible with one rename."""
        (staged / MANIFEST_FILE).write_text(manifest.dumps())
        target = self.bundles_dir / manifest.name / manifest.uuid
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # the same immutable version is already here (pulled twice)
            return manifest
        os.replace(staged, target)
        return manifest

    def commit(
        self,
        name: str,
        sources: Iterable[Path],
        *,
        tags: Mapping[str, str] | None = None,
        lineage: Lineage | None = None,
        version: str | None = None,
    ) -> Manifest:
        """A new version of bundle `name` holding copies of `sources` (files, or the contents of folders)."""
        check_name(name)
        collected = collect_sources(sources)
        with self.staging() as staged:
            entries = []
            for bundle_path, source in collected.items():
                copied = copy_and_hash(source, staged / FILES_DIR / bundle_path)
                entries.append(FileEntry(path=bundle_path, size=copied.size, sha256=copied.sha256))
            manifest = Manifest.new(name, entries, tags=tags, lineage=lineage, version=version)
            return self.install(staged, manifest)

    def seal(
        self,
        staged: Path,
        name: str,
        *,
        tags: Mapping[str, str] | None = None,
        lineage: Lineage | None = None,
        version: str | None = None,
    ) -> Manifest:
        """Turn the files written into a staging folder (by a transform) into a new version, in place."""
        files_dir = staged / FILES_DIR
        entries = [
            FileEntry(path=path.relative_to(files_dir).as_posix(), size=path.stat().st_size, sha256=sha256_of(path))
            for path in sorted(files_dir.rglob("*"))
            if path.is_file()
        ]
        return self.install(staged, Manifest.new(name, entries, tags=tags, lineage=lineage, version=version))

    def remove(self, manifest: Manifest) -> None:
        """Hide the version with one rename (manifest and files go together), then delete it."""
        folder = self.bundles_dir / manifest.name / manifest.uuid
        trash = self.root / ".staging" / f"removing-{uuid_module.uuid4().hex}"
        trash.parent.mkdir(parents=True, exist_ok=True)
        os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)
        with contextlib.suppress(OSError):  # the bundle's folder goes once its last version is gone
            folder.parent.rmdir()
