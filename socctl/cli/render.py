"""Rendering helpers shared by every command: tables for people, stable JSON for scripts."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from socctl.errors import Problem, Severity

_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if c not in (9, 10)}
_CONTROL.update({c: f"\\u{c:04x}" for c in (0x200E, 0x200F, *range(0x202A, 0x202F),
                                              *range(0x2066, 0x206A))})


def printable(text: str) -> str:
    """Control characters as ``\\xNN``: a log line can carry a terminal's escape sequences
    (set the title, clear the screen, rewrite what is shown) or NULs, and an analyst's
    terminal must show them, not obey them. Tab and newline are kept. Bidirectional
    overrides too (``\\u202e``): "invoice\\u202efdp.exe" would show as "invoiceexe.pdf"."""
    return text.translate(_CONTROL)


class PrintableFormatter(logging.Formatter):
    """Log records can quote a peer's bytes (a collector's warning about a line): on a
    terminal they are shown, not obeyed. Tracebacks attached to records only with
    ``tracebacks`` (-vv, --debug): the Elasticsearch client logs one per retry, and an
    unreachable cluster filled the screen with six of them before socctl's own one-line
    error."""

    def __init__(self, fmt: str, tracebacks: bool = False) -> None:
        super().__init__(fmt)
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        if not self.tracebacks and (record.exc_info or record.exc_text or record.stack_info):
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None,
                                            "exc_text": None, "stack_info": None})
        return printable(super().format(record))


class SafeConsole(Console):
    """What socctl prints is mostly the estate's own text: log lines, user names, URLs,
    device configs, a file's content quoted in an error. So markup is off (rich read
    "[/x]" in a log line as a closing tag and raised MarkupError; "[high]" vanished) and
    every string is made :func:`printable`. Styled words are built with :func:`styled`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(markup=False, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(printable(text), **kwargs)


console = SafeConsole()
err_console = SafeConsole(stderr=True)


def styled(*parts: str | tuple[str, str]) -> Text:
    """Plain strings and (text, style) pairs as one line; nothing in them is markup."""
    return Text.assemble(*(printable(p) if isinstance(p, str) else (printable(p[0]), p[1])
                           for p in parts))


def shorten(text: str, limit: int) -> str:
    """At most ``limit`` characters, the cut marked (a cell, not the record: -o json has it
    whole)."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def output_format() -> str:
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if ctx.obj is not None and hasattr(ctx.obj, "output"):
            return str(ctx.obj.output)
        ctx = ctx.parent
    return "table"


def is_json() -> bool:
    return output_format() == "json"


_C1 = re.compile("[\x80-\x9f]")


def emit_json(data: Any) -> None:
    """JSON that any UTF-8 terminal or pipe takes: Vietnamese stays readable, C1 controls
    (CSI is one) are escaped as the C0 ones are, and a text holding bytes that were not
    UTF-8 (a path, a log line: surrogate escapes) is written with every non-ASCII
    character escaped instead of failing the whole output as an internal error."""
    text = json.dumps(data, indent=2, sort_keys=False, default=str, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(data, indent=2, sort_keys=False, default=str, ensure_ascii=True)
    sys.stdout.write(_C1.sub(lambda m: f"\\u{ord(m.group()):04x}", text))
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
        console.print(styled(f"{p.location}: ", (p.severity.value, style), f": {p.message}"),
                      highlight=False, soft_wrap=True)
    verdict = ("ok", "green") if errors == 0 else ("failed", "red")
    console.print(styled(f"{what}: ", verdict, f": {errors} error(s), {warnings} warning(s)"))
