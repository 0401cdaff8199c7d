"""The backup CLI on content alone (no lab): plan, check, schedule exit codes and output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from socctl.cli.main import cli
from tests.conftest import REPO


def test_plan_json_for_a_saturday() -> None:
    result = CliRunner().invoke(cli, ["-o", "json", "backup", "plan", "--date", "2026-11-21"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [(r["policy"], r["type"]) for r in data["runs"]] == [("databases", "full")]
    assert data["runs"][0]["tiers"] == ["primary_dc", "dr_dc", "tape"]


def test_check_fails_with_located_errors(tmp_path: Path) -> None:
    root = tmp_path / "project"
    shutil.copytree(REPO / "inventory", root / "inventory")
    (root / "backup_policies" / "drills").mkdir(parents=True)
    shutil.copy(REPO / "tests/fixtures/backup_policies/invalid/bad_ref.yaml",
                root / "backup_policies" / "bad_ref.yaml")
    result = CliRunner().invoke(cli, ["backup", "check"],
                                env={"SOCCTL_PROJECT_ROOT": str(root)})
    assert result.exit_code == 1
    assert "bad_ref.yaml:11" in result.output and "unknown tier 'nowhere'" in result.output


def test_schedule_writes_units(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["-o", "json", "backup", "schedule", "databases",
                                      "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    names = {Path(f).name for f in json.loads(result.output)["files"]}
    assert {"socctl-backup-databases-log.timer", "socctl-backup.cron"} <= names
