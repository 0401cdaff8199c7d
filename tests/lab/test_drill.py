"""DR drills in the lab: real failover and switch-back of PostgreSQL under write load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from socctl.backup import ops as backup_ops
from socctl.backup import pgbackrest
from socctl.backup.hosts import LabHosts
from socctl.backup.policy import BackupType
from socctl.config import Settings
from socctl.drill import ops, report
from socctl.lab.plan import LabPlan
from tests.conftest import REPO
from tests.lab.dbfixture import database

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def db(lab: LabPlan, lab_settings: Settings) -> dict[str, Any]:
    setup = database(lab_settings)
    # The drill's pre-check wants fresh backups: make sure there are some.
    assert backup_ops.run(lab_settings, "databases", BackupType.FULL).ok
    return setup


def _primary(settings: Settings) -> str:
    return pgbackrest.find_primary(LabHosts(), backup_ops.load(settings, "databases")[0])


def test_failing_step_stops_the_drill_safely_and_the_report_says_where(
        db: dict[str, Any], lab_settings: Settings, tmp_path: Path) -> None:
    plan = yaml.safe_load((REPO / "backup_policies/drills/lab-primary-db-loss.yaml").read_text())
    plan["id"] = "lab-broken-step"
    plan["steps"].insert(1, {"id": "app-health", "action": "shell", "host": "dc-primary-db1",
                             "owner": "application owner", "command": "echo unhealthy; exit 3",
                             "check": "the application answers", "timeout": "5s"})
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(plan), encoding="utf-8")
    result, paths = ops.run_lab(lab_settings, str(path), assume_yes=True)
    assert not result.ok
    assert result.stopped_at == "app-health"
    status = {s.id: s.status for s in result.steps}
    assert status["precheck-replication"] == "ok"
    assert status["app-health"] == "failed"
    assert status["loss"] == "not run" and status["promote"] == "not run"
    assert _primary(lab_settings) == "dc-primary-db1"  # nothing was failed over
    md = paths["markdown"].read_text()
    assert "stopped at step `app-health`" in md and "exit 3" in md
    rec = json.loads(paths["json"].read_text())
    assert rec["stopped_at"] == "app-health"
    assert any("app-health" in a for a in rec["follow_up_actions"])


def test_drill_fails_over_with_rpo_zero_and_switches_back(db: dict[str, Any],
                                                          lab_settings: Settings) -> None:
    result, paths = ops.run_lab(lab_settings, "lab-primary-db-loss", assume_yes=True)
    logs = {s.id: (s.status, s.detail) for s in result.steps}
    assert result.stopped_at is None, logs
    m = result.measures
    assert m["rpo_rows"] == 0 and m["switchback_rows_lost"] == 0
    assert 0 < m["rto_seconds"] < 30
    assert m["failback_seconds"] > 0 and m["switchback_downtime_seconds"] > 0
    assert m["rows_acknowledged"] > 50
    assert _primary(lab_settings) == "dc-primary-db1"  # switched back to the original
    rows = pgbackrest.psql(LabHosts(), "dc-primary-db1",
                           backup_ops.load(lab_settings, "databases")[0],
                           "SELECT application_name, state, sync_state FROM "
                           "pg_stat_replication;").stdout.split()
    assert "dc_dr_db1|streaming|sync" in rows
    html = paths["html"].read_text()
    assert "<svg" in html and "rto_seconds" in html and "Sign-off" in html
    rec = json.loads(paths["json"].read_text())
    assert rec["verdicts"]["rpo_rows"]["pass"]
    assert [h["drill_id"] for h in report.history(lab_settings)][-1] == result.drill_id


def test_loss_of_the_whole_primary_dc_fails_over_and_the_dc_comes_back_fenced(
        db: dict[str, Any], lab: LabPlan, lab_settings: Settings) -> None:
    from socctl.lab import runtime

    try:
        result, _ = ops.run_lab(lab_settings, "lab-primary-dc-loss", assume_yes=True)
    finally:  # a drill stopped half-way leaves the DC lost: give the next tests their lab
        for name, link in lab.links.items():
            if link.kind != "lan":
                runtime.set_link(lab_settings, name, True)
        if not next(h.running for h in runtime.status(lab_settings)
                    if h.name == "dc-primary-db1"):
            runtime.start_host(lab_settings, "dc-primary-db1")
    logs = {s.id: (s.status, s.detail) for s in result.steps}
    assert result.stopped_at is None, logs
    assert "dc-primary lost" in logs["loss"][1] and "powered off" in logs["loss"][1]
    assert "PostgreSQL down" in logs["restore-dc"][1]
    m = result.measures
    assert m["rpo_rows"] == 0 and m["switchback_rows_lost"] == 0
    assert 0 < m["rto_seconds"] < 30
    assert _primary(lab_settings) == "dc-primary-db1"
    rows = pgbackrest.psql(LabHosts(), "dc-primary-db1",
                           backup_ops.load(lab_settings, "databases")[0],
                           "SELECT application_name, state, sync_state FROM "
                           "pg_stat_replication;").stdout.split()
    assert "dc_dr_db1|streaming|sync" in rows
    # the lab is whole again for the tests after this one
    runtime.wait_converged(lab)
    assert all(h.running for h in runtime.status(lab_settings))


def test_the_same_drill_runs_on_servers_over_ssh(db: dict[str, Any], lab: LabPlan,
                                                 lab_settings: Settings) -> None:
    """`socctl drill run PLAN` without --lab: every command goes over ssh to the servers'
    management addresses (here the lab's, with the lab's key), as in production."""
    from socctl.backup.hosts import SshHosts
    from socctl.backup.provision import db_secrets
    from socctl.lab import runtime

    key = runtime.LabPaths.of(lab_settings).key
    hosts = SshHosts({n: str(lab.hosts[n].management.ip) for n in ("dc-primary-db1",
                                                                   "dc-dr-db1")},
                     ["-i", str(key), "-o", "StrictHostKeyChecking=no",
                      "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
    result, paths = ops.run_remote(
        lab_settings, "lab-primary-db-loss", hosts, assume_yes=True,
        environ={"SOCCTL_DB_APP_PASSWORD": db_secrets(lab_settings).app_password})
    logs = {s.id: (s.status, s.detail) for s in result.steps}
    assert result.stopped_at is None, logs
    # the rewind found the DR server at the address it replicates from (its DC LAN)
    assert lab.hosts["dc-dr-db1"].lan is not None
    assert str(lab.hosts["dc-dr-db1"].lan.ip) in logs["precheck-replication"][1]
    assert result.measures["rpo_rows"] == 0 and result.measures["switchback_rows_lost"] == 0
    assert _primary(lab_settings) == "dc-primary-db1"
    assert json.loads(paths["json"].read_text())["verdicts"]["rpo_rows"]["pass"]
