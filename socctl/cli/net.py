"""socctl net: render, diff, push, backup, compliance and poll network devices."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from socctl.cli import render
from socctl.cli.main import AppContext
from socctl.cli.options import selection_from, selection_options
from socctl.network import ops, runner, snmp
from socctl.network.service import Outcome, Request
from socctl.results import HostResult

F = TypeVar("F", bound=Callable[..., Any])


def target_options(func: F) -> F:
    """Selection, inventory profile or the lab, credentials and content locations."""
    options = [
        click.option("--device", "names", multiple=True, help="Device name (repeatable)."),
        click.option("--profile", default="national", show_default=True,
                     help="Inventory profile."),
        click.option("--lab", is_flag=True, help="Target the lab: lab profile, its routers on "
                     "198.18.0.x, credentials from <state>/lab/secrets.json."),
        click.option("--credentials", "credentials_file", type=click.Path(path_type=Path),
                     help="YAML/JSON credentials file (0600, may be ansible-vault encrypted); "
                          "default: SOCCTL_NET_* / SOCCTL_SNMP_* environment."),
        click.option("--templates", type=click.Path(path_type=Path, file_okay=False),
                     help="Template folder (default: device_templates/)."),
        click.option("--timeout", type=float, default=20.0, show_default=True,
                     help="Seconds to connect and per command."),
        click.option("--concurrency", type=int, default=runner.DEFAULT_CONCURRENCY,
                     show_default=True, help="Devices worked on at once."),
        click.option("--wave-size", type=int, default=0,
                     help="Devices per wave after a one-device canary, least critical "
                          "sites first (0: one wave)."),
        click.option("--failure-budget", type=int, default=-1,
                     help="Failures tolerated before later waves are cancelled (-1: any)."),
        click.option("--session-log", type=click.Path(path_type=Path, file_okay=False),
                     help="Write Netmiko session logs here (passwords masked)."),
    ]
    for option in reversed(options):
        func = option(func)
    return selection_options(func)


def request_from(app: AppContext, kwargs: dict[str, Any]) -> Request:
    names = tuple(kwargs.pop("names", ()))
    selection = selection_from(kwargs)
    if names:
        from dataclasses import replace

        selection = replace(selection, names=names)
    return Request(
        settings=app.settings, selection=selection, profile=kwargs.pop("profile"),
        lab=kwargs.pop("lab"), credentials_file=kwargs.pop("credentials_file"),
        templates=kwargs.pop("templates"), timeout=kwargs.pop("timeout"),
        intended_dir=kwargs.pop("intended", None), rules=kwargs.pop("rules", None),
        session_log_dir=kwargs.pop("session_log"),
        run=runner.RunOptions(kwargs.pop("concurrency"), kwargs.pop("wave_size"),
                              kwargs.pop("failure_budget")))


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[HostResult], None]]:
    """A rich progress line on stderr (not in JSON mode); yields the per-host callback."""
    if render.is_json():
        yield lambda _: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"),
                  TextColumn("{task.completed} done, {task.fields[failed]} failed"),
                  console=render.err_console, transient=True) as bar:
        task = bar.add_task(label, total=None, failed=0)
        failed = 0

        def advance(host: HostResult) -> None:
            nonlocal failed
            failed += host.failed
            bar.update(task, advance=1, failed=failed)

        yield advance


def show(outcome: Outcome, diffs: bool = False) -> None:
    if render.is_json():
        render.emit_json(outcome.to_dict())
    else:
        for host in outcome.run.hosts:
            if diffs and host.diff:
                render.console.print(host.diff, markup=False, highlight=False)
        rows = [(h.host, "FAILED" if h.failed else ("changed" if h.changed else "ok"),
                 h.message) for h in outcome.run.hosts]
        render.table(f"net {outcome.run.operation}", ["device", "result", "detail"], rows)
        if outcome.skipped:
            render.console.print(f"{len(outcome.skipped)} selected device(s) have no network "
                                 "driver and were skipped.")
        if outcome.record:
            render.console.print(f"run record: {outcome.record}", highlight=False)
    if outcome.run.failed:
        sys.exit(1)


@click.group("net")
def group() -> None:
    """Network configs (Netmiko: render, diff, push, backup, compliance), SNMP polling."""


@group.command("render")
@target_options
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              help="Write <device>.cfg files here instead of printing.")
@click.pass_obj
def render_cmd(app: AppContext, /, out: Path | None, **kwargs: Any) -> None:
    """Render the intended config of every selected device (no device is contacted)."""
    from socctl.network import service

    outcome = service.render_devices(request_from(app, kwargs), out)
    if out is None and not render.is_json():
        for host in outcome.run.hosts:
            if "config" in host.data:
                render.console.print(f"! ---- {host.host}\n{host.data['config']}",
                                     markup=False, highlight=False)
        return
    show(outcome)


@group.command("diff")
@target_options
@click.option("--intended", type=click.Path(path_type=Path, file_okay=False),
              help="Compare with <DIR>/<device>.cfg instead of rendering.")
@click.pass_obj
def diff_cmd(app: AppContext, /, **kwargs: Any) -> None:
    """Unified diff of running (normalised) against intended, per device."""
    from socctl.network import service

    with progress_bar("diff") as advance:
        outcome = service.diff(request_from(app, kwargs), advance)
    show(outcome, diffs=True)


@group.command("push")
@target_options
@click.option("--intended", type=click.Path(path_type=Path, file_okay=False),
              help="Push <DIR>/<device>.cfg instead of rendering.")
@click.option("--commit", is_flag=True, help="Apply (default: dry run, show the diff).")
@click.option("--verify-timeout", type=float, default=30.0, show_default=True,
              help="Seconds for routing adjacencies to come back after the change.")
@click.option("--settle", type=float, default=None,
              help="Seconds to wait before judging adjacencies (default: per platform).")
@click.pass_obj
def push_cmd(app: AppContext, /, commit: bool, verify_timeout: float, settle: float | None,
             **kwargs: Any) -> None:
    """Dry run by default; --commit backs up, applies only needed lines, verifies and
    rolls back automatically on failure."""
    from socctl.network import service

    with progress_bar("push" if commit else "push (dry run)") as advance:
        outcome = service.push(request_from(app, kwargs),
                               ops.PushOptions(commit, verify_timeout, settle), advance)
    show(outcome, diffs=True)


@group.command("backup")
@target_options
@click.option("--policy-day-only", is_flag=True,
              help="Do nothing unless today is the last day of the month (backup policy).")
@click.pass_obj
def backup_cmd(app: AppContext, /, policy_day_only: bool, **kwargs: Any) -> None:
    """Store normalised running configs in the git repository under the state dir."""
    from socctl.network import backup, service

    day = service.backup_day(app.settings)
    if policy_day_only and not backup.is_policy_day(day):
        render.console.print(f"{day.isoformat()} is not the last day of the month: no "
                             "backup (policy)")
        return
    with progress_bar("backup") as advance:
        outcome = service.backup_configs(request_from(app, kwargs), advance, day)
    summary = outcome.extra["backup"]
    if not render.is_json():
        render.console.print(f"backup repository {summary['repository']}: " + (
            f"commit {str(summary['commit'])[:10]} {summary['message']}"
            if summary["commit"] else "no change, no commit"), highlight=False)
    show(outcome)


@group.command("compliance")
@target_options
@click.option("--rules", type=click.Path(path_type=Path, file_okay=False),
              help="Rule folder (default: compliance_rules/).")
@click.option("--intended-only", is_flag=True,
              help="Audit the rendered configs instead of the devices' running configs.")
@click.pass_obj
def compliance_cmd(app: AppContext, /, intended_only: bool, **kwargs: Any) -> None:
    """Check configs against the rules; exit 1 if any device fails an error rule."""
    from socctl.network import service

    with progress_bar("compliance") as advance:
        outcome = service.audit(request_from(app, kwargs), advance, intended=intended_only)
    if not render.is_json():
        rows = [(h.host, r["rule"], r["status"].upper() if r["status"] == "fail"
                 else r["status"], r["message"]) for h in outcome.run.hosts
                for r in h.data.get("rules", []) if r["status"] == "fail"]
        if rows:
            render.table("failed rules", ["device", "rule", "status", "detail"], rows)
    show(outcome)


@group.command("poll")
@target_options
@click.option("--interval", type=float, default=1.0, show_default=True,
              help="Seconds between two counter samples (utilisation); 0: one sample.")
@click.option("--snmp-timeout", type=float, default=2.0, show_default=True)
@click.option("--snmp-concurrency", type=int, default=snmp.DEFAULT_POLL_CONCURRENCY,
              show_default=True, help="SNMP requests in flight.")
@click.pass_obj
def poll_cmd(app: AppContext, /, interval: float, snmp_timeout: float,
             snmp_concurrency: int, **kwargs: Any) -> None:
    """SNMPv3: uptime, interfaces; both WAN links per office, national summary."""
    from socctl.network import service

    options = snmp.PollOptions(snmp_concurrency, snmp_timeout, 1, interval)
    with progress_bar("poll") as advance:
        report = service.poll(request_from(app, kwargs), options, advance)
    if render.is_json():
        render.emit_json(report.to_dict())
    else:
        def link(states: list[dict[str, Any]]) -> str:
            return " ".join(f"{s['interface']}:{s['status']}"
                            + (f" {s['utilisation_pct']}%" if "utilisation_pct" in s else "")
                            + (f" err={s['errors']}" if s.get("errors") else "")
                            for s in states) or "-"

        render.table("offices", ["office", "status", "primary WAN", "backup WAN"],
                     [(o["site"], o["status"], link(o["primary"]), link(o["backup"]))
                      for o in report.offices])
        s = report.summary
        render.console.print(
            f"national: {s['offices']} offices: {s['ok']} ok, {s['on_backup']} on backup "
            f"only {s['on_backup_sites'] or ''}, {s['backup_down']} backup down, {s['down']} "
            f"down {s['down_sites'] or ''}", highlight=False)
        for h in report.run.hosts:
            if h.failed:
                render.err_console.print(render.styled(("error", "red"), f": {h.message}"),
                                         highlight=False)
    if report.run.failed:
        sys.exit(1)
