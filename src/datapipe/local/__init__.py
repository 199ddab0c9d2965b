"""The embedded emulator: moto's server in-process, the deployer of the cloud assembly, and datapipe's extensions.

`Emulator` is imported lazily so that `import datapipe.local.<module>` does not start importing moto's server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datapipe.local.server import Emulator

__all__ = ["Emulator"]


def __getattr__(name: str) -> Any:
    if name == "Emulator":
        from datapipe.local.server import Emulator

        return Emulator
    raise AttributeError(f"module 'datapipe.local' has no attribute {name!r}")
