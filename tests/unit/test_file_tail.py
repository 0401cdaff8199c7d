"""The file source's reading, line by line, on real files: lines longer than the limit
(found to their end, dead-lettered once with their true length), and rotations that come
faster than the drain of the previous one. The source hands its lines to a recording
intake here; the whole collector tails files in tests/unit/test_collect_run.py."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from socctl.collector.sources import file as file_source
from socctl.collector.sources.base import SourceStats
from socctl.collector.sources.file import FileTail


class Recorder:
    """What the tail submits: (line, dead-letter reason) in order."""

    def __init__(self) -> None:
        self.stats = SourceStats()
        self.lines: list[tuple[bytes, str | None]] = []

    def submit(self, messages: list[tuple[bytes, str | None]], peer: str | None,
               origin: str | None = None, ids: list[str] | None = None,
               **_: Any) -> None:
        assert ids is not None and len(ids) == len(messages)
        self.lines += messages


def tail(tmp_path: Path, path: Path, max_len: int = 65536) -> tuple[FileTail, Recorder]:
    rec = Recorder()
    source = FileTail("t", rec, (str(path),), "beginning", max_len,  # type: ignore[arg-type]
                      tmp_path / "checkpoints.json")
    return source, rec


def run(source: FileTail, rounds: int = 12) -> None:
    """As the source's own loop polls, a few times over."""
    for _ in range(rounds):
        source.poll_once()


@pytest.mark.parametrize("max_len", [65536, 1 << 20])
def test_a_line_longer_than_the_limit_is_one_dead_letter_with_its_length(
        tmp_path: Path, max_len: int) -> None:
    """Once, a line over 1 MiB came back as a dead letter of the wrong length and its tail
    as a line of its own; with max_line at 1 MiB the file was never read past it."""
    path = tmp_path / "app.log"
    long = b"A" * (max_len + (1 << 20) + 100)
    path.write_bytes(b"first\n" + long + b"\nafter\n")
    source, rec = tail(tmp_path, path, max_len)
    run(source)
    assert [(len(line), reason) for line, reason in rec.lines] == [
        (5, None),
        (max_len, f"line too long ({len(long)} bytes, limit {max_len})"),
        (5, None)]
    assert rec.lines[2][0] == b"after"


def test_the_checkpoint_stays_at_a_long_line_until_its_end_is_found(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"first\n" + b"B" * (3 << 20))  # still being written
    source, rec = tail(tmp_path, path)
    run(source)
    assert rec.lines == [(b"first", None)]
    saved = json.loads((tmp_path / "checkpoints.json").read_text())
    assert saved[str(path)]["offset"] == 6  # a restart searches again from the line start
    with path.open("ab") as fh:
        fh.write(b"BB\nnext\n")
    run(source)
    assert [(len(line), reason) for line, reason in rec.lines[1:]] == [
        (65536, f"line too long ({(3 << 20) + 2} bytes, limit 65536)"), (4, None)]


def test_two_rotations_within_the_drain_time_lose_nothing_at_a_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each rotated file draining has its own checkpoint: the first one's end of drain
    once deleted the second's, and after a kill -9 the rest of the second was never read."""
    path, rotated = tmp_path / "app.log", tmp_path / "app.log.1"
    path.write_bytes(b"A1\n")
    source, rec = tail(tmp_path, path)
    run(source)
    path.rename(rotated)
    path.write_bytes(b"B1\n")
    run(source)
    path.rename(rotated)  # the second rotation: the first rotated file is gone
    path.write_bytes(b"C1\n")
    run(source)
    assert [line for line, _ in rec.lines] == [b"A1", b"B1", b"C1"]
    assert len(source.draining) == 2
    first = next(d for d in source.draining if os.pread(d.fh.fileno(), 2, 0) == b"A1")
    first.last_data = float("-inf")  # the first has been quiet: its drain ends
    monkeypatch.setattr(file_source, "DRAIN_QUIET", 1.0)
    run(source, 1)
    assert len(source.draining) == 1
    with rotated.open("ab") as fh:
        fh.write(b"B2\n")  # the daemon's last line into the old file; then kill -9
    again, rec2 = tail(tmp_path, path)
    again.checkpoints = json.loads((tmp_path / "checkpoints.json").read_text())
    run(again)
    assert [line for line, _ in rec2.lines] == [b"B2"]
    for handle in [*source.open.values(), *source.draining, *again.open.values(),
                   *again.draining]:
        handle.fh.close()
