"""``socctl collect run``: the sources, the spool and the shipper, in one process.

Sources run in an asyncio loop on a thread of their own; each batch is parsed and
appended to the durable spool before anything else happens to it. The shipper thread
reads the spool, writes to the sink, stores dead letters, and only then acknowledges the
spool position. If the sink fails the batch stays spooled and is retried with backoff.
Counters are written to ``<state>/collect/stats.json`` every second for
``socctl collect stats``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import resource
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socctl.collector.definition import CONNECTION_TYPES, Collection
from socctl.collector.pipeline import (
    Processor,
    build_dead_letter_sink,
    build_enricher,
    build_sink,
    rejected_letter,
    state_path,
    store_path,
)
from socctl.collector.sinks import Sink, SinkUnavailable
from socctl.collector.sinks.sqlite import SqliteSink
from socctl.collector.sources import BUILDERS, Intake, Source, SourceStats
from socctl.collector.spool import Spool
from socctl.config import Settings
from socctl.errors import ConfigError, SocctlError
from socctl.store.sqlite import StoreError

log = logging.getLogger(__name__)

STATS_FILE = "stats.json"


@dataclass
class SinkState:
    name: str
    healthy: bool = True
    detail: str = ""
    failures: int = 0
    retries: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    dead_letter_stored: int = 0
    pruned: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Status:
    started: float
    sources: dict[str, dict[str, Any]]
    spool: dict[str, Any]
    sink: dict[str, Any]
    running: bool = True
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"started": self.started, "updated": time.time(), "running": self.running,
                "sources": self.sources, "spool": self.spool, "sink": self.sink,
                "errors": self.errors}


class Runtime:
    """Start with :meth:`start`, stop with :meth:`stop`; :meth:`status` at any time."""

    def __init__(self, settings: Settings, collection: Collection,
                 names: Sequence[str] = (), sink: Sink | None = None) -> None:
        self.settings = settings
        self.collection = collection
        chosen = list(names) or [n for n, c in collection.collectors.items()
                                 if c.spec.enabled]
        self.collectors = [collection.get(n) for n in chosen]
        if not self.collectors:
            raise ConfigError("no enabled collector to run",
                              hint="enable one in collectors/sources or pass --source")
        self.state = settings.state_dir / "collect"
        conf = collection.settings
        self.spool = Spool(state_path(settings, conf.spool.path), conf.spool.max_bytes,
                           conf.spool.segment_bytes)
        self.sink = sink or build_sink(settings, collection)
        self.dead = build_dead_letter_sink(settings, collection, self.sink)
        self.sink_state = SinkState(self.sink.name)
        self.stop_event = threading.Event()
        self.stats: dict[str, SourceStats] = {}
        self.sources: list[Source] = []
        self.started = time.time()
        self.errors: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._ship_thread: threading.Thread | None = None
        self._stats_thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._next_prune = 0.0
        self._prune_cutoff: float | None = None  # retention under way, down to this time
        self._start_error: BaseException | None = None
        self._backoff = 0.2  # the shipper's wait before its next try, doubling to 5 s
        self._built = False  # the shipper has built the sink
        enricher = self.enricher = build_enricher(settings, collection)
        for c in self.collectors:
            stats = SourceStats()
            self.stats[c.name] = stats
            intake = Intake(Processor(c, enricher), self.spool, stats, self.stop_event)
            self.sources.append(BUILDERS[c.spec.source.type](c, intake, self.state))

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, *, freeze_heap: bool = False) -> None:
        """``freeze_heap`` (a collector process of its own, ``socctl collect run``): what
        exists once the collector is built (the national inventory's thousands of
        objects, compiled parsers) leaves the cyclic garbage collector's reach. Events
        are short-lived and acyclic, but every full collection would otherwise walk the
        whole inventory again, tens of times a second at full rate."""
        if freeze_heap:
            gc.collect()
            gc.freeze()
        self._file_limit()
        self.dead.build()
        self._loop_thread = threading.Thread(target=self._loop_main, name="collect-sources",
                                             daemon=True)
        self._loop_thread.start()
        self._ready.wait(30)
        if self._start_error is not None:
            self.stop()
            err = self._start_error
            raise err if isinstance(err, SocctlError) else SocctlError(str(err))
        self._ship_thread = threading.Thread(target=self._ship_main, name="collect-ship",
                                             daemon=True)
        self._ship_thread.start()
        self._stats_thread = threading.Thread(target=self._stats_main, name="collect-stats",
                                              daemon=True)
        self._stats_thread.start()

    def _file_limit(self) -> None:
        """Room for every connection the sources may hold, and then the spool's, the
        store's and the files' descriptors: the soft limit goes up to the hard one (often
        1024 against 1,048,576), and a note says when even that is short."""
        wanted = 256 + sum(c.spec.source.max_connections for c in self.collectors
                           if c.spec.source.type in CONNECTION_TYPES)
        try:
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY
                                                   or soft < hard):
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
                soft = hard
        except (ValueError, OSError):
            return
        if soft != resource.RLIM_INFINITY and soft < wanted:
            self.errors.append(f"open files limit {soft} is below the {wanted} the sources' "
                               "max_connections may need: lower them or raise the limit")

    def _stats_main(self) -> None:
        """Counters on disk every second, whatever the sink or the sources are doing; the
        botnet list looked at every ``botnet_reload_seconds``."""
        every = self.collection.settings.enrichment.botnet_reload_seconds
        next_look = time.monotonic() + every
        while not self.stop_event.wait(1.0):
            try:
                self.write_stats()
            except OSError as exc:
                self.errors.append(f"cannot write stats: {exc}")
            if time.monotonic() >= next_look:
                next_look = time.monotonic() + every
                reloaded = self.enricher.reload_botnet()
                if reloaded is not None:
                    ok, message = reloaded
                    (log.info if ok else log.warning)("%s", message)
                    if not ok:
                        self.errors.append(message)

    def _loop_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def main() -> None:
            try:
                for source in self.sources:
                    await source.start()
            except BaseException as exc:
                self._start_error = exc
                self._ready.set()
                return
            self._ready.set()
            while not self.stop_event.is_set():
                for source in self.sources:
                    source.poll_kernel()
                await asyncio.sleep(0.5)
            for source in self.sources:
                try:
                    await source.stop()
                except Exception as exc:
                    self.errors.append(f"{source.name}: stop failed: {exc}")

        try:
            loop.run_until_complete(main())
        finally:
            loop.close()

    def _prune(self) -> None:
        """Retention on the embedded store (by @timestamp): due at start, then hourly,
        and applied one chunk per shipping round until nothing expired is left, so
        shipping goes on while a large backlog of expired events is deleted."""
        if not isinstance(self.sink, SqliteSink) or self.sink.store is None:
            return
        if self._prune_cutoff is None:
            now = time.monotonic()
            if now < self._next_prune:
                return
            self._next_prune = now + 3600
            self._prune_cutoff = (time.time()
                                  - self.collection.settings.store.retention_days * 86400)
        try:
            events, done = self.sink.store.prune_step(self._prune_cutoff)
        except StoreError as exc:  # locked by another writer: try again in an hour
            self.errors.append(f"retention: {exc}")
            self._prune_cutoff = None
            return
        self.sink_state.pruned += events
        if done:
            self._prune_cutoff = None

    def _ship_main(self) -> None:
        """The shipper thread. Anything :meth:`_ship` did not expect (a bug, a spool it
        cannot read) is reported in the sink's health and the collector's errors and
        retried with backoff: a thread that died of it would leave the sink "healthy" and
        the spool filling until every source blocks, with nothing said."""
        while True:
            stopping = self.stop_event.is_set()
            try:
                if not self._ship(stopping):
                    return
            except Exception as exc:  # see the docstring
                log.exception("shipper")
                self.spool.rewind()
                detail = f"shipper: {type(exc).__name__}: {exc}"
                self._sink_down(detail)
                if detail not in self.errors:
                    self.errors.append(detail)
                if stopping:
                    return
                time.sleep(self._backoff)
                self._backoff = min(self._backoff * 2, 5.0)

    def _ship(self, stopping: bool) -> bool:
        """One round: build the sink if needed, ship up to 8 frames; False: stop now."""
        if self._built:
            self._prune()
        else:
            try:
                self.sink.build()
                self._built = True
            except SinkUnavailable as exc:
                self._sink_down(str(exc))
                if stopping:
                    return False
                time.sleep(self._backoff)
                self._backoff = min(self._backoff * 2, 5.0)
                return True
        # while retention is under way, an idle spool is no reason to wait for it
        frames = self.spool.read(max_frames=8,
                                 wait=0.2 if self._prune_cutoff is None else 0)
        if not frames:
            return not stopping
        try:
            results = self.sink.write_batches([f.rows for f in frames])
        except SinkUnavailable as exc:
            self.spool.rewind()
            self._sink_down(str(exc))
            if stopping and self.sink_state.failures > 3:
                return False  # stop with the batch still spooled: shipped on the next start
            time.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, 5.0)
            return True
        self._backoff = 0.2
        self.sink_state.healthy = True
        self.sink_state.detail = ""
        dead: list[tuple[Any, ...]] = [d for f in frames for d in f.dead]
        for f, result in zip(frames, results, strict=True):
            dead += [rejected_letter(f.source, row, self.sink.name, reason)
                     for row, reason in result.rejected]
        try:
            assert self.dead.store is not None
            self.sink_state.dead_letter_stored += self.dead.store.dead_letter(dead)
        except SocctlError as exc:
            self.spool.rewind()
            self._sink_down(f"dead-letter store: {exc}")
            time.sleep(self._backoff)
            return True
        self.spool.ack(frames[-1].end)
        for f, result in zip(frames, results, strict=True):
            self.sink_state.stored += result.stored
            self.sink_state.duplicates += result.duplicates
            self.sink_state.rejected += len(result.rejected)
            st = self.stats.get(f.source)
            if st is not None:
                st.shipped += result.stored
                st.duplicates += result.duplicates
                st.rejected += len(result.rejected)
        return True

    def _sink_down(self, detail: str) -> None:
        self.sink_state.healthy = False
        self.sink_state.detail = detail
        self.sink_state.failures += 1
        self.sink_state.retries += 1

    def stop(self, drain_timeout: float = 10.0) -> None:
        """Stop sources, ship what is spooled (up to ``drain_timeout``), close."""
        self.stop_event.set()
        if self._loop_thread is not None:
            self._loop_thread.join(15)
        if self._ship_thread is not None:
            deadline = time.monotonic() + drain_timeout
            while self._ship_thread.is_alive() and time.monotonic() < deadline:
                self._ship_thread.join(0.2)
        if self._stats_thread is not None:
            self._stats_thread.join(5)
        self.write_stats(running=False)
        self.sink.close()
        self.dead.close()
        self.spool.close()

    # -- status --------------------------------------------------------------------------
    def status(self, running: bool = True) -> Status:
        sources = {}
        for source in self.sources:
            data: dict[str, Any] = {"type": type(source).__name__, **source.describe(),
                                    **source.stats.to_dict()}
            sources[source.name] = data
        return Status(self.started, sources, self.spool.depth(), self.sink_state.to_dict(),
                      running, list(self.errors))

    def write_stats(self, running: bool = True) -> None:
        data = self.status(running).to_dict()
        data["pid"] = os.getpid()
        data["store_path"] = str(self.dead.path)  # dead letters' (and SQLite events') file
        self.state.mkdir(parents=True, exist_ok=True)
        tmp = self.state / (STATS_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, self.state / STATS_FILE)


def read_stats(settings: Settings) -> dict[str, Any]:
    """Counters of the running (or last) collector plus what the store holds now.

    Broken collector content (a source file half edited while the collector runs on what
    it loaded) does not hide them: the store is then the one the stats name, and the
    errors say that a restarted collector would refuse to start."""
    from socctl.collector.definition import load_collection
    from socctl.collector.pipeline import collectors_folder
    from socctl.errors import ValidationFailed
    from socctl.store.sqlite import SqliteStore

    collection: Collection | None = None
    broken: ValidationFailed | None = None
    try:
        collection = load_collection(collectors_folder(settings))
    except ValidationFailed as exc:
        broken = exc

    path = settings.state_dir / "collect" / STATS_FILE
    data: dict[str, Any] = {"sources": {}, "running": False}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        data["note"] = (f"no collector has run with this state directory ({path} does not "
                        "exist): start one with 'socctl collect run'")
    except (OSError, ValueError) as exc:
        data["errors"] = [f"cannot read the collector's counters in {path}: {exc}"]
    if data.get("running") and data.get("pid") and not _alive(int(data["pid"])):
        data["running"] = False
        data["note"] = "the collector died without stopping (killed?)"
    if collection is None and data.get("store_path"):
        db = Path(data["store_path"])
    else:
        db = store_path(settings, collection)
    if Path(db).exists():
        with SqliteStore(db, readonly=True) as store:
            data["store"] = {"path": str(db), "events": store.count(),
                             "dead_letter": store.dead_letter_count()}
    if broken is not None:
        data.setdefault("errors", []).append(
            f"collector content is invalid ({broken}; see 'socctl collect check'): a "
            "restarted collector would refuse to start")
    return data


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
