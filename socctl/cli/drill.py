"""socctl drill: run DR drill plans (backup_policies/drills/), history, schedule."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from socctl.cli import render
from socctl.cli.main import AppContext


@click.group("drill")
def group() -> None:
    """Scripted DR failover drills with measured RTO/RPO and a report."""


@group.command("run")
@click.argument("plan")
@click.option("--lab", is_flag=True,
              help="Run on this machine's lab; without it, on the inventory's database "
                   "servers over ssh (SOCCTL_DB_APP_PASSWORD, optional SOCCTL_SSH_KEY).")
@click.option("--yes", is_flag=True, help="Approve every approval gate.")
@click.pass_obj
def run(app: AppContext, plan: str, lab: bool, yes: bool) -> None:
    """Run PLAN (an id under backup_policies/drills/ or a YAML path) and write its report."""
    from socctl.drill import ops

    def approve(step: object) -> bool:
        return click.confirm(f"approve step {getattr(step, 'id', '')}: "
                             f"{getattr(step, 'command', '')}?", err=True)

    def progress(log: object) -> None:
        if not render.is_json():
            render.err_console.print(f"{getattr(log, 'id', '')}: {getattr(log, 'status', '')}"
                                     f" {getattr(log, 'detail', '')}", highlight=False)

    if lab:
        result, paths = ops.run_lab(app.settings, plan, approve=approve, assume_yes=yes,
                                    on_step=progress)
    else:
        result, paths = ops.run_remote(app.settings, plan, ops.remote_hosts(app.settings),
                                       approve=approve, assume_yes=yes, on_step=progress)
    from socctl.drill.report import to_record

    rec = to_record(result)
    if render.is_json():
        render.emit_json(rec | {"reports": {k: str(v) for k, v in paths.items()}})
    else:
        render.table(f"drill {rec['drill_id']}", ["measure", "target", "actual", "result"],
                     [(n, v["target"], v["actual"], "pass" if v["pass"] else "FAIL")
                      for n, v in rec["verdicts"].items()])
        if rec["stopped_at"]:
            render.console.print(render.styled((f"stopped at step {rec['stopped_at']}", "red")))
        render.console.print(f"report: {paths['html']}")
    if not result.ok:
        sys.exit(1)


@group.command("history")
@click.pass_obj
def history(app: AppContext) -> None:
    """Past drills: when, result, RTO/RPO, report."""
    from socctl.drill.report import history as past

    rows = past(app.settings)
    if render.is_json():
        render.emit_json(rows)
    else:
        render.table("drill history", ["drill", "plan", "started", "result", "RTO s",
                                       "RPO rows", "report"],
                     [(r["drill_id"], r["plan"], r["started"],
                       "pass" if r["ok"] else f"FAIL ({r['stopped_at'] or 'targets'})",
                       r["rto_seconds"], r["rpo_rows"], r["report"]) for r in rows])


@group.command("schedule")
@click.argument("plan")
@click.option("--every", required=True, help="weekly, monthly, quarterly or yearly.")
@click.option("--dir", "directory", type=click.Path(path_type=Path), required=True)
@click.option("--socctl", default="/usr/local/bin/socctl", show_default=True)
@click.option("--lab/--servers", default=True, show_default=True,
              help="Drill the lab, or the inventory's database servers over ssh.")
@click.pass_obj
def schedule(app: AppContext, plan: str, every: str, directory: Path, socctl: str,
             lab: bool) -> None:
    """Write a systemd timer (and a cron line) that runs the drill, on the clock of the
    backup policy its database follows."""
    from socctl.drill.report import schedule as write

    files = write(app.settings, plan, every, directory, socctl, lab)
    if render.is_json():
        render.emit_json([str(f) for f in files])
    else:
        for f in files:
            render.console.print(f)
