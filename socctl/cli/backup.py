"""socctl backup: plan, run, status, schedule, verify, check (policies in backup_policies/)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from socctl.cli import render
from socctl.cli.main import AppContext


@click.group("backup")
def group() -> None:
    """Backups on the documented schedule (pgBackRest, restic) and restore tests."""


@group.command("check")
@click.pass_obj
def check(app: AppContext) -> None:
    """Validate every policy and drill plan; list every problem with its location."""
    from socctl.backup.ops import policies_dir
    from socctl.backup.policy import load_policies
    from socctl.drill.plan import load_plans

    policies, problems = load_policies(policies_dir(app.settings))
    plans, more = load_plans(policies_dir(app.settings) / "drills")
    problems += more
    render.problems(problems, f"{len(policies)} policies, {len(plans)} drill plans")
    if any(p.severity.value == "error" for p in problems):
        sys.exit(1)


@group.command("plan")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="The day to plan (default today).")
@click.argument("policy", required=False)
@click.pass_obj
def plan(app: AppContext, day: object, policy: str | None) -> None:
    """What runs on a day, and which rule of which policy says so."""
    from socctl.backup import ops

    when = day.date() if day is not None else ops.today(app.settings, policy)  # type: ignore[attr-defined]
    runs = ops.plan(app.settings, when, policy)
    if render.is_json():
        render.emit_json({"date": when.isoformat(), "runs": [r.to_dict() for r in runs]})
        return
    render.table(f"backup plan for {when:%A %Y-%m-%d}", ["at", "policy", "type", "tiers",
                                                          "why", "rule"],
                 [(f"{r.at} {r.timezone}" if r.timezone else r.at, r.policy, r.type,
                   ",".join(r.tiers), r.why, r.source) for r in runs])
    if not runs:
        render.console.print("nothing scheduled")


@group.command("run")
@click.argument("policy", required=False)
@click.option("--type", "kind", type=click.Choice(["full", "diff", "incr", "log"]),
              default=None, help="Run this type now (default: what today's plan says).")
@click.pass_obj
def run(app: AppContext, policy: str | None, kind: str | None) -> None:
    """Run backups now (pgBackRest into each tier's repository; restic with its DR copy)."""
    from socctl.backup import ops
    from socctl.backup.policy import BackupType

    report = ops.run(app.settings, policy, BackupType(kind) if kind else None)
    if render.is_json():
        render.emit_json(report.to_dict())
    elif report.nothing_due:
        render.console.print("no backup is due today by the policy (see `socctl backup "
                             "plan`; --type runs one now)")
    else:
        render.table("backup run", ["policy", "type", "tier", "host", "ok", "seconds",
                                    "detail"],
                     [(r.policy, r.type, r.tier, r.host, "ok" if r.ok else "FAILED",
                       f"{r.seconds:.1f}", r.detail) for r in report.runs])
        render.console.print(f"evidence: {report.evidence}")
    if not report.ok:
        sys.exit(1)


@group.command("status")
@click.argument("policy", required=False)
@click.pass_obj
def status(app: AppContext, policy: str | None) -> None:
    """Freshness against the policy, WAL archive gaps, broken chains (exit 1 if violated)."""
    from socctl.backup import ops

    findings = ops.status(app.settings, policy)
    if render.is_json():
        render.emit_json([f.to_dict() for f in findings])
    else:
        render.table("backup status", ["policy", "tier", "check", "result", "detail"],
                     [(f.policy, f.tier, f.check, "ok" if f.ok else "VIOLATED", f.detail)
                      for f in findings])
    if not all(f.ok for f in findings):
        sys.exit(1)


@group.command("schedule")
@click.argument("policy", required=False)
@click.option("--dir", "directory", type=click.Path(path_type=Path), required=True,
              help="Where to write the .service/.timer units and the cron file.")
@click.option("--socctl", default="/usr/local/bin/socctl", show_default=True)
@click.pass_obj
def schedule(app: AppContext, policy: str | None, directory: Path, socctl: str) -> None:
    """Write systemd timers (and cron lines as an alternative) for the policies."""
    from socctl.backup import ops

    result = ops.schedule(app.settings, directory, policy, socctl)
    if render.is_json():
        render.emit_json({"directory": result.directory, "files": result.files})
    else:
        for f in result.files:
            render.console.print(f)


@group.command("verify")
@click.argument("policy", required=False)
@click.option("--tier", default=None, help="Restore from this tier (default: the DR copy).")
@click.pass_obj
def verify(app: AppContext, policy: str | None, tier: str | None) -> None:
    """A real restore into a scratch location, checked against the source (evidence kept)."""
    from socctl.backup import ops

    results = ops.verify(app.settings, policy, tier)
    if render.is_json():
        render.emit_json(results)
    else:
        render.table("backup verify", ["policy", "tier", "ok", "restore s", "data age s",
                                       "detail"],
                     [(r["policy"], r.get("tier"), "ok" if r["ok"] else "FAILED",
                       r.get("restore_seconds", ""), r.get("data_age_seconds", ""),
                       r.get("detail", "")) for r in results])
    if not all(r["ok"] for r in results):
        sys.exit(1)


@group.command("setup-lab")
@click.option("--fresh", is_flag=True,
              help="Empty the lab's shared backup storage first (only before the lab's "
                   "databases exist: 'lab up' starts with it empty).")
@click.pass_obj
def setup_lab(app: AppContext, fresh: bool) -> None:
    """Provision PostgreSQL primary + DR standby in the lab (playbooks/database.yml, as
    'socctl provision --lab --playbook database' with the policy's retention)."""
    from socctl.backup import ops

    out = ops.setup_lab(app.settings, fresh)
    pb = out["playbook"]
    if render.is_json():
        render.emit_json(out)
    else:
        render.console.print(f"database.yml: {pb['ok']} ok, {pb['changed']} changed, "
                             f"{pb['failed']} failed; {out.get('seed', '')}")
        if not pb["succeeded"]:
            render.console.print(pb["output_tail"], highlight=False)
    if not pb["succeeded"]:
        sys.exit(1)
