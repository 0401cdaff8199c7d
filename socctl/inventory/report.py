"""Summaries and descriptions of the inventory, as plain data for any renderer."""

from __future__ import annotations

import difflib
from collections import Counter
from typing import Any

from socctl.errors import InventoryError
from socctl.inventory.ansible import host_vars
from socctl.inventory.model import TIERS, Device, Inventory, Site


def summary(inv: Inventory) -> dict[str, Any]:
    sites = Counter(s.tier for s in inv.sites.values())
    links = Counter(link.kind for link in inv.links.values())
    levels = Counter(s.effective_level for s in inv.systems.values())
    return {
        "profile": inv.profile,
        "sites": {tier: sites.get(tier, 0) for tier in TIERS},
        "devices": len(inv.devices),
        "links": len(inv.links),
        "links_by_kind": dict(sorted(links.items())),
        "devices_by_tier": dict(Counter(inv.sites[d.site].tier for d in inv.devices.values())),
        "devices_by_role": dict(sorted(Counter(d.role for d in inv.devices.values()).items())),
        "devices_by_platform": dict(
            sorted(Counter(d.platform for d in inv.devices.values()).items())),
        "systems": len(inv.systems),
        "systems_by_level": {str(k): v for k, v in sorted(levels.items())},
    }


def device_row(inv: Inventory, device: Device) -> dict[str, Any]:
    site = inv.sites[device.site]
    return {
        "name": device.name,
        "site": site.name,
        "tier": site.tier,
        "province": site.province,
        "role": device.role,
        "platform": device.platform,
        "management": str(device.management.ip),
        "security_level": device.security_level,
    }


def _site_dict(inv: Inventory, site: Site) -> dict[str, Any]:
    return {
        "kind": "site",
        "name": site.name,
        "display": site.display,
        "tier": site.tier,
        "region": site.region,
        "province": site.province,
        "parent": site.parent,
        "location": site.location,
        "slot": site.slot,
        "security_level": site.security_level,
        "subnets": {k: str(v) for k, v in site.subnets.items()},
        "devices": [d.name for d in inv.site_devices(site.name)],
        "links": [
            {"name": lk.name, "kind": lk.kind, "carrier": lk.carrier,
             "bandwidth_mbps": lk.bandwidth_mbps,
             "subnet": str(lk.subnet) if lk.subnet else None,
             "peer": lk.z_device if lk.a_site == site.name else lk.a_device}
            for lk in inv.links.values() if site.name in (lk.a_site, lk.z_site)
        ],
        "source": str(site.source),
    }


def describe(inv: Inventory, name: str) -> dict[str, Any]:
    """Everything known about a site or device; an unknown name suggests close ones."""
    if name in inv.sites:
        return _site_dict(inv, inv.sites[name])
    if name in inv.devices:
        device = inv.devices[name]
        return {"kind": "device", **device_row(inv, device),
                "vars": host_vars(inv, device), "source": str(device.source)}
    close = difflib.get_close_matches(name, [*inv.sites, *inv.devices], n=5)
    raise InventoryError(
        f"no site or device named {name!r} in profile {inv.profile}",
        hint=f"did you mean: {', '.join(close)}" if close else
        "see 'socctl inventory list'",
    )
