"""The processing stage shared by every source: line -> ECS event -> row, or dead letter.

:class:`Processor` applies one collector definition (dataset parser + options, program
routes, static ECS fields, inventory and botnet enrichment, deterministic id).
:func:`replay` runs whole files through it into a sink: ``socctl collect replay``.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socctl.collector.definition import Collection, Collector, static_fields
from socctl.collector.ecs import (
    FP_BYTES,
    Event,
    ParseError,
    file_line_id,
    first_line_fingerprint,
    time_ordered,
)
from socctl.collector.enrich import BotnetList, Enricher
from socctl.collector.parse import DEFAULT_ROUTES, parse_event
from socctl.collector.sinks import SINKS, Sink
from socctl.collector.sinks.sqlite import SqliteSink
from socctl.collector.syslog import zone_named
from socctl.config import Settings
from socctl.errors import ConfigError, SocctlError, ValidationFailed
from socctl.store.sqlite import ROW_NAMES, Row, to_row

DeadLetterItem = tuple[str, float, str, str | None, str | None, str, bytes]
"""(id, received, source, dataset, origin, reason, raw bytes)."""


class Processor:
    """Parse, map and enrich lines for one collector; never raises for a bad line."""

    def __init__(self, collector: Collector, enricher: Enricher | None = None) -> None:
        spec = collector.spec
        self.name = collector.name
        self.dataset = spec.parser.dataset
        self.options: dict[str, Any] = {**spec.parser.options,
                                        "timezone": zone_named(collector.timezone)}
        self.routes = {**DEFAULT_ROUTES, **spec.parser.routes}
        self.static: list[tuple[list[str], Any]] = [
            (key.split("."), value) for key, value in static_fields(spec).items()]
        self.namespace = spec.ecs.namespace
        self.enricher = enricher
        self.max_line = spec.source.max_line

    def event(self, line: str, received: float, eid: str, peer: str | None = None
              ) -> tuple[float, Event]:
        """Raises ParseError with the dead-letter reason. The event's id is ``eid`` led by
        the time written in the line (:func:`~socctl.collector.ecs.time_ordered`)."""
        if len(line) > self.max_line:
            raise ParseError(f"line too long ({len(line)} characters, limit {self.max_line})")
        ts, ev = parse_event(self.dataset, line, received, self.options, self.routes)
        ev["event"]["id"] = time_ordered(ts, eid)
        if ts is None:
            ts = received
        for parts, value in self.static:
            node = ev
            for part in parts[:-1]:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = node[part] = {}
                node = child
            node.setdefault(parts[-1], value)
        if self.enricher is not None:
            self.enricher.apply(ev, peer)
        ev["data_stream"] = {"type": "logs", "dataset": "socctl." + ev["event"]["dataset"],
                             "namespace": self.namespace}
        return ts, ev

    def row(self, line: str, received: float, eid: str, peer: str | None = None) -> Row:
        """Raises ParseError only: a parser that trips over a hostile line (an int() of a
        digit Python accepts and int() does not, a number wider than JSON's 64 bits) makes
        that line a dead letter, instead of costing its batch or the source's task."""
        try:
            ts, ev = self.event(line, received, eid, peer)
            return to_row(ev["event"]["id"], ts, received, ev)
        except ParseError:
            raise
        except Exception as exc:  # any parser bug is this line's dead letter
            raise ParseError(f"parser error: {type(exc).__name__}: {exc}") from exc

    def dead_letter(self, eid: str, received: float, origin: str | None, reason: str,
                    raw: bytes) -> DeadLetterItem:
        return (eid, received, self.name, self.dataset, origin, reason, raw)


_MESSAGE = ROW_NAMES.index("message")
_HOST_IP = ROW_NAMES.index("host_ip")


def rejected_letter(source: str, row: Row, sink: str, reason: str) -> DeadLetterItem:
    """A row the sink refused, as a dead letter ``collect dead-letter --retry`` can parse
    again: the raw line (log.original, not the ECS document made of it) and the address it
    came from (host.ip, which site enrichment reads)."""
    original, host_ip = row[_MESSAGE], row[_HOST_IP]
    raw = (original.encode("utf-8", "surrogateescape") if isinstance(original, str)
           else str(row[-1]).encode("utf-8", "surrogateescape"))
    origin = host_ip if isinstance(host_ip, str) and "," not in host_ip else None
    return (row[0], row[2], source, row[3], origin, f"rejected by {sink}: {reason}", raw)


def decode(raw: bytes) -> str:
    """Bytes -> str keeping invalid UTF-8 visible (surrogates), so it is dead-lettered."""
    return raw.decode("utf-8", "surrogateescape")


@dataclass
class ReplayResult:
    read: int = 0
    stored: int = 0
    dead_letter: int = 0
    duplicates: int = 0
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"read": self.read, "stored": self.stored, "dead_letter": self.dead_letter,
                "duplicates": self.duplicates, "files": self.files}


def _open(path: Path) -> tuple[str, io.BufferedIOBase]:
    """The file to read, decompressing when its first bytes say gzip, bzip2 or xz."""
    with path.open("rb") as fh:
        head = fh.read(10)
    if head.startswith(b"\x1f\x8b\x08"):
        return "gzip", gzip.open(path, "rb")
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:] == b"1AY&SY":
        return "bzip2", bz2.open(path, "rb")
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz", lzma.open(path, "rb")
    return "", path.open("rb")


class UnreadableFile(SocctlError):
    """A file cannot be opened, or a compressed one breaks before its end (a truncated
    .gz)."""


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(offset, line) of a file; rotated logs compressed by logrotate (gzip, bzip2, xz,
    told by their first bytes) are read decompressed, offsets in the decompressed text."""
    try:
        kind, stream = _open(path)
    except OSError as exc:
        raise UnreadableFile(f"{path}: cannot read it: {exc.strerror}") from exc
    offset = 0
    with stream as fh:
        try:
            for raw in fh:
                yield offset, raw
                offset += len(raw)
        except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
            raise UnreadableFile(
                f"{path}: {kind or 'file'} unreadable after {offset} bytes of text: {exc}",
                hint="the lines before it were stored; a replay of a mended file stores "
                     "none of them twice") from exc


def replay(processor: Processor, files: Iterable[Path], sink: Sink, dead: SqliteSink,
           batch: int = 2000) -> ReplayResult:
    """Read files whole through the processor into the sink; dead letters to ``dead``."""
    result = ReplayResult()
    rows: list[Row] = []
    letters: list[DeadLetterItem] = []

    def flush() -> None:
        if rows:
            out = sink.write(rows)
            result.stored += out.stored
            result.duplicates += out.duplicates
            for row, reason in out.rejected:
                letters.append(rejected_letter(processor.name, row, sink.name, reason))
            rows.clear()
        if letters:
            assert dead.store is not None
            dead.store.dead_letter(letters)
            result.dead_letter += len(letters)
            letters.clear()

    for path in files:
        origin = str(path.resolve())
        result.files.append(origin)
        received = time.time()
        fingerprint: str | None = None
        try:
            for offset, raw in _lines(path):
                if offset == 0:
                    fingerprint = first_line_fingerprint(raw[:FP_BYTES])
                line = decode(raw).rstrip("\r\n")
                if not line.strip():
                    continue
                result.read += 1
                eid = file_line_id(fingerprint, offset, raw[:-1] if raw.endswith(b"\n")
                                   else raw)
                try:
                    rows.append(processor.row(line, received, eid))
                except ParseError as exc:
                    letters.append(processor.dead_letter(eid, received, origin, exc.reason,
                                                         raw.rstrip(b"\r\n")))
                if len(rows) + len(letters) >= batch:
                    flush()
        except UnreadableFile:
            flush()
            raise
    flush()
    return result


# -- wiring from settings -------------------------------------------------------------------
def collectors_folder(settings: Settings) -> Path:
    return settings.project_root / "collectors"


def state_path(settings: Settings, relative: str) -> Path:
    path = Path(relative).expanduser()
    return path if path.is_absolute() else settings.state_dir / path


def store_path(settings: Settings, collection: Collection | None = None) -> Path:
    """The embedded store: SOCCTL_EVENTS_DB, else collect.yaml's store.path in state_dir."""
    env = os.environ.get("SOCCTL_EVENTS_DB")
    if env:
        return Path(env).expanduser().resolve()
    relative = collection.settings.store.path if collection is not None else "events.db"
    return state_path(settings, relative)


def build_enricher(settings: Settings, collection: Collection) -> Enricher:
    from socctl.inventory import load_inventory

    conf = collection.settings.enrichment
    inventory = None
    if settings.inventory.is_dir():
        inventory = load_inventory(settings.inventory, conf.inventory_profile)
    botnet, path = None, None
    if conf.botnet_list:
        path = collection.resolve(conf.botnet_list)
        botnet, problems = BotnetList.load(path, conf.botnet_provider)
        if problems:
            raise ValidationFailed("botnet list", problems)
    return Enricher(inventory, botnet, path)


def build_sink(settings: Settings, collection: Collection, name: str | None = None) -> Sink:
    kind = name or collection.settings.sink
    if kind == "sqlite":
        return SqliteSink(store_path(settings, collection))
    cls = SINKS.get(kind)
    if cls is None:
        raise ConfigError(f"unknown sink {kind!r} (valid: {', '.join(sorted(SINKS))})")
    from socctl.collector.sinks.base import Sink as _Sink
    factory: Any = getattr(cls, "from_settings", None)
    if factory is None:
        raise ConfigError(f"sink {kind!r} cannot be built from settings")
    sink: _Sink = factory(collection.settings)
    return sink


def build_dead_letter_sink(settings: Settings, collection: Collection, sink: Sink
                           ) -> SqliteSink:
    """Dead letters always go to the embedded store; when the events do too (same
    file), the events' sink already runs the file's checkpointer: one is enough."""
    path = store_path(settings, collection)
    shared = isinstance(sink, SqliteSink) and sink.path == path
    return SqliteSink(path, background_checkpoint=not shared)


@dataclass
class RetryResult:
    retried: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letter: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"retried": self.retried, "stored": self.stored,
                "duplicates": self.duplicates, "dead_letter": self.dead_letter}


def retry_dead_letters(settings: Settings, sources: Sequence[str] = ()) -> RetryResult:
    """``socctl collect dead-letter --retry``: dead letters through the collectors as they
    are now (a parser added, an option such as log_line_prefix mended). Those that become
    events are stored and leave the table; the others stay with this attempt's reason. An
    event keeps the id it would have had (the dead letter's), so a retry interrupted and
    run again stores nothing twice."""
    from socctl.collector.definition import load_collection

    collection = load_collection(collectors_folder(settings))
    for name in sources:
        collection.get(name)  # an unknown name is an error with the valid ones
    enricher = build_enricher(settings, collection)
    processors: dict[str, Processor] = {}
    sink = build_sink(settings, collection)
    letters_sink = build_dead_letter_sink(settings, collection, sink)
    sink.build()
    letters_sink.build()
    store = letters_sink.store
    assert store is not None
    result = RetryResult()
    try:
        after = 0
        while letters := store.dead_letters_after(after, sources,
                                                  collection.settings.spool.batch):
            after = letters[-1].seq
            rows: list[Row] = []
            seq_of: dict[str, int] = {}
            again: list[tuple[str, int]] = []
            for letter in letters:
                collector = collection.collectors.get(letter.source)
                if collector is None:  # its collector is gone: nothing to parse it with
                    again.append((letter.reason, letter.seq))
                    continue
                proc = processors.get(letter.source)
                if proc is None:
                    proc = processors[letter.source] = Processor(collector, enricher)
                peer = None if collector.spec.source.type == "file" else letter.origin
                try:
                    row = proc.row(decode(letter.raw), letter.received, letter.id, peer)
                except ParseError as exc:
                    again.append((exc.reason, letter.seq))
                    continue
                rows.append(row)
                seq_of[row[0]] = letter.seq
            if rows:
                out = sink.write(rows)
                result.stored += out.stored
                result.duplicates += out.duplicates
                for row, reason in out.rejected:
                    again.append((f"rejected by {sink.name}: {reason}", seq_of.pop(row[0])))
            store.settle_dead_letters(list(seq_of.values()), again)
            result.retried += len(letters)
            result.dead_letter += len(again)
    finally:
        sink.close()
        letters_sink.close()
    return result


def replay_files(settings: Settings, source: str, files: Iterable[Path],
                 sink_name: str | None = None) -> ReplayResult:
    """``socctl collect replay``: files through collector ``source`` into the sink."""
    from socctl.collector.definition import load_collection
    from socctl.errors import SocctlError

    collection = load_collection(collectors_folder(settings))
    collector = collection.get(source)
    paths = list(files)
    for path in paths:
        if not path.is_file():
            raise SocctlError("not a file" if path.exists() else "no such file",
                              location=None, hint=str(path))
    processor = Processor(collector, build_enricher(settings, collection))
    sink = build_sink(settings, collection, sink_name)
    dead = build_dead_letter_sink(settings, collection, sink)
    sink.build()
    dead.build()
    try:
        return replay(processor, paths, sink, dead, collection.settings.spool.batch)
    finally:
        sink.close()
        dead.close()
