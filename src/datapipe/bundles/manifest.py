"""The manifest of one bundle version: what it holds, how it was made, and how to check it."""

from __future__ import annotations

import hashlib
import json
import re
import uuid as uuid_module
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from datapipe.errors import DatapipeError
from datapipe.jsontext import parse_json, shown

MANIFEST_FORMAT = 1
MANIFEST_FILE = "manifest.json"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
TAG_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$"
HASH_CHUNK = 1024 * 1024


class BundleError(DatapipeError):
    """A bundle, version, tag or file is unknown, malformed or damaged."""


def check_name(name: str, *, what: str = "bundle") -> str:
    if re.fullmatch(NAME_PATTERN, name) is None:
        raise BundleError(f"{what} name {shown(name)} must be letters, digits, '.', '_' or '-' (at most 128)")
    return name


def check_uuid(value: str) -> str:
    try:
        return str(uuid_module.UUID(value))
    except ValueError:
        raise BundleError(f"version {shown(value)} is not a bundle uuid") from None


def parse_tags(pairs: Iterable[str]) -> dict[str, str]:
    """`key:value` (or a bare `key`, whose value is empty) -> {key: value}."""
    tags: dict[str, str] = {}
    for pair in pairs:
        key, _, value = pair.partition(":")
        if re.fullmatch(TAG_KEY_PATTERN, key) is None:
            raise BundleError(f"tag {shown(pair)} must be KEY or KEY:VALUE with a key of letters, digits, '._/-'")
        tags[key] = value
    return tags


def format_tags(tags: Mapping[str, str]) -> str:
    return ", ".join(f"{key}:{value}" if value else key for key, value in sorted(tags.items()))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_relative_path(path: str) -> str:
    """A file path inside a bundle: relative, '/'-separated, never leaving the bundle."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or any(part in ("", ".", "..") for part in path.split("/")):
        raise BundleError(f"file path {shown(path)} must be relative and stay inside the bundle")
    if not path.isprintable():  # a NUL byte cannot be in a file name; other control characters hide in listings
        raise BundleError(f"file path {shown(path)} holds a control character (such as NUL)")
    return path


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative, '/'-separated
    size: int
    sha256: str


@dataclass(frozen=True)
class InputRef:
    name: str
    uuid: str


@dataclass(frozen=True)
class Lineage:
    """How a version was made: by hand (`transform` None) or by a transform from input versions."""

    transform: str | None = None
    inputs: tuple[InputRef, ...] = ()
    code_version: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    backend: str | None = None

    def same_run_as(self, other: Lineage) -> bool:
        """Would running `other` produce what this version already holds? (Everything but the backend matches.)"""
        return (self.transform, self.inputs, self.code_version, dict(self.parameters)) == (
            other.transform,
            other.inputs,
            other.code_version,
            dict(other.parameters),
        )


@dataclass(frozen=True)
class Manifest:
    name: str
    uuid: str
    created: str  # ISO 8601, UTC, microseconds: sorts in creation order
    tags: Mapping[str, str]
    files: tuple[FileEntry, ...]
    lineage: Lineage = Lineage()

    @staticmethod
    def new(
        name: str,
        files: Iterable[FileEntry],
        *,
        tags: Mapping[str, str] | None = None,
        lineage: Lineage | None = None,
        version: str | None = None,
    ) -> Manifest:
        return Manifest(
            name=check_name(name),
            uuid=check_uuid(version) if version else str(uuid_module.uuid4()),
            created=datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            tags=dict(tags or {}),
            files=tuple(sorted(files, key=lambda entry: entry.path)),
            lineage=lineage or Lineage(),
        )

    @property
    def size(self) -> int:
        return sum(entry.size for entry in self.files)

    def matches(self, tags: Mapping[str, str]) -> bool:
        """Has every wanted tag; an empty wanted value means "has the key"."""
        return all(key in self.tags and (not value or self.tags[key] == value) for key, value in tags.items())

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "name": self.name,
            "uuid": self.uuid,
            "created": self.created,
            "tags": dict(self.tags),
            "files": [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in self.files],
            "lineage": {
                "transform": self.lineage.transform,
                "inputs": [{"name": i.name, "uuid": i.uuid} for i in self.lineage.inputs],
                "code_version": self.lineage.code_version,
                "parameters": dict(self.lineage.parameters),
                "backend": self.lineage.backend,
            },
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    @staticmethod
    def loads(text: str | bytes, *, source: str) -> Manifest:
        data = parse_json(text, what=f"manifest {source}")
        try:
            if data.get("format") != MANIFEST_FORMAT:
                raise BundleError(f"unsupported format {shown(data.get('format'))}")
            lineage = data.get("lineage") or {}
            return Manifest(
                name=check_name(str(data["name"])),
                uuid=check_uuid(str(data["uuid"])),
                created=str(data["created"]),
                tags={str(k): str(v) for k, v in data.get("tags", {}).items()},
                files=tuple(
                    FileEntry(path=check_relative_path(str(f["path"])), size=int(f["size"]), sha256=str(f["sha256"]))
                    for f in data["files"]
                ),
                lineage=Lineage(
                    transform=lineage.get("transform"),
                    inputs=tuple(InputRef(name=str(i["name"]), uuid=str(i["uuid"])) for i in lineage.get("inputs", [])),
                    code_version=lineage.get("code_version"),
                    parameters={str(k): str(v) for k, v in (lineage.get("parameters") or {}).items()},
                    backend=lineage.get("backend"),
                ),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise BundleError(f"manifest {source} is damaged ({type(error).__name__}: {shown(str(error))})") from None
        except DatapipeError as error:  # a name, uuid or file path that fails its check
            raise BundleError(f"manifest {source}: {error}") from None
