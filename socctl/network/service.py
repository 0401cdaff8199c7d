"""The entry points the CLI calls: one function per ``socctl net`` command.

Each resolves the inventory, content and credentials, selects the devices, runs the
per-device operation through the runner, records the run as JSON under the state
directory and returns the results. Nothing here prints.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socctl.config import Settings
from socctl.errors import ConfigError
from socctl.inventory import load_inventory
from socctl.inventory.model import Device, Inventory
from socctl.inventory.select import Selection, select
from socctl.network import backup, compliance, ops, render, runner, snmp
from socctl.network.credentials import Credentials, from_env, from_file, from_lab
from socctl.network.drivers import DRIVERS, get_driver
from socctl.results import HostResult, RunResult

Progress = runner.Progress


@dataclass(frozen=True)
class Request:
    """What the user asked for, as the CLI parsed it."""

    settings: Settings
    selection: Selection = field(default_factory=Selection)
    profile: str = "national"
    lab: bool = False
    credentials_file: Path | None = None
    templates: Path | None = None
    rules: Path | None = None
    intended_dir: Path | None = None
    timeout: float = 20.0
    session_log_dir: Path | None = None
    run: runner.RunOptions = field(default_factory=runner.RunOptions)

    @property
    def effective_profile(self) -> str:
        return self.settings.lab_profile if self.lab else self.profile

    @property
    def templates_dir(self) -> Path:
        return self.templates or self.settings.project_root / "device_templates"

    @property
    def rules_dir(self) -> Path:
        return self.rules or self.settings.project_root / "compliance_rules"


@dataclass
class Outcome:
    run: RunResult
    record: Path | None = None
    skipped: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.run.to_dict(), "record": str(self.record) if self.record else None,
                "skipped": self.skipped, **self.extra}


def credentials(request: Request) -> Credentials:
    if request.credentials_file is not None:
        return from_file(request.credentials_file)
    if request.lab:
        return from_lab(request.settings.state_dir)
    return from_env()


def _devices(request: Request, inventory: Inventory, need_driver: bool = True
             ) -> tuple[list[Device], list[str]]:
    chosen = runner.rollout(inventory, select(inventory, request.selection))
    if not need_driver:
        return chosen, []
    ok, unsupported = render.supported(chosen)
    if not ok:
        raise ConfigError(f"no selected device has a network driver ({len(chosen)} selected)",
                          hint=f"drivers: {', '.join(sorted(DRIVERS))}; narrow with "
                               "--platform frr or --platform cisco_ios")
    return ok, [d.name for d in unsupported]


def _context(request: Request, inventory: Inventory, run_dir: Path | None = None
             ) -> ops.NetContext:
    return ops.NetContext(
        inventory=inventory, templates=request.templates_dir,
        credentials=credentials(request), state_dir=request.settings.state_dir,
        intended_dir=request.intended_dir, timeout=request.timeout,
        session_log_dir=request.session_log_dir, run_dir=run_dir)


def _finish(request: Request, result: RunResult, started: float, skipped: list[str],
            **extra: Any) -> Outcome:
    path = runner.record(request.settings.state_dir, result, {
        "started": started, "profile": request.effective_profile,
        "selection": request.selection.to_dict(), "skipped": skipped, **extra})
    return Outcome(result, path, skipped, extra)


def render_devices(request: Request, out: Path | None = None) -> Outcome:
    inventory = load_inventory(request.settings.inventory, request.effective_profile)
    chosen = select(inventory, request.selection)
    result = render.render_all(inventory, chosen, request.templates_dir, out)
    return Outcome(result)


def diff(request: Request, progress: Progress | None = None) -> Outcome:
    started = time.time()
    inventory = load_inventory(request.settings.inventory, request.effective_profile)
    devices, skipped = _devices(request, inventory)
    ctx = _context(request, inventory)
    result = runner.run("diff", devices, lambda d: ops.diff(ctx, d), request.run, progress)
    return _finish(request, result, started, skipped)


def push(request: Request, options: ops.PushOptions, progress: Progress | None = None
         ) -> Outcome:
    started = time.time()
    inventory = load_inventory(request.settings.inventory, request.effective_profile)
    devices, skipped = _devices(request, inventory)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = request.settings.state_dir / "network" / "pre-change" / stamp
    ctx = _context(request, inventory, run_dir)
    result = runner.run("push" if options.commit else "push-dry-run", devices,
                        lambda d: ops.push(ctx, d, options), request.run, progress)
    return _finish(request, result, started, skipped, commit=options.commit)


def backup_day(settings: Settings) -> dt.date:
    """Today on the agency's clock (the backup policies' zone), not the host's: a timer on
    a server kept in UTC fires at 23:00 UTC, already the 1st in Hanoi. It decides the
    monthly policy day and dates the backup's commit."""
    from socctl.backup.ops import today

    return today(settings)


def backup_configs(request: Request, progress: Progress | None = None,
                   today: dt.date | None = None) -> Outcome:
    started = time.time()
    today = today or backup_day(request.settings)
    inventory = load_inventory(request.settings.inventory, request.effective_profile)
    devices, skipped = _devices(request, inventory)
    ctx = _context(request, inventory)
    result = runner.run("backup", devices, lambda d: ops.fetch(ctx, d), request.run, progress)
    summary = backup.store(request.settings.state_dir, inventory, result, today)
    return _finish(request, result, started, skipped, backup=summary)


def audit(request: Request, progress: Progress | None = None, intended: bool = False
          ) -> Outcome:
    """Compliance of running configs (or of the intended ones with ``intended``)."""
    started = time.time()
    inventory = load_inventory(request.settings.inventory, request.effective_profile)
    rules = compliance.load_rules_or_raise(request.rules_dir, DRIVERS)
    devices, skipped = _devices(request, inventory)
    renderer = render.Renderer.create(inventory, request.templates_dir)
    ctx = None if intended else _context(request, inventory)

    def task(device: Device) -> HostResult:
        driver = get_driver(device.platform)
        if ctx is None:
            text = renderer.render(device)
        else:
            text = str(ops.fetch(ctx, device).data["config"])
        outcomes = compliance.check(driver.tree(text), rules, device.platform,
                                    renderer.context(device, driver))
        failed = [o for o in outcomes if o.status == "fail"]
        errors = [o for o in failed if o.severity == "error"]
        return HostResult(device.name, failed=bool(errors),
                          message=(f"{len(failed)} of {len(outcomes)} rule(s) failed: "
                                   + ", ".join(o.rule for o in failed)) if failed
                          else f"{len(outcomes)} rule(s) passed",
                          data={"rules": [o.to_dict() for o in outcomes]})

    result = runner.run("compliance", devices, task, request.run, progress)
    return _finish(request, result, started, skipped, source="intended" if intended
                   else "running")


def poll(request: Request, options: snmp.PollOptions,
         progress: Progress | None = None) -> snmp.PollReport:
    started = time.time()
    inventory = load_inventory(request.settings.inventory, request.effective_profile)
    devices, _ = _devices(request, inventory, need_driver=False)
    report = snmp.poll(inventory, devices, credentials(request), options, progress)
    runner.record(request.settings.state_dir, report.run, {
        "started": started, "profile": request.effective_profile,
        "selection": request.selection.to_dict(), "summary": report.summary,
        "offices": report.offices})
    return report
