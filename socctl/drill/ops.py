"""Entry points for the CLI: run a plan on the lab or on real servers, write its report."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from socctl.backup.hosts import LabHosts, SshHosts, lab_is_up
from socctl.config import Settings
from socctl.drill import report
from socctl.drill.plan import DrillPlan, Step, resolve
from socctl.drill.runner import LAB_ONLY_ACTIONS, DrillResult, StepLog, Target, run
from socctl.errors import ConfigError, LabError, Location


def load(settings: Settings, name: str) -> DrillPlan:
    from socctl.backup.ops import policies_dir

    return resolve(policies_dir(settings) / "drills", name)


def run_lab(settings: Settings, name: str, *, approve: Callable[[Step], bool] | None = None,
            assume_yes: bool = False, on_step: Callable[[StepLog], None] | None = None
            ) -> tuple[DrillResult, dict[str, Path]]:
    """The drill on this machine's lab (entered with nsenter; the lab's own secrets)."""
    plan = load(settings, name)
    if not lab_is_up():
        raise LabError("the lab is not up (or not root)",
                       hint="socctl lab up, then socctl backup setup-lab")
    from socctl.backup import restic
    from socctl.backup.provision import db_secrets
    from socctl.lab import runtime

    secrets = db_secrets(settings)
    restic.set_password(secrets.restic_password)
    lab = runtime.load_plan(settings)
    names = (plan.database.primary, plan.database.standby)
    target = Target({n: str(lab.host(n).management.ip) for n in names},
                    secrets.app_password, lab=True)
    result = run(settings, plan, LabHosts(), target, approve=approve,
                 assume_yes=assume_yes, on_step=on_step)
    return result, report.write(settings, result)


def remote_hosts(settings: Settings, environ: Mapping[str, str] | None = None) -> SshHosts:
    """The inventory's database servers over ssh as root at their management address,
    with the operator's ssh set-up (agent, ~/.ssh/config); ``SOCCTL_SSH_KEY`` names a key."""
    from socctl.inventory import load_inventory

    env = os.environ if environ is None else environ
    inv = load_inventory(settings.inventory)
    options = ["-i", env["SOCCTL_SSH_KEY"]] if env.get("SOCCTL_SSH_KEY") else []
    return SshHosts({n: str(d.management.ip) for n, d in inv.devices.items()
                     if d.role == "db_server"}, options)


def run_remote(settings: Settings, name: str, hosts: SshHosts, *,
               approve: Callable[[Step], bool] | None = None, assume_yes: bool = False,
               on_step: Callable[[StepLog], None] | None = None,
               environ: Mapping[str, str] | None = None
               ) -> tuple[DrillResult, dict[str, Path]]:
    """The drill on real servers over ssh. The write load logs in as the application with
    ``SOCCTL_DB_APP_PASSWORD`` (as provisioning sets it). Steps that only the lab can
    perform (making a whole DC disappear) are refused before anything runs."""
    plan = load(settings, name)
    env = os.environ if environ is None else environ
    lab_only = [(section, i, step) for section in ("steps", "switch_back")
                for i, step in enumerate(getattr(plan, section))
                if step.action in LAB_ONLY_ACTIONS]
    if lab_only:
        from socctl.content import line_of, load_yaml

        section, i, step = lab_only[0]
        data, _ = load_yaml(Path(plan.path))
        raise ConfigError(f"step {step.id!r} ({step.action}) runs only in the lab",
                          Location.of(plan.path, line_of(data, (section, i, "action")),
                                      f"{section}[{i}].action"),
                          hint="run this plan with --lab")
    if not env.get("SOCCTL_DB_APP_PASSWORD"):
        raise ConfigError("SOCCTL_DB_APP_PASSWORD is not set",
                          hint="the drill's write load logs in as the application")
    missing = [n for n in (plan.database.primary, plan.database.standby)
               if n not in hosts.addresses]
    if missing:
        raise ConfigError(f"no address for {', '.join(missing)}", Location.of(plan.path),
                          hint="the plan's database hosts must be in the inventory")
    target = Target({n: hosts.addresses[n] for n in (plan.database.primary,
                                                      plan.database.standby)},
                    env["SOCCTL_DB_APP_PASSWORD"])
    result = run(settings, plan, hosts, target, approve=approve, assume_yes=assume_yes,
                 on_step=on_step)
    return result, report.write(settings, result)
