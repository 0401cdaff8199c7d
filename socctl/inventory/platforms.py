"""Device platforms socctl knows. The platform of a device selects its driver later
(network config, provisioning connection); an inventory naming any other platform is an
error that lists these.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Platform:
    name: str
    description: str
    netmiko_device_type: str | None
    ansible_connection: str
    ansible_network_os: str | None = None


def _registry(*platforms: Platform) -> dict[str, Platform]:
    out: dict[str, Platform] = {}
    for platform in platforms:
        if platform.name in out:
            raise ValueError(f"duplicate platform {platform.name}")
        out[platform.name] = platform
    return out


PLATFORMS: dict[str, Platform] = _registry(
    Platform("linux", "Linux server (Debian)", "linux", "ssh"),
    Platform("frr", "FRRouting on Linux; vtysh speaks IOS-like CLI", "cisco_ios", "ssh"),
    Platform("cisco_ios", "Cisco IOS / IOS-XE", "cisco_ios", "ansible.netcommon.network_cli",
             "cisco.ios.ios"),
    Platform("cisco_nxos", "Cisco NX-OS data-centre switch", "cisco_nxos",
             "ansible.netcommon.network_cli", "cisco.nxos.nxos"),
    Platform("fortinet", "Fortinet FortiGate firewall", "fortinet", "httpapi",
             "fortinet.fortios.fortios"),
    Platform("paloalto_panos", "Palo Alto PAN-OS firewall", "paloalto_panos", "local"),
    Platform("f5_tmsh", "F5 BIG-IP load balancer", "f5_tmsh", "local"),
    Platform("juniper_junos", "Juniper Junos router", "juniper_junos",
             "ansible.netcommon.netconf", "junipernetworks.junos.junos"),
    Platform("appliance", "Vendor appliance managed by its own console (WAN optimiser, "
             "anti-DDoS, anti-spam)", None, "local"),
)
