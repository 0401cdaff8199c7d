"""Enrichment: the sending device's site/tier/province from the inventory, and matches
against the national monitoring centre's botnet IP list (threat.indicator.*).

Both lookups are dict/set probes built once, because they run for every event.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from pathlib import Path

from socctl.collector.ecs import Event, canonical_ip
from socctl.content import error
from socctl.errors import Location, Problem
from socctl.inventory.model import Inventory

OBSERVER_DATASETS = frozenset({"frr", "cisco_ios", "netfilter", "snmp.trap"})
"""Events from network/security devices: the device is also the ECS observer."""


@dataclass(frozen=True, slots=True)
class Origin:
    name: str
    site: str
    tier: str
    province: str | None
    ip: str


@dataclass
class BotnetList:
    """Exact addresses and networks (IPv4 as ints per prefix length, IPv6 as networks)."""

    provider: str = "NCSC"
    exact: set[str] = field(default_factory=set)
    by_prefix: dict[int, set[int]] = field(default_factory=dict)
    v6: list[IPv6Network] = field(default_factory=list)
    _seen: dict[str, bool] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.exact) + sum(len(v) for v in self.by_prefix.values()) + len(self.v6)

    @classmethod
    def load(cls, path: Path, provider: str = "NCSC") -> tuple[BotnetList, list[Problem]]:
        """One address or CIDR per line; ``#`` comments; every bad line is a problem."""
        out = cls(provider=provider)
        problems: list[Problem] = []
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return out, [error(Location.of(path), f"cannot read botnet list: {exc}")]
        for number, line in enumerate(text.splitlines(), 1):
            entry = line.split("#", 1)[0].strip()
            if not entry:
                continue
            try:
                net = ip_network(entry, strict=True)
            except ValueError as exc:
                problems.append(error(Location.of(path, number, "address"), str(exc)))
                continue
            out.add(net)
        return out, problems

    def add(self, net: IPv4Network | IPv6Network) -> None:
        self._seen.clear()
        if isinstance(net, IPv6Network):
            if net.prefixlen == 128:
                self.exact.add(str(net.network_address))
            else:
                self.v6.append(net)
            return
        if net.prefixlen == 32:
            self.exact.add(str(net.network_address))
        else:
            self.by_prefix.setdefault(net.prefixlen, set()).add(int(net.network_address))

    def match(self, ip: str) -> bool:
        """Whether ``ip`` is listed; remembered per address (the same sources come back
        event after event, and the prefix walk costs more than the probe)."""
        known = self._seen.get(ip)
        if known is None:
            if len(self._seen) >= 1 << 16:
                self._seen.clear()
            known = self._seen[ip] = self._match(ip)
        return known

    def _match(self, ip: str) -> bool:
        if ip in self.exact:
            return True
        if ":" in ip:  # IPv6 as written (full form, upper case) or an IPv4-mapped one
            canon = canonical_ip(ip)
            if canon != ip:
                return self._match(canon)
        if self.by_prefix and "." in ip:
            try:
                value = int.from_bytes(socket.inet_aton(ip), "big")
            except OSError:
                return False
            for plen, nets in self.by_prefix.items():
                if (value >> (32 - plen)) << (32 - plen) in nets:
                    return True
        if self.v6 and ":" in ip:
            try:
                addr = ip_address(ip)
            except ValueError:
                return False
            return any(addr in net for net in self.v6)
        return False


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class Enricher:
    """Adds ``socctl.{site,tier,province}``, host/observer identity and botnet matches."""

    def __init__(self, inventory: Inventory | None = None, botnet: BotnetList | None = None,
                 botnet_path: Path | None = None) -> None:
        self.botnet = botnet
        self.botnet_path = botnet_path
        self._botnet_stamp = _stamp(botnet_path) if botnet_path is not None else None
        self.by_name: dict[str, Origin] = {}
        self.by_ip: dict[str, Origin] = {}
        if inventory is not None:
            for dev in inventory.devices.values():
                site = inventory.sites.get(dev.site)
                if site is None:
                    continue
                origin = Origin(dev.name, site.name, site.tier, site.province,
                                str(dev.management.ip))
                self.by_name[dev.name] = origin
                self.by_ip[origin.ip] = origin
                if dev.loopback is not None:
                    self.by_ip.setdefault(str(dev.loopback), origin)
                for iface in dev.interfaces:
                    self.by_ip.setdefault(str(iface.address.ip), origin)

    def reload_botnet(self) -> tuple[bool, str] | None:
        """The botnet list again if its file changed since it was read (the national
        monitoring centre's list is replaced while collectors run for months): (loaded,
        what happened), or None when it did not change. A file that cannot be read or
        has a bad line leaves the list in use in place (a half-written download must not
        empty it); replace the file by rename."""
        if self.botnet_path is None or self.botnet is None:
            return None
        stamp = _stamp(self.botnet_path)
        if stamp == self._botnet_stamp:
            return None
        self._botnet_stamp = stamp
        fresh, problems = BotnetList.load(self.botnet_path, self.botnet.provider)
        if problems:
            return False, (f"botnet list not reloaded: {problems[0]}"
                           + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
                           + f"; the {len(self.botnet)} entries in use stay")
        self.botnet = fresh  # one assignment: the sources' thread sees the old or the new
        return True, f"botnet list reloaded from {self.botnet_path}: {len(fresh)} entries"

    def lookup(self, name: str | None, peer: str | None) -> Origin | None:
        if name:
            found = self.by_name.get(name) or self.by_ip.get(name)
            if found is None and "." in name:
                found = self.by_name.get(name.split(".", 1)[0])
            if found is not None:
                return found
        return self.by_ip.get(peer) if peer else None

    def apply(self, ev: Event, peer: str | None = None) -> None:
        if peer and ":" in peer:
            peer = canonical_ip(peer)
        host = ev.get("host")
        name = host.get("name") if host else None
        origin = self.lookup(name, peer)
        if peer:
            if host is None:
                host = ev["host"] = {}
            host.setdefault("ip", peer)
        if origin is not None:
            if host is None:
                host = ev["host"] = {}
            host.setdefault("name", origin.name)
            soc = {"site": origin.site, "tier": origin.tier}
            if origin.province:
                soc["province"] = origin.province
            ev["socctl"] = soc
            if ev["event"]["dataset"] in OBSERVER_DATASETS:
                obs = ev.setdefault("observer", {})
                obs.setdefault("name", origin.name)
                obs.setdefault("ip", peer or origin.ip)
        if self.botnet is not None:
            for side in ("source", "destination"):
                part = ev.get(side)
                ip = part.get("ip") if part else None
                if ip and self.botnet.match(ip):
                    ev["threat"] = {"indicator": {
                        "ip": ip, "type": "ipv6-addr" if ":" in ip else "ipv4-addr",
                        "provider": self.botnet.provider,
                        "description": f"{side}.ip on the {self.botnet.provider} botnet list"}}
                    ev.setdefault("labels", {})["botnet_match"] = side
                    break
