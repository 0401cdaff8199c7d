"""socctl net against the lab's real FRR routers (vtysh over SSH as user netops).

The module restores every router it touched to its original running config, and heals
every link it cut, because the rest of the session shares the lab.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from socctl.cli.main import cli
from socctl.config import Settings
from socctl.inventory import load_inventory
from socctl.lab import runtime
from socctl.lab.plan import LabPlan
from socctl.network import ops, runner
from socctl.network.credentials import from_lab
from socctl.network.drivers import Target, get_driver
from tests.conftest import REPO

ROUTER = "p01d01-rtr1"


def vtysh(host: str, *commands: str) -> str:
    argv = ["vtysh"]
    for command in commands:
        argv += ["-c", command]
    result = runtime.run_in(host, argv, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


def running(host: str) -> str:
    return get_driver("frr").normalise(vtysh(host, "show running-config"))


@pytest.fixture(scope="module")
def net(lab: LabPlan, lab_settings: Settings) -> Iterator[dict[str, Any]]:
    originals = {h.name: vtysh(h.name, "show running-config")
                 for h in lab.hosts.values() if h.is_router}
    yield {"plan": lab, "settings": lab_settings}
    for name in ("p01d01-wan1", "p01d01-wan2"):
        runtime.set_link(lab_settings, name, up_=True)
    creds = from_lab(lab_settings.state_dir)
    driver = get_driver("frr")
    for host in lab.hosts.values():
        if not host.is_router or running(host.name) == driver.normalise(originals[host.name]):
            continue
        session = driver.connect(Target(host.name, str(host.management.ip)), creds)
        try:
            session.configure(driver.commands(session.running(), originals[host.name]))
            session.save()
        finally:
            session.close()
        assert running(host.name) == driver.normalise(originals[host.name])
    runtime.wait_converged(lab)


def socctl(settings: Settings, *args: str) -> tuple[int, str]:
    env = {"SOCCTL_STATE_DIR": str(settings.state_dir),
           "SOCCTL_INVENTORY": str(settings.inventory)}
    result = CliRunner().invoke(cli, list(args), env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def socctl_json(settings: Settings, *args: str) -> tuple[int, dict[str, Any]]:
    code, out = socctl(settings, "-o", "json", *args)
    return code, json.loads(out[out.index("{"):])


def host(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(h for h in data["hosts"] if h["host"] == name)


def test_push_commit_then_diff_shows_planted_drift_and_push_fixes_it(
        net: dict[str, Any]) -> None:
    settings = net["settings"]
    code, data = socctl_json(settings, "net", "push", "--lab", "--device", ROUTER)
    assert code == 0 and host(data, ROUTER)["changed"]          # dry run: only shows
    assert "access-list mgmt" not in running(ROUTER)
    code, data = socctl_json(settings, "net", "push", "--lab", "--device", ROUTER, "--commit")
    assert code == 0, data
    assert host(data, ROUTER)["data"]["saved"] is True
    assert Path(host(data, ROUTER)["data"]["backup"]).stat().st_mode & 0o777 == 0o600
    code, data = socctl_json(settings, "net", "diff", "--lab", "--device", ROUTER)
    assert code == 0 and not host(data, ROUTER)["changed"] and host(data, ROUTER)["diff"] == ""

    vtysh(ROUTER, "configure terminal", "interface wan2", "ip ospf cost 50")
    code, data = socctl_json(settings, "net", "diff", "--lab", "--device", ROUTER)
    diff = host(data, ROUTER)["diff"]
    assert "- ip ospf cost 50" in diff.splitlines() and "+ ip ospf cost 100" in diff.splitlines()
    assert Path(data["record"]).exists()

    code, data = socctl_json(settings, "net", "push", "--lab", "--device", ROUTER, "--commit")
    assert code == 0, data
    assert host(data, ROUTER)["data"]["commands"] == [
        "interface wan2", "no ip ospf cost", "ip ospf cost 100", "exit"]
    assert " ip ospf cost 100" in running(ROUTER).splitlines()
    saved = runtime.run_in(ROUTER, ["cat", "/etc/frr/frr.conf"]).stdout
    assert "access-list mgmt seq 5 permit 198.18.0.0/24" in saved


def test_push_that_breaks_ospf_is_rolled_back(net: dict[str, Any], tmp_path: Path) -> None:
    settings, plan = net["settings"], net["plan"]
    before = running(ROUTER)
    code, _ = socctl(settings, "net", "render", "--lab", "--device", ROUTER, "--out",
                     str(tmp_path))
    assert code == 0
    config = tmp_path / f"{ROUTER}.cfg"
    text = config.read_text()
    # A hello interval the peer does not share: the adjacency on wan1 dies (dead 3 s).
    broken = re.sub(r"(interface wan1\n(?: .*\n)*?) ip ospf hello-interval 1",
                    r"\1 ip ospf hello-interval 2", text)
    assert broken != text
    config.write_text(broken)
    code, data = socctl_json(settings, "net", "push", "--lab", "--device", ROUTER,
                             "--intended", str(tmp_path), "--commit", "--verify-timeout", "3")
    assert code == 1
    result = host(data, ROUTER)
    assert result["failed"] and "routing adjacencies not back" in result["message"]
    assert "wan1/" in result["message"]
    assert "rolled back to the backup" in result["message"]
    assert result["data"]["rollback"]["ok"] is True
    assert running(ROUTER) == before
    runtime.wait_converged(plan, timeout=15)


def test_a_push_the_router_cannot_save_is_rolled_back_and_shows_no_secret(
        net: dict[str, Any]) -> None:
    """A verified change that ``write memory`` cannot save would be gone at the router's
    next reload while socctl said "applied": now it is rolled back. The drift it removes
    holds a vty password, which the diff shows masked (and which vtysh removes with a bare
    "no password": "no password SECRET" it refused, secret echoed). The router's
    /etc/frr is made read-only in its own mount namespace for the push: real vtysh
    refuses the write ("% Configuration write failed.")."""
    settings = net["settings"]
    vtysh(ROUTER, "configure terminal", "password Vty-S3cret!", "interface wan2",
          "ip ospf cost 50")
    before = running(ROUTER)
    assert "password Vty-S3cret!" in before.splitlines()
    code, data = socctl_json(settings, "net", "diff", "--lab", "--device", ROUTER)
    assert "-password ***" in host(data, ROUTER)["diff"].splitlines(), host(data, ROUTER)
    mount = runtime.run_in(ROUTER, ["mount", "--bind", "-o", "ro", "/etc/frr", "/etc/frr"])
    assert mount.returncode == 0, mount.stderr
    try:
        code, out = socctl(settings, "-o", "json", "net", "push", "--lab", "--device", ROUTER,
                           "--commit")
    finally:
        assert runtime.run_in(ROUTER, ["umount", "/etc/frr"]).returncode == 0
    assert code == 1 and "Vty-S3cret!" not in out
    result = host(json.loads(out[out.index("{"):]), ROUTER)
    assert result["failed"] and "saving the configuration failed" in result["message"]
    assert "Configuration write failed" in result["message"]
    assert "rolled back to the backup" in result["message"] and result["changed"] is False
    assert result["data"]["commands"][0] == "no password"  # vtysh knows no "no password X"
    assert running(ROUTER) == before
    code, data = socctl_json(settings, "net", "push", "--lab", "--device", ROUTER, "--commit")
    assert code == 0 and host(data, ROUTER)["data"]["saved"] is True, data  # writable again
    assert "password Vty-S3cret!" not in running(ROUTER)
    saved = runtime.run_in(ROUTER, ["cat", "/etc/frr/frr.conf"]).stdout
    assert "Vty-S3cret!" not in saved and " ip ospf cost 100" in saved.splitlines()


def test_backup_commits_once_and_not_again_without_change(net: dict[str, Any]) -> None:
    settings = net["settings"]
    code, first = socctl_json(settings, "net", "backup", "--lab")
    assert code == 0
    assert first["backup"]["commit"], first["backup"]
    assert sorted(first["backup"]["changed"]) == sorted(
        h.name for h in net["plan"].hosts.values() if h.is_router)
    code, second = socctl_json(settings, "net", "backup", "--lab")
    assert code == 0 and second["backup"]["commit"] is None
    repo = settings.state_dir / "network" / "backups"
    stored = (repo / "p01d01" / f"{ROUTER}.cfg").read_text()
    assert "Building configuration" not in stored and "frr version" not in stored
    assert stored == running(ROUTER)


def test_compliance_flags_the_router_with_a_violation(net: dict[str, Any]) -> None:
    settings = net["settings"]
    code, data = socctl_json(settings, "net", "compliance", "--lab", "--device", ROUTER)
    assert code == 0, host(data, ROUTER)["message"]
    vtysh(ROUTER, "configure terminal", "interface wan2", "ip ospf cost 10")
    try:
        code, out = socctl(settings, "net", "compliance", "--lab", "--device", ROUTER)
        assert code == 1
        assert "frr-wan-backup-ospf" in out
    finally:
        vtysh(ROUTER, "configure terminal", "interface wan2", "ip ospf cost 100")


def office(data: dict[str, Any], site: str) -> dict[str, Any]:
    return next(o for o in data["offices"] if o["site"] == site)


def test_poll_sees_both_wan_links_and_the_primary_going_down(net: dict[str, Any]) -> None:
    settings, plan = net["settings"], net["plan"]
    code, data = socctl_json(settings, "net", "poll", "--lab", "--site", "p01d01",
                             "--interval", "0.5")
    assert code == 0, data
    p01d01 = office(data, "p01d01")
    assert p01d01["status"] == "ok"
    assert [(s["interface"], s["status"]) for s in p01d01["primary"]] == [("wan1", "up")]
    assert [(s["interface"], s["status"]) for s in p01d01["backup"]] == [("wan2", "up")]
    assert "utilisation_pct" in p01d01["primary"][0]
    assert host(data, ROUTER)["data"]["uptime_seconds"] > 0
    runtime.set_link(settings, "p01d01-wan1", up_=False)
    try:
        # snmpd caches its interface table for a few seconds: poll until it shows the cut.
        deadline = time.monotonic() + 20
        while True:
            code, data = socctl_json(settings, "net", "poll", "--lab", "--interval", "0")
            assert code == 0
            p01d01 = office(data, "p01d01")
            if p01d01["status"] != "ok" or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert p01d01["status"] == "on_backup"
        assert p01d01["primary"][0]["status"] in ("down", "lowerLayerDown")
        assert p01d01["backup"][0]["status"] == "up"
        assert data["summary"]["on_backup_sites"] == ["p01d01"]
        assert data["summary"]["down_sites"] == []
    finally:
        runtime.set_link(settings, "p01d01-wan1", up_=True)
    runtime.wait_converged(plan, timeout=15)


def test_unreachable_refused_and_timed_out_devices_fail_alone(net: dict[str, Any]) -> None:
    settings = net["settings"]
    inv = load_inventory(settings.inventory, "lab")
    good = from_lab(settings.state_dir)
    base = ops.NetContext(inv, REPO / "device_templates", good, settings.state_dir,
                          timeout=3)
    silent = replace(inv.devices["p79-rtr1"], management=IPv4Interface("198.18.0.250/24"))
    contexts = {"p01-rtr1": base, "p79-rtr1": base, "p01d02-rtr1": replace(base, port=2222)}
    devices = [inv.devices["p01-rtr1"], silent, inv.devices["p01d02-rtr1"]]
    result = runner.run("diff", devices, lambda d: ops.diff(contexts[d.name], d))
    by_name = {h.host: h for h in result.hosts}
    assert not by_name["p01-rtr1"].failed
    assert by_name["p79-rtr1"].failed
    assert "p79-rtr1 (198.18.0.250:22): unreachable" in by_name["p79-rtr1"].message
    assert by_name["p01d02-rtr1"].failed
    p01d02 = inv.devices["p01d02-rtr1"].management.ip
    assert f"p01d02-rtr1 ({p01d02}:2222)" in by_name["p01d02-rtr1"].message


def test_wrong_password_is_a_per_device_error_and_never_logged(
        net: dict[str, Any], tmp_path: Path) -> None:
    settings = net["settings"]
    secret = "wrong-" + from_lab(settings.state_dir).password[:6]
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps({"username": "netops", "password": secret}))
    os.chmod(creds, 0o600)
    code, out = socctl(settings, "-o", "json", "net", "diff", "--lab", "--device", ROUTER,
                       "--device", "p79-rtr1", "--credentials", str(creds), "--timeout", "5")
    assert code == 1
    assert secret not in out
    data = json.loads(out[out.index("{"):])
    inv = load_inventory(settings.inventory, "lab")
    for name in (ROUTER, "p79-rtr1"):
        address = inv.devices[name].management.ip
        result = host(data, name)
        assert result["failed"]
        assert f"{name} ({address}:22): authentication failed for user 'netops'" in \
            result["message"]
    logs = tmp_path / "logs"
    code, out = socctl(settings, "net", "diff", "--lab", "--device", ROUTER,
                       "--session-log", str(logs))
    assert code == 0
    log = (logs / f"{ROUTER}.log").read_text()
    assert "show running-config" in log
    assert from_lab(settings.state_dir).password not in log
