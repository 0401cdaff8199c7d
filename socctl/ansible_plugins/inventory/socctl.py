"""Ansible inventory plugin: Ansible reads socctl's inventory model directly.

Loaded by ansible.cfg (``inventory_plugins``); the source file is ``inventory/socctl.yml``
(or the lab's generated one). No copy of the inventory is generated, so nothing drifts.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: socctl
short_description: socctl's national inventory (sites, devices, links) for Ansible
description:
  - Builds the inventory with socctl's own loader and exposes every device with its
    groups (tier, role, platform, site, province) and socctl_* host variables.
options:
  plugin:
    description: Must be C(socctl).
    required: true
    choices: [socctl]
  profile:
    description: Inventory profile (national, lab, ...).
    type: str
    default: national
  inventory_dir:
    description: Folder with the inventory YAML files; default the source file's folder.
    type: str
  host_vars:
    description: Variables added to every host (e.g. connection settings of the lab).
    type: dict
    default: {}
"""

from pathlib import Path
from typing import Any

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin


class InventoryModule(BaseInventoryPlugin):  # type: ignore[misc]
    NAME = "socctl"

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith(("socctl.yml", "socctl.yaml"))

    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        from socctl.errors import SocctlError
        from socctl.inventory import load_inventory
        from socctl.inventory.ansible import groups, host_vars

        folder = self.get_option("inventory_dir") or str(Path(path).parent)
        try:
            model = load_inventory(Path(folder), self.get_option("profile"))
        except SocctlError as exc:
            raise AnsibleParserError(f"socctl inventory: {exc}") from exc
        extra = self.get_option("host_vars") or {}
        for device in model.devices.values():
            self.inventory.add_host(device.name)
            for key, value in {**host_vars(model, device), **extra}.items():
                self.inventory.set_variable(device.name, key, value)
        for group, body in groups(model).items():
            self.inventory.add_group(group)
            for host in body["hosts"]:
                self.inventory.add_host(host, group=group)
            for child in body.get("children", []):
                self.inventory.add_group(child)
                self.inventory.add_child(group, child)
