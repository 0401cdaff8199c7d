"""Run every rule against its own test events through the real engine.

Each scenario of ``<rule>.tests.yml`` is replayed into an empty store; a ``fire`` scenario
must raise at least one hit of the rule (on the declared entity), a ``quiet`` one none.
Lines go through the collector's parser when it is installed (``socctl.collector.parse``);
the ``fields`` written next to each line are then checked against what the parser yields.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from socctl.detection.engine import Compiled, Hit, Scope, compile_rules, run
from socctl.detection.model import Rule, RuleSet, Scenario
from socctl.detection.pipeline import FIELD_COLUMNS

BASE_TS = 1_795_338_000.0  # 2026-11-22 09:00 UTC: after the "Nov 22 08:..." test lines

#: The shipped collector definitions: the rule tests parse each dataset with the options
#: its collector reads production logs with (PostgreSQL's log_line_prefix), never their own.
COLLECTORS = Path(__file__).resolve().parents[2] / "collectors"


@lru_cache(maxsize=1)
def parser_options() -> dict[str, dict[str, Any]]:
    """Each dataset's parser options as the shipped collectors (``collectors/sources``)
    set them. Two collectors of one dataset with different options are a located error:
    the tests could then match only one of them."""
    from socctl.collector.definition import load_collection
    from socctl.errors import ContentError, Location

    out: dict[str, dict[str, Any]] = {}
    first: dict[str, Path] = {}
    for collector in load_collection(COLLECTORS).collectors.values():
        options = dict(collector.spec.parser.options)
        if not options:
            continue
        if collector.dataset in out and out[collector.dataset] != options:
            raise ContentError(
                f"collectors of dataset {collector.dataset} disagree on their parser "
                f"options ({out[collector.dataset]} in {first[collector.dataset]})",
                Location.of(collector.path, None, "parser.options"),
                hint="the rule tests parse one dataset one way: give both the same options")
        out.setdefault(collector.dataset, options)
        first.setdefault(collector.dataset, collector.path)
    return out


def open_store(path: str | Path = ":memory:") -> sqlite3.Connection:
    """An events store with the collector's schema (socctl.store.sqlite)."""
    from socctl.store.sqlite import SqliteStore

    if str(path) == ":memory:":
        from socctl.store.sqlite import DEAD_LETTER_SCHEMA, SCHEMA

        conn = sqlite3.connect(":memory:")
        conn.execute(SCHEMA)
        conn.execute(DEAD_LETTER_SCHEMA)
        conn.execute("CREATE INDEX events_ts ON events(ts)")
        return conn
    store = SqliteStore(Path(path))
    return store.db


@lru_cache(maxsize=1)
def _enricher() -> Any:
    """The collector's enrichment with its shipped botnet list (collectors/botnet_ips.txt),
    as the real pipeline applies it before storing."""
    from socctl.collector.enrich import BotnetList, Enricher

    path = Path(__file__).resolve().parents[2] / "collectors" / "botnet_ips.txt"
    botnet = BotnetList.load(path)[0] if path.exists() else None
    return Enricher(botnet=botnet)


class FieldMismatch(ValueError):
    """A test event declares a field the collector's parser does not produce so, or its
    line is not an event at all for the parser."""


def event_row(dataset: str, line: str, ts: float, fields: dict[str, Any],
              *, enrich: Any = None) -> tuple[Any, ...]:
    """The stored row the collector writes for ``line`` (parsed by socctl.collector),
    at time ``ts``. Declared ``fields`` must match what the parser extracted."""
    from socctl.collector.ecs import ParseError, event_id
    from socctl.collector.parse import parse_event
    from socctl.store.sqlite import ROW_NAMES, to_row

    try:
        _, ev = parse_event(dataset, line, ts, parser_options().get(dataset))
    except ParseError as exc:
        raise FieldMismatch(f"{line[:80]!r}: the {dataset} parser refuses it (the collector "
                            f"would dead-letter it): {exc.reason}") from None
    (enrich or _enricher()).apply(ev)
    row = to_row(event_id(dataset, f"{ts:.6f}", line), ts, ts, ev)
    values = dict(zip(ROW_NAMES, row, strict=True))
    problems = []
    for name, want in fields.items():
        if name not in FIELD_COLUMNS:  # the loader refuses these; callers may not load
            problems.append(f"{name}: not a field the store has a column for")
            continue
        got = values.get(FIELD_COLUMNS[name])
        if got is None or str(got).lower() != str(want).lower():
            problems.append(f"{name}: parser gives {got!r}, test declares {want!r}")
    if problems:
        raise FieldMismatch(f"{line[:80]!r}: " + "; ".join(problems))
    return row


def insert_rows(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    from socctl.store.sqlite import INSERT_SQL

    with conn:
        conn.executemany(INSERT_SQL, rows)


def scenario_rows(scenario: Scenario, base: float = BASE_TS) -> list[tuple[Any, ...]]:
    rows = []
    for event in scenario.events:
        for ts, line, fields in event.expand(base):
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


def hits_on(rows: Sequence[tuple[Any, ...]], targets: Sequence[Compiled],
            ruleset: RuleSet) -> list[Hit]:
    """What ``targets`` find in a fresh in-memory store holding just ``rows``."""
    conn = open_store()
    try:
        insert_rows(conn, rows)
        return run(conn, targets, Scope(), ruleset.lookups)
    finally:
        conn.close()


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
                try:
                    hits = hits_on(scenario_rows(scenario), targets, ruleset)
                except FieldMismatch as exc:
                    failures.append(TestFailure(rule, scenario.name, kind, str(exc)))
                    continue
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
