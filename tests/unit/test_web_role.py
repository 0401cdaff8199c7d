"""The web role's nginx.conf, rendered by Ansible from the role's defaults and run by a real
nginx (Debian's, which ./dev installs) on loopback: a portal over TLS in front of an
application server, and the lab's plain-HTTP holding page. What users rely on: nothing is
served in clear, weak TLS is refused, the answers carry the anti-clickjacking headers and
the application's cookies their flags, methods beyond the portal's get 405, and every
request reaches syslog as a line socctl parses into an nginx.access event."""

from __future__ import annotations

import http.client
import http.server
import os
import queue
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from socctl.collector.parse import parse_line
from tests.collect_harness import free_port
from tests.unit.test_playbook_vars import ANSIBLE, render_role

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
pytestmark = [
    pytest.mark.skipif(not Path(NGINX).exists(), reason="needs nginx (./dev installs it)"),
    pytest.mark.skipif(not Path(ANSIBLE).exists(), reason="needs ansible (pip, ./dev)"),
]


# <local7.info>, an RFC 3164 time, the tag: what rsyslog's socket input reads as syslog(3)'s
SYSLOG_HEAD = re.compile(r"<190>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d nginx: ")


class _App(http.server.BaseHTTPRequestHandler):
    """The application server behind the portal: sets a session cookie with no flags."""

    def do_GET(self) -> None:
        body = b"app:" + self.path.encode()
        self.send_response(200)
        self.send_header("Set-Cookie", "SESSION=abc123; Path=/")
        self.send_header("X-App-Saw-Forwarded-For", self.headers.get("X-Forwarded-For", ""))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        """A login form that refuses every password (what a guessing tool meets)."""
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class Syslog:
    """A unix datagram socket standing for /dev/log: what nginx sends there, read as it
    arrives (a socket's queue holds only net.unix.max_dgram_qlen datagrams, 10 here:
    beyond that nginx's send fails and the line is lost, as it would be if rsyslog stalled)."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.received: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while self.sock.fileno() != -1:
            try:
                self.received.put(self.sock.recv(65536).decode())
            except TimeoutError:
                continue
            except OSError:  # closed
                return

    def lines(self, count: int, timeout: float = 10) -> list[str]:
        got: list[str] = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            try:
                got.append(self.received.get(timeout=0.2))
            except queue.Empty:
                continue
        return got


def start_nginx(conf: Path, port: int, tls: bool) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-e", str(conf.parent / "start.log"),
                             "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"nginx did not listen (tls={tls}): "
                                     f"{proc.stderr.read() if proc.stderr else ''!r}") from None
            time.sleep(0.05)


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The role's TLS portal in front of an application server, nginx running it."""
    work = tmp_path / "portal"
    work.mkdir()
    cert, key = work / "portal.crt", work / "portal.key"
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                    "/CN=portal.lab", "-addext", "subjectAltName=DNS:portal.lab,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    key.chmod(0o600)
    app = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _App)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    syslog = Syslog(work / "log.sock")
    http_port, https_port = free_port(), free_port()
    conf = work / "nginx.conf"
    conf.write_text(render_role(tmp_path, "web", "nginx.conf.j2", {"web1": {
        "web_tls": True, "web_tls_cert_file": str(cert), "web_tls_key_file": str(key),
        "web_app_servers": [f"127.0.0.1:{app.server_address[1]}"],
        "web_real_ip_from": [BALANCER], "web_rate_limit_exempt": [MONITOR],
        "web_listen_address": "127.0.0.1", "web_http_port": http_port,
        "web_https_port": https_port, "web_pid_file": str(work / "nginx.pid"),
        "web_syslog_socket": str(work / "log.sock"), "web_user": "root",
        "web_access_log": str(work / "access.log"), "web_error_log": str(work / "error.log"),
        "socctl_site": "dc-primary"}})["web1"])
    proc = start_nginx(conf, https_port, tls=True)
    try:
        yield {"http": http_port, "https": https_port, "cert": cert, "syslog": syslog,
               "access": work / "access.log"}
    finally:
        proc.terminate()
        proc.wait(10)
        app.shutdown()
        syslog.sock.close()


BALANCER = "127.0.0.2"  # the load balancer in front of the portal (loopback is all of 127/8)
MONITOR = "127.0.0.4"  # a monitoring host, exempt from the request limits


def tls_context(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


@pytest.mark.skipif(os.geteuid() != 0, reason="nginx's master runs as root to switch user "
                    "(web_user); needs root")
def test_the_portal_serves_only_tls_with_its_headers_and_logs_every_request_to_syslog(
        portal: dict[str, Any]) -> None:
    plain = http.client.HTTPConnection("127.0.0.1", portal["http"], timeout=5)
    plain.request("GET", "/tra-cuu?ma=123")
    moved = plain.getresponse()
    assert moved.status == 301
    assert moved.getheader("Location") == f"https://127.0.0.1:{portal['https']}/tra-cuu?ma=123"
    assert b"app:" not in moved.read()  # nothing of the application in clear

    conn = http.client.HTTPSConnection("127.0.0.1", portal["https"], timeout=5,
                                       context=tls_context(portal["cert"]))
    conn.request("GET", "/tra-cuu?ma=123", headers={"User-Agent": "pytest-portal"})
    answer = conn.getresponse()
    assert answer.status == 200 and answer.read() == b"app:/tra-cuu?ma=123"
    assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")  # type: ignore[union-attr]
    assert answer.getheader("X-Frame-Options") == "DENY"
    assert "frame-ancestors 'none'" in (answer.getheader("Content-Security-Policy") or "")
    assert answer.getheader("X-Content-Type-Options") == "nosniff"
    assert (answer.getheader("Strict-Transport-Security") or "").startswith("max-age=")
    cookie = (answer.getheader("Set-Cookie") or "").lower()
    assert cookie.startswith("session=abc123") and "secure" in cookie and "httponly" in cookie
    assert "samesite=lax" in cookie
    assert answer.getheader("Server") == "nginx"  # no version (server_tokens off)

    conn.request("PUT", "/tra-cuu", body=b"x")
    refused = conn.getresponse()
    refused.read()
    assert refused.status == 405

    # Weak TLS gets no session: a TLS 1.2 client offering only CBC suites (the role's
    # cipher list refuses them; OpenSSL's default would agree), and one offering no more
    # than TLS 1.1 (refused by the role's protocols and by OpenSSL 3 below its security
    # level 0); each client's own floor lowered, so that only the server can refuse.
    cbc = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cbc.check_hostname, cbc.verify_mode = False, ssl.CERT_NONE
    cbc.maximum_version = ssl.TLSVersion.TLSv1_2
    cbc.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256")
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
    with warnings.catch_warnings():  # deprecated: the point of the test
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    for weak in (cbc, old):
        with pytest.raises(ssl.SSLError), \
                socket.create_connection(("127.0.0.1", portal["https"]), timeout=5) as raw, \
                weak.wrap_socket(raw):
            pass

    lines = portal["syslog"].lines(3)
    assert len(lines) == 3, lines
    # As syslog(3) writes to /dev/log: no host name (rsyslog's socket input would take it
    # for the program), local7.info, tag nginx; the message one combined line.
    heads = [SYSLOG_HEAD.match(line) for line in lines]
    assert all(heads), lines
    events = [parse_line("nginx.access", line[head.end():])
              for line, head in zip(lines, heads, strict=True) if head]
    assert [e["http"]["request"]["method"] for e in events] == ["GET", "GET", "PUT"]
    assert [e["http"]["response"]["status_code"] for e in events] == [301, 200, 405]
    assert events[1]["url"]["original"] == "/tra-cuu?ma=123"
    assert events[1]["user_agent"]["original"] == "pytest-portal"
    assert events[1]["source"]["ip"] == "127.0.0.1"
    # the same requests in the local file, one line each
    assert len(portal["access"].read_text().splitlines()) == 3


@pytest.mark.skipif(os.geteuid() != 0, reason="nginx's master runs as root to switch user "
                    "(web_user); needs root")
def test_behind_the_load_balancer_the_client_is_logged_and_nobody_else_picks_an_address(
        portal: dict[str, Any]) -> None:
    """With web_real_ip_from, a request through the balancer is logged (and passed to the
    application) under the client's address from X-Forwarded-For, so the web rules group
    by the attacker, not by the balancer; a client that writes X-Forwarded-For itself is
    logged under its own address."""
    def get(source: str, forwarded: str) -> str:
        conn = http.client.HTTPSConnection("127.0.0.1", portal["https"], timeout=5,
                                           context=tls_context(portal["cert"]),
                                           source_address=(source, 0))
        conn.request("GET", "/", headers={"X-Forwarded-For": forwarded})
        answer = conn.getresponse()
        answer.read()
        assert answer.status == 200
        return answer.getheader("X-App-Saw-Forwarded-For") or ""

    assert get(BALANCER, "203.0.113.7") == "203.0.113.7"
    assert get(BALANCER, f"203.0.113.9, {BALANCER}") == "203.0.113.9"  # two balancers
    assert get("127.0.0.1", "203.0.113.8") == "127.0.0.1"  # not from the balancer
    lines = portal["syslog"].lines(3)
    logged = [parse_line("nginx.access", line[head.end():])["source"]["ip"]
              for line in lines if (head := SYSLOG_HEAD.match(line))]
    assert logged == ["203.0.113.7", "203.0.113.9", "127.0.0.1"], lines


@contextmanager
def holding_page(tmp_path: Path, **variables: Any) -> Iterator[tuple[int, Syslog, str]]:
    """The lab's portal (a holding page over HTTP) run by nginx: its port, its syslog and
    its nginx.conf."""
    work = tmp_path / "lab"
    work.mkdir()
    (work / "root").mkdir()
    (work / "root" / "index.html").write_text("holding page")
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(render_role(tmp_path, "web", "nginx.conf.j2", {"web1": {
        "web_tls": False, "web_root": str(work / "root"), "web_listen_address": "127.0.0.1",
        "web_http_port": port, "web_pid_file": str(work / "nginx.pid"), "web_user": "root",
        "web_syslog_socket": str(work / "log.sock"), "web_access_log": str(work / "a.log"),
        "web_error_log": str(work / "e.log"), **variables}})["web1"])
    syslog = Syslog(work / "log.sock")
    proc = start_nginx(conf, port, tls=False)
    try:
        yield port, syslog, conf.read_text()
    finally:
        proc.terminate()
        proc.wait(10)
        syslog.sock.close()


def requests(port: int, method: str, path: str, count: int, source: str = "127.0.0.1",
             https: dict[str, Any] | None = None) -> list[int]:
    """``count`` requests on one keep-alive connection from ``source``: their statuses."""
    conn: http.client.HTTPConnection = (
        http.client.HTTPSConnection("127.0.0.1", port, timeout=5, source_address=(source, 0),
                                    context=tls_context(https["cert"])) if https
        else http.client.HTTPConnection("127.0.0.1", port, timeout=5,
                                        source_address=(source, 0)))
    statuses = []
    for _ in range(count):
        conn.request(method, path, body=b"user=a&password=b" if method == "POST" else None)
        answer = conn.getresponse()
        answer.read()
        statuses.append(answer.status)
    conn.close()
    return statuses


def syslog_events(lines: list[str]) -> list[dict[str, Any]]:
    """What the collector makes of the lines nginx sent to /dev/log (both of its logs)."""
    return [parse_line("syslog", line, received=time.time()) for line in lines]


@pytest.mark.skipif(os.geteuid() != 0, reason="nginx's master runs as root to switch user "
                    "(web_user); needs root")
def test_the_labs_portal_is_a_holding_page_over_http(tmp_path: Path) -> None:
    with holding_page(tmp_path) as (port, syslog, conf):
        assert "ssl" not in conf.split("http {", 1)[1]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/")
        page = conn.getresponse()
        assert page.status == 200 and page.read() == b"holding page"
        assert page.getheader("X-Frame-Options") == "DENY"
        conn.request("GET", "/../../etc/passwd")
        missing = conn.getresponse()
        missing.read()
        assert missing.status in (400, 404)
        lines = syslog.lines(2)
        heads = [SYSLOG_HEAD.match(line) for line in lines]
        events = [parse_line("nginx.access", line[head.end():])
                  for line, head in zip(lines, heads, strict=True) if head]
        assert [e["url"]["original"] for e in events] == ["/", "/../../etc/passwd"]


@pytest.mark.skipif(os.geteuid() != 0, reason="nginx's master runs as root to switch user "
                    "(web_user); needs root")
def test_a_flooding_client_gets_429_and_is_named_in_the_error_log(tmp_path: Path) -> None:
    """Beyond the portal's per-client rate (here 1 a second after a burst of 5), nginx
    answers 429, and says so in its error log, which reaches syslog under the access log's
    tag and is read as nginx.error naming the client; a client under the limit is served."""
    with holding_page(tmp_path, web_rate_limit="1r/s", web_rate_limit_burst=5) as (
            port, syslog, _):
        flood = requests(port, "GET", "/", 12)
        calm = requests(port, "GET", "/", 1, source="127.0.0.3")
        refused = flood.count(429)
        assert flood[:6] == [200] * 6 and refused >= 5 and set(flood) == {200, 429}, flood
        assert calm == [200]
        events = syslog_events(syslog.lines(13 + refused))
    limited = [e for e in events if e["event"]["dataset"] == "nginx.error"]
    assert len(limited) == refused, events
    assert {(e["event"]["action"], e["source"]["ip"], e["nginx"]["error"]["zone"])
            for e in limited} == {("request-rate-limited", "127.0.0.1", "portal")}
    access = [e for e in events if e["event"]["dataset"] == "nginx.access"]
    assert sorted(e["http"]["response"]["status_code"] for e in access) == sorted(flood + calm)


@pytest.mark.skipif(os.geteuid() != 0, reason="nginx's master runs as root to switch user "
                    "(web_user); needs root")
def test_login_guessing_is_held_to_the_login_limit(portal: dict[str, Any]) -> None:
    """The role's login limit (30 a minute after 20 at once) in front of an application:
    a guessing client's 21st POST to the login form gets 429 from nginx, the application
    never sees it, and the rule that counts those (web_login_throttled) can; the same
    client's other pages, another client's login and the exempt monitor are untouched."""
    https = portal["https"]
    guesses = requests(https, "POST", "/dang-nhap", 40, https=portal)
    assert guesses[:21] == [401] * 21, guesses  # the burst, then one each 2 s
    assert guesses.count(401) <= 22 and set(guesses) == {401, 429}, guesses
    refused = guesses.count(429)
    assert requests(https, "GET", "/tra-cuu", 1, https=portal) == [200]
    assert requests(https, "POST", "/Dang-Nhap", 1, source="127.0.0.3", https=portal) == [401]
    assert requests(https, "POST", "/dang-nhap", 40, source=MONITOR, https=portal) == [401] * 40
    events = syslog_events(portal["syslog"].lines(82 + refused))
    limited = [e for e in events if e["event"]["dataset"] == "nginx.error"]
    assert len(limited) == refused
    assert {(e["event"]["action"], e["source"]["ip"], e["url"]["path"],
             e["nginx"]["error"]["zone"]) for e in limited} == {
        ("request-rate-limited", "127.0.0.1", "/dang-nhap", "login")}
    throttled = [e for e in events if e["event"]["dataset"] == "nginx.access"
                 and e["http"]["response"]["status_code"] == 429]
    assert len(throttled) == refused
    assert {e["source"]["ip"] for e in throttled} == {"127.0.0.1"}


RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
ROLE = Path(__file__).parents[2] / "playbooks" / "roles" / "web"


def role_task(role: str, name: str) -> dict[str, Any]:
    """A task of ``role``'s tasks/main.yml by name (within blocks too)."""
    def walk(tasks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for task in tasks:
            yield task
            yield from walk(task.get("block", []))

    tasks = yaml.safe_load((ROLE.parent / role / "tasks" / "main.yml").read_text())
    return next(t for t in walk(tasks) if t.get("name") == name)


def validate(task: dict[str, Any], path: Path) -> subprocess.CompletedProcess[str]:
    """A template task's ``validate`` run on ``path`` as Ansible runs it (no shell)."""
    module = next(v for k, v in task.items() if k.startswith("ansible.builtin."))
    return subprocess.run(shlex.split(module["validate"] % str(path)), capture_output=True,
                          text=True, timeout=60)


@pytest.mark.skipif(not Path(RSYSLOGD).exists(), reason="needs rsyslogd (./dev installs it)")
@pytest.mark.parametrize(("role", "template", "task", "typo"), [
    ("web", "rsyslog_web.conf.j2", "Give nginx a log socket of rsyslog's own", "Socket="),
    ("postgresql", "rsyslog_postgresql.conf.j2",
     "Forward the server's log to the log collectors (rsyslog imfile)", "File="),
])
def test_a_roles_rsyslog_input_is_checked_before_it_is_written(
        tmp_path: Path, role: str, template: str, task: str, typo: str) -> None:
    """rsyslogd -N1 checks only a whole configuration: each role's check loads what
    rsyslog.conf gives the input (imuxsock, the work directory imfile keeps its place in),
    so a good file passes and a misspelt one is refused (the running rsyslog keeps its
    configuration)."""
    snippet = tmp_path / f"{role}.conf"
    snippet.write_text(render_role(tmp_path, role, template, {"db1": {}})["db1"])
    good = validate(role_task(role, task), snippet)
    assert good.returncode == 0, good.stderr
    snippet.write_text(snippet.read_text().replace(typo, typo.replace("=", "x=")))
    bad = validate(role_task(role, task), snippet)
    assert bad.returncode != 0 and typo.replace("=", "x") in bad.stderr, bad.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace of the test's own for "
                    "rsyslogd (its socket queue is a per-namespace setting), nginx's workers "
                    "as www-data: needs root")
@pytest.mark.skipif(not Path(RSYSLOGD).exists(), reason="needs rsyslogd (./dev installs it)")
def test_every_line_of_a_flood_reaches_rsyslog_through_the_portals_own_socket(
        tmp_path: Path) -> None:
    """3,000 requests as fast as one client gets them answered (most refused 429 by the
    portal's rate limit, each refusal a line of the error log as well): nginx's workers
    (www-data) log every one to rsyslog's socket for nginx, created with the role's queue
    size (rsyslogd in a network namespace of the test's own, where that size is set as
    the role sets it on a host). With the kernel's default queue of 10, lines were lost
    whenever rsyslogd fell behind (1,619 of 5,781 with the test suite running beside it),
    each a 'send() to syslog failed' in nginx's error file."""
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    shared = Path(tempfile.mkdtemp(prefix="socctl-web-"))  # www-data reaches its socket
    shared.chmod(0o755)
    try:
        sock, out = shared / "run" / "nginx-log.sock", shared / "rsyslog.out"
        (shared / "root").mkdir()
        (shared / "root" / "index.html").write_text("holding page")
        snippet = shared / "web.conf"
        (tmp_path / "rsyslog").mkdir()
        snippet.write_text(render_role(tmp_path / "rsyslog", "web", "rsyslog_web.conf.j2",
                                       {"web1": {"web_syslog_socket": str(sock)}})["web1"])
        conf = shared / "rsyslog.conf"
        conf.write_text(f'module(load="imuxsock" SysSock.Use="off")\n'
                        f'include(file="{snippet}")\n'
                        f'*.* action(type="omfile" file="{out}")\n')
        queue_size = int(defaults["web_log_socket_queue"])
        rsyslog = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", f"sysctl -q -w net.unix.max_dgram_qlen={queue_size}"
             f" && exec {RSYSLOGD} -n -f {conf} -i {shared / 'rsyslog.pid'}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 10
            while not sock.exists():
                assert rsyslog.poll() is None and time.monotonic() < deadline, \
                    rsyslog.stderr.read() if rsyslog.stderr else "rsyslogd made no socket"
                time.sleep(0.05)
            (tmp_path / "web").mkdir()
            with holding_page(tmp_path / "web", web_user="www-data", web_root=str(shared / "root"),
                              web_syslog_socket=str(sock)) as (port, _, _):
                statuses = requests(port, "GET", "/", 3000)
                refused = statuses.count(429)
                assert statuses.count(200) >= 200 and refused >= 1000, set(statuses)
                want = len(statuses) + refused
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and (
                        not out.exists() or len(out.read_text().splitlines()) < want):
                    time.sleep(0.2)
            lines = out.read_text().splitlines()
            failed = (tmp_path / "web" / "lab" / "e.log").read_text().count(
                "send() to syslog failed")
            assert (len(lines), failed) == (want, 0), (len(lines), want, failed)
            assert sum("limiting requests" in line for line in lines) == refused
        finally:
            rsyslog.terminate()
            rsyslog.wait(30)
    finally:
        shutil.rmtree(shared)


def run_role(tmp_path: Path, **variables: Any) -> subprocess.CompletedProcess[str]:
    """The web role's tasks on this machine in check mode (nothing installed or written)."""
    (tmp_path / "roles").symlink_to(Path(__file__).parents[2] / "playbooks" / "roles")
    (tmp_path / "play.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  roles: [web]\n")
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"web1": {
        "ansible_python_interpreter": sys.executable, "socctl_service_manager": "auto",
        **variables}}}}))
    return subprocess.run([str(Path(ANSIBLE).with_name("ansible-playbook")), "-i",
                           str(tmp_path / "hosts.yml"), "-c", "local", "--check",
                           str(tmp_path / "play.yml")], capture_output=True, text=True,
                          env={**os.environ, "ANSIBLE_INVENTORY_ENABLED": "yaml"},
                          timeout=300)


def test_the_role_stops_before_serving_a_portal_without_its_certificate(tmp_path: Path) -> None:
    """web_tls is on by default: with no certificate and key the role fails at its first
    task, naming the variables, instead of serving the portal in clear."""
    done = run_role(tmp_path)
    assert done.returncode != 0
    assert "web_tls_cert_file or web_tls_key_file is empty" in done.stdout
    assert "Install nginx" not in done.stdout  # nothing ran after the check


@pytest.mark.parametrize(("variables", "message"), [
    ({"web_methods": []}, "web_methods must be a list of HTTP methods, not empty"),
    ({"web_real_ip_from": "198.19.128.5"}, "web_real_ip_from must be a list of addresses"),
    ({"web_app_servers": "app1:8080"}, "web_app_servers must be a list of host:port"),
    ({"web_rate_limit_exempt": "198.18.0.9"},
     "web_rate_limit_exempt must be a list of addresses or CIDRs"),
    ({"web_rate_limit": "fast"}, "web_rate_limit must be a rate such as 50r/s or 30r/m (it is "
                                 "fast)"),
    ({"web_login_rate_limit_burst": -1}, "web_login_rate_limit_burst a whole number of "
                                         "requests (it is -1)"),
    ({"web_client_timeout": "forever"}, "web_client_timeout a time such as 15s (it is "
                                        "forever)"),
    ({"web_login_endpoints": ['login"']}, "web_login_endpoints must be path segments"),
    ({"web_login_endpoints": "login"}, "web_login_endpoints must be a list of path segments"),
])
def test_a_setting_of_the_wrong_shape_is_named(tmp_path: Path, variables: dict[str, Any],
                                               message: str) -> None:
    done = run_role(tmp_path, web_tls=False, **variables)
    assert done.returncode != 0
    assert message in done.stdout, done.stdout[-2000:]
    assert "TASK [web : Install nginx]" not in done.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="the key must be root's: needs root")
@pytest.mark.parametrize(("mode", "refused"), [(0o644, True), (0o640, True), (0o600, False)])
def test_the_role_refuses_a_tls_key_others_can_read(tmp_path: Path, mode: int,
                                                    refused: bool) -> None:
    key = tmp_path / "portal.key"
    key.write_text("not a real key: the role checks its owner and mode only\n")
    key.chmod(mode)
    done = run_role(tmp_path, web_tls_cert_file=str(tmp_path / "portal.crt"),
                    web_tls_key_file=str(key))
    message = f"{key} must exist, be owned by root and be 0600 or 0400 (it is 0{mode:o}"
    assert (message in done.stdout) is refused, done.stdout[-2000:]
    # refused: the run stops there; accepted: it goes on to the install
    assert ("TASK [web : Install nginx]" in done.stdout) is not refused


def test_every_login_endpoint_the_role_limits_is_one_the_login_rules_count() -> None:
    """A login the role's limit refuses (429) is counted only if its path is one the web
    login rules know: each endpoint of web_login_endpoints, in the forms the role's
    location matches, is a login path to web_login_throttled_request."""
    repo = Path(__file__).parents[2]
    defaults = yaml.safe_load((repo / "playbooks/roles/web/defaults/main.yml").read_text())
    rule = yaml.safe_load((repo / "detections/web/web_login_throttled_request.yml").read_text())
    login_path = re.compile(rule["detection"]["login_path"]["url.path|re|i"], re.IGNORECASE)
    for endpoint in defaults["web_login_endpoints"]:
        for path in (f"/{endpoint}", f"/portal/{endpoint.upper()}/", f"/a/{endpoint}.do"):
            assert login_path.search(path), path
