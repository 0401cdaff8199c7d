"""Entry points for the CLI: run a plan on the lab and write its report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from socctl.backup.hosts import LabHosts, lab_is_up
from socctl.config import Settings
from socctl.drill import report
from socctl.drill.plan import DrillPlan, Step, resolve
from socctl.drill.runner import DrillResult, StepLog, run
from socctl.errors import LabError


def load(settings: Settings, name: str) -> DrillPlan:
    from socctl.backup.ops import policies_dir

    return resolve(policies_dir(settings) / "drills", name)


def run_lab(settings: Settings, name: str, *, approve: Callable[[Step], bool] | None = None,
            assume_yes: bool = False, on_step: Callable[[StepLog], None] | None = None
            ) -> tuple[DrillResult, dict[str, Path]]:
    plan = load(settings, name)
    if not lab_is_up():
        raise LabError("the lab is not up (or not root)",
                       hint="socctl lab up, then socctl backup setup-lab")
    from socctl.backup import restic
    from socctl.backup.provision import db_secrets

    restic.set_password(db_secrets(settings).restic_password)
    result = run(settings, plan, LabHosts(), approve=approve, assume_yes=assume_yes,
                 on_step=on_step)
    return result, report.write(settings, result)
