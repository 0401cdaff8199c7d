"""Run every rule against its own test events through the real engine.

Each scenario of ``<rule>.tests.yml`` is replayed into an empty store; a ``fire`` scenario
must raise at least one hit of the rule (on the declared entity), a ``quiet`` one none.
Lines go through the collector's parser when it is installed (``socctl.collector.parse``);
the ``fields`` written next to each line are then checked against what the parser yields.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from socctl.detection.engine import Compiled, Scope, compile_rules, run
from socctl.detection.model import Rule, RuleSet, Scenario
from socctl.detection.pipeline import FIELD_COLUMNS, NUMERIC_COLUMNS

#: The contract's ``events`` table (issue #6 owns it; this copy is used only when
#: socctl.store is not installed, so the rule tests run on either branch).
CONTRACT_DDL = (
    "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, ts REAL, ingested REAL, "
    "dataset TEXT COLLATE NOCASE, "
    + ", ".join(f"{c} {'REAL' if c in NUMERIC_COLUMNS else 'TEXT COLLATE NOCASE'}"
                for c in sorted(set(FIELD_COLUMNS.values()) - {"ts", "ingested", "dataset"}))
    + ", doc TEXT)"
)
BASE_TS = 1_795_000_000.0  # 2026-11-18, any fixed instant works


def open_store(path: str = ":memory:") -> sqlite3.Connection:
    """A connection to an events store: the real SqliteStore schema when available."""
    try:
        from socctl.store.sqlite import SqliteStore  # type: ignore[import-not-found]
    except ImportError:
        conn = sqlite3.connect(path)
        conn.execute(CONTRACT_DDL)
        conn.execute("CREATE INDEX IF NOT EXISTS events_ts ON events(ts)")
        return conn
    store = SqliteStore(path)
    return store.connection  # type: ignore[no-any-return]


def event_row(dataset: str, line: str, ts: float, fields: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the collector would write it (message = the raw line)."""
    row: dict[str, Any] = dict.fromkeys(set(FIELD_COLUMNS.values()))
    for name, value in fields.items():
        column = FIELD_COLUMNS[name]
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        if column in NUMERIC_COLUMNS and value is not None:
            value = float(value)
        row[column] = value
    row.update(ts=ts, ingested=ts, dataset=dataset, message=line)
    row["id"] = hashlib.sha256(f"{dataset}\0{ts}\0{line}".encode()).hexdigest()[:32]
    row["doc"] = json.dumps({"event": {"dataset": dataset}, "message": line, **fields})
    return row


def insert_rows(conn: sqlite3.Connection, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    cols = list(rows[0])
    conn.executemany(
        f"INSERT OR IGNORE INTO events ({', '.join(cols)}) VALUES "
        f"({', '.join('?' for _ in cols)})", [tuple(r[c] for c in cols) for r in rows])


def scenario_rows(scenario: Scenario) -> list[dict[str, Any]]:
    rows = []
    for event in scenario.events:
        for ts, line, fields in event.expand(BASE_TS):
            rows.append(event_row(event.dataset, line, ts, fields))
    return rows


@dataclass(frozen=True, slots=True)
class TestFailure:
    rule: Rule
    scenario: str
    kind: str  # fire | quiet
    message: str

    def __str__(self) -> str:
        return f"{self.rule.path}: {self.kind} scenario {self.scenario!r}: {self.message}"


def _targets(rule: Rule, ruleset: RuleSet, compiled: list[Compiled]) -> list[Compiled]:
    """The compiled form of ``rule`` alone (base rules of correlations included)."""
    for c in compiled:
        if c.rule.id == rule.id:
            return [c]
    from socctl.detection.engine import compile_standalone

    return [compile_standalone(rule, ruleset.rules)]


def run_rule_tests(ruleset: RuleSet, only: Sequence[Rule] | None = None) -> list[TestFailure]:
    compiled = compile_rules(ruleset.rules)
    failures: list[TestFailure] = []
    for rule in only or ruleset.rules:
        if rule.tests is None:
            failures.append(TestFailure(rule, "-", "-", "no test events"))
            continue
        targets = _targets(rule, ruleset, compiled)
        for kind, scenarios in (("fire", rule.tests.fire), ("quiet", rule.tests.quiet)):
            for scenario in scenarios:
                conn = open_store()
                try:
                    insert_rows(conn, scenario_rows(scenario))
                    hits = run(conn, targets, Scope(), ruleset.lookups)
                finally:
                    conn.close()
                if kind == "quiet" and hits:
                    failures.append(TestFailure(rule, scenario.name, kind,
                                                f"matched {len(hits)} time(s): {hits[0]}"))
                if kind == "fire":
                    if not hits:
                        failures.append(TestFailure(rule, scenario.name, kind,
                                                    "did not match"))
                    elif scenario.entity:
                        want = tuple((f, scenario.entity.get(f))
                                     for f in rule.entity_fields)
                        if all(h.entity != want for h in hits):
                            failures.append(TestFailure(
                                rule, scenario.name, kind,
                                f"matched on {hits[0].entity}, expected {want}"))
    return failures
