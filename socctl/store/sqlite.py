"""The embedded event store: one SQLite file in WAL mode.

Table ``events``: a deterministic ``id`` (primary key, so a re-sent event is ignored),
``ts`` (@timestamp, epoch seconds), ``ingested``, ``dataset``, the ECS fields rules and
searches need as columns (dots -> underscores, multi-valued fields comma-joined), and
``doc`` (the whole event as JSON). Table ``dead_letter`` holds what could not become an
event: the raw bytes and the reason. Detections (socctl.triage) read ``events`` by SQL
and may add their own tables to the same file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import compress, repeat
from operator import is_not
from pathlib import Path
from typing import Any

import orjson

from socctl.collector.ecs import Event, get
from socctl.errors import Location, SocctlError

COLUMNS: tuple[str, ...] = (
    "event.kind", "event.category", "event.type", "event.outcome", "event.action",
    "event.code", "source.ip", "source.port", "destination.ip", "destination.port",
    "user.name", "url.original", "url.path", "url.query", "http.request.method",
    "http.response.status_code", "user_agent.original", "host.name", "host.ip",
    "observer.name", "observer.ip", "process.name", "log.level", "message",
    "email.from.address", "email.to.address", "email.subject", "file.name",
    "threat.indicator.ip", "threat.indicator.provider", "socctl.site", "socctl.tier",
    "socctl.province",
)
"""ECS fields stored as columns, in order. ``message`` is log.original (the raw line)."""

_RENAMED = {"email.from.address": "email_from", "email.to.address": "email_to"}
COLUMN_NAMES: tuple[str, ...] = tuple(_RENAMED.get(c, c.replace(".", "_")) for c in COLUMNS)
COLUMN_OF: dict[str, str] = dict(zip(COLUMNS, COLUMN_NAMES, strict=True))
"""ECS field -> column (dots -> underscores; email addresses are email_from / email_to)."""
INTEGER_COLUMNS = frozenset({"source_port", "destination_port", "http_response_status_code"})
INDEXES: tuple[tuple[str, ...], ...] = (
    ("ts",), ("dataset", "ts"), ("source_ip", "ts"), ("user_name", "ts"),
    ("host_name", "ts"), ("event_action", "ts"), ("threat_indicator_ip",),
    ("destination_ip",),
)
"""Indexes on a nullable first column are partial (``WHERE col IS NOT NULL``): most events
have no user or botnet match, and skipping those entries keeps ingestion cheap. There is
no index on ``ingested``: the order of arrival is the rowid (one writer, commit order),
which is what scheduled detections checkpoint on; every index costs each insert. The one
on ``destination_ip`` serves the botnet rule and searches for traffic to an address."""
PARTIAL = frozenset({"source_ip", "user_name", "event_action", "threat_indicator_ip",
                     "host_name", "destination_ip"})

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, ts REAL NOT NULL, "
    "ingested REAL NOT NULL, dataset TEXT NOT NULL, "
    + ", ".join(f"{c} {'INTEGER' if c in INTEGER_COLUMNS else 'TEXT'}" for c in COLUMN_NAMES)
    + ", doc TEXT NOT NULL)"
)
DEAD_LETTER_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS dead_letter (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "id TEXT UNIQUE NOT NULL, received REAL NOT NULL, source TEXT NOT NULL, "
    "dataset TEXT, origin TEXT, reason TEXT NOT NULL, raw BLOB NOT NULL)"
)
ROW_NAMES: tuple[str, ...] = ("id", "ts", "ingested", "dataset", *COLUMN_NAMES, "doc")
"""The columns of a :data:`Row`, in order."""
INSERT_SQL = (f"INSERT OR IGNORE INTO events ({', '.join(ROW_NAMES)}) "
              f"VALUES ({', '.join('?' * len(ROW_NAMES))})")

Row = tuple[Any, ...]
PAGE_SIZE = 16384
"""Page size of a new store file (SQLite's default is 4096)."""
PRUNE_CHUNK = 5000
"""Expired events deleted per retention transaction (:meth:`SqliteStore.prune_step`)."""

_SHAPE_SQL: dict[tuple[bool, ...], str] = {}


def _shape_sql(shape: tuple[bool, ...]) -> str:
    sql = _SHAPE_SQL.get(shape)
    if sql is None:
        names = list(compress(ROW_NAMES, shape))
        sql = _SHAPE_SQL[shape] = (f"INSERT OR IGNORE INTO events ({', '.join(names)}) "
                                   f"VALUES ({', '.join('?' * len(names))})")
    return sql


def by_shape(rows: Iterable[Row]) -> dict[tuple[bool, ...], list[Row]]:
    """Rows grouped by which columns they fill, each cut to those columns.

    Python's sqlite3 binds ``None`` through its adapter lookup (a failed protocol probe
    per value), which made NULLs the most expensive values of an insert: a row of this
    store leaves two thirds of its columns empty. An INSERT naming only the filled
    columns leaves the others NULL for free (a 40-column row: 23 -> 6 us in memory).
    One statement per shape; a parser yields a handful of shapes.
    """
    groups: dict[tuple[bool, ...], list[Row]] = {}
    for row in rows:
        shape = tuple(map(is_not, row, repeat(None)))
        group = groups.get(shape)
        if group is None:
            group = groups[shape] = []
        group.append(tuple(compress(row, shape)))
    return groups


class StoreError(SocctlError):
    """The event store cannot be opened, written or queried."""


class StoreBusy(StoreError):
    """Another writer held the store past the busy timeout (a detect run, the collector,
    another analyst's command). Nothing is wrong with the store: trying again later works,
    so it has its own exit code (75, EX_TEMPFAIL) for scripts to retry on, where it was
    an "internal error" (70) with no hint."""

    exit_code = 75

    @classmethod
    def of(cls, conn: sqlite3.Connection, exc: BaseException) -> StoreBusy:
        """The error for ``exc`` on ``conn``, located at the store's file."""
        try:
            path = next((r[2] for r in conn.execute("PRAGMA database_list") if r[1] == "main"),
                        "")
        except sqlite3.Error:
            path = ""
        return cls.at(path or None, exc)

    @classmethod
    def at(cls, path: str | None, exc: BaseException) -> StoreBusy:
        return cls(f"the event store is busy ({exc})", Location.of(path) if path else None,
                   hint="another writer holds it: a detect run, the collector or another "
                        "triage command; try again in a moment")


def is_busy(exc: BaseException) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED (extended codes included): the store is held by
    another connection, not broken."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(exc)
    return "database is locked" in text or "database table is locked" in text or "busy" in text


class UnstorableRow(SocctlError):
    """A row SQLite cannot bind (an integer wider than 64 bits, a string with surrogates,
    a value of another type): the row's fault, not the store's, so retrying is no use."""


def _bind_error(exc: BaseException) -> bool:
    return isinstance(exc, OverflowError | ValueError) or (
        isinstance(exc, sqlite3.ProgrammingError)
        and str(exc).startswith("Error binding parameter"))


def _column(ev: Event, dotted: str) -> Any:
    """A column value: multi-valued fields comma-joined, objects as JSON."""
    node = get(ev, dotted)
    if isinstance(node, list):
        return ",".join(str(v) for v in node)
    if isinstance(node, dict):
        return json.dumps(node, separators=(",", ":"))
    return node


def _dumps(ev: Event) -> str:
    """The doc column: orjson (about 20x faster than json here; it is per event)."""
    return orjson.dumps(ev, default=str).decode()


def to_row(event_id: str, ts: float, ingested: float, ev: Event) -> Row:
    """The ``events`` row of one event: the hot path of ingestion, so no generic walking
    for the most common fields."""
    e = ev["event"]
    src = ev.get("source")
    dst = ev.get("destination")
    user = ev.get("user")
    url = ev.get("url")
    http = ev.get("http")
    host = ev.get("host")
    obs = ev.get("observer")
    proc = ev.get("process")
    soc = ev.get("socctl")
    cat = e.get("category")
    typ = e.get("type")
    email = ev.get("email")
    threat = ev.get("threat")
    req = http.get("request") if http else None
    resp = http.get("response") if http else None
    ua = ev.get("user_agent")
    hip = host.get("ip") if host else None
    return (
        event_id, ts, ingested, e["dataset"],
        e.get("kind"),
        ",".join(cat) if cat else None,
        ",".join(typ) if typ else None,
        e.get("outcome"), e.get("action"), e.get("code"),
        src.get("ip") if src else None, src.get("port") if src else None,
        dst.get("ip") if dst else None, dst.get("port") if dst else None,
        user.get("name") if user else None,
        url.get("original") if url else None, url.get("path") if url else None,
        url.get("query") if url else None,
        req.get("method") if req else None,
        resp.get("status_code") if resp else None,
        ua.get("original") if ua else None,
        host.get("name") if host else None,
        ",".join(hip) if isinstance(hip, list) else hip,
        obs.get("name") if obs else None, obs.get("ip") if obs else None,
        proc.get("name") if proc else None,
        ev["log"].get("level"), ev["log"].get("original"),
        _column(email, "from.address") if email else None,
        _column(email, "to.address") if email else None,
        email.get("subject") if email else None,
        _column(ev["file"], "name") if "file" in ev else None,
        _column(threat, "indicator.ip") if threat else None,
        _column(threat, "indicator.provider") if threat else None,
        soc.get("site") if soc else None, soc.get("tier") if soc else None,
        soc.get("province") if soc else None,
        _dumps(ev),
    )


def iso_epoch(text: str) -> float:
    """ISO 8601 -> epoch seconds; without an offset it is UTC, as the store's times are
    (and as Elasticsearch reads it, and ``detect run --from``): Python alone would read it
    in the zone of the analyst's machine."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    seq: int
    id: str
    received: float
    source: str
    dataset: str | None
    origin: str | None
    reason: str
    raw: bytes

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "id": self.id, "received": self.received,
                "source": self.source, "dataset": self.dataset, "origin": self.origin,
                "reason": self.reason, "raw": self.raw.decode("utf-8", "backslashreplace")}


class SqliteStore:
    """The embedded store. One writer (the collector), many readers (searches, rules)."""

    def __init__(self, path: Path | str, *, readonly: bool = False, timeout: float = 30,
                 background_checkpoint: bool = False) -> None:
        """``background_checkpoint``: a long-running writer (the collector's sink) copies
        the WAL into the database from a thread of its own instead of inside a commit."""
        self.path = Path(path)
        self.checkpointer: Checkpointer | None = None
        try:
            if readonly:
                if not self.path.exists():
                    raise StoreError(f"no event store at {self.path}",
                                     hint="run 'socctl collect replay' or 'collect run' first")
                self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                          isolation_level=None, timeout=30,
                                          check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # one user at a time, but not always the thread that opened it
                self.db = sqlite3.connect(self.path, isolation_level=None, timeout=timeout,
                                          check_same_thread=False)
                # a new file gets 16 KiB pages (set before WAL: a WAL database keeps its
                # page size for life; an existing store keeps the one it was made with).
                # Rows carry a ~1 KB doc and eight indexes: benchmarks/store.py, 2M events,
                # 26.5 -> 23.7 us per insert and a 14% smaller file than with 4 KiB
                self.db.execute(f"PRAGMA page_size={PAGE_SIZE}")
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.execute("PRAGMA cache_size=-65536")  # 64 MiB: indexes stay in memory
                # checkpoint the WAL every ~40 MiB instead of 4 MiB: fewer copies per event
                self.db.execute("PRAGMA wal_autocheckpoint=10000")
                self._create()
                if background_checkpoint:
                    self.db.execute("PRAGMA wal_autocheckpoint=0")
                    self.checkpointer = Checkpointer(self.path)
                    self.checkpointer.start()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open event store {self.path}: {exc}") from exc

    def _create(self) -> None:
        with self.transaction():
            self.db.execute(SCHEMA)
            self.db.execute(DEAD_LETTER_SCHEMA)
            for cols in INDEXES:
                where = f" WHERE {cols[0]} IS NOT NULL" if cols[0] in PARTIAL else ""
                self.db.execute(f"CREATE INDEX IF NOT EXISTS events_{'_'.join(cols)} "
                                f"ON events ({', '.join(cols)}){where}")
            self.db.execute("DROP INDEX IF EXISTS events_ingested")  # stores made before

    def transaction(self) -> _Tx:
        return _Tx(self.db)

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.close()
            self.checkpointer = None
        self.db.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------
    def insert_rows(self, rows: Sequence[Row]) -> int:
        """Store prepared rows in one transaction; returns how many were new."""
        return self.insert_batches([rows])[0] if rows else 0

    def insert_batches(self, batches: Sequence[Sequence[Row]]) -> list[int]:
        """Several batches in one transaction (one commit); how many of each were new.

        Within a batch, rows are written grouped by shape (see :func:`by_shape`), so
        rowids follow commit order between batches, not the order inside one.
        """
        if not any(batches):
            return [0] * len(batches)
        grouped = [by_shape(rows) for rows in batches]
        out: list[int] = []
        try:
            with self.transaction():
                for groups in grouped:
                    before = self.db.total_changes
                    for shape, values in groups.items():
                        self.db.executemany(_shape_sql(shape), values)
                    out.append(self.db.total_changes - before)
        except (sqlite3.Error, OverflowError, ValueError) as exc:
            if _bind_error(exc):
                raise UnstorableRow(f"cannot store a row in {self.path}: {exc}") from exc
            raise StoreError(f"cannot write to {self.path}: {exc}") from exc
        return out

    def insert_batches_row_by_row(self, batches: Sequence[Sequence[Row]]
                                  ) -> list[tuple[int, list[tuple[Row, str]]]]:
        """The slow path after :class:`UnstorableRow`: each row on its own, in one
        transaction; per batch, how many were new and the rows SQLite could not bind, with
        the reason (for the dead letter), so one bad row does not hold up the others."""
        out: list[tuple[int, list[tuple[Row, str]]]] = []
        try:
            with self.transaction():
                for rows in batches:
                    stored, rejected = 0, []
                    for row in rows:
                        shape = tuple(map(is_not, row, repeat(None)))
                        before = self.db.total_changes
                        try:
                            self.db.execute(_shape_sql(shape), tuple(compress(row, shape)))
                        except (sqlite3.ProgrammingError, OverflowError, ValueError) as exc:
                            if not _bind_error(exc):
                                raise
                            rejected.append((row, f"cannot store: {exc}"))
                            continue
                        stored += self.db.total_changes - before
                    out.append((stored, rejected))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to {self.path}: {exc}") from exc
        return out

    def insert(self, events: Iterable[Event]) -> int:
        """Store events (e.g. from ``parse_line``); returns how many were new.

        INSERT OR IGNORE by id: storing the same event twice stores it once. An event
        without ``event.id`` gets a deterministic one from its dataset, time and raw line
        (and it is written back into the event).
        """
        from socctl.collector.ecs import event_id, time_ordered

        now = time.time()
        rows = []
        for ev in events:
            ts = ev.get("@timestamp")
            epoch = iso_epoch(ts) if isinstance(ts, str) else float(ts or now)
            e = ev["event"]
            if not e.get("id"):
                e["id"] = time_ordered(epoch if ts else None, event_id(
                    "event", e.get("dataset", ""), repr(epoch),
                    ev.get("log", {}).get("original", "")))
            rows.append(to_row(e["id"], epoch, now, ev))
        return self.insert_rows(rows)

    def dead_letter(self, items: Sequence[tuple[str, float, str, str | None, str | None, str,
                                                bytes]]) -> int:
        """(id, received, source, dataset, origin, reason, raw) -> newly stored count."""
        if not items:
            return 0
        try:
            with self.transaction():
                before = self.db.total_changes
                self.db.executemany(
                    "INSERT OR IGNORE INTO dead_letter (id, received, source, dataset, origin,"
                    " reason, raw) VALUES (?, ?, ?, ?, ?, ?, ?)", items)
                return self.db.total_changes - before
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write dead letters to {self.path}: {exc}") from exc

    def prune(self, retention_days: float, now: float | None = None) -> int:
        """Delete events older than the retention (by @timestamp), a chunk per
        transaction (see :meth:`prune_step`); returns how many events."""
        cutoff = (now or time.time()) - retention_days * 86400
        total = 0
        while True:
            events, done = self.prune_step(cutoff)
            total += events
            if done:
                return total

    def prune_step(self, cutoff: float, limit: int | None = None) -> tuple[int, bool]:
        """Delete up to ``limit`` (default :data:`PRUNE_CHUNK`) of the oldest events with
        @timestamp before ``cutoff``, and as many dead letters received before it, in one
        transaction; returns how many events, and whether nothing expired is left.

        Retention in one DELETE held the store's only writer for as long as it took:
        ~20 us per event, so an hour's worth of expired events at a few thousand per
        second stalled the collector's shipping for minutes, the spool filled and UDP
        senders were dropped. A chunk of 5,000 costs about what a shipping round does.

        The newest row (highest rowid) is kept even when expired, until a newer one is
        stored: SQLite gives a new row the highest rowid + 1, so deleting the newest
        (an old event replayed or sent late, expired at once) would hand its rowid out
        again, and scheduled detections, which resume after the last rowid they read,
        would skip the event that got it.
        """
        limit = PRUNE_CHUNK if limit is None else limit
        try:
            with self.transaction():
                events = self.db.execute(
                    "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events "
                    "WHERE ts < ? AND rowid < (SELECT max(rowid) FROM events) "
                    "ORDER BY ts LIMIT ?)", (cutoff, limit)).rowcount
                letters = self.db.execute(
                    "DELETE FROM dead_letter WHERE seq IN (SELECT seq FROM dead_letter "
                    "WHERE received < ? ORDER BY seq LIMIT ?)", (cutoff, limit)).rowcount
        except sqlite3.Error as exc:
            raise StoreError(f"cannot apply retention to {self.path}: {exc}") from exc
        return events, events < limit and letters < limit

    # -- reading -------------------------------------------------------------------------
    def count(self, where: str = "", params: Sequence[Any] = ()) -> int:
        sql = "SELECT count(*) FROM events" + (f" WHERE {where}" if where else "")
        return int(self.db.execute(sql, params).fetchone()[0])

    def dead_letter_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM dead_letter").fetchone()[0])

    def get(self, ids: Iterable[str]) -> list[Event]:
        wanted = list(ids)
        out: list[Event] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            sql = f"SELECT doc FROM events WHERE id IN ({', '.join('?' * len(chunk))})"
            out += [json.loads(doc) for (doc,) in self.db.execute(sql, chunk)]
        return out

    def search(self, query: str = "", *, since: float | None = None, until: float | None = None,
               limit: int = 100, newest_first: bool = True) -> list[Event]:
        """Events matching a query (see :mod:`socctl.store.query`), newest first."""
        from socctl.store.query import IP_MATCH_FUNCTION, compile_sqlite, ip_in

        where, params = compile_sqlite(query)
        self.db.create_function(IP_MATCH_FUNCTION, 3, ip_in, deterministic=True)
        clauses = [where] if where else []
        if since is not None:
            clauses.append("ts >= ?")
            params.append(since)
        if until is not None:
            clauses.append("ts < ?")
            params.append(until)
        sql = "SELECT doc FROM events"
        if clauses:
            sql += " WHERE " + " AND ".join(f"({c})" for c in clauses)
        sql += f" ORDER BY ts {'DESC' if newest_first else 'ASC'}, id LIMIT ?"
        params.append(limit)
        try:
            return [json.loads(doc) for (doc,) in self.db.execute(sql, params)]
        except sqlite3.Error as exc:
            raise StoreError(f"search failed on {self.path}: {exc}") from exc

    def dead_letters_after(self, seq: int, sources: Sequence[str] = (), limit: int = 2000
                           ) -> list[DeadLetter]:
        """Oldest first, after ``seq`` (of these sources: all when none)."""
        where = f" AND source IN ({', '.join('?' * len(sources))})" if sources else ""
        rows = self.db.execute("SELECT seq, id, received, source, dataset, origin, reason, raw "
                               f"FROM dead_letter WHERE seq > ?{where} ORDER BY seq LIMIT ?",
                               (seq, *sources, limit))
        return [DeadLetter(*row) for row in rows]

    def settle_dead_letters(self, done: Sequence[int], again: Sequence[tuple[str, int]]
                            ) -> None:
        """After a retry: ``done`` (seqs) became events and leave; ``again`` (reason, seq)
        stay, with the reason of this attempt."""
        try:
            with self.transaction():
                self.db.executemany("DELETE FROM dead_letter WHERE seq = ?",
                                    [(seq,) for seq in done])
                self.db.executemany("UPDATE dead_letter SET reason = ? WHERE seq = ?", again)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot update dead letters in {self.path}: {exc}") from exc

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = self.db.execute("SELECT seq, id, received, source, dataset, origin, reason, raw "
                               "FROM dead_letter ORDER BY seq DESC LIMIT ?", (limit,))
        return [DeadLetter(*row) for row in rows]


class Checkpointer(threading.Thread):
    """Copies the WAL into the database file on its own connection, every ``interval``.

    With SQLite's automatic checkpoint, the commit that crosses the threshold copies ~40
    MiB and fsyncs twice while the writer waits (a third of the collector's insert time
    on this machine type). A PASSIVE checkpoint from another connection does the same
    work beside the writer (SQLite lets one checkpointer and one writer run at once, and
    the GIL is released meanwhile), and the writer starts the WAL over once it has been
    copied. Should readers keep it from being copied for long, a WAL past
    ``truncate_bytes`` gets a TRUNCATE checkpoint, which briefly waits for them.
    """

    def __init__(self, path: Path, interval: float = 1.0, truncate_bytes: int = 1 << 30
                 ) -> None:
        super().__init__(name=f"checkpoint {path.name}", daemon=True)
        self.path = path
        self.wal = path.with_name(path.name + "-wal")
        self.interval = interval
        self.truncate_bytes = truncate_bytes
        self.stopping = threading.Event()
        self.checkpoints = 0
        self.last_error = ""

    def run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=5,
                             check_same_thread=False)
        try:
            db.execute("PRAGMA synchronous=NORMAL")
            while not self.stopping.wait(self.interval):
                self.checkpoint(db)
            self.checkpoint(db)
        finally:
            db.close()

    def checkpoint(self, db: sqlite3.Connection) -> None:
        try:
            big = self.wal.exists() and self.wal.stat().st_size > self.truncate_bytes
            db.execute(f"PRAGMA wal_checkpoint({'TRUNCATE' if big else 'PASSIVE'})").fetchall()
            self.checkpoints += 1
        except (sqlite3.Error, OSError) as exc:  # busy or locked: the next round retries
            self.last_error = str(exc)

    def close(self) -> None:
        self.stopping.set()
        self.join(30)


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT/ROLLBACK on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")
