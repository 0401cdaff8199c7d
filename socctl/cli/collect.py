"""socctl collect: check collector definitions, replay files, run sources, show counters."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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
@click.option("--retry", is_flag=True,
              help="Put every dead letter through the collectors as they are now (a parser "
                   "added or mended): those that parse are stored and leave the table.")
@click.option("--source", "sources", multiple=True,
              help="With --retry: only the dead letters of these collectors.")
@click.pass_obj
def dead_letter(app: AppContext, limit: int, retry: bool, sources: tuple[str, ...]) -> None:
    """The newest dead-lettered lines with the reason; or --retry them."""
    from socctl.collector.pipeline import retry_dead_letters, store_path
    from socctl.store.sqlite import SqliteStore

    if retry:
        result = retry_dead_letters(app.settings, sources)
        if render.is_json():
            render.emit_json(result.to_dict())
        else:
            render.console.print(f"retried {result.retried}: stored {result.stored}, already "
                                 f"stored {result.duplicates}, still dead {result.dead_letter}")
        return
    if sources:
        raise click.UsageError("--source goes with --retry")

    with SqliteStore(store_path(app.settings), readonly=True) as store:
        items = [d.to_dict() for d in store.dead_letters(limit)]
    if render.is_json():
        render.emit_json(items)
        return
    render.table(f"{len(items)} dead letters", ["source", "origin", "reason", "raw"],
                 ([d["source"], d["origin"], d["reason"], render.shorten(d["raw"], 80)]
                  for d in items))


def _status_table(status: dict[str, Any], previous: dict[str, int], interval: float
                  ) -> Any:
    from rich.table import Table

    t = Table(title="socctl collect", header_style="bold")
    for col in ("source", "listen", "received", "ev/s", "parsed", "dead letter", "shipped",
                "dup", "udp drops", "conn", "refused", "tls fail"):
        t.add_column(col)
    sources = status["sources"]
    assert isinstance(sources, dict)
    for name, s in sources.items():
        rate = (s["received"] - previous.get(name, s["received"])) / interval
        previous[name] = s["received"]
        t.add_row(name, str(s.get("listen") or ", ".join(s.get("files", []))),
                  str(s["received"]), f"{rate:,.0f}", str(s["parsed"]), str(s["dead_letter"]),
                  str(s["shipped"]), str(s["duplicates"]), str(s["udp_drops"]),
                  str(s["connections"]), str(s["connections_refused"]), str(s["tls_failures"]))
    spool = status["spool"]
    sink = status["sink"]
    assert isinstance(spool, dict) and isinstance(sink, dict)
    health = ("healthy", "green") if sink["healthy"] else ("down", "red")
    t.caption = render.styled(
        f"spool {spool['pending_bytes']:,} / {spool['max_bytes']:,} bytes · "
        f"sink {sink['name']} ", health, "" if sink["healthy"] else f" {sink['detail']}",
        f" · stored {sink['stored']:,} · retries {sink['retries']}")
    return t


@group.command("run")
@click.option("--source", "sources", multiple=True, help="Run only these collectors.")
@click.option("--duration", type=float, default=0.0,
              help="Stop after this many seconds (default: until Ctrl-C / SIGTERM).")
@click.option("--status/--no-status", default=None,
              help="Live status table (default: when stdout is a terminal).")
@click.pass_obj
def run(app: AppContext, sources: tuple[str, ...], duration: float, status: bool | None
        ) -> None:
    """Run the collectors in the foreground: sources -> spool -> sink."""
    import signal
    import threading
    import time

    from socctl.collector.definition import load_collection
    from socctl.collector.pipeline import collectors_folder
    from socctl.collector.runtime import Runtime

    runtime = Runtime(app.settings, load_collection(collectors_folder(app.settings)), sources)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    runtime.start(freeze_heap=True)
    render.err_console.print(f"collecting: {', '.join(runtime.status().sources)} "
                             f"(pid {__import__('os').getpid()})", highlight=False)
    for problem in runtime.status().errors:
        render.err_console.print(render.styled(("warning", "yellow"), f": {problem}"),
                                 highlight=False)
    deadline = time.monotonic() + duration if duration > 0 else None
    live_on = render.console.is_terminal if status is None else status
    previous: dict[str, int] = {}
    try:
        if live_on:
            from rich.live import Live

            with Live(console=render.console, refresh_per_second=1) as live:
                while not stop.wait(1.0) and (deadline is None or time.monotonic() < deadline):
                    live.update(_status_table(runtime.status().to_dict(), previous, 1.0))
        else:
            while not stop.wait(0.5) and (deadline is None or time.monotonic() < deadline):
                pass
    finally:
        runtime.stop()
    final = runtime.status(running=False).to_dict()
    if render.is_json():
        render.emit_json(final)


@group.command("stats")
@click.pass_obj
def stats(app: AppContext) -> None:
    """Per-source counters of the running (or last) collector, and the store's totals
    (shown even while the collector content is invalid, with a warning)."""
    from socctl.collector.runtime import read_stats

    data = read_stats(app.settings)
    if render.is_json():
        render.emit_json(data)
        return
    cols = ["received", "parsed", "dead_letter", "spooled", "shipped", "duplicates",
            "rejected", "udp_drops", "connections", "connections_refused", "tls_failures",
            "framing_errors", "auth_failures", "unspooled"]
    state = "collector " + ("running" if data.get("running") else "stopped")
    if data["sources"]:
        render.table(state, ["source", *cols],
                     ([name, *(s.get(c, 0) for c in cols)]
                      for name, s in data["sources"].items()))
    else:
        render.console.print(f"{state}: no source counters")
    store = data.get("store")
    if store:
        render.console.print(f"store {store['path']}: {store['events']} events, "
                             f"{store['dead_letter']} dead letters")
    if data.get("note"):
        render.console.print(data["note"])
    spool = data.get("spool") or {}
    damage = {k: spool.get(k, 0) for k in ("torn_frames", "corrupt_frames", "write_errors")}
    if any(damage.values()):
        render.console.print(render.styled(("warning", "yellow"), ": spool " + ", ".join(
            f"{k.replace('_', ' ')} {v}" for k, v in damage.items() if v)))
    for problem in data.get("errors") or []:
        render.console.print(render.styled(("warning", "yellow"), f": {problem}"))


@group.command("setup-es")
@click.pass_obj
def setup_es(app: AppContext) -> None:
    """Install the ECS index template and ILM policy for logs-socctl.<dataset>-<namespace>."""
    from socctl.collector.definition import load_collection
    from socctl.collector.pipeline import collectors_folder
    from socctl.store.elasticsearch import setup

    conf = load_collection(collectors_folder(app.settings)).settings
    result = setup(conf.elasticsearch, conf.store.retention_days)
    if render.is_json():
        render.emit_json(result)
        return
    render.console.print(f"{result['url']}: ILM policy {result['ilm_policy']} "
                         f"(delete after {result['retention_days']:g} days), index template "
                         f"{result['index_template']} for {result['pattern']}")
