"""The places where the emulator patches moto, each declared once with the signature it expects.

Every extension replaces an attribute of a moto class or module through `Seam.patch`. A seam names the owner, the
attribute and the parameters the original has today (moto pinned in pyproject.toml). `check_all()` reports any seam
whose original disappeared or changed its parameters, so that a moto upgrade fails a test loudly instead of
silently leaving an integration unpatched.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import dataclass, field
from typing import Any

_REGISTRY: list[Seam] = []
_LOCK = threading.Lock()


@dataclass
class Seam:
    owner: Any
    attribute: str
    parameters: tuple[str, ...] | None  # None: not a callable (a property or a constant) -> only existence is checked
    why: str
    absent: bool = False  # an API moto lacks: the attribute is added, and must not exist in moto
    original: Any = field(default=None, init=False)
    patched: bool = field(default=False, init=False)
    _own_attribute: bool = field(default=False, init=False)  # defined on owner itself, not inherited

    @property
    def label(self) -> str:
        owner_name = str(getattr(self.owner, "__qualname__", None) or getattr(self.owner, "__name__", repr(self.owner)))
        module = str(getattr(self.owner, "__module__", None) or "")
        prefix = f"{module}." if module and not owner_name.startswith(module) else ""
        return f"{prefix}{owner_name}.{self.attribute}"

    def current_original(self) -> Any:
        """What moto defines, even after we patched it."""
        if self.patched:
            return self.original
        return inspect.getattr_static(self.owner, self.attribute)

    def problem(self) -> str | None:
        """Why this seam no longer fits moto, or None when it does."""
        if self.absent:
            exists = not self.patched and hasattr(self.owner, self.attribute)
            return f"{self.label} now exists in moto: use it or patch it" if exists else None
        try:
            original = self.current_original()
        except AttributeError:
            return f"{self.label} no longer exists"
        if self.parameters is None:
            return None
        function = original.__func__ if isinstance(original, staticmethod | classmethod) else original
        if not callable(function):
            return f"{self.label} is no longer callable"
        actual = tuple(inspect.signature(function).parameters)
        if actual != self.parameters:
            return f"{self.label} now takes {actual}, the emulator expects {self.parameters}"
        return None

    def patch(self, replacement: Any) -> None:
        """Install `replacement`, once; the original stays reachable as `self.original`."""
        with _LOCK:
            if self.patched:
                return
            trouble = self.problem()
            if trouble:
                raise RuntimeError(f"cannot extend moto: {trouble}")
            if self.absent:
                setattr(self.owner, self.attribute, replacement)
                self.patched = True
                return
            self.original = inspect.getattr_static(self.owner, self.attribute)
            self._own_attribute = self.attribute in vars(self.owner)
            setattr(self.owner, self.attribute, replacement)
            self.patched = True

    def restore(self) -> None:
        """Put moto's original back (an inherited original is uncovered again rather than copied)."""
        with _LOCK:
            if not self.patched:
                return
            if self._own_attribute and not self.absent:
                setattr(self.owner, self.attribute, self.original)
            else:
                delattr(self.owner, self.attribute)
            self.original = None
            self.patched = False

    def call_original(self, *args: Any, **kwargs: Any) -> Any:
        original = self.original
        if isinstance(original, staticmethod):
            return original.__func__(*args, **kwargs)
        return original(*args, **kwargs)


def seam(owner: Any, attribute: str, parameters: tuple[str, ...] | None, why: str) -> Seam:
    """Declare a seam (at import time of the extension module that uses it)."""
    declared = Seam(owner=owner, attribute=attribute, parameters=parameters, why=why)
    _REGISTRY.append(declared)
    return declared


def addition(owner: Any, attribute: str, why: str) -> Seam:
    """Declare an API that moto lacks, added as `owner.attribute`; it fails to install once moto defines it."""
    declared = Seam(owner=owner, attribute=attribute, parameters=None, why=why, absent=True)
    _REGISTRY.append(declared)
    return declared


def all_seams() -> list[Seam]:
    return list(_REGISTRY)


def restore_all() -> None:
    for declared in reversed(_REGISTRY):
        declared.restore()


def check_all() -> list[str]:
    """Every seam that no longer fits the installed moto, as one line each."""
    return [problem for s in _REGISTRY if (problem := s.problem())]
