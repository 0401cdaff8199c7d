"""SQL the engine rewrites after pySigma's conversion: same rows, cheaper plans."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from socctl.detection.engine import _any_value_tests, compile_rules, prepare_connection
from socctl.detection.loader import load_rules
from socctl.store.sqlite import INSERT_SQL, ROW_NAMES, SqliteStore
from tests.conftest import REPO


def _row(n: int, **values: object) -> tuple[object, ...]:
    base: dict[str, object] = {"id": f"e{n}", "ts": float(n), "ingested": float(n),
                               "dataset": "netfilter", "doc": "{}"}
    return tuple({**base, **values}.get(name) for name in ROW_NAMES)


def test_any_value_means_not_null_for_text_and_integer_columns(tmp_path: Path) -> None:
    """``field: '*'`` (LIKE '%') holds for every stored value, '' and numbers included,
    and for no NULL: the range / IS NOT NULL it becomes selects exactly those rows."""
    store = SqliteStore(tmp_path / "events.db")
    values: list[object] = [None, "", "0", "198.18.7.1", "ĐỖ", " ", 7, 0, -1.5]
    with store.db:
        store.db.executemany(INSERT_SQL, [
            _row(n, threat_indicator_ip=v, source_port=v if not isinstance(v, str) else None,
                 user_name=v)
            for n, v in enumerate(values)])
    for column in ("threat_indicator_ip", "source_port", "user_name"):
        original = f"{column} LIKE '%' ESCAPE '\\'"
        rewritten = _any_value_tests(original)
        assert rewritten != original
        sql = "SELECT id FROM events WHERE {} ORDER BY id"
        expect = store.db.execute(sql.format(original)).fetchall()
        assert store.db.execute(sql.format(rewritten)).fetchall() == expect, rewritten
        assert expect  # some rows have a value, some have none
        assert len(expect) < len(values)
    # a pattern with anything besides the lone % is left as it is
    assert _any_value_tests("user_name LIKE '%a%' ESCAPE '\\'") == \
        "user_name LIKE '%a%' ESCAPE '\\'"
    store.close()


def test_the_botnet_rule_reads_indexes_not_the_table(tmp_path: Path) -> None:
    ruleset = load_rules(REPO / "detections")
    (botnet,) = [c for c in compile_rules(ruleset.rules)
                 if c.sql is not None and "Botnet" in c.rule.title]
    store = SqliteStore(tmp_path / "events.db")
    conn = sqlite3.connect(tmp_path / "events.db")
    prepare_connection(conn)
    conn.execute("CREATE TEMP TABLE lookup_botnet_ips (value TEXT PRIMARY KEY)")
    plan = [r[-1] for r in conn.execute(
        f"EXPLAIN QUERY PLAN SELECT id FROM main.events WHERE {botnet.condition}")]
    assert "MULTI-INDEX OR" in plan and not any(p.startswith("SCAN main.events")
                                               or p == "SCAN events" for p in plan), plan
    conn.close()
    store.close()
