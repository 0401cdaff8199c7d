"""Drill plans as content, and the report rendered from a recorded drill result."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from socctl.config import Settings
from socctl.drill import report
from socctl.drill.plan import load_plan_file, load_plans, resolve
from socctl.drill.runner import DrillResult, StepLog
from socctl.errors import ValidationFailed
from tests.conftest import REPO

DRILLS = REPO / "backup_policies/drills"


def test_every_real_drill_plan_loads() -> None:
    plans, problems = load_plans(DRILLS)
    assert problems == []
    plan = plans["lab-primary-db-loss"]
    assert plan.targets.rpo_rows == 0 and plan.targets.rto_seconds == 3
    assert [s.action for s in plan.steps][:2] == ["check_replication", "check_backups"]
    assert any(s.approval for s in plan.steps)
    assert plan.switch_back[0].action == "rewind_old_primary"
    dc = plans["lab-primary-dc-loss"]
    assert dc.scenario == "primary_dc_loss"
    assert "lose_primary_dc" in [s.action for s in dc.steps]
    # the old primary is fenced (kept down) until the rewind makes it a standby
    assert [s.action for s in dc.switch_back][:2] == ["restore_primary_dc",
                                                      "rewind_old_primary"]


def test_every_action_a_plan_may_name_has_an_implementation() -> None:
    from socctl.drill import plan, runner

    assert set(plan.ACTIONS) == set(runner.ACTIONS)


def test_unknown_action_and_missing_field_are_located(tmp_path: Path) -> None:
    data = yaml.safe_load((DRILLS / "lab-primary-db-loss.yaml").read_text())
    data["steps"][2]["action"] = "pray"
    del data["steps"][3]["owner"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    plan, problems = load_plan_file(path)
    assert plan is None
    assert any(p.location.field == "steps[3].owner" and p.location.line for p in problems)
    data["steps"][3]["owner"] = "x y"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    _, problems = load_plan_file(path)
    assert len(problems) == 1
    assert problems[0].location.field == "steps[2].action"
    assert "unknown action 'pray'" in problems[0].message
    assert "check_replication" in problems[0].message
    with pytest.raises(ValidationFailed):
        resolve(DRILLS, str(path))


def _result() -> DrillResult:
    plans, _ = load_plans(DRILLS)
    plan = plans["lab-primary-db-loss"]
    t = 1_800_000_000.0
    result = DrillResult("d1", plan, t, t + 20)
    for i, step in enumerate(plan.steps + plan.switch_back):
        log = StepLog(step.id, "steps", step.action, step.owner, step.command, step.check,
                      t + i, t + i + 0.5, "ok", "done")
        result.steps.append(log)
    result.measures = {"rto_seconds": 1.2, "rpo_rows": 0, "failback_seconds": 9.0,
                       "switchback_downtime_seconds": 2.5, "switchback_rows_lost": 0}
    result.events = [(t + 3, "loss: x"), (t + 4.2, "first write acknowledged at y")]
    return result


def test_report_marks_targets_and_writes_three_formats(tmp_path: Path) -> None:
    settings = Settings(project_root=REPO, inventory=REPO / "inventory", state_dir=tmp_path)
    result = _result()
    verdicts = result.verdicts()
    assert verdicts["rto_seconds"] == {"target": 3, "actual": 1.2, "pass": True}
    assert verdicts["switchback_downtime_seconds"]["pass"] is False
    assert not result.ok
    paths = report.write(settings, result)
    rec = json.loads(paths["json"].read_text())
    assert rec["follow_up_actions"] and "switchback_downtime_seconds" in rec[
        "follow_up_actions"][0]
    assert set(rec["sign_off"]) == {"drill_lead", "dba", "security_officer", "date"}
    html = paths["html"].read_text()
    assert html.count("<rect") == len(result.steps) and "<line" in html
    assert "| switchback_downtime_seconds | 2.0 | 2.5 | FAIL |" in paths["markdown"].read_text()
    assert report.history(settings)[0]["drill_id"] == "d1"


def test_drill_schedule_writes_a_timer(tmp_path: Path) -> None:
    settings = Settings(project_root=REPO, inventory=REPO / "inventory", state_dir=tmp_path)
    files = report.schedule(settings, "lab-primary-db-loss", "quarterly", tmp_path / "u")
    timer = (tmp_path / "u/socctl-drill-lab-primary-db-loss.timer").read_text()
    # 02:00 on the agency's clock (the drill's database policy, databases.yaml)
    assert "OnCalendar=*-01,04,07,10-01 02:00:00 Asia/Ho_Chi_Minh\n" in timer
    assert len(files) == 3
    cron = (tmp_path / "u/socctl-drill-lab-primary-db-loss.cron").read_text()
    assert "CRON_TZ=Asia/Ho_Chi_Minh\n0 2 1 1,4,7,10 * root " in cron
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:  # systemd reads the zone: 02:00 in Hanoi is 19:00 UTC
        spec = timer.split("OnCalendar=", 1)[1].splitlines()[0]
        out = subprocess.run([analyze, "calendar", spec], capture_output=True, text=True,
                             env={**os.environ, "TZ": "UTC"}, check=True).stdout
        assert "19:00:00 UTC" in out, out
    service = (tmp_path / "u/socctl-drill-lab-primary-db-loss.service").read_text()
    assert "drill run lab-primary-db-loss --lab --yes" in service
    report.schedule(settings, "lab-primary-db-loss", "monthly", tmp_path / "s", lab=False)
    service = (tmp_path / "s/socctl-drill-lab-primary-db-loss.service").read_text()
    assert "drill run lab-primary-db-loss --yes" in service


def test_a_lab_only_plan_is_refused_on_real_servers_before_anything_runs(
        tmp_path: Path) -> None:
    from socctl.backup.hosts import SshHosts
    from socctl.drill import ops
    from socctl.errors import ConfigError

    settings = Settings(project_root=REPO, inventory=REPO / "inventory", state_dir=tmp_path)
    hosts = SshHosts({"dc-primary-db1": "192.0.2.1", "dc-dr-db1": "192.0.2.2"})
    with pytest.raises(ConfigError) as err:
        ops.run_remote(settings, "lab-primary-dc-loss", hosts, assume_yes=True,
                       environ={"SOCCTL_DB_APP_PASSWORD": "x" * 16})
    where = err.value.location
    assert where is not None and where.path.endswith("lab-primary-dc-loss.yaml")
    assert (where.line, where.field) == (46, "steps[3].action")
    with pytest.raises(ConfigError, match="SOCCTL_DB_APP_PASSWORD"):
        ops.run_remote(settings, "lab-primary-db-loss", hosts, environ={})
    assert not (tmp_path / "drills").exists()  # nothing ran, no report


def test_the_load_connection_string_keeps_any_password_whole() -> None:
    """An operator's SOCCTL_DB_APP_PASSWORD with a space broke the connection string (and
    libpq's complaint put the password's rest into the drill report); one with
    ``host=...`` in it pointed the load at another server."""
    from psycopg.conninfo import conninfo_to_dict

    from socctl.drill.load import dsn

    for password in ("correct horse battery", "Pa55 host=198.18.9.9", "it's\\ a 'q'"):
        parsed = conninfo_to_dict(dsn(["198.18.0.21", "198.18.0.22"], 5432, "app", "drill",
                                      password))
        assert parsed["password"] == password
        assert parsed["host"] == "198.18.0.21,198.18.0.22" and parsed["port"] == "5432,5432"
        assert parsed["target_session_attrs"] == "read-write"


def test_a_cancelled_approval_prompt_ends_the_drill_with_its_record(tmp_path: Path) -> None:
    """Ctrl-C or a closed stdin at a gate (click's Abort) escaped the runner: no result,
    no report, and at the switch-back gate no record of an estate left failed over. It is
    a refusal now; the gate is put on the first step so that nothing else runs."""
    import click

    from socctl.drill import runner

    plans, _ = load_plans(DRILLS)
    plan = plans["lab-primary-db-loss"]
    gated = plan.model_copy(update={"steps": [plan.steps[0].model_copy(
        update={"approval": True}), *plan.steps[1:]]})
    settings = Settings(project_root=REPO, inventory=REPO / "inventory", state_dir=tmp_path)

    def cancelled(step: object) -> bool:
        raise click.Abort()

    target = runner.Target({"dc-primary-db1": "198.18.0.21", "dc-dr-db1": "198.18.0.22"},
                           "not-used")
    result = runner.run(settings, gated, None, target, approve=cancelled)  # type: ignore[arg-type]
    first, *rest = result.steps
    assert result.stopped_at == plan.steps[0].id and first.status == "failed"
    assert "the prompt was cancelled: Abort" in first.detail
    assert {log.status for log in rest} == {"not run"}
    record = json.loads(report.write(settings, result)["json"].read_text())
    assert record["type"] == "live" and record["stopped_at"] == plan.steps[0].id
