"""The per-device operations: diff, push (with backup, verification and rollback), fetch
for backups and audits. Each returns a :class:`HostResult`; nothing prints.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from socctl.errors import ContentError, DeviceError, Location
from socctl.files import write_private
from socctl.inventory.model import Device, Inventory
from socctl.network import configtree
from socctl.network.credentials import Credentials
from socctl.network.drivers import Driver, Session, Target, get_driver
from socctl.network.masking import mask_line, mask_lines, mask_text
from socctl.network.render import Renderer
from socctl.results import HostResult


@dataclass
class NetContext:
    """What every operation needs: inventory, content, credentials, where state goes."""

    inventory: Inventory
    templates: Path
    credentials: Credentials
    state_dir: Path
    intended_dir: Path | None = None
    timeout: float = 20.0
    port: int = 22
    session_log_dir: Path | None = None
    run_dir: Path | None = None
    _renderer: Renderer | None = field(default=None, repr=False)

    def target(self, device: Device) -> Target:
        return Target(device.name, str(device.management.ip), self.port)

    def intended(self, device: Device, driver: Driver) -> str:
        """The rendered config, or the file ``<intended_dir>/<device>.cfg`` if given
        (``socctl net render --out DIR``, reviewed or edited, then pushed as is)."""
        if self.intended_dir is not None:
            path = self.intended_dir / f"{device.name}.cfg"
            try:
                return driver.normalise(path.read_text(encoding="utf-8"))
            except OSError as exc:
                raise ContentError(f"no intended config: {exc.strerror}",
                                   Location.of(path)) from exc
        if self._renderer is None:
            self._renderer = Renderer.create(self.inventory, self.templates)
        return self._renderer.render(device)

    @contextlib.contextmanager
    def session(self, device: Device, driver: Driver) -> Iterator[Session]:
        self.credentials.require_cli()
        log = None
        if self.session_log_dir is not None:
            self.session_log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            log = str(self.session_log_dir / f"{device.name}.log")
        session = driver.connect(self.target(device), self.credentials, self.timeout, log)
        try:
            yield session
        finally:
            session.close()


def _private_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(path, text)


def fetch(ctx: NetContext, device: Device) -> HostResult:
    """The device's running config, normalised (for backups and audits)."""
    driver = get_driver(device.platform)
    with ctx.session(device, driver) as session:
        running = driver.normalise(session.running())
    return HostResult(device.name, data={"platform": device.platform, "config": running})


def diff(ctx: NetContext, device: Device) -> HostResult:
    driver = get_driver(device.platform)
    intended = ctx.intended(device, driver)
    with ctx.session(device, driver) as session:
        running = session.running()
    text = mask_text(configtree.unified(device.name, driver.normalise(running), intended))
    commands = driver.commands(running, intended)
    return HostResult(device.name, changed=bool(commands), diff=text,
                      message=f"{len(commands)} command(s) to apply" if commands else "in sync",
                      data={"commands": mask_lines(commands)})


@dataclass(frozen=True, slots=True)
class PushOptions:
    commit: bool = False
    verify_timeout: float = 30.0
    settle: float | None = None
    """Seconds to wait before judging adjacencies; default: the driver's dead interval."""


def push(ctx: NetContext, device: Device, options: PushOptions) -> HostResult:
    """Dry run unless ``commit``: backup, apply only the needed lines, verify, roll back."""
    driver = get_driver(device.platform)
    intended = ctx.intended(device, driver)
    with ctx.session(device, driver) as session:
        before = session.running()
        commands = driver.commands(before, intended)
        # what is reported is masked; what is sent (``commands``) is not
        text = mask_text(configtree.unified(device.name, driver.normalise(before), intended))
        data: dict[str, object] = {"commands": mask_lines(commands)}
        if not commands:
            return HostResult(device.name, message="in sync: nothing to apply", data=data)
        if not options.commit:
            return HostResult(device.name, changed=True, diff=text, data=data,
                              message=f"dry run: {len(commands)} command(s) would be applied")
        backup = (ctx.run_dir or ctx.state_dir / "network" / "pre-change") / \
            f"{device.name}.before.cfg"
        _private_write(backup, before)
        data["backup"] = str(backup)
        neighbours = session.adjacencies()
        full = sorted(k for k, v in neighbours.items() if v.startswith("Full"))
        data["adjacencies_before"] = full
        try:
            session.configure(commands)
            verify(session, driver, intended, full, options)
            # inside: a change the device cannot save would be gone at its next reload,
            # while socctl said "applied"; undone now, the device is as it was
            session.save()
        except DeviceError as exc:
            data["rollback"] = rollback(ctx, device, driver, session, before, full, options)
            ok = data["rollback"]["ok"]  # type: ignore[index]
            outcome = "rolled back to the backup" if ok else "ROLLBACK FAILED"
            return HostResult(device.name, failed=True, changed=not ok, diff=text, data=data,
                              message=f"{exc.message}; {outcome} ({backup})",
                              exception=type(exc).__name__)
        data["saved"] = True
    return HostResult(device.name, changed=True, diff=text, data=data,
                      message=f"applied {len(commands)} command(s); verified"
                              + (f"; {len(full)} adjacencies back" if full else ""))


def verify(session: Session, driver: Driver, intended: str, adjacencies: list[str],
           options: PushOptions) -> None:
    """Intent (the running config now equals the intended one), then routing: every
    neighbour that was Full before the change is Full again within the timeout."""
    remaining = driver.commands(session.running(), intended)
    if remaining:
        raise DeviceError(f"verification failed: {len(remaining)} line(s) still differ after "
                          f"the push, first: {mask_line(remaining[0])!r}",
                          session.target.location)
    if not adjacencies:
        return
    time.sleep(driver.settle_seconds if options.settle is None else options.settle)
    deadline = time.monotonic() + options.verify_timeout
    while True:
        now = session.adjacencies()
        missing = [k for k in adjacencies if not now.get(k, "").startswith("Full")]
        if not missing:
            return
        if time.monotonic() > deadline:
            shown = ", ".join(f"{k} ({now.get(k, 'gone')})" for k in missing)
            raise DeviceError(f"verification failed: routing adjacencies not back within "
                              f"{options.verify_timeout:.0f} s: {shown}",
                              session.target.location)
        time.sleep(1.0)


def rollback(ctx: NetContext, device: Device, driver: Driver, session: Session, before: str,
             adjacencies: list[str], options: PushOptions) -> dict[str, object]:
    """Apply the difference back to the backup, then check the config equals it again."""
    report: dict[str, object] = {"ok": False, "adjacencies_back": False}
    try:
        try:
            current = session.running()
        except DeviceError:
            # The change may have cut the session; one fresh connection to undo it.
            session.close()
            session.conn = driver.connect(ctx.target(device), ctx.credentials,
                                          ctx.timeout).conn
            current = session.running()
        back = driver.commands(current, before)
        report["commands"] = mask_lines(back)
        session.configure(back)
        left = driver.commands(session.running(), before)
        if left:
            report["error"] = f"{len(left)} line(s) still differ from the backup"
            return report
        report["ok"] = True
        with contextlib.suppress(DeviceError):
            verify(session, driver, driver.normalise(before), adjacencies,
                   PushOptions(verify_timeout=options.verify_timeout, settle=0.0))
            report["adjacencies_back"] = True
    except DeviceError as exc:
        report["error"] = exc.message
    return report
