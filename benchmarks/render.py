"""Rendering the intended config of every national device, and auditing the result.

Target (issue 5): rendering all ~3,546 national devices < 5 s (devices whose platform has
no network driver yet, e.g. fortinet and servers, are counted as skipped).
Run: .venv/bin/python benchmarks/render.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from socctl.inventory import load_inventory
from socctl.network import compliance
from socctl.network.drivers import DRIVERS, get_driver
from socctl.network.render import Renderer, render_all

REPO = Path(__file__).resolve().parent.parent


def main(rounds: int = 3) -> None:
    inventory = load_inventory(REPO / "inventory", "national")
    devices = list(inventory.devices.values())
    times = []
    cpu = []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(rounds):
            started, cpu_started = time.perf_counter(), time.process_time()
            run = render_all(inventory, devices, REPO / "device_templates", Path(out))
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
    rendered = [h for h in run.hosts if not h.data.get("skipped") and not h.failed]
    skipped = [h for h in run.hosts if h.data.get("skipped")]
    print(f"national: {len(devices)} devices: {len(rendered)} rendered, {len(skipped)} skipped "
          f"(no driver), {sum(h.failed for h in run.hosts)} failed")
    print(f"render all (to files): min {min(times):.2f} s, median "
          f"{statistics.median(times):.2f} s over {rounds} rounds (target < 5 s); CPU time "
          f"min {min(cpu):.2f} s (wall time grows when the machine is shared)")
    rules = compliance.load_rules_or_raise(REPO / "compliance_rules", DRIVERS)
    renderer = Renderer.create(inventory, REPO / "device_templates")
    started = time.perf_counter()
    checked = 0
    for device in devices:
        if device.platform not in DRIVERS:
            continue
        driver = get_driver(device.platform)
        compliance.check(driver.tree(renderer.render(device)), rules, device.platform,
                         renderer.context(device, driver))
        checked += 1
    print(f"render + compliance of {checked} devices: {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
