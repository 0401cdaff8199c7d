"""The snmp role's passphrases with quotes and backslashes: snmpd.conf.j2 writes them in
quotes with ``\\"`` and ``\\\\`` (before, a ``"`` ended the quoted word and the agent got
another passphrase, or none). Proven with the real net-snmp: the agent started on a
loopback port from the rendered createUser line answers snmpget -v3 with the passphrases
as they are. One with a line break is refused by the role, by name."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.unit.test_playbook_vars import ANSIBLE, render_role
from tests.unit.test_postgresql_passwords import run_tasks

AUTH = 'a "quoted" \\ back\\\\slash $x #y \'z\''
PRIV = 'p\\"riv "" \\\\ end\\'


async def pysnmp_sysname(port: int, auth: str, priv: str) -> str:
    hlapi = pytest.importorskip("pysnmp.hlapi.v3arch.asyncio")
    target = await hlapi.UdpTransportTarget.create(("127.0.0.1", port), timeout=2, retries=1)
    user = hlapi.UsmUserData("socctl-poller", auth, priv,
                             authProtocol=hlapi.usmHMACSHAAuthProtocol,
                             privProtocol=hlapi.usmAesCfb128Protocol)
    error, _, _, binds = await hlapi.get_cmd(
        hlapi.SnmpEngine(), user, target, hlapi.ContextData(),
        hlapi.ObjectType(hlapi.ObjectIdentity("1.3.6.1.2.1.1.5.0")))
    return "OK" if error is None and len(binds) == 1 else str(error)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(not (shutil.which("snmpd") and shutil.which("snmpget")
                         and Path(ANSIBLE).exists()),
                    reason="needs net-snmp (snmpd, snmpget) and ansible")
def test_a_passphrase_with_quotes_and_backslashes_reaches_the_agent_as_it_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCCTL_SNMP_USER", "socctl-poller")
    monkeypatch.setenv("SOCCTL_SNMP_AUTH_PASS", AUTH)
    monkeypatch.setenv("SOCCTL_SNMP_PRIV_PASS", PRIV)
    (tmp_path / "render").mkdir()
    rendered = render_role(tmp_path / "render", "snmp", "snmpd.conf.j2", {"snmp1": {
        "ansible_host": "127.0.0.1", "socctl_site": "lab"}})["snmp1"]
    create = [line for line in rendered.splitlines() if line.startswith("createUser ")]
    assert len(create) == 1, rendered
    port = free_udp_port()
    state = Path(tempfile.mkdtemp(prefix="socctl-snmpd-"))
    conf = state / "snmpd.conf"
    conf.write_text(f"agentaddress udp:127.0.0.1:{port}\nrouser socctl-poller priv\n"
                    f"{create[0]}\n")
    agent = subprocess.Popen(["snmpd", "-C", "-c", str(conf), "-f", "-Lo",
                              f"--persistentDir={state}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def get(auth: str, priv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["snmpget", "-v3", "-l", "authPriv", "-u", "socctl-poller",
                               "-a", "SHA", "-A", auth, "-x", "AES", "-X", priv, "-t", "1",
                               "-r", "1", f"127.0.0.1:{port}", "1.3.6.1.2.1.1.5.0"],
                              capture_output=True, text=True, timeout=30, check=False)
    try:
        for _ in range(50):
            answer = get(AUTH, PRIV)
            if "Timeout" not in answer.stderr:
                break
            time.sleep(0.2)
        assert answer.returncode == 0 and "STRING" in answer.stdout, answer.stderr
        # what the old template made of them: the words between the quotes
        wrong = get(AUTH.replace('"', ""), PRIV)
        assert wrong.returncode != 0
        # the poller (socctl.network.snmp) hands pysnmp the passphrases as they are
        assert asyncio.run(pysnmp_sysname(port, AUTH, PRIV)) == "OK"
    finally:
        agent.terminate()
        agent.wait(timeout=30)
        shutil.rmtree(state, ignore_errors=True)


@pytest.mark.skipif(not Path(ANSIBLE).exists(), reason="needs ansible")
def test_a_passphrase_with_a_line_break_is_refused_by_name(tmp_path: Path) -> None:
    done, data = run_tasks(tmp_path, ["main.yml"], {
        "snmp_v3_user": "socctl-poller", "snmp_v3_auth_pass": "fine passphrase",
        "snmp_v3_priv_pass": "two\nlines passphrase"}, role="snmp")
    assert done.returncode != 0
    messages = [str(item.get("msg", "")) for task in data["plays"][0]["tasks"]
                for result in task["hosts"].values()
                for item in result.get("results", [result]) if item.get("failed")]
    assert messages == ["snmp_v3_priv_pass (SOCCTL_SNMP_PRIV_PASS) must not contain a line "
                        "break or NUL."], messages
    assert "lines passphrase" not in done.stdout + done.stderr
