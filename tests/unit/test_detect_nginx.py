"""The web rules on lines a real nginx wrote: attacks and benign requests sent over
loopback to an nginx (Debian's nginx-light) with the combined access log, that file through
`socctl collect replay --source nginx` and `socctl detect run --all`, the alert set pinned.

The rules' own test events are lines written by hand; here nginx itself writes them (its
escaping of the request line, the status of a request it refuses, what a client library
really sends), so a rule that only matches the hand-written form fails here. Each client
speaks from its own loopback address (127.0.0.0/8 is all loopback on Linux), so every
alert names the client that earned it.
"""

from __future__ import annotations

import http.client
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.collect_harness import free_port
from tests.unit.test_detect_e2e import socctl

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = pytest.mark.skipif(not Path(NGINX).exists(),
                                reason="needs nginx (Debian nginx-light; ./dev installs it)")

SQLI, SSRF, REDIRECT, GUESSER, TRAVERSAL, BENIGN = (f"127.0.0.{i}" for i in range(11, 17))
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) " \
          "Chrome/131.0 Safari/537.36"
GUESSES = 70

CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log {work}/access.log combined;
  client_body_temp_path {work}/body;
  proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi;
  uwsgi_temp_path {work}/uwsgi;
  scgi_temp_path {work}/scgi;
  server {{
    listen 127.0.0.1:{port};
    # a form login that answers a wrong password with the form again, as many do
    location = /dang-nhap {{ return 200 "form"; }}
    location = /login {{ return 302 /; }}
    location / {{ return 200 "ok"; }}
  }}
}}
"""


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    work = tmp_path / "nginx"
    work.mkdir()
    port = free_port()
    (work / "nginx.conf").write_text(CONF.format(work=work, port=port))
    # -e: the log of its start-up too, not /var/log/nginx's
    proc = subprocess.Popen([NGINX, "-p", str(work), "-e", str(work / "error.log"),
                             "-c", str(work / "nginx.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "nginx did not listen"
                time.sleep(0.05)
        yield port, work / "access.log"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def request(port: int, client: str, method: str, target: str, agent: str = BROWSER,
            body: str | None = None) -> int:
    """One request as a client library sends it (the target exactly as given)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                      source_address=(client, 0))
    try:
        headers = {"User-Agent": agent}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, target, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_attacks_on_a_real_nginx_give_each_attacker_its_alerts_and_benign_none(
        env: Path, nginx: tuple[int, Path]) -> None:
    port, access_log = nginx
    for target in ("/tra-cuu?so_the=1%27%20AND%20SLEEP(5)--%20-",
                   "/tra-cuu?so_the=1%20UNION%20ALL%20SELECT%20NULL,NULL,version()--%20-"):
        request(port, SQLI, "GET", target)
    request(port, SSRF, "GET", "/api/preview?url=http://169.254.169.254/latest/meta-data/")
    request(port, REDIRECT, "GET", "/dang-xuat?next=https://baohiem-xahoi.example.net/login")
    for i in range(GUESSES):  # a login a guess, the form answered again each time
        assert request(port, GUESSER, "POST", "/dang-nhap",
                       body=f"user=nguyenvana&password=Winter{i}") == 200
    request(port, TRAVERSAL, "GET", "/tai-lieu?file=..%2f..%2f..%2f..%2fetc%2fpasswd")
    # benign: the portal's pages, a login (one form answer, then the redirect), a search
    # for a name with an apostrophe, an internal redirect
    for method, target, body in (("GET", "/", None), ("GET", "/dang-nhap", None),
                                 ("POST", "/dang-nhap", "user=a&password=b"),
                                 ("POST", "/login", "user=a&password=b"),
                                 ("GET", "/tra-cuu?ho_ten=O%27Brien", None),
                                 ("GET", "/search?q=union+station", None),
                                 ("GET", "/login?next=/tra-cuu", None)):
        request(port, BENIGN, method, target, body=body)

    lines = access_log.read_text().splitlines()
    assert len(lines) == 2 + 1 + 1 + GUESSES + 1 + 7, lines[-3:]
    replay = socctl("collect", "replay", "--source", "nginx", str(access_log))
    assert replay == {"read": len(lines), "stored": len(lines), "dead_letter": 0,
                      "duplicates": 0, "files": [str(access_log.resolve())]}
    socctl("detect", "run", "--all")
    alerts = socctl("alerts", "list")
    assert isinstance(alerts, list)
    assert sorted((a["rule_title"], a["source.ip"]) for a in alerts) == sorted([
        ("SQL Injection Attempt in Web Request", SQLI),
        ("Server-Side Request Forgery Attempt in Web Request (internal or metadata address "
         "in a parameter)", SSRF),
        ("Open Redirect Attempt in Web Request", REDIRECT),
        ("Web Login Guessing Answered 200 or by a Redirect (a Login a Second From One "
         "Client)", GUESSER),
        ("Directory Traversal or File Inclusion Attempt", TRAVERSAL),
    ]), [(a["rule_title"], a["source.ip"]) for a in alerts]
    guessing = next(a for a in alerts if a["source.ip"] == GUESSER)
    assert guessing["count"] >= 60 and guessing["level"] == "high"
