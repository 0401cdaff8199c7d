"""The embedded store as it grows: insert cost per event, by size of the table, for the
ids socctl stores (the event's time first, then its content hash) next to hash-only ids.

Why: the id is the table's primary key. A hash-only key sends each insert to a random
page of that B-tree; once the index outgrows SQLite's page cache (64 MiB here) every
event reads and rewrites a cold page, and the store slows down as it fills, which is
exactly when a national SOC's store is large. Time-first ids keep inserts at the end.

Events: the ingest benchmark's mix, stamped as if arriving at 60,000 events/s (the
ingest target), turned into rows by the collector's own processor (national inventory,
botnet list), then inserted as the collector's sink does: frames of 500, 8 per commit,
background checkpoints. CPU time of the whole process (every thread) per segment; each
layout runs in its own process, pinned to the same CPU. Then retention deletes the older
half as the collector does (chunks of 5,000): at steady state a full store deletes an
event for every one it stores, so "insert + its deletion" is what it sustains. Needs
~4 GB of RAM and ~4 GB of disk per layout at the default size.

Run: .venv/bin/python benchmarks/store.py [events] [cpu]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import (
    FRAME,
    FRAMES_PER_COMMIT,
    commits,
    free_port,
    messages,
    pinned_child,
    project,
    row_maker,
)

SEGMENT = 400_000
RATE = 60_000
LAYOUTS = {"time": "time-ordered ids (stored)", "hash": "hash-only ids"}


def child(layout: str, total: int) -> dict[str, object]:
    """Inside the pinned process: build the rows, then insert them, timing each segment."""
    import gc

    from socctl.store.sqlite import SqliteStore

    state, row = row_maker()
    rows = [row(raw.rstrip(b"\n").decode()) for raw in messages(total, RATE)]
    if layout == "hash":  # the same ids with the time moved behind the hash
        rows = [(r[0][8:] + r[0][:8], *r[1:]) for r in rows]
    batches = commits(rows)
    path = state / f"store-{layout}.db"
    gc.collect()
    gc.freeze()
    store = SqliteStore(path, background_checkpoint=True)
    segments: list[float] = []
    started = mark = time.process_time()
    for n, batch in enumerate(batches, 1):
        store.insert_batches(batch)
        if (n * FRAME * FRAMES_PER_COMMIT) % SEGMENT == 0:
            now_cpu = time.process_time()
            segments.append((now_cpu - mark) / SEGMENT * 1e6)
            mark = now_cpu
    store.close()
    whole = time.process_time() - started
    size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    # retention, as the collector applies it: the older half expires, chunk by chunk
    cutoff = rows[total // 2][1]
    del batches, rows
    store = SqliteStore(path, background_checkpoint=True)
    started = time.process_time()
    deleted, done = 0, False
    while not done:
        n, done = store.prune_step(cutoff)
        deleted += n
    store.close()
    prune = (time.process_time() - started) / deleted * 1e6 if deleted else float("nan")
    return {"segments": segments, "us_per_row": whole / total * 1e6, "size": size,
            "prune_us": prune, "pruned": deleted}


def main(total: int, cpu: str) -> None:
    print(f"{total:,} events (stamped at {RATE:,}/s), inserted as the collector's sink "
          f"does; pinned to CPU {cpu}; load average {os.getloadavg()[0]:.2f}")
    results = {}
    for layout in LAYOUTS:
        with tempfile.TemporaryDirectory(prefix="socctl-store-") as tmp:
            results[layout] = pinned_child(__file__, cpu, project(Path(tmp), free_port()),
                                           "--child", layout, str(total))
    print(f"{'rows':>22}  " + "  ".join(f"{name:>26}" for name in LAYOUTS.values()))
    for n in range(len(results["time"]["segments"])):
        cells = "  ".join(f"{results[k]['segments'][n]:>20.1f} us/row" for k in LAYOUTS)
        print(f"{n * SEGMENT:>10,}-{(n + 1) * SEGMENT:>10,}  {cells}")
    whole = "  ".join(f"{r['us_per_row']:>9.1f} us/row = {1e6 / r['us_per_row']:>7,.0f}/s"
                      for r in results.values())
    print(f"{'all (with close)':>22}  {whole}")
    print(f"{'file size':>22}  " + "  ".join(f"{results[k]['size'] / 1e6:>23,.0f} MB"
                                             for k in LAYOUTS))
    print(f"{'retention (older half)':>22}  " + "  ".join(
        f"{r['prune_us']:>6.1f} us x {r['pruned']:>9,} deleted" for r in results.values()))
    both = "  ".join(f"{1e6 / (r['us_per_row'] + r['prune_us']):>21,.0f} events/s"
                     for r in results.values())
    print(f"{'insert + its deletion':>22}  {both}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]))))
        sys.exit(0)
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000,
         sys.argv[2] if len(sys.argv) > 2 else "1")
