"""Rendering helpers shared by every command: tables for people, stable JSON for scripts."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from socctl.errors import Problem, Severity

console = Console()
err_console = Console(stderr=True)


def output_format() -> str:
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if ctx.obj is not None and hasattr(ctx.obj, "output"):
            return str(ctx.obj.output)
        ctx = ctx.parent
    return "table"


def is_json() -> bool:
    return output_format() == "json"


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str, ensure_ascii=False))
    sys.stdout.write("\n")


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    t = Table(title=title, header_style="bold")
    for column in columns:
        t.add_column(column)
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    print_whole(t)


def print_whole(renderable: Any) -> None:
    """In a terminal, fit it; piped or redirected (``| grep``, ``> file``), at its natural
    width: rich assumes 80 columns there and cut addresses and names to "203.0…" across
    several lines, which a reader of the file cannot get back. ``COLUMNS`` still wins."""
    if console.is_terminal or os.environ.get("COLUMNS"):
        console.print(renderable)
        return
    natural = Measurement.get(console, console.options.update_width(1 << 16), renderable)
    before = console.width
    console.width = max(before, natural.maximum)
    try:
        console.print(renderable)
    finally:
        console.width = before


def problems(found: list[Problem], what: str) -> None:
    """Every problem on its own line with its location, then a one-line summary."""
    errors = sum(p.severity is Severity.ERROR for p in found)
    warnings = len(found) - errors
    if is_json():
        emit_json({"ok": errors == 0, "errors": errors, "warnings": warnings,
                   "problems": [p.to_dict() for p in found]})
        return
    for p in found:
        style = "red" if p.severity is Severity.ERROR else "yellow"
        console.print(f"{p.location}: [{style}]{p.severity.value}[/{style}]: {p.message}",
                      markup=True, highlight=False, soft_wrap=True)
    verdict = "[green]ok[/green]" if errors == 0 else "[red]failed[/red]"
    console.print(f"{what}: {verdict}: {errors} error(s), {warnings} warning(s)")
