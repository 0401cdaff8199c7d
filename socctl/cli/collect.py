"""socctl collect: check collector definitions, replay files, run sources, show counters."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from socctl.cli import render
from socctl.cli.main import AppContext
from socctl.errors import Severity


@click.group("collect")
def group() -> None:
    """Log collection: syslog, files and SNMP traps -> ECS -> event store."""


@group.command("check")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.pass_obj
def check(app: AppContext, path: Path | None) -> None:
    """Validate collectors/ and list EVERY problem with file:line and field."""
    from socctl.collector.definition import build_collection
    from socctl.collector.pipeline import collectors_folder

    folder = path or collectors_folder(app.settings)
    _, problems = build_collection(folder)
    render.problems(problems, f"collectors {folder}")
    if any(p.severity is Severity.ERROR for p in problems):
        sys.exit(1)


@group.command("replay")
@click.option("--source", "source", required=True, help="Collector definition name.")
@click.option("--sink", "sink", default=None, help="Override the sink (sqlite, elasticsearch).")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_obj
def replay(app: AppContext, source: str, sink: str | None, files: tuple[Path, ...]) -> None:
    """One-shot ingest of existing log files through the collector SOURCE's pipeline."""
    from socctl.collector.pipeline import replay_files

    result = replay_files(app.settings, source, files, sink)
    if render.is_json():
        render.emit_json(result.to_dict())
        return
    render.console.print(f"read {result.read}, stored {result.stored}, dead letter "
                         f"{result.dead_letter}, already stored {result.duplicates}")


@group.command("dead-letter")
@click.option("--limit", default=20, show_default=True)
@click.pass_obj
def dead_letter(app: AppContext, limit: int) -> None:
    """The newest dead-lettered lines with the reason."""
    from socctl.collector.pipeline import store_path
    from socctl.store.sqlite import SqliteStore

    with SqliteStore(store_path(app.settings), readonly=True) as store:
        items = [d.to_dict() for d in store.dead_letters(limit)]
    if render.is_json():
        render.emit_json(items)
        return
    render.table(f"{len(items)} dead letters", ["source", "origin", "reason", "raw"],
                 ([d["source"], d["origin"], d["reason"], d["raw"][:80]] for d in items))
