"""A bounded write load through a libpq multi-host connection string.

Every insert is its own transaction; a row counts as *acknowledged* only when its commit
returned. With ``target_session_attrs=read-write`` libpq skips a server that is down or
still in recovery, which is how clients follow the primary without a VIP.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

CREATE_SQL = ("CREATE TABLE IF NOT EXISTS drill_writes (drill_id text NOT NULL, seq integer "
              "NOT NULL, written_at timestamptz NOT NULL DEFAULT now(), "
              "PRIMARY KEY (drill_id, seq))")


@dataclass
class Ack:
    seq: int
    at: float  # wall clock when the commit returned
    server: str


@dataclass
class WriteLoad:
    dsn: str
    drill_id: str
    rate: float
    max_rows: int
    acks: list[Ack] = field(default_factory=list)
    errors: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="drill-load", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def acked_since(self, t: float, server: str | None = None) -> list[Ack]:
        return [a for a in list(self.acks) if a.at >= t and (server is None or
                                                             a.server == server)]

    def wait_for(self, n: int, since: float, server: str | None, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.acked_since(since, server)) >= n:
                return True
            if not self.running:
                return False
            time.sleep(0.02)
        return False

    def _loop(self) -> None:
        import psycopg

        seq = 0
        conn: Any = None
        interval = 1.0 / self.rate
        while not self._stop.is_set() and seq < self.max_rows:
            started = time.monotonic()
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=2)
                    server = str(conn.execute("SELECT inet_server_addr()").fetchone()[0])
                seq += 1
                conn.execute("INSERT INTO drill_writes (drill_id, seq) VALUES (%s, %s)",
                             (self.drill_id, seq))
                self.acks.append(Ack(seq, time.time(), server))
            except psycopg.Error as exc:
                # Not acknowledged: the row may or may not exist; only acks are promised.
                self.errors.append((time.time(), str(exc).strip().splitlines()[0][:200]))
                if conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        conn.close()
                conn = None
                time.sleep(0.02)
                continue
            pause = interval - (time.monotonic() - started)
            if pause > 0:
                self._stop.wait(pause)
        if conn is not None:
            conn.close()


def dsn(addresses: list[str], port: int, database: str, user: str, password: str) -> str:
    """libpq's connection string, every value quoted by psycopg: a password with a space
    broke it (and libpq's error then showed the rest of it in the drill report), and one
    with ``host=`` in it could point the load at another server."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(host=",".join(addresses),
                         port=",".join(str(port) for _ in addresses), dbname=database,
                         user=user, password=password, target_session_attrs="read-write",
                         connect_timeout=2)
