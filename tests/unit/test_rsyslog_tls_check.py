"""The common role refuses to configure a sender whose TLS settings its log collector does
not share: such a pair never connects, and rsyslog says so only in its own log while the
messages wait in the disk queue. Real ansible-playbook runs the role's check tasks on
localhost (connection local, nothing changed); no root, no rsyslog needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO

COLLECTORS: dict[str, dict[str, Any]] = {
    "c-plain": {},
    "c-tls": {"log_collector_tls_cert_file": "/etc/ssl/collector.pem",
              "log_collector_tls_key_file": "/etc/ssl/private/collector.key"},
    "c-peers": {"log_collector_tls_cert_file": "/etc/ssl/collector.pem",
                "log_collector_tls_key_file": "/etc/ssl/private/collector.key",
                "log_collector_tls_ca_file": "/etc/ssl/ca.pem",
                "log_collector_tls_peers": ["*.vss.internal"]},
}
CHECK = "Check that the collector speaks the TLS this host sends"
CA = {"common_rsyslog_tls_ca_file": "/etc/ssl/ca.pem"}
CLIENT = {"common_rsyslog_tls_cert_file": "/etc/ssl/me.pem",
          "common_rsyslog_tls_key_file": "/etc/ssl/private/me.key"}
# sender -> (its collector, its settings, the reason the check gives, or None if it passes)
SENDERS: dict[str, tuple[str, dict[str, Any], str | None]] = {
    "tls-to-plain": ("c-plain", {**CA}, "the collector has no log_collector_tls_cert_file"),
    "plain-relp-to-tls": ("c-tls", {}, "this host has no common_rsyslog_tls_ca_file"),
    "no-cert-to-peers": ("c-peers", {**CA}, "this host has no common_rsyslog_tls_cert_file"),
    "cert-to-peers": ("c-peers", {**CA, **CLIENT}, None),
    "tls-to-tls": ("c-tls", {**CA}, None),
    "plain-tcp-to-tls": ("c-tls", {"common_rsyslog_protocol": "tcp"}, None),
    "plain-relp-to-plain": ("c-plain", {}, None),
    "tls-tcp-to-plain": ("c-plain", {**CA, "common_rsyslog_protocol": "tcp"},
                         "the collector has no log_collector_tls_cert_file"),
    # the other DC's collector gets a copy of each message: it is checked too
    "tls-to-tls-and-plain": ("c-plain", {**CA, "socctl_log_collector": "c-tls",
                                         "socctl_log_collector_second": "c-plain",
                                         "common_rsyslog_second_target": "198.18.0.11"},
                             "the collector has no log_collector_tls_cert_file"),
    "tls-to-tls-and-peers": ("c-peers", {**CA, **CLIENT, "socctl_log_collector": "c-tls",
                                         "socctl_log_collector_second": "c-peers",
                                         "common_rsyslog_second_target": "198.18.0.11"},
                             None),
}


def test_the_common_role_fails_a_sender_whose_tls_its_collector_does_not_share(
        tmp_path: Path) -> None:
    hosts: dict[str, Any] = {name: {"ansible_connection": "local", **vars_}
                             for name, vars_ in COLLECTORS.items()}
    for name, (collector, vars_, _) in SENDERS.items():
        hosts[name] = {"ansible_connection": "local", "socctl_log_collector": collector,
                       "common_rsyslog_target": "198.18.0.10", **vars_}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    (tmp_path / "check.yml").write_text(yaml.safe_dump([{
        "name": "TLS agreement", "hosts": sorted(SENDERS), "gather_facts": False,
        "tasks": [{"ansible.builtin.include_role": {
            "name": "common", "tasks_from": "rsyslog_tls_check.yml"}}]}]))
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    env = {**os.environ, "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"),
           "ANSIBLE_ROLES_PATH": str(REPO / "playbooks" / "roles"),
           "ANSIBLE_STDOUT_CALLBACK": "json", "ANSIBLE_INVENTORY_ENABLED": "yaml",
           "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i",
         str(tmp_path / "hosts.yml"), str(tmp_path / "check.yml")],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    data = json.loads(proc.stdout[proc.stdout.index("{"):])
    stats = data["stats"]
    results: dict[str, dict[str, Any]] = {}
    for task in data["plays"][0]["tasks"]:
        if task["task"]["name"].endswith(CHECK):
            results = task["hosts"]
    assert set(results) == set(SENDERS), proc.stdout[-3000:] + proc.stderr[-2000:]
    for name, (collector, _, reason) in SENDERS.items():
        if reason is None:
            assert not results[name].get("failed"), (name, results[name])
            assert stats[name]["failures"] == 0
        else:
            assert results[name].get("failed"), (name, results[name])
            failed = [r for r in results[name].get("results", [results[name]])
                      if r.get("failed")]
            assert len(failed) == 1, (name, results[name])
            message = failed[0]["msg"]
            assert reason in message and collector in message and name in message, message
    assert proc.returncode != 0  # the run fails when any host does
