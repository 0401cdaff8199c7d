"""socctl detect: check, test, run and convert the Sigma rules in detections/."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from socctl.cli import render
from socctl.cli.main import AppContext
from socctl.errors import Severity


def rules_dir(app: AppContext, path: Path | None) -> Path:
    return path or app.settings.project_root / "detections"


def store_path(app: AppContext, path: Path | None) -> Path:
    """The collector's store (SOCCTL_EVENTS_DB, else collect.yaml's store.path)."""
    from socctl.collector.pipeline import store_path as collector_store

    return path or collector_store(app.settings)


rules_option = click.option("--rules", "rules", type=click.Path(path_type=Path),
                            help="Rule file or folder (default: detections/).")
store_option = click.option("--store", "store", type=click.Path(path_type=Path),
                            help="Event store file (default: the collector's store).")


@click.group("detect")
def group() -> None:
    """Sigma detections: validate, test against their events, run, convert."""


@group.command("check")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.pass_obj
def check(app: AppContext, path: Path | None) -> None:
    """Validate every rule (schema, pySigma, fields, tests) with file:line: field."""
    from socctl.detection.loader import check_rules

    folder = rules_dir(app, path)
    ruleset, problems = check_rules(folder)
    render.problems(problems, f"detections {folder} ({len(ruleset.rules)} rules loaded)")
    if any(p.severity is Severity.ERROR for p in problems):
        sys.exit(1)


@group.command("test")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.pass_obj
def test(app: AppContext, path: Path | None) -> None:
    """Replay each rule's fire/quiet test events through the engine."""
    from socctl.detection.loader import load_rules
    from socctl.detection.testing import run_rule_tests

    ruleset = load_rules(rules_dir(app, path), with_tests=True)
    failures = run_rule_tests(ruleset)
    if render.is_json():
        render.emit_json({"rules": len(ruleset.rules), "failures": [str(f) for f in failures]})
    else:
        for f in failures:
            render.console.print(render.styled(("FAIL", "red"), f" {f}"), highlight=False,
                                 soft_wrap=True)
        render.console.print(f"{len(ruleset.rules)} rules, {len(failures)} failure(s)")
    if failures:
        sys.exit(1)


@group.command("run")
@click.option("--all", "all_", is_flag=True, help="Every stored event.")
@click.option("--from", "from_", help="Event time from (ISO 8601 or epoch seconds).")
@click.option("--to", help="Event time to, exclusive.")
@click.option("--since", help="Events of the last duration, e.g. 15m, 24h.")
@click.option("--every", help="Keep running on this schedule (e.g. 1m) from the checkpoint.")
@click.option("--max-runs", type=int, default=0, hidden=True, help="Stop --every after N.")
@rules_option
@store_option
@click.pass_obj
def run_cmd(app: AppContext, all_: bool, from_: str | None, to: str | None,
            since: str | None, every: str | None, max_runs: int, rules: Path | None,
            store: Path | None) -> None:
    """Evaluate the rules (correlations included) over stored events; write alerts.

    Without a range, evaluates what was stored since the last run (checkpoint).
    """
    from socctl.cli.options import duration_seconds
    from socctl.detection.runner import Detector, open_db, parse_time

    ranged = bool(from_ or to)
    if sum((all_, ranged, bool(since), bool(every))) > 1:
        raise click.UsageError("use one of --all, --from/--to, --since, --every")
    since_seconds = duration_seconds(since) if since else 0.0  # bad values fail first
    interval = duration_seconds(every, "--every") if every else 0.0
    detector = Detector.from_path(rules_dir(app, rules), timezone=app.settings.timezone)
    conn = open_db(store_path(app, store))
    try:
        n = 0
        while True:
            if all_:
                result = detector.run(conn)
            elif ranged:
                result = detector.run(conn, ts_from=parse_time(from_) if from_ else None,
                                      ts_to=parse_time(to) if to else None)
            elif since:
                result = detector.run(conn, ts_from=time.time() - since_seconds)
            else:
                result = detector.run(conn, incremental=True)
            _render_run(result.to_dict())
            n += 1
            if not every or (max_runs and n >= max_runs):
                break
            time.sleep(interval)
    finally:
        conn.close()


def _render_run(data: dict[str, object]) -> None:
    if render.is_json():
        render.emit_json(data)
        return
    render.console.print(
        f"{data['rules']} rules over {data['events']} events in {data['seconds']} s: "
        f"{data['hits']} hits, {len(data['new_alerts'])} new alert(s) "  # type: ignore[arg-type]
        f"{data['new_alerts']}, {len(data['updated_alerts'])} updated, "  # type: ignore[arg-type]
        f"{data['suppressed']} suppressed", highlight=False)


@group.command("convert")
@click.option("--target", type=click.Choice(["sqlite", "es-lucene", "esql", "eql",
                                            "kibana-ndjson"]))
@click.option("--live/--committed", default=None,
              help="Convert now in the isolated pySigma 1.x env, or print the committed "
                   "artefact (default: live when the env exists).")
@click.option("--refresh", is_flag=True,
              help="Rewrite detections/.converted/ for every Elasticsearch target.")
@rules_option
@click.pass_obj
def convert(app: AppContext, target: str | None, live: bool | None, refresh: bool,
            rules: Path | None) -> None:
    """Rules as queries for SQLite or an Elasticsearch deployment.

    kibana-ndjson is importable as detection rules (Security > Rules > Import).
    """
    from socctl.detection import convert as conv

    folder = rules_dir(app, rules)
    if refresh:
        python = conv.sigma1_python(app.settings.project_root)
        if python is None:
            raise click.UsageError("--refresh needs .venv-sigma1 (run ./dev test)")
        cache = app.settings.state_dir / "cache" / "pysigma1"
        for path in conv.refresh_committed(folder, python, cache):
            render.err_console.print(f"wrote {path}", highlight=False)
        return
    if target is None:
        raise click.UsageError("--target is required")
    result = conv.convert(folder, target, live=live,
                          cache_dir=app.settings.state_dir / "cache" / "pysigma1")
    for item in result.skipped:
        render.err_console.print(render.styled(("skipped", "yellow"), f" {item['title']} "
                                               f"({item['id']}): {item['reason']}"),
                                 highlight=False, soft_wrap=True)
    sys.stdout.write(result.text())
