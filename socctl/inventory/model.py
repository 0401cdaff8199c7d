"""The built inventory: frozen, typed, fully resolved (addresses allocated, links wired).

Everything downstream (Ansible view, lab, drivers, collectors' enrichment) reads these
objects and never the YAML.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Literal

from socctl.errors import Location

Tier = Literal["dc", "ops", "province", "district"]
LinkKind = Literal["wan_primary", "wan_backup", "interconnect", "internet"]
TIERS: tuple[Tier, ...] = ("dc", "ops", "province", "district")


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    display: str
    tier: Tier
    profile: str
    region: str
    slot: int
    parent: str | None
    province: str | None  # official 2-digit code for provinces and their districts
    location: str
    subnets: dict[str, IPv4Network]
    source: Location
    security_level: int = 2


@dataclass(frozen=True, slots=True)
class Interface:
    """One end of a routed link, as the device sees it."""

    name: str
    link: str
    kind: LinkKind
    address: IPv4Interface
    peer_device: str
    peer_address: IPv4Address
    cost: int


@dataclass(frozen=True, slots=True)
class Device:
    name: str
    site: str
    role: str
    kind: str
    platform: str
    index: int
    management: IPv4Interface
    loopback: IPv4Address | None
    services: tuple[str, ...]
    source: Location
    interfaces: tuple[Interface, ...] = ()
    systems: tuple[str, ...] = ()
    security_level: int = 2


@dataclass(frozen=True, slots=True)
class Link:
    name: str
    kind: LinkKind
    a_site: str
    a_device: str | None
    z_site: str | None
    z_device: str | None
    carrier: str
    bandwidth_mbps: int
    source: Location
    subnet: IPv4Network | None = None
    a_address: IPv4Interface | None = None
    z_address: IPv4Interface | None = None
    cost: int = 10


@dataclass(frozen=True, slots=True)
class System:
    id: str
    name: str
    name_vi: str
    level: int
    target_level: int | None
    runs_at: tuple[str, ...]
    roles: tuple[str, ...]
    internet_facing: bool
    source: Location

    @property
    def effective_level(self) -> int:
        """Controls follow the level a system is being raised to, not only today's."""
        return max(self.level, self.target_level or 0)


@dataclass(frozen=True, slots=True)
class Inventory:
    profile: str
    organisation: dict[str, str]
    sites: dict[str, Site]
    devices: dict[str, Device]
    links: dict[str, Link]
    systems: dict[str, System]
    roles: dict[str, str] = field(default_factory=dict)  # role -> description
    management_gateway: IPv4Address | None = None

    def site_devices(self, site: str) -> Iterator[Device]:
        return (d for d in self.devices.values() if d.site == site)
