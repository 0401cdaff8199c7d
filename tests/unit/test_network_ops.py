"""Credentials, the runner (concurrency, waves, failure budget), git backups and the SNMP
office view, without devices."""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
import time
from pathlib import Path

import pytest

from socctl.errors import ConfigError, DeviceError
from socctl.inventory import load_inventory
from socctl.inventory.model import Device
from socctl.network import backup, runner, snmp
from socctl.network.credentials import Credentials, from_env, from_file
from socctl.results import HostResult, RunResult
from tests.conftest import REPO


def test_credentials_file_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "creds.yaml"
    path.write_text("username: netops\npassword: hunter2-secret\n")
    path.chmod(0o644)
    with pytest.raises(ConfigError) as info:
        from_file(path)
    assert "readable by others" in str(info.value) and "chmod 600" in str(info.value)
    path.chmod(0o600)
    creds = from_file(path)
    assert creds.username == "netops" and creds.password == "hunter2-secret"
    assert "hunter2-secret" not in repr(creds)


def test_credentials_file_unknown_key_and_bad_yaml_never_echo_secrets(tmp_path: Path) -> None:
    path = tmp_path / "creds.yaml"
    path.write_text("usernme: netops\npassword: hunter2-secret\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="unknown credential key 'usernme'"):
        from_file(path)
    path.write_text("password: [hunter2-secret\n")
    with pytest.raises(ConfigError) as info:
        from_file(path)
    assert "hunter2-secret" not in str(info.value)


def test_credentials_from_ansible_vault(tmp_path: Path) -> None:
    from ansible.parsing.vault import VaultLib, VaultSecret

    vault_pw = tmp_path / "vault-pass"
    vault_pw.write_text("vault-key\n")
    secret = VaultLib([("default", VaultSecret(b"vault-key"))])
    path = tmp_path / "creds.vault"
    path.write_bytes(secret.encrypt(b"username: netops\npassword: from-vault\n"))
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="SOCCTL_VAULT_PASSWORD_FILE"):
        from_file(path, environ={})
    creds = from_file(path, environ={"SOCCTL_VAULT_PASSWORD_FILE": str(vault_pw)})
    assert creds.password == "from-vault"
    missing = tmp_path / "no-such-pass"  # was a bare OSError: "internal error"
    with pytest.raises(ConfigError, match="cannot read the vault password file") as raised:
        from_file(path, environ={"SOCCTL_VAULT_PASSWORD_FILE": str(missing)})
    assert str(missing) in str(raised.value.location)


def test_credentials_from_environment_and_missing() -> None:
    creds = from_env({"SOCCTL_NET_USERNAME": "u", "SOCCTL_NET_PASSWORD": "p"})
    creds.require_cli()
    with pytest.raises(ConfigError, match="SOCCTL_SNMP_USER"):
        creds.require_snmp()
    with pytest.raises(ConfigError, match="no device login"):
        from_env({}).require_cli()


def test_snmp_secrets_are_read_by_the_names_the_snmp_role_reads() -> None:
    """One export configures the agents (playbooks) and the poller (socctl net poll)."""
    from socctl.automation.secrets import SECRET_ENV

    env = {"SOCCTL_SNMP_USER": "u", "SOCCTL_SNMP_AUTH_PASS": "a" * 10,
           "SOCCTL_SNMP_PRIV_PASS": "p" * 10}
    assert set(env) == set(SECRET_ENV)
    creds = from_env(env)
    creds.require_snmp()
    assert (creds.snmp_user, creds.snmp_auth, creds.snmp_priv) == ("u", "a" * 10, "p" * 10)
    # an export under the old name is refused by name, not ignored
    with pytest.raises(ConfigError, match="SOCCTL_SNMP_AUTH is set") as raised:
        from_env({"SOCCTL_SNMP_USER": "u", "SOCCTL_SNMP_AUTH": "a" * 10})
    assert "SOCCTL_SNMP_AUTH_PASS" in str(raised.value.hint)


def _devices(n: int) -> list[Device]:
    inv = load_inventory(REPO / "inventory", "national")
    return list(inv.devices.values())[:n]


def test_runner_bounds_concurrency_and_keeps_going_after_failures() -> None:
    lock = threading.Lock()
    active = peak = 0

    def task(device: Device) -> HostResult:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.02)
        with lock:
            active -= 1
        if device.name.endswith("2"):
            raise DeviceError("unreachable: timed out", hint=None)
        if device.name.endswith("3"):
            raise RuntimeError("driver bug")
        return HostResult(device.name)

    devices = _devices(30)
    result = runner.run("t", devices, task, runner.RunOptions(concurrency=4))
    assert peak <= 4
    assert [h.host for h in result.hosts] == [d.name for d in devices]
    failed = {h.host: h.message for h in result.hosts if h.failed}
    assert failed and all(name.endswith(("2", "3")) for name in failed)
    assert any("internal error: RuntimeError: driver bug" in m for m in failed.values())


def test_runner_stops_later_waves_past_the_failure_budget() -> None:
    devices = _devices(12)
    seen: list[str] = []

    def task(device: Device) -> HostResult:
        seen.append(device.name)
        raise DeviceError(f"{device.name}: refused")

    # waves: a canary, then 4, 4 and 3 devices; the canary fails: nothing else is touched
    result = runner.run("t", devices, task, runner.RunOptions(2, wave_size=4,
                                                              failure_budget=3))
    assert seen == [devices[0].name]
    skipped = [h for h in result.hosts if h.data.get("skipped")]
    assert len(skipped) == 11 and "canary" in skipped[0].message

    # a healthy canary, then every device of the next wave fails: 4 > budget 3
    seen.clear()

    def task_after_canary(device: Device) -> HostResult:
        seen.append(device.name)
        if device.name == devices[0].name:
            return HostResult(device.name)
        raise DeviceError(f"{device.name}: refused")

    result = runner.run("t", devices, task_after_canary,
                        runner.RunOptions(2, wave_size=4, failure_budget=3))
    assert len(seen) == 5  # canary + wave 2
    skipped = [h for h in result.hosts if h.data.get("skipped")]
    assert len(skipped) == 7
    assert "failure budget 3 exhausted (4 failed) before wave 3" in skipped[0].message
    assert [h.host for h in result.hosts] == [d.name for d in devices]  # input order kept


def test_network_runs_roll_out_like_provisioning() -> None:
    from socctl.inventory import load_inventory

    inv = load_inventory(REPO / "inventory", "lab")
    ordered = [d.name for d in runner.rollout(inv, list(inv.devices.values()))]
    assert ordered.index("p01d01-rtr1") < ordered.index("p01-rtr1") < ordered.index(
        "dc-primary-wrtr1")


def test_run_record_is_private_json(tmp_path: Path) -> None:
    path = runner.record(tmp_path, RunResult("diff", [HostResult("a")]), {"started": 1.0})
    assert path.stat().st_mode & 0o777 == 0o600
    assert '"operation": "diff"' in path.read_text()


def _fetched(configs: dict[str, str], failed: tuple[str, ...] = ()) -> RunResult:
    hosts = [HostResult(n, data={"config": c}) for n, c in configs.items()]
    hosts += [HostResult(n, failed=True, message=f"{n}: unreachable") for n in failed]
    return RunResult("backup", hosts)


def test_backup_commits_changes_only(tmp_path: Path) -> None:
    inv = load_inventory(REPO / "inventory", "lab")
    day = dt.date(2026, 11, 30)
    first = backup.store(tmp_path, inv, _fetched({"p01-rtr1": "hostname p01-rtr1\n",
                                                  "p79-rtr1": "hostname p79-rtr1\n"}), day)
    assert first["commit"] and first["changed"] == ["p01-rtr1", "p79-rtr1"]
    again = backup.store(tmp_path, inv, _fetched({"p01-rtr1": "hostname p01-rtr1\n"},
                                                 failed=("p79-rtr1",)), day)
    assert again["commit"] is None
    third = backup.store(tmp_path, inv, _fetched({"p01-rtr1": "hostname p01-rtr1\nx\n"}), day)
    assert third["changed"] == ["p01-rtr1"]
    log = backup.commits(tmp_path)
    assert len(log) == 2 and "1 device(s) changed: p01-rtr1" in log[0]
    body = subprocess.run(["git", "-C", str(backup.repo_path(tmp_path)), "log", "-1",
                           "--format=%B"], capture_output=True, text=True).stdout
    assert "Monthly backup (policy: last day of the month)" in body
    assert (backup.repo_path(tmp_path) / "p79" / "p79-rtr1.cfg").exists()  # kept


def test_policy_day_is_the_last_day_of_the_month() -> None:
    assert backup.is_policy_day(dt.date(2024, 2, 29))
    assert not backup.is_policy_day(dt.date(2025, 2, 28 - 1))
    assert backup.is_policy_day(dt.date(2026, 12, 31))


def _poll_result(name: str, wan1: str, wan2: str) -> HostResult:
    return HostResult(name, data={"interfaces": {
        "wan1": {"oper": wan1, "admin": "up", "in_errors": 2, "out_errors": 1,
                 "in_bps": 2_000_000, "out_bps": 1_000},
        "wan2": {"oper": wan2, "admin": "up", "in_errors": 0, "out_errors": 0}}})


def test_office_view_and_national_summary() -> None:
    inv = load_inventory(REPO / "inventory", "lab")
    run = RunResult("poll", [
        _poll_result("p01d01-rtr1", "down", "up"),
        _poll_result("p01d02-rtr1", "up", "up"),
        HostResult("p79-rtr1", failed=True, message="p79-rtr1 (198.18.0.18:161): timeout"),
        _poll_result("p01-rtr1", "up", "down"),
    ])
    offices = {o["site"]: o for o in snmp.office_view(
        inv, {"p01d01-rtr1", "p01d02-rtr1", "p79-rtr1", "p01-rtr1"}, run)}
    assert offices["p01d01"]["status"] == "on_backup"
    assert offices["p01d02"]["status"] == "ok"
    assert offices["p01"]["status"] == "backup_down"
    assert offices["p79"]["status"] == "down"
    assert offices["p79"]["primary"][0]["status"] == "unreachable"
    link = offices["p01d02"]["primary"][0]
    assert link["errors"] == 3 and link["utilisation_pct"] == 10.0  # 2 Mb/s of 20
    summary = snmp.national_summary(list(offices.values()))
    assert summary["on_backup_sites"] == ["p01d01"] and summary["down_sites"] == ["p79"]


def test_snmp_errors_are_per_device(tmp_path: Path) -> None:
    """Nothing listens on this port: the device fails with host and cause, no exception."""
    inv = load_inventory(REPO / "inventory", "lab")
    creds = Credentials(snmp_user="u", snmp_auth="authkey123", snmp_priv="privkey123")
    from dataclasses import replace
    from ipaddress import IPv4Interface

    device = replace(inv.devices["p01-rtr1"], management=IPv4Interface("127.0.0.1/8"))
    report = snmp.poll(inv, [device], creds, snmp.PollOptions(timeout=0.3, retries=0,
                                                              interval=0, port=9))
    assert report.run.failed
    message = report.run.hosts[0].message
    assert message.startswith("p01-rtr1 (127.0.0.1:9): SNMP failed:"), message
