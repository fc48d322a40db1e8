"""Listings of the command line: rich tables that stay readable in an 80-column terminal, and ``--json``.

Key columns (names, ids, numbers, times) never wrap; free text (descriptions) is cut to one line with an ellipsis
and gives up its width first; columns marked ``wide`` appear only when the terminal has room for them. ``--json``
prints the full rows, nothing cut, for scripts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

__all__ = ["WIDE_TERMINAL", "Column", "listing_table", "print_json"]

WIDE_TERMINAL = 120  # columns from which ``wide`` columns are shown


@dataclass(frozen=True)
class Column:
    """One column of a listing: ``key`` (never wraps, cut at ``max_width``), ``number`` (right-aligned, never
    wraps) or ``text`` (one line, cut with an ellipsis to what the other columns leave)."""

    header: str
    kind: Literal["key", "number", "text"] = "key"
    max_width: int | None = None
    wide: bool = False


def listing_table(
    columns: Sequence[Column], rows: Iterable[Sequence[Any]], *, console: Console, title: str | None = None
) -> RenderableType:
    """A table of ``rows`` (one value per column, ``None`` shown as ``-``) fitted to ``console``'s width, under
    ``title`` (one line, never wrapped to the table's width)."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    shown = [i for i, column in enumerate(columns) if console.width >= WIDE_TERMINAL or not column.wide]
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for i in shown:
        column = columns[i]
        table.add_column(column.header, justify="right" if column.kind == "number" else "left",
                         no_wrap=column.kind != "text", overflow="ellipsis", max_width=column.max_width)
    for row in rows:
        cells = ["-" if row[i] is None else str(row[i]) for i in shown]
        # a text cell keeps one line: the column may shrink (it is the one that gives way), the cell never wraps
        table.add_row(*(Text(cell, no_wrap=True, overflow="ellipsis") if columns[i].kind == "text" else cell
                        for i, cell in zip(shown, cells, strict=True)))
    return Group(Text(title, style="table.title", no_wrap=True, overflow="ellipsis"), table) if title else table


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (dates as ISO text, Chinese as is)."""
    import typer

    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
