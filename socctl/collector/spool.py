"""A durable on-disk spool between parsing and the sink: at-least-once delivery.

Segments ``seg-<n>.spool`` hold frames ``<length u32><crc32 u32><marshal payload>``; one
frame is one batch from one source (event rows and dead letters). The shipper reads
frames after the acknowledged position, writes them to the sink and only then moves the
acknowledgement (``ack``, replaced atomically). A crash at any point re-ships at most the
unacknowledged frames, and the sink ignores ids it already has, so nothing is lost and
nothing is stored twice.

Bounded: when unshipped data reaches ``max_bytes`` the policy is **block**: ``append``
waits, so TCP/TLS/file sources stop reading (senders feel back-pressure, files are read
later) and UDP datagrams pile up in the kernel, whose drops are counted per source.

Frames just written are also kept in memory (up to ``memory_bytes`` of them): a shipper
that keeps up reads them from there, not back from the file and through ``marshal``
again; after a restart, or when it lags that far behind, it reads the segments.

Frames are written with one ``write()`` each, so a killed process (kill -9) never leaves
half a frame in the page cache; a torn frame after a power loss fails its CRC and the
tail is truncated on open (counted as ``torn_frames``). Data is fsynced at most
``fsync_interval`` seconds after it is written.
"""

from __future__ import annotations

import logging
import marshal
import os
import struct
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
_HEAD = struct.Struct("<II")
MAX_FRAME = 256 << 20


@dataclass(frozen=True, order=True)
class Position:
    segment: int
    offset: int


@dataclass
class Frame:
    source: str
    rows: list[tuple[Any, ...]]
    dead: list[tuple[Any, ...]]
    end: Position


class SpoolFull(Exception):
    """Raised by ``append(timeout=...)`` when the spool stayed full that long."""


class Spool:
    def __init__(self, directory: Path, max_bytes: int = 256 << 20,
                 segment_bytes: int = 16 << 20, fsync_interval: float = 1.0,
                 memory_bytes: int = 32 << 20) -> None:
        self.dir = directory
        self.memory_bytes = memory_bytes
        #: frame start -> (frame, its size on disk): what was appended and not yet acked
        self._memory: OrderedDict[Position, tuple[Frame, int]] = OrderedDict()
        self._memory_size = 0
        self.memory_hits = 0
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync_interval = fsync_interval
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cond = threading.Condition()
        self.torn_frames = 0
        self.write_errors = 0  # appends that failed (disk full): the caller was told
        self.corrupt_frames = 0  # frames that failed their CRC when read back: skipped
        self.blocked_seconds = 0.0
        self.acked = self._load_ack()
        segments = self._segments()
        if not segments:
            segments = [max(self.acked.segment, 1)]
            self._path(segments[0]).touch()
        self._recover(segments[-1])
        self.write_seg = segments[-1]
        self.fh = self._open_segment(self.write_seg)
        self.written = Position(self.write_seg, self.fh.tell())
        # an acknowledgement beyond what the segments hold (they were cut after a failed
        # write, or the ack was copied from elsewhere) would skip the frames written next
        self.acked = min(max(self.acked, Position(segments[0], 0)), self.written)
        self._last_sync = time.monotonic()
        self._reader: tuple[int, Any] | None = None
        self.read_pos = self.acked

    # -- files ---------------------------------------------------------------------------
    def _path(self, n: int) -> Path:
        return self.dir / f"seg-{n:012d}.spool"

    def _open_segment(self, n: int) -> Any:
        """Unbuffered: a write that fails (disk full, quota) leaves no bytes behind in a
        buffer to be flushed later into the middle of the next frame."""
        return self._path(n).open("ab", buffering=0)

    def _segments(self) -> list[int]:
        return sorted(int(p.stem[4:]) for p in self.dir.glob("seg-*.spool"))

    def _load_ack(self) -> Position:
        try:
            seg, off = (self.dir / "ack").read_text(encoding="ascii").split()
            return Position(int(seg), int(off))
        except (OSError, ValueError):
            return Position(0, 0)

    def _recover(self, segment: int) -> None:
        """Truncate a torn tail frame (power loss mid-write) of the last segment."""
        path = self._path(segment)
        good = 0
        with path.open("rb") as fh:
            while True:
                head = fh.read(_HEAD.size)
                if len(head) < _HEAD.size:
                    break
                length, crc = _HEAD.unpack(head)
                body = fh.read(length) if length <= MAX_FRAME else b""
                if len(body) != length or zlib.crc32(body) != crc:
                    break
                good = fh.tell()
            end = fh.seek(0, os.SEEK_END)
        if end != good:
            self.torn_frames += 1
            with path.open("r+b") as fh:
                fh.truncate(good)

    # -- producer ------------------------------------------------------------------------
    def pending_bytes(self) -> int:
        """Bytes written but not yet acknowledged by the sink."""
        if self.written.segment == self.acked.segment:
            return self.written.offset - self.acked.offset
        total = self.written.offset
        for seg in range(self.acked.segment, self.written.segment):
            path = self._path(seg)
            size = path.stat().st_size if path.exists() else 0
            total += size - (self.acked.offset if seg == self.acked.segment else 0)
        return total

    def append(self, source: str, rows: list[tuple[Any, ...]], dead: list[tuple[Any, ...]],
               timeout: float | None = None, stop: threading.Event | None = None) -> None:
        """Write one frame; blocks while the spool is full (the stated policy)."""
        if not rows and not dead:
            return
        body = marshal.dumps((source, rows, dead))
        frame = _HEAD.pack(len(body), zlib.crc32(body)) + body
        with self.cond:
            started = None
            while self.pending_bytes() + len(frame) > self.max_bytes and self.pending_bytes():
                if started is None:
                    started = time.monotonic()
                if stop is not None and stop.is_set():
                    raise SpoolFull("collector stopping while the spool is full")
                if timeout is not None and time.monotonic() - started > timeout:
                    raise SpoolFull(f"spool full ({self.max_bytes} bytes) for {timeout} s")
                self.cond.wait(0.2)
            if started is not None:
                self.blocked_seconds += time.monotonic() - started
            if self.written.offset >= self.segment_bytes:
                self._rotate()
            self._write(frame)
            start = self.written
            self.written = Position(self.write_seg, self.written.offset + len(frame))
            self._remember(start, Frame(source, rows, dead, self.written), len(frame))
            now = time.monotonic()
            if now - self._last_sync >= self.fsync_interval:
                os.fsync(self.fh.fileno())
                self._last_sync = now
            self.cond.notify_all()

    def _write(self, frame: bytes) -> None:
        """The whole frame, or nothing: after a failed write the segment is cut back to
        the last whole frame, so a torn frame never sits before good ones (which the
        recovery at the next start would cut away with it)."""
        view = memoryview(frame)
        try:
            while view:
                n = self.fh.write(view)
                view = view[n:]
        except OSError:
            self.write_errors += 1
            os.ftruncate(self.fh.fileno(), self.written.offset)
            raise

    def _remember(self, start: Position, frame: Frame, size: int) -> None:
        """Keep the frame for the shipper; the oldest go first past ``memory_bytes``."""
        if size > self.memory_bytes:
            return
        self._memory[start] = (frame, size)
        self._memory_size += size
        while self._memory_size > self.memory_bytes:
            _, (_, dropped) = self._memory.popitem(last=False)
            self._memory_size -= dropped

    def _forget(self, upto: Position) -> None:
        """Frames that end at or before ``upto`` (acknowledged) leave the memory."""
        while self._memory:
            start, (frame, size) = next(iter(self._memory.items()))
            if frame.end > upto:
                break
            del self._memory[start]
            self._memory_size -= size

    def _rotate(self) -> None:
        os.fsync(self.fh.fileno())
        self.fh.close()
        self.write_seg += 1
        self.fh = self._open_segment(self.write_seg)
        self.written = Position(self.write_seg, 0)

    def sync(self) -> None:
        with self.cond:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self._last_sync = time.monotonic()

    # -- consumer ------------------------------------------------------------------------
    def read(self, max_frames: int = 16, wait: float = 0.0) -> list[Frame]:
        """Frames after the last one read (starting at the acknowledged position)."""
        with self.cond:
            if self.read_pos >= self.written and wait > 0:
                self.cond.wait(wait)
            limit = self.written
        out: list[Frame] = []
        pos = self.read_pos
        while len(out) < max_frames and pos < limit:
            with self.cond:
                kept = self._memory.get(pos)
            if kept is not None:
                self.memory_hits += 1
                out.append(kept[0])
                pos = kept[0].end
                continue
            if self._reader is None or self._reader[0] != pos.segment:
                if self._reader is not None:
                    self._reader[1].close()
                self._reader = (pos.segment, self._path(pos.segment).open("rb"))
            fh = self._reader[1]
            fh.seek(pos.offset)
            head = fh.read(_HEAD.size)
            if len(head) < _HEAD.size:
                if pos.segment < limit.segment:  # end of a finished segment
                    pos = Position(pos.segment + 1, 0)
                    continue
                break
            length, crc = _HEAD.unpack(head)
            body = fh.read(length) if length <= MAX_FRAME else b""
            if len(body) != length or zlib.crc32(body) != crc:
                # damaged on disk: nothing after it in this segment can be framed again.
                # Stopping here would block the spool for good; the loss is counted and
                # logged, and shipping goes on with the next segment.
                self.corrupt_frames += 1
                log.error("spool %s: frame at offset %d is corrupt; the rest of the "
                          "segment is skipped", self._path(pos.segment), pos.offset)
                pos = (Position(pos.segment + 1, 0) if pos.segment < limit.segment
                       else limit)
                continue
            source, rows, dead = marshal.loads(body)
            pos = Position(pos.segment, pos.offset + _HEAD.size + length)
            out.append(Frame(source, rows, dead, pos))
        self.read_pos = pos
        return out

    def rewind(self) -> None:
        """Forget what was read but not acknowledged (the sink failed): read it again."""
        self.read_pos = self.acked

    def ack(self, pos: Position) -> None:
        """Everything before ``pos`` is in the sink: persist, then drop finished segments."""
        tmp = self.dir / "ack.tmp"
        tmp.write_text(f"{pos.segment} {pos.offset}\n", encoding="ascii")
        os.replace(tmp, self.dir / "ack")
        with self.cond:
            self.acked = pos
            self._forget(pos)
            for seg in self._segments():
                if seg < pos.segment:
                    if self._reader is not None and self._reader[0] == seg:
                        self._reader[1].close()
                        self._reader = None
                    self._path(seg).unlink(missing_ok=True)
            self.cond.notify_all()

    def depth(self) -> dict[str, int]:
        with self.cond:
            return {"pending_bytes": self.pending_bytes(),
                    "segments": len(self._segments()), "max_bytes": self.max_bytes,
                    "torn_frames": self.torn_frames, "corrupt_frames": self.corrupt_frames,
                    "write_errors": self.write_errors}

    def close(self) -> None:
        with self.cond:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            if self._reader is not None:
                self._reader[1].close()
                self._reader = None
