"""What the CLI calls: plan, run, status, schedule, verify (results as data).

Evidence (what ran, restore points with table checksums, verification results) is kept
as JSON under ``<state>/backup/`` so an auditor can see what was proven and when.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from socctl.backup import pgbackrest, restic
from socctl.backup.calendar import PlannedRun, backup_units, plan_for, write_units
from socctl.backup.hosts import Hosts, hosts_for
from socctl.backup.policy import BackupType, Engine, Policy, pick, policies_or_raise
from socctl.backup.status import Finding
from socctl.config import Settings
from socctl.errors import Location, ToolError


def policies_dir(settings: Settings) -> Path:
    return settings.project_root / "backup_policies"


def load(settings: Settings, name: str | None = None) -> list[Policy]:
    return pick(policies_or_raise(policies_dir(settings)), name)


def evidence_dir(settings: Settings) -> Path:
    path = settings.state_dir / "backup" / "evidence"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _save(settings: Settings, kind: str, data: dict[str, Any]) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = evidence_dir(settings) / f"{stamp}-{kind}.json"
    path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    return path


def _prepare(settings: Settings) -> Hosts:
    from socctl.backup.provision import db_secrets

    restic.set_password(db_secrets(settings).restic_password)
    return hosts_for(settings)


def plan(settings: Settings, day: date | None = None, name: str | None = None
         ) -> list[PlannedRun]:
    policies = load(settings, name)
    return plan_for(policies, day or _today(policies))


def today(settings: Settings, name: str | None = None) -> date:
    """Today where the policies' clock is (the first's, when several)."""
    return _today(load(settings, name))


def _today(policies: list[Policy]) -> date:
    return policies[0].today() if policies else date.today()


@dataclass
class BackupReport:
    started: str
    runs: list[pgbackrest.EngineRun] = field(default_factory=list)
    restore_points: list[dict[str, Any]] = field(default_factory=list)
    evidence: str = ""
    nothing_due: bool = False  # today's plan holds no backup (a restore test at most)

    @property
    def ok(self) -> bool:
        return self.nothing_due or (bool(self.runs) and all(r.ok for r in self.runs))

    def to_dict(self) -> dict[str, Any]:
        return {"started": self.started, "ok": self.ok, "evidence": self.evidence,
                "nothing_due": self.nothing_due,
                "runs": [r.to_dict() for r in self.runs],
                "restore_points": self.restore_points}


def run(settings: Settings, name: str | None = None, kind: BackupType | None = None,
        day: date | None = None, hosts: Hosts | None = None) -> BackupReport:
    """Run ``kind`` for the policy (or every policy), or else what today's plan says."""
    report = BackupReport(datetime.now(UTC).isoformat())
    due: list[tuple[Policy, list[BackupType]]] = []
    for policy in load(settings, name):
        if kind is not None:
            kinds = [kind]
        else:  # the plan's restore tests are `backup verify`'s; each type once
            kinds = list(dict.fromkeys(
                BackupType(p.type) for p in plan_for([policy], day or policy.today())
                if p.type != "verify"))
        if kinds:
            due.append((policy, kinds))
    if not due:
        report.nothing_due = True
        report.evidence = str(_save(settings, "run", report.to_dict()))
        return report
    hosts = hosts or _prepare(settings)
    for policy, kinds in due:
        for k in kinds:
            if policy.engine is Engine.RESTIC:
                report.runs += restic.backup(hosts, policy)
                continue
            host = pgbackrest.find_primary(hosts, policy)
            report.runs += pgbackrest.backup(hosts, policy, k, host)
            if k is not BackupType.LOG and all(r.ok for r in report.runs):
                label = next((r.label for r in reversed(report.runs) if r.label), None)
                point = pgbackrest.mark_restore_point(
                    hosts, host, policy, f"socctl-{label or int(time.time())}")
                point |= {"policy": policy.id, "type": k.value, "backup": label}
                report.restore_points.append(point)
    report.evidence = str(_save(settings, "run", report.to_dict()))
    return report


def status(settings: Settings, name: str | None = None) -> list[Finding]:
    from socctl.backup.status import status as live

    return live(_prepare(settings), load(settings, name))


@dataclass
class ScheduleResult:
    directory: str
    files: list[str]


def schedule(settings: Settings, directory: Path, name: str | None = None,
             socctl: str = "/usr/local/bin/socctl") -> ScheduleResult:
    units, cron = backup_units(load(settings, name), socctl)
    files = write_units(directory, units, cron, "socctl-backup.cron")
    return ScheduleResult(str(directory), [str(f) for f in files])


# -- verify: a real restore ------------------------------------------------------------

SCRATCH = "/var/tmp/socctl-verify"
SCRATCH_PORT = 5499


def _latest_point(settings: Settings, policy: str) -> dict[str, Any] | None:
    for path in sorted(evidence_dir(settings).glob("*-run.json"), reverse=True):
        data = json.loads(path.read_text(encoding="utf-8"))
        for point in reversed(data.get("restore_points", [])):
            if point.get("policy") == policy and point.get("archived"):
                return dict(point)
    return None


def verify_pgbackrest(settings: Settings, hosts: Hosts, policy: Policy,
                      tier_name: str | None = None) -> dict[str, Any]:
    """Restore to the newest recorded restore point into a scratch directory on a
    standby-side host, start PostgreSQL on it and compare the key tables' checksums."""
    point = _latest_point(settings, policy.id)
    if point is None:
        raise ToolError(f"no recorded restore point for {policy.id}",
                        Location.of(policy.path), hint=f"run 'socctl backup run {policy.id}' "
                        "first: each backup records one")
    tier = policy.verify_tier(tier_name)
    missing = sorted(set(policy.target.key_tables) - set(point.get("tables") or {}))
    if missing:  # all({}.values()) is True: a restore test must have something to compare
        return {"policy": policy.id, "tier": tier.name, "host": None,
                "restore_point": point["name"], "expected": point.get("tables") or {},
                "ok": False,
                "detail": f"the restore point {point['name']} holds no checksum of the key "
                          f"tables {', '.join(missing)} (policy target.key_tables): "
                          "nothing to compare a restore with; are they in "
                          f"{policy.target.database or 'postgres'}?"}
    primary = pgbackrest.find_primary(hosts, policy)
    host = next((h for h in policy.target.hosts if h != primary), primary)
    hosts.run(host, ["/usr/lib/postgresql/15/bin/pg_ctl", "-D", SCRATCH, "-m",
                     "immediate", "stop"], user="postgres", timeout=30)
    hosts.run(host, ["rm", "-rf", SCRATCH])
    hosts.run(host, ["install", "-d", "-o", "postgres", "-g", "postgres", "-m", "0700",
                     SCRATCH])
    started = time.monotonic()
    restore = hosts.run(host, ["pgbackrest", f"--stanza={policy.target.stanza}",
                               f"--repo={tier.repo}", f"--pg1-path={SCRATCH}",
                               "--type=name", f"--target={point['name']}",
                               "--target-action=promote", "--archive-mode=off",
                               "restore"], user="postgres", timeout=600)
    result: dict[str, Any] = {"policy": policy.id, "tier": tier.name, "host": host,
                              "restore_point": point["name"], "expected": point["tables"]}
    if not restore.ok:
        result |= {"ok": False, "detail": f"restore failed: {restore.brief()}"}
        return result
    conf = (f"port = {SCRATCH_PORT}\nlisten_addresses = ''\nunix_socket_directories = "
            f"'{SCRATCH}'\narchive_mode = off\nhot_standby = on\nshared_buffers = '32MB'\n")
    hosts.run(host, ["tee", f"{SCRATCH}/postgresql.conf"], user="postgres", input_text=conf)
    hosts.run(host, ["tee", f"{SCRATCH}/pg_hba.conf"], user="postgres",
              input_text="local all all peer\n")
    start = hosts.run(host, ["/usr/lib/postgresql/15/bin/pg_ctl", "-D", SCRATCH,
                             "-l", f"{SCRATCH}/verify.log", "-w", "-t", "120", "start"],
                      user="postgres", timeout=150)
    checksums: dict[str, str] = {}
    promoted = False
    if start.ok:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not promoted:
            q = hosts.run(host, ["psql", "-X", "-At", "-h", SCRATCH, "-p", str(SCRATCH_PORT),
                                 "-d", policy.target.database or "postgres", "-c",
                                 "SELECT pg_is_in_recovery()"], user="postgres", timeout=20)
            promoted = q.ok and q.stdout.strip() == "f"
            if not promoted:
                time.sleep(0.3)
        tables = sorted(point["tables"])
        if promoted and tables:
            q = hosts.run(host, ["psql", "-X", "-At", "-h", SCRATCH, "-p", str(SCRATCH_PORT),
                                 "-d", policy.target.database or "postgres"], user="postgres",
                          input_text=pgbackrest.table_checksums_sql(tables), timeout=120)
            for line in q.stdout.splitlines():
                key, _, value = line.partition("|")
                checksums[key] = value
    restore_seconds = time.monotonic() - started
    server_log = hosts.run(host, ["tail", "-n", "5", f"{SCRATCH}/verify.log"]).stdout.strip()
    hosts.run(host, ["/usr/lib/postgresql/15/bin/pg_ctl", "-D", SCRATCH, "-m",
                     "fast", "stop"], user="postgres", timeout=60)
    hosts.run(host, ["rm", "-rf", SCRATCH])
    matches = {t: checksums.get(t) == v for t, v in point["tables"].items()}
    ok = start.ok and promoted and all(matches.values())
    result |= {"ok": ok, "restore_seconds": round(restore_seconds, 2),
               "data_age_seconds": round(time.time() - float(point["time"]), 1),
               "actual": checksums, "tables_match": matches,
               "detail": ("every key table matches the source at the restore point" if ok
                          else f"server did not start: {start.brief()} {server_log}"
                          if not start.ok
                          else f"recovery did not reach the restore point: {server_log}"
                          if not promoted
                          else "table contents differ: " + ", ".join(
                              t for t, m in matches.items() if not m))}
    return result


def verify(settings: Settings, name: str | None = None, tier: str | None = None
           ) -> list[dict[str, Any]]:
    hosts = _prepare(settings)
    out = []
    for policy in load(settings, name):
        if policy.engine is Engine.PGBACKREST:
            result = verify_pgbackrest(settings, hosts, policy, tier)
        else:
            result = restic.verify(hosts, policy, tier) | {"policy": policy.id}
        result["verified_at"] = datetime.now(UTC).isoformat()
        result["evidence"] = str(_save(settings, "verify", result))
        out.append(result)
    return out


def setup_lab(settings: Settings, fresh: bool = False) -> dict[str, Any]:
    """Provision the lab's primary and standby from the databases policy, seed data."""
    from socctl.backup import provision

    retention = {}
    for policy in load(settings):
        if policy.engine is Engine.PGBACKREST:
            retention = {t.name: (t.retention.full or 2, t.retention.diff or 6)
                         for t in policy.tiers}
    result = provision.setup_lab_database(settings, retention, fresh=fresh)
    out: dict[str, Any] = {"playbook": result}
    if result["succeeded"]:
        out["seed"] = provision.seed_lab_data(settings)
    return out
