"""Up and down times of the lab profile (needs root). Target (issue 3): < 10 s together.

Run: sudo .venv/bin/python benchmarks/lab.py [rounds]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from socctl.config import Settings
from socctl.lab import runtime

REPO = Path(__file__).resolve().parent.parent


def main(rounds: int) -> None:
    runtime.preflight()
    settings = Settings(project_root=REPO, inventory=REPO / "inventory",
                        state_dir=Path(tempfile.mkdtemp(prefix="socctl-bench-")))
    ups, downs = [], []
    hosts = 0
    for _ in range(rounds):
        started = time.perf_counter()
        plan = runtime.up(settings)  # includes waiting for OSPF to converge
        ups.append(time.perf_counter() - started)
        hosts = len(plan.hosts)
        started = time.perf_counter()
        runtime.down(settings)
        downs.append(time.perf_counter() - started)
    print(f"lab profile: {hosts} hosts, {rounds} rounds")
    for label, values in (("up (to OSPF converged)", ups), ("down", downs)):
        print(f"{label:>24}: min {min(values):.2f} s  median {statistics.median(values):.2f} s"
              f"  max {max(values):.2f} s")
    total = statistics.median(ups) + statistics.median(downs)
    print(f"{'up + down (median)':>24}: {total:.2f} s (target < 10 s)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
