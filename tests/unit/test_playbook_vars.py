"""The playbooks' shared variables (playbooks/group_vars/all.yml) as Ansible itself
resolves them for an inventory: run by real ``ansible`` on the controller, no hosts
contacted (the debug module runs locally)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

ANSIBLE = shutil.which("ansible") or str(Path(sys.executable).parent / "ansible")


def resolve(inventory: Path, host: str, var: str, hashseed: int) -> str:
    env = {**os.environ, "PYTHONHASHSEED": str(hashseed), "ANSIBLE_INVENTORY_ENABLED": "yaml",
           "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    done = subprocess.run([ANSIBLE, "-i", str(inventory), "--playbook-dir",
                           str(REPO / "playbooks"), host, "-c", "local", "-m", "debug",
                           "-a", f"var={var}", "-o"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    # -o: 'host | SUCCESS => {"changed": false, "var": "value"}'
    return str(yaml.safe_load(done.stdout.split("=>", 1)[1])[var])


@pytest.mark.skipif(not Path(ANSIBLE).exists(), reason="needs ansible (pip, ./dev)")
def test_the_database_primary_is_the_same_server_on_every_run(tmp_path: Path) -> None:
    """With two database servers in the primary DC, the primary is the first by name on
    every run: before, it went through a set (intersect), so its choice followed Python's
    hash seed, and a run could rebuild the real primary as a standby of the other."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {
        "role_db_server": {"hosts": {"dc-primary-db2": {}, "dc-dr-db1": {},
                                     "dc-primary-db1": {}}},
        "site_dc_primary": {"hosts": {"dc-primary-db1": {}, "dc-primary-db2": {}}}}}}))
    chosen = {resolve(inventory, "dc-dr-db1", "socctl_db_primary", seed)
              for seed in range(1, 7)}
    assert chosen == {"dc-primary-db1"}


@pytest.mark.skipif(not Path(ANSIBLE).exists(), reason="needs ansible (pip, ./dev)")
def test_hosts_forward_their_logs_to_the_primary_dcs_collector(tmp_path: Path) -> None:
    """The national profile has collectors in both DCs: by name alone, dc-dr-log1 sorts
    first, and every host of the agency sent its logs to the DR collector. With no
    collector in the primary DC, the first there is."""
    inventory = tmp_path / "hosts.yml"
    both = {"dc-primary-log2": {}, "dc-dr-log1": {}, "dc-primary-log1": {}, "p01-rtr1": {}}
    inventory.write_text(yaml.safe_dump({"all": {"hosts": both, "children": {
        "role_log_collector": {"hosts": {h: {} for h in both if "log" in h}},
        "site_dc_primary": {"hosts": {"dc-primary-log1": {}, "dc-primary-log2": {}}}}}}))
    assert resolve(inventory, "p01-rtr1", "socctl_log_collector", 1) == "dc-primary-log1"
    inventory.write_text(yaml.safe_dump({"all": {"children": {
        "role_log_collector": {"hosts": {"dc-dr-log2": {}, "dc-dr-log1": {}}}}}}))
    assert resolve(inventory, "dc-dr-log2", "socctl_log_collector", 1) == "dc-dr-log1"
