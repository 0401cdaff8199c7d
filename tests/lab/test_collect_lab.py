"""Logs from the lab's real daemons reach the collector and the embedded store.

The collector runs on the machine's side of the lab, listening on the management bridge
address (198.18.0.1) that every lab host reaches: that is the network path a SOC collector
has (devices send to it), and it needs nothing installed inside the hosts. rsyslog inside
a server forwards over TCP (octet-counted RFC 5424) and a router's over RELP (omrelp),
sshd and FRR's ospfd produce the
events (ospfd's via the router's rsyslog-written /var/log/frr/frr.log, tailed through
the host's root),
net-snmp's snmptrap sends v2c and v3 traps, rsyslog's auth.log is tailed while rsyslog
rotates it, and the demo step sends UDP syslog with logger from the routers.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

import pytest

from socctl.config import Settings
from socctl.lab import runtime
from socctl.lab.plan import LabPlan
from tests.collect_harness import Harness

GATEWAY = "198.18.0.1"
FORWARD = "/etc/rsyslog.d/90-socctl-test.conf"
V3_USER, V3_AUTH, V3_PRIV, V3_ENGINE = "soctrap", "authpass-lab-1", "privpass-lab-1", \
    "8000000001020304"


def free(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((GATEWAY, 0))
        return int(s.getsockname()[1])


def restart_rsyslog(host: str) -> None:
    """Restart the rsyslogd the lab started in ``host`` (by its pid file) to load config."""
    runtime.run_in(host, ["sh", "-c", "kill $(cat /run/rsyslogd.pid) 2>/dev/null; "
                          "for i in $(seq 50); do [ -e /run/rsyslogd.pid ] || break; "
                          "sleep 0.1; done; rm -f /run/rsyslogd.pid; /usr/sbin/rsyslogd"])
    time.sleep(0.5)


def ssh_probe(settings: Settings, address: str, user: str) -> None:
    """A failed login as an unknown user: sshd logs "Invalid user" (real auth failure)."""
    import subprocess

    subprocess.run(["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                    "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
                    "-o", "PubkeyAuthentication=no", f"{user}@{address}", "true"],
                   capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def collector(lab: LabPlan, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    tmp_path = tmp_path_factory.mktemp("collect-lab")
    tcp, relp, trap = free(socket.SOCK_STREAM), free(socket.SOCK_STREAM), free(socket.SOCK_DGRAM)
    log1 = runtime._host_pid("dc-primary-log1")  # the host's root, seen from the machine
    rtr = runtime._host_pid("p01d01-rtr1")
    h = Harness(tmp_path, [
        {"name": "tcp", "source": {"type": "syslog_tcp", "listen": f"{GATEWAY}:{tcp}"},
         "parser": {"dataset": "syslog"}},
        {"name": "relp", "source": {"type": "relp", "listen": f"{GATEWAY}:{relp}"},
         "parser": {"dataset": "syslog"}, "ecs": {"fields": {"labels.via": "relp"}}},
        {"name": "traps", "source": {"type": "snmp_trap", "listen": f"{GATEWAY}:{trap}",
                                     "snmp_users_env": "SOCCTL_TEST_SNMP_USERS"},
         "parser": {"dataset": "snmp.trap"}},
        {"name": "authfile", "source": {"type": "file", "start_at": "end",
                                        "paths": [f"/proc/{log1}/root/var/log/auth.log"]},
         "parser": {"dataset": "syslog"}, "ecs": {"fields": {"labels.via": "file"}}},
        # Debian's FRR package routes the daemons' syslog to /var/log/frr/frr.log and
        # stops them there (/etc/rsyslog.d/45-frr.conf): that file is what a router has
        {"name": "rtrfile", "source": {"type": "file", "start_at": "end",
                                       "paths": [f"/proc/{rtr}/root/var/log/frr/frr.log"]},
         "parser": {"dataset": "syslog"}, "ecs": {"fields": {"labels.via": "rtrfile"}}},
    ], env={"SOCCTL_SNMP_COMMUNITIES": "lab-trap-community",
            "SOCCTL_TEST_SNMP_USERS": f"{V3_USER}:{V3_AUTH}:{V3_PRIV}:{V3_ENGINE}"})
    runtime.run_in("dc-primary-log1", ["sh", "-c", f"cat > {FORWARD} <<'EOF'\n"
                   f'*.* action(type="omfwd" target="{GATEWAY}" port="{tcp}" protocol="tcp" '
                   'TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format" '
                   'action.resumeRetryCount="-1")\nEOF'])
    # what provisioning sets on every host: omrelp to the collector
    runtime.run_in("p01-rtr1", ["sh", "-c", f"cat > {FORWARD} <<'EOF'\n"
                   'module(load="omrelp")\n'
                   f'user.* action(type="omrelp" target="{GATEWAY}" port="{relp}" '
                   'template="RSYSLOG_SyslogProtocol23Format" queue.type="LinkedList" '
                   'action.resumeRetryCount="-1")\nEOF'])
    # what provisioning sets on routers: adjacency changes are logged
    runtime.run_in("p01d01-rtr1", ["vtysh", "-c", "configure terminal", "-c", "router ospf",
                                   "-c", "log-adjacency-changes"])
    h.ports = {"tcp": tcp, "relp": relp, "trap": trap}  # type: ignore[attr-defined]
    h.start()
    restart_rsyslog("dc-primary-log1")
    restart_rsyslog("p01-rtr1")
    try:
        yield h
    finally:
        h.close()
        for host in ("dc-primary-log1", "p01-rtr1"):
            runtime.run_in(host, ["rm", "-f", FORWARD])
            restart_rsyslog(host)


def test_sshd_via_rsyslog_tcp_rfc5424(collector: Harness, lab: LabPlan,
                                      lab_settings: Settings) -> None:
    log1 = str(lab.host("dc-primary-log1").management.ip)
    probe = f"probe{uuid.uuid4().hex[:8]}"
    ssh_probe(lab_settings, log1, probe)
    where_ssh = (f"dataset = 'sshd' AND user_name = '{probe}' AND event_action = "
                 "'invalid_user' AND json_extract(doc, '$.labels.via') IS NULL")
    assert collector.wait_count(1, where_ssh) >= 1
    with collector.db() as db:
        row = db.execute(f"SELECT host_name, socctl_site, socctl_tier, source_ip, host_ip "
                         f"FROM events WHERE {where_ssh}").fetchone()
    assert row == ("dc-primary-log1", "dc-primary", "dc", GATEWAY, log1)
    found = collector.socctl("-o", "json", "events", "search",
                             f"user.name:{probe} AND socctl.site:dc-primary")
    assert found.returncode == 0 and probe in found.stdout


def test_a_province_router_forwards_over_relp(collector: Harness) -> None:
    """The router's own rsyslog (omrelp, over the lab network) into the RELP source: every
    message stored once, enriched with the router's site."""
    marker = f"relp{uuid.uuid4().hex[:8]}"
    total = 300
    runtime.run_in("p01-rtr1", ["sh", "-c", f"for i in $(seq {total}); do "
                                f"logger -p user.notice -t socctl-test {marker}-$i; done"])
    where = f"dataset = 'syslog' AND message LIKE '%{marker}-%'"
    assert collector.wait_count(total, where) == total
    with collector.db() as db:
        rows = db.execute(f"SELECT count(DISTINCT message), min(socctl_site), "
                          f"max(host_name), min(json_extract(doc, '$.labels.via')) "
                          f"FROM events WHERE {where}").fetchone()
    assert rows == (total, "p01", "p01-rtr1", "relp")
    stats = collector.stats()["sources"]["relp"]
    assert stats["connections"] >= 1 and stats["framing_errors"] == 0, stats


def test_ospf_adjacency_from_the_routers_syslog(collector: Harness,
                                               lab_settings: Settings) -> None:
    runtime.set_link(lab_settings, "p01d01-wan1", up_=False)  # ospfd logs the loss
    try:
        time.sleep(5)
    finally:
        runtime.set_link(lab_settings, "p01d01-wan1", up_=True)
    ospf = ("dataset = 'frr' AND event_action = 'ospf_adjacency_change' AND "
            "host_name = 'p01d01-rtr1'")
    if collector.wait_count(1, ospf) < 1:
        with collector.db() as db:
            seen = list(db.execute("SELECT dataset, message FROM events WHERE host_name = "
                                   "'p01d01-rtr1' LIMIT 20"))
        pytest.fail(f"no adjacency change from p01d01-rtr1; its events: {seen}")
    with collector.db() as db:
        site = db.execute(f"SELECT socctl_site, socctl_tier, socctl_province, observer_name "
                          f"FROM events WHERE {ospf} LIMIT 1").fetchone()
    assert site == ("p01d01", "district", "01", "p01d01-rtr1")


def test_snmp_traps_v2c_and_v3_from_lab_routers(collector: Harness) -> None:
    port = collector.ports["trap"]  # type: ignore[attr-defined]
    v2 = runtime.run_in("p01d01-rtr1", [
        "snmptrap", "-v2c", "-c", "lab-trap-community", f"{GATEWAY}:{port}", "",
        "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.2", "i", "2"])
    assert v2.returncode == 0, v2.stderr
    v3 = runtime.run_in("p79-rtr1", [
        "snmptrap", "-v3", "-u", V3_USER, "-l", "authPriv", "-a", "SHA", "-A", V3_AUTH,
        "-x", "AES", "-X", V3_PRIV, "-e", f"0x{V3_ENGINE}", f"{GATEWAY}:{port}", "",
        "1.3.6.1.6.3.1.1.5.5"])
    assert v3.returncode == 0, v3.stderr
    bad = runtime.run_in("p79-rtr1", [  # a wrong community is not an event
        "snmptrap", "-v2c", "-c", "guessed", f"{GATEWAY}:{port}", "", "1.3.6.1.6.3.1.1.5.1"])
    assert bad.returncode == 0
    wrong_key = runtime.run_in("p79-rtr1", [  # nor a v3 trap under a wrong key
        "snmptrap", "-v3", "-u", V3_USER, "-l", "authPriv", "-a", "SHA", "-A", "not-the-key",
        "-x", "AES", "-X", V3_PRIV, "-e", f"0x{V3_ENGINE}", f"{GATEWAY}:{port}", "",
        "1.3.6.1.6.3.1.1.5.5"])
    assert wrong_key.returncode == 0
    traps = "dataset = 'snmp.trap'"
    assert collector.wait_count(2, traps) == 2
    deadline = time.monotonic() + 15  # both refusals counted, not only dropped
    while collector.stats()["sources"]["traps"]["auth_failures"] < 2 \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    assert collector.stats()["sources"]["traps"]["auth_failures"] == 2
    time.sleep(1)
    with collector.db() as db:
        got = set(db.execute(f"SELECT event_action, socctl_site, user_name FROM events "
                             f"WHERE {traps}"))
    assert got == {("link_down", "p01d01", None),
                   ("authentication_failure", "p79", V3_USER)}


def test_auth_log_rotated_by_rsyslog_while_tailed(collector: Harness, lab: LabPlan,
                                                  lab_settings: Settings) -> None:
    log1 = str(lab.host("dc-primary-log1").management.ip)
    via_file = ("json_extract(doc, '$.labels.via') = 'file' AND event_action = "
                "'invalid_user' AND user_name LIKE 'rot%'")
    names = [f"rot{uuid.uuid4().hex[:6]}{i}" for i in range(6)]
    for name in names[:3]:
        ssh_probe(lab_settings, log1, name)
    assert collector.wait_count(3, via_file) == 3
    rotated = runtime.run_in("dc-primary-log1", [
        "sh", "-c", "mv /var/log/auth.log /var/log/auth.log.1 && "
                    "kill -HUP $(cat /run/rsyslogd.pid)"])
    assert rotated.returncode == 0, rotated.stderr
    for name in names[3:]:
        ssh_probe(lab_settings, log1, name)
    assert collector.wait_count(6, via_file) == 6
    time.sleep(1)
    with collector.db() as db:
        users = [r[0] for r in db.execute(f"SELECT user_name FROM events WHERE {via_file}")]
    assert sorted(users) == sorted(names)  # each once: nothing lost, nothing doubled


def test_demo_step_collects_from_the_lab(lab: LabPlan, lab_settings: Settings) -> None:
    from socctl.collector.demo import demo_collect

    detail, data = demo_collect(lab_settings)
    assert "4 events" in detail or "events from lab hosts" in detail
    assert {"p01", "p79", "dc-primary", "p01d01"} <= set(data["sites"])
