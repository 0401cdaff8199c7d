"""Raw content schema of inventory/: what the YAML files may say.

These pydantic models only check shape and value ranges; cross-file consistency
(overlaps, dangling references, missing links) is checked after the build, in
:mod:`socctl.inventory.checks`.
"""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from socctl.inventory.platforms import PLATFORMS

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")]
RoleName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,30}$")]
Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,30}$")]
ProvinceCode = Annotated[str, Field(pattern=r"^\d{2}$")]
Cidr = IPv4Network
Level = Annotated[int, Field(ge=1, le=5)]
Bandwidth = Annotated[int, Field(gt=0, le=400_000)]
Region = Literal[
    "red_river_delta",
    "northern_midlands_mountains",
    "north_central_coast",
    "central_highlands",
    "southeast",
    "mekong_delta",
]
Tier = Literal["dc", "ops", "province", "district"]
PoolName = Literal["lan", "management", "loopback", "wan_primary", "wan_backup", "interconnect"]
SiteProfile = Literal["dc_primary", "dc_dr", "ops", "province", "district"]
Service = Literal["sshd", "frr", "snmpd", "rsyslog", "postgresql", "nginx", "postfix"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class PoolSpec(Strict):
    """One address pool. ``slot`` pools give each site the subnet at the site's slot;
    ``sequential`` pools hand out subnets in site order (small labs)."""

    cidr: Cidr
    prefix: Annotated[int, Field(ge=8, le=32)]
    mode: Literal["slot", "sequential"] = "slot"
    offset: Annotated[int, Field(ge=0, le=1000)] = 0


class Addressing(Strict):
    slot_base: dict[Literal["province", "district"], Annotated[int, Field(ge=0)]] = {
        "province": 100,
        "district": 1000,
    }
    district_stride: Annotated[int, Field(ge=1, le=256)] = 40
    pools: dict[PoolName, dict[Literal["all", "dc", "ops", "province", "district"], PoolSpec]]


class RoleSpec(Strict):
    abbr: Annotated[str, Field(pattern=r"^[a-z]{2,6}$")]
    kind: Literal["router", "switch", "firewall", "server", "appliance", "load_balancer"]
    description: str
    loopback: bool = False
    wan_terminating: bool = False
    services: list[Service] = []


class DeviceTemplate(Strict):
    role: RoleName
    platform: str
    count: Annotated[int, Field(ge=1, le=64)] = 1

    @field_validator("platform")
    @classmethod
    def _known_platform(cls, value: str) -> str:
        if value not in PLATFORMS:
            raise ValueError(
                f"unknown platform {value!r}; valid platforms: {', '.join(sorted(PLATFORMS))}"
            )
        return value


class WanSpec(Strict):
    hub: str  # a site name, or "parent"
    hub_device: Annotated[int, Field(ge=1, le=8)] = 1
    carrier: str
    bandwidth_mbps: Bandwidth
    cost: Annotated[int, Field(ge=1, le=65535)]


class WanPair(Strict):
    primary: WanSpec | None = None
    backup: WanSpec | None = None


class InternetSpec(Strict):
    count: Annotated[int, Field(ge=0, le=16)]
    bandwidth_mbps: Bandwidth
    carriers: list[str] = Field(min_length=1)


class Profile(Strict):
    description: str
    extends: str | None = None
    sites: list[Name] | None = None
    addressing: Addressing | None = None
    devices: dict[SiteProfile, list[DeviceTemplate]] | None = None
    wan: dict[Literal["province", "district"], WanPair] | None = None
    internet: dict[SiteProfile, InternetSpec] | None = None
    services: dict[RoleName, list[Service]] | None = None


class ProfilesFile(Strict):
    roles: dict[RoleName, RoleSpec]
    profiles: dict[Name, Profile]


class CentralSite(Strict):
    name: Name
    display: str
    tier: Literal["dc", "ops"]
    profile: SiteProfile
    location: str
    region: Region
    slot: Annotated[int, Field(ge=0, le=99)]
    parent: Name | None = None


class LinkSpec(Strict):
    name: Name
    kind: Literal["interconnect"]
    a: Name
    z: Name
    carrier: str
    bandwidth_mbps: Bandwidth
    cost: Annotated[int, Field(ge=1, le=65535)] = 10


class Organisation(Strict):
    name: str
    name_vi: str
    short: str
    domain: str


class NationalFile(Strict):
    organisation: Organisation
    central: list[CentralSite]
    links: list[LinkSpec] = []


class WanOverride(Strict):
    carrier: str | None = None
    bandwidth_mbps: Bandwidth | None = None


class WanOverrides(Strict):
    primary: WanOverride | None = None
    backup: WanOverride | Literal["none"] | None = None


class Province(Strict):
    code: ProvinceCode
    name: str
    slug: Slug
    region: Region
    parent: Name | None = None
    wan: WanOverrides | None = None
    districts: list[str] = Field(min_length=1)


class ProvincesFile(Strict):
    provinces: list[Province]


class SystemSpec(Strict):
    id: Name
    name: str
    name_vi: str
    level: Annotated[int, Field(ge=2, le=4)]
    target_level: Annotated[int, Field(ge=2, le=5)] | None = None
    runs_at: list[Name] = Field(min_length=1)
    roles: list[RoleName] = Field(min_length=1)
    internet_facing: bool = False


class SystemsFile(Strict):
    systems: list[SystemSpec]
