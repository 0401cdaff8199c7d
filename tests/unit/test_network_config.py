"""Config trees: normalisation per platform, diffs, and the minimal change sets that push
and rollback send (checked by applying them to an in-memory config)."""

from __future__ import annotations

import pytest

from socctl.errors import DeviceError
from socctl.network import configtree
from socctl.network.drivers import DRIVERS, Driver, get_driver, register
from socctl.network.drivers.cisco_ios import CiscoIosDriver
from socctl.network.drivers.frr import FrrDriver
from tests.conftest import FIXTURES

FRR_RUNNING = (FIXTURES / "network" / "frr_running.txt").read_text()
IOS_RUNNING = (FIXTURES / "network" / "ios_running.txt").read_text()


def apply(driver: Driver, running: str, commands: list[str]) -> str:
    """A tiny IOS-style config interpreter for the tests: contexts, ``exit``, and ``no``
    (which removes the line(s) the negation names, with or without their arguments)."""
    tree = driver.tree(running)
    stack = [tree]
    for command in commands:
        if command == "exit":
            stack.pop()
            continue
        node = stack[-1]
        if command.startswith("no "):
            what = command[3:]
            node.children = [c for c in node.children
                             if not (c.line == what or c.line.startswith(what + " "))]
            continue
        if command == "exec-timeout 10 0":  # the default: vtysh shows no line for it
            node.children = [c for c in node.children if not c.line.startswith("exec-timeout")]
            continue
        existing = node.child(command)
        if existing is None:
            existing = configtree.Node(command)
            node.children.append(existing)
        if command.startswith(("interface ", "router ", "line ")):
            stack.append(existing)
    # Devices do not show an emptied ``line`` block, as they do not show an unset default.
    tree.children = [c for c in tree.children if c.children or not c.line.startswith("line ")]
    return configtree.render(configtree.canonical(tree, lambda line: line.startswith(
        driver.sortable_blocks)))


def test_frr_normalise_drops_noise_and_orders_interfaces() -> None:
    text = FrrDriver().normalise(FRR_RUNNING)
    assert "Building configuration" not in text
    assert "Current configuration" not in text
    assert "frr version" not in text
    assert "exit" not in text.split()
    assert text.count("service password-encryption") == 1
    interfaces = [line for line in text.splitlines() if line.startswith("interface ")]
    assert interfaces == ["interface lo", "interface wan1", "interface wan2"]


def test_ios_normalise_drops_timestamps_and_byte_counts() -> None:
    text = CiscoIosDriver().normalise(IOS_RUNNING)
    assert "Current configuration" not in text
    assert "Last configuration change" not in text
    assert "NVRAM config last updated" not in text
    assert "ntp clock-period" not in text
    assert "version 15.8" not in text
    assert text.splitlines()[0] == "service timestamps log datetime msec"


def test_two_reads_differing_only_in_noise_diff_empty() -> None:
    later = IOS_RUNNING.replace("4211 bytes", "4299 bytes").replace("10:02:11", "11:59:59")
    driver = CiscoIosDriver()
    assert configtree.unified("r", driver.normalise(IOS_RUNNING), driver.normalise(later)) == ""


def test_cost_drift_is_one_context_with_replace() -> None:
    driver = FrrDriver()
    drifted = FRR_RUNNING.replace("ip ospf cost 100", "ip ospf cost 50")
    commands = driver.commands(drifted, FRR_RUNNING)
    assert commands == ["interface wan2", "no ip ospf cost", "ip ospf cost 100", "exit"]
    diff = configtree.unified("p01d01-rtr1", driver.normalise(drifted),
                              driver.normalise(FRR_RUNNING))
    assert "- ip ospf cost 50" in diff and "+ ip ospf cost 100" in diff


def test_in_sync_means_no_commands() -> None:
    assert FrrDriver().commands(FRR_RUNNING, FRR_RUNNING) == []


def test_removed_router_block_is_one_negated_header() -> None:
    driver = FrrDriver()
    without = FRR_RUNNING.replace("router ospf\n ospf router-id 198.19.255.4\n timers "
                                  "throttle spf 0 50 500\nexit\n", "")
    assert driver.commands(FRR_RUNNING, without) == ["no router ospf"]


def test_interface_block_is_never_deleted_only_emptied() -> None:
    driver = FrrDriver()
    without = FRR_RUNNING.replace("interface wan2\n ip ospf area 0\n ip ospf cost 100\nexit\n",
                                  "")
    commands = driver.commands(FRR_RUNNING, without)
    assert "no interface wan2" not in commands
    assert commands == ["interface wan2", "no ip ospf area 0", "no ip ospf cost", "exit"]


@pytest.mark.parametrize("driver", [FrrDriver(), CiscoIosDriver()], ids=lambda d: d.name)
def test_commands_turn_running_into_intended_and_back(driver: Driver) -> None:
    running = FRR_RUNNING if driver.name == "frr" else IOS_RUNNING
    intended = running.replace("description WAN primary", "description WAN primary Viettel")
    intended = intended.replace("router-id", "router-id").replace("hostname ", "hostname x")
    intended += "line vty\n exec-timeout 5 0\n"
    forward = driver.commands(running, intended)
    after = apply(driver, running, forward)
    assert driver.commands(after, intended) == []
    back = driver.commands(after, running)
    assert driver.commands(apply(driver, after, back), running) == []


def test_registry_is_explicit_and_refuses_duplicates() -> None:
    assert {"frr": FrrDriver, "cisco_ios": CiscoIosDriver} == DRIVERS
    with pytest.raises(ValueError, match="duplicate network driver 'frr'"):
        register(dict(DRIVERS), FrrDriver)


def test_unknown_platform_lists_the_drivers() -> None:
    with pytest.raises(DeviceError) as info:
        get_driver("fortinet")
    assert "fortinet" in str(info.value)
    assert "cisco_ios, frr" in str(info.value)


def test_frr_adjacencies_parse_vtysh_json() -> None:
    output = ('{"neighbors":{"198.19.255.3":[{"nbrState":"Full/-","ifaceName":'
              '"wan1:198.19.0.6"},{"nbrState":"Init/-","ifaceName":"wan2:198.19.64.6"}]}}')
    assert FrrDriver().parse_adjacencies(output) == {"wan1/198.19.255.3": "Full",
                                                      "wan2/198.19.255.3": "Init"}


def test_ios_adjacencies_parse_show_output() -> None:
    output = """
Neighbor ID     Pri   State           Dead Time   Address         Interface
10.208.0.41       0   FULL/  -        00:00:33    10.224.16.69    GigabitEthernet0/1
10.208.0.42       0   INIT/  -        00:00:39    10.228.16.69    GigabitEthernet0/2
"""
    assert CiscoIosDriver().parse_adjacencies(output) == {
        "GigabitEthernet0/1/10.208.0.41": "Full", "GigabitEthernet0/2/10.208.0.42": "Init"}


def test_an_enabled_ios_port_is_not_drift_and_a_shut_one_is_brought_up() -> None:
    """IOS prints no line for an enabled port (``no shutdown`` is the default) and
    ``shutdown`` for a shut one. The intended config's ``no shutdown`` was drift on every
    port of every router and sent on every push."""
    driver = CiscoIosDriver()
    intended = IOS_RUNNING.replace(" ip ospf cost 10\n", " ip ospf cost 10\n no shutdown\n")
    assert driver.commands(IOS_RUNNING, intended) == []
    assert configtree.unified("r", driver.normalise(IOS_RUNNING),
                              driver.normalise(intended)) == ""
    shut = IOS_RUNNING.replace(" ip ospf cost 10\n", " ip ospf cost 10\n shutdown\n")
    forward = driver.commands(shut, intended)
    assert forward == ["interface GigabitEthernet0/1", "no shutdown", "exit"]
    assert driver.commands(apply(driver, shut, forward), intended) == []


def test_a_configure_timeout_names_no_secret_of_the_commands() -> None:
    """Netmiko's read timeout quotes the regex it waited for: the command, escaped
    (``password\\ Vty\\-S3cret!``). The connection here is a stand-in that raises Netmiko's
    own exception as it does; the real timeout needs a device that stops answering."""
    from netmiko.exceptions import ReadTimeout

    from socctl.network.drivers import Target
    from socctl.network.drivers.base import Session

    class Stalled:
        def send_config_set(self, commands: list[str], **_: object) -> str:
            import re

            raise ReadTimeout(f"\nPattern not detected: {re.escape(commands[1])!r} in output."
                              "\n\nThings you might try to fix this:\n...")

    session = Session(get_driver("frr"), Target("r1", "198.18.0.99"), Stalled())
    commands = ["line vty", "password Vty-S3cret!", "snmp-server user u g v3 auth sha "
                "Auth-K3y priv aes 128 Priv-K3y"]
    with pytest.raises(DeviceError, match="configuration failed: ReadTimeout") as raised:
        session.configure(commands)
    message = str(raised.value)
    assert "Pattern not detected" in message
    for secret in ("Vty-S3cret!", "Vty\\-S3cret", "S3cret", "Auth-K3y", "Priv-K3y"):
        assert secret not in message
