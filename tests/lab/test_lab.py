"""The lab is real: own sshd per host, private /etc, OSPF over both WAN links, failover."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from socctl.config import Settings
from socctl.lab import runtime
from socctl.lab.plan import LabPlan
from tests.conftest import REPO


def test_ssh_reaches_every_host_as_itself(lab: LabPlan, lab_settings: Settings) -> None:
    for host in lab.hosts.values():
        argv = [*runtime.ssh_argv(lab_settings, str(host.management.ip)), "hostname"]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, f"{host.name}: {result.stderr}"
        assert result.stdout.strip() == host.name


def test_ssh_sessions_run_the_hosts_own_root_dotfiles(lab: LabPlan, lab_settings: Settings
                                                       ) -> None:
    """A lab host is a fresh machine: its root's start-up files are its own, not the
    operator's (whose ~/.bashrc bash runs for every ssh command, Ansible's included)."""
    from socctl.lab.hostconf import ROOT_DOTFILES

    def machine_bashrc() -> bytes | None:
        mine = Path("/root/.bashrc")
        return mine.read_bytes() if mine.exists() else None

    before = machine_bashrc()
    expected = "".join(f["content"] for f in ROOT_DOTFILES)
    for host in lab.hosts.values():
        argv = [*runtime.ssh_argv(lab_settings, str(host.management.ip)),
                "cat ~/.bashrc ~/.profile"]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, f"{host.name}: {result.stderr}"
        assert result.stdout == expected, host.name
    assert machine_bashrc() == before, "the lab wrote through to the machine's own /root"


def test_root_password_login_is_refused(lab: LabPlan) -> None:
    host = next(iter(lab.hosts.values()))
    result = subprocess.run(
        ["ssh", "-o", "BatchMode=yes", "-o", "PreferredAuthentications=password",
         "-o", "PubkeyAuthentication=no", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
         f"root@{host.management.ip}", "true"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_hosts_have_their_own_host_keys(lab: LabPlan) -> None:
    keys = {
        name: runtime.run_in(name, ["ssh-keygen", "-lf",
                                    "/etc/ssh/ssh_host_lab_ed25519_key.pub"]).stdout.split()[1]
        for name in lab.hosts
    }
    assert len(set(keys.values())) == len(keys)


def test_etc_is_private_to_each_host(lab: LabPlan) -> None:
    a, b = list(lab.hosts)[:2]
    marker = f"/etc/socctl-test-{uuid.uuid4().hex}"
    assert runtime.run_in(a, ["sh", "-c", f"echo {a} > {marker}"]).returncode == 0
    assert runtime.run_in(a, ["cat", marker]).stdout.strip() == a
    assert runtime.run_in(b, ["test", "-e", marker]).returncode == 1
    assert not Path(marker).exists()


def test_netops_user_gets_vtysh(lab: LabPlan, lab_settings: Settings) -> None:
    router = next(h for h in lab.hosts.values() if h.is_router)
    result = subprocess.run(
        [*runtime.ssh_argv(lab_settings, str(router.management.ip), user="netops"),
         "show version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "FRRouting" in result.stdout


def test_ospf_is_full_on_both_wan_links_of_every_office(lab: LabPlan) -> None:
    for host in lab.hosts.values():
        if not host.is_router or not host.site.startswith("p"):
            continue
        full = {n["interface"] for n in runtime.ospf_neighbours(host.name)
                if n["state"].startswith("Full")}
        assert {"wan1", "wan2"} <= full, f"{host.name}: {full}"


def _route_dev(host: str, target: str) -> str:
    out = runtime.run_in(host, ["ip", "route", "get", target]).stdout
    words = out.split()
    return words[words.index("dev") + 1] if "dev" in words else ""


def _ping(host: str, target: str) -> bool:
    return runtime.run_in(host, ["ping", "-c", "1", "-W", "1", target]).returncode == 0


def test_primary_wan_failure_moves_traffic_to_backup(lab: LabPlan,
                                                     lab_settings: Settings) -> None:
    office = lab.hosts["p01d01-rtr1"]
    collector = "dc-primary-log1"
    target = str(office.loopback)
    assert _ping(collector, target)
    assert _route_dev(office.name, str(lab.hosts[collector].lan.ip)) == "wan1"  # type: ignore[union-attr]
    runtime.set_link(lab_settings, "p01d01-wan1", up_=False)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (
            _route_dev(office.name, str(lab.hosts[collector].lan.ip)) == "wan2"  # type: ignore[union-attr]
            and _ping(collector, target)
        ):
            time.sleep(0.2)
        assert _route_dev(office.name, str(lab.hosts[collector].lan.ip)) == "wan2"  # type: ignore[union-attr]
        assert _ping(collector, target), "office unreachable over the backup link"
    finally:
        runtime.set_link(lab_settings, "p01d01-wan1", up_=True)
    runtime.wait_converged(lab)
    assert _route_dev(office.name, str(lab.hosts[collector].lan.ip)) == "wan1"  # type: ignore[union-attr]


def test_fail_host_and_start_it_again(lab: LabPlan, lab_settings: Settings) -> None:
    name = "p79-rtr1"
    marker = "/etc/socctl-survives-restart"
    runtime.run_in(name, ["touch", marker])
    # An operator's process in the host's network namespace (a capture, say) is not the
    # lab's: failing the host leaves it running, and it does not block a start.
    operators = subprocess.Popen(["ip", "netns", "exec", lab.hosts[name].netns,
                                  "sleep", "120"])
    try:
        deadline = time.monotonic() + 10
        while operators.pid not in runtime._ns_pids(lab.hosts[name].netns):
            assert time.monotonic() < deadline, "the operator's process did not start"
            time.sleep(0.05)
        left = runtime.fail_host(lab_settings, name)
        assert left == [f"{operators.pid} (sleep)"]
        assert operators.poll() is None, "the lab killed a process it did not start"
        assert runtime._ns_pids(lab.hosts[name].netns) == [operators.pid]
        states = {h.name: h for h in runtime.status(lab_settings)}
        assert not states[name].running and states[name].pid is None
        runtime.start_host(lab_settings, name)
    finally:
        operators.kill()
        operators.wait()
    states = {h.name: h for h in runtime.status(lab_settings)}
    assert states[name].running and all(states[name].daemons.values())
    assert runtime.run_in(name, ["test", "-e", marker]).returncode == 0
    # a recorded PID is trusted only in its own host's namespace (PIDs get reused)
    other = states["p01-rtr1"].pid
    assert runtime._alive(other, lab.hosts["p01-rtr1"].netns)
    assert not runtime._alive(other, lab.hosts[name].netns)
    runtime.wait_converged(lab)


def test_ansible_reaches_every_host_through_the_lab_view(lab: LabPlan,
                                                         lab_settings: Settings) -> None:
    view = runtime.LabPaths.of(lab_settings).ansible_inventory
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "-i", str(view), "all", "-m",
         "ansible.builtin.setup", "-a", "filter=ansible_hostname,ansible_service_mgr",
         "-o"],
        capture_output=True, text=True, timeout=180, cwd=REPO,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
             "ANSIBLE_DEPRECATION_WARNINGS": "False"})
    assert result.returncode == 0, result.stdout + result.stderr
    seen = {}
    for line in result.stdout.splitlines():
        name, _, rest = line.partition(" | SUCCESS => ")
        if rest:
            seen[name] = json.loads(rest)["ansible_facts"]
    assert set(seen) == set(lab.hosts)
    for name, facts in seen.items():
        assert facts["ansible_hostname"] == name
        assert facts["ansible_service_mgr"] != "systemd"  # no systemd here: sysvinit rules
