"""Listings of the CLI (`bundle ls`, `schedule ls`, ...): whole values, whatever the terminal.

On a terminal wide enough for every value, a table. Otherwise (piped, redirected, or a narrow terminal) one record
per line: a header line, then the values separated by tabs, each printed whole, so that ids, names and ARNs are never
cut or folded, and `cut -f`, `awk -F'\\t'` and `grep` read the output. `--json` stays the format for programs.
"""

from __future__ import annotations

from collections.abc import Sequence

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

COLUMN_GAP = 2  # spaces between the columns of the table


def one_line(value: str) -> str:
    """A cell as one line with no tab in it (both would break the one-record-per-line form)."""
    return " ".join(value.split()) if any(c in value for c in "\t\n\r") else value


def print_listing(
    columns: Sequence[str], rows: Sequence[Sequence[str]], *, title: str | None = None, console: Console | None = None
) -> None:
    """Print `rows` under `columns`: a table when it fits a terminal whole, else tab-separated records."""
    console = console or Console()
    cells = [[one_line(str(value)) for value in row] for row in rows]
    widths = [max([len(column), *(len(row[index]) for row in cells)]) for index, column in enumerate(columns)]
    fits = sum(widths) + COLUMN_GAP * (len(columns) - 1) <= console.width
    if console.is_terminal and fits:
        table = Table(*columns, title=title, title_justify="left", box=None, pad_edge=False)
        for column in table.columns:
            column.no_wrap = True
        for row in cells:
            table.add_row(*(Text(value) for value in row))
        console.print(table)
        return
    if title:
        click.echo(f"# {title}")
    click.echo("\t".join(columns))
    for row in cells:
        click.echo("\t".join(row))
