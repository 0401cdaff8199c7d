"""The cisco_ios driver's session handling and parsing against fakenos.

fakenos emulates an IOS command line over real SSH (paramiko server): login, prompts,
``enable``, paging commands, canned ``show`` output. It does NOT keep config state: a
configuration command changes nothing and ``show running-config`` always answers the
same canned text. So these tests cover connecting, enable mode, reading and normalising
the running config, refused commands, and the per-device errors (wrong password, closed
port); pushing and rollback are tested against the lab's real FRR routers instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from ipaddress import IPv4Interface
from pathlib import Path

import pytest

from socctl.errors import DeviceError
from socctl.inventory import load_inventory
from socctl.network import ops, runner
from socctl.network.credentials import Credentials
from socctl.network.drivers import Target, get_driver
from tests.conftest import FIXTURES, REPO
from tests.fakeios import PASSWORD, free_port
from tests.fakeios import fake_ios as serve_fake_ios

fakenos = pytest.importorskip("fakenos")
# fakenos's server thread trips over the session a refused login leaves (its own bug).
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")

CONFIG_PROMPT = "{base_prompt}(config)#"
IF_PROMPT = "{base_prompt}(config-if)#"
COMMUNITY = "Comm-S3cret-77"


@pytest.fixture(scope="module")
def fake_ios(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One fake IOS router on 127.0.0.1; its running config is the IOS fixture."""
    commands = {
        "configure terminal": {"output": None, "new_prompt": CONFIG_PROMPT,
                               "help": "config mode", "prompt": ["{base_prompt}#"]},
        "end": {"output": None, "new_prompt": "{base_prompt}#", "help": "end",
                "prompt": [CONFIG_PROMPT, IF_PROMPT]},
        "interface GigabitEthernet0/1": {"output": None, "new_prompt": IF_PROMPT,
                                         "help": "if", "prompt": [CONFIG_PROMPT]},
        "description WAN primary p01d01-wan1": {"output": None, "help": "desc",
                                                "prompt": [IF_PROMPT]},
        "ip ospf cost 7": {"output": "% Invalid input detected at '^' marker.",
                           "help": "refused", "prompt": [IF_PROMPT]},
        f"snmp-server community {COMMUNITY} RO": {"output": None, "help": "community",
                                                  "prompt": [CONFIG_PROMPT]},
        "exit": {"output": None, "new_prompt": CONFIG_PROMPT, "help": "exit",
                 "prompt": [IF_PROMPT]},
    }
    running = (FIXTURES / "network" / "ios_running.txt").read_text()
    with serve_fake_ios(tmp_path_factory.mktemp("fakenos"), running, commands) as port:
        yield port


def _creds(password: str = PASSWORD) -> Credentials:
    return Credentials(username="netops", password=password)


def test_session_enters_enable_mode_and_normalises_running(fake_ios: int,
                                                           tmp_path: Path) -> None:
    driver = get_driver("cisco_ios")
    log = tmp_path / "session.log"
    session = driver.connect(Target("rtr-01", "127.0.0.1", fake_ios), _creds(), 10, str(log))
    try:
        assert session.conn.check_enable_mode()
        text = driver.normalise(session.running())
    finally:
        session.close()
    assert text.splitlines()[:2] == ["service timestamps log datetime msec", "hostname rtr-01"]
    assert "Current configuration" not in text and "Last configuration change" not in text
    assert "show running-config" in log.read_text()
    assert PASSWORD not in log.read_text()


def test_the_session_log_masks_what_was_pushed_and_is_private(fake_ios: int,
                                                              tmp_path: Path) -> None:
    """Netmiko's own session log hid the login password only: a pushed community stood
    in the echo of the command."""
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o700)
    log = logs / "rtr-01.log"
    log.write_text("an earlier run's log\n")
    log.chmod(0o644)
    session = get_driver("cisco_ios").connect(Target("rtr-01", "127.0.0.1", fake_ios),
                                              _creds(), 10, str(log))
    try:
        session.configure([f"snmp-server community {COMMUNITY} RO"])
    finally:
        session.close()
    text = log.read_text()
    assert "snmp-server community *** RO" in text, text
    assert COMMUNITY not in text and PASSWORD not in text
    assert "an earlier run" not in text
    assert log.stat().st_mode & 0o777 == 0o600


def test_a_secret_split_between_two_reads_is_masked_whole(tmp_path: Path) -> None:
    from socctl.network.session_log import MaskingSessionLog

    log = MaskingSessionLog(str(tmp_path / "s.log"), {"password": "LoginPw", "secret": ""})
    log.open()
    for chunk in ("rtr-01(config)#snmp-server user ops SOCCTL-RO v3 auth sha Auth",
                  "Key1 priv aes 128 PrivKey2\r\nusername admin secret 5 $1$x",
                  "yz\r\nbanner LoginPw\r\nrtr-01(config)#", "end"):
        log.write(chunk)
    log.close()
    text = (tmp_path / "s.log").read_text()
    for secret in ("AuthKey1", "PrivKey2", "$1$xyz", "LoginPw"):
        assert secret not in text, text
    assert "rtr-01(config)#snmp-server user ops SOCCTL-RO v3 auth sha *** priv aes 128 ***" \
        in text
    assert text.endswith("rtr-01(config)#end")


def test_config_set_accepted_and_refused_lines(fake_ios: int) -> None:
    driver = get_driver("cisco_ios")
    session = driver.connect(Target("rtr-01", "127.0.0.1", fake_ios), _creds(), 10)
    try:
        session.configure(["interface GigabitEthernet0/1",
                           "description WAN primary p01d01-wan1", "exit"])
        with pytest.raises(DeviceError) as info:
            session.configure(["interface GigabitEthernet0/1", "ip ospf cost 7", "exit"])
    finally:
        session.close()
    assert "rtr-01 (127.0.0.1:" in str(info.value)
    assert "device refused configuration: % Invalid input" in str(info.value)


def test_wrong_password_names_host_and_user_not_the_secret(fake_ios: int) -> None:
    with pytest.raises(DeviceError) as info:
        get_driver("cisco_ios").connect(Target("rtr-01", "127.0.0.1", fake_ios),
                                        _creds("not-the-password"), 10)
    message = str(info.value)
    assert f"rtr-01 (127.0.0.1:{fake_ios}): authentication failed for user 'netops'" in message
    assert "not-the-password" not in message


def test_a_run_goes_on_past_a_dead_device(fake_ios: int) -> None:
    """diff over two IOS devices: one answers (fakenos), one's port is closed."""
    inv = load_inventory(REPO / "inventory", "national")
    alive = replace(inv.devices["p01d01-rtr1"], management=IPv4Interface("127.0.0.1/8"))
    dead = replace(inv.devices["p01d02-rtr1"], management=IPv4Interface("127.0.0.1/8"))
    live_ctx = ops.NetContext(inv, REPO / "device_templates", _creds(), Path("/nonexistent"),
                              timeout=10, port=fake_ios)
    dead_ctx = replace(live_ctx, port=free_port())
    contexts = {alive.name: live_ctx, dead.name: dead_ctx}
    result = runner.run("diff", [alive, dead], lambda d: ops.diff(contexts[d.name], d))
    first, second = result.hosts
    assert not first.failed and first.changed
    assert "+ip ssh version 2" in first.diff and "-line vty 0 4" in first.diff
    assert second.failed
    assert second.message.startswith(f"p01d02-rtr1 (127.0.0.1:{dead_ctx.port}): ")
    assert "unreachable" in second.message or "connection failed" in second.message
