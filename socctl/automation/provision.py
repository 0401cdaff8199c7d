"""``socctl provision``: select hosts, cut waves, run the playbook wave by wave, record.

The library entry point the CLI calls. Production runs use the project inventory
(``inventory/`` through the socctl inventory plugin); lab runs use the lab's Ansible view
and the lab's secrets. Operations return a :class:`ProvisionResult` and never print.
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from socctl.automation.record import write_record
from socctl.automation.result import HostRun, ProvisionResult, Wave
from socctl.automation.runner import OnProgress, PlaybookJob, run_job
from socctl.automation.secrets import lab_secret_env, production_secret_env
from socctl.automation.targets import playbook_hosts
from socctl.automation.waves import RolloutHost, plan_waves, roll_out, rollout_order
from socctl.config import Settings
from socctl.errors import ConfigError, LabError, Location
from socctl.inventory import Inventory, load_inventory
from socctl.inventory.select import Selection, select
from socctl.text import some

PLAYBOOK_DIR = "playbooks"
PRIMARY_DC = "dc-primary"


@dataclass(frozen=True, slots=True)
class ProvisionRequest:
    selection: Selection = field(default_factory=Selection)
    playbook: str = "site"
    lab: bool = False
    check: bool = False
    diff: bool = False
    wave: int | None = None
    wave_percent: float | None = None
    max_fail_percent: float = 0.0
    forks: int = 20
    vault_file: Path | None = None
    vault_password_file: Path | None = None
    # Plain (non-secret) variables from socctl itself, e.g. the backup policy's retention.
    extra_vars: Mapping[str, Any] = field(default_factory=dict)


def playbooks(settings: Settings) -> dict[str, Path]:
    folder = settings.project_root / PLAYBOOK_DIR
    return {p.stem: p for p in sorted(folder.glob("*.yml"))}


def find_playbook(settings: Settings, name: str) -> Path:
    known = playbooks(settings)
    stem = Path(name).stem if name.endswith((".yml", ".yaml")) else name
    if stem not in known:
        raise ConfigError(f"unknown playbook {name!r}",
                          Location.of(settings.project_root / PLAYBOOK_DIR),
                          hint=f"valid: {', '.join(known) or 'none found'}")
    return known[stem]


def _inventory_source(settings: Settings, lab: bool) -> Path:
    if lab:
        from socctl.lab.runtime import LabPaths

        view = LabPaths.of(settings).ansible_inventory
        if not view.exists():
            raise LabError("the lab's Ansible view does not exist", Location.of(view),
                           hint="run 'socctl lab up' first")
        return view
    return settings.inventory / "socctl.yml"


def _dependencies(inventory: Inventory) -> dict[str, str]:
    """Host -> the host it needs provisioned first: every database standby needs the
    primary (the primary DC's first database server, as playbooks/group_vars says)."""
    servers = sorted(d.name for d in inventory.devices.values() if d.role == "db_server")
    primary = next((n for n in servers if inventory.devices[n].site == PRIMARY_DC), None)
    return {n: primary for n in servers if primary is not None and n != primary}


def _who() -> str:
    user = os.environ.get("SUDO_USER") or ""
    try:
        user = user or getpass.getuser()
    except (KeyError, OSError):
        user = user or str(os.getuid())
    return user


def provision(settings: Settings, request: ProvisionRequest,
              on_progress: OnProgress | None = None,
              on_wave: Callable[[Wave], None] | None = None) -> ProvisionResult:
    """Run the playbook over the selection in waves; write the run record; return it."""
    playbook = find_playbook(settings, request.playbook)
    profile = settings.lab_profile if request.lab else "national"
    inventory = load_inventory(settings.inventory, profile)
    devices = select(inventory, request.selection)
    if not devices:
        raise ConfigError("the selection matches no host",
                          hint=f"selection: {request.selection.to_dict() or 'all'}")
    if not 0 <= request.max_fail_percent <= 100:
        raise ConfigError(f"--max-fail-percent must be in [0, 100], not "
                          f"{request.max_fail_percent:g}")
    targeted = playbook_hosts(playbook, inventory)
    unmanaged = [] if targeted is None else sorted(d.name for d in devices
                                                   if d.name not in targeted)
    devices = [d for d in devices if d.name not in unmanaged]
    if not devices:
        raise ConfigError(f"no play of {playbook.name} runs on the selected hosts",
                          Location.of(playbook),
                          hint=f"selected: {some(unmanaged, 5)}")
    order = rollout_order([RolloutHost(d.name, inventory.sites[d.site].tier, d.security_level)
                           for d in devices], after=_dependencies(inventory))
    waves = plan_waves(order, request.wave, request.wave_percent)
    secret_env = (lab_secret_env(settings) if request.lab
                  else production_secret_env(request.vault_file))
    source = _inventory_source(settings, request.lab)
    result = ProvisionResult(
        playbook=str(playbook.relative_to(settings.project_root)), inventory=str(source),
        check=request.check, diff=request.diff, selection=request.selection.to_dict(),
        max_fail_percent=request.max_fail_percent, waves=waves, user=_who(),
        started=datetime.now(UTC).isoformat(timespec="seconds"), unmanaged=unmanaged,
    )
    started = time.monotonic()

    def run_wave(wave: Wave) -> dict[str, HostRun]:
        if on_wave is not None:
            on_wave(wave)
        t0 = time.monotonic()
        job = PlaybookJob(
            playbook=playbook, inventory=source, ansible_cfg=settings.ansible_cfg,
            hosts=tuple(wave.hosts), check=request.check, diff=request.diff,
            forks=request.forks, vault_file=request.vault_file,
            vault_password_file=request.vault_password_file, secret_env=secret_env,
            extra_vars=request.extra_vars)
        hosts, rc = run_job(job, on_progress)
        wave.rc = rc
        wave.seconds = round(time.monotonic() - t0, 2)
        return hosts

    result.hosts, result.stopped = roll_out(waves, run_wave, request.max_fail_percent)
    result.seconds = time.monotonic() - started
    result.finished = datetime.now(UTC).isoformat(timespec="seconds")
    write_record(settings.state_dir, result)
    return result
