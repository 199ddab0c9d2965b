"""`datapipe synth` (python app.py) and `npx cdk synth` both write a template for every stack; bad context fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "CDK_DISABLE_CLI_TELEMETRY": "true"}
    return subprocess.run(args, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=240)


def test_datapipe_synth_writes_every_stack(tmp_path: Path, templates: dict[str, object]) -> None:
    result = _run([str(BIN / "datapipe"), "synth", "-o", str(tmp_path)], tmp_path)
    assert result.returncode == 0, result.stderr
    written = sorted(p.name.removesuffix(".template.json") for p in tmp_path.glob("*.template.json"))
    assert written == sorted(templates)
    assert f"Wrote {len(written)} templates" in result.stdout


def test_cdk_cli_synth_writes_every_stack(tmp_path: Path, templates: dict[str, object]) -> None:
    result = _run(
        [str(BIN / "npx"), "--no-install", "cdk", "synth", "-q", "--no-notices", "-o", str(tmp_path)], tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    written = sorted(p.name.removesuffix(".template.json") for p in tmp_path.glob("*.template.json"))
    assert written == sorted(templates)


def test_bad_context_value_fails_synth_with_one_line(tmp_path: Path) -> None:
    result = _run(
        [str(BIN / "datapipe"), "synth", "-o", str(tmp_path), "-c", "storage.logTransitionDays=soon"], tmp_path
    )
    assert result.returncode == 2
    assert (
        result.stderr == "Error: synth failed: setting 'storage.logTransitionDays' must be a whole number, got 'soon'\n"
    )
    assert not list(tmp_path.glob("*.template.json"))


def test_bad_context_value_fails_cdk_cli_synth(tmp_path: Path) -> None:
    result = _run(
        [
            str(BIN / "npx"),
            "--no-install",
            "cdk",
            "synth",
            "-q",
            "--no-notices",
            "-o",
            str(tmp_path),
            "-c",
            "prefix=NO",
        ],
        tmp_path,
    )
    assert result.returncode != 0
    assert "Error: setting 'prefix' must be a lower-case name, got 'NO'" in result.stderr


def test_bad_pipeline_definition_fails_synth_with_one_line(tmp_path: Path) -> None:
    definitions = tmp_path / "pipelines"
    definitions.mkdir()
    (definitions / "unrunnable.json").write_text(
        '{"objects": [{"id": "Broken", "type": "ShellCommandActivity", "command": "echo hi"}]}'
    )
    outdir = tmp_path / "out"
    result = _run(
        [str(BIN / "datapipe"), "synth", "-o", str(outdir), "-c", f"pipelines.folder={definitions}"], tmp_path
    )
    assert result.returncode == 2
    assert result.stderr == (
        "Error: synth failed: pipeline unrunnable.json cannot be deployed: "
        "Broken.runsOn: ShellCommandActivity needs one of: runsOn, workerGroup\n"
    )
    assert not list(outdir.glob("*.template.json"))
