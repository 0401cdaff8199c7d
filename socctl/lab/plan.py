"""What the lab is made of, derived from the inventory's ``lab`` profile.

Pure data, no side effects: the runtime turns a :class:`LabPlan` into namespaces, veths
and daemons. Hosts are the profile's devices; WAN and DC links are the profile's links;
servers hang off their site's router on a small LAN bridge inside the router's namespace.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Interface, ip_network

from socctl.errors import LabError
from socctl.inventory.model import Inventory
from socctl.text import some

MGMT_BRIDGE = "socctl-mgmt"
NETNS_PREFIX = "socctl-"
# Every lab address is in the benchmarking range (RFC 2544), which no real network routes:
# the bridge's gateway sits in the machine's own namespace, where a real prefix would
# shadow the operator's routes.
LAB_NETWORK = ip_network("198.18.0.0/15")
VETH_PREFIX = "slv"  # temporary root-namespace names before veths move into their hosts


@dataclass(frozen=True, slots=True)
class LabHost:
    name: str
    site: str
    role: str
    platform: str
    management: IPv4Interface
    loopback: IPv4Address | None
    services: tuple[str, ...]
    is_router: bool
    lan: IPv4Interface | None = None  # servers: their LAN address; routers: the gateway
    lan_gateway: IPv4Address | None = None

    @property
    def netns(self) -> str:
        return f"{NETNS_PREFIX}{self.name}"


@dataclass(frozen=True, slots=True)
class LabLink:
    """A point-to-point veth between two hosts (WAN, DC interconnect or server LAN)."""

    name: str
    kind: str
    a_host: str
    a_if: str
    z_host: str
    z_if: str
    a_address: IPv4Interface | None
    z_address: IPv4Interface | None
    cost: int = 10
    bandwidth_mbps: int | None = None
    z_bridge: str | None = None  # LAN links: the router end joins this bridge


@dataclass(frozen=True, slots=True)
class LabPlan:
    profile: str
    hosts: dict[str, LabHost]
    links: dict[str, LabLink]
    gateway: IPv4Interface
    bridge: str = MGMT_BRIDGE
    routers_with_lan: dict[str, IPv4Interface] = field(default_factory=dict)

    def host(self, name: str) -> LabHost:
        if name not in self.hosts:
            raise LabError(f"no lab host named {name!r}",
                           hint=f"lab hosts: {', '.join(self.hosts)}")
        return self.hosts[name]

    def link(self, name: str) -> LabLink:
        if name not in self.links:
            raise LabError(f"no lab link named {name!r}",
                           hint=f"lab links: {', '.join(self.links)}")
        return self.links[name]


def plan_from_inventory(inv: Inventory) -> LabPlan:
    if inv.management_gateway is None:
        raise LabError(f"profile {inv.profile!r} has no shared management subnet",
                       hint="a lab profile needs one management pool whose prefix equals "
                            "its cidr (e.g. 198.18.0.0/24)")
    hosts: dict[str, LabHost] = {}
    for d in inv.devices.values():
        if d.platform not in ("linux", "frr"):
            raise LabError(f"device {d.name} has platform {d.platform}; the lab runs only "
                           "linux and frr hosts", hint=f"see profile {inv.profile}")
        hosts[d.name] = LabHost(
            name=d.name, site=d.site, role=d.role, platform=d.platform,
            management=d.management, loopback=d.loopback, services=d.services,
            is_router=d.platform == "frr",
        )
    links: dict[str, LabLink] = {}
    for link in inv.links.values():
        if link.kind == "internet" or not (link.a_device and link.z_device):
            continue
        a = inv.devices[link.a_device]
        z = inv.devices[link.z_device]
        a_if = next(i.name for i in a.interfaces if i.link == link.name)
        z_if = next(i.name for i in z.interfaces if i.link == link.name)
        links[link.name] = LabLink(
            name=link.name, kind=link.kind, a_host=a.name, a_if=a_if, z_host=z.name,
            z_if=z_if, a_address=link.a_address, z_address=link.z_address, cost=link.cost,
            bandwidth_mbps=link.bandwidth_mbps,
        )
    routers_with_lan: dict[str, IPv4Interface] = {}
    for site in inv.sites.values():
        members = [h for h in hosts.values() if h.site == site.name]
        routers = [h for h in members if h.is_router]
        servers = [h for h in members if not h.is_router]
        lan = site.subnets.get("lan")
        if not routers or not servers or lan is None:
            continue
        router = routers[0]
        gateway = IPv4Interface((int(lan.network_address) + 1, lan.prefixlen))
        routers_with_lan[router.name] = gateway
        for n, server in enumerate(servers, start=10):
            address = IPv4Interface((int(lan.network_address) + n, lan.prefixlen))
            hosts[server.name] = replace(server, lan=address, lan_gateway=gateway.ip)
            short = server.name.removeprefix(f"{site.name}-")
            name = f"{server.name}-lan"
            links[name] = LabLink(
                name=name, kind="lan", a_host=server.name, a_if="lan0", z_host=router.name,
                z_if=f"l-{short}"[:15], a_address=address, z_address=None, z_bridge="lan0",
            )
        hosts[router.name] = replace(router, lan=gateway)
    gateway = IPv4Interface(f"{inv.management_gateway}/"
                            f"{next(iter(hosts.values())).management.network.prefixlen}")
    plan = LabPlan(profile=inv.profile, hosts=hosts, links=links, gateway=gateway,
                   routers_with_lan=routers_with_lan)
    _check_addresses(plan)
    return plan


def _check_addresses(plan: LabPlan) -> None:
    found: list[tuple[str, IPv4Address]] = [("management gateway", plan.gateway.ip)]
    for h in plan.hosts.values():
        found.append((f"{h.name} management", h.management.ip))
        if h.loopback is not None:
            found.append((f"{h.name} loopback", h.loopback))
        if h.lan is not None:
            found.append((f"{h.name} lan", h.lan.ip))
    for lk in plan.links.values():
        found += [(f"link {lk.name}", a.ip) for a in (lk.a_address, lk.z_address)
                  if a is not None]
    outside = [f"{what} {address}" for what, address in found if address not in LAB_NETWORK]
    if outside:
        raise LabError(f"profile {plan.profile!r} puts lab addresses outside {LAB_NETWORK}: "
                       + some(outside, 5),
                       hint="the lab runs only on 198.18.0.0/15 addresses (see "
                            "inventory/settings.yaml, profiles)")

