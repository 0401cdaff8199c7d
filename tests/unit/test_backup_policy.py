"""Backup policies as content: schema, calendar, freshness, WAL gaps, status, schedule."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from socctl.backup import wal
from socctl.backup.calendar import (
    backup_units,
    cron_line,
    freshness_limits_for_tier,
    max_gap,
    plan_for,
    write_units,
)
from socctl.backup.policy import BackupType, load_policies, load_policy_file
from socctl.backup.status import evaluate_pgbackrest
from tests.conftest import REPO

POLICIES = REPO / "backup_policies"
FIXTURES = REPO / "tests/fixtures/backup_policies"


@pytest.fixture(scope="module")
def policies() -> dict[str, Any]:
    found, problems = load_policies(POLICIES)
    assert problems == []
    return found


def test_every_real_policy_loads_and_encodes_the_documented_schedule(
        policies: dict[str, Any]) -> None:
    assert set(policies) == {"databases", "config-files"}
    db = policies["databases"]
    full = [r for r in db.runs if r.type is BackupType.FULL]
    assert [r.weekdays for r in full] == [["sat", "sun"]]
    assert {r.type for r in db.runs} == {BackupType.FULL, BackupType.DIFF, BackupType.LOG}
    assert {t.name: t.repo for t in db.tiers} == {"primary_dc": 1, "dr_dc": 2, "tape": 3}
    cfg = policies["config-files"]
    assert cfg.runs[0].monthdays == ["last"]
    assert cfg.tier("dr_dc").copy_of == "primary_dc"


def test_invalid_policy_errors_name_file_line_and_field() -> None:
    policy, problems = load_policy_file(FIXTURES / "invalid/bad.yaml")
    assert policy is None
    where = [(Path(p.location.path).name, p.location.line, p.location.field) for p in problems]
    assert ("bad.yaml", 9, "runs[0].weekdays[0]") in where
    _, problems = load_policy_file(FIXTURES / "invalid/bad_ref.yaml")
    assert len(problems) == 1
    p = problems[0]
    assert (p.location.line, p.location.field) == (11, "runs[0].tiers[0]")
    assert "unknown tier 'nowhere'" in p.message and "primary_dc" in p.message


def test_the_runs_times_are_in_the_policys_zone(policies: dict[str, Any],
                                                tmp_path: Path) -> None:
    """"23:00 at the end of every weekday" is Hanoi's clock: a server kept in UTC ran it
    at 06:00 there, in the working day. The timers say the zone (systemd reads it), the
    cron alternative says CRON_TZ, and "today" is today in that zone."""
    db = policies["databases"]
    assert db.timezone == "Asia/Ho_Chi_Minh"
    units, cron = backup_units([db], "/opt/socctl")
    write_units(tmp_path, units, cron, "socctl-backup.cron")
    timer = (tmp_path / "socctl-backup-databases-diff.timer").read_text()
    assert "OnCalendar=Mon,Tue,Wed,Thu,Fri *-*-* 23:00:00 Asia/Ho_Chi_Minh\n" in timer
    crontab = (tmp_path / "socctl-backup.cron").read_text()
    assert "CRON_TZ=Asia/Ho_Chi_Minh\n0 23 * * 1,2,3,4,5 root /opt/socctl backup run " \
        "databases --type diff" in crontab
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:  # systemd itself reads the zone: 23:00 in Hanoi is 16:00 UTC
        spec = next(line.split("=", 1)[1] for line in timer.splitlines()
                    if line.startswith("OnCalendar="))
        out = subprocess.run([analyze, "calendar", spec], capture_output=True, text=True,
                             env={**os.environ, "TZ": "UTC"}, check=True).stdout
        assert "16:00:00 UTC" in out, out
    [planned] = [r for r in plan_for([db], date(2026, 12, 4)) if r.type == "diff"]
    assert planned.to_dict()["timezone"] == "Asia/Ho_Chi_Minh"
    assert db.today() == datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()
    text = (POLICIES / "databases.yaml").read_text()
    (tmp_path / "bad_zone.yaml").write_text(text.replace("Asia/Ho_Chi_Minh", "Asia/Hanoi"))
    policy, problems = load_policy_file(tmp_path / "bad_zone.yaml")
    assert policy is None
    [p] = problems
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("timezone:"))
    assert (p.location.line, p.location.field) == (line, "timezone")
    assert "unknown time zone 'Asia/Hanoi'" in p.message


@pytest.mark.skipif(shutil.which("faketime") is None,
                    reason="needs faketime (Debian package faketime; ./dev installs it)")
def test_cron_last_day_guard_asks_the_policys_calendar(policies: dict[str, Any],
                                                       tmp_path: Path) -> None:
    """cron has no "last day of the month": the line runs on the 28th-31st and a guard
    asks whether tomorrow is the 1st. It must ask in the policy's zone: at 22:00 on 30
    November in Hanoi (15:00 UTC) a host in UTC+14 already lives on 1 December, and the
    month-end configuration backup would never run. The guard is run by sh under
    faketime at that instant, with the host in each zone."""
    units, cron = backup_units([policies["config-files"]], "/opt/socctl")
    write_units(tmp_path, units, cron, "socctl-backup.cron")
    line = next(x for x in (tmp_path / "socctl-backup.cron").read_text().splitlines()
                if " 28-31 * * " in x)
    guard = line.split(" root ", 1)[1].replace("\\%", "%").split(" && ")[0]

    def due(instant_utc: str, host_zone: str) -> bool:
        out = subprocess.run(["faketime", instant_utc, "sh", "-c", f"{guard} && echo due"],
                             env={**os.environ, "TZ": host_zone}, capture_output=True,
                             text=True, timeout=30, check=False)
        return out.stdout.strip() == "due"

    # faketime reads the instant in the host zone: the same instant, 2026-11-30 15:00 UTC
    for zone, local in (("UTC", "2026-11-30 15:00:00"), ("Pacific/Kiritimati",
                        "2026-12-01 05:00:00"), ("Pacific/Pago_Pago", "2026-11-30 04:00:00")):
        assert due(local, zone), (zone, guard)
    # and a day earlier (29 November in Hanoi) it is not the month's last day anywhere
    assert not due("2026-11-30 05:00:00", "Pacific/Kiritimati")


def test_loader_collects_problems_from_every_file() -> None:
    _, problems = load_policies(FIXTURES / "invalid")
    assert {Path(p.location.path).name for p in problems} == {"bad.yaml", "bad_ref.yaml",
                                                              "bad_verify.yaml"}


def test_a_restore_test_from_an_unknown_tier_is_located() -> None:
    _, problems = load_policy_file(FIXTURES / "invalid/bad_verify.yaml")
    assert [(p.location.line, p.location.field) for p in problems] == [(16, "verify[0].tier")]
    assert "unknown tier 'tape'" in problems[0].message


@pytest.mark.parametrize(("day", "expected"), [
    (date(2026, 11, 21), {("databases", "full")}),                       # Saturday
    (date(2026, 11, 22), {("databases", "full"), ("databases", "verify")}),  # Sunday
    (date(2026, 11, 25), {("databases", "diff"), ("databases", "log")}),  # Wednesday
    (date(2026, 11, 30), {("databases", "diff"), ("databases", "log"),
                          ("config-files", "full")}),                    # Monday, last day
    (date(2026, 2, 28), {("databases", "full"), ("config-files", "full")}),  # Sat, last day
    (date(2028, 2, 28), {("databases", "diff"), ("databases", "log")}),  # leap year: not last
    (date(2026, 12, 1), {("databases", "diff"), ("databases", "log"),
                         ("config-files", "verify")}),                   # Tuesday, the 1st
])
def test_plan_says_what_runs_on_a_day(policies: dict[str, Any], day: date,
                                      expected: set[tuple[str, str]]) -> None:
    runs = plan_for(list(policies.values()), day)
    assert {(r.policy, r.type) for r in runs} == expected
    assert all(r.why and "backup_policies" in r.source for r in runs)


def test_freshness_comes_from_the_schedule(policies: dict[str, Any]) -> None:
    db = policies["databases"]
    assert max_gap(db, BackupType.FULL) == timedelta(days=6)  # Sunday to Saturday
    assert max_gap(db, BackupType.DIFF) == timedelta(days=1)
    limits = freshness_limits_for_tier(db, "tape")
    assert limits["full"] == timedelta(days=6, hours=6)
    assert "diff" in limits  # tape gets fulls only: its full/diff limit is the full gap
    assert limits["diff"] == timedelta(days=6, hours=6)
    assert freshness_limits_for_tier(db, "primary_dc")["diff"] == timedelta(days=1, hours=6)
    monthly = freshness_limits_for_tier(policies["config-files"], "primary_dc")
    assert monthly["full"] == timedelta(days=31, hours=48)


def test_schedule_writes_timers_and_cron(policies: dict[str, Any], tmp_path: Path) -> None:
    units, cron = backup_units(list(policies.values()), "/opt/socctl")
    files = write_units(tmp_path, units, cron, "socctl-backup.cron")
    timer = (tmp_path / "socctl-backup-databases-full.timer").read_text()
    assert "OnCalendar=Sat,Sun *-*-* 23:00:00" in timer
    monthly = (tmp_path / "socctl-backup-config-files-full.timer").read_text()
    assert "OnCalendar=*-*~01 22:00:00" in monthly
    service = (tmp_path / "socctl-backup-databases-diff.service").read_text()
    assert "ExecStart=/opt/socctl backup run databases --type diff" in service
    crontab = (tmp_path / "socctl-backup.cron").read_text()
    assert "0 23 * * 6,0 root /opt/socctl backup run databases --type full" in crontab
    assert "28-31 * *" in crontab and len(files) == 2 * len(units) + 1
    run = policies["databases"].runs[1]
    assert cron_line(run, "x") == "0 23 * * 1,2,3,4,5 root x"
    # restore tests are scheduled like the backups, from the DR copy
    verify = (tmp_path / "socctl-verify-databases.service").read_text()
    assert "ExecStart=/opt/socctl backup verify databases --tier dr_dc" in verify
    assert "OnCalendar=Sun *-*-* 06:00:00" in (tmp_path / "socctl-verify-databases.timer"
                                                ).read_text()
    assert "0 6 1 * * root /opt/socctl backup verify config-files --tier dr_dc" in crontab


def test_restore_tests_read_the_dr_copy_by_default(policies: dict[str, Any]) -> None:
    assert policies["databases"].verify_tier().name == "dr_dc"
    assert policies["config-files"].verify_tier().name == "dr_dc"
    assert policies["databases"].verify_tier("tape").name == "tape"


def test_wal_gaps() -> None:
    sha = "-" + "ab" * 20
    names = [wal.name_of(1, n) + sha + ".gz" for n in (3, 4, 6, 7, 10)]
    names.append(wal.name_of(1, 5) + sha + ".gz.hidden")  # not a segment of the archive
    assert wal.parse(names[-1]) is None
    assert wal.gaps(names, wal.name_of(1, 3)) == [
        (wal.name_of(1, 5), wal.name_of(1, 5)), (wal.name_of(1, 8), wal.name_of(1, 9))]
    assert wal.gaps(names, wal.name_of(1, 3), wal.name_of(1, 4)) == []
    # crossing a log boundary and a timeline switch
    cross = ["0000000100000000000000FF", "000000020000000100000000"]
    assert wal.gaps(cross, "0000000100000000000000FF") == []
    assert wal.number("000000010000000100000002") == 0x102
    # a promotion archives the old timeline's last segment as .partial, and a .history
    assert wal.number("00000002000000000000001E.partial") == 0x1E
    assert wal.parse("00000003.history") is None


def _info(now: float, drop_prior: bool = False) -> dict[str, Any]:
    def backup(label: str, kind: str, repo: int, age: float, start: int, prior: str | None
               ) -> dict[str, Any]:
        return {"label": label, "type": kind, "prior": prior, "error": False,
                "database": {"id": 1, "repo-key": repo},
                "timestamp": {"start": now - age - 5, "stop": now - age},
                "archive": {"start": wal.name_of(1, start), "stop": wal.name_of(1, start + 1)}}
    backups = []
    for repo in (1, 2):
        backups.append(backup("F1", "full", repo, 3 * 86400, 2, None))
        backups.append(backup("F1_D1", "diff", repo, 3600, 6, None if drop_prior else "F1"))
    backups.append(backup("T1", "full", 3, 3 * 86400, 2, None))
    if drop_prior:
        backups[1]["prior"] = "GONE"
    return {"backup": backups}


def test_status_evaluation_flags_gaps_broken_chains_and_stale_backups(
        policies: dict[str, Any]) -> None:
    db = policies["databases"]
    now = 1_800_000_000.0
    segs = [wal.name_of(1, n) for n in range(2, 12)]
    listings = {1: segs, 2: segs, 3: segs}
    archiver = {"last_archived_wal": wal.name_of(1, 11), "current": wal.name_of(1, 12),
                "last_archived_time": now - 30, "last_failed_time": None}
    clean = evaluate_pgbackrest(db, _info(now), listings, archiver, now)
    assert clean and all(f.ok for f in clean), [f for f in clean if not f.ok]

    holed = {1: [s for s in segs if s != wal.name_of(1, 7)], 2: segs, 3: segs}
    found = evaluate_pgbackrest(db, _info(now), holed, archiver, now)
    bad = {(f.tier, f.check) for f in found if not f.ok}
    assert bad == {("primary_dc", "WAL archive continuous"), ("primary_dc", "chain intact")}

    broken = evaluate_pgbackrest(db, _info(now, drop_prior=True), listings, archiver, now)
    assert any(f.check == "chain intact" and "prior backup missing" in f.detail
               for f in broken if not f.ok)

    stale = evaluate_pgbackrest(db, _info(now), listings, archiver, now + 5 * 86400)
    assert {(f.tier, f.check) for f in stale if not f.ok} >= {("primary_dc", "diff fresh"),
                                                               ("primary_dc", "full fresh")}
    failing = dict(archiver, last_failed_time=now - 5, last_failed_wal=wal.name_of(1, 12))
    arch = evaluate_pgbackrest(db, _info(now), listings, failing, now)
    assert [f.check for f in arch if not f.ok] == ["WAL archiving"]
    # nothing ever archived (archive_mode off): once "archived None, never ago" and OK
    never = dict(archiver, last_archived_wal=None, last_archived_time=None)
    [finding] = [f for f in evaluate_pgbackrest(db, _info(now), listings, never, now)
                 if f.check == "WAL archiving"]
    assert not finding.ok and "ever been archived" in finding.detail

    # after a failover the archiver's last file is a .partial or a .history: status still
    # judges (found in the lab: a second drill's pre-check failed on the first's .partial)
    for last in ("00000001000000000000000B.partial", "00000002.history"):
        promoted = dict(archiver, last_archived_wal=last)
        after = evaluate_pgbackrest(db, _info(now), listings, promoted, now)
        assert all(f.ok for f in after), [f for f in after if not f.ok]
    stale_history = dict(archiver, last_archived_wal="00000002.history",
                         last_archived_time=now - 3 * 3600)
    late = evaluate_pgbackrest(db, _info(now), listings, stale_history, now)
    assert [f.check for f in late if not f.ok] == ["WAL archiving"]


def test_restic_snapshot_times_with_nanoseconds() -> None:
    from socctl.backup.restic import snapshot_epoch

    assert snapshot_epoch("2026-11-22T08:40:15.123456789+07:00") == pytest.approx(
        1795311615.123456)
    assert snapshot_epoch("2026-11-22T01:40:15Z") == 1795311615.0


def test_a_run_by_the_plan_on_a_restore_test_day_is_nothing_due_not_a_crash(
        tmp_path: Path) -> None:
    """`backup run` without --type takes today's plan, which also lists the restore tests
    (`backup verify`'s): on the 1st (config-files' monthly test) it once died with
    "'verify' is not a valid BackupType" before any backup, and wrote no evidence."""
    from socctl.backup import ops
    from socctl.config import Settings

    settings = Settings(project_root=REPO, inventory=REPO / "inventory", state_dir=tmp_path)
    report = ops.run(settings, "config-files", day=date(2026, 12, 1))
    assert report.nothing_due and report.ok and report.runs == []
    assert Path(report.evidence).is_file()


def test_two_runs_of_one_type_get_a_timer_each(policies: dict[str, Any]) -> None:
    """A weekly full and a month-end full: under one unit name the second overwrote the
    first's timer, and only the cron file kept both schedules."""
    from socctl.backup.policy import Run

    base = policies["config-files"]
    weekly = Run.model_validate({"type": "full", "weekdays": ["sun"], "at": "21:00",
                                       "tiers": ["primary_dc"], "why": "weekly full"})
    policy = base.model_copy(update={"runs": [weekly, *base.runs]})
    units, _ = backup_units([policy], "/opt/socctl")
    timers = {u.name: next(t for f, t in u.files.items() if f.endswith(".timer"))
              for u in units}
    assert len(timers) == len(units)
    assert "Sun *-*-* 21:00:00" in timers["socctl-backup-config-files-full"]
    assert "*-*~01 22:00:00" in timers["socctl-backup-config-files-full-2"]


def test_a_restore_test_with_nothing_to_compare_fails_before_restoring(
        tmp_path: Path, policies: dict[str, Any]) -> None:
    """A restore point recorded without the key tables' checksums (misspelt in the policy,
    or not in that database) once made `backup verify` pass: every one of no tables
    matched. It fails now, naming them, before a restore that could prove nothing; no host
    is reached (the base Hosts cannot run anything)."""
    import json

    from socctl.backup import ops
    from socctl.backup.hosts import Hosts
    from socctl.config import Settings

    settings = Settings(project_root=REPO, inventory=REPO / "inventory", state_dir=tmp_path)
    folder = ops.evidence_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "20261201T000000000000Z-run.json").write_text(json.dumps({"restore_points": [
        {"name": "socctl-x", "policy": "databases", "archived": True, "time": 0.0,
         "tables": {"contribution": "3:abc"}}]}))
    result = ops.verify_pgbackrest(settings, Hosts(), policies["databases"])
    assert result["ok"] is False and "insurance_card" in result["detail"]
    assert "contribution" not in result["detail"].split("tables ", 1)[1].split(" (")[0]


def test_the_shipped_repositories_are_on_the_backup_storage_which_the_lab_stands_in_for(
        policies: dict[str, Any]) -> None:
    """The shipped policies and the postgresql role put every repository under the lab's
    /srv/socctl-lab: a national run would have written its backups there. They now name
    the DCs' backup storage, and only the lab puts it under its own directory."""
    import yaml

    from socctl.backup.hosts import BACKUP_STORAGE, LabHosts
    from socctl.errors import ToolError
    from socctl.lab.runtime import LAB_STORAGE

    for policy in policies.values():
        for tier in policy.tiers:
            assert Path(tier.path).is_relative_to(BACKUP_STORAGE), (policy.id, tier.path)
            assert "socctl-lab" not in tier.path
    defaults = yaml.safe_load((REPO / "playbooks/roles/postgresql/defaults/main.yml")
                              .read_text())
    assert defaults["postgresql_pgbackrest_storage"] == str(BACKUP_STORAGE)
    assert all(r["path"].startswith("{{ postgresql_pgbackrest_storage }}/")
               for r in defaults["postgresql_pgbackrest_repos"])
    lab = LabHosts()
    assert lab.storage("/srv/backup/dc-dr/restic") == str(LAB_STORAGE / "dc-dr" / "restic")
    with pytest.raises(ToolError, match="not on the backup storage"):
        lab.storage("/var/backups/restic")
