"""Backups against real PostgreSQL 15, pgBackRest and restic in the lab."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from socctl.backup import ops, pgbackrest, provision, wal
from socctl.backup.hosts import LabHosts
from socctl.backup.policy import BackupType
from socctl.cli.main import cli
from socctl.config import Settings
from socctl.lab.plan import LabPlan
from tests.lab.dbfixture import database

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def db(lab: LabPlan, lab_settings: Settings) -> dict[str, Any]:
    return database(lab_settings)


def _policy(settings: Settings, name: str = "databases") -> Any:
    return ops.load(settings, name)[0]


def test_playbook_set_up_primary_and_synchronous_standby_idempotently(
        db: dict[str, Any], lab_settings: Settings) -> None:
    again = ops.setup_lab(lab_settings)
    assert again["playbook"]["succeeded"]
    assert again["playbook"]["changed"] == 0, again["playbook"]["recap"]
    hosts = LabHosts()
    policy = _policy(lab_settings)
    assert pgbackrest.find_primary(hosts, policy) == "dc-primary-db1"
    rows = pgbackrest.psql(hosts, "dc-primary-db1", policy,
                           "SELECT application_name, state, sync_state FROM "
                           "pg_stat_replication;").stdout.split()
    assert "dc_dr_db1|streaming|sync" in rows


def test_backup_run_full_diff_log_then_status_is_clean(db: dict[str, Any],
                                                       lab_settings: Settings) -> None:
    full = ops.run(lab_settings, "databases", BackupType.FULL)
    assert full.ok, full.to_dict()
    assert {r.tier for r in full.runs} == {"primary_dc", "dr_dc", "tape"}
    diff = ops.run(lab_settings, "databases", BackupType.DIFF)
    assert diff.ok and {r.tier for r in diff.runs} == {"primary_dc", "dr_dc"}
    log = ops.run(lab_settings, "databases", BackupType.LOG)
    assert log.ok
    info = pgbackrest.info(LabHosts(), "dc-primary-db1", _policy(lab_settings))
    types = {(b["database"]["repo-key"], b["type"]) for b in info["backup"]}
    assert {(1, "full"), (1, "diff"), (2, "full"), (2, "diff"), (3, "full")} <= types
    findings = ops.status(lab_settings, "databases")
    assert findings and all(f.ok for f in findings), [f.to_dict() for f in findings if not f.ok]
    result = CliRunner().invoke(cli, ["-o", "json", "backup", "status", "databases"],
                                obj=None, env={"SOCCTL_STATE_DIR": str(lab_settings.state_dir)})
    assert result.exit_code == 0, result.output


def test_verify_restores_into_scratch_and_matches_the_source(db: dict[str, Any],
                                                            lab_settings: Settings) -> None:
    results = ops.verify(lab_settings, "databases")
    assert len(results) == 1
    r = results[0]
    assert r["ok"], r
    assert set(r["tables_match"]) == {"insurance_card", "contribution"}
    assert r["expected"]["insurance_card"].startswith("20000:")
    assert r["restore_seconds"] > 0 and r["data_age_seconds"] >= 0
    assert Path(r["evidence"]).exists()


def test_a_broken_wal_archive_makes_status_fail(db: dict[str, Any], lab_settings: Settings,
                                                tmp_path: Path) -> None:
    ops.run(lab_settings, "databases", BackupType.LOG)
    archive = provision.lab_repo_paths()["primary_dc"].parent / "pgbackrest" / "archive"
    # Real segments only (not the ``<segment>.<offset>.backup`` labels, which sort among
    # them), each number once (a .partial shares its number with the next timeline's
    # segment). The second newest: after the oldest backup's start, before the newest
    # archived segment, so losing it is a hole the check must see.
    parsed = [(wal.parse(p.name), p) for p in archive.rglob("*") if p.is_file()]
    numbers = Counter(x[1] for x, _ in parsed if x is not None)
    segments = sorted((x[1], p) for x, p in parsed if x is not None and numbers[x[1]] == 1)
    assert len(segments) >= 3, segments
    victim = segments[-2][1]
    hidden = tmp_path / victim.name  # out of the repository, as a lost file would be
    shutil.move(victim, hidden)
    try:
        findings = ops.status(lab_settings, "databases")
        broken = [f for f in findings if not f.ok]
        assert any(f.check == "WAL archive continuous" and f.tier == "primary_dc"
                   and victim.name[:24] in f.detail for f in broken), [
            f.to_dict() for f in findings]
        result = CliRunner().invoke(cli, ["-o", "json", "backup", "status", "databases"],
                                    env={"SOCCTL_STATE_DIR": str(lab_settings.state_dir)})
        assert result.exit_code == 1
        assert any(not f["ok"] for f in json.loads(result.output))
    finally:
        shutil.move(hidden, victim)
    assert all(f.ok for f in ops.status(lab_settings, "databases"))


def test_restic_config_backup_with_dr_copy_and_verify(db: dict[str, Any],
                                                      lab_settings: Settings) -> None:
    report = ops.run(lab_settings, "config-files", BackupType.FULL)
    assert report.ok, report.to_dict()
    assert {r.type for r in report.runs} >= {"full", "copy", "retention"}
    findings = ops.status(lab_settings, "config-files")
    assert all(f.ok for f in findings), [f.to_dict() for f in findings if not f.ok]
    assert {f.tier for f in findings} == {"primary_dc", "dr_dc"}
    results = ops.verify(lab_settings, "config-files", "dr_dc")
    assert results[0]["ok"], results[0]
