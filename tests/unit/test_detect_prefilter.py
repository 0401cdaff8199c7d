"""The literal prefilter only ever spares work: every row a rule's SQL matches contains
one of the literals the prefilter looks for, and the engine finds exactly the same hits
with and without it (on every rule's own test events, plus mutated and benign rows)."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socctl.detection import engine
from socctl.detection.engine import Scope, compile_rules, run
from socctl.detection.loader import load_rules
from socctl.detection.prefilter import (
    AllOf,
    AnyOf,
    Need,
    Prefilter,
    regex_need,
    resolve,
    sample_rate,
)
from socctl.detection.testing import BASE_TS, insert_rows, open_store, scenario_rows
from tests.conftest import REPO


def holds(need: Need, values: dict[str, str]) -> bool:
    """Does a row (column -> text) satisfy the WHOLE need tree (every AND part)?"""
    if need is None:
        return True
    if isinstance(need, frozenset):
        return any(lit in values.get(col, "").casefold() for col, lit in need)
    parts = [holds(p, values) for p in need.parts]
    return all(parts) if isinstance(need, AllOf) else any(parts)


def _corpus_regexes() -> list[tuple[str, int]]:
    """Every |re value of the shipped rules (with its flags)."""
    from sigma.types import SigmaRegularExpression, SigmaRegularExpressionFlag

    from socctl.detection.engine import _collection

    found = []
    ruleset = load_rules(REPO / "detections")
    for sigma_rule in _collection([r for r in ruleset.rules if r.kind == "event"]).rules:
        for detection in sigma_rule.detection.detections.values():
            stack = list(detection.detection_items)
            while stack:
                item = stack.pop()
                if hasattr(item, "detection_items"):
                    stack.extend(item.detection_items)
                    continue
                for value in item.value:
                    if isinstance(value, SigmaRegularExpression):
                        flags = (re.IGNORECASE if SigmaRegularExpressionFlag.IGNORECASE
                                 in value.flags else 0)
                        found.append((value.regexp.original, flags))
    return found


REGEXES = [*_corpus_regexes(),
           (r"(?i)\.(php|jsp|aspx?)x?$", 0), (r"a(bc|bd)+e", 0), (r"x{2,}y|zz", 0),
           (r"(?:foo|bar)baz", re.IGNORECASE), (r"^GET /[a-z]+\?q=(un)+ion", 0)]


def test_the_corpus_has_regexes_to_check() -> None:
    assert len(REGEXES) > 5


@pytest.mark.parametrize(("pattern", "flags"), REGEXES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_regex_match_contains_the_needed_literals(pattern: str, flags: int,
                                                        data: st.DataObject) -> None:
    need = regex_need("c", pattern, flags)
    compiled = re.compile(pattern, flags)
    text = data.draw(st.from_regex(compiled))
    assert compiled.search(text)
    assert holds(need, {"c": text}), (pattern, text, need)
    lits = resolve(need)
    assert lits is None or any(lit in text.casefold() for _c, lit in lits)


def test_re2_syntax_python_reads_otherwise_needs_no_literal() -> None:
    """RE2's POSIX class: Python parses ``[[:digit:]]`` as a class then a literal ``]``,
    which made every match of the rule need a ``]`` and, with the prefilter on, dropped
    ``GET /index.php?debug=1``. The rule's engine is RE2: the one it must agree with."""
    import re2  # type: ignore[import-untyped]

    pattern = "debug=[[:digit:]]+"
    assert re2.search(pattern, "/index.php?debug=1")
    need = regex_need("u", pattern)
    assert holds(need, {"u": "/index.php?debug=1"})
    assert regex_need("u", "debug=[0-9]+") == frozenset({("u", "debug=")})


def test_and_picks_the_part_the_sample_shows_rarest() -> None:
    need: Need = AllOf((frozenset({("u", "=")}), frozenset({("u", "'"), ("u", "%27")})))
    rows = [["/a?b=1"], ["/a?b=2"], ["/x?n=O%27Brien"], ["/"]]
    assert resolve(need, sample_rate(rows, ["u"])) == frozenset({("u", "'"), ("u", "%27")})
    either: Need = AnyOf((frozenset({("u", "=")}), None))
    assert resolve(either) is None  # an OR with an unrestricted branch restricts nothing


def test_prefilter_masks_and_memo() -> None:
    pf = Prefilter.build([frozenset({("u", "union")}), None, frozenset({("a", "sqlmap")})])
    assert pf is not None
    assert pf.columns == ("a", "u")  # the UDF's arguments, in this order
    udf = pf.function()

    def call(u: str | None, a: str | None) -> int:
        return udf(a, u)

    # rule 1 has no need: always evaluated; matching is case-folded
    assert call("/q?x=1 UNION select", "Mozilla") == 0b011
    assert call("/q", "SQLMap/1.7") == 0b110
    assert call("/q", None) == 0b010
    assert call("/q?x=1 UNION select", "Mozilla") == 0b011  # from the memo now
    assert Prefilter.build([None, None]) is None


def _rows() -> list[tuple[object, ...]]:
    """Every scenario of every rule, and each line mutated (case flipped, cut, padded)."""
    ruleset = load_rules(REPO / "detections", with_tests=True)
    rnd = random.Random(5)
    rows = []
    base = BASE_TS
    for rule in ruleset.rules:
        if rule.tests is None:  # base rules of correlations: tested through them
            continue
        for scenario in [*rule.tests.fire, *rule.tests.quiet]:
            rows.extend(scenario_rows(scenario, base))
            base += 10_000
    return [*rows, *_mutants(rows, rnd)]


def _mutants(rows: list[tuple[object, ...]], rnd: random.Random) -> list[tuple[object, ...]]:
    from socctl.store.sqlite import COLUMN_NAMES

    # a row is (id, ts, ingested, dataset, *COLUMN_NAMES, doc): see INSERT_SQL
    at = {"id": 0, **{name: i + 4 for i, name in enumerate(COLUMN_NAMES)}}
    out = []
    for n, row in enumerate(rows):
        for col in ("url_original", "user_agent_original", "message"):
            value = row[at[col]]
            if not isinstance(value, str) or not value:
                continue
            cut = rnd.randint(0, len(value))
            for variant in (value.swapcase(), value[:cut], "x" + value + "%20"):
                new = list(row)
                new[at[col]] = variant
                new[at["id"]] = f"{row[at['id']]}-{n}-{col}-{len(out)}"
                out.append(tuple(new))
    return out


def _hits(monkeypatch: pytest.MonkeyPatch, threshold: int) -> set[tuple[object, ...]]:
    monkeypatch.setattr(engine, "MIN_PREDICATES", threshold)
    ruleset = load_rules(REPO / "detections")
    compiled = [c for c in compile_rules(ruleset.rules) if c.sql is not None]
    conn = open_store()
    insert_rows(conn, _rows())
    return {(h.rule_id, h.entity, h.event_ids) for h in
            run(conn, compiled, Scope(), ruleset.lookups)}


def test_same_hits_with_and_without_the_prefilter(monkeypatch: pytest.MonkeyPatch) -> None:
    without = _hits(monkeypatch, 10**9)
    with_prefilter = _hits(monkeypatch, 0)
    assert without, "the rule test events raise hits"
    assert with_prefilter == without
    assert len({h[0] for h in without}) >= 15  # most plain rules fired


def test_web_rules_do_use_the_prefilter(monkeypatch: pytest.MonkeyPatch) -> None:
    ruleset = load_rules(REPO / "detections")
    web = [c for c in compile_rules(ruleset.rules)
           if c.sql is not None and "nginx.access" in c.datasets]
    assert all(c.need is not None for c in web), [c.rule.title for c in web if not c.need]
    conn = open_store()
    engine.prepare_connection(conn)
    sql = engine._plain_sql(conn, web[0].datasets, web, ["source_ip"], "1", 0)
    assert "socctl_prefilter_0(" in sql
    assert Path(web[0].rule.path).exists()
