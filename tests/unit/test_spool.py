"""The durable spool: at-least-once across restarts, torn tails, the full policy."""

from __future__ import annotations

import subprocess
import sys
import textwrap
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
    assert spool.depth() == {"pending_bytes": 0, "segments": 1, "max_bytes": spool.max_bytes,
                             "torn_frames": 0, "corrupt_frames": 0, "write_errors": 0}


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


def test_a_failed_write_leaves_no_torn_frame_before_good_ones(tmp_path: Path) -> None:
    """The file-size limit (RLIMIT_FSIZE: the kernel's EFBIG, as a full disk's ENOSPC)
    stops a frame half-way: the segment is cut back to the last whole frame, so the frames
    appended once space is back are not cut away with a torn one at the next start. Run in
    a child process, whose limit is its own."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from socctl.collector.spool import Spool
        from tests.unit.test_spool import rows
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        spool = Spool(Path({str(tmp_path)!r}))
        for k in range(3):
            spool.append("s", rows(10, k * 10), [])
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (spool.written.offset + 100, hard))
        try:
            spool.append("s", rows(10, 30), [])
        except OSError as exc:
            print("failed:", exc.errno)
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        for k in (4, 5):
            spool.append("s", rows(10, k * 10), [])
        print("write_errors:", spool.write_errors)
        spool.close()
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "failed: 27" in out.stdout and "write_errors: 1" in out.stdout, out.stdout
    again = Spool(tmp_path)
    assert again.torn_frames == 0
    assert drain(again) == [f"id{i}" for i in (*range(30), *range(40, 60))]


def test_an_acknowledgement_beyond_the_segments_is_brought_back(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append("s", rows(5), [])
    spool.close()
    (tmp_path / "ack").write_text("1 999999\n", encoding="ascii")
    again = Spool(tmp_path)
    assert again.acked == again.written
    again.append("s", rows(5, 5), [])
    assert drain(again) == [f"id{i}" for i in range(5, 10)]


def test_a_corrupt_frame_is_skipped_and_counted_not_a_stop(tmp_path: Path) -> None:
    """Damage on disk in the middle of a finished segment: shipping goes on with the next
    segment and the loss is counted, instead of the spool blocking for good."""
    spool = Spool(tmp_path, segment_bytes=2048)
    for k in range(12):
        spool.append("s", rows(10, k * 10), [])
    spool.close()
    first = sorted(tmp_path.glob("seg-*.spool"))[0]
    data = bytearray(first.read_bytes())
    data[20] ^= 0xFF  # inside the first frame's body
    first.write_bytes(bytes(data))
    again = Spool(tmp_path, segment_bytes=2048, memory_bytes=0)
    ids = drain(again)
    assert again.corrupt_frames == 1 and again.depth()["corrupt_frames"] == 1
    assert ids and ids[0] != "id0" and ids[-1] == "id119"
