"""Alert grouping, suppression, lifecycle and audit trail, and the scheduled-run checkpoint,
on the real engine and the collector's store schema (in memory)."""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from socctl.config import load_settings
from socctl.detection.engine import Hit
from socctl.detection.loader import load_rules
from socctl.detection.model import Suppression
from socctl.detection.runner import Detector, open_db
from socctl.detection.testing import event_row, insert_rows, open_store
from socctl.errors import ConfigError
from socctl.store.sqlite import StoreBusy
from socctl.triage.store import AlertStore, TriageError, day_in, suppression_for
from socctl.triage.suppress import add_suppression

DETECTIONS = Path(__file__).resolve().parents[2] / "detections"
RULESET = load_rules(DETECTIONS)
T0 = 1_795_000_000.0
XSS = next(r for r in RULESET.rules if r.title.startswith("Cross-Site"))
BRUTE = RULESET.by_id("ssh_brute_force")


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(RULESET)


@pytest.fixture
def conn() -> sqlite3.Connection:
    return open_store()


def xss(ip: str, ts: float, n: int = 0) -> tuple[object, ...]:
    line = (f'{ip} - - [22/Nov/2026:08:00:01 +0000] "GET /q?x=%3Cscript%3E{n} HTTP/1.1" 200 '
            '5 "-" "Mozilla/5.0"')
    return event_row("nginx.access", line, ts, {"source.ip": ip})


def ssh_fail(ip: str, ts: float, n: int = 4) -> tuple[object, ...]:
    line = f"Nov 22 08:00:01 db1 sshd[1]: Failed password for alice from {ip} port {n} ssh2"
    return event_row("sshd", line, ts, {})


def ssh_ok(ip: str, ts: float) -> tuple[object, ...]:
    line = f"Nov 22 08:10:00 db1 sshd[2]: Accepted password for alice from {ip} port 9 ssh2"
    return event_row("sshd", line, ts, {})


def hit(rule_id: str, ip: str, ts: float, eid: str) -> Hit:
    return Hit(rule_id, (("source.ip", ip),), (eid,), ts, ts)


def test_matches_of_one_rule_and_entity_within_the_window_group_into_one_alert(
        conn: sqlite3.Connection, detector: Detector) -> None:
    insert_rows(conn, [xss("198.18.1.1", T0 + i * 60, i) for i in range(5)]
                + [xss("198.18.1.2", T0, 99)])
    detector.run(conn)
    alerts = AlertStore(conn).query()
    assert sorted((a.entity["source.ip"], a.count) for a in alerts) == [
        ("198.18.1.1", 5), ("198.18.1.2", 1)]
    one = next(a for a in alerts if a.entity["source.ip"] == "198.18.1.1")
    assert (one.first_seen, one.last_seen) == (T0, T0 + 240)
    # two hours later (outside the 1h window) it is a new alert
    insert_rows(conn, [xss("198.18.1.1", T0 + 7200, 50)])
    result = detector.run(conn, incremental=True)
    assert len(result.record.new_alerts) == 1


def test_a_closed_alert_is_not_extended_new_matches_open_a_new_one(conn: sqlite3.Connection
                                                                     ) -> None:
    store = AlertStore(conn)
    first = store.record([hit(XSS.id, "198.18.1.1", T0, "a")], RULESET.rules)
    store.close(first.new_alerts[0], "ana", "true_positive")
    second = store.record([hit(XSS.id, "198.18.1.1", T0 + 10, "b")], RULESET.rules)
    assert second.new_alerts and second.new_alerts != first.new_alerts


def test_a_rerun_over_a_closed_alerts_events_opens_nothing(conn: sqlite3.Connection,
                                                            detector: Detector) -> None:
    """A false positive closed by an analyst came back as a new alert at every re-run
    (`detect run --all`) over the same events."""
    insert_rows(conn, [xss("198.18.1.1", T0 + i * 60, i) for i in range(3)])
    first = detector.run(conn).record
    store = AlertStore(conn)
    store.close(first.new_alerts[0], "ana", "false_positive")
    again = detector.run(conn).record
    assert again.new_alerts == [] and again.already_alerted == again.hits == 3
    assert [a.status for a in store.query()] == ["closed"]
    insert_rows(conn, [xss("198.18.1.1", T0 + 600, 9)])  # a new event: a new alert
    third = detector.run(conn).record
    assert len(third.new_alerts) == 1


def test_an_event_is_counted_once_however_often_it_is_evaluated(conn: sqlite3.Connection
                                                                  ) -> None:
    store = AlertStore(conn)
    for _ in range(3):
        store.record([hit(XSS.id, "198.18.1.1", T0, "same-event")], RULESET.rules)
    [alert] = store.query()
    assert alert.count == 1


def test_lifecycle_rules_and_the_audit_trail_is_append_only(conn: sqlite3.Connection) -> None:
    store = AlertStore(conn)
    aid = store.record([hit(XSS.id, "198.18.1.1", T0, "a")], RULESET.rules).new_alerts[0]
    with pytest.raises(TriageError, match="is new: cannot reopen"):
        store.reopen(aid, "ana")
    store.acknowledge(aid, "ana", "on it", at=T0 + 60)
    with pytest.raises(TriageError, match="cannot acknowledge"):
        store.acknowledge(aid, "bob")
    store.assign(aid, "ana", "bob")
    with pytest.raises(TriageError, match="unknown close reason"):
        store.close(aid, "bob", "fixed")
    store.close(aid, "bob", "duplicate", "same as #1")
    alert = store.reopen(aid, "carol", "not a duplicate after all")
    assert alert.status == "assigned" and alert.close_reason is None
    history = store.history(aid)
    assert [(h.who, h.action) for h in history] == [
        ("socctl-detect", "created"), ("ana", "acknowledge"), ("ana", "assign"),
        ("bob", "close"), ("carol", "reopen")]
    assert history[3].note == "same as #1"
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE alert_history SET who='mallory'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM alert_history")


def test_suppressions_match_entity_by_value_or_cidr_until_they_expire(
        conn: sqlite3.Connection) -> None:
    today = dt.date(2026, 11, 22)
    active = Suppression(id="scanner", rule="*", match={"source.ip": "198.19.128.0/25"},
                         owner="soc", reason="SOC scanner", expires=today)
    expired = Suppression(id="old", rule=XSS.id, match={"source.ip": "198.18.9.9"},
                          owner="soc", reason="old exception", expires=today - dt.timedelta(1))
    store = AlertStore(conn)
    now = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC).timestamp()
    result = store.record([hit(XSS.id, "198.19.128.7", T0, "a"),
                           hit(XSS.id, "198.19.128.200", T0, "b"),
                           hit(XSS.id, "198.18.9.9", T0, "c")],
                          RULESET.rules, [active, expired], now=now)
    assert result.suppressed == 1
    assert sorted(a.entity["source.ip"] for a in store.query()) == ["198.18.9.9",
                                                                     "198.19.128.200"]
    assert store.stats()["suppressed_hits"] == 1


def test_checkpoint_evaluates_each_stored_event_once_and_skips_none(
        conn: sqlite3.Connection, detector: Detector) -> None:
    insert_rows(conn, [xss("198.18.1.1", T0, 1)])
    first = detector.run(conn, incremental=True)
    assert (first.events, first.record.hits) == (1, 1)
    assert detector.run(conn, incremental=True).events == 0
    # a late event: stored now with an old timestamp, still evaluated exactly once
    insert_rows(conn, [xss("198.18.1.3", T0 - 86400, 2), xss("198.18.1.1", T0 + 5, 3)])
    late = detector.run(conn, incremental=True)
    assert (late.events, late.record.hits) == (2, 2)
    assert detector.run(conn, incremental=True).events == 0
    total = conn.execute("SELECT SUM(count) FROM alerts").fetchone()[0]
    assert total == 3


def test_correlation_window_spanning_two_scheduled_runs_is_one_alert(
        conn: sqlite3.Connection, detector: Detector) -> None:
    insert_rows(conn, [ssh_fail("198.18.2.2", T0 + i) for i in range(6)])
    assert detector.run(conn, incremental=True).record.new_alerts == []  # 6 < 10
    insert_rows(conn, [ssh_fail("198.18.2.2", T0 + 6 + i) for i in range(20)])
    second = detector.run(conn, incremental=True)
    brute = [a for a in AlertStore(conn).query() if a.rule_id == BRUTE.id]
    assert len(brute) == 1 and brute[0].count == 26 and second.record.new_alerts
    insert_rows(conn, [ssh_fail("198.18.2.2", T0 + 30 + i) for i in range(5)])
    detector.run(conn, incremental=True)
    brute = [a for a in AlertStore(conn).query() if a.rule_id == BRUTE.id]
    assert len(brute) == 1 and brute[0].count == 31


def test_a_late_event_that_completes_a_window_is_seen_by_the_scheduled_run(
        conn: sqlite3.Connection, detector: Detector) -> None:
    """Nine failures, then the tenth, older, delivered later (spooled through an outage):
    the scheduled run saw only windows closing at or before the late event, and the
    attack was never reported, while --all reported it."""
    insert_rows(conn, [ssh_fail("198.18.3.3", T0 + 200 + 10 * i, i) for i in range(9)])
    assert detector.run(conn, incremental=True).record.new_alerts == []
    insert_rows(conn, [ssh_fail("198.18.3.3", T0 + 100, 99)])
    assert detector.run(conn, incremental=True).record.new_alerts
    [brute] = [a for a in AlertStore(conn).query() if a.rule_id == BRUTE.id]
    assert brute.count == 10


def test_a_correlation_of_a_correlation_reaches_back_both_timespans(
        conn: sqlite3.Connection, detector: Detector) -> None:
    """"Success after brute force" (15 min) counts the windows of the brute force (5 min):
    with a success 17 min after the failures began, the scheduled run read back one
    timespan only, missed the brute force's start and reported nothing."""
    insert_rows(conn, [ssh_fail("198.18.4.4", T0 + 20 * i, i) for i in range(10)])
    detector.run(conn, incremental=True)
    insert_rows(conn, [ssh_ok("198.18.4.4", T0 + 1000)])
    detector.run(conn, incremental=True)
    titles = {a.rule_title for a in AlertStore(conn).query()}
    assert any(t.startswith("SSH Successful Login After Brute Force") for t in titles), titles


# -- concurrency: two connections on one store file, as two processes would have ----------

def two_stores(path: Path) -> tuple[AlertStore, AlertStore]:
    """Two AlertStores on one file, opened as the CLI opens it. The second waits at most
    0.1 s for the write lock, so a command that must wait fails fast instead of after 30 s."""
    open_store(path).close()  # the collector's schema
    first, second = AlertStore(open_db(path)), AlertStore(open_db(path))
    second.conn.execute("PRAGMA busy_timeout = 100")
    return first, second


def when_it_runs(store: AlertStore, prefix: str, action: Callable[[], None]) -> list[str]:
    """Run ``action`` once, as ``store``'s connection starts its first statement beginning
    with ``prefix``: another process's command landing at exactly that point of this one."""
    fired: list[str] = []

    def trace(sql: str) -> None:
        if not fired and sql.lstrip().upper().startswith(prefix):
            fired.append(sql)
            action()

    store.conn.set_trace_callback(trace)
    return fired


def assert_audit_trail_true(store: AlertStore, alert_id: int) -> None:
    history = store.history(alert_id)
    for before, after in itertools.pairwise(history):
        assert after.from_status == before.to_status, [h.to_dict() for h in history]
    alert = store.get(alert_id)
    assert alert.status == history[-1].to_status
    closed = alert.status == "closed"
    assert (alert.close_reason is not None, alert.closed is not None) == (closed, closed), alert


@pytest.mark.parametrize("moment", ["BEGIN", "UPDATE ALERTS"])
def test_two_analysts_on_one_alert_one_wins_and_the_trail_stays_true(
        tmp_path: Path, moment: str) -> None:
    """Ana acks alert 1 while Bob closes it. Both commands succeeded: the ack's status
    check was read outside its write, so the alert ended acknowledged with a close reason
    and close time, and the trail said "ana: new -> acknowledged" after Bob's close.
    Bob's close lands as Ana's command starts its transaction, or at its UPDATE."""
    ana, bob = two_stores(tmp_path / "events.db")
    aid = ana.record([hit(XSS.id, "198.18.1.1", T0, "e1")], RULESET.rules).new_alerts[0]
    outcome: dict[str, str] = {}

    def bob_closes() -> None:
        try:
            bob.close(aid, "bob", "false_positive")
            outcome["bob"] = "closed"
        except StoreBusy:  # Ana's command holds the store: Bob retries later
            outcome["bob"] = "busy"

    fired = when_it_runs(ana, moment, bob_closes)
    try:
        ana.acknowledge(aid, "ana")
        outcome["ana"] = "acknowledged"
    except TriageError as exc:
        assert "is closed: cannot acknowledge" in str(exc)
        outcome["ana"] = "refused"
    ana.conn.set_trace_callback(None)
    assert fired and "bob" in outcome
    assert outcome in ({"bob": "closed", "ana": "refused"},
                       {"bob": "busy", "ana": "acknowledged"}), outcome
    assert_audit_trail_true(bob, aid)


@pytest.mark.parametrize("moment", ["BEGIN", "INSERT INTO ALERTS"])
def test_two_detect_runs_at_once_raise_one_alert_per_event(tmp_path: Path, moment: str
                                                            ) -> None:
    """A scheduled run and an analyst's `detect run --since 1h` see the same new event:
    each read "no alert holds it, no open alert" before either wrote, and two alerts held
    the one event."""
    first, second = two_stores(tmp_path / "events.db")
    hits = [hit(XSS.id, "198.18.2.2", T0, "z1")]
    outcome: list[str] = []

    def the_other_run() -> None:
        try:
            second.record(hits, RULESET.rules)
            outcome.append("recorded")
        except StoreBusy:  # it waits for the first run, then tries again
            outcome.append("busy")

    fired = when_it_runs(first, moment, the_other_run)
    first.record(hits, RULESET.rules)
    first.conn.set_trace_callback(None)
    assert fired and outcome
    if outcome == ["busy"]:
        assert second.record(hits, RULESET.rules).already_alerted == 1
    holders = second.conn.execute("SELECT alert_id FROM alert_events WHERE event_id = 'z1'"
                                  ).fetchall()
    assert len(holders) == 1, holders
    assert len(second.query()) == 1


@pytest.mark.parametrize("moment", ["BEGIN", "INSERT OR IGNORE INTO ALERT_EVENTS"])
def test_a_new_event_never_joins_an_alert_closed_before_the_run_wrote(
        tmp_path: Path, moment: str) -> None:
    """The analyst's close committed between the run's search for an open alert and its
    first write: event e2 was added to the closed alert, and no analyst ever saw it (later
    runs do not raise it again either: its rule and entity already hold it)."""
    detect, analyst = two_stores(tmp_path / "events.db")
    aid = detect.record([hit(XSS.id, "198.18.1.1", T0, "e1")], RULESET.rules).new_alerts[0]
    outcome: list[str] = []

    def analyst_closes() -> None:
        try:
            analyst.close(aid, "ana", "false_positive")
            outcome.append("closed")
        except StoreBusy:
            outcome.append("busy")

    fired = when_it_runs(detect, moment, analyst_closes)
    detect.record([hit(XSS.id, "198.18.1.1", T0 + 60, "e2")], RULESET.rules)
    detect.conn.set_trace_callback(None)
    assert fired and outcome
    open_events = {e for a in analyst.query(status=["new", "acknowledged", "assigned"])
                   for e in a.sample_event_ids}
    if outcome == ["closed"]:  # closed before the run's transaction: e2 is in an open alert
        assert "e2" in open_events
    else:  # the run went first; the analyst's retry closes the alert with e2 in it
        assert analyst.get(aid).sample_event_ids == ("e1", "e2")


def test_the_checkpoint_never_moves_backwards(conn: sqlite3.Connection) -> None:
    """Of two incremental runs at once, the one that started first (lower top rowid) can
    finish last: its checkpoint sent the next run back over rows already evaluated."""
    store = AlertStore(conn)
    store.set_checkpoint("default", 120)
    store.set_checkpoint("default", 80)
    assert store.checkpoint("default") == 120


def test_recording_hits_on_one_alert_is_linear(conn: sqlite3.Connection) -> None:
    """Every hit recounted all its alert's events (COUNT, MIN, MAX over alert_events):
    one scanner's 8,000 events held the write lock for 27 s, and analysts' commands
    failed as "database is locked". Counted in SQLite VM steps, not seconds, so the
    test measures the work and not the machine: twice the hits, about twice the work."""

    def steps(n: int, ip: str) -> int:
        counter = [0]

        def tick() -> int:
            counter[0] += 1
            return 0

        conn.set_progress_handler(tick, 100)
        AlertStore(conn).record([hit(XSS.id, ip, T0 + i, f"{ip}-{i}") for i in range(n)],
                                RULESET.rules)
        conn.set_progress_handler(None, 0)
        return counter[0]

    small, large = steps(500, "198.18.5.1"), steps(1000, "198.18.5.2")
    assert large < 2.5 * small, (small, large)  # quadratic: ~4x
    counts = sorted(a.count for a in AlertStore(conn).query())
    assert counts == [500, 1000]


def test_a_correlation_alert_is_seen_from_its_first_event_not_its_window_start(
        conn: sqlite3.Connection, detector: Detector) -> None:
    """Twelve failed logins in 11 s: the brute-force alert's first_seen was the 5-minute
    window's start, 4 min 49 s before the first failure."""
    insert_rows(conn, [ssh_fail("198.18.6.6", T0 + i, i) for i in range(12)])
    detector.run(conn)
    [brute] = [a for a in AlertStore(conn).query() if a.rule_id == BRUTE.id]
    assert (brute.first_seen, brute.last_seen, brute.count) == (T0, T0 + 11, 12)


def test_suppressed_events_are_counted_once_however_often_they_are_evaluated(
        conn: sqlite3.Connection) -> None:
    """`alerts stats` said 3, 6, then 9 suppressed hits for the same three events
    evaluated by three runs (`detect run --all`, `--since`)."""
    scanner = Suppression(id="scanner", rule="*", match={"source.ip": "198.19.128.0/25"},
                          owner="soc", reason="SOC scanner", expires=dt.date(2099, 1, 1))
    store = AlertStore(conn)
    hits = [hit(XSS.id, "198.19.128.7", T0 + i, f"s{i}") for i in range(3)]
    for _ in range(3):
        assert store.record(hits, RULESET.rules, [scanner]).suppressed == 3  # this run's
    assert store.stats()["suppressed_hits"] == 3
    store.record([hit(XSS.id, "198.19.128.7", T0 + 9, "s9")], RULESET.rules, [scanner])
    assert store.stats()["suppressed_hits"] == 4


def test_a_store_from_before_suppressed_events_opens_and_keeps_its_numbers(
        tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    old, _ = two_stores(path)
    old.record([hit(XSS.id, "198.18.1.1", T0, "a")], RULESET.rules)
    old.conn.execute("INSERT INTO suppressed_hits VALUES ('scanner', 'r', '{}', 7, 0)")
    old.conn.execute("DROP TABLE suppressed_events")  # as an older socctl made the file
    old.conn.commit()
    store = AlertStore(open_db(path))
    assert [a.count for a in store.query()] == [1]
    assert store.stats()["suppressed_hits"] == 7
    scanner = Suppression(id="scanner", rule="*", match={"source.ip": "198.19.128.7"},
                          owner="soc", reason="SOC scanner", expires=dt.date(2099, 1, 1))
    store.record([hit(XSS.id, "198.19.128.7", T0, "s1")], RULESET.rules, [scanner])
    assert store.stats()["suppressed_hits"] == 8


@pytest.mark.parametrize(("field", "pattern", "value", "suppressed"), [
    ("user_agent.original", "sqlmap/1.7.2#stable (https://sqlmap.org)",
     "sqlmap/1.7.2#stable (https://sqlmap.org)", True),
    ("user_agent.original", "SQLMAP/1.7.2", "sqlmap/1.7.2", True),
    ("url.path", "/wp-login.php", "/wp-login.php", True),
    ("url.path", "/wp-login.php", "/wp-admin.php", False),
    ("source.ip", "198.19.128.0/25", "198.19.128.7", True),
    ("source.ip", "198.19.128.0/25", "198.19.128.200", False),
    ("source.ip", "2001:db8::/32", "2001:DB8::1", True),
    ("source.ip", "198.18.9.9", "198.18.9.9", True),
    ("host.name", "10.0.0.0/8", "web-10", False),  # a network never equals a name
])
def test_a_suppression_compares_text_as_text_and_addresses_by_network(
        field: str, pattern: str, value: str, suppressed: bool) -> None:
    sup = Suppression(id="x", rule="*", match={field: pattern}, owner="soc",
                      reason="pentest window", expires=dt.date(2099, 1, 1))
    found = suppression_for([sup], XSS, {field: value}, dt.date(2026, 11, 22))
    assert (found is not None) == suppressed


@pytest.mark.parametrize(("at", "timezone", "suppressed"), [
    ("2026-12-31T23:30:00+07:00", "Asia/Ho_Chi_Minh", True),
    ("2027-01-01T00:30:00+07:00", "Asia/Ho_Chi_Minh", False),
    ("2027-01-01T06:59:00+07:00", "Asia/Ho_Chi_Minh", False),  # still Dec 31 in UTC
    ("2027-01-01T06:59:00+07:00", "UTC", True),  # a store configured for UTC
])
def test_a_suppression_ends_at_midnight_on_the_agencys_clock(
        conn: sqlite3.Connection, at: str, timezone: str, suppressed: bool) -> None:
    """"Last day 2026-12-31" went on suppressing until 07:00 on Jan 1 in Hanoi: expiry
    was judged on the UTC date."""
    pentest = Suppression(id="pentest", rule="*", match={"source.ip": "198.18.8.8"},
                          owner="soc", reason="pentest window", expires=dt.date(2026, 12, 31))
    now = dt.datetime.fromisoformat(at).timestamp()
    result = AlertStore(conn).record([hit(XSS.id, "198.18.8.8", now, "p1")], RULESET.rules,
                                     [pentest], now=now, timezone=timezone)
    assert result.suppressed == int(suppressed)


def test_the_agencys_day_is_the_timezone_setting(tmp_path: Path) -> None:
    late_utc = dt.datetime(2026, 12, 31, 17, 30, tzinfo=dt.UTC).timestamp()
    assert day_in(load_settings(environ={}).timezone, late_utc) == dt.date(2027, 1, 1)
    assert day_in("UTC", late_utc) == dt.date(2026, 12, 31)
    assert load_settings(environ={"SOCCTL_TIMEZONE": "UTC"}).timezone == "UTC"
    config = tmp_path / "socctl.toml"
    config.write_text('[socctl]\ntimezone = "Asia/Saigon7"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"socctl.toml:2: socctl.timezone: unknown time "):
        load_settings(config, environ={})


def test_a_suppression_the_model_refuses_is_a_located_error_and_nothing_is_written(
        conn: sqlite3.Connection, tmp_path: Path) -> None:
    store = AlertStore(conn)
    alert = store.get(store.record([hit(XSS.id, "198.18.1.1", T0, "a")], RULESET.rules
                                   ).new_alerts[0])
    with pytest.raises(TriageError, match=r"from-triage.yml: owner: suppression owner: "):
        add_suppression(tmp_path, alert, owner="", reason="known scanner",
                        expires=dt.date(2099, 1, 1), today=dt.date(2026, 11, 22))
    assert not (tmp_path / "suppressions").exists()


def test_the_library_refuses_a_blank_assignee_and_reopen_returns_to_the_analyst(
        conn: sqlite3.Connection) -> None:
    store = AlertStore(conn)
    aid = store.record([hit(XSS.id, "198.18.1.1", T0, "a")], RULESET.rules).new_alerts[0]
    with pytest.raises(TriageError, match="assignee is empty"):
        store.assign(aid, "ana", " ")
    assert store.get(aid).status == "new"
    assert store.assign(aid, "ana", " bob ").assignee == "bob"
    store.close(aid, "bob", "benign")
    assert store.reopen(aid, "bob").status == "assigned"


def test_stats_count_zero_false_positives_for_a_rule_with_nothing_closed(
        conn: sqlite3.Connection) -> None:
    """`false_positives` was null (SUM over NULL close reasons) while `closed` was 0."""
    AlertStore(conn).record([hit(XSS.id, "198.18.1.1", T0, "a")], RULESET.rules)
    [rule] = AlertStore(conn).stats()["per_rule"]
    assert (rule["closed"], rule["false_positives"], rule["false_positive_rate"]) == (
        0, 0, None)
    assert sum(r["false_positives"] for r in AlertStore(conn).stats()["per_rule"]) == 0
