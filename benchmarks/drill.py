"""The lab DR drill, measured: RTO, RPO, failback and switch-back downtime over N rounds,
and the point-in-time restore time of the lab database (needs root; takes the lab lock).

Targets (issue 8): RTO <= 3 s, RPO 0 rows (synchronous replication), failback <= 60 s,
switch-back downtime <= 2 s with 0 rows lost, point-in-time restore <= 60 s.

Run: sudo .venv/bin/python benchmarks/drill.py [rounds]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from socctl.backup import ops as backup_ops
from socctl.backup.policy import BackupType
from socctl.config import Settings
from socctl.drill import ops
from socctl.lab import runtime

REPO = Path(__file__).resolve().parent.parent


def _line(label: str, values: list[float], unit: str, target: str) -> None:
    if not values:
        print(f"{label:>28}: no measurement")
        return
    print(f"{label:>28}: min {min(values):.3f} {unit}  median {statistics.median(values):.3f}"
          f" {unit}  max {max(values):.3f} {unit}  (target {target})")


def main(rounds: int) -> int:
    runtime.preflight()
    runtime.claim(wait=3600)  # one lab per machine: queue behind other sessions
    settings = Settings(project_root=REPO, inventory=REPO / "inventory",
                        state_dir=Path(tempfile.mkdtemp(prefix="socctl-bench-")))
    runtime.up(settings)
    try:
        setup = backup_ops.setup_lab(settings)  # 'lab up' started with empty storage
        if not setup["playbook"]["succeeded"]:
            print(setup["playbook"]["output_tail"])
            return 1
        if not backup_ops.run(settings, "databases", BackupType.FULL).ok:
            print("full backup failed")
            return 1
        measures: dict[str, list[float]] = {k: [] for k in (
            "rto_seconds", "rpo_rows", "rpo_seconds", "failback_seconds",
            "switchback_downtime_seconds", "switchback_rows_lost")}
        completed = 0
        for n in range(rounds):
            result, paths = ops.run_lab(settings, "lab-primary-db-loss", assume_yes=True)
            status = "ok" if result.stopped_at is None else f"stopped at {result.stopped_at}"
            print(f"round {n + 1}: {status}; report {paths['html']}")
            for key, values in measures.items():
                if isinstance(result.measures.get(key), int | float):
                    values.append(float(result.measures[key]))
            if result.stopped_at is not None:
                break
            completed += 1
        restore = backup_ops.verify(settings, "databases")[0]
        print(f"drill rounds: {completed} of {rounds} completed")
        _line("RTO (loss to first write)", measures["rto_seconds"], "s", "<= 3 s")
        _line("RPO (acknowledged rows lost)", measures["rpo_rows"], "rows", "0")
        _line("RPO time lag", measures["rpo_seconds"], "s", "0")
        _line("failback (pg_rewind+catch-up)", measures["failback_seconds"], "s", "<= 60 s")
        _line("switch-back downtime", measures["switchback_downtime_seconds"], "s", "<= 2 s")
        _line("switch-back rows lost", measures["switchback_rows_lost"], "rows", "0")
        print(f"{'point-in-time restore':>28}: {restore.get('restore_seconds')} s "
              f"({'data matches' if restore['ok'] else restore.get('detail')}; target <= 60 s)")
        return 0 if completed == rounds and restore["ok"] else 1
    finally:
        runtime.down(settings)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
