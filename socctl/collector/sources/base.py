"""What every source shares: counters, and the intake that parses and spools a batch."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any

from socctl.collector.ecs import OccurrenceIds, ParseError
from socctl.collector.pipeline import DeadLetterItem, Processor
from socctl.collector.spool import Spool, SpoolFull
from socctl.store.sqlite import Row


@dataclass
class SourceStats:
    """Per-source counters; ``received == parsed + dead_letter + unspooled`` once a batch
    is spooled, and ``shipped + duplicates + rejected`` catches up with ``parsed`` as the
    sink drains. ``unspooled``: read while the collector was stopping with its spool full,
    so not kept by this run (a file source reads them again at its next start, a RELP
    sender sends them again; over plain TCP or UDP they are lost, and this says how many).
    """

    received: int = 0
    parsed: int = 0
    dead_letter: int = 0
    spooled: int = 0
    shipped: int = 0
    duplicates: int = 0
    rejected: int = 0
    udp_drops: int = 0
    connections: int = 0
    connections_refused: int = 0
    tls_failures: int = 0
    framing_errors: int = 0
    auth_failures: int = 0  # SNMP traps refused: wrong community, unknown user, wrong key
    unspooled: int = 0
    bytes: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class Intake:
    """Parse a batch of raw messages of one source and append it to the spool."""

    def __init__(self, processor: Processor, spool: Spool, stats: SourceStats,
                 stop: threading.Event) -> None:
        self.processor = processor
        self.spool = spool
        self.stats = stats
        self.stop = stop
        self.ids: dict[str, OccurrenceIds] = {}
        self.lock = threading.Lock()

    def counter(self, origin: str) -> OccurrenceIds:
        """A fresh occurrence counter whose ids name this collector and ``origin``."""
        return OccurrenceIds(f"{self.processor.name}|{origin}")

    def submit(self, messages: list[tuple[bytes, str | None]], peer: str | None,
               origin: str | None = None, ids: list[str] | None = None,
               occurrences: OccurrenceIds | None = None) -> None:
        """``messages``: (raw, reason); a reason sends the raw bytes to the dead letter.

        ``ids`` gives position-based ids (files); otherwise ids are content + occurrence,
        counted in ``occurrences`` (RELP: one per session, :meth:`counter`) or else per
        origin (network syslog).
        """
        if not messages:
            return
        now = time.time()
        proc = self.processor
        key = origin or peer or "-"
        occ = occurrences
        if ids is None and occ is None:
            occ = self.ids.get(key)
            if occ is None:
                occ = self.ids[key] = self.counter(key)
        rows: list[Row] = []
        dead: list[DeadLetterItem] = []
        dataset = proc.dataset
        for i, (raw, reason) in enumerate(messages):
            line = raw.decode("utf-8", "surrogateescape")
            eid = ids[i] if ids is not None else occ.next(dataset, line)  # type: ignore[union-attr]
            if reason is not None:
                dead.append(proc.dead_letter(eid, now, key, reason, raw))
                continue
            try:
                rows.append(proc.row(line, now, eid, peer))
            except ParseError as exc:
                dead.append(proc.dead_letter(eid, now, key, exc.reason, raw))
        with self.lock:
            try:
                self.spool.append(proc.name, rows, dead, stop=self.stop)
            except SpoolFull:
                self.stats.received += len(messages)
                self.stats.unspooled += len(messages)
                raise
            st = self.stats
            st.received += len(messages)
            st.parsed += len(rows)
            st.dead_letter += len(dead)
            st.spooled += len(rows) + len(dead)


class Source(ABC):
    """A running source: started and stopped inside the collector's asyncio loop."""

    def __init__(self, name: str, intake: Intake) -> None:
        self.name = name
        self.intake = intake
        self.stats = intake.stats

    @abstractmethod
    async def start(self) -> None:
        """Bind / open; raise SocctlError with the reason when that is impossible."""

    @abstractmethod
    async def stop(self) -> None: ...

    def poll_kernel(self) -> None:
        """Refresh counters only the kernel knows (UDP drops)."""
        return

    def describe(self) -> dict[str, Any]:
        return {}
