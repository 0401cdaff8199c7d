"""The Ansible view of the inventory: the same model, never a generated copy.

:func:`ansible_inventory` returns the JSON shape of ``ansible-inventory --list``; the
inventory plugin (socctl/ansible_plugins/inventory/socctl.py) feeds the same groups and
host variables to Ansible through its API.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from socctl.inventory.model import Device, Inventory
from socctl.inventory.platforms import PLATFORMS


def host_vars(inventory: Inventory, device: Device) -> dict[str, Any]:
    site = inventory.sites[device.site]
    platform = PLATFORMS[device.platform]
    hv: dict[str, Any] = {
        "ansible_host": str(device.management.ip),
        "socctl_site": site.name,
        "socctl_site_display": site.display,
        "socctl_tier": site.tier,
        "socctl_region": site.region,
        "socctl_province": site.province,
        "socctl_role": device.role,
        "socctl_platform": device.platform,
        "socctl_management": str(device.management),
        "socctl_loopback": str(device.loopback) if device.loopback else None,
        "socctl_lan": str(site.subnets["lan"]) if "lan" in site.subnets else None,
        "socctl_services": list(device.services),
        "socctl_security_level": device.security_level,
        "socctl_systems": list(device.systems),
        "socctl_location": site.location,
        "socctl_interfaces": [
            {
                "name": i.name,
                "link": i.link,
                "kind": i.kind,
                "address": str(i.address),
                "peer": i.peer_device,
                "peer_address": str(i.peer_address),
                "cost": i.cost,
            }
            for i in device.interfaces
        ],
    }
    if platform.ansible_connection != "ssh":
        hv["ansible_connection"] = platform.ansible_connection
    if platform.ansible_network_os:
        hv["ansible_network_os"] = platform.ansible_network_os
    return hv


def groups(inventory: Inventory) -> dict[str, dict[str, Any]]:
    """Group name -> {"hosts": [...], "children": [...]}.

    Groups: ``tier_<tier>``, ``role_<role>``, ``platform_<platform>``, ``site_<site>``,
    ``province_<code>`` (the province's own devices and its districts'), and ``central``
    (both DCs and the operations centre).
    """
    hosts: dict[str, list[str]] = defaultdict(list)
    for device in inventory.devices.values():
        site = inventory.sites[device.site]
        hosts[f"tier_{site.tier}"].append(device.name)
        hosts[f"role_{device.role}"].append(device.name)
        hosts[f"platform_{device.platform}"].append(device.name)
        hosts[f"site_{site.name.replace('-', '_')}"].append(device.name)
        if site.province:
            hosts[f"province_{site.province}"].append(device.name)
    out: dict[str, dict[str, Any]] = {name: {"hosts": members} for name, members in
                                      sorted(hosts.items())}
    central = [t for t in ("tier_dc", "tier_ops") if t in out]
    if central:
        out["central"] = {"hosts": [], "children": central}
    return out


def ansible_inventory(inventory: Inventory, extra_vars: dict[str, Any] | None = None
                      ) -> dict[str, Any]:
    """The ``ansible-inventory --list`` JSON for this inventory."""
    group_map = groups(inventory)
    result: dict[str, Any] = {
        "_meta": {
            "hostvars": {
                d.name: {**host_vars(inventory, d), **(extra_vars or {})}
                for d in inventory.devices.values()
            }
        },
        "all": {"children": ["ungrouped", *[g for g in group_map if g != "central"]]},
        "ungrouped": {"hosts": []},
    }
    for name, body in group_map.items():
        result[name] = body
    return result
