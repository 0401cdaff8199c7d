"""Recording alerts: the cost per hit as one alert grows (one scanner, one source address).

Why: a plain rule makes one hit per event, and every hit is recorded inside the detect
run's write transaction, which analysts' triage commands and the collector wait on.
Recording used to recount all of the alert's events for every hit: 8,000 hits from one
address took 27 s, 10,000 held the store for 45 s and analysts' commands failed as
"database is locked". The cost per hit should stay flat as the alert grows.

Events are real stored rows (the collector's parser and schema, on a file store), so
each hit also looks its event's time up as `detect run` does.

Run: .venv/bin/python benchmarks/triage.py [hits ...]   (default: 2000 4000 8000)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from socctl.detection.engine import Hit
from socctl.detection.loader import load_rules
from socctl.detection.runner import open_db
from socctl.detection.testing import event_row, insert_rows, open_store
from socctl.triage.store import AlertStore

REPO = Path(__file__).resolve().parent.parent
IP = "198.18.1.1"


def one(n: int, folder: Path) -> float:
    """Seconds to record ``n`` hits of one XSS scanner into one alert."""
    rules = load_rules(REPO / "detections")
    xss = next(r for r in rules.rules if r.title.startswith("Cross-Site"))
    path = folder / f"events-{n}.db"
    t0 = 1_795_000_000.0
    rows = [event_row("nginx.access", f'{IP} - - [22/Nov/2026:08:00:01 +0000] "GET '
                      f'/q?x=%3Cscript%3E{i} HTTP/1.1" 200 5 "-" "Mozilla/5.0"', t0 + i,
                      {"source.ip": IP}) for i in range(n)]
    store = open_store(path)
    insert_rows(store, rows)
    store.close()
    conn = open_db(path)
    hits = [Hit(xss.id, (("source.ip", IP),), (str(row[0]),), t0 + i, t0 + i)
            for i, row in enumerate(rows)]
    alerts = AlertStore(conn)
    start = time.perf_counter()
    alerts.record(hits, rules.rules)
    seconds = time.perf_counter() - start
    [alert] = alerts.query()
    assert alert.count == n, alert.count
    conn.close()
    return seconds


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [2000, 4000, 8000]
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            seconds = one(n, Path(tmp))
            print(f"{n} hits (one scanner, one alert): record {seconds:.2f} s, "
                  f"{seconds / n * 1e6:.0f} us/hit")


if __name__ == "__main__":
    main()
