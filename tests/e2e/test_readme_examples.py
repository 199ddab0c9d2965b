"""The README's examples run as written against the emulator (issue 12, item 10).

The test reads the shell block under "### Examples" out of README.md and runs it with bash (`-e -u -o pipefail`),
as a user who pasted `datapipe local up`'s `export ...` lines into a second terminal: the session's emulator stands
for `datapipe local up` (the block's first line, which the test checks and leaves out), and the environment is the
one those export lines set, with the project's `.venv/bin` first on PATH (`. .venv/bin/activate`). It runs in a
folder of its own that holds what a checkout holds for these commands (cdk.json, app.py, examples/, pipelines/), so
that the files the examples write do not land in the checkout.

The README's other shell blocks are the two make commands (each run by CI and by the demo tests) and commands that
need a real AWS account (bootstrap, deploy).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

PROJECT_DIR = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def readme_examples() -> str:
    readme = (PROJECT_DIR / "README.md").read_text()
    section = readme.split("\n### Examples\n", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match is not None, "README.md has no shell block under '### Examples'"
    return match.group(1)


def test_the_examples_start_with_the_emulator() -> None:
    first = next(line for line in readme_examples().splitlines() if line.strip())
    assert first == "datapipe local up"


def test_the_readme_examples_run_as_written_against_the_emulator(
    emulator: Any, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    script = readme_examples().replace("datapipe local up\n", "", 1)
    for name in ("cdk.json", "app.py"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    for name in ("examples", "pipelines"):
        (tmp_path / name).symlink_to(PROJECT_DIR / name)
    env = {
        **subprocess_env,
        **emulator.env(),
        "PATH": f"{BIN}{os.pathsep}{subprocess_env.get('PATH', '')}",
        "HOME": str(tmp_path / "home"),
        "COLUMNS": "200",
    }
    (tmp_path / "home").mkdir()
    finished = subprocess.run(
        ["bash", "-e", "-u", "-o", "pipefail", "-c", script],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=420,
    )  # fmt: skip
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output[-6000:]
    assert "Traceback" not in output, output[-6000:]
    # What a reader of the examples sees happen: three EMR runs and the worker's run succeed, the graph is written,
    # the transform's counts come back from the remote.
    assert output.count("SUCCEEDED") >= 4, output[-6000:]
    assert '"status": "SUCCEEDED"' in (tmp_path / "kept.json").read_text()
    assert (tmp_path / "emr-workflow.mmd").read_text().startswith("flowchart")
    assert any(path.is_dir() for path in (tmp_path / "worker").rglob("reports")), "the worker made no 'reports'"
