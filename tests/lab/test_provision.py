"""socctl provision on the lab: --check first, converge, verify for real, idempotence, waves.

The tests run in file order against one lab: a --check run on the fresh lab, then the
converge (a module fixture), the checks of what it built, a second run that must change
nothing, and the rollout tests with a host made unreachable. On the way out the host
firewall table is removed again so later lab tests see the lab's baseline reachability.
(The backup and drill tests run earlier in the session and may already have built the
databases with playbooks/database.yml: the converge must then take them over unchanged.)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from socctl.config import Settings
from socctl.detection.demo import (
    BENIGN_REQUESTS,
    WEB_ATTACKS,
    db_guessing,
    port_scan,
    web_attack,
)
from socctl.lab import runtime
from socctl.lab.plan import LabPlan
from tests.conftest import REPO
from tests.lab.analyst import replay_and_detect, search_store

EXIT_HOST_FAILURES = 2
SYS_LOCATION, SYS_NAME = ".1.3.6.1.2.1.1.6.0", ".1.3.6.1.2.1.1.5.0"


def provision(settings: Settings, *args: str) -> tuple[int, dict[str, Any], str]:
    env = {**os.environ, "SOCCTL_STATE_DIR": str(settings.state_dir),
           "SOCCTL_INVENTORY": str(settings.inventory)}
    result = subprocess.run([sys.executable, "-m", "socctl", "-o", "json", "provision", "--lab",
                             *args], capture_output=True, text=True, cwd=REPO, env=env,
                            timeout=600)
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"provision printed no JSON (exit {result.returncode}): {result.stderr}")
    return result.returncode, data, result.stdout + result.stderr


def _secrets(settings: Settings) -> dict[str, str]:
    data: dict[str, str] = json.loads(runtime.LabPaths.of(settings).secrets.read_text())
    return data


def _state_of(host: str) -> str:
    """What provisioning may change on a host, as one digest."""
    out = runtime.run_in(host, ["sh", "-c",
                                "cat /etc/ssh/sshd_config.d/* /etc/snmp/snmpd.conf "
                                "/etc/frr/frr.conf /etc/chrony/chrony.conf 2>/dev/null; "
                                "ls -la /etc/rsyslog.d /etc/sudoers.d 2>&1; "
                                "getent passwd vssadmin; nft list ruleset"]).stdout
    return hashlib.sha256(out.encode()).hexdigest()


@pytest.fixture(scope="module")
def firewall_cleanup(lab: LabPlan) -> Iterator[None]:
    yield
    for name in lab.hosts:
        runtime.run_in(name, ["nft", "delete", "table", "inet", "socctl"], timeout=10)


def test_check_changes_nothing_on_the_hosts(lab: LabPlan, lab_settings: Settings,
                                           firewall_cleanup: None) -> None:
    hosts = ["p79-rtr1", "dc-primary-log1"]
    before = {h: _state_of(h) for h in hosts}
    # a router and the collector (not the whole primary DC: the suite's time)
    rc, data, output = provision(lab_settings, "--check", "--diff", "--site", "p79",
                                 "--site", "dc-primary", "--role", "edge_router",
                                 "--role", "log_collector")
    assert rc == 0, output
    assert data["check"] is True
    assert sorted(data["hosts"]) == sorted(hosts)
    assert data["hosts"]["p79-rtr1"]["changed"] > 0, "a fresh host needs changes"
    assert any("PermitRootLogin" in d["diff"] for d in data["hosts"]["p79-rtr1"]["diffs"])
    assert {h: _state_of(h) for h in hosts} == before, "--check changed a host"
    for key in ("snmp_auth", "snmp_priv"):
        assert _secrets(lab_settings)[key] not in output


@pytest.fixture(scope="module")
def converged(lab: LabPlan, lab_settings: Settings, firewall_cleanup: None
              ) -> dict[str, Any]:
    started = time.monotonic()
    rc, data, output = provision(lab_settings)
    data["_rc"], data["_output"] = rc, output
    data["_seconds"] = time.monotonic() - started
    return data


def test_one_provision_builds_every_lab_host(lab: LabPlan, lab_settings: Settings,
                                             converged: dict[str, Any]) -> None:
    assert converged["_rc"] == 0, converged["_output"]
    assert set(converged["hosts"]) == set(lab.hosts)
    for name, host in converged["hosts"].items():
        assert host["status"] == "changed" and host["failed"] == 0, (name, host["errors"])
    record = Path(converged["record"])
    assert record.parent == lab_settings.state_dir / "provision" / "runs"
    saved = json.loads(record.read_text())
    assert saved["user"] and saved["counts"]["changed"] == len(lab.hosts)
    from socctl.backup.provision import db_secrets

    db = db_secrets(lab_settings)
    for secret in (_secrets(lab_settings)["snmp_auth"], _secrets(lab_settings)["snmp_priv"],
                   db.replication_password, db.app_password):
        assert secret not in record.read_text()
        assert secret not in converged["_output"]


def test_sshd_refuses_password_login_for_root(lab: LabPlan, converged: dict[str, Any]
                                              ) -> None:
    for host in lab.hosts.values():
        result = subprocess.run(
            ["ssh", "-o", "BatchMode=yes", "-o", "PreferredAuthentications=password",
             "-o", "PubkeyAuthentication=no", "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
             f"root@{host.management.ip}", "true"], capture_output=True, text=True, timeout=30)
        assert result.returncode == 255 and "Permission denied" in result.stderr, host.name
        effective = runtime.run_in(host.name, ["/usr/sbin/sshd", "-T"]).stdout.lower()
        assert "permitrootlogin without-password" in effective, host.name
        ciphers = next(line for line in effective.splitlines() if line.startswith("ciphers "))
        assert "cbc" not in ciphers and "chacha20-poly1305@openssh.com" in ciphers


def _snmp(tmp_path: Path, settings: Settings, version_args: list[str], address: str
          ) -> subprocess.CompletedProcess[str]:
    """snmpget with the credentials in a 0600 snmp.conf, never on the command line."""
    secret = _secrets(settings)
    conf = tmp_path / "snmp.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"defSecurityName {secret['snmp_user']}\ndefAuthType SHA\ndefPrivType AES\n"
                  f"defAuthPassphrase {secret['snmp_auth']}\n"
                  f"defPrivPassphrase {secret['snmp_priv']}\n")
    # numeric OIDs, no MIB files (Debian ships the standard MIBs in a non-free package)
    return subprocess.run(["snmpget", "-m", "", *version_args, "-t", "2", "-r", "1", "-Ov",
                           address, SYS_LOCATION, SYS_NAME],
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ, "SNMPCONFPATH": str(tmp_path)})


def test_snmpd_answers_v3_authpriv_and_refuses_v2c(lab: LabPlan, lab_settings: Settings,
                                                   converged: dict[str, Any],
                                                   tmp_path: Path) -> None:
    router = lab.hosts["p01-rtr1"]
    address = str(router.management.ip)
    v3 = _snmp(tmp_path, lab_settings, ["-v3", "-l", "authPriv"], address)
    assert v3.returncode == 0, v3.stderr
    # net-snmp quotes strings or not depending on what else it printed: compare unquoted
    lines = [line.replace('"', "").strip() for line in v3.stdout.strip().splitlines()]
    assert "STRING: p01-rtr1" in lines, v3.stdout
    assert lines[0] != "STRING: p01", "sysLocation is still the lab baseline's"
    no_priv = _snmp(tmp_path, lab_settings, ["-v3", "-l", "authNoPriv"], address)
    assert no_priv.returncode != 0 or "authorizationError" in no_priv.stdout + no_priv.stderr
    for community in ("public", "private"):
        v2c = _snmp(tmp_path, lab_settings, ["-v2c", "-c", community], address)
        assert v2c.returncode != 0 and "Timeout" in v2c.stderr, v2c.stdout


def test_log_from_a_province_router_reaches_the_collector_over_relp(
        lab: LabPlan, converged: dict[str, Any]) -> None:
    """The router's rsyslog forwards with omrelp (acknowledged) to the collector's imrelp,
    through both hosts' firewalls; the collector writes it to the router's own file."""
    collector = lab.hosts["dc-primary-log1"]
    assert collector.lan is not None
    marker = f"socctl-provision-test-{uuid.uuid4().hex}"
    runtime.run_in("p01-rtr1", ["logger", "-t", "socctl-test", marker])
    deadline = time.monotonic() + 20
    found = ""
    while time.monotonic() < deadline and not found:
        found = runtime.run_in(collector.name, ["grep", "-h", marker,
                                                "/var/log/remote/p01-rtr1.log"]).stdout
        time.sleep(0.5)
    assert marker in found
    relp = runtime.run_in("p01-rtr1", ["ss", "-Htn", "state", "established",
                                       "dst", f"{collector.lan.ip}:2514"]).stdout
    assert str(collector.lan.ip) in relp, "forwarding is not over RELP to the collector"
    conf = runtime.run_in("p01-rtr1", ["cat", "/etc/rsyslog.d/60-socctl-forward.conf"]).stdout
    assert 'type="omrelp"' in conf and "omfwd" not in conf



def test_udp_syslog_from_a_router_reaches_the_collector_through_its_firewall(
        lab: LabPlan, converged: dict[str, Any]) -> None:
    """What a Cisco router's `logging host` sends (UDP 514) is taken by the collector and
    let through its firewall, into the sender's file: named by the inventory's name of the
    address it came from, as an IOS line names no HOSTNAME rsyslog reads (the file was
    named by that address)."""
    collector = lab.hosts["dc-primary-log1"]
    assert collector.lan is not None
    marker = f"socctl-udp-test-{uuid.uuid4().hex}"
    line = (f"<189>12: *Dec  3 19:20:01.123 ICT: %SYS-5-CONFIG_I: Configured from console "
            f"by {marker} on vty0 (198.18.0.1)")
    udp = f"/dev/udp/{collector.lan.ip}/514"
    sent = runtime.run_in("p79-rtr1", ["bash", "-c", f'printf %s "$1" > {udp}', "send", line])
    assert sent.returncode == 0, sent.stderr
    deadline = time.monotonic() + 20
    found = ""
    while time.monotonic() < deadline and not found:
        found = runtime.run_in(collector.name, ["grep", "-rh", marker, "/var/log/remote"]).stdout
        time.sleep(0.5)
    assert marker in found
    assert marker in runtime.run_in(collector.name, ["cat", "/var/log/remote/p79-rtr1.log"]).stdout

def test_a_port_scan_of_a_router_is_logged_per_source_and_detected(
        lab: LabPlan, lab_settings: Settings, converged: dict[str, Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The firewall logs each source's drops up to a rate of its own. Before, one limit of
    10 a minute for the whole host logged at most 15 of a scan's minute (fw_port_scan
    counts 15 ports) and none of a second scanner's in that minute; and the lab logged
    no drops at all. Two scans of p79-rtr1 seconds apart: from the machine (100 ports,
    over the management bridge) and from a DC server (40 ports, routed to the router's
    loopback over the WAN). ulogd2 and the router's rsyslog bring each drop to the DC's
    collector; the first scanner's are cut at its burst, the second's all kept. `collect
    replay` of the collector's file and `detect run --all` alert on each scanner."""
    if shutil.which("nmap") is None:
        pytest.skip("nmap is needed (./dev installs it)")
    defaults = yaml.safe_load((REPO / "playbooks/roles/firewall/defaults/main.yml").read_text())
    burst, rate = defaults["firewall_log_source_burst"], defaults["firewall_log_source_rate"]
    started = time.monotonic()
    first = port_scan(lab_settings, "p79-rtr1", ports=100)
    took = time.monotonic() - started
    second = port_scan(lab_settings, "p79-rtr1", ports=40, source="dc-primary-db1")
    assert first.scanner_ip != second.scanner_ip
    # 99 ports dropped (ssh is open to the management network): logged up to the burst
    assert 15 <= first.drops <= burst + rate * took / 60, (first.drops, took)
    assert second.drops == 40, second.drops  # the first used up its own burst only
    dropped = [line for line in second.collected.splitlines() if "socctl-fw drop" in line]
    assert all(" ulogd[" in line for line in dropped), dropped[:2]
    collected = tmp_path / "p79-rtr1.log"
    collected.write_text(second.collected, encoding="utf-8")

    replayed, alerts = replay_and_detect(collected, tmp_path / "state", monkeypatch)
    assert replayed["dead_letter"] == 0, replayed
    scans = {a.get("source.ip"): a["count"] for a in alerts
             if a["rule_title"].startswith("Port Scan")}
    assert set(scans) == {first.scanner_ip, second.scanner_ip}, alerts
    assert scans[second.scanner_ip] == 40 and scans[first.scanner_ip] == first.drops


# The rule each attack of WEB_ATTACKS is for (detections/web).
WEB_RULES = {
    "sql injection": "SQL Injection Attempt in Web Request",
    "cross-site scripting": "Cross-Site Scripting Attempt in Web Request",
    "directory traversal": "Directory Traversal or File Inclusion Attempt",
    "request forgery": "Server-Side Request Forgery Attempt in Web Request (internal or "
                       "metadata address in a parameter)",
    "command injection": "OS Command Injection Attempt in Web Request",
    "known-vulnerable component": "Request for a Known-Vulnerable Web Component (FCKEditor "
                                  "and similar)",
    "vulnerability scanner": "Web Vulnerability Scanner User Agent",
}
THROTTLED_RULE = "Web Login Guessing Held Back by the Portal's Rate Limit"


def test_web_attacks_on_the_portal_are_logged_by_nginx_and_detected(
        lab: LabPlan, lab_settings: Settings, converged: dict[str, Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The web role's nginx on dc-primary-web1 logs every request to syslog, and the web
    server's rsyslog forwards it to the DC's collector. One request per attack class from
    a province router (routed over its WAN link to the DC's server LAN), then 40 login
    guesses as fast as they are answered, and a benign client's requests from the
    database server beside it: every request is answered and reaches the collector once;
    the guesses beyond the role's login limit are answered 429 and each refusal reaches
    the collector from nginx's error log; `collect replay` + `detect run --all` of the
    collector's file raise each attack's rule and the throttled-login correlation on the
    attacker, and nothing on the benign client."""
    assert {attack for attack, _, _ in WEB_ATTACKS} == set(WEB_RULES)
    conf = runtime.run_in("dc-primary-web1", ["cat", "/etc/nginx/nginx.conf"]).stdout
    assert "socctl web role" in conf
    # nginx logs to rsyslog's own socket for it, whose queue holds a burst
    web = yaml.safe_load((REPO / "playbooks/roles/web/defaults/main.yml").read_text())
    assert f"syslog:server=unix:{web['web_syslog_socket']}," in conf
    queue = runtime.run_in("dc-primary-web1", ["cat", "/proc/sys/net/unix/max_dgram_qlen"])
    assert queue.stdout.strip() == str(web["web_log_socket_queue"])
    attack = web_attack(lab_settings, attacker="p01-rtr1", benign="dc-primary-db1")
    assert attack.attacker_ip not in (attack.benign_ip, str(lab.host("p01-rtr1").management.ip))
    assert all(isinstance(status, int) for status in attack.statuses), attack.statuses
    guesses = attack.statuses[len(WEB_ATTACKS):len(WEB_ATTACKS) + attack.guesses]
    # the holding page has no login form (404); the limit lets 20 or so through at once
    assert set(guesses) == {404, 429} and attack.throttled >= 10, guesses
    assert attack.logged == (len(WEB_ATTACKS) + attack.guesses + len(BENIGN_REQUESTS)
                             + attack.throttled), attack.logged
    collected = tmp_path / "dc-primary-web1.log"
    collected.write_text(attack.collected, encoding="utf-8")

    replayed, alerts = replay_and_detect(collected, tmp_path / "state", monkeypatch)
    assert replayed["dead_letter"] == 0, replayed
    on_attacker = {a["rule_title"] for a in alerts if a.get("source.ip") == attack.attacker_ip}
    assert {*WEB_RULES.values(), THROTTLED_RULE} <= on_attacker, sorted(on_attacker)
    throttled = next(a for a in alerts if a["rule_title"] == THROTTLED_RULE)
    assert throttled["count"] == attack.throttled, throttled
    assert not [a for a in alerts if a.get("source.ip") == attack.benign_ip], alerts
    refusals = search_store(tmp_path / "state", "event.dataset:nginx.error AND "
                            "event.action:request-rate-limited")
    assert len(refusals) == attack.throttled, refusals
    assert {(e["source"]["ip"], e["url"]["path"], e["nginx"]["error"]["zone"])
            for e in refusals} == {(attack.attacker_ip, "/dang-nhap", "login")}


def test_database_password_guessing_from_the_portals_server_is_forwarded_and_detected(
        lab: LabPlan, lab_settings: Settings, converged: dict[str, Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The postgresql role has the database server's rsyslog read PostgreSQL's log and
    forward it with the host's other messages. Eight wrong passwords from the portal's web
    server beside it (an attacker's next step from a compromised portal): each refused,
    each refusal on the DC's collector once, read as the SOC reads it (`collect replay` of
    the server's file, `detect run --all`): PostgreSQL events naming the server and the
    client, and the database burst rule alerting on the web server's address."""
    attack = db_guessing(lab_settings)
    assert attack.refused == attack.guesses == 8, attack
    assert attack.logged == attack.guesses, attack.collected[-2000:]
    collected = tmp_path / "dc-primary-db1.log"
    collected.write_text(attack.collected, encoding="utf-8")
    replayed, alerts = replay_and_detect(collected, tmp_path / "state", monkeypatch)
    assert replayed["dead_letter"] == 0, replayed
    refusals = search_store(tmp_path / "state", "event.dataset:postgresql AND "
                            "event.action:login_failed")
    assert len(refusals) == attack.guesses, refusals
    assert {(e["host"]["name"], e["source"]["ip"], e["user"]["name"]) for e in refusals} == {
        ("dc-primary-db1", attack.attacker_ip, "socctl_app")}
    burst = [a for a in alerts if a["rule_title"].startswith("PostgreSQL Authentication "
                                                             "Failures in a Burst")]
    assert [(a.get("source.ip"), a["count"]) for a in burst] == [
        (attack.attacker_ip, attack.guesses)], alerts


def _ospf_costs(host: str) -> dict[str, int]:
    out = runtime.run_in(host, ["vtysh", "-c", "show ip ospf interface json"]).stdout
    data = json.loads(out or "{}")
    interfaces = data.get("interfaces", data)
    return {name: int(body.get("cost", 0)) for name, body in interfaces.items()
            if isinstance(body, dict)}


def test_ospf_is_up_on_both_wan_links_with_the_backup_costed_higher(
        lab: LabPlan, converged: dict[str, Any]) -> None:
    runtime.wait_converged(lab)
    for office in ("p01d01-rtr1", "p01-rtr1"):
        full = {n["interface"] for n in runtime.ospf_neighbours(office)
                if n["state"].startswith("Full")}
        assert {"wan1", "wan2"} <= full, (office, full)
        costs = _ospf_costs(office)
        assert costs["wan2"] > costs["wan1"], costs
    frr = runtime.run_in("p01d01-rtr1", ["cat", "/etc/frr/frr.conf"]).stdout
    assert "socctl routing role" in frr


def test_host_firewall_denies_by_default_and_keeps_management(
        lab: LabPlan, lab_settings: Settings, converged: dict[str, Any]) -> None:
    for host in lab.hosts.values():
        chain = runtime.run_in(host.name, ["nft", "list", "chain", "inet", "socctl",
                                           "input"]).stdout
        assert "policy drop" in chain, host.name
        assert "198.18.0.0/24" in runtime.run_in(host.name, ["nft", "list", "set", "inet",
                                                             "socctl", "management"]).stdout
    # A service the collector does not offer is now closed to the other hosts.
    collector = lab.hosts["dc-primary-log1"]
    assert collector.lan is not None
    probe = runtime.run_in("dc-primary-db1", ["timeout", "3", "bash", "-c",
                                              f"</dev/tcp/{collector.lan.ip}/2222"])
    assert probe.returncode == 124, "a closed port answered: default deny missing"


def _psql(host: str, sql: str) -> str:
    result = runtime.run_in(host, ["runuser", "-u", "postgres", "--", "psql", "-X", "-At",
                                   "-v", "ON_ERROR_STOP=1", "-p", "5433", "-d", "agency",
                                   "-c", sql], timeout=30)
    assert result.returncode == 0, (host, sql, result.stderr)
    return result.stdout.strip()


def test_the_dr_database_streams_from_the_primary_through_the_firewall(
        lab: LabPlan, converged: dict[str, Any]) -> None:
    assert converged["_rc"] == 0, converged["_output"]
    replication = _psql("dc-primary-db1", "SELECT application_name, state, sync_state, "
                                          "client_addr FROM pg_stat_replication")
    standby = lab.hosts["dc-dr-db1"]
    assert standby.lan is not None
    assert f"dc_dr_db1|streaming|sync|{standby.lan.ip}" in replication.splitlines()
    assert _psql("dc-dr-db1", "SELECT pg_is_in_recovery()") == "t"
    assert _psql("dc-primary-db1", "SELECT pg_is_in_recovery()") == "f"
    # synchronous remote_apply: a committed row is already readable on the DR side
    marker = uuid.uuid4().hex
    _psql("dc-primary-db1", "CREATE TABLE IF NOT EXISTS provision_check (marker text); "
                            f"INSERT INTO provision_check VALUES ('{marker}')")
    assert _psql("dc-dr-db1", f"SELECT count(*) FROM provision_check "
                              f"WHERE marker = '{marker}'") == "1"


def test_chrony_and_auditd_are_configured_but_not_run_in_the_lab(
        lab: LabPlan, converged: dict[str, Any]) -> None:
    conf = runtime.run_in("p01-rtr1", ["cat", "/etc/chrony/chrony.conf"]).stdout
    assert "server 198.19.255.1 iburst" in conf
    for name in lab.hosts:
        procs = runtime.run_in(name, ["ps", "-eo", "comm"]).stdout.split()
        assert "chronyd" not in procs and "auditd" not in procs, name


def test_second_run_changes_nothing(lab: LabPlan, lab_settings: Settings,
                                    converged: dict[str, Any]) -> None:
    rc, data, output = provision(lab_settings)
    assert rc == 0, output
    changed = {name: host["changed_tasks"] for name, host in data["hosts"].items()
               if host["changed"]}
    assert changed == {}, f"not idempotent: {changed}"
    assert all(host["status"] == "ok" for host in data["hosts"].values())


def _cluster_state(host: str) -> str:
    return runtime.run_in(host, ["pg_lsclusters", "--no-header", "15", "socdb"]).stdout


def test_check_on_a_stopped_primary_reports_the_start_and_changes_nothing(
        lab: LabPlan, lab_settings: Settings, converged: dict[str, Any]) -> None:
    """--check skips the start of a stopped cluster, and then read its roles from the
    server it had not started: the dry run failed on the host it was asked about."""
    assert converged["_rc"] == 0, converged["_output"]
    host = "dc-primary-db1"
    stop = runtime.run_in(host, ["pg_ctlcluster", "15", "socdb", "stop", "-m", "fast"],
                          timeout=120)
    assert stop.returncode == 0, stop.stderr
    try:
        rc, data, output = provision(lab_settings, "--check", "--site", "dc-primary",
                                     "--role", "db_server")
        assert rc == 0, output
        assert sorted(data["hosts"]) == [host]
        result = data["hosts"][host]
        assert result["status"] == "changed" and result["errors"] == [], output
        assert [t for t in result["changed_tasks"]
                if t.endswith("Report that the cluster would be started")], result
        assert "down" in _cluster_state(host), "--check started the cluster"
    finally:
        runtime.run_in(host, ["pg_ctlcluster", "15", "socdb", "start"], timeout=120)
    assert "online" in _cluster_state(host)
    # the next tests find the standby streaming again, as the converge left it
    deadline = time.monotonic() + 60
    while "streaming" not in _psql(host, "SELECT state FROM pg_stat_replication"):
        assert time.monotonic() < deadline, "the standby did not reconnect"
        time.sleep(1)


def test_an_sshd_setting_sshd_refuses_is_never_written(lab: LabPlan, lab_settings: Settings,
                                                      converged: dict[str, Any]) -> None:
    """sshd checks its file before it replaces the old one: written first and checked by
    the handler only, a bad value stayed, and the next sshd start locked everyone out."""
    from socctl.automation.provision import ProvisionRequest
    from socctl.automation.provision import provision as run
    from socctl.inventory.select import Selection

    path = "/etc/ssh/sshd_config.d/00-socctl-baseline.conf"
    before = runtime.run_in("p79-rtr1", ["cat", path]).stdout
    assert "MaxAuthTries" in before
    result = run(lab_settings, ProvisionRequest(
        selection=Selection(sites=("p79",)), lab=True,
        extra_vars={"common_sshd_max_auth_tries": "lots"}))
    host = result.hosts["p79-rtr1"]
    assert host.failed, host
    assert any(e.task == "Write the sshd hardening settings" and "MaxAuthTries" in e.message
               for e in host.errors), host.errors
    assert runtime.run_in("p79-rtr1", ["cat", path]).stdout == before
    assert runtime.run_in("p79-rtr1", ["/usr/sbin/sshd", "-t"]).returncode == 0


def test_unreachable_host_is_reported_and_the_others_proceed(
        lab: LabPlan, lab_settings: Settings, converged: dict[str, Any]) -> None:
    runtime.fail_host(lab_settings, "p79-rtr1")
    try:
        rc, data, output = provision(lab_settings, "--site", "p01d02", "--site", "p79",
                                     "--wave", "1", "--max-fail-percent", "100")
    finally:
        runtime.start_host(lab_settings, "p79-rtr1")
    assert rc == EXIT_HOST_FAILURES, output
    assert [w["hosts"] for w in data["waves"]] == [["p01d02-rtr1"], ["p79-rtr1"]]
    assert data["waves"][0]["canary"] is True
    assert data["hosts"]["p01d02-rtr1"]["status"] == "ok"
    bad = data["hosts"]["p79-rtr1"]
    assert bad["status"] == "unreachable" and bad["errors"][0]["unreachable"]
    assert data["stopped"] is None
    runtime.wait_converged(lab)


def test_failed_canary_stops_the_rollout(lab: LabPlan, lab_settings: Settings,
                                         converged: dict[str, Any]) -> None:
    runtime.fail_host(lab_settings, "p01d01-rtr1")
    try:
        rc, data, output = provision(lab_settings, "--site", "p01d01", "--site", "p01d02",
                                     "--site", "p79", "--wave", "1")
    finally:
        runtime.start_host(lab_settings, "p01d01-rtr1")
    assert rc == EXIT_HOST_FAILURES, output
    assert data["hosts"]["p01d01-rtr1"]["status"] == "unreachable"
    assert data["hosts"]["p01d02-rtr1"]["status"] == "not run"
    assert data["hosts"]["p79-rtr1"]["status"] == "not run"
    assert "canary p01d01-rtr1" in data["stopped"]
    runtime.wait_converged(lab)
