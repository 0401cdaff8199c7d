"""'down' leaves nothing behind; 'up' recovers from a crashed lab. Runs last."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from socctl.config import Settings
from socctl.lab import runtime
from socctl.lab.plan import LabPlan


def _leftovers() -> dict[str, object]:
    mounts = [line for line in Path("/proc/self/mounts").read_text().splitlines()
              if "socctl-lab" in line]
    procs = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "socctl-lab":
                    procs.append(pid)
            except OSError:
                pass
    return {"netns": runtime.lab_namespaces(), "links": runtime.lab_links(),
            "mounts": mounts, "procs": procs,
            "runtime_dir": runtime.RUNTIME_DIR.exists()}


def test_down_leaves_nothing_and_up_cleans_a_crashed_lab(lab: LabPlan,
                                                         lab_settings: Settings) -> None:
    assert _leftovers()["netns"]
    # simulate a crash: the state file is lost, everything else is still there
    (runtime.RUNTIME_DIR / "state.json").unlink()
    runtime.up(lab_settings)
    assert all(h.running for h in runtime.status(lab_settings))
    runtime.down(lab_settings)
    assert _leftovers() == {"netns": [], "links": [], "mounts": [], "procs": [],
                            "runtime_dir": False}
    runtime.down(lab_settings)  # idempotent
    assert subprocess.run(["ip", "link", "show", "socctl-mgmt"],
                          capture_output=True).returncode != 0
    runtime.up(lab_settings)  # leave the session fixture's lab as it was
