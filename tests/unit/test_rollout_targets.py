"""A rollout runs only the hosts some play of the playbook targets: the selection's
other hosts (FortiGates, F5s, switches: no play manages them) are reported, not put in
a wave where, as the canary, they passed without a task run. The patterns are read by
socctl; real ``ansible-playbook --list-hosts`` on the national inventory is the oracle."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from socctl.automation.provision import ProvisionRequest, provision
from socctl.automation.targets import playbook_hosts
from socctl.config import Settings
from socctl.errors import ConfigError
from socctl.inventory import load_inventory
from socctl.inventory.select import Selection
from tests.conftest import REPO

PLAYBOOK = shutil.which("ansible-playbook") or str(Path(sys.executable).with_name(
    "ansible-playbook"))


def listed_hosts(playbook: Path) -> set[str]:
    """Every host ``ansible-playbook --list-hosts`` names under any play."""
    done = subprocess.run([PLAYBOOK, "-i", str(REPO / "inventory" / "socctl.yml"),
                           "--list-hosts", str(playbook)], capture_output=True, text=True,
                          env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
                          cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    hosts: set[str] = set()
    listing = False
    for line in done.stdout.splitlines():
        if line.strip().startswith("hosts ("):
            listing = True
        elif listing and line.startswith("      ") and line.strip():
            hosts.add(line.strip())
        else:
            listing = False
    return hosts


@pytest.mark.skipif(not Path(PLAYBOOK).exists(), reason="needs ansible-playbook (./dev)")
@pytest.mark.parametrize("name", ["site", "dc_primary", "district_edge"])
def test_the_hosts_a_playbook_runs_on_are_those_ansible_lists(name: str) -> None:
    inventory = load_inventory(REPO / "inventory", "national")
    ours = playbook_hosts(REPO / "playbooks" / f"{name}.yml", inventory)
    assert ours is not None
    assert ours == listed_hosts(REPO / "playbooks" / f"{name}.yml")
    # the estate has devices no play manages, and they are not in the rollout
    unmanaged = {d for d, dev in inventory.devices.items() if dev.platform == "fortinet"}
    assert unmanaged and not ours & unmanaged


def test_a_selection_no_play_runs_on_is_refused_before_anything_runs(tmp_path: Path) -> None:
    """Before, the FortiGates were the waves: a canary 'ok' with no task run."""
    settings = Settings(project_root=REPO, inventory=REPO / "inventory", state_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"no play of site\.yml runs on the selected hosts"):
        provision(settings, ProvisionRequest(selection=Selection(platforms=("fortinet",)),
                                             wave=1))
    assert not list(tmp_path.rglob("*.json"))  # no run record: nothing ran


def test_a_pattern_socctl_cannot_read_runs_every_selected_host(tmp_path: Path) -> None:
    play = tmp_path / "p.yml"
    play.write_text("- hosts: 'p0*'\n  tasks: []\n")
    assert playbook_hosts(play, load_inventory(REPO / "inventory", "national")) is None
    play.write_text("- hosts: 'role_db_server:&site_dc_primary:!dc-primary-db2'\n"
                    "  tasks: []\n- import_playbook: q.yml\n")
    (tmp_path / "q.yml").write_text("- hosts: [role_log_collector]\n  tasks: []\n")
    got = playbook_hosts(play, load_inventory(REPO / "inventory", "national"))
    assert got is not None and "dc-primary-db1" in got and "dc-primary-db2" not in got
    assert "dc-dr-log1" in got and "dc-dr-db1" not in got
