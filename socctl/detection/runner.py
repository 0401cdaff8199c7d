"""``socctl detect run``: evaluate the rules over a range of stored events, write alerts.

Ranges: ``--all``, ``--from/--to`` or ``--since`` (by event time), or by default the rows
stored since the last run (the checkpoint, by rowid: SQLite assigns rowids in commit order
with one writer, so "rowid > checkpoint and <= max rowid at the start of the run" is every
newly stored event exactly once, however late its timestamp).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socctl.config import DEFAULT_TIMEZONE
from socctl.detection.engine import Compiled, Scope, compile_rules, run
from socctl.detection.loader import load_rules
from socctl.detection.model import RuleSet
from socctl.errors import ConfigError, Location
from socctl.triage.store import AlertStore, RecordResult

CHECKPOINT = "default"
BUSY_TIMEOUT = 30.0
"""Seconds a command waits for another writer (a detect run, the collector) to release the
store before it gives up with StoreBusy (exit 75)."""


def open_db(path: Path, *, create: bool = False) -> sqlite3.Connection:
    """The events store file (shared with the collector); WAL so readers never block it."""
    if not create and not path.exists():
        raise ConfigError("no event store here", Location.of(path),
                          hint="run 'socctl collect replay' or 'collect run' first, or "
                               "pass --store")
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT)
    conn.execute("PRAGMA journal_mode=WAL")
    has_events = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='events'").fetchone()
    if not has_events and not create:
        conn.close()
        raise ConfigError("the store has no events table", Location.of(path),
                          hint="it is created by the collector (socctl collect)")
    return conn


@dataclass
class RunResult:
    rules: int
    scope: Scope
    events: int
    seconds: float
    record: RecordResult
    checkpoint: int | None = None
    per_rule_seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"rules": self.rules, "events": self.events, "seconds": round(self.seconds, 3),
                "checkpoint": self.checkpoint, **self.record.to_dict()}


class Detector:
    """Rules compiled once, run many times (``--every`` reuses it)."""

    def __init__(self, ruleset: RuleSet, *, timezone: str = DEFAULT_TIMEZONE) -> None:
        """``timezone``: the clock suppression expiry dates are read on (the setting)."""
        self.ruleset = ruleset
        self.timezone = timezone
        self.compiled: list[Compiled] = compile_rules(ruleset.rules)

    @classmethod
    def from_path(cls, rules: Path, *, timezone: str = DEFAULT_TIMEZONE) -> Detector:
        return cls(load_rules(rules), timezone=timezone)

    def run(self, conn: sqlite3.Connection, *, ts_from: float | None = None,
            ts_to: float | None = None, incremental: bool = False,
            now: float | None = None) -> RunResult:
        alerts = AlertStore(conn)
        start = time.perf_counter()
        checkpoint: int | None = None
        if incremental:
            last = alerts.checkpoint(CHECKPOINT)
            top = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM events").fetchone()[0]
            scope = Scope(rowid_after=last, rowid_upto=top)
            checkpoint = top
        else:
            scope = Scope(ts_from=ts_from, ts_to=ts_to)
            if ts_from is None and ts_to is None:
                # --all covered every stored row: the schedule resumes after them
                top = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM events").fetchone()[0]
                scope = Scope(rowid_upto=top)
                checkpoint = top
        events = conn.execute(f"SELECT COUNT(*) FROM events WHERE {scope.where()}"
                              ).fetchone()[0]
        hits = run(conn, self.compiled, scope, self.ruleset.lookups) if events else []
        record = alerts.record(hits, self.ruleset.rules, self.ruleset.suppressions, now=now,
                               timezone=self.timezone)
        if checkpoint is not None:
            alerts.set_checkpoint(CHECKPOINT, checkpoint)
        return RunResult(len(self.compiled), scope, events, time.perf_counter() - start,
                         record, checkpoint)


def parse_time(text: str) -> float:
    """Epoch seconds or ISO 8601 (naive means UTC, as in the store's searches)."""
    from socctl.store.sqlite import iso_epoch

    try:
        return float(text)
    except ValueError:
        pass
    try:
        return iso_epoch(text)
    except ValueError as exc:
        raise ConfigError(f"not a time: {text!r} (use ISO 8601 or epoch seconds)") from exc
