"""How much of the embedded store's insert cost is Python, and how much is SQLite itself.

Why: the store alone is below issue 6's 60,000 events/s on one core. Whether that is the
price of binding rows from Python (then native code would fix it) or of the store's
design (one row, a ~1 KB JSON doc, a primary key and 8 indexes per event: then only a
different design would) decides what to build next. So the same rows go into the same
schema twice: once by socctl's sink code (``SqliteStore.insert_batches``: frames of 500,
8 per commit, INSERT OR IGNORE), once by a small C program against the same system
libsqlite3 (one prepared statement, the same commits, the same pragmas), and the C run
again without the secondary indexes (only the id primary key), to show what they cost.

Rows: the ingest benchmark's mix, made by the collector's own processor (national
inventory, botnet list), stamped as if arriving at 60,000/s. Each run is a fresh store in
its own process pinned to the same CPU; CPU time of the process. WAL checkpoints run
inside the commits in all three (no checkpoint thread), so the work is the same.
Needs gcc and the SQLite headers (Debian: gcc libsqlite3-dev).

Run: .venv/bin/python benchmarks/store_floor.py [events] [cpu]
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
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

RATE = 60_000
C_SOURCE = r"""
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/resource.h>

static double cpu(void) {
    struct rusage u; getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec
           + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}
static void check(int rc, sqlite3 *db, const char *what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db)); exit(1);
    }
}
/* argv: db rows-file insert-sql per-commit */
int main(int argc, char **argv) {
    FILE *f = fopen(argv[2], "rb");
    fseek(f, 0, SEEK_END); long size = ftell(f); fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(size);
    if (fread(buf, 1, size, f) != (size_t)size) { perror("read"); return 1; }
    fclose(f);
    long per_commit = atol(argv[4]);
    sqlite3 *db; check(sqlite3_open(argv[1], &db), db, "open");
    check(sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                       "PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=10000;",
                       0, 0, 0), db, "pragmas");
    sqlite3_stmt *st; check(sqlite3_prepare_v2(db, argv[3], -1, &st, 0), db, "prepare");
    unsigned char *p = buf, *end = buf + size;
    uint32_t ncols; memcpy(&ncols, p, 4); p += 4;
    long rows = 0;
    double start = cpu();
    check(sqlite3_exec(db, "BEGIN IMMEDIATE", 0, 0, 0), db, "begin");
    while (p < end) {
        for (uint32_t c = 1; c <= ncols; c++) {
            unsigned char kind = *p++;
            if (kind == 0) { sqlite3_bind_null(st, c); }
            else if (kind == 1) {
                int64_t v; memcpy(&v, p, 8); p += 8; sqlite3_bind_int64(st, c, v);
            } else if (kind == 2) {
                double v; memcpy(&v, p, 8); p += 8; sqlite3_bind_double(st, c, v);
            }
            else { uint32_t n; memcpy(&n, p, 4); p += 4;
                   sqlite3_bind_text(st, c, (const char *)p, n, SQLITE_STATIC); p += n; }
        }
        check(sqlite3_step(st), db, "insert");
        sqlite3_reset(st);
        if (++rows % per_commit == 0) {
            check(sqlite3_exec(db, "COMMIT", 0, 0, 0), db, "commit");
            check(sqlite3_exec(db, "BEGIN IMMEDIATE", 0, 0, 0), db, "begin");
        }
    }
    check(sqlite3_exec(db, "COMMIT", 0, 0, 0), db, "commit");
    sqlite3_finalize(st);
    sqlite3_close(db);
    printf("{\"rows\": %ld, \"seconds\": %.6f}\n", rows, cpu() - start);
    return 0;
}
"""


def encode(rows: list[tuple[object, ...]]) -> bytes:
    """The rows for the C program: column count, then per value a kind byte and data."""
    out = [struct.pack("<I", len(rows[0]))]
    for row in rows:
        for value in row:
            if value is None:
                out.append(b"\0")
            elif isinstance(value, int):
                out.append(struct.pack("<Bq", 1, value))
            elif isinstance(value, float):
                out.append(struct.pack("<Bd", 2, value))
            else:
                data = str(value).encode("utf-8", "surrogateescape")
                out.append(struct.pack("<BI", 3, len(data)) + data)
    return b"".join(out)


def child(mode: str, total: int, work: Path) -> dict[str, float]:
    """In the pinned process: a fresh store with socctl's schema, filled by ``mode``."""
    import gc

    from socctl.store.sqlite import INDEXES, INSERT_SQL, SqliteStore

    state, row = row_maker()
    rows = [row(raw.rstrip(b"\n").decode()) for raw in messages(total, RATE)]
    path = state / f"floor-{mode}.db"
    store = SqliteStore(path)  # schema, indexes, WAL; checkpoints inside commits
    if mode == "c-no-index":
        for cols in INDEXES:
            store.db.execute(f"DROP INDEX events_{'_'.join(cols)}")
    if mode == "python":
        gc.collect()
        gc.freeze()
        started = time.process_time()
        for batch in commits(rows):
            store.insert_batches(batch)
        store.close()
        seconds = time.process_time() - started
    else:
        store.close()
        data = work / f"rows-{mode}.bin"
        data.write_bytes(encode(rows))
        out = subprocess.run([str(work / "floor"), str(path), str(data), INSERT_SQL,
                              str(FRAME * FRAMES_PER_COMMIT)], capture_output=True,
                             text=True, check=True)
        seconds = float(json.loads(out.stdout)["seconds"])
        data.unlink()
    stored = SqliteStore(path, readonly=True)
    count = stored.count()
    stored.close()
    return {"us_per_row": seconds / total * 1e6, "stored": count}


MODES = {"python": "socctl's sink (Python sqlite3)",
         "c": "C, same statement and schema",
         "c-no-index": "C, id primary key only"}


def main(total: int, cpu: str) -> None:
    if not (shutil.which("gcc") and Path("/usr/include/sqlite3.h").exists()):
        sys.exit("store_floor: needs gcc and the SQLite headers (apt-get install gcc "
                 "libsqlite3-dev)")
    print(f"{total:,} events (stamped at {RATE:,}/s), commits of "
          f"{FRAME * FRAMES_PER_COMMIT:,}; pinned to CPU {cpu}; load average "
          f"{os.getloadavg()[0]:.2f}")
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="socctl-floor-") as tmp:
        work = Path(tmp)
        (work / "floor.c").write_text(C_SOURCE)
        subprocess.run(["gcc", "-O2", "-o", str(work / "floor"), str(work / "floor.c"),
                        "-lsqlite3"], check=True)
        for mode in MODES:
            results[mode] = pinned_child(__file__, cpu, project(work / mode, free_port()),
                                         "--child", mode, str(total), str(work))
            shutil.rmtree(work / mode)
    for mode, name in MODES.items():
        r = results[mode]
        print(f"{name:34} {r['us_per_row']:>6.1f} us/row = {1e6 / r['us_per_row']:>8,.0f} "
              f"rows/s  ({r['stored']:,.0f} stored)")
    python, native = results["python"]["us_per_row"], results["c"]["us_per_row"]
    print(f"Python's share of the insert: {python - native:.1f} us/row "
          f"({(python - native) / python:.0%}); the 8 secondary indexes in C: "
          f"{native - results['c-no-index']['us_per_row']:.1f} us/row")
    print("target: >= 60,000 events/s on one core = 16.7 us per event for everything")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))))
        sys.exit(0)
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 400_000,
         sys.argv[2] if len(sys.argv) > 2 else "1")
