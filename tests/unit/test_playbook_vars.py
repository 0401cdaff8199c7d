"""The playbooks' shared variables (playbooks/group_vars/all.yml) as Ansible itself
resolves them for an inventory: run by real ``ansible`` on the controller, no hosts
contacted (the debug module runs locally)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

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
    collector in the primary DC, the first there is. A copy of each message goes to the
    first collector of another site."""
    inventory = tmp_path / "hosts.yml"
    both = {"dc-primary-log2": {"socctl_site": "dc-primary"},
            "dc-dr-log1": {"socctl_site": "dc-dr"},
            "dc-primary-log1": {"socctl_site": "dc-primary"}, "p01-rtr1": {"socctl_site": "p01"}}
    inventory.write_text(yaml.safe_dump({"all": {"hosts": both, "children": {
        "role_log_collector": {"hosts": {h: {} for h in both if "log" in h}},
        "site_dc_primary": {"hosts": {"dc-primary-log1": {}, "dc-primary-log2": {}}},
        "site_dc_dr": {"hosts": {"dc-dr-log1": {}}}}}}))
    assert resolve(inventory, "p01-rtr1", "socctl_log_collector", 1) == "dc-primary-log1"
    # the copy goes to the other DC's collector, not to the primary DC's second one
    assert resolve(inventory, "p01-rtr1", "socctl_log_collector_second", 1) == "dc-dr-log1"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {
        "dc-dr-log2": {"socctl_site": "dc-dr"}, "dc-dr-log1": {"socctl_site": "dc-dr"}},
        "children": {"role_log_collector": {"hosts": {"dc-dr-log2": {}, "dc-dr-log1": {}}},
                     "site_dc_dr": {"hosts": {"dc-dr-log2": {}, "dc-dr-log1": {}}}}}}))
    assert resolve(inventory, "dc-dr-log2", "socctl_log_collector", 1) == "dc-dr-log1"
    assert resolve(inventory, "dc-dr-log2", "socctl_log_collector_second", 1) == ""


ROLE_PLAY = """
- hosts: all
  gather_facts: false
  vars: {{template: roles/{role}/templates/{template}}}
  tasks:
    - ansible.builtin.copy:
        content: "{{{{ lookup('ansible.builtin.template', template) }}}}"
        dest: "{{{{ out }}}}/{{{{ inventory_hostname }}}}"
        mode: "0600"
"""


def render_role(tmp_path: Path, role: str, template: str, hosts: dict[str, dict[str, Any]]
                ) -> dict[str, str]:
    """A role's template for each host, as Ansible renders it with the role's defaults
    and the playbooks' group_vars (no host contacted: the file is written here). The
    defaults are the inventory's ``all`` vars, so that a host's own vars override them as
    they do in a role."""
    for name in ("group_vars", "roles"):
        (tmp_path / name).symlink_to(REPO / "playbooks" / name)
    (tmp_path / "play.yml").write_text(ROLE_PLAY.format(role=role, template=template))
    defaults = yaml.safe_load((REPO / "playbooks" / "roles" / role / "defaults" / "main.yml"
                               ).read_text()) or {}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"vars": defaults, "hosts": {
        host: {**variables, "ansible_python_interpreter": sys.executable}
        for host, variables in hosts.items()}}}))
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "ANSIBLE_INVENTORY_ENABLED": "yaml",
           "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    done = subprocess.run([str(Path(ANSIBLE).with_name("ansible-playbook")), "-i",
                           str(tmp_path / "hosts.yml"), "-c", "local", str(tmp_path / "play.yml"),
                           "-e", f"out={out}", "-e", "ansible_managed=test"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return {host: (out / host).read_text() for host in hosts}


def firewall_rules(tmp_path: Path, roles: dict[str, str]) -> dict[str, str]:
    return render_role(tmp_path, "firewall", "socctl.nft.j2", {
        host: {"socctl_role": role, "socctl_tier": "dc", "socctl_platform": "linux"}
        for host, role in roles.items()})


def nft_check(tmp_path: Path, rules: dict[str, str]) -> None:
    """Each host's rule file checked by nft itself, where it can run (root)."""
    nft = shutil.which("nft") or "/usr/sbin/nft"
    if os.geteuid() == 0 and Path(nft).exists():
        for host, text in rules.items():
            path = tmp_path / f"{host}.check.nft"
            path.write_text(text)
            check = subprocess.run([nft, "-c", "-f", str(path)], capture_output=True,
                                   text=True)
            assert check.returncode == 0, f"{host}: {check.stderr}"


@pytest.mark.skipif(not Path(ANSIBLE).exists(), reason="needs ansible (pip, ./dev)")
def test_each_servers_firewall_opens_the_services_it_offers(tmp_path: Path) -> None:
    """Input is dropped by default, so a role the firewall role knew no services of
    (web, application, mail, proxy and monitoring servers) lost them when provisioned.
    Each rule file is checked by nft itself where it can run (root)."""
    rules = firewall_rules(tmp_path, {"web1": "web_server", "app1": "app_server",
                                      "mail1": "mail_server", "proxy1": "proxy",
                                      "mon1": "monitoring_server", "db1": "db_server",
                                      "bk1": "backup_server", "log1": "log_collector"})
    accepts = {host: [line.strip() for line in text.splitlines()
                      if "dport" in line and "accept" in line] for host, text in rules.items()}
    # what every host has (ssh and SNMP from the operations centre) and nothing else
    assert all(len([a for a in accepts[h] if "@management" in a]) == 2 for h in rules)
    opened = {host: sorted(a.split("dport ")[1].split()[0] for a in found
                           if "@management" not in a) for host, found in accepts.items()}
    assert opened == {"web1": ["443", "80"], "app1": ["8080"], "mail1": ["25", "587", "993"],
                      "proxy1": ["3128"], "mon1": ["162", "443"], "db1": ["5433"],
                      "bk1": [], "log1": ["2514", "514", "514", "6514"]}
    # a Cisco router's `logging host` is UDP only
    assert any(a.startswith("ip saddr { 10.0.0.0/8 } udp dport 514 ") for a in accepts["log1"])
    # the public portal and inbound mail from anywhere; the rest only from the agency
    assert [a for a in accepts["web1"] if "saddr" not in a] == accepts["web1"][2:]
    assert "saddr { 10.0.0.0/8 } tcp dport 8080" in accepts["app1"][2]
    nft_check(tmp_path, rules)


@pytest.mark.skipif(not Path(ANSIBLE).exists(), reason="needs ansible (pip, ./dev)")
def test_dropped_packets_are_logged_per_source_to_the_kernel_or_to_ulogd(
        tmp_path: Path) -> None:
    """One limit of 10 a minute for the whole host logged at most 15 drops of a scan's
    minute, and fw_port_scan alerts at 15 ports in a minute: no scan of a provisioned host
    could alert. Now each source is logged up to its own rate, under a cap for the host; to
    the kernel log, or (the lab's hosts) by NFLOG to ulogd2, whose configuration names the
    same group. The lab test scans a router and counts what reaches the collector."""
    hosts = {"rtr1": {"socctl_role": "edge_router", "socctl_tier": "province",
                      "socctl_platform": "linux"},
             "lab1": {"socctl_role": "edge_router", "socctl_tier": "province",
                      "socctl_platform": "linux", "firewall_log_target": "nflog"},
             "quiet1": {"socctl_role": "edge_router", "socctl_tier": "province",
                        "socctl_platform": "linux", "firewall_log_drops": False}}
    rules = render_role(tmp_path, "firewall", "socctl.nft.j2", hosts)
    logged = {host: [line.strip() for line in text.splitlines() if " log prefix " in line]
              for host, text in rules.items()}
    assert logged["quiet1"] == [] and "drop_log" not in rules["quiet1"]
    for host, target in (("rtr1", 'level info'), ("lab1", 'group 5')):
        assert [line.split(" limit name ")[0] for line in logged[host]] == [
            "update @drop_log4 { ip saddr limit rate 60/minute burst 60 packets }",
            "update @drop_log6 { ip6 saddr limit rate 60/minute burst 60 packets }"], host
        assert all(line.endswith(f'limit name "drop_log" log prefix "socctl-fw drop: " {target}')
                   for line in logged[host]), logged[host]
        assert "limit drop_log { rate 1200/minute burst 300 packets }" in rules[host]
    (tmp_path / "ulogd").mkdir()
    (ulogd,) = render_role(tmp_path / "ulogd", "firewall", "ulogd.conf.j2",
                           {"lab1": hosts["lab1"]}).values()
    assert "\n[log1]\ngroup=5\n" in ulogd and ":NFLOG," in ulogd and ulogd.count("stack=") == 1
    nft_check(tmp_path, rules)


@pytest.mark.skipif(not Path(ANSIBLE).exists(), reason="needs ansible (pip, ./dev)")
def test_production_databases_take_replication_only_from_the_agencys_networks(
        tmp_path: Path) -> None:
    """The role's defaults held the lab's networks: outside the lab pg_hba let
    198.19.0.0/16 replicate and 198.18.0.0/15 log in, and the agency's own networks not."""
    (prod,) = render_role(tmp_path, "postgresql", "pg_hba.conf.j2",
                          {"db1": {"socctl_role": "db_server"}}).values()
    rules = [line.split() for line in prod.splitlines() if line.startswith("host")]
    assert {r[3] for r in rules if r[1] == "replication"} == {"10.0.0.0/8"}
    assert "198.1" not in prod
