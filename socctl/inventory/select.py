"""Device selection shared by every command that acts on a subset of the estate."""

from __future__ import annotations

from dataclasses import dataclass

from socctl.errors import InventoryError
from socctl.inventory.model import TIERS, Device, Inventory


@dataclass(frozen=True, slots=True)
class Selection:
    """AND of the given filters; each filter is a set of accepted values (OR)."""

    tiers: tuple[str, ...] = ()
    provinces: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in (
            ("tier", self.tiers), ("province", self.provinces), ("site", self.sites),
            ("role", self.roles), ("platform", self.platforms), ("name", self.names)) if v}


def _check(kind: str, wanted: tuple[str, ...], valid: set[str]) -> None:
    unknown = [w for w in wanted if w not in valid]
    if unknown:
        shown = sorted(valid)
        more = f", ... ({len(shown)} in all)" if len(shown) > 12 else ""
        raise InventoryError(
            f"unknown {kind} {unknown[0]!r}",
            hint=f"valid: {', '.join(shown[:12])}{more}",
        )


def select(inventory: Inventory, selection: Selection) -> list[Device]:
    """Devices matching ``selection``, in inventory order; unknown values are errors."""
    _check("tier", selection.tiers, set(TIERS))
    provinces = {s.province for s in inventory.sites.values() if s.province}
    _check("province", selection.provinces, provinces)
    _check("site", selection.sites, set(inventory.sites))
    _check("role", selection.roles, {d.role for d in inventory.devices.values()})
    _check("platform", selection.platforms, {d.platform for d in inventory.devices.values()})
    _check("device", selection.names, set(inventory.devices))
    out: list[Device] = []
    for device in inventory.devices.values():
        site = inventory.sites[device.site]
        if selection.tiers and site.tier not in selection.tiers:
            continue
        if selection.provinces and site.province not in selection.provinces:
            continue
        if selection.sites and device.site not in selection.sites:
            continue
        if selection.roles and device.role not in selection.roles:
            continue
        if selection.platforms and device.platform not in selection.platforms:
            continue
        if selection.names and device.name not in selection.names:
            continue
        out.append(device)
    return out
