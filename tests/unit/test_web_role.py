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
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
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

    def log_message(self, *args: Any) -> None:
        pass


class Syslog:
    """A unix datagram socket standing for /dev/log: what nginx sends there."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)

    def lines(self, count: int, timeout: float = 10) -> list[str]:
        got: list[str] = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            try:
                got.append(self.sock.recv(65536).decode())
            except TimeoutError:
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
        "web_real_ip_from": [BALANCER],
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


@pytest.mark.skipif(os.geteuid() != 0, reason="nginx's master runs as root to switch user "
                    "(web_user); needs root")
def test_the_labs_portal_is_a_holding_page_over_http(tmp_path: Path) -> None:
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
        "web_error_log": str(work / "e.log")}})["web1"])
    assert "ssl" not in conf.read_text().split("http {", 1)[1]
    syslog = Syslog(work / "log.sock")
    proc = start_nginx(conf, port, tls=False)
    try:
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
    finally:
        proc.terminate()
        proc.wait(10)
        syslog.sock.close()


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
