"""Load + check time of the full national inventory, and `ansible-inventory --list` time.

Target (issue 2): socctl's load + check < 2 s. Run: .venv/bin/python benchmarks/inventory.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from socctl.inventory import build_inventory

REPO = Path(__file__).resolve().parent.parent


def main(rounds: int = 5) -> None:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        inventory, problems = build_inventory(REPO / "inventory")
        times.append(time.perf_counter() - started)
    assert inventory is not None
    print(f"inventory: {len(inventory.sites)} sites, {len(inventory.devices)} devices, "
          f"{len(inventory.links)} links, {len(problems)} problems")
    print(f"socctl load+check: min {min(times):.3f} s, median {statistics.median(times):.3f} s "
          f"over {rounds} rounds (target < 2 s)")
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i",
                    str(REPO / "inventory"), "--list"], check=True, stdout=subprocess.DEVNULL,
                   cwd=REPO, env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")})
    print(f"ansible-inventory --list: {time.perf_counter() - started:.3f} s (one run)")


if __name__ == "__main__":
    main()
