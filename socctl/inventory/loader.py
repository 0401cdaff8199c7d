"""Build the inventory from inventory/*.yaml for one profile.

Loading never stops at the first problem: every file is read, every entry validated, and
every problem is collected with its file, line and field. :func:`load_inventory` raises
:class:`~socctl.errors.ValidationFailed` with all of them when any is an error;
:func:`build_inventory` returns them for ``socctl inventory check``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

from socctl.content import dotted, error, line_of, load_yaml, validate
from socctl.errors import Location, Problem, Severity, ValidationFailed
from socctl.inventory import schema as s
from socctl.inventory.checks import run_checks
from socctl.inventory.model import Device, Interface, Inventory, Link, Site, System

FILES = ("national.yaml", "profiles.yaml", "provinces.yaml", "systems.yaml")
DEFAULT_PROFILE = "national"
BASELINE_LEVEL = 2
"""Offices host none of the 22 systems but reach level-3 ones: level 2 is their floor."""


@dataclass
class _Raw:
    """Validated files plus the raw (line-annotated) data, for locating later problems."""

    paths: dict[str, Path] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    national: s.NationalFile | None = None
    profiles: s.ProfilesFile | None = None
    provinces: s.ProvincesFile | None = None
    systems: s.SystemsFile | None = None

    def loc(self, name: str, *path: int | str) -> Location:
        return Location.of(self.paths[name], line_of(self.data.get(name), path),
                           dotted(path) or None)


def _read(directory: Path) -> tuple[_Raw, list[Problem]]:
    raw = _Raw()
    problems: list[Problem] = []
    models: dict[str, type[s.Strict]] = {
        "national.yaml": s.NationalFile,
        "profiles.yaml": s.ProfilesFile,
        "provinces.yaml": s.ProvincesFile,
        "systems.yaml": s.SystemsFile,
    }
    if not directory.is_dir():
        problems.append(error(Location.of(directory), "inventory folder not found"))
        return raw, problems
    for name, model in models.items():
        path = directory / name
        raw.paths[name] = path
        if not path.is_file():
            problems.append(error(Location.of(path), f"missing inventory file {name}"))
            continue
        data, found = load_yaml(path)
        problems += found
        if data is None:
            continue
        raw.data[name] = data
        parsed, found = validate(model, data, path)
        problems += found
        attr = name.removesuffix(".yaml")
        setattr(raw, attr, parsed)
    return raw, problems


def _resolve_profile(
    raw: _Raw, name: str, problems: list[Problem]
) -> s.Profile | None:
    assert raw.profiles is not None
    profiles = raw.profiles.profiles
    if name not in profiles:
        problems.append(
            error(
                raw.loc("profiles.yaml", "profiles"),
                f"unknown profile {name!r}; valid profiles: {', '.join(sorted(profiles))}",
            )
        )
        return None
    chain: list[s.Profile] = []
    seen: set[str] = set()
    current: str | None = name
    while current is not None:
        if current in seen:
            problems.append(error(raw.loc("profiles.yaml", "profiles", current, "extends"),
                                  f"profile {current!r} extends itself (cycle)"))
            return None
        seen.add(current)
        if current not in profiles:
            problems.append(error(raw.loc("profiles.yaml", "profiles", name, "extends"),
                                  f"profile extends unknown profile {current!r}"))
            return None
        chain.append(profiles[current])
        current = profiles[current].extends
    merged: dict[str, Any] = {}
    for profile in reversed(chain):
        merged.update({k: v for k, v in profile if v is not None})
    result = s.Profile.model_validate(merged)
    for needed in ("addressing", "devices"):
        if getattr(result, needed) is None:
            problems.append(error(raw.loc("profiles.yaml", "profiles", name),
                                  f"profile {name!r} defines no {needed} (nor does its parent)"))
            return None
    return result


class _Allocator:
    """Hands out per-site subnets from the profile's pools, deterministically."""

    def __init__(self, addressing: s.Addressing, problems: list[Problem]) -> None:
        self.addressing = addressing
        self.problems = problems
        self.sequence: Counter[tuple[str, str]] = Counter()

    def spec(self, pool: str, tier: str) -> s.PoolSpec | None:
        specs = self.addressing.pools.get(pool)  # type: ignore[call-overload]
        if not specs:
            return None
        spec: s.PoolSpec | None = specs.get(tier) or specs.get("all")
        return spec

    def subnet(self, pool: str, tier: str, slot: int, owner: str, where: Location
               ) -> IPv4Network | None:
        spec = self.spec(pool, tier)
        if spec is None:
            return None
        if spec.prefix == spec.cidr.prefixlen:
            return spec.cidr  # one shared subnet: devices are numbered across sites
        if spec.prefix < spec.cidr.prefixlen:
            self.problems.append(error(where, f"pool {pool}/{tier}: prefix /{spec.prefix} is "
                                              f"larger than its cidr {spec.cidr}"))
            return None
        key = (pool, tier if tier in self.addressing.pools[pool] else "all")  # type: ignore[index]
        if spec.mode == "sequential":
            index = self.sequence[key]
            self.sequence[key] += 1
        else:
            index = slot
        size = 2 ** (32 - spec.prefix)
        start = int(spec.cidr.network_address) + index * size
        if start + size - 1 > int(spec.cidr.broadcast_address):
            self.problems.append(error(where, f"pool {pool} ({spec.cidr}, /{spec.prefix} per "
                                              f"site) has no room for {owner} at index {index}"))
            return None
        return IPv4Network((start, spec.prefix))


def _sites(raw: _Raw, profile: s.Profile, problems: list[Problem]) -> list[Site]:
    assert raw.national is not None and raw.provinces is not None
    addressing = profile.addressing
    assert addressing is not None
    sites: list[Site] = []
    for i, c in enumerate(raw.national.central):
        sites.append(Site(
            name=c.name, display=c.display, tier=c.tier, profile=c.profile, region=c.region,
            slot=c.slot, parent=c.parent, province=None, location=c.location, subnets={},
            source=raw.loc("national.yaml", "central", i),
        ))
    province_base = addressing.slot_base.get("province", 100)
    district_base = addressing.slot_base.get("district", 1000)
    stride = addressing.district_stride
    for i, p in enumerate(raw.provinces.provinces):
        site_name = f"p{p.code}"
        where = raw.loc("provinces.yaml", "provinces", i)
        sites.append(Site(
            name=site_name, display=p.name, tier="province", profile="province",
            region=p.region, slot=province_base + int(p.code), parent=p.parent or "dc-primary",
            province=p.code, location=p.name, subnets={}, source=where,
        ))
        if len(p.districts) >= stride:
            problems.append(error(raw.loc("provinces.yaml", "provinces", i, "districts"),
                                  f"{len(p.districts)} districts exceed district_stride {stride}"))
        seen: dict[str, int] = {}
        for n, district in enumerate(p.districts, start=1):
            dloc = raw.loc("provinces.yaml", "provinces", i, "districts", n - 1)
            if district in seen:
                problems.append(error(dloc, f"district {district!r} listed twice in "
                                            f"{p.name} (first as #{seen[district]})"))
            seen.setdefault(district, n)
            sites.append(Site(
                name=f"{site_name}d{n:02d}", display=f"{district} ({p.name})", tier="district",
                profile="district", region=p.region,
                slot=district_base + int(p.code) * stride + n, parent=site_name,
                province=p.code, location=f"{district}, {p.name}", subnets={}, source=dloc,
            ))
    return sites


def _select_sites(sites: list[Site], profile: s.Profile, name: str, raw: _Raw,
                  problems: list[Problem]) -> list[Site]:
    if profile.sites is None:
        return sites
    by_name = {site.name: site for site in sites}
    selected: list[Site] = []
    for i, wanted in enumerate(profile.sites):
        if wanted not in by_name:
            problems.append(error(raw.loc("profiles.yaml", "profiles", name, "sites", i),
                                  f"profile selects unknown site {wanted!r}"))
        else:
            selected.append(by_name[wanted])
    return selected


def build_inventory(directory: Path, profile_name: str = DEFAULT_PROFILE
                    ) -> tuple[Inventory | None, list[Problem]]:
    """Load, build and check; returns the inventory (``None`` if unbuildable) and problems."""
    raw, problems = _read(directory)
    if raw.national is None or raw.profiles is None or raw.provinces is None:
        return None, problems
    profile = _resolve_profile(raw, profile_name, problems)
    if profile is None:
        return None, problems
    assert profile.addressing is not None and profile.devices is not None
    roles = raw.profiles.roles
    for key, templates in profile.devices.items():
        for j, template in enumerate(templates):
            if template.role not in roles:
                problems.append(error(
                    raw.loc("profiles.yaml", "profiles", profile_name, "devices", key, j, "role"),
                    f"unknown role {template.role!r}; valid roles: {', '.join(sorted(roles))}"))
    all_sites = _sites(raw, profile, problems)
    problems += _unique_sites(all_sites)
    sites = _select_sites(all_sites, profile, profile_name, raw, problems)
    problems += _check_management_pool(raw, profile, profile_name, {s.tier for s in sites})
    alloc = _Allocator(profile.addressing, problems)
    shared_index: Counter[str] = Counter()

    built_sites: dict[str, Site] = {}
    devices: dict[str, Device] = {}
    for site in sites:
        subnets: dict[str, IPv4Network] = {}
        for pool in ("lan", "management", "loopback"):
            net = alloc.subnet(pool, site.tier, site.slot, site.name, site.source)
            if net is not None:
                subnets[pool] = net
        site = replace(site, subnets=subnets)
        built_sites[site.name] = site
        templates = profile.devices.get(site.profile, [])  # type: ignore[call-overload]
        role_count: Counter[str] = Counter()
        loop_index = 0
        for j, template in enumerate(templates):
            role = roles.get(template.role)
            if role is None:
                continue
            where = raw.loc("profiles.yaml", "profiles", profile_name, "devices",
                            site.profile, j)
            for _ in range(template.count):
                role_count[template.role] += 1
                k = role_count[template.role]
                name = f"{site.name}-{role.abbr}{k}"
                mgmt = _address(alloc, "management", site, subnets, shared_index,
                                sum(role_count.values()) - 1, problems)
                loop: IPv4Address | None = None
                if role.loopback:
                    loop_index += 1
                    lo = _address(alloc, "loopback", site, subnets, shared_index,
                                  loop_index - 1, problems, first=1)
                    loop = lo.ip if lo else None
                services = tuple((profile.services or {}).get(template.role, role.services))
                if name in devices:
                    problems.append(error(where, f"duplicate device name {name!r}"))
                devices[name] = Device(
                    name=name, site=site.name, role=template.role, kind=role.kind,
                    platform=template.platform, index=k,
                    management=mgmt or IPv4Interface("0.0.0.0/32"), loopback=loop,
                    services=services, source=where,
                )
    links = _links(raw, profile, profile_name, built_sites, devices, alloc, problems)
    devices = _wire(devices, links)
    systems, devices, built_sites = _systems(raw, built_sites, devices, roles, problems)
    gateway = None
    mspec = alloc.spec("management", "all")
    if mspec is not None and mspec.prefix == mspec.cidr.prefixlen:
        gateway = mspec.cidr.network_address + 1
    assert raw.national is not None
    inventory = Inventory(
        profile=profile_name,
        organisation=raw.national.organisation.model_dump(),
        sites=built_sites, devices=devices, links=links, systems=systems,
        roles={name: r.description for name, r in roles.items()},
        management_gateway=gateway,
    )
    problems += run_checks(inventory, profile, profile_name, raw.loc)
    return inventory, problems


def _unique_sites(sites: list[Site]) -> list[Problem]:
    """Site names come from province codes and district numbers: a code given twice made
    two provinces one site (the dict of sites kept the last), and the only trace was a
    flood of duplicate device names located in profiles.yaml."""
    out: list[Problem] = []
    seen: dict[str, Location] = {}
    for site in sites:
        if site.name in seen:
            out.append(error(site.source, f"duplicate site name {site.name!r} (also at "
                                          f"{seen[site.name]}): a province code or district "
                                          "given twice?"))
        else:
            seen[site.name] = site.source
    return out


def _check_management_pool(raw: _Raw, profile: s.Profile, profile_name: str,
                           tiers: set[str]) -> list[Problem]:
    """Every device gets its management address from this pool: without one for a tier,
    each of its devices got 0.0.0.0 without a word, and an offset under 1 (2 in a pool
    shared by all sites, whose first host is the gateway) gave the first device the
    subnet's network or the gateway's address."""
    assert profile.addressing is not None
    at = ("profiles.yaml", "profiles", profile_name, "addressing", "pools")
    specs = profile.addressing.pools.get("management")
    if not specs:
        return [error(raw.loc(*at), "no management pool: every device needs its "
                                    "management address from one")]
    out = [error(raw.loc(*at, "management"), f"no management pool for the {tier} sites "
                                             "(and none for 'all')")
           for tier in sorted(tiers) if tier not in specs and "all" not in specs]
    for key, spec in specs.items():
        shared = spec.prefix == spec.cidr.prefixlen
        lowest = 2 if shared else 1
        if spec.offset < lowest:
            what = "gateway's" if shared and spec.offset == 1 else "network"
            out.append(error(raw.loc(*at, "management", key, "offset"),
                             f"offset {spec.offset} gives the first device the subnet's "
                             f"{what} address; use {lowest} or more"))
    return out


def _address(alloc: _Allocator, pool: str, site: Site, subnets: dict[str, IPv4Network],
             shared: Counter[str], local_index: int, problems: list[Problem], first: int = 0
             ) -> IPv4Interface | None:
    net = subnets.get(pool)
    spec = alloc.spec(pool, site.tier)
    if net is None or spec is None:
        return None
    if spec.prefix == spec.cidr.prefixlen:
        index = spec.offset + shared[pool]
        shared[pool] += 1
    else:
        index = spec.offset + first + local_index
    prefix = 32 if pool == "loopback" else net.prefixlen
    if index >= net.num_addresses - 1:
        problems.append(error(site.source, f"{pool} subnet {net} of {site.name} has no room "
                                           f"for device #{local_index + 1}"))
        return None
    return IPv4Interface((int(net.network_address) + index, prefix))


def _host(net: IPv4Network | None, n: int) -> IPv4Interface | None:
    return IPv4Interface((int(net.network_address) + n, net.prefixlen)) if net else None


def _wan_index(devices: dict[str, Device], roles: dict[str, s.RoleSpec]
               ) -> dict[str, list[Device]]:
    """WAN-terminating devices (routers) per site, in a stable order."""
    index: dict[str, list[Device]] = defaultdict(list)
    for device in devices.values():
        if roles[device.role].wan_terminating:
            index[device.site].append(device)
    for found in index.values():
        found.sort(key=lambda d: (d.role, d.index))
    return index


def _links(raw: _Raw, profile: s.Profile, profile_name: str, sites: dict[str, Site],
           devices: dict[str, Device], alloc: _Allocator, problems: list[Problem]
           ) -> dict[str, Link]:
    assert raw.profiles is not None and raw.national is not None and raw.provinces is not None
    roles = raw.profiles.roles
    wan = _wan_index(devices, roles)
    links: dict[str, Link] = {}
    overrides = {f"p{p.code}": p.wan for p in raw.provinces.provinces}
    for site in sites.values():
        if site.tier not in ("province", "district"):
            continue
        pair = (profile.wan or {}).get(site.tier)
        if pair is None:
            continue
        office = wan.get(site.name, [])
        override = overrides.get(site.name) if site.tier == "province" else None
        for n, (kind, spec) in enumerate(
            (("wan_primary", pair.primary), ("wan_backup", pair.backup)), start=1
        ):
            ov = getattr(override, kind.removeprefix("wan_"), None) if override else None
            if spec is None or ov == "none":
                continue
            carrier, bandwidth = spec.carrier, spec.bandwidth_mbps
            if isinstance(ov, s.WanOverride):
                carrier = ov.carrier or carrier
                bandwidth = ov.bandwidth_mbps or bandwidth
            hub_site = site.parent if spec.hub == "parent" else spec.hub
            if hub_site is None or hub_site not in sites:
                problems.append(error(
                    raw.loc("profiles.yaml", "profiles", profile_name, "wan", site.tier),
                    f"{kind} hub site {hub_site!r} of {site.name} is not in the inventory"
                    + (f" profile {profile_name!r}" if profile.sites is not None else "")))
                continue
            hubs = wan.get(hub_site, [])
            if not office or not hubs:
                missing = site.name if not office else hub_site
                problems.append(error(site.source, f"{kind} of {site.name}: no WAN-terminating "
                                                   f"device (router) at {missing}"))
                continue
            a = office[min(n, len(office)) - 1]
            z = hubs[min(spec.hub_device, len(hubs)) - 1]
            net = alloc.subnet(kind, site.tier, site.slot, f"{site.name} {kind}", site.source)
            name = f"{site.name}-wan{n}"
            links[name] = Link(
                name=name, kind=kind, a_site=site.name, a_device=a.name, z_site=hub_site,  # type: ignore[arg-type]
                z_device=z.name, carrier=carrier, bandwidth_mbps=bandwidth, source=site.source,
                subnet=net, cost=spec.cost, a_address=_host(net, 2), z_address=_host(net, 1),
            )
    for i, spec_link in enumerate(raw.national.links):
        where = raw.loc("national.yaml", "links", i)
        if spec_link.a not in sites or spec_link.z not in sites:
            absent = [x for x in (spec_link.a, spec_link.z) if x not in sites]
            if profile.sites is None:
                problems.append(error(where, f"link {spec_link.name}: unknown site {absent[0]!r}"))
            continue
        a_devs = wan.get(spec_link.a, [])
        z_devs = wan.get(spec_link.z, [])
        if not a_devs or not z_devs:
            problems.append(error(where, f"link {spec_link.name}: no router at both ends"))
            continue
        net = alloc.subnet("interconnect", "all", i, spec_link.name, where)
        links[spec_link.name] = Link(
            name=spec_link.name, kind="interconnect", a_site=spec_link.a,
            a_device=a_devs[0].name, z_site=spec_link.z, z_device=z_devs[0].name,
            carrier=spec_link.carrier, bandwidth_mbps=spec_link.bandwidth_mbps, source=where,
            subnet=net, cost=spec_link.cost, a_address=_host(net, 1), z_address=_host(net, 2),
        )
    for site in sites.values():
        inet = (profile.internet or {}).get(site.profile)  # type: ignore[call-overload]
        if inet is None:
            continue
        for n in range(1, inet.count + 1):
            name = f"{site.name}-inet{n}"
            links[name] = Link(
                name=name, kind="internet", a_site=site.name, a_device=None, z_site=None,
                z_device=None, carrier=inet.carriers[(n - 1) % len(inet.carriers)],
                bandwidth_mbps=inet.bandwidth_mbps, source=site.source,
            )
    return links


def _wire(devices: dict[str, Device], links: dict[str, Link]) -> dict[str, Device]:
    """Attach each routed link to both of its devices as an interface."""
    ifaces: dict[str, list[Interface]] = defaultdict(list)
    for link in links.values():
        if not (link.a_device and link.z_device and link.a_address and link.z_address):
            continue
        if link.kind == "interconnect":
            a_name = z_name = "dci"
        else:
            n = 1 if link.kind == "wan_primary" else 2
            a_name, z_name = f"wan{n}", f"{link.a_site}-w{n}"
        ifaces[link.a_device].append(Interface(
            name=a_name, link=link.name, kind=link.kind, address=link.a_address,
            peer_device=link.z_device, peer_address=link.z_address.ip, cost=link.cost))
        ifaces[link.z_device].append(Interface(
            name=z_name, link=link.name, kind=link.kind, address=link.z_address,
            peer_device=link.a_device, peer_address=link.a_address.ip, cost=link.cost))
    return {name: replace(d, interfaces=tuple(ifaces.get(name, ()))) for name, d in devices.items()}


def _systems(raw: _Raw, sites: dict[str, Site], devices: dict[str, Device],
             roles: dict[str, s.RoleSpec], problems: list[Problem]
             ) -> tuple[dict[str, System], dict[str, Device], dict[str, Site]]:
    systems: dict[str, System] = {}
    if raw.systems is None:
        return systems, devices, sites
    all_site_names = {c.name for c in raw.national.central} if raw.national else set()
    for i, spec in enumerate(raw.systems.systems):
        where = raw.loc("systems.yaml", "systems", i)
        if spec.id in systems:
            problems.append(error(where, f"duplicate system id {spec.id!r}"))
        for j, site in enumerate(spec.runs_at):
            if site not in all_site_names and site not in sites:
                problems.append(error(raw.loc("systems.yaml", "systems", i, "runs_at", j),
                                      f"system {spec.id} runs at unknown site {site!r}"))
        for j, role in enumerate(spec.roles):
            if role not in roles:
                problems.append(error(raw.loc("systems.yaml", "systems", i, "roles", j),
                                      f"unknown role {role!r}; valid roles: "
                                      f"{', '.join(sorted(roles))}"))
        systems[spec.id] = System(
            id=spec.id, name=spec.name, name_vi=spec.name_vi, level=spec.level,
            target_level=spec.target_level, runs_at=tuple(spec.runs_at),
            roles=tuple(spec.roles), internet_facing=spec.internet_facing, source=where)
    hosted: dict[tuple[str, str], list[System]] = defaultdict(list)
    for system in systems.values():
        for site in system.runs_at:
            for role in system.roles:
                hosted[(site, role)].append(system)
    new_devices: dict[str, Device] = {}
    site_level: dict[str, int] = defaultdict(lambda: BASELINE_LEVEL)
    for name, device in devices.items():
        on = hosted.get((device.site, device.role), [])
        level = max([BASELINE_LEVEL, *(x.effective_level for x in on)])
        site_level[device.site] = max(site_level[device.site], level)
        new_devices[name] = replace(device, systems=tuple(x.id for x in on),
                                    security_level=level)
    new_sites = {n: replace(site, security_level=site_level[n]) for n, site in sites.items()}
    return systems, new_devices, new_sites


def load_inventory(directory: Path, profile: str = DEFAULT_PROFILE) -> Inventory:
    """The inventory, or :class:`ValidationFailed` carrying every error found."""
    inventory, problems = build_inventory(directory, profile)
    errors = [p for p in problems if p.severity is Severity.ERROR]
    if errors or inventory is None:
        raise ValidationFailed(f"inventory {directory}", problems or [
            error(Location.of(directory), "inventory could not be built")])
    return inventory


__all__ = ["DEFAULT_PROFILE", "FILES", "build_inventory", "load_inventory"]
