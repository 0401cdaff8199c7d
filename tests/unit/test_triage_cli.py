"""`socctl alerts` as an analyst runs it, on a store file of known alerts: what is refused
(exit code, message, nothing changed), what is shown, and what a script gets."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from socctl.cli.main import cli
from socctl.detection import runner
from socctl.detection.engine import Hit
from socctl.detection.loader import load_rules
from socctl.detection.runner import open_db
from socctl.detection.testing import event_row, insert_rows, open_store
from socctl.triage.store import Alert, AlertStore

DETECTIONS = Path(__file__).resolve().parents[2] / "detections"
RULESET = load_rules(DETECTIONS)
XSS = next(r for r in RULESET.rules if r.title.startswith("Cross-Site"))
T0 = 1_795_000_000.0


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Alert 1 on 198.18.1.1, alert 2 on an entity with no value (a PostgreSQL line
    without %h names no source)."""
    monkeypatch.setenv("SOCCTL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SOCCTL_USER", "ana")
    monkeypatch.delenv("COLUMNS", raising=False)  # tables as piped: at their natural width
    path = tmp_path / "events.db"
    open_store(path).close()
    conn = open_db(path)
    AlertStore(conn).record([Hit(XSS.id, (("source.ip", "198.18.1.1"),), ("a",), T0, T0),
                             Hit(XSS.id, (("source.ip", None),), ("b",), T0, T0)],
                            RULESET.rules)
    conn.close()
    return path


def alerts(db: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["alerts", *args, "--store", str(db)])


def status(db: Path, alert_id: int) -> str:
    conn = open_db(db)
    try:
        return AlertStore(conn).get(alert_id).status
    finally:
        conn.close()


@pytest.mark.parametrize(("alert_id", "options", "code", "message"), [
    ("1", ["--reason", "FP"], 2, "'FP' is too short: at least 5 characters"),
    ("1", ["--reason", "known scanner", "--expires", "2020-01-31"], 2,
     "2020-01-31 is in the past"),
    ("2", ["--reason", "known scanner"], 1,
     "alert 2 has no entity value (source.ip is empty): nothing for a suppression to match"),
])
def test_a_bad_suppression_is_refused_clearly_and_nothing_is_written_or_closed(
        db: Path, tmp_path: Path, alert_id: str, options: list[str], code: int,
        message: str) -> None:
    """A short reason or an empty entity was "internal error: ValidationError" (exit 70);
    an expiry six years ago was written, never applied, and closed the alert as benign."""
    rules = tmp_path / "det"
    if "--expires" not in options:
        options = [*options, "--expires", "2099-01-01"]
    result = alerts(db, "suppress", alert_id, *options, "--rules", str(rules))
    assert result.exit_code == code, result.output
    assert message in result.output and "internal error" not in result.output
    assert not (rules / "suppressions").exists()
    assert status(db, int(alert_id)) == "new"


@pytest.mark.parametrize("to", ["", "   "])
def test_an_alert_cannot_be_assigned_to_nobody(db: Path, to: str) -> None:
    """`--to ""` was stored as assigned to "", and a reopen then gave "acknowledged"."""
    result = alerts(db, "assign", "1", "--to", to)
    assert result.exit_code == 2, result.output
    assert "must name an analyst" in result.output
    assert status(db, 1) == "new"


def json_alerts(db: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["-o", "json", "alerts", *args, "--store", str(db)])


def test_a_list_cut_at_its_limit_says_so_and_json_stays_a_list(db: Path) -> None:
    """`alerts list` showed at most 1000 alerts and said "1000 alert(s)" of 1005: a
    script closing every alert of a rule missed the oldest five."""
    conn = open_db(db)
    AlertStore(conn).record([Hit(XSS.id, (("source.ip", f"198.51.{i // 250}.{i % 250}"),),
                                 (f"x{i}",), T0 + 10 + i, T0 + 10 + i) for i in range(999)],
                            RULESET.rules)
    conn.close()
    default = json_alerts(db, "list")
    assert default.exit_code == 0, default.output
    assert len(json.loads(default.stdout)) == 1000
    assert "showing 1000 of 1001 alerts" in default.stderr
    cut = json_alerts(db, "list", "--limit", "10")
    assert [a["id"] for a in json.loads(cut.stdout)] == list(range(1001, 991, -1))
    assert "showing 10 of 1001" in cut.stderr and "--limit 0 for all" in cut.stderr
    table = alerts(db, "list", "--limit", "3")
    assert "3 alert(s)" in table.stdout and "showing 3 of 1001" in table.stderr
    everything = json_alerts(db, "list", "--limit", "0")
    assert len(json.loads(everything.stdout)) == 1001 and everything.stderr == ""
    whole = json_alerts(db, "list", "--limit", "1001")
    assert len(json.loads(whole.stdout)) == 1001 and whole.stderr == ""


def test_show_shortens_long_messages_in_the_table_and_json_keeps_them_whole(
        db: Path) -> None:
    """A scanner's 20 KB query string was printed whole: 244 KB of table for one event
    in `alerts show > file`, up to 50 events an alert."""
    line = (f'198.18.9.9 - - [22/Nov/2026:08:00:01 +0000] "GET /q?x=%3Cscript%3E{"A" * 20000}'
            ' HTTP/1.1" 200 5 "-" "Mozilla/5.0"')
    row = event_row("nginx.access", line, T0, {"source.ip": "198.18.9.9"})
    conn = open_db(db)
    insert_rows(conn, [row])
    [aid] = AlertStore(conn).record([Hit(XSS.id, (("source.ip", "198.18.9.9"),),
                                         (str(row[0]),), T0, T0)], RULESET.rules).new_alerts
    conn.close()
    table = alerts(db, "show", str(aid))
    assert table.exit_code == 0, table.output
    assert max(len(x) for x in table.stdout.splitlines()) < 400
    assert "GET /q?x=%3Cscript%3EAAAA" in table.stdout and "…" in table.stdout
    shown = json.loads(json_alerts(db, "show", str(aid)).stdout)
    assert [e["message"] for e in shown["events"]] == [line]


def hold_write_lock(db: Path) -> sqlite3.Connection:
    """Another writer (a detect run, the collector) in the middle of its transaction."""
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_a_busy_store_is_a_clear_retryable_error(db: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer holding the store past the busy timeout made every triage command fail as
    "internal error: OperationalError: database is locked" (exit 70), no hint."""
    monkeypatch.setattr(runner, "BUSY_TIMEOUT", 0.1)
    holder = hold_write_lock(db)
    try:
        result = alerts(db, "ack", "1", "2")
    finally:
        holder.rollback()
        holder.close()
    assert result.exit_code == 75, result.output
    assert "error: " in result.stderr and "the event store is busy" in result.stderr
    assert "try again" in result.stderr and "internal error" not in result.output
    assert "not changed: 1 2" in result.stderr
    assert (status(db, 1), status(db, 2)) == ("new", "new")


def test_a_batch_stopped_by_a_busy_store_reports_what_it_already_changed(
        db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`alerts close 1 2` failing at 2 printed nothing about having closed 1."""
    monkeypatch.setattr(runner, "BUSY_TIMEOUT", 0.1)
    close = AlertStore.close
    holders: list[sqlite3.Connection] = []

    def close_then_a_writer_comes(self: AlertStore, *args: Any, **kwargs: Any) -> Alert:
        closed = close(self, *args, **kwargs)
        if not holders:
            holders.append(hold_write_lock(db))
        return closed

    monkeypatch.setattr(AlertStore, "close", close_then_a_writer_comes)
    try:
        result = json_alerts(db, "close", "1", "2", "--reason", "benign")
    finally:
        for holder in holders:
            holder.rollback()
            holder.close()
    assert result.exit_code == 75, result.output
    assert [(a["id"], a["status"]) for a in json.loads(result.stdout)] == [(1, "closed")]
    assert "the event store is busy" in result.stderr and "not changed: 2" in result.stderr
    assert (status(db, 1), status(db, 2)) == ("closed", "new")


def test_a_locked_store_met_outside_the_alert_store_is_no_internal_error(
        db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def locked(self: AlertStore, alert_id: int) -> Alert:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(AlertStore, "get", locked)
    result = alerts(db, "show", "1")
    assert result.exit_code == 75, result.output
    assert "error: the event store is busy (database is locked)" in result.stderr


def test_a_suppression_whose_alert_could_not_be_closed_is_renewed_not_doubled(
        db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The suppression file and the store cannot change together. With the store busy,
    `suppress --close` wrote the file, failed to close, and said only that the store was
    busy; running it again, as told, wrote a second suppression of the same rule and
    entity. Now the failure says what was written and what was not, and the re-run closes
    the alert and renews the one suppression."""
    rules = tmp_path / "det"
    monkeypatch.setattr(runner, "BUSY_TIMEOUT", 0.1)

    def suppress(expires: str) -> list[str]:
        return ["suppress", "1", "--reason", "the agency's own scanner", "--expires",
                expires, "--close", "--rules", str(rules)]

    holder = hold_write_lock(db)
    try:
        first = alerts(db, *suppress("2099-01-01"))
    finally:
        holder.rollback()
        holder.close()
    assert first.exit_code == 75, first.output
    assert "alert 1 not closed: the same command again closes it" in first.stderr
    assert "the event store is busy" in first.stderr
    assert status(db, 1) == "new"
    written = rules / "suppressions" / "from-triage.yml"
    [entry] = yaml.safe_load(written.read_text())["suppressions"]

    again = json_alerts(db, *suppress("2099-06-30"))
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["renewed"] is True
    assert status(db, 1) == "closed"
    [renewed] = yaml.safe_load(written.read_text())["suppressions"]
    assert renewed["id"] == entry["id"] and renewed["created"] == entry["created"]
    assert str(renewed["expires"]) == "2099-06-30"
