"""Second-tier checks over a built inventory: what no single file can tell.

Each check returns problems with a severity; none raises. The loader collects them all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from ipaddress import IPv4Network

from socctl.content import error, warning
from socctl.errors import Location, Problem
from socctl.inventory import schema as s
from socctl.inventory.model import Inventory

Locate = Callable[..., Location]


def run_checks(inv: Inventory, profile: s.Profile, profile_name: str, loc: Locate
               ) -> list[Problem]:
    problems: list[Problem] = []
    problems += _overlaps(inv, profile, profile_name, loc)
    problems += _wan_pairs(inv, profile)
    problems += _internet(inv, profile)
    problems += _parents(inv)
    return problems


def _overlaps(inv: Inventory, profile: s.Profile, profile_name: str, loc: Locate
              ) -> list[Problem]:
    """Pools must not overlap each other; allocated subnets must not overlap at all."""
    problems: list[Problem] = []
    assert profile.addressing is not None
    pools: list[tuple[IPv4Network, str]] = []
    for pool, specs in profile.addressing.pools.items():
        for tier, spec in specs.items():
            pools.append((spec.cidr, f"{pool}.{tier}"))
    for i, (net_a, name_a) in enumerate(pools):
        for net_b, name_b in pools[i + 1:]:
            if net_a.overlaps(net_b):
                problems.append(error(
                    loc("profiles.yaml", "profiles", profile_name, "addressing", "pools"),
                    f"address pools overlap: {name_a} {net_a} and {name_b} {net_b}"))
    owners: list[tuple[IPv4Network, str, Location]] = []
    shared: set[IPv4Network] = set()
    for site in inv.sites.values():
        for pool_name, net in site.subnets.items():
            specs = profile.addressing.pools.get(pool_name, {})  # type: ignore[call-overload]
            if any(x.prefix == x.cidr.prefixlen and x.cidr == net for x in specs.values()):
                shared.add(net)
                continue
            owners.append((net, f"{site.name} {pool_name}", site.source))
    for link in inv.links.values():
        if link.subnet is not None:
            owners.append((link.subnet, f"link {link.name}", link.source))
    owners.sort(key=lambda o: (int(o[0].network_address), o[0].prefixlen))
    widest: tuple[IPv4Network, str, Location] | None = None
    for entry in owners:
        net, owner, where = entry
        if widest is not None and int(net.network_address) <= int(widest[0].broadcast_address):
            problems.append(error(where, f"subnet {net} of {owner} overlaps {widest[0]} of "
                                         f"{widest[1]}"))
        if widest is None or int(net.broadcast_address) > int(widest[0].broadcast_address):
            widest = entry
    return problems


def _wan_pairs(inv: Inventory, profile: s.Profile) -> list[Problem]:
    """Every office has a primary and a backup WAN link (DOMAIN: two WAN links)."""
    if profile.wan is None:
        return []
    problems: list[Problem] = []
    by_site: dict[str, dict[str, str]] = defaultdict(dict)
    for link in inv.links.values():
        if link.kind in ("wan_primary", "wan_backup"):
            by_site[link.a_site][link.kind] = link.carrier
    for site in inv.sites.values():
        if site.tier not in ("province", "district") or site.tier not in profile.wan:
            continue
        have = by_site.get(site.name, {})
        for kind in ("wan_primary", "wan_backup"):
            if kind not in have:
                problems.append(error(site.source, f"office {site.name} ({site.display}) has no "
                                                   f"{kind.replace('_', ' ')} link"))
        if len(have) == 2 and len(set(have.values())) == 1:
            problems.append(warning(site.source, f"office {site.name}: both WAN links use "
                                                 f"carrier {next(iter(have.values()))}"))
    return problems


_INTERNET_MINIMUM = {"province": (2, 1), "district": (1, 1), "dc_primary": (4, 900)}
"""Per site profile: (links, Mbps each), from DOMAIN.md (section VI.4.1)."""


def _internet(inv: Inventory, profile: s.Profile) -> list[Problem]:
    if profile.internet is None:
        return []
    problems: list[Problem] = []
    counts: dict[str, list[int]] = defaultdict(list)
    for link in inv.links.values():
        if link.kind == "internet":
            counts[link.a_site].append(link.bandwidth_mbps)
    for site in inv.sites.values():
        minimum = _INTERNET_MINIMUM.get(site.profile)
        if minimum is None:
            continue
        links, mbps = minimum
        have = [b for b in counts.get(site.name, []) if b >= mbps]
        if len(have) < links:
            problems.append(error(site.source, f"{site.name} needs at least {links} Internet "
                                               f"link(s) of {mbps} Mbps, has {len(have)}"))
    return problems


def _parents(inv: Inventory) -> list[Problem]:
    problems: list[Problem] = []
    for site in inv.sites.values():
        if site.parent is not None and site.parent not in inv.sites:
            problems.append(error(site.source, f"site {site.name}: parent {site.parent!r} "
                                               f"does not exist"))
    return problems
