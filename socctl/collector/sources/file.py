"""Tail files: rotation (rename, and copytruncate) and persisted checkpoints.

A file is known by (device, inode). The checkpoint stores the offset after the last line
that reached the spool, so a restart continues there; if the file was rotated while the
collector was down, the rotated file (``PATH.1`` / ``PATH-*``) with the checkpointed inode
is read to its end first. After a rename the old file is kept open and drained until it
has been quiet for ``DRAIN_QUIET`` seconds (the writer may still append before it
reopens). Event ids are (device:inode, offset), so lines read twice are stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from socctl.collector.ecs import FP_BYTES, file_line_id, first_line_fingerprint
from socctl.collector.sources.base import Intake, Source

POLL = 0.2
READ_MAX = 1 << 20
DRAIN_QUIET = 2.0


@dataclass
class _Open:
    path: str
    fh: BinaryIO
    dev: int
    ino: int
    offset: int
    last_data: float
    cp_key: str | None = None  # where its position is checkpointed
    fp: str | None = None  # fingerprint of the first line: inodes get reused
    scan: int | None = None  # inside a line longer than max_len: searching on from here

    @property
    def key(self) -> str:
        return f"{self.dev}:{self.ino}:{self.fp}"

    def fingerprint(self) -> str | None:
        """crc32 of the first line (or first 256 bytes); None while it is incomplete."""
        if self.fp is None:
            self.fp = first_line_fingerprint(os.pread(self.fh.fileno(), FP_BYTES, 0))
        return self.fp


def _rotated_key(path: str, handle: _Open) -> str:
    """The checkpoint of a rotated file being drained: one per file, so that a second
    rotation within the drain time does not overwrite (and then delete) the first's."""
    return f"{path}#rotated#{handle.dev}:{handle.ino}"


class FileTail(Source):
    def __init__(self, name: str, intake: Intake, paths: tuple[str, ...], start_at: str,
                 max_len: int, checkpoint_file: Path) -> None:
        super().__init__(name, intake)
        self.paths = paths
        self.start_at = start_at
        self.max_len = max_len
        self.checkpoint_file = checkpoint_file
        self.checkpoints: dict[str, dict[str, Any]] = {}
        self.open: dict[str, _Open] = {}
        self.draining: list[_Open] = []
        self.task: asyncio.Task[None] | None = None
        self.rotations = 0
        self._dirty = False

    async def start(self) -> None:
        try:
            self.checkpoints = json.loads(self.checkpoint_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.checkpoints = {}
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        for handle in [*self.open.values(), *self.draining]:
            handle.fh.close()

    async def _run(self) -> None:
        while True:
            busy = self.poll_once()
            await asyncio.sleep(0 if busy else POLL)

    # -- one pass ------------------------------------------------------------------------
    def poll_once(self) -> bool:
        """Read what is new in every path; returns True if a read hit its size limit."""
        busy = False
        now = time.monotonic()
        for old in list(self.draining):
            got = self._read(old, final=False)
            busy |= got >= READ_MAX
            if got:
                old.last_data = now
            elif now - old.last_data > DRAIN_QUIET:
                self._read(old, final=True)
                old.fh.close()
                self.draining.remove(old)
                if old.cp_key is not None:
                    self.checkpoints.pop(old.cp_key, None)
                    self._dirty = True
        for path in self.paths:
            busy |= self._poll_path(path, now)
        if self._dirty:
            self._save()
        return busy

    def _poll_path(self, path: str, now: float) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            st = None
        handle = self.open.get(path)
        if handle is None:
            if st is None:
                return False
            handle = self._open_first(path, st)
            if handle is None:
                return False
        elif st is not None and (st.st_ino != handle.ino or st.st_dev != handle.dev):
            self.rotations += 1  # renamed away: drain the old file, start the new one
            handle.last_data = now
            handle.cp_key = _rotated_key(path, handle)
            self._checkpoint(handle)
            self.draining.append(handle)
            del self.open[path]
            handle = self._open(path, 0)
            if handle is None:
                return False
        elif st is not None and st.st_size < handle.offset:
            handle.offset = 0  # truncated in place (copytruncate)
            self._checkpoint(handle)
        got = self._read(handle, final=False)
        if got:
            handle.last_data = now
        return got >= READ_MAX

    def _open_first(self, path: str, st: os.stat_result) -> _Open | None:
        for key in [k for k in self.checkpoints if k.startswith(path + "#rotated")]:
            # killed while draining rotated files (one key each): finish them
            self._drain_rotated_while_down(path, self.checkpoints[key], key)
        cp = self.checkpoints.get(path)
        if cp is not None:
            handle = self._open(path, 0)
            if handle is None:
                return None
            same = (cp["dev"], cp["ino"]) == (handle.dev, handle.ino) and \
                cp.get("fp") in (None, handle.fingerprint())
            if not same:  # rotated while we were down (or a new file on a reused inode)
                self._drain_rotated_while_down(path, cp, None)
            elif cp["offset"] <= st.st_size:
                handle.offset = int(cp["offset"])
            self._checkpoint(handle)
            return handle
        return self._open(path, st.st_size if self.start_at == "end" else 0)

    def _drain_rotated_while_down(self, path: str, cp: dict[str, Any], key: str | None
                                  ) -> None:
        """Finish the rotated file ``cp`` names, if it is still there; ``key``: its own
        checkpoint entry, dropped when the file is gone (nothing left to read of it)."""
        if key is not None:
            self.checkpoints.pop(key)
            self._dirty = True
        for candidate in sorted({path + ".1", *glob.glob(path + "-*"), *glob.glob(path + ".*")}):
            try:
                st = os.stat(candidate)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (cp["dev"], cp["ino"]):
                handle = self._open(candidate, cp["offset"], register=False)
                if handle is not None and cp.get("fp") not in (None, handle.fingerprint()):
                    handle.fh.close()
                    continue
                if handle is not None:
                    handle.last_data = time.monotonic()
                    handle.cp_key = _rotated_key(path, handle)
                    self._checkpoint(handle)
                    self.draining.append(handle)
                return

    def _open(self, path: str, offset: int, register: bool = True) -> _Open | None:
        try:
            fh = open(path, "rb")  # noqa: SIM115 - kept open while tailing
        except OSError:
            return None
        st = os.fstat(fh.fileno())
        handle = _Open(path, fh, st.st_dev, st.st_ino, offset, time.monotonic())
        if register:
            handle.cp_key = path
            self.open[path] = handle
            self._checkpoint(handle)
        return handle

    def _read(self, handle: _Open, final: bool) -> int:
        if handle.fingerprint() is None and not final:
            return 0  # the first line is not complete yet
        if handle.scan is not None:
            return self._skip_long_line(handle, final)
        handle.fh.seek(handle.offset)
        data = handle.fh.read(max(READ_MAX, self.max_len + 1))
        if not data:
            return 0
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) > self.max_len:  # a line longer than the limit: find its end
                handle.scan = handle.offset
                return self._skip_long_line(handle, final)
            if not final:
                return 0
            end = len(data) - 1  # the last line of a finished file
        chunk = data[:end + 1]
        messages: list[tuple[bytes, str | None]] = []
        ids: list[str] = []
        pos = handle.offset
        for raw in chunk.split(b"\n")[:-1] if chunk.endswith(b"\n") else [chunk]:
            line_offset = pos
            pos += len(raw) + 1
            text = raw.rstrip(b"\r")
            if not text.strip():
                continue
            reason = None
            if len(text) > self.max_len:
                reason = f"line too long ({len(text)} bytes, limit {self.max_len})"
                text = text[:self.max_len]
            messages.append((text, reason))
            ids.append(file_line_id(handle.fp, line_offset, raw))
        self.stats.bytes += len(chunk)
        self.intake.submit(messages, None, origin=handle.path, ids=ids)
        handle.offset += len(chunk)
        self._checkpoint(handle)
        return len(chunk)

    def _skip_long_line(self, handle: _Open, final: bool) -> int:
        """Search on for the end of a line longer than ``max_len``, a read at a time, and
        dead-letter it once (its first ``max_len`` bytes, its true length) when found. The
        checkpoint stays at the line's start until then: a restart searches again."""
        assert handle.scan is not None
        handle.fh.seek(handle.scan)
        data = handle.fh.read(READ_MAX)
        nl = data.find(b"\n")
        if nl < 0 and not final:
            handle.scan += len(data)
            return len(data)
        end = handle.scan + (nl if nl >= 0 else len(data))  # the newline, or the file's end
        handle.scan = None
        head = os.pread(handle.fh.fileno(), self.max_len, handle.offset)
        length = end - handle.offset
        self.stats.bytes += length + (nl >= 0)
        self.intake.submit([(head, f"line too long ({length} bytes, limit {self.max_len})")],
                           None, origin=handle.path,
                           ids=[file_line_id(handle.fp, handle.offset, head)])
        handle.offset = end + (nl >= 0)
        self._checkpoint(handle)
        return len(data)

    def _checkpoint(self, handle: _Open) -> None:
        if handle.cp_key is None:
            return
        entry: dict[str, Any] = {"dev": handle.dev, "ino": handle.ino, "offset": handle.offset}
        if handle.fp is not None:
            entry["fp"] = handle.fp
        self.checkpoints[handle.cp_key] = entry
        self._dirty = True

    def _save(self) -> None:
        self.checkpoint_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.checkpoints), encoding="utf-8")
        os.replace(tmp, self.checkpoint_file)
        self._dirty = False

    def describe(self) -> dict[str, Any]:
        return {"files": list(self.paths), "rotations": self.rotations}
