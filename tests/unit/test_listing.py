"""Listings print whole values: a table only when every value fits the terminal, else one record per line."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from datapipe.listing import print_listing

ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:datapipe-dev-pipeline-shell-with-dependencies"
ROWS = [("shell-with-dependencies", ARN, "[bold]not markup[/]")]


def test_a_terminal_wide_enough_gets_a_table_of_whole_values() -> None:
    out = io.StringIO()
    print_listing(("name", "arn", "note"), ROWS, console=Console(file=out, force_terminal=True, width=200))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert ARN in lines[1] and "[bold]not markup[/]" in lines[1]


@pytest.mark.parametrize("terminal", [True, False], ids=["narrow terminal", "piped"])
def test_otherwise_one_record_per_line_never_cut(terminal: bool, capsys: pytest.CaptureFixture[str]) -> None:
    console = Console(file=io.StringIO(), force_terminal=terminal, width=80)
    print_listing(("name", "arn", "note"), [*ROWS, ("tab\there", "new\nline", "")], title="Workflows", console=console)
    assert capsys.readouterr().out.splitlines() == [
        "# Workflows",
        "name\tarn\tnote",
        f"shell-with-dependencies\t{ARN}\t[bold]not markup[/]",
        "tab here\tnew line\t",
    ]
