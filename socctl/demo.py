"""The main job: what a new user runs first, as a sequence of steps with results.

Each step yields a :class:`Step` as soon as it finishes so the CLI can show progress. A
step that needs root says so and is skipped; the others still run. Later capabilities
(provisioning, collection, detection, DR drills) add their steps here.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from socctl.config import Settings
from socctl.errors import Severity, SocctlError
from socctl.inventory import build_inventory, load_inventory
from socctl.inventory.report import summary


@dataclass
class Step:
    name: str
    status: str  # ok | skipped | failed
    detail: str
    seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _timed(name: str, fn: Callable[[], tuple[str, dict[str, Any]]],
           starting: Callable[[str], None] | None = None) -> Step:
    if starting is not None:
        starting(name)
    started = time.monotonic()
    try:
        detail, data = fn()
        return Step(name, "ok", detail, time.monotonic() - started, data)
    except SocctlError as exc:
        return Step(name, "failed", str(exc), time.monotonic() - started)
    except Exception as exc:  # one step's bug must not end the demo (nor skip lab down)
        return Step(name, "failed", f"internal error: {type(exc).__name__}: {exc}",
                    time.monotonic() - started)


def _detections(settings: Settings) -> tuple[str, dict[str, Any]]:
    """Every Sigma rule against its own attack and benign log lines, through the
    collector's parser and the detection engine."""
    from socctl.detection.loader import load_rules
    from socctl.detection.testing import run_rule_tests

    ruleset = load_rules(settings.project_root / "detections", with_tests=True)
    failures = run_rule_tests(ruleset)
    if failures:
        raise SocctlError(f"{len(failures)} rule test(s) failed, first: {failures[0]}")
    fire = sum(len(r.tests.fire) for r in ruleset.rules if r.tests)
    quiet = sum(len(r.tests.quiet) for r in ruleset.rules if r.tests)
    return (f"{len(ruleset.rules)} Sigma rules: {fire} attack scenarios detected, {quiet} "
            "benign scenarios quiet"), {"rules": len(ruleset.rules)}


def run_demo(settings: Settings, keep_lab: bool = True,
             starting: Callable[[str], None] | None = None) -> Iterator[Step]:
    """The steps in order, each yielded when it ends. ``starting(name)`` is called as a
    step begins: some take minutes (provisioning ~2.5 min, the attack ~1 min), and a
    user watching a silent terminal cannot tell a slow step from a hung one."""

    def timed(name: str, fn: Callable[[], tuple[str, dict[str, Any]]]) -> Step:
        return _timed(name, fn, starting)

    def check() -> tuple[str, dict[str, Any]]:
        _, problems = build_inventory(settings.inventory)
        errors = [p for p in problems if p.severity is Severity.ERROR]
        if errors:
            raise SocctlError(f"{len(errors)} error(s), first: {errors[0]}")
        return f"national inventory valid ({len(problems)} warning(s))", {}

    yield timed("inventory check", check)

    def summarise() -> tuple[str, dict[str, Any]]:
        data = summary(load_inventory(settings.inventory))
        s = data["sites"]
        return (f"{s['dc']} DCs, {s['ops']} operations centre, {s['province']} provinces, "
                f"{s['district']} districts; {data['devices']} devices, {data['links']} "
                f"links, {data['systems']} information systems"), data

    yield timed("inventory summary", summarise)
    yield timed("detections", lambda: _detections(settings))

    if os.geteuid() != 0:
        yield Step("lab", "skipped", "needs root (network namespaces): run as root to build "
                   "the lab and the steps that use it")
        return
    from socctl.lab import runtime

    def lab_up() -> tuple[str, dict[str, Any]]:
        plan = runtime.up(settings)
        return f"{len(plan.hosts)} hosts, {len(plan.links)} links, OSPF converged", {
            "hosts": list(plan.hosts)}

    step = timed("lab up", lab_up)
    yield step
    if step.status != "ok":
        return
    finished = False
    try:
        yield from _with_lab(settings, timed)
        finished = True
    finally:
        if not keep_lab and not finished:  # interrupted (Ctrl-C, the consumer stopped)
            with contextlib.suppress(Exception):
                runtime.down(settings)
    if not keep_lab:
        yield timed("lab down", lambda: ("lab removed", runtime.down(settings).to_dict()))


def _with_lab(settings: Settings,
              timed: Callable[[str, Callable[[], tuple[str, dict[str, Any]]]], Step]
              ) -> Iterator[Step]:
    """The steps that need the lab up, in order."""
    from socctl.lab import runtime

    def lab_status() -> tuple[str, dict[str, Any]]:
        hosts = runtime.status(settings)
        healthy = [h.name for h in hosts if h.running and all(h.daemons.values())]
        if len(healthy) != len(hosts):
            bad = sorted({h.name for h in hosts} - set(healthy))
            raise SocctlError(f"unhealthy hosts: {', '.join(bad)}")
        return f"all {len(hosts)} hosts healthy (sshd, FRR, snmpd, rsyslog)", {
            "hosts": [h.to_dict() for h in hosts]}

    yield timed("lab status", lab_status)
    from socctl.detection.demo import demo_attack, demo_db, demo_scan, demo_web

    # before provisioning: the baseline routers still accept passwords (what an attacker
    # finds on an unhardened device); provisioning then turns password login off
    yield timed("attack, detect, alerts", lambda: demo_attack(settings))
    yield timed("provision lab", lambda: _provision_lab(settings))
    # after provisioning: the routers' firewalls now drop and log what they do not offer
    yield timed("port scan, detect", lambda: demo_scan(settings))
    yield timed("web attacks on the portal, detect", lambda: demo_web(settings))
    yield timed("database password guessing, detect", lambda: demo_db(settings))

    def failover() -> tuple[str, dict[str, Any]]:
        plan = runtime.load_plan(settings)
        office = plan.host("p01d01-rtr1")
        target = str(office.loopback)
        runtime.set_link(settings, "p01d01-wan1", up_=False)
        started = time.monotonic()
        try:
            while time.monotonic() - started < 15:
                if runtime.run_in("dc-primary-log1",
                                  ["ping", "-c", "1", "-W", "1", target]).returncode == 0:
                    break
                time.sleep(0.2)
            else:
                raise SocctlError("p01d01 unreachable over its backup link")
            took = time.monotonic() - started
        finally:
            runtime.set_link(settings, "p01d01-wan1", up_=True)
        runtime.wait_converged(plan)
        return (f"p01d01 primary WAN cut: reachable over the backup link after {took:.1f} s; "
                "link healed"), {"seconds": took}

    yield timed("WAN failover", failover)
    yield timed("network config + SNMP", lambda: _network_step(settings))

    from socctl.collector.demo import demo_collect

    yield timed("log collection", lambda: demo_collect(settings))
    yield timed("backups and DR drill", lambda: dr_drill_step(settings))


def dr_drill_step(settings: Settings) -> tuple[str, dict[str, Any]]:
    """PostgreSQL primary + DR standby (Ansible), a full backup, a measured DR drill."""
    from socctl.backup import ops as backup_ops
    from socctl.backup.policy import BackupType
    from socctl.drill import ops as drill_ops

    setup = backup_ops.setup_lab(settings)
    if not setup["playbook"]["succeeded"]:
        raise SocctlError("database.yml failed: " + setup["playbook"]["output_tail"][-300:])
    if not backup_ops.run(settings, "databases", BackupType.FULL).ok:
        raise SocctlError("full backup failed")
    result, paths = drill_ops.run_lab(settings, "lab-primary-db-loss", assume_yes=True)
    if result.stopped_at:
        raise SocctlError(f"drill stopped at {result.stopped_at}; report {paths['html']}")
    m = result.measures
    return (f"failover RTO {m.get('rto_seconds')} s, RPO {m.get('rpo_rows')} rows, switched "
            f"back; report {paths['html']}"), {"measures": m, "report": str(paths["html"])}
def _provision_lab(settings: Settings) -> tuple[str, dict[str, Any]]:
    """socctl provision --lab --wave-percent 50: a canary host, then two waves."""
    from socctl.automation.provision import ProvisionRequest, provision

    result = provision(settings, ProvisionRequest(lab=True, wave_percent=50))
    if result.failed:
        bad = ", ".join(f"{h.host} ({h.status.value})" for h in result.failures)
        raise SocctlError(f"provisioning failed: {bad or result.stopped}; "
                          f"record: {result.record}")
    counts = ", ".join(f"{n} {s}" for s, n in result.counts().items() if n)
    return (f"site.yml in {len(result.waves)} waves (canary first): {counts}; "
            f"record {result.record}"), result.to_dict()
def _network_step(settings: Settings) -> tuple[str, dict[str, Any]]:
    """socctl net on the lab: drift of every router against its template, then SNMPv3
    poll of both WAN links of every office (read-only: the lab stays as it is)."""
    from socctl.inventory.select import Selection
    from socctl.network import service, snmp

    request = service.Request(settings, Selection(platforms=("frr",)), lab=True)
    diff = service.diff(request).run
    failed = [h.host for h in diff.hosts if h.failed]
    if failed:
        raise SocctlError(f"diff failed on {', '.join(failed)}: {diff.hosts[0].message}")
    drift = sum(h.changed for h in diff.hosts)
    poll = service.poll(request, snmp.PollOptions(interval=0.5))
    s = poll.summary
    return (f"{len(diff.hosts)} routers diffed ({drift} differ from their templates: "
            f"'socctl net diff --lab'); SNMPv3: {s['offices']} offices, {s['ok']} on both "
            f"WAN links, {s['on_backup']} on backup only, {s['down']} down"), {
                "diff": diff.to_dict(), "summary": s}
