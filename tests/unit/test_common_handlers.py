"""The common role's audit handler as ansible-playbook runs it on this machine.

The kernel's audit state cannot be set here (`-e 2` would lock this machine's audit rules
until it reboots, and the lab shares its kernel), so auditctl and augenrules are stand-ins
on a temporary path that answer as the real ones do (auditctl -s prints `enabled 2` on an
immutable kernel, and auditctl -R, which augenrules --load runs, then fails); Ansible and
the role's handler are real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")

PLAY = """
- hosts: localhost
  gather_facts: false
  vars:
    common_auditd_enabled: true
    common_augenrules: {bin}/augenrules
    common_auditctl: {bin}/auditctl
  handlers:
    - ansible.builtin.import_tasks: {handlers}
  tasks:
    - name: Change the audit rules
      ansible.builtin.command: "true"
      changed_when: true
      notify: Load audit rules
"""

AUDITCTL = """#!/bin/sh
echo "enabled $(cat {state})"
echo "failure 1"
"""
AUGENRULES = """#!/bin/sh
echo "augenrules $*" >> {calls}
if [ "$1" = --load ] && [ "$(cat {state})" = 2 ]; then
  echo "The audit system is in immutable mode, no rule changes allowed" >&2; exit 1
fi
"""


def run(tmp_path: Path, enabled: int) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    state, calls = tmp_path / "state", tmp_path / "calls"
    state.write_text(f"{enabled}\n")
    for name, text in (("auditctl", AUDITCTL), ("augenrules", AUGENRULES)):
        (bin_dir / name).write_text(text.format(state=state, calls=calls))
        (bin_dir / name).chmod(0o755)
    play = tmp_path / "play.yml"
    play.write_text(PLAY.format(bin=bin_dir, handlers=REPO / "playbooks" / "roles" / "common"
                                / "handlers" / "main.yml"))
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_STDOUT_CALLBACK": "json", "ANSIBLE_INVENTORY_ENABLED": "host_list"}
    done = subprocess.run([PLAYBOOK, "-i", "localhost,", "-c", "local", str(play),
                           "-e", f"ansible_python_interpreter={sys.executable}"],
                          capture_output=True, text=True, env=env, timeout=300)
    return done, calls.read_text().splitlines() if calls.exists() else []


def said(stdout: str) -> list[str]:
    """What the handler's message task printed (none when it was skipped)."""
    return [result.get("msg", "") for play in json.loads(stdout)["plays"]
            for task in play["tasks"] if task["task"]["name"].startswith("Say when")
            for result in task["hosts"].values() if not result.get("skipped")]


@pytest.mark.skipif(not Path(PLAYBOOK).exists(), reason="needs ansible (pip, ./dev)")
def test_changed_audit_rules_on_an_immutable_host_wait_for_the_reboot(tmp_path: Path) -> None:
    """A level 3/4 host's rules end with -e 2: loading changed ones failed every later run.
    Now they are merged for the next boot, the run passes and says so."""
    done, calls = run(tmp_path, enabled=2)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert calls == ["augenrules "]
    assert said(done.stdout) == ["audit rules are immutable until reboot: the new ones load at "
                                 "the next boot"]


@pytest.mark.skipif(not Path(PLAYBOOK).exists(), reason="needs ansible (pip, ./dev)")
def test_changed_audit_rules_load_at_once_where_the_kernel_allows(tmp_path: Path) -> None:
    done, calls = run(tmp_path, enabled=1)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert calls == ["augenrules ", "augenrules --load"]
    assert said(done.stdout) == []
