"""The embedded SQLite store as a sink (the default)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from socctl.collector.sinks.base import Health, Sink, SinkResult, SinkUnavailable
from socctl.store.sqlite import Row, SqliteStore, StoreError, UnstorableRow


class SqliteSink(Sink):
    name = "sqlite"

    def __init__(self, path: Path, lock_timeout: float = 2.0,
                 background_checkpoint: bool = True) -> None:
        self.path = path
        self.lock_timeout = lock_timeout
        self.background_checkpoint = background_checkpoint
        self.store: SqliteStore | None = None

    def build(self) -> None:
        try:
            # a short busy timeout: a store locked by someone else is an outage to retry
            # from the spool, not a reason to stall the shipper
            self.store = SqliteStore(self.path, timeout=self.lock_timeout,
                                     background_checkpoint=self.background_checkpoint)
        except StoreError as exc:
            raise SinkUnavailable(str(exc)) from exc

    def healthcheck(self) -> Health:
        if self.store is None:
            return Health(False, f"{self.path} not open")
        try:
            self.store.db.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            return Health(False, str(exc))
        return Health(True, str(self.path))

    def write(self, rows: Sequence[Row]) -> SinkResult:
        return self.write_batches([rows])[0]

    def write_batches(self, batches: Sequence[Sequence[Row]]) -> list[SinkResult]:
        """All batches in one transaction (one commit), counted per batch."""
        if self.store is None:
            self.build()
        assert self.store is not None
        try:
            try:
                stored = self.store.insert_batches(batches)
            except UnstorableRow:
                checked = self.store.insert_batches_row_by_row(batches)
                return [SinkResult(stored=n, duplicates=len(rows) - n - len(bad),
                                   rejected=bad)
                        for rows, (n, bad) in zip(batches, checked, strict=True)]
        except StoreError as exc:
            raise SinkUnavailable(str(exc)) from exc
        return [SinkResult(stored=n, duplicates=len(rows) - n)
                for rows, n in zip(batches, stored, strict=True)]

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
