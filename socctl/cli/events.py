"""socctl events: search the event store (embedded SQLite or Elasticsearch)."""

from __future__ import annotations

import time

import click

from socctl.cli import render
from socctl.cli.main import AppContext
from socctl.cli.options import duration_seconds


def parse_since(text: str) -> float:
    """``90s``, ``15m``, ``1h``, ``7d`` -> epoch seconds that long ago."""
    return time.time() - duration_seconds(text)


@click.group("events")
def group() -> None:
    """Normalised (ECS) events collected from the estate."""


@group.command("search")
@click.argument("query", required=False, default="")
@click.option("--since", default=None, help="Only events newer than this (30m, 1h, 7d).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--store", "store_kind", type=click.Choice(["sqlite", "elasticsearch"]),
              default=None, help="Default: the configured sink.")
@click.pass_obj
def search(app: AppContext, query: str, since: str | None, limit: int,
           store_kind: str | None) -> None:
    """Search events: field:value, AND/OR/NOT, ranges field:[a TO b], field:>=400,
    networks source.ip:198.18.4.0/22."""
    from socctl.store.search import search_events

    events = search_events(app.settings, query, since=parse_since(since) if since else None,
                           limit=limit, store=store_kind)
    if render.is_json():
        render.emit_json(events)
        return
    rows = []
    for ev in events:
        e = ev.get("event", {})
        rows.append([ev.get("@timestamp"), e.get("dataset"), e.get("action"),
                     e.get("outcome"), (ev.get("source") or {}).get("ip"),
                     (ev.get("user") or {}).get("name"), (ev.get("host") or {}).get("name"),
                     (ev.get("socctl") or {}).get("site"),
                     render.shorten(str(ev.get("message", "")), 60)])
    render.table(f"{len(rows)} events", ["@timestamp", "dataset", "action", "outcome",
                                         "source.ip", "user", "host", "site", "message"], rows)
