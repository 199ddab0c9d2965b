"""The transform API: subclass `Transform`, declare `parameters`, implement `run(inputs, outputs, params)`.

    class WordCount(Transform):
        parameters = {"min_length": 1}

        def run(self, inputs: InputBundle, outputs: OutputBundle, params: Mapping[str, Any]) -> None:
            for name in inputs.files:
                ...
            outputs.write_text("counts.csv", "...")
            outputs.tags["rows"] = "42"

The transform is named by its class path, `module.submodule.Class`, importable from the pipe root folder.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, ClassVar

from datapipe.bundles.manifest import BundleError, Manifest, check_relative_path
from datapipe.bundles.names import check_class_path
from datapipe.errors import DatapipeError
from datapipe.jsontext import shown

ParameterValue = str | int | float | bool


class TransformError(DatapipeError):
    """A transform does not import, is not a Transform, or was given parameters it does not declare."""


class InputBundle:
    """The input version, read-only: its manifest and its files on local disk."""

    def __init__(self, manifest: Manifest, root: Path) -> None:
        self.manifest = manifest
        self.root = root

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def files(self) -> list[str]:
        return [entry.path for entry in self.manifest.files]

    @property
    def tags(self) -> Mapping[str, str]:
        return self.manifest.tags

    def path(self, name: str) -> Path:
        if name not in self.files:
            raise BundleError(f"input bundle '{self.name}' has no file '{name}'")
        return self.root / name

    def open(self, name: str, mode: str = "r") -> IO[Any]:
        return self.path(name).open(mode)

    def read_text(self, name: str) -> str:
        return self.path(name).read_text()


class OutputBundle:
    """The folder the transform writes its files into, and the tags the new version will carry."""

    def __init__(self, name: str, root: Path, tags: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.root = root
        self.tags: dict[str, str] = dict(tags or {})

    def path(self, name: str) -> Path:
        """Where to write file `name` (folders are created); the file joins the output when run() returns."""
        target = self.root / check_relative_path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def write_text(self, name: str, text: str) -> Path:
        target = self.path(name)
        target.write_text(text)
        return target


class Transform:
    """Base class of every transform. `parameters` maps each parameter's name to its default (which sets its type)."""

    parameters: ClassVar[Mapping[str, ParameterValue]] = {}

    def run(self, inputs: InputBundle, outputs: OutputBundle, params: Mapping[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement run(inputs, outputs, params)")


def load_transform(class_path: str, pipe_root: Path | None = None) -> type[Transform]:
    """Import `module.Class` (from `pipe_root` first) and check that it is a Transform subclass."""
    module_name, _, class_name = check_class_path(class_path).rpartition(".")
    if pipe_root is not None and str(pipe_root) not in sys.path:
        sys.path.insert(0, str(pipe_root))
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # the user's module may raise anything while importing
        raise TransformError(
            f"transform '{class_path}': module '{module_name}' does not import ({type(error).__name__}: {error})"
        ) from None
    found = getattr(module, class_name, None)
    if found is None:
        raise TransformError(f"transform '{class_path}': module '{module_name}' has no class '{class_name}'")
    if not (inspect.isclass(found) and issubclass(found, Transform)) or found is Transform:
        raise TransformError(f"transform '{class_path}' is not a subclass of datapipe.bundles.transform.Transform")
    return found


def code_version(transform: type[Transform]) -> str:
    """sha256 of the source file defining the transform: the same code gives the same version anywhere."""
    source = inspect.getsourcefile(transform)
    if source is None:
        return "unknown"
    return "sha256:" + hashlib.sha256(Path(source).read_bytes()).hexdigest()


def parse_parameters(transform: type[Transform], class_path: str, pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`key=value` words -> {key: value}, checked against the parameters the transform declares."""
    given: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise TransformError(f"parameter {shown(pair)} must be NAME=VALUE")
        given[key] = value
    return check_parameters(transform, class_path, given)


def check_parameters(transform: type[Transform], class_path: str, given: Mapping[str, str]) -> dict[str, str]:
    """`given` as it is, once every name is a parameter the transform declares and every value converts to its type."""
    declared = transform.parameters
    for key, value in given.items():
        if key not in declared:
            allowed = ", ".join(sorted(declared)) or "none"
            raise TransformError(f"transform '{class_path}' has no parameter {shown(key)}; it declares: {allowed}")
        convert_parameter(key, value, declared[key])
    return dict(given)


def convert_parameter(key: str, value: str, default: ParameterValue) -> ParameterValue:
    try:
        if isinstance(default, bool):
            lowered = value.strip().lower()
            if lowered not in ("true", "false", "yes", "no", "1", "0"):
                raise ValueError(value)
            return lowered in ("true", "yes", "1")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        expected = type(default).__name__
        raise TransformError(f"parameter '{key}' must be of type {expected}, got {shown(value)}") from None
    return value


def resolved_parameters(transform: type[Transform], given: Mapping[str, str]) -> dict[str, ParameterValue]:
    """Declared defaults overlaid with the given values, each converted to its default's type."""
    return {
        key: convert_parameter(key, given[key], default) if key in given else default
        for key, default in transform.parameters.items()
    }
