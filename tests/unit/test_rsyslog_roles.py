"""The rsyslog files the playbooks write, rendered from the roles' own templates and run by
real rsyslogd on loopback: a sender (common role: omrelp or omfwd over TLS, disk-assisted
queue) and the central receiver (log_collector role: imrelp and imtcp over TLS, one file per
sender). The lab's
provisioning test runs the plain RELP default on lab hosts; this one shows that the TLS
settings, which the lab does not give its hosts, make two rsyslogs that talk. No root."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import jinja2
import pytest

from tests.collect_harness import free_port
from tests.conftest import REPO
from tests.unit.test_collect_relp import OMRELP, certificates
from tests.unit.test_playbook_vars import render_role

ROLES = REPO / "playbooks" / "roles"
DRIVERS = ("/usr/lib/x86_64-linux-gnu/rsyslog", "/usr/lib/aarch64-linux-gnu/rsyslog",
           "/usr/lib/rsyslog")
GTLS = any(Path(d, "lmnsd_gtls.so").exists() for d in DRIVERS)
pytestmark = pytest.mark.skipif(not shutil.which("rsyslogd") or not OMRELP or not GTLS,
                                reason="needs rsyslogd with omrelp/imrelp and the GnuTLS driver "
                                       "(TCP over TLS, both ends) (Debian: rsyslog "
                                       "rsyslog-relp rsyslog-gnutls; ./dev installs them)")
PROTOCOLS = pytest.mark.parametrize("protocol", ["relp", "tcp"])


def render(template: Path, variables: dict[str, Any]) -> str:
    """As Ansible's template module renders (trim_blocks), failing on an unset variable."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(template.parent), trim_blocks=True,
                             undefined=jinja2.StrictUndefined, autoescape=False)
    return env.get_template(template.name).render(ansible_managed="managed by a test",
                                                  **variables)


def rsyslogd(work: Path, conf: str) -> subprocess.Popen[bytes]:
    work.mkdir()
    path = work / "rsyslog.conf"
    path.write_text(f'global(workDirectory="{work}")\n{conf}', encoding="utf-8")
    check = subprocess.run(["rsyslogd", "-N1", "-f", str(path)], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    return subprocess.Popen(["rsyslogd", "-n", "-f", str(path), "-i", str(work / "pid")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(*procs: subprocess.Popen[bytes]) -> None:
    """SIGTERM to each, then a wait; one still running after 30 s is killed (no rsyslogd of
    a test outlives it) and the test fails naming it."""
    for proc in procs:
        proc.terminate()
    stuck = []
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            stuck.append(" ".join(map(str, proc.args)))
    assert not stuck, f"rsyslogd did not stop on SIGTERM within 30 s: {stuck}"


def listening(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


EMPTY_SENDERS = '{"version": 1, "nomatch": "", "type": "string", "table": []}'


def collector_template(remote: Path, **settings: Any) -> str:
    """The log_collector role's receiver writing into ``remote``: plain (no TLS), every
    port free unless ``settings`` names it, and no sender address known by name unless
    ``settings`` names a table."""
    if "log_collector_senders_file" not in settings:
        remote.parent.mkdir(parents=True, exist_ok=True)
        table = remote.parent / f"{remote.name}-senders.json"
        table.write_text(EMPTY_SENDERS)
        settings["log_collector_senders_file"] = str(table)
    return render(ROLES / "log_collector" / "templates" / "collector.conf.j2", {
        "log_collector_port": free_port(), "log_collector_udp_port": free_port(),
        "log_collector_relp_port": free_port(), "log_collector_tls_port": free_port(),
        "log_collector_dir": str(remote), "log_collector_max_sessions": 10,
        "log_collector_tls_cert_file": "", "log_collector_tls_key_file": "",
        "log_collector_tls_ca_file": "", "log_collector_tls_peers": [], **settings})


def forward_template(spool: Path, **settings: Any) -> str:
    """The common role's forwarding to 127.0.0.1 over plain RELP, queued in ``spool``,
    unless ``settings`` says otherwise."""
    return render(ROLES / "common" / "templates" / "rsyslog_forward.conf.j2", {
        "socctl_log_collector": "dc-primary-log1", "common_rsyslog_protocol": "relp",
        "common_rsyslog_target": "127.0.0.1", "common_rsyslog_second_target": "",
        "common_rsyslog_tls_ca_file": "", "common_rsyslog_tls_cert_file": "",
        "common_rsyslog_tls_key_file": "", "common_rsyslog_tls_peer": "",
        "common_rsyslog_queue_size": 1000, "common_rsyslog_queue_max_disk": "16m",
        "common_rsyslog_spool_dir": str(spool), **settings})


def sender(work: Path, tcp_in: int, forward_conf: str) -> subprocess.Popen[bytes]:
    """A router's rsyslogd: what arrives on ``tcp_in`` (127.0.0.1) goes out as the common
    role forwards it."""
    return rsyslogd(work, 'module(load="imtcp")\n'
                    f'input(type="imtcp" port="{tcp_in}" address="127.0.0.1")\n'
                    + forward_conf)


def collector_conf(pki: dict[str, Path], remote: Path, tcp_recv: int, relp: int, tls: int,
                   peers: list[str]) -> str:
    """The log_collector role's receiver with TLS, permitting ``peers``."""
    conf = collector_template(
        remote, log_collector_port=tcp_recv, log_collector_relp_port=relp,
        log_collector_tls_port=tls, log_collector_max_sessions=100,
        log_collector_tls_cert_file=str(pki["server.pem"]),
        log_collector_tls_key_file=str(pki["server.key"]),
        log_collector_tls_ca_file=str(pki["ca.pem"]), log_collector_tls_peers=peers)
    assert 'tls="on"' in conf and 'streamDriver.mode="1"' in conf
    return conf


def forward(tmp_path: Path, protocol: str, peers: list[str], total: int,
            wait: float, collector_name: str = "collector.lab") -> list[str]:
    """Renders both roles with TLS, sends ``total`` messages into the sender, and returns
    the receiver's file of that router once they are all there or ``wait`` has passed."""
    pki = certificates(tmp_path / "pki")
    relp, tls, tcp_in, tcp_recv = free_port(), free_port(), free_port(), free_port()
    remote = tmp_path / "remote"
    receiver_conf = collector_conf(pki, remote, tcp_recv, relp, tls, peers)
    sender_conf = forward_template(
        tmp_path / "spool", common_rsyslog_protocol=protocol,
        common_rsyslog_port=relp if protocol == "relp" else tls,
        common_rsyslog_tls_ca_file=str(pki["ca.pem"]),
        common_rsyslog_tls_cert_file=str(pki["client.pem"]),
        common_rsyslog_tls_key_file=str(pki["client.key"]),
        common_rsyslog_tls_peer=collector_name)
    if protocol == "relp":
        assert 'type="omrelp"' in sender_conf and 'tls="on"' in sender_conf
    else:
        assert 'type="omfwd"' in sender_conf and 'StreamDriverMode="1"' in sender_conf
    (tmp_path / "spool").mkdir()
    receiver = rsyslogd(tmp_path / "receiver", receiver_conf)
    router = sender(tmp_path / "sender", tcp_in, sender_conf)
    try:
        listening(relp)
        listening(tls)
        listening(tcp_in)
        with socket.create_connection(("127.0.0.1", tcp_in)) as s:
            s.sendall(b"".join(b"<38>Nov 22 07:43:17 p01-rtr1 sshd[42]: Failed password for "
                               b"u%d from 203.0.113.9 port 22 ssh2\n" % i
                               for i in range(total)))
        got: list[str] = []
        deadline = time.monotonic() + wait
        while len(got) < total and time.monotonic() < deadline:
            time.sleep(0.2)
            path = remote / "p01-rtr1.log"
            got = path.read_text().splitlines() if path.exists() else []
    finally:
        stop(router, receiver)
    return got


@PROTOCOLS
def test_the_roles_tls_forwarding_delivers_every_message(tmp_path: Path,
                                                         protocol: str) -> None:
    """RELP over TLS (2514) and TCP over TLS (RFC 5425, 6514), each end checking the
    other's certificate: every message arrives once."""
    total = 500
    got = forward(tmp_path, protocol, ["p01-rtr1", "p02-rtr1"], total, wait=30)
    assert len(got) == total, f"{len(got)} of {total} arrived"
    assert {line.rsplit("for ", 1)[1].split()[0] for line in got} == \
        {f"u{i}" for i in range(total)}


@PROTOCOLS
def test_a_sender_whose_certificate_name_is_not_permitted_delivers_nothing(
        tmp_path: Path, protocol: str) -> None:
    """The receiver checks the sender's certificate name (RELP's tls.authMode name, imtcp's
    x509/name): a router's valid certificate under another name is refused, its messages
    stay queued."""
    assert forward(tmp_path, protocol, ["p99-rtr1"], 50, wait=5) == []


@PROTOCOLS
def test_a_sender_refuses_a_collector_under_another_name(tmp_path: Path,
                                                        protocol: str) -> None:
    """The sender checks the collector's certificate name too (common_rsyslog_tls_peer):
    a server with a valid certificate from the same CA under another name gets nothing."""
    assert forward(tmp_path, protocol, ["p01-rtr1"], 50, wait=5,
                   collector_name="other.lab") == []


def test_a_sender_cannot_name_itself_out_of_the_collectors_folder(tmp_path: Path) -> None:
    """The receiver's file is named after the sender's HOSTNAME, which the sender writes:
    an RFC 5424 line naming ``../..`` or ``a/b`` lands in a file inside the folder
    (``/`` replaced), not beside or above it."""
    tcp, relp = free_port(), free_port()
    remote = tmp_path / "base" / "remote"
    receiver = rsyslogd(tmp_path / "receiver", collector_template(
        remote, log_collector_port=tcp, log_collector_relp_port=relp))
    names = ["../escaped", "../../../up", "a/b", "..", ".", "p01-rtr1"]
    try:
        listening(tcp)
        with socket.create_connection(("127.0.0.1", tcp)) as s:
            s.sendall(b"".join(b"<38>1 2026-11-22T07:43:17Z %s sshd 42 - - line %d\n"
                               % (name.encode(), i) for i, name in enumerate(names)))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            written = sorted(p for p in tmp_path.rglob("*.log") if p.is_file())
            if sum(len(p.read_text().splitlines()) for p in written) >= len(names):
                break
            time.sleep(0.2)
    finally:
        stop(receiver)
    assert written, "the receiver wrote nothing"
    assert all(p.parent == remote for p in written), written
    assert remote / "p01-rtr1.log" in written
    lines = [line for p in written for line in p.read_text().splitlines()]
    assert sorted(int(line.rsplit(" ", 1)[1]) for line in lines) == list(range(len(names)))


def test_a_cisco_routers_udp_syslog_is_kept(tmp_path: Path) -> None:
    """`logging host` on IOS sends UDP 514 only: the collector takes it. An IOS line has no
    HOSTNAME after its sequence number, so it lands under the sender's address or name; a
    device whose line names it (RFC 3164) under that name."""
    tcp, udp = free_port(), free_port()
    remote = tmp_path / "remote"
    receiver = rsyslogd(tmp_path / "receiver", collector_template(
        remote, log_collector_port=tcp, log_collector_udp_port=udp))
    ios = [b"<189>%d: *Dec  3 19:20:%02d.123 ICT: %%SYS-5-CONFIG_I: Configured from console "
           b"by admin on vty0 (198.18.0.1)" % (i, i) for i in range(20)]
    named = b"<38>Dec  3 19:21:00 p02-rtr1 sshd[7]: Accepted publickey for ops"
    try:
        listening(tcp)  # the UDP input starts with it
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for datagram in [*ios, named]:
                s.sendto(datagram, ("127.0.0.1", udp))
        deadline = time.monotonic() + 10
        lines: list[str] = []
        while len(lines) < len(ios) + 1 and time.monotonic() < deadline:
            time.sleep(0.2)
            lines = [line for p in remote.glob("*.log") for line in p.read_text().splitlines()]
    finally:
        stop(receiver)
    assert len([line for line in lines if "%SYS-5-CONFIG_I" in line]) == len(ios), lines
    assert "Accepted publickey for ops" in (remote / "p02-rtr1.log").read_text()


def test_a_cisco_routers_udp_lines_land_under_its_inventory_name(tmp_path: Path) -> None:
    """An IOS line names no HOSTNAME rsyslog can read, so every router's file was named by
    the address it sent from: thousands of ``10.x.y.z.log`` for an analyst to map back. The
    role writes a table of every host's addresses from the inventory (management, loopback,
    link addresses: a router sends from the interface facing the collector), rendered here
    by Ansible, and the UDP input names the file by it."""
    hosts = {
        "p01-rtr1": {"ansible_host": "10.192.25.74", "socctl_loopback": "10.208.12.161",
                     "socctl_interfaces": [{"address": "127.0.0.1/8"}]},
        "p02-rtr1": {"ansible_host": "10.192.26.74", "socctl_loopback": None,
                     "socctl_interfaces": [{"address": "10.224.16.70/30"}]},
        "dc-primary-log1": {"ansible_host": "10.192.0.10"},
    }
    (tmp_path / "render").mkdir()
    rendered = render_role(tmp_path / "render", "log_collector", "senders.json.j2", hosts)
    table = json.loads(rendered["dc-primary-log1"])
    assert {row["index"]: row["value"] for row in table["table"]} == {
        "10.192.25.74": "p01-rtr1", "10.208.12.161": "p01-rtr1", "127.0.0.1": "p01-rtr1",
        "10.192.26.74": "p02-rtr1", "10.224.16.70": "p02-rtr1",
        "10.192.0.10": "dc-primary-log1"}
    senders = tmp_path / "senders.json"
    senders.write_text(rendered["dc-primary-log1"])
    tcp, udp = free_port(), free_port()
    remote = tmp_path / "remote"
    receiver = rsyslogd(tmp_path / "receiver", collector_template(
        remote, log_collector_port=tcp, log_collector_udp_port=udp,
        log_collector_senders_file=str(senders)))
    ios = [b"<189>%d: p01-rtr1: *Dec  3 19:20:%02d.123 ICT: %%SYS-5-CONFIG_I: Configured "
           b"from console by admin on vty0 (198.18.0.1)" % (i, i) for i in range(5)]
    try:
        listening(tcp)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for datagram in ios:
                s.sendto(datagram, ("127.0.0.1", udp))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(
                [p for p in remote.glob("*.log") for _ in p.read_text().splitlines()]) < 5:
            time.sleep(0.2)
    finally:
        stop(receiver)
    assert sorted(p.name for p in remote.glob("*.log")) == ["p01-rtr1.log"]
    assert (remote / "p01-rtr1.log").read_text().count("%SYS-5-CONFIG_I") == len(ios)


def late_client_hello(tmp_path: Path, peers: list[str], tries: int) -> list[str]:
    """The router's certificate over TCP over TLS into the collector, its ClientHello sent
    half a second after the connection (a busy sender): the receiver's first handshake step
    finds nothing to read and its second one waits for the client's certificate; ``tries``
    connections, one message each. Returns the receiver's file of that router after."""
    tmp_path.mkdir()
    pki = certificates(tmp_path / "pki")
    relp, tls, tcp_recv = free_port(), free_port(), free_port()
    remote = tmp_path / "remote"
    receiver = rsyslogd(tmp_path / "receiver",
                        collector_conf(pki, remote, tcp_recv, relp, tls, peers))
    context = ssl.create_default_context(cafile=str(pki["ca.pem"]))
    context.load_cert_chain(pki["client.pem"], pki["client.key"])
    try:
        listening(tls)
        for i in range(tries):
            with socket.create_connection(("127.0.0.1", tls)) as raw:
                time.sleep(0.5)
                try:
                    with context.wrap_socket(raw, server_hostname="collector.lab") as s:
                        s.sendall(b"<38>Nov 22 07:43:17 p01-rtr1 sshd[42]: Failed password "
                                  b"for u%d from 203.0.113.9 port 22 ssh2\n" % i)
                        s.settimeout(1)
                        s.recv(1)  # the receiver's close, or 1 s
                except (OSError, ssl.SSLError):
                    pass  # refused during or after the handshake
        time.sleep(1)
        path = remote / "p01-rtr1.log"
        return path.read_text().splitlines() if path.exists() else []
    finally:
        stop(receiver)


def test_a_late_client_hello_is_checked_like_any_other(tmp_path: Path) -> None:
    """rsyslog's OpenSSL driver (8.2302) skipped the name check when the handshake needed a
    second retry, so a busy sender under a name not permitted got its messages in now and
    then; the collector's TCP over TLS must refuse it every time, and take the permitted one
    every time."""
    assert late_client_hello(tmp_path / "refused", ["p99-rtr1"], tries=10) == []
    assert len(late_client_hello(tmp_path / "permitted", ["p01-rtr1"], tries=2)) == 2



def plain_collector(work: Path, address: str, relp: int, remote: Path
                    ) -> subprocess.Popen[bytes]:
    """The log_collector role's receiver without TLS, its RELP input on ``address`` only
    (two collectors on one machine share the port on 127.0.0.1 and 127.0.0.2, as the
    primary and the DR DC's do on their own hosts)."""
    conf = collector_template(remote, log_collector_relp_port=relp)
    conf = conf.replace('  type="imrelp"\n', f'  type="imrelp"\n  address="{address}"\n')
    return rsyslogd(work, conf)


def received(remote: Path) -> list[str]:
    path = remote / "p01-rtr1.log"
    return [line.rsplit(" ", 1)[1] for line in path.read_text().splitlines()] \
        if path.exists() else []



def test_each_message_reaches_both_dcs_collectors_while_one_is_down(tmp_path: Path) -> None:
    """The primary DC's collector stops and comes back: the DR DC's has every message as it
    is sent, and the primary's copy catches up from its own queue; each collector gets
    each message once."""
    relp, tcp_in = free_port(), free_port()
    sender_conf = forward_template(tmp_path / "spool", common_rsyslog_port=relp,
                                   common_rsyslog_second_target="127.0.0.2")
    assert sender_conf.count('type="omrelp"') == 2
    (tmp_path / "spool").mkdir()
    primary_dir, second_dir = tmp_path / "primary-remote", tmp_path / "second-remote"
    procs = {"primary": plain_collector(tmp_path / "primary", "127.0.0.1", relp, primary_dir),
             "second": plain_collector(tmp_path / "second", "127.0.0.2", relp, second_dir),
             "sender": sender(tmp_path / "sender", tcp_in, sender_conf)}

    def send(phase: str, count: int = 200) -> list[str]:
        with socket.create_connection(("127.0.0.1", tcp_in)) as s:
            s.sendall(b"".join(b"<38>Nov 22 07:43:17 p01-rtr1 sshd[42]: msg %s-%d\n"
                               % (phase.encode(), i) for i in range(count)))
        return [f"{phase}-{i}" for i in range(count)]

    def wait_for(want: list[str], where: Path, wait: float = 30) -> list[str]:
        deadline = time.monotonic() + wait
        got = received(where)
        while time.monotonic() < deadline and not set(want) <= set(got):
            time.sleep(0.2)
            got = received(where)
        return got

    try:
        listening(tcp_in)
        sent = send("up")
        assert set(sent) <= set(wait_for(sent, primary_dir))
        stop(procs.pop("primary"))
        down = send("down")
        sent += down
        at_second = wait_for(sent, second_dir)
        assert set(sent) <= set(at_second), "the DR DC's collector missed messages"
        assert not set(down) & set(received(primary_dir))
        time.sleep(12)  # down over two of the sender's retries (resumeInterval 5 s)
        sent += send("later")
        assert set(sent) <= set(wait_for(sent, second_dir))
        procs["primary"] = plain_collector(tmp_path / "primary-again", "127.0.0.1", relp,
                                           primary_dir)
        sent += send("back")
        at_primary = wait_for(sent, primary_dir)
        at_second = wait_for(sent, second_dir)
    finally:
        stop(*procs.values())
    assert sorted(at_primary) == sorted(sent), sorted(set(sent) - set(at_primary))
    assert sorted(at_second) == sorted(sent), sorted(set(sent) - set(at_second))



def test_socctl_reads_the_collectors_file_of_forwarded_messages(tmp_path: Path) -> None:
    """The common role forwards RFC 5424; rsyslog writes such a message to the collector's
    file with no colon after its tag (``sshd[42] Failed ...``), so socctl dead-lettered
    every line of a collector's files. The role's receiver writes them here; each line
    is read back with its program, pid and message, and routed to its parser."""
    from socctl.collector.parse import parse_line

    tcp = free_port()
    remote = tmp_path / "remote"
    receiver = rsyslogd(tmp_path / "receiver", collector_template(
        remote, log_collector_port=tcp))
    sent = [
        b"<38>1 2026-11-22T07:43:17Z p01-rtr1 sshd 42 - - Failed password for root from "
        b"198.18.9.9 port 22 ssh2",
        b"<30>1 2026-11-22T07:43:18Z p01-rtr1 ulogd 459 - - socctl-fw drop:  IN=wan1 OUT= "
        b"SRC=198.18.7.7 DST=198.19.255.6 LEN=44 PROTO=TCP SPT=41234 DPT=23 SYN URGP=0",
        b"<30>1 2026-11-22T07:43:19Z p01-rtr1 ospfd - - - AdjChg: Nbr 198.19.255.1 on "
        b"wan1: Full -> Deleted (InactivityTimer)",
    ]
    path = remote / "p01-rtr1.log"
    try:
        listening(tcp)
        with socket.create_connection(("127.0.0.1", tcp)) as s:
            s.sendall(b"".join(m + b"\n" for m in sent))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
                not path.exists() or len(path.read_text().splitlines()) < len(sent)):
            time.sleep(0.2)
    finally:
        stop(receiver)
    lines = path.read_text().splitlines()
    assert len(lines) == len(sent), lines
    events = [parse_line("syslog", line) for line in lines]
    assert [(e["event"]["dataset"], e["process"]["name"], e["process"].get("pid"))
            for e in events] == [("sshd", "sshd", 42), ("netfilter", "ulogd", 459),
                                 ("frr", "ospfd", None)]
    assert events[0]["source"]["ip"] == "198.18.9.9"
    assert events[1]["destination"]["port"] == 23
    assert all(e["host"]["name"] == "p01-rtr1" for e in events)
