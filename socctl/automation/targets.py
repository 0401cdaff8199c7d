"""Which hosts a playbook's plays run on, from their ``hosts:`` patterns and the
inventory's groups.

A rollout cuts the selected hosts into waves, canary first. A selected host no play
targets (a FortiGate, an F5: the playbooks do not manage them) used to be a wave's
member all the same: as the canary it "passed" without a task run, and in the failure
budget it counted as a success. The rollout now runs only the hosts some play targets,
and reports the others as not managed by the playbook.

The patterns are evaluated as Ansible does (tests/unit/test_rollout_targets.py checks
against ``ansible-playbook --list-hosts``): terms split on ``:`` and ``,``; the plain
terms are a union, then each ``&term`` intersects and each ``!term`` removes. A pattern
beyond group and host names (a wildcard, a regex, a template) cannot be read here: then
every selected host is run, as before.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from socctl.errors import ConfigError, Location
from socctl.inventory import Inventory
from socctl.inventory.ansible import groups

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _members(inventory: Inventory) -> dict[str, set[str]]:
    shape = groups(inventory)
    out: dict[str, set[str]] = {}

    def hosts_of(name: str) -> set[str]:
        if name not in out:
            group = shape.get(name, {})
            found = set(group.get("hosts", []))
            for child in group.get("children", []):
                found |= hosts_of(child)
            out[name] = found
        return out[name]

    for name in shape:
        hosts_of(name)
    out["all"] = set(inventory.devices)
    return out


def _pattern_hosts(pattern: str, members: dict[str, set[str]],
                   names: set[str]) -> set[str] | None:
    terms = [t.strip() for t in re.split(r"[:,]", pattern) if t.strip()]
    union: set[str] = set()
    narrow: list[tuple[str, set[str]]] = []
    for term in terms:
        op, name = (term[0], term[1:]) if term[0] in "&!" else ("", term)
        if not _NAME.match(name):
            return None
        hosts = members.get(name, {name} & names)
        if op:
            narrow.append((op, hosts))
        else:
            union |= hosts
    for op, hosts in narrow:
        union = union & hosts if op == "&" else union - hosts
    return union


def playbook_hosts(playbook: Path, inventory: Inventory) -> set[str] | None:
    """Every host some play of ``playbook`` (and the playbooks it imports) runs on, or
    None when a play's pattern cannot be evaluated here."""
    members = _members(inventory)
    names = set(inventory.devices)

    def walk(path: Path, seen: tuple[Path, ...]) -> set[str] | None:
        try:
            plays: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read the playbook: {exc}", Location.of(path)) from None
        found: set[str] = set()
        for play in plays if isinstance(plays, list) else []:
            if not isinstance(play, dict):
                continue
            imported = play.get("import_playbook") or play.get("ansible.builtin.import_playbook")
            if imported:
                child = (path.parent / str(imported)).resolve()
                if child in seen or "{{" in str(imported):
                    return None
                hosts = walk(child, (*seen, child))
            else:
                pattern = play.get("hosts")
                if isinstance(pattern, list):
                    pattern = ",".join(str(p) for p in pattern)
                if not isinstance(pattern, str) or "{{" in pattern:
                    return None
                hosts = _pattern_hosts(pattern, members, names)
            if hosts is None:
                return None
            found |= hosts
        return found

    return walk(playbook.resolve(), (playbook.resolve(),))
