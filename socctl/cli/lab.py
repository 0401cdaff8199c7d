"""socctl lab: the network-namespace lab (up, down, status, exec, ssh, faults)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import click

from socctl.cli import render
from socctl.cli.main import AppContext
from socctl.lab import runtime


@click.group("lab")
def group() -> None:
    """A small copy of the agency's network: real sshd, FRR, snmpd, rsyslog (root)."""


@group.command("up")
@click.option("--profile", default=None, help="Inventory profile (default: lab).")
@click.pass_obj
def up(app: AppContext, profile: str | None) -> None:
    """Build the lab (cleaning any stale one first)."""
    started = time.monotonic()
    with render.err_console.status("bringing the lab up..."):
        plan = runtime.up(app.settings, profile)
    elapsed = time.monotonic() - started
    data = {"profile": plan.profile, "hosts": len(plan.hosts), "links": len(plan.links),
            "seconds": round(elapsed, 2),
            "ansible_inventory": str(runtime.LabPaths.of(app.settings).ansible_inventory)}
    if render.is_json():
        render.emit_json(data)
    else:
        render.console.print(f"lab up: {data['hosts']} hosts, {data['links']} links in "
                             f"{elapsed:.1f} s; Ansible view: {data['ansible_inventory']}")


@group.command("down")
@click.pass_obj
def down(app: AppContext) -> None:
    """Remove the lab and everything it left behind (idempotent)."""
    report = runtime.down(app.settings)
    if render.is_json():
        render.emit_json(report.to_dict())
    else:
        render.console.print(f"lab down: {len(report.namespaces)} namespaces, "
                             f"{len(report.links)} links removed")
    _say_foreign(report.foreign)


def _say_foreign(foreign: list[str]) -> None:
    for line in foreign:
        render.err_console.print(f"left running (not started by the lab): {line}")


@group.command("status")
@click.pass_obj
def status(app: AppContext) -> None:
    """Hosts, addresses, daemons and OSPF neighbours."""
    hosts = runtime.status(app.settings)
    if render.is_json():
        render.emit_json([h.to_dict() for h in hosts])
    else:
        rows = []
        for h in hosts:
            daemons = " ".join(f"{k}{'' if v else '(down)'}" for k, v in h.daemons.items())
            full = sum(n["state"].startswith("Full") for n in h.ospf_neighbours)
            ospf = f"{full}/{len(h.ospf_neighbours)} full" if h.ospf_neighbours else ""
            rows.append((h.name, h.site, h.role, h.management,
                         "up" if h.running else "DOWN", daemons, ospf))
        render.table("lab", ["host", "site", "role", "management", "state", "daemons",
                             "ospf"], rows)
    if not all(h.running and all(h.daemons.values()) for h in hosts):
        sys.exit(1)


@group.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("host")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_cmd(host: str, command: tuple[str, ...]) -> None:
    """Run COMMAND inside HOST (use -- before the command)."""
    argv = runtime.nsenter_argv(host, command)
    code = subprocess.run(argv, check=False).returncode
    sys.exit(128 - code if code < 0 else code)  # killed by signal N: 128+N, as a shell


@group.command("ssh")
@click.argument("host")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def ssh(app: AppContext, host: str, command: tuple[str, ...]) -> None:
    """ssh to HOST's management address as root with the lab key."""
    address = runtime.lab_address(app.settings, host)
    argv = [*runtime.ssh_argv(app.settings, address), *command]
    os.execvp(argv[0], argv)


@group.group("fail")
def fail() -> None:
    """Inject a fault: cut a link or kill a host."""


@group.group("heal")
def heal() -> None:
    """Undo 'fail link'."""


@group.group("start")
def start() -> None:
    """Start a failed host again."""


@fail.command("link")
@click.argument("name")
@click.pass_obj
def fail_link(app: AppContext, name: str) -> None:
    """Take both ends of link NAME down (e.g. p01-wan1)."""
    runtime.set_link(app.settings, name, up_=False)
    render.console.print(f"link {name} down")


@heal.command("link")
@click.argument("name")
@click.pass_obj
def heal_link(app: AppContext, name: str) -> None:
    runtime.set_link(app.settings, name, up_=True)
    render.console.print(f"link {name} up")


@fail.command("host")
@click.argument("name")
@click.pass_obj
def fail_host(app: AppContext, name: str) -> None:
    """Kill every process of host NAME."""
    foreign = runtime.fail_host(app.settings, name)
    render.console.print(f"host {name} killed")
    _say_foreign(foreign)


@start.command("host")
@click.argument("name")
@click.pass_obj
def start_host(app: AppContext, name: str) -> None:
    runtime.start_host(app.settings, name)
    render.console.print(f"host {name} started")
