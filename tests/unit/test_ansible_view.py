"""Ansible sees the same inventory as socctl, through the plugin (no generated copy)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from socctl.inventory import load_inventory
from socctl.inventory.ansible import ansible_inventory
from tests.conftest import REPO


def _plain(value: object) -> object:
    """ansible-inventory marks plugin values as unsafe (never templated): unwrap them."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _ansible_list(folder: Path) -> dict:  # type: ignore[type-arg]
    binary = Path(sys.executable).parent / "ansible-inventory"
    result = subprocess.run(
        [str(binary), "-i", str(folder), "--list"], capture_output=True, text=True,
        cwd=REPO, timeout=300,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
    )
    assert result.returncode == 0, result.stderr
    return _plain(json.loads(result.stdout))  # type: ignore[return-value]


def test_ansible_lists_every_device_with_groups_and_vars() -> None:
    listed = _ansible_list(REPO / "inventory")
    model = load_inventory(REPO / "inventory")
    expected = ansible_inventory(model)
    assert set(listed["_meta"]["hostvars"]) == set(model.devices)
    for group in ("tier_dc", "tier_province", "tier_district", "role_edge_router",
                  "platform_cisco_ios", "province_01", "site_p01d03"):
        assert sorted(listed[group]["hosts"]) == sorted(expected[group]["hosts"]), group
    assert sorted(listed["central"]["children"]) == ["tier_dc", "tier_ops"]
    hv = listed["_meta"]["hostvars"]["p01d03-rtr1"]
    assert hv["ansible_host"] == str(model.devices["p01d03-rtr1"].management.ip)
    assert hv["ansible_network_os"] == "cisco.ios.ios"
    assert hv["socctl_interfaces"][0]["kind"] == "wan_primary"


def test_a_broken_inventory_fails_ansible_with_the_location(tmp_path: Path) -> None:
    folder = tmp_path / "inventory"
    shutil.copytree(REPO / "inventory", folder)
    text = (folder / "provinces.yaml").read_text(encoding="utf-8")
    (folder / "provinces.yaml").write_text(text.replace("region: southeast", "region: mars", 1),
                                           encoding="utf-8")
    binary = Path(sys.executable).parent / "ansible-inventory"
    result = subprocess.run([str(binary), "-i", str(folder), "--list"], capture_output=True,
                            text=True, cwd=REPO, timeout=300,
                            env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")})
    assert result.returncode != 0
    assert "provinces.yaml:" in result.stderr and "region" in result.stderr
