"""FRRouting driven through vtysh (the lab's routers).

Netmiko has no ``frr`` device type. The login shell of the ``netops`` user *is* vtysh,
which speaks IOS-like CLI (``configure terminal``, ``end``, ``write memory``, ``#``
prompts, ``(config-if)#`` in config mode), so the session is Netmiko's Cisco base class
with a session preparation of its own: vtysh has no ``terminal width`` (IOS's first
command), and its prompt is never abbreviated. A generic terminal driver would lose
Netmiko's config-mode handling, which vtysh matches.

Rollback applies the difference back to the saved running config, computed on the
controller (:mod:`socctl.network.configtree`, the logic of ``frr-reload.py``): the
vtysh shell gives no way to run ``frr-reload.py`` on the router itself.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from socctl.network.drivers.base import Driver


def _connection_class() -> type[Any]:
    from netmiko.cisco_base_connection import CiscoBaseConnection

    class FrrVtyshConnection(CiscoBaseConnection):
        """vtysh as the login shell: already privileged, no terminal width."""

        def session_preparation(self) -> None:
            self._test_channel_read(pattern=r"#")
            self.set_base_prompt()
            self.disable_paging(command="terminal length 0")

        def check_enable_mode(self, check_string: str = "#") -> bool:
            return True

        def check_config_mode(self, check_string: str = ")#", pattern: str = r"#",
                              force_regex: bool = False) -> bool:
            # Read to the prompt, as Netmiko's IOS class does. Its Cisco base class waits
            # for 2 s of silence instead, and a config set checks the mode four times,
            # a disconnect once: 10 s of every push was spent waiting.
            return bool(super().check_config_mode(check_string=check_string, pattern=pattern,
                                                  force_regex=force_regex))

        def enable(self, *args: Any, **kwargs: Any) -> str:
            return ""

        def save_config(self, cmd: str = "write memory", confirm: bool = False,
                        confirm_response: str = "") -> str:
            return str(self._send_command_str(cmd, read_timeout=60))

    return FrrVtyshConnection


class FrrDriver(Driver):
    name: ClassVar[str] = "frr"
    description: ClassVar[str] = "FRRouting vtysh (IOS-like CLI) over SSH"
    ignore: ClassVar[tuple[str, ...]] = (
        r"^Building configuration",
        r"^Current configuration",
        r"^frr version ",            # the package version, not configuration
        r"^! ?Last (configuration|changed)",
        r"^Note: this version of vtysh",
    )
    deletable_blocks: ClassVar[tuple[str, ...]] = ("router ", "route-map ")
    negations: ClassVar[tuple[tuple[str, str], ...]] = (
        (r"^description .*", "no description"),
        (r"^(ip ospf (cost|dead-interval|hello-interval|retransmit-interval)) .*", r"no \1"),
        # vtysh's "no exec-timeout" means *no* timeout (0 0): restore the default instead.
        (r"^exec-timeout .*", "exec-timeout 10 0"),
        (r"^(access-class) .*", r"no \1"),
        (r"^(ospf router-id) .*", r"no \1"),
        # "no password SECRET" is an unknown command to vtysh
        (r"^((?:enable )?password) .*", r"no \1"),
    )
    adjacency_command: ClassVar[str | None] = "show ip ospf neighbor json"
    settle_seconds: ClassVar[float] = 5.0  # the lab's OSPF dead interval is 3 s

    def lan_interface(self, has_lan: bool) -> str | None:
        return "lan0" if has_lan else None

    def negate(self, line: str) -> str | None:
        if line.startswith("interface "):
            return None  # a kernel interface cannot be deleted from vtysh
        return super().negate(line)

    def connection_class(self) -> type[Any]:
        return _connection_class()

    def parse_adjacencies(self, output: str) -> dict[str, str]:
        try:
            data = json.loads(output or "{}")
        except json.JSONDecodeError:
            return {}
        found: dict[str, str] = {}
        for router_id, entries in data.get("neighbors", {}).items():
            for entry in entries:
                iface = str(entry.get("ifaceName", "")).split(":")[0]
                state = str(entry.get("nbrState", entry.get("state", "")))
                found[f"{iface}/{router_id}"] = state.split("/", maxsplit=1)[0]
        return found
