"""The embedded SQLite store: contract columns, idempotent inserts, search, retention."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from socctl.collector.parse import parse_line
from socctl.store.query import QueryError, compile_es, compile_sqlite
from socctl.store.sqlite import COLUMN_NAMES, SqliteStore, StoreError, to_row
from tests.unit.test_collector_parse import VALID

CONTRACT_COLUMNS = [
    "id", "ts", "ingested", "dataset", "event_kind", "event_category", "event_type",
    "event_outcome", "event_action", "event_code", "source_ip", "source_port", "destination_ip",
    "destination_port", "user_name", "url_original", "url_path", "url_query",
    "http_request_method", "http_response_status_code", "user_agent_original", "host_name",
    "host_ip", "observer_name", "observer_ip", "process_name", "log_level", "message",
    "email_from", "email_to", "email_subject", "file_name", "threat_indicator_ip",
    "threat_indicator_provider", "socctl_site", "socctl_tier", "socctl_province", "doc",
]


def events(dataset: str, name: str) -> list[dict[str, object]]:
    out = []
    for n, line in enumerate((VALID / name).read_text(encoding="utf-8").splitlines()):
        ev = parse_line(dataset, line, received=1795340000.0)
        ev["event"]["id"] = f"{name}-{n}"  # type: ignore[index]
        out.append(ev)
    return out


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    db = SqliteStore(tmp_path / "events.db")
    db.insert(events("syslog", "auth.log") + events("nginx.access", "nginx-access.log")
              + events("syslog", "mail.log") + events("postgresql", "postgresql.log"))
    return db


def test_schema_is_the_contract(store: SqliteStore) -> None:
    cols = [row[1] for row in store.db.execute("PRAGMA table_info(events)")]
    assert cols == CONTRACT_COLUMNS
    assert set(COLUMN_NAMES) < set(cols)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = {row[1] for row in store.db.execute("PRAGMA index_list(events)")}
    assert {"events_ts", "events_source_ip_ts", "events_dataset_ts"} <= indexes


def test_a_new_store_has_16k_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    """Pages of 16 KiB make the sink's inserts cheaper (benchmarks/store.py); a store
    made before, with SQLite's 4 KiB, is opened and written as it is, not rebuilt."""
    fresh = SqliteStore(tmp_path / "new.db")
    assert fresh.db.execute("PRAGMA page_size").fetchone()[0] == 16384
    fresh.close()
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as db:
        db.execute("PRAGMA page_size=4096")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (x)")
    db.close()
    store = SqliteStore(old)
    store.insert(events("syslog", "auth.log"))
    assert store.db.execute("PRAGMA page_size").fetchone()[0] == 4096
    assert store.count() == 11
    store.close()


def test_insert_is_idempotent_by_id(store: SqliteStore) -> None:
    total = store.count()
    assert total == 11 + 3 + 10 + 9
    again = events("syslog", "auth.log")
    assert store.insert(again) == 0
    assert store.count() == total


def test_columns_hold_the_ecs_values(store: SqliteStore) -> None:
    row = store.db.execute(
        "SELECT event_category, event_type, event_outcome, user_name, source_ip, source_port,"
        " host_name, message, ts FROM events WHERE id = 'auth.log-6'").fetchone()
    assert row[:7] == ("authentication", "start", "success", "root", "198.18.0.1", 4242,
                       "dc-primary-log1")
    assert row[7].startswith("Nov 22 07:42:00 dc-primary-log1 sshd[910]: Accepted publickey")
    assert row[8] == 1795333320.0
    mail = store.db.execute("SELECT email_from, email_to, email_subject FROM events WHERE "
                            "event_action = 'header_warning'").fetchone()
    assert mail == ("billing@evil.example", "ketoan@vss.gov.vn",
                    "=?UTF-8?B?SMOzYSDEkcahbg==?= Invoice overdue")
    doc = store.get(["auth.log-6"])[0]
    assert doc["user"]["name"] == "root" and doc["event"]["id"] == "auth.log-6"


@pytest.mark.parametrize(("query", "count"), [
    ("event.outcome:failure", 10),
    ("event.dataset:sshd AND event.outcome:failure", 4),
    ("event.action:ssh_login AND NOT user.name:root", 1),
    ("source.ip:198.51.100.66 OR source.ip:203.0.113.5", 6),
    ("(event.action:ssh_login OR event.action:login) AND event.outcome:success", 2),
    ("event.category:authentication", 9),
    ("http.response.status_code:[400 TO 499]", 1),
    ("http.response.status_code:>=200", 3),
    ("user_agent.original:sqlmap*", 1),
    ('"Invoice overdue"', 2),
    ("email.to.address:ketoan@vss.gov.vn", 3),
    ("postgresql.log.database:bhxh", 6),
    ("ssh.method:publickey", 1),
    ("threat.indicator.ip:*", 0),
    # addresses compare as addresses (text order put 203.0.113.20 before 203.0.113.5)
    ("source.ip:203.0.113.5", 3),
    ("source.ip:203.0.113.0/24", 8),
    ("source.ip:203.0.113.*", 8),
    ("source.ip:[203.0.113.5 TO 203.0.113.20]", 7),
    ("source.ip:>203.0.113.9", 4),
    ("source.ip:<203.0.113.20", 15),
    ("source.ip:198.18.0.0/15", 5),  # the lab's range: not whole octets
    ("source.ip:198.18.0.0/15 AND NOT source.ip:198.19.0.0/16", 3),
    ("source.ip:[198.51.100.0 TO *] AND source.ip:<=203.0.113.5", 6),
])
def test_search(store: SqliteStore, query: str, count: int) -> None:
    assert len(store.search(query, limit=1000)) == count, compile_sqlite(query)


def test_a_time_without_an_offset_is_utc_whatever_the_analysts_zone(store: SqliteStore,
                                                                    monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """@timestamp ranges without an offset were read in the machine's zone (Python's
    default): in Hanoi the same query found other events than on the server."""
    query = "@timestamp:[2026-11-22T07:42:00 TO 2026-11-22T07:42:59]"
    in_utc = len(store.search(query, limit=1000))
    monkeypatch.setenv("TZ", "Asia/Ho_Chi_Minh")
    time.tzset()
    try:
        assert len(store.search(query, limit=1000)) == in_utc > 0
        assert len(store.search("@timestamp:[2026-11-22T07:42:00Z TO 2026-11-22T07:42:59Z]",
                                limit=1000)) == in_utc
    finally:
        monkeypatch.setenv("TZ", "UTC")
        time.tzset()


def test_search_since_limit_and_order(store: SqliteStore) -> None:
    found = store.search("", since=1795333320.0, limit=3)
    assert len(found) == 3
    stamps = [e["@timestamp"] for e in found]
    assert stamps == sorted(stamps, reverse=True)


def test_an_ip_field_holding_several_addresses_matches_any_of_them(tmp_path: Path) -> None:
    db = SqliteStore(tmp_path / "events.db")
    ev = events("syslog", "auth.log")[0]
    ev["host"] = {"name": "dc-primary-fw1", "ip": ["198.18.0.1", "2001:db8::5"]}
    db.insert([ev])
    assert db.db.execute("SELECT host_ip FROM events").fetchone()[0] == "198.18.0.1,2001:db8::5"
    for query, count in (("host.ip:2001:db8::/32", 1), ("host.ip:198.18.0.0/24", 1),
                         ("host.ip:[2001:db8::1 TO 2001:db8::4]", 0), ("host.ip:10.0.0.0/8", 0),
                         ("host.ip:[2001:db8::5 TO *]", 1)):
        assert len(db.search(query)) == count, query


def test_not_keeps_the_events_without_the_field(store: SqliteStore) -> None:
    """As Elasticsearch's must_not does: NOT user.name:root once left out every event
    with no user at all (NULL in SQL)."""
    total = len(store.search("", limit=1000))
    root = len(store.search("user.name:root", limit=1000))
    assert len(store.search("NOT user.name:root", limit=1000)) == total - root
    assert len(store.search("NOT (user.name:root AND event.outcome:failure)", limit=1000)) \
        == total - len(store.search("user.name:root AND event.outcome:failure", limit=1000))


@pytest.mark.parametrize("bad", ["a:", "(x", "x)", "AND", "f:[1 2]", "NOT", "source.ip:foo",
                                 "source.ip:203.*.1", "source.ip:10.0.0.0/33",
                                 "source.ip:[::1 TO 198.18.0.1]", "host.ip:>255.255.255.255",
                                 '"unterminated', 'user.name:"root',
                                 "http.response.status_code:[400 TO 4x9]",
                                 "source.port:>=high", "(" * 1200 + "a" + ")" * 1200,
                                 "NOT " * 1200 + "a"])
def test_bad_queries_are_errors(bad: str) -> None:
    with pytest.raises(QueryError):
        compile_sqlite(bad)


def test_es_query_translation() -> None:
    assert compile_es("event.outcome:failure AND NOT user.name:root") == {"bool": {"filter": [
        {"term": {"event.outcome": "failure"}},
        {"bool": {"must_not": [{"term": {"user.name": "root"}}]}}]}}
    assert compile_es("http.response.status_code:[400 TO *]") == {
        "range": {"http.response.status_code": {"gte": "400"}}}
    # the ip type compares addresses too: networks, octets and open ends as ranges
    assert compile_es("source.ip:198.18.4.0/22") == {
        "range": {"source.ip": {"gte": "198.18.4.0", "lte": "198.18.7.255"}}}
    assert compile_es("destination.ip:198.18.4.*") == {
        "range": {"destination.ip": {"gte": "198.18.4.0", "lte": "198.18.4.255"}}}
    assert compile_es("source.ip:>203.0.113.9") == {
        "range": {"source.ip": {"gte": "203.0.113.10", "lte": "255.255.255.255"}}}
    assert compile_es("source.ip:203.0.113.9") == {"term": {"source.ip": "203.0.113.9"}}
    # a bare number is epoch seconds in both stores (a date field reads milliseconds)
    assert compile_es("@timestamp:>=1795338000") == compile_es(
        "@timestamp:>=2026-11-22T09:00:00Z") == {
        "range": {"@timestamp": {"gte": "2026-11-22T09:00:00Z"}}}


def test_retention_prunes_by_event_time(store: SqliteStore) -> None:
    total = store.count()
    now = 1795333320.0 + 90 * 86400 + 30  # 90 days after the auth.log accept line
    removed = store.prune(90, now=now)
    assert 0 < removed < total and store.count() == total - removed
    assert store.count("ts < ?", (now - 90 * 86400,)) == 0


def test_retention_goes_a_bounded_chunk_at_a_time_oldest_first(tmp_path: Path) -> None:
    """One DELETE of every expired event held the only writer (the collector) for as long
    as it took; a step removes at most ``limit`` of the oldest and says when it is done."""
    db = SqliteStore(tmp_path / "e.db")
    ev = events("syslog", "auth.log")[0]
    db.insert_rows([to_row(f"e{i:02}", 1000.0 + i, 2000.0, ev) for i in range(20)])
    db.dead_letter([(f"d{i}", 1000.0 + i, "auth", "syslog", None, "bad", b"x")
                    for i in range(4)])
    assert db.prune_step(1010.0, limit=4) == (4, False)
    left = [t for (t,) in db.db.execute("SELECT ts FROM events ORDER BY ts")]
    assert left == [1004.0 + i for i in range(16)]  # the four oldest went
    assert db.db.execute("SELECT count(*) FROM dead_letter").fetchone()[0] == 0
    assert db.prune_step(1010.0, limit=4) == (4, False)
    assert db.prune_step(1010.0, limit=4) == (2, True)
    assert db.count() == 10 and db.count("ts < 1010") == 0
    assert db.prune(90, now=1015.0 + 90 * 86400) == 5  # prune() steps until done
    assert db.count() == 5


def test_retention_never_hands_a_rowid_out_again(tmp_path: Path) -> None:
    """Scheduled detections resume after the last rowid they read: if retention deleted
    the newest row (an old event replayed, expired at once), the next event stored would
    get the same rowid and no detection run would ever look at it."""
    db = SqliteStore(tmp_path / "e.db")
    ev = events("syslog", "auth.log")[0]
    db.insert_rows([to_row("recent", 5000.0, 5000.0, ev), to_row("replayed", 10.0, 5000.0, ev)])
    read_upto = db.db.execute("SELECT max(rowid) FROM events").fetchone()[0]  # a detect run
    assert db.prune(1, now=5000.0 + 86400) == 0  # the expired row is the newest: kept
    db.insert_rows([to_row("next", 5001.0, 5001.0, ev)])
    rowid = db.db.execute("SELECT rowid FROM events WHERE id = 'next'").fetchone()[0]
    assert rowid > read_upto  # the next detection run sees it
    assert db.prune(1, now=5000.0 + 86400) == 1  # and now the expired one goes
    assert [i for (i,) in db.db.execute("SELECT id FROM events ORDER BY rowid")] == [
        "recent", "next"]


def test_dead_letter_keeps_raw_bytes(tmp_path: Path) -> None:
    db = SqliteStore(tmp_path / "e.db")
    raw = b"bad \xff\xfe utf8 \x00 nul"
    assert db.dead_letter([("d1", time.time(), "sshd", "sshd", "/x", "invalid UTF-8", raw)]) == 1
    assert db.dead_letter([("d1", time.time(), "sshd", "sshd", "/x", "invalid UTF-8", raw)]) == 0
    (item,) = db.dead_letters()
    assert item.raw == raw and item.reason == "invalid UTF-8"


def test_readonly_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no event store"):
        SqliteStore(tmp_path / "missing.db", readonly=True)


def test_other_modules_can_add_tables(store: SqliteStore) -> None:
    """Detections (#7) keep their tables in the same file; the store must not mind."""
    store.db.execute("CREATE TABLE alerts (id TEXT PRIMARY KEY)")
    again = SqliteStore(store.path)
    assert again.count() == store.count()
    with pytest.raises(sqlite3.OperationalError):
        again.db.execute("CREATE TABLE events (x)")


def test_parse_line_output_can_be_inserted_as_is(tmp_path: Path) -> None:
    """What detections do with the contract's parse_line: ids are derived, stable."""
    db = SqliteStore(tmp_path / "e.db")
    line = "Nov 22 07:41:10 h sshd[1]: Invalid user admin from 203.0.113.5 port 52514"
    assert db.insert([parse_line("syslog", line)]) == 1
    assert db.insert([parse_line("syslog", line)]) == 0
    assert db.search("user.name:admin")[0]["event"]["id"]


def test_background_checkpoint_copies_the_wal_beside_the_writer(tmp_path: Path) -> None:
    """The collector's store never checkpoints inside a commit; its checkpointer thread
    copies the WAL into the database file while the writer goes on, and nothing is lost
    at close. (Without it, with autocheckpoint off, the file would stay at its schema
    page until the last connection closed.)"""
    from socctl.store.sqlite import Checkpointer

    path = tmp_path / "events.db"
    store = SqliteStore(path, background_checkpoint=True)
    assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    assert isinstance(store.checkpointer, Checkpointer)
    store.checkpointer.interval = 0.01
    line = ("Nov 22 07:42:00 dc-primary-log1 sshd[910]: Failed password for root from "
            "198.18.7.{} port {} ssh2")
    for batch in range(20):
        evs = [parse_line("syslog", line.format(k % 250, k), received=1795340000.0 + k)
               for k in range(batch * 200, batch * 200 + 200)]
        assert store.insert(evs) == 200
    # two more rounds after the last commit: the thread has copied everything by then
    seen = store.checkpointer.checkpoints
    deadline = time.monotonic() + 20
    while store.checkpointer.checkpoints < seen + 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.checkpointer.checkpoints >= seen + 2, store.checkpointer.last_error
    copied = path.stat().st_size
    store.close()
    assert store.checkpointer is None
    assert copied > 1 << 20 and copied >= 0.9 * path.stat().st_size
    with SqliteStore(path, readonly=True) as again:
        assert again.count() == 4000


def test_a_quoted_star_is_a_character_and_a_bare_one_a_wildcard(tmp_path: Path) -> None:
    """A quoted value is a phrase (Lucene's and Kibana's reading): ``*`` in it was still a
    wildcard, so an analyst searching for the literal ``q=a*b`` a scanner sent got every
    ``q=a...b`` as well, and ``user.name:"*"`` every event with a user."""
    db = SqliteStore(tmp_path / "events.db")
    lines = [f'198.18.7.{i} - - [22/Nov/2026:08:00:0{i} +0000] "GET /search?q={q} HTTP/1.1" '
             f'200 10 "-" "curl/8"' for i, q in enumerate(("a*b", "axyb", "ab"))]
    db.insert([parse_line("nginx.access", line, received=1795340000.0) for line in lines])
    for query, count in (('url.original:"/search?q=a*b"', 1),
                         ("url.original:/search?q=a*b", 3),
                         ('url.original:"*"', 0), ("url.original:*", 3),
                         ('"q=a*b"', 1), ("q=a*b", 3),
                         ('url.original:"/search?q=a_b"', 0)):
        assert len(db.search(query, limit=100)) == count, (query, compile_sqlite(query))
    db.close()
    assert compile_es('url.original:"a*b"') == {"term": {"url.original": "a*b"}}
    assert compile_es('user.name:"*"') == {"term": {"user.name": "*"}}
    assert compile_es("user.name:*") == {"exists": {"field": "user.name"}}
    assert compile_es("url.original:a*b") == {"wildcard": {"url.original": {"value": "a*b"}}}
    with pytest.raises(QueryError, match="not an IP address"):
        compile_sqlite('source.ip:"198.18.4.*"')


def test_an_ipv6_address_is_found_however_the_analyst_writes_it(tmp_path: Path) -> None:
    db = SqliteStore(tmp_path / "events.db")
    db.insert([parse_line("syslog", f"Nov 22 08:00:0{i} h sshd[1]: Failed password for root "
                          f"from {ip} port 4444 ssh2", received=1795340000.0)
               for i, ip in enumerate(("2001:DB8::7", "2001:db8:0:0:0:0:0:7", "2001:db8::8"))])
    for query in ("source.ip:2001:db8::7", "source.ip:2001:0DB8:0000:0000:0000:0000:0000:0007",
                  'source.ip:"2001:DB8::7"'):
        assert len(db.search(query, limit=10)) == 2, (query, compile_sqlite(query))
    assert len(db.search("source.ip:2001:db8::/64", limit=10)) == 3
    db.close()
