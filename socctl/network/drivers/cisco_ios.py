"""Cisco IOS / IOS-XE through Netmiko's ``cisco_ios`` driver.

Interfaces in the inventory carry logical names (``wan1``, ``p01d03-w1``); on IOS they
are numbered GigabitEthernet ports in inventory order, with the logical name in the
description so that polling and audits can match them back.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from socctl.inventory.model import Device, Interface
from socctl.network.drivers.base import Driver

_NEIGHBOR = re.compile(
    r"^(?P<rid>\d+\.\d+\.\d+\.\d+)\s+\d+\s+(?P<state>[A-Z0-9-]+)(/\s*\S+)?\s+\S+\s+"
    r"(?P<addr>\d+\.\d+\.\d+\.\d+)\s+(?P<iface>\S+)")


class CiscoIosDriver(Driver):
    name: ClassVar[str] = "cisco_ios"
    description: ClassVar[str] = "Cisco IOS / IOS-XE over SSH (Netmiko cisco_ios)"
    ignore: ClassVar[tuple[str, ...]] = (
        r"^Building configuration",
        r"^Current configuration\s*:",
        r"^! (Last configuration change|NVRAM config last updated|No configuration change)",
        r"^ntp clock-period ",       # drifts by itself
        r"^version \d",
        r"^\s*!\s*Time:",
        r"uptime is ",
        # An enabled interface shows no line: `no shutdown` is the default, which IOS never
        # prints, so kept in the intended config it was drift on every interface and every
        # push. A shut port shows `shutdown`, which the push negates.
        r"^ no shutdown$",
    )
    deletable_blocks: ClassVar[tuple[str, ...]] = (
        "router ", "ip access-list ", "route-map ", "snmp-server view ")
    negations: ClassVar[tuple[tuple[str, str], ...]] = (
        (r"^description .*", "no description"),
        (r"^(ip ospf cost) .*", r"no \1"),
        (r"^(exec-timeout) .*", r"no \1"),
        (r"^(banner \S+).*", r"no \1"),
    )
    adjacency_command: ClassVar[str | None] = "show ip ospf neighbor"
    settle_seconds: ClassVar[float] = 45.0  # IOS default OSPF dead interval is 40 s

    def interface_name(self, device: Device, interface: Interface, index: int) -> str:
        return f"GigabitEthernet0/{index + 1}"

    def lan_interface(self, has_lan: bool) -> str | None:
        return "GigabitEthernet0/0" if has_lan else None

    def negate(self, line: str) -> str | None:
        if line.startswith("interface GigabitEthernet"):
            return None  # physical ports cannot be removed; their lines are negated
        return super().negate(line)

    def connection_class(self) -> type[Any]:
        from netmiko.cisco.cisco_ios import CiscoIosSSH

        return CiscoIosSSH

    def parse_adjacencies(self, output: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for line in output.splitlines():
            match = _NEIGHBOR.match(line.strip())
            if match:
                state = match["state"].split("/")[0]
                found[f"{match['iface']}/{match['rid']}"] = state.capitalize()
        return found
