"""The CLI's foundation: version, help, and one-line errors."""

from __future__ import annotations

from click.testing import CliRunner

from datapipe import __version__
from datapipe.cli import COMMANDS, cli


def test_version_is_printed() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"datapipe, version {__version__}"


def test_help_lists_every_registered_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    for name in COMMANDS:
        assert name in result.output


def test_unknown_command_fails() -> None:
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert result.exit_code != 0
    assert "No such command 'frobnicate'" in result.output


def test_synth_outside_a_project_is_one_line_error(clean_cwd: object) -> None:
    result = CliRunner().invoke(cli, ["synth"])
    assert result.exit_code == 2
    assert result.output.startswith("Error: no datapipe project (cdk.json and app.py) at or above ")
    assert result.output.count("\n") == 1


def test_synth_rejects_context_without_equals() -> None:
    result = CliRunner().invoke(cli, ["synth", "-c", "stage"])
    assert result.exit_code == 2
    assert result.output == "Error: context 'stage' must be KEY=VALUE\n"
