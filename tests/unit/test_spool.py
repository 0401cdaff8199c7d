"""The durable spool: at-least-once across restarts, torn tails, the full policy."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from socctl.collector.spool import Spool, SpoolFull


def rows(n: int, start: int = 0) -> list[tuple[object, ...]]:
    return [(f"id{i}", float(i), f"payload {i} " * 5) for i in range(start, start + n)]


def drain(spool: Spool) -> list[str]:
    out = []
    while frames := spool.read(max_frames=100):
        out += [r[0] for f in frames for r in f.rows]
        spool.ack(frames[-1].end)
    return out


def test_unacknowledged_frames_come_back_after_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=4096)
    for k in range(10):
        spool.append("src", rows(10, k * 10), [])
    first = spool.read(max_frames=4)
    spool.ack(first[1].end)  # only the first two frames reached the sink
    spool.read(max_frames=100)  # read but never acknowledged (crash)
    spool.close()
    again = Spool(tmp_path, segment_bytes=4096)
    ids = drain(again)
    assert ids == [f"id{i}" for i in range(20, 100)]
    again.close()
    assert drain(Spool(tmp_path)) == []


def test_rewind_rereads_after_a_sink_failure(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append("a", rows(3), [("d1", 1.0, "a", None, None, "bad", b"raw")])
    (frame,) = spool.read()
    assert frame.source == "a" and frame.dead[0][6] == b"raw"
    spool.rewind()
    (same,) = spool.read()
    assert same.rows == frame.rows


def test_finished_segments_are_deleted_once_acknowledged(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=2048)
    for k in range(20):
        spool.append("s", rows(10, k * 10), [])
    assert spool.depth()["segments"] > 3
    assert len(drain(spool)) == 200
    assert spool.depth() == {"pending_bytes": 0, "segments": 1, "max_bytes": spool.max_bytes}


def test_torn_tail_is_truncated_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append("s", rows(5), [])
    spool.append("s", rows(5, 5), [])
    spool.close()
    seg = next(tmp_path.glob("seg-*.spool"))
    data = seg.read_bytes()
    seg.write_bytes(data[:-7])  # power loss in the middle of the second frame
    again = Spool(tmp_path)
    assert again.torn_frames == 1
    assert drain(again) == [f"id{i}" for i in range(5)]
    again.append("s", rows(1, 99), [])
    assert drain(again) == ["id99"]


def test_full_spool_blocks_producers_until_the_sink_catches_up(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 16)
    with pytest.raises(SpoolFull):
        for _ in range(1000):  # fill it up: ~70 frames fit
            spool.append("s", rows(10), [], timeout=0.3)
    assert spool.pending_bytes() <= spool.max_bytes
    released: list[float] = []

    def producer() -> None:
        spool.append("s", rows(10), [])
        released.append(time.monotonic())

    thread = threading.Thread(target=producer)
    thread.start()
    time.sleep(0.4)
    assert released == []  # still blocked: the stated "block" policy
    acked_at = time.monotonic()
    frames = spool.read(max_frames=5)
    spool.ack(frames[-1].end)
    thread.join(5)
    assert released and released[0] >= acked_at
    assert spool.blocked_seconds > 0.3


@pytest.mark.parametrize("memory_bytes", [0, 3000, 32 << 20])
def test_frames_from_memory_equal_what_the_file_holds(tmp_path: Path, memory_bytes: int) -> None:
    """However little the memory keeps (nothing, some frames, all), the shipper reads the
    same frames in the same order, rewinds to them, and a restart finds the same ones."""
    spool = Spool(tmp_path, segment_bytes=4096, memory_bytes=memory_bytes)
    for k in range(12):
        spool.append("src", rows(10, k * 10), [("d", float(k), "src", None, None, "r", b"x")])
    first = spool.read(max_frames=5)
    spool.rewind()  # the sink failed: the same frames again
    again = spool.read(max_frames=5)
    assert [f.rows for f in again] == [f.rows for f in first]
    assert [f.end for f in again] == [f.end for f in first]
    spool.ack(again[-1].end)
    rest = spool.read(max_frames=100)
    assert [r[0] for f in rest for r in f.rows] == [f"id{i}" for i in range(50, 120)]
    assert all(f.dead[0][6] == b"x" for f in rest)
    if memory_bytes >= 32 << 20:
        assert spool.memory_hits == 17  # 5 + 5 again + 7: never read back from disk
    elif memory_bytes == 0:
        assert spool.memory_hits == 0
    spool.close()
    restarted = Spool(tmp_path, segment_bytes=4096, memory_bytes=memory_bytes)
    assert [r[0] for f in restarted.read(max_frames=100) for r in f.rows] == \
        [f"id{i}" for i in range(50, 120)]
    assert restarted.memory_hits == 0  # nothing in memory after a restart: the file
    restarted.close()
