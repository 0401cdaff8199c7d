"""socctl net commands that need no device: render, compliance of intended configs, and
the errors a user sees for bad selections and missing credentials."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from socctl.cli.main import cli
from socctl.network import backup
from tests.conftest import REPO


def invoke(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    base = {"SOCCTL_STATE_DIR": str(tmp_path / "state"),
            "SOCCTL_INVENTORY": str(REPO / "inventory"),
            "SOCCTL_NET_USERNAME": "", "SOCCTL_NET_PASSWORD": ""}
    result = CliRunner().invoke(cli, list(args), env={**base, **(env or {})})
    return result.exit_code, result.output


def test_render_writes_one_file_per_device(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, output = invoke(tmp_path, "-o", "json", "net", "render", "--province", "79",
                          "--role", "edge_router", "--out", str(out))
    assert code == 0, output
    data = json.loads(output)
    names = sorted(p.stem for p in out.glob("*.cfg"))
    assert names == sorted(h["host"] for h in data["hosts"]) and names
    assert "router ospf 1" in (out / f"{names[0]}.cfg").read_text()


def test_compliance_of_intended_configs_passes(tmp_path: Path) -> None:
    code, output = invoke(tmp_path, "net", "compliance", "--lab", "--intended-only")
    assert code == 0, output
    assert "run record:" in output


def test_compliance_with_a_bad_rule_folder_names_file_and_line(tmp_path: Path) -> None:
    code, output = invoke(tmp_path, "net", "compliance", "--lab", "--intended-only",
                          "--rules", str(REPO / "tests" / "fixtures" / "compliance" / "invalid"))
    assert code == 1
    assert "rules.yaml:" in output and "4 error(s)" in output


def test_diff_without_credentials_says_where_to_put_them(tmp_path: Path) -> None:
    code, output = invoke(tmp_path, "net", "diff", "--site", "p01d01", "--platform",
                          "cisco_ios", "--timeout", "1")
    assert code == 1
    assert "no device login in environment" in output
    assert "SOCCTL_NET_USERNAME" in output


def test_unknown_device_lists_valid_names(tmp_path: Path) -> None:
    code, output = invoke(tmp_path, "net", "diff", "--lab", "--device", "p01-rtr9")
    assert code == 1
    assert "unknown device 'p01-rtr9'" in output


def test_selection_without_driver_is_an_error(tmp_path: Path) -> None:
    code, output = invoke(tmp_path, "net", "diff", "--lab", "--device", "dc-primary-log1")
    assert code == 1
    assert "no selected device has a network driver" in output


def test_policy_day_is_the_agencys_day_not_the_hosts(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's clock is put in a zone whose date differs from Hanoi's right now (one of
    UTC-11 and UTC+14 always does): the policy day is still Hanoi's. On Hanoi's last day
    of the month the backup starts (and stops for want of a device login)."""
    hanoi = dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()
    host_zone = next(z for z in ("Pacific/Pago_Pago", "Pacific/Kiritimati")
                     if dt.datetime.now(ZoneInfo(z)).date() != hanoi)
    monkeypatch.setenv("TZ", host_zone)
    time.tzset()
    try:
        assert dt.date.today() != hanoi
        code, output = invoke(tmp_path, "net", "backup", "--policy-day-only", "--site",
                              "p01d01", "--platform", "cisco_ios", "--timeout", "1",
                              env={"TZ": host_zone})
    finally:
        monkeypatch.undo()
        time.tzset()
    if backup.is_policy_day(hanoi):
        assert code == 1 and "no device login" in output, output
    else:
        assert code == 0, output
        assert f"{hanoi.isoformat()} is not the last day of the month" in output
