"""The alert tables, in the same SQLite file as the events (contract with #6).

* ``alerts``: one row per rule and entity within the rule's window (grouping), with count,
  first_seen, last_seen and status; ``alert_events`` lists every event an alert covers (so
  a count is exact and an event is never counted twice).
* ``alert_history``: the audit trail; triggers make it append-only (no UPDATE, no DELETE).
* ``detect_checkpoint``: the last stored row a scheduled run has evaluated.
* ``suppressed_hits``: per suppression, rule and entity, how many distinct events it kept
  from being alerts; ``suppressed_events`` lists them (as ``alert_events`` does for alerts).

Every table is ``CREATE ... IF NOT EXISTS``: a store made by an older socctl gets the new
ones when it is first opened and keeps its rows.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from socctl.config import DEFAULT_TIMEZONE, tzinfo_of
from socctl.detection.engine import Hit
from socctl.detection.model import LEVEL_ORDER, Rule, Suppression, parse_duration
from socctl.errors import SocctlError
from socctl.store.sqlite import StoreBusy, is_busy

Status = Literal["new", "acknowledged", "assigned", "closed"]
CloseReason = Literal["true_positive", "false_positive", "benign", "duplicate"]
STATUSES: tuple[str, ...] = ("new", "acknowledged", "assigned", "closed")
CLOSE_REASONS: tuple[str, ...] = ("true_positive", "false_positive", "benign", "duplicate")
SAMPLE_SIZE = 10

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  rule_id TEXT NOT NULL, rule_title TEXT NOT NULL, level TEXT NOT NULL, tags TEXT NOT NULL,
  entity TEXT NOT NULL,            -- JSON object {ecs field: value}
  entity_key TEXT NOT NULL,        -- canonical JSON, for grouping
  first_seen REAL NOT NULL, last_seen REAL NOT NULL, count INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'new', assignee TEXT, close_reason TEXT,
  created REAL NOT NULL, acknowledged REAL, closed REAL
);
CREATE INDEX IF NOT EXISTS alerts_group ON alerts(rule_id, entity_key, last_seen);
CREATE INDEX IF NOT EXISTS alerts_status ON alerts(status);
CREATE TABLE IF NOT EXISTS alert_events (
  alert_id INTEGER NOT NULL REFERENCES alerts(id), event_id TEXT NOT NULL, ts REAL,
  PRIMARY KEY (alert_id, event_id)
);
CREATE INDEX IF NOT EXISTS alert_events_event ON alert_events(event_id);
CREATE TABLE IF NOT EXISTS alert_history (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, alert_id INTEGER NOT NULL REFERENCES alerts(id),
  at REAL NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL,
  from_status TEXT, to_status TEXT, note TEXT
);
CREATE TRIGGER IF NOT EXISTS alert_history_no_update BEFORE UPDATE ON alert_history
BEGIN SELECT RAISE(ABORT, 'alert_history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS alert_history_no_delete BEFORE DELETE ON alert_history
BEGIN SELECT RAISE(ABORT, 'alert_history is append-only'); END;
CREATE TABLE IF NOT EXISTS detect_checkpoint (
  name TEXT PRIMARY KEY, last_rowid INTEGER NOT NULL, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS suppressed_hits (
  suppression_id TEXT NOT NULL, rule_id TEXT NOT NULL, entity_key TEXT NOT NULL,
  count INTEGER NOT NULL, last_seen REAL NOT NULL,  -- count: distinct suppressed events
  PRIMARY KEY (suppression_id, rule_id, entity_key)
);
CREATE TABLE IF NOT EXISTS suppressed_events (
  suppression_id TEXT NOT NULL, rule_id TEXT NOT NULL, entity_key TEXT NOT NULL,
  event_id TEXT NOT NULL,
  PRIMARY KEY (suppression_id, rule_id, entity_key, event_id)
) WITHOUT ROWID;
"""


class TriageError(SocctlError):
    """An alert operation that the lifecycle does not allow, or an unknown alert."""


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    rule_id: str
    rule_title: str
    level: str
    tags: tuple[str, ...]
    entity: dict[str, str | None]
    first_seen: float
    last_seen: float
    count: int
    status: str
    assignee: str | None
    close_reason: str | None
    created: float
    acknowledged: float | None
    closed: float | None
    sample_event_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "rule_id": self.rule_id, "rule_title": self.rule_title,
            "level": self.level, "tags": list(self.tags), "entity": self.entity,
            **self.entity,
            "first_seen": _iso(self.first_seen), "last_seen": _iso(self.last_seen),
            "count": self.count, "status": self.status, "assignee": self.assignee,
            "close_reason": self.close_reason, "created": _iso(self.created),
            "sample_event_ids": list(self.sample_event_ids),
        }


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    alert_id: int
    at: float
    who: str
    action: str
    from_status: str | None
    to_status: str | None
    note: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"alert_id": self.alert_id, "at": _iso(self.at), "who": self.who,
                "action": self.action, "from": self.from_status, "to": self.to_status,
                "note": self.note}


@dataclass
class RecordResult:
    """What one detection run did to the alerts table."""

    hits: int = 0
    new_alerts: list[int] = field(default_factory=list)
    updated_alerts: list[int] = field(default_factory=list)
    new_events: int = 0
    suppressed: int = 0
    already_alerted: int = 0  # hits whose every event is in an alert already (any status)

    def to_dict(self) -> dict[str, Any]:
        return {"hits": self.hits, "new_alerts": self.new_alerts,
                "updated_alerts": self.updated_alerts, "new_events": self.new_events,
                "suppressed": self.suppressed, "already_alerted": self.already_alerted}


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


def day_in(timezone: str, now: float | None = None) -> dt.date:
    """The date at ``now`` on the clock ``timezone`` names (the ``timezone`` setting): a
    suppression's ``expires`` is its last day on the agency's clock, not UTC's."""
    return dt.datetime.fromtimestamp(time.time() if now is None else now,
                                     tzinfo_of(timezone)).date()


def _entity_key(entity: dict[str, str | None]) -> str:
    return json.dumps(entity, sort_keys=True)


@functools.lru_cache(maxsize=4096)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


@functools.lru_cache(maxsize=65536)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _value_matches(pattern: str, value: str | None) -> bool:
    """A network (CIDR or one address) contains an address; anything else is the same
    text, case aside. Every pattern with a "/" was taken for a CIDR, so a suppression of a
    user agent ("sqlmap/1.7.2") or a URL path ("/wp-login.php"), even one written by
    ``alerts suppress``, never matched."""
    if value is None:
        return False
    network = _network(pattern)
    if network is not None:
        address = _address(value)
        if address is not None:
            return address in network
    return pattern.casefold() == value.casefold()


def suppression_for(suppressions: Sequence[Suppression], rule: Rule,
                    entity: dict[str, str | None], today: dt.date) -> Suppression | None:
    """The first active suppression covering this rule and entity (CIDRs allowed)."""
    for s in suppressions:
        if not s.active(today) or s.rule not in ("*", rule.id, rule.name):
            continue
        if all(_value_matches(p, entity.get(k)) for k, p in s.match.items()):
            return s
    return None


class AlertStore:
    """Alert tables on an SQLite connection (usually the events store's file)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        with self._busy_is_an_error():  # a new table in an older store needs the write lock
            conn.executescript(SCHEMA)

    @contextmanager
    def _busy_is_an_error(self) -> Iterator[None]:
        """A store held by another writer past the busy timeout is :class:`StoreBusy`
        (retry later), not an internal error."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            raise StoreBusy.of(self.conn, exc) from exc

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """One write transaction holding the write lock from before its first read.

        Python's sqlite3 (legacy mode) begins a transaction only at the first INSERT or
        UPDATE, so what was read to decide on a write (an alert's status, whether an open
        alert exists) could be changed by another process before the write: two analysts'
        commands both succeeded on one alert, two detect runs each opened an alert for one
        event. ``BEGIN IMMEDIATE`` takes the lock first; others wait (busy timeout). A
        transaction the caller left open on this connection (the engine's temporary
        lookup tables) is committed first, as ``with conn:`` did: continuing it would
        read an older snapshot than the lock protects.
        """
        with self._busy_is_an_error():
            if self.conn.in_transaction:
                self.conn.commit()
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.conn.rollback()
                raise
            self.conn.commit()

    # -- detection side ----------------------------------------------------------------
    def record(self, hits: Iterable[Hit], rules: Sequence[Rule],
               suppressions: Sequence[Suppression] = (), *, now: float | None = None,
               timezone: str = DEFAULT_TIMEZONE) -> RecordResult:
        """Group hits into alerts: one open alert per rule and entity within the window.

        A hit extends the newest alert of its rule and entity whose last event is within
        the rule's window and that is not closed; otherwise it opens a new alert. Events
        already counted by that alert are not counted again. A hit none of whose events is
        new to the alerts of its rule and entity, closed ones included, changes nothing: a
        re-run over the same events (``--all``, ``--from``) once reopened, as a new alert,
        every false positive an analyst had closed.

        A suppression applies through its ``expires`` day on the ``timezone`` clock.
        """
        now = time.time() if now is None else now
        today = day_in(timezone, now)
        by_id = {r.id: r for r in rules}
        result = RecordResult()
        ordered = sorted(hits, key=lambda h: (h.rule_id, h.first_ts))
        # the lock from the first read: two runs at once each saw "no alert holds this
        # event" and opened one; a hit joined an alert an analyst closed in between
        with self._writing():
            for hit in ordered:
                result.hits += 1
                rule = by_id[hit.rule_id]
                entity = dict(hit.entity)
                key = _entity_key(entity)
                sup = suppression_for(suppressions, rule, entity, today)
                if sup is not None:
                    result.suppressed += 1
                    # distinct events, as alerts count them: a re-run over the same events
                    # (--all, --since, a correlation reaching back) counted them again
                    kept = self.conn.executemany(
                        "INSERT OR IGNORE INTO suppressed_events VALUES (?,?,?,?)",
                        [(sup.id, rule.id, key, e) for e in dict.fromkeys(hit.event_ids)]
                    ).rowcount
                    self.conn.execute(
                        "INSERT INTO suppressed_hits VALUES (?,?,?,?,?) ON CONFLICT DO UPDATE "
                        "SET count = count + excluded.count, "
                        "last_seen = MAX(last_seen, excluded.last_seen)",
                        (sup.id, rule.id, key, max(kept, 0), hit.last_ts))
                    continue
                if not self._has_new_event(rule.id, key, hit.event_ids):
                    result.already_alerted += 1
                    continue
                window = parse_duration(rule.options.window)
                if rule.kind == "correlation":
                    window = max(window, parse_duration(str(rule.sigma.timespan.spec)))
                row = self.conn.execute(
                    "SELECT id FROM alerts WHERE rule_id=? AND entity_key=? AND status != 'closed'"
                    " AND last_seen >= ? AND first_seen <= ? ORDER BY last_seen DESC LIMIT 1",
                    (rule.id, key, hit.first_ts - window, hit.last_ts + window)).fetchone()
                if row is None:
                    cur = self.conn.execute(
                        "INSERT INTO alerts (rule_id, rule_title, level, tags, entity, "
                        "entity_key, first_seen, last_seen, count, created) "
                        "VALUES (?,?,?,?,?,?,?,?,0,?)",
                        (rule.id, rule.title, rule.level, json.dumps(list(rule.tags)),
                         json.dumps(entity), key, hit.first_ts, hit.last_ts, now))
                    alert_id = int(cur.lastrowid or 0)
                    self._history(alert_id, "socctl-detect", "created", None, "new",
                                  f"rule {rule.title}", now)
                    result.new_alerts.append(alert_id)
                else:
                    alert_id = int(row[0])
                    if alert_id not in result.new_alerts + result.updated_alerts:
                        result.updated_alerts.append(alert_id)
                added = self._add_events(alert_id, hit.event_ids)
                result.new_events += len(added)
                # from the rows this hit added, not a recount of the alert's rows: that was
                # quadratic (8,000 hits from one scanner: 27 s under the write lock). The
                # times are the events' own: a correlation's hit starts at its window's
                # start, up to a timespan before the first event, and an analyst pivoting
                # on first_seen looked five minutes early. The hit's bounds only stand in
                # for events that are not in the events table.
                stamps = [ts for ts in added if ts is not None]
                self.conn.execute(
                    "UPDATE alerts SET count = count + :added, "
                    "first_seen = CASE WHEN :new THEN :lo ELSE MIN(first_seen, :lo) END, "
                    "last_seen = CASE WHEN :new THEN :hi ELSE MAX(last_seen, :hi) END "
                    "WHERE id = :id",
                    {"id": alert_id, "added": len(added), "new": row is None,
                     "lo": min(stamps) if stamps else hit.first_ts,
                     "hi": max(stamps) if stamps else hit.last_ts})
        result.updated_alerts = [a for a in result.updated_alerts if a not in result.new_alerts]
        return result

    def _add_events(self, alert_id: int, event_ids: Sequence[str]) -> list[float | None]:
        """Link the events to the alert; the times (None: not in the events table) of the
        ones it did not hold yet."""
        ids = list(dict.fromkeys(event_ids))
        times: dict[str, float] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            times.update(self.conn.execute(
                f"SELECT id, ts FROM events WHERE id IN ({','.join('?' * len(chunk))})",
                chunk).fetchall())
        added: list[float | None] = []
        for event_id in ids:
            ts = times.get(event_id)
            if self.conn.execute("INSERT OR IGNORE INTO alert_events (alert_id, event_id, ts) "
                                 "VALUES (?,?,?)", (alert_id, event_id, ts)).rowcount:
                added.append(ts)
        return added

    def _has_new_event(self, rule_id: str, key: str, event_ids: Sequence[str]) -> bool:
        ids = list(dict.fromkeys(event_ids))
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            (known,) = self.conn.execute(
                "SELECT COUNT(DISTINCT ae.event_id) FROM alert_events ae JOIN alerts a ON "
                "a.id = ae.alert_id WHERE a.rule_id = ? AND a.entity_key = ? AND "
                f"ae.event_id IN ({','.join('?' * len(chunk))})",
                (rule_id, key, *chunk)).fetchone()
            if known < len(chunk):
                return True
        return False

    def checkpoint(self, name: str) -> int:
        row = self.conn.execute("SELECT last_rowid FROM detect_checkpoint WHERE name=?",
                                (name,)).fetchone()
        return int(row[0]) if row else 0

    def set_checkpoint(self, name: str, rowid: int) -> None:
        """Never backwards: of two runs at once, the one that started first (with the lower
        top rowid) may finish last, and the next run evaluated those rows again."""
        with self._writing():
            self.conn.execute(
                "INSERT INTO detect_checkpoint VALUES (?,?,?) ON CONFLICT(name) DO UPDATE SET "
                "last_rowid = MAX(last_rowid, excluded.last_rowid), updated = excluded.updated",
                (name, rowid, time.time()))

    # -- triage side -------------------------------------------------------------------
    def _history(self, alert_id: int, who: str, action: str, from_status: str | None,
                 to_status: str | None, note: str | None, at: float | None = None) -> None:
        self.conn.execute(
            "INSERT INTO alert_history (alert_id, at, who, action, from_status, to_status, "
            "note) VALUES (?,?,?,?,?,?,?)",
            (alert_id, time.time() if at is None else at, who, action, from_status,
             to_status, note))

    def get(self, alert_id: int) -> Alert:
        row = self.conn.execute(f"SELECT {_COLUMNS} FROM alerts WHERE id=?",
                                (alert_id,)).fetchone()
        if row is None:
            raise TriageError(f"no alert {alert_id}",
                              hint="list them with 'socctl alerts list'")
        return self._alert(row)

    def _alert(self, row: Sequence[Any]) -> Alert:
        samples = tuple(r[0] for r in self.conn.execute(
            "SELECT event_id FROM alert_events WHERE alert_id=? ORDER BY ts, event_id LIMIT ?",
            (row[0], SAMPLE_SIZE)))
        return Alert(id=row[0], rule_id=row[1], rule_title=row[2], level=row[3],
                     tags=tuple(json.loads(row[4])), entity=json.loads(row[5]),
                     first_seen=row[6], last_seen=row[7], count=row[8], status=row[9],
                     assignee=row[10], close_reason=row[11], created=row[12],
                     acknowledged=row[13], closed=row[14], sample_event_ids=samples)

    def query(self, *, status: Sequence[str] = (), min_level: str | None = None,
              rule: str | None = None, since: float | None = None,
              limit: int | None = 1000) -> list[Alert]:
        """Matching alerts, newest activity first; at most ``limit`` (None: all). How
        many match in all is :meth:`count` with the same filters."""
        where, args = _filters(status, min_level, rule, since)
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM alerts WHERE {where} "
            "ORDER BY last_seen DESC, id DESC LIMIT ?",
            [*args, -1 if limit is None else limit]).fetchall()
        return [self._alert(r) for r in rows]

    def count(self, *, status: Sequence[str] = (), min_level: str | None = None,
              rule: str | None = None, since: float | None = None) -> int:
        """How many alerts :meth:`query` would return without a limit: a list cut at
        its limit says so (1,005 alerts were shown as "1000 alert(s)")."""
        where, args = _filters(status, min_level, rule, since)
        return int(self.conn.execute(f"SELECT COUNT(*) FROM alerts WHERE {where}",
                                     args).fetchone()[0])

    def events(self, alert_id: int, limit: int = 50) -> list[dict[str, Any]]:
        """The stored events an alert covers (from the events table)."""
        self.get(alert_id)
        cur = self.conn.execute(
            "SELECT e.id, e.ts, e.dataset, e.message FROM alert_events a JOIN events e "
            "ON e.id = a.event_id WHERE a.alert_id=? ORDER BY e.ts LIMIT ?", (alert_id, limit))
        return [{"id": r[0], "ts": _iso(r[1]), "dataset": r[2], "message": r[3]}
                for r in cur]

    def history(self, alert_id: int) -> list[HistoryEntry]:
        return [HistoryEntry(*r) for r in self.conn.execute(
            "SELECT alert_id, at, who, action, from_status, to_status, note FROM "
            "alert_history WHERE alert_id=? ORDER BY seq", (alert_id,))]

    def _transition(self, alert_id: int, who: str, action: str, allowed_from: Sequence[str],
                    change: Callable[[Alert], tuple[str, dict[str, Any]]], note: str | None,
                    at: float | None) -> Alert:
        """Read, check and write in one write transaction: the status checked is the one
        replaced, and the audit trail's ``from`` is the real previous state. ``change``
        gives the new status and columns from the alert as it is inside the transaction
        (whether it was acknowledged, whom it is assigned to). The UPDATE re-checks the
        status too, so a write that lost a race fails rather than overwriting."""
        now = time.time() if at is None else at
        with self._writing():
            alert = self.get(alert_id)
            if alert.status not in allowed_from:
                raise TriageError(
                    f"alert {alert_id} is {alert.status}: cannot {action} it",
                    hint=f"{action} applies to alerts that are {' or '.join(allowed_from)}")
            to, sets = change(alert)
            assignments = "".join(f", {k} = :{k}" for k in sets)
            allowed = {f"from{i}": s for i, s in enumerate(allowed_from)}
            cur = self.conn.execute(
                f"UPDATE alerts SET status = :status{assignments} WHERE id = :id AND status "
                f"IN ({', '.join(':' + k for k in allowed)})",
                {"status": to, "id": alert_id, **sets, **allowed})
            if cur.rowcount != 1:
                raise TriageError(f"alert {alert_id} changed during this {action}",
                                  hint=f"look at it again ('socctl alerts show {alert_id}')")
            self._history(alert_id, who, action, alert.status, to, note, now)
        return self.get(alert_id)

    def acknowledge(self, alert_id: int, who: str, note: str | None = None,
                    at: float | None = None) -> Alert:
        now = time.time() if at is None else at
        return self._transition(alert_id, who, "acknowledge", ("new",),
                                lambda _a: ("acknowledged", {"acknowledged": now}), note, now)

    def assign(self, alert_id: int, who: str, assignee: str, note: str | None = None,
               at: float | None = None) -> Alert:
        """To ``assignee`` (stripped). A blank one was stored as "": assigned to nobody,
        and a reopen sent the alert to acknowledged instead of back to its analyst."""
        assignee = assignee.strip()
        if not assignee:
            raise TriageError(f"cannot assign alert {alert_id} to nobody: the assignee is "
                              "empty", hint="name the analyst it goes to")
        now = time.time() if at is None else at

        def change(alert: Alert) -> tuple[str, dict[str, Any]]:
            sets: dict[str, Any] = {"assignee": assignee}
            if alert.acknowledged is None:
                sets["acknowledged"] = now  # assigning is an acknowledgement too
            return "assigned", sets

        return self._transition(alert_id, who, "assign", ("new", "acknowledged", "assigned"),
                                change, note or f"assigned to {assignee}", now)

    def close(self, alert_id: int, who: str, reason: str, note: str | None = None,
              at: float | None = None) -> Alert:
        if reason not in CLOSE_REASONS:
            raise TriageError(f"unknown close reason {reason!r}",
                              hint=f"use one of {', '.join(CLOSE_REASONS)}")
        now = time.time() if at is None else at

        def change(alert: Alert) -> tuple[str, dict[str, Any]]:
            sets: dict[str, Any] = {"close_reason": reason, "closed": now}
            if alert.acknowledged is None:
                sets["acknowledged"] = now
            return "closed", sets

        return self._transition(alert_id, who, "close", ("new", "acknowledged", "assigned"),
                                change, note or reason, now)

    def reopen(self, alert_id: int, who: str, note: str | None = None,
               at: float | None = None) -> Alert:
        def change(alert: Alert) -> tuple[str, dict[str, Any]]:
            to = "assigned" if (alert.assignee or "").strip() else "acknowledged"
            return to, {"close_reason": None, "closed": None}

        return self._transition(alert_id, who, "reopen", ("closed",), change, note, at)

    def note(self, alert_id: int, who: str, note: str) -> None:
        with self._writing():
            alert = self.get(alert_id)
            self._history(alert_id, who, "note", alert.status, alert.status, note)

    # -- statistics --------------------------------------------------------------------
    def stats(self, *, top: int = 5) -> dict[str, Any]:
        """Open by severity, MTTA, MTTR, false-positive rate per rule, noisiest rules."""
        q = self.conn.execute
        open_by_level = dict.fromkeys(reversed(LEVEL_ORDER), 0)
        for level, n in q("SELECT level, COUNT(*) FROM alerts WHERE status != 'closed' "
                          "GROUP BY level"):
            open_by_level[level] = n
        mtta = q("SELECT AVG(acknowledged - created) FROM alerts WHERE acknowledged IS NOT "
                 "NULL").fetchone()[0]
        mttr = q("SELECT AVG(closed - created) FROM alerts WHERE closed IS NOT NULL"
                 ).fetchone()[0]
        per_rule = []
        for rule_id, title, total, closed, fp, events in q(
                # SUM over rows that are all NULL (no alert closed yet) is NULL, which a
                # script summing false_positives met as null: counts are 0 then
                "SELECT rule_id, rule_title, COUNT(*), COALESCE(SUM(status='closed'), 0), "
                "COALESCE(SUM(close_reason='false_positive'), 0), COALESCE(SUM(count), 0) "
                "FROM alerts "
                "GROUP BY rule_id ORDER BY COUNT(*) DESC, SUM(count) DESC"):
            per_rule.append({"rule_id": rule_id, "rule_title": title, "alerts": total,
                             "events": events, "closed": closed,
                             "false_positives": fp,
                             "false_positive_rate": round(fp / closed, 3) if closed else None})
        suppressed = q("SELECT COALESCE(SUM(count), 0) FROM suppressed_hits").fetchone()[0]
        return {
            "open_by_severity": open_by_level,
            "total": q("SELECT COUNT(*) FROM alerts").fetchone()[0],
            "mtta_seconds": None if mtta is None else round(mtta, 1),
            "mttr_seconds": None if mttr is None else round(mttr, 1),
            "per_rule": per_rule,
            "noisiest_rules": per_rule[:top],
            "suppressed_hits": suppressed,
        }


def _filters(status: Sequence[str], min_level: str | None, rule: str | None,
             since: float | None) -> tuple[str, list[Any]]:
    where: list[str] = ["1"]
    args: list[Any] = []
    if status:
        where.append(f"status IN ({','.join('?' for _ in status)})")
        args.extend(status)
    if min_level:
        levels = [lv for lv, n in LEVEL_ORDER.items() if n >= LEVEL_ORDER[min_level]]
        where.append(f"level IN ({','.join('?' for _ in levels)})")
        args.extend(levels)
    if rule:
        where.append("(rule_id = ? OR rule_title LIKE ?)")
        args.extend([rule, f"%{rule}%"])
    if since is not None:
        where.append("last_seen >= ?")
        args.append(since)
    return " AND ".join(where), args


_COLUMNS = ("id, rule_id, rule_title, level, tags, entity, first_seen, last_seen, count, "
            "status, assignee, close_reason, created, acknowledged, closed")
