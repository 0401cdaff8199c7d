"""socctl provision: build the estate with the Ansible playbooks in playbooks/."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.live import Live
from rich.table import Table
from rich.text import Text

from socctl.automation.events import Progress
from socctl.automation.result import ProvisionResult, Wave
from socctl.cli import render
from socctl.cli.main import AppContext
from socctl.cli.options import selection_from, selection_options
from socctl.text import some

EXIT_HOST_FAILURES = 2
_STYLE = {"ok": "green", "changed": "yellow", "failed": "red", "unreachable": "red",
          "skipped": "dim", "not run": "magenta"}


class ProgressView:
    """Live per-host view on stderr: wave, current task, ok/changed/failed counters."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.wave = ""
        self.live = Live(self._table(), console=render.err_console, refresh_per_second=4,
                         transient=False)

    def _table(self) -> Table:
        t = Table(title=f"provisioning {self.wave}", header_style="bold")
        for column in ("host", "ok", "changed", "failed", "last task"):
            t.add_column(column)
        for host, row in self.rows.items():
            state = row["state"]
            t.add_row(host, str(row["ok"]), str(row["changed"]),
                      Text(str(row["failed"]), "red") if row["failed"] else "0",
                      Text(row["task"], _STYLE.get(state, "white")))
        return t

    def on_wave(self, wave: Wave) -> None:
        self.wave = f"wave {wave.number}{' (canary)' if wave.canary else ''}"
        for host in wave.hosts:
            self.rows[host] = {"ok": 0, "changed": 0, "failed": 0, "task": "waiting",
                               "state": "ok"}
        self.live.update(self._table())

    def on_progress(self, p: Progress) -> None:
        row = self.rows.setdefault(p.host, {"ok": 0, "changed": 0, "failed": 0,
                                            "task": "", "state": "ok"})
        if p.state in ("ok", "changed"):
            row["ok"] += 1
        if p.state == "changed":
            row["changed"] += 1
        if p.state in ("failed", "unreachable"):
            row["failed"] += 1
        row["task"], row["state"] = f"{p.task} ({p.state})", p.state
        self.live.update(self._table())


def _summary(result: ProvisionResult) -> None:
    t = Table(title=f"{result.playbook}{' (check)' if result.check else ''}",
              header_style="bold")
    for column in ("host", "wave", "status", "ok", "changed", "failed", "unreachable",
                   "skipped", "error"):
        t.add_column(column)
    for run in result.hosts.values():
        status = run.status.value
        error = "; ".join(f"{e.task}: {e.message}" for e in run.errors[:2])
        t.add_row(run.host, str(run.wave or ""), Text(status, _STYLE[status]),
                  str(run.ok), str(run.changed), str(run.failed), str(run.unreachable),
                  str(run.skipped), error)
    render.print_whole(t)
    if result.diff:
        for run in result.hosts.values():
            for d in run.diffs:
                render.console.print(render.styled((run.host, "bold"), f": {d['task']}"),
                                     highlight=False)
                render.console.print(d["diff"], highlight=False)
    counts = ", ".join(f"{n} {s}" for s, n in result.counts().items() if n)
    verdict = ("FAILED", "red") if result.failed else ("ok", "green")
    render.console.print(render.styled("provision ", verdict, f": {counts} in "
                                       f"{result.seconds:.0f} s; record: {result.record}"),
                         highlight=False)
    if result.stopped:
        render.console.print(render.styled(("stopped", "red"), f": {result.stopped}"),
                             highlight=False)
    if result.unmanaged:
        render.console.print(f"not run: {len(result.unmanaged)} selected hosts no play of "
                             f"{result.playbook} manages ({some(result.unmanaged)})",
                             highlight=False)


@click.command("provision")
@selection_options
@click.option("--lab", is_flag=True,
              help="Provision the lab (its Ansible view and secrets) instead of production.")
@click.option("--playbook", default="site", show_default=True,
              help="Playbook in playbooks/: site, dc_primary, dc_dr, province_edge, ...")
@click.option("--check", is_flag=True, help="Dry run: report what would change, change nothing.")
@click.option("--diff", is_flag=True, help="Show the changes to files (with --check: would-be).")
@click.option("--wave", type=int, default=None,
              help="Roll out in waves of N hosts after a one-host canary.")
@click.option("--wave-percent", type=float, default=None,
              help="Waves of P percent of the hosts after a one-host canary.")
@click.option("--max-fail-percent", type=float, default=0.0, show_default=True,
              help="Stop between waves once failed hosts exceed this share.")
@click.option("--forks", type=int, default=20, show_default=True)
@click.option("--vault-file", type=click.Path(path_type=Path, dir_okay=False),
              help="ansible-vault encrypted vars file with the secrets (production).")
@click.option("--vault-password-file", type=click.Path(path_type=Path, dir_okay=False),
              help="File (or script) giving the vault password.")
@click.pass_obj
def command(app: AppContext, /, lab: bool, playbook: str, check: bool, diff: bool,
            wave: int | None, wave_percent: float | None, max_fail_percent: float,
            forks: int, vault_file: Path | None, vault_password_file: Path | None,
            **kwargs: Any) -> None:
    """Run a playbook over the selected hosts (all by default), canary wave first.

    Exit status: 0 every host ok, 2 a host failed or was unreachable, or the rollout
    stopped on its failure budget.
    """
    from socctl.automation.provision import ProvisionRequest, provision

    request = ProvisionRequest(
        selection=selection_from(kwargs), playbook=playbook, lab=lab, check=check, diff=diff,
        wave=wave, wave_percent=wave_percent, max_fail_percent=max_fail_percent, forks=forks,
        vault_file=vault_file, vault_password_file=vault_password_file)
    if render.is_json():
        result = provision(app.settings, request)
        render.emit_json(result.to_dict())
    else:
        view = ProgressView()
        with view.live:
            result = provision(app.settings, request, view.on_progress, view.on_wave)
        _summary(result)
    if result.failed:
        sys.exit(EXIT_HOST_FAILURES)



