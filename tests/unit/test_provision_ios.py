"""Provisioning a Cisco IOS district router with Ansible (cisco.ios over network_cli).

No IOS device can run on this machine: the router is fakenos (tests/fakeios.py), which
answers over real SSH with a canned running config and keeps no config state. So this
runs the real district_edge.yml with the real inventory plugin in --check mode: Ansible
logs in, enters enable mode, reads the running config and computes the lines it would
send. A real push (and its verification) is covered on FRR in the lab.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from socctl.inventory import load_inventory
from socctl.network.render import Renderer
from tests.conftest import REPO
from tests.fakeios import PASSWORD, USERNAME, fake_ios

pytest.importorskip("fakenos")
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")

RUNNING = """Building configuration...
!
version 15.8
hostname p01d01-rtr1
!
interface GigabitEthernet0/1
 ip address 10.224.16.70 255.255.255.252
 ip ospf network point-to-point
 ip ospf cost 50
!
interface GigabitEthernet0/2
 no ip address
!
interface Loopback0
 ip address 10.208.130.33 255.255.255.255
!
end
"""


# IOS prints an enabled port with no shutdown line, a shut one with `shutdown`: the
# router's WAN port (its only one in the inventory) was left shut, a spare port is up.
INTERFACES = """interface GigabitEthernet0/1
 ip address 10.224.16.70 255.255.255.252
 ip ospf network point-to-point
 ip ospf cost 50
 shutdown
interface GigabitEthernet0/2
 no ip address
interface Loopback0
 ip address 10.208.130.33 255.255.255.255
"""


def _task(stdout: str, host: str, name: str) -> dict[str, Any]:
    """One task's result for ``host`` from Ansible's json callback."""
    data = json.loads(stdout[stdout.index("{"):])
    for play in data["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].endswith(name):
                return dict(task["hosts"][host])
    raise AssertionError(f"the task {name!r} did not run")


def _ios_updates(stdout: str, host: str) -> tuple[dict[str, Any], list[str]]:
    """The ios_config task's result for ``host``, and the lines it sends."""
    result = _task(stdout, host, "Configure the WAN interfaces, OSPF and syslog")
    return result, list(result.get("updates") or [])


def test_district_playbook_computes_the_ospf_lines_for_an_ios_router(tmp_path: Path) -> None:
    with fake_ios(tmp_path, RUNNING, {"show running-config | section ^interface": {
            "output": INTERFACES, "help": "interfaces", "prompt": ["{base_prompt}#"]}}) as port:
        env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
               "ANSIBLE_STDOUT_CALLBACK": "json", "ANSIBLE_HOST_KEY_CHECKING": "False",
               "SOCCTL_NET_USERNAME": USERNAME, "SOCCTL_NET_PASSWORD": PASSWORD,
               "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "ansible-playbook"), "-i",
             str(REPO / "inventory" / "socctl.yml"), str(REPO / "playbooks/district_edge.yml"),
             "--limit", "p01d01-rtr1", "--check",
             "-e", "ansible_host=127.0.0.1", "-e", f"ansible_port={port}"],
            capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    result, updates = _ios_updates(proc.stdout, "p01d01-rtr1")
    assert result["changed"] is True and not result.get("failed")
    # what differs from the running config is sent, in IOS's hierarchy; what matches is not
    assert "ip ospf cost 10" in updates  # the inventory's cost of the primary WAN link
    assert updates[updates.index("ip ospf cost 10") - 1] == "interface GigabitEthernet0/1"
    assert "ip address 10.224.16.70 255.255.255.252" not in updates
    for line in ("router ospf 1", " router-id 10.208.130.33", " passive-interface default",
                 " no passive-interface GigabitEthernet0/1",
                 " network 10.224.16.68 0.0.0.3 area 0",
                 " network 10.208.130.33 0.0.0.0 area 0"):
        assert line.strip() in [u.strip() for u in updates], (line, updates)
    # syslog to every collector, the same lines `socctl net` renders for this router (UDP:
    # the rsyslog collectors listen for it); without them the router's logs went nowhere
    model = load_inventory(REPO / "inventory", "national")
    rendered = Renderer.create(model, REPO / "device_templates").render(
        model.devices["p01d01-rtr1"]).splitlines()
    logging = sorted(line.strip() for line in updates if line.strip().startswith("logging "))
    assert logging == sorted(line for line in rendered if line.startswith("logging "))
    collectors = [d for d in model.devices.values() if d.role == "log_collector"]
    assert len(collectors) >= 2 and all(
        f"logging host {d.management.ip}" in logging for d in collectors), logging
    assert "logging trap informational" in logging
    # the shut WAN port is brought up, the spare one left alone; no `no shutdown` in the
    # lines ios_config sends (IOS never prints it, so it was sent, and the config saved,
    # on every run)
    ports = _task(proc.stdout, "p01d01-rtr1", "Bring up the WAN interfaces")
    assert ports["changed"] is True and not ports.get("failed"), ports
    assert ports["commands"] == ["interface GigabitEthernet0/1", "no shutdown"], ports
    assert "no shutdown" not in [u.strip() for u in updates]
    assert PASSWORD not in proc.stdout + proc.stderr
