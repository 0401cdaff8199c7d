"""`socctl collect run` as a real process on loopback: sources, delivery guarantees,
hostile input. No root needed; the daemons-on-lab-hosts versions are in tests/lab."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from socctl.store.sqlite import SqliteStore
from tests.collect_harness import Harness, free_port


def line(i: int, host: str = "p01-rtr1") -> bytes:
    return (f"<38>Nov 22 07:43:17 {host} sshd[42]: Failed password for root from "
            f"203.0.113.5 port {i} ssh2").encode()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    tcp, tls, udp = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=collector",
                    "-keyout", str(key), "-out", str(cert), "-days", "1"],
                   check=True, capture_output=True)
    (tmp_path / "app.log").touch()
    h = Harness(tmp_path, [
        {"name": "tcp", "source": {"type": "syslog_tcp", "listen": f"127.0.0.1:{tcp}"},
         "parser": {"dataset": "syslog"}},
        {"name": "tls", "source": {"type": "syslog_tls", "listen": f"127.0.0.1:{tls}",
                                   "tls_cert": str(cert), "tls_key": str(key)},
         "parser": {"dataset": "syslog"}},
        {"name": "udp", "source": {"type": "syslog_udp", "listen": f"127.0.0.1:{udp}",
                                   "max_line": 8192},
         "parser": {"dataset": "syslog"}},
        {"name": "tail", "source": {"type": "file", "paths": [str(tmp_path / "app.log")]},
         "parser": {"dataset": "sshd"}, "ecs": {"fields": {"service.type": "ssh"}}},
    ], collect={"spool": {"max_bytes": 8 << 20}})
    h.ports = {"tcp": tcp, "tls": tls, "udp": udp}  # type: ignore[attr-defined]
    yield h
    h.close()


def send_tcp(port: int, payload: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(payload)


def test_every_source_delivers_and_counts_reconcile(harness: Harness) -> None:
    ports = harness.ports  # type: ignore[attr-defined]
    harness.start()
    send_tcp(ports["tcp"], b"".join(line(i) + b"\n" for i in range(300)))
    send_tcp(ports["tcp"], b"".join(b"%d %s" % (len(line(i)), line(i)) for i in range(300, 500)))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", ports["tls"])) as raw, \
            ctx.wrap_socket(raw) as s:
        s.sendall(b"".join(b"%d %s" % (len(line(i)), line(i)) for i in range(500, 600)))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        for i in range(600, 650):
            u.sendto(line(i, "p79-rtr1"), ("127.0.0.1", ports["udp"]))
    with (harness.root / "app.log").open("ab") as fh:
        fh.write(b"".join(b"Invalid user u%d from 203.0.113.9 port %d\n" % (i, i)
                          for i in range(100)))
    assert harness.wait_count(750) == 750
    harness.stop()
    stats = harness.stats()
    assert stats["running"] is False and stats["store"]["events"] == 750
    for name, expect in {"tcp": 500, "tls": 100, "udp": 50, "tail": 100}.items():
        s = stats["sources"][name]
        assert (s["received"], s["parsed"], s["dead_letter"], s["shipped"]) == (
            expect, expect, 0, expect), (name, s)
    assert harness.count("socctl_site = 'p79' AND dataset = 'sshd'") == 50
    assert harness.count("threat_indicator_ip = '203.0.113.5'") == 650
    assert harness.count("dataset = 'sshd' AND event_action = 'invalid_user'") == 100


def test_sink_outage_then_recovery_counts_reconcile_exactly(harness: Harness) -> None:
    port = harness.ports["tcp"]  # type: ignore[attr-defined]
    harness.start()
    send_tcp(port, b"".join(line(i) + b"\n" for i in range(1000)))
    assert harness.wait_count(1000) == 1000
    blocker = harness.db()
    blocker.execute("BEGIN EXCLUSIVE")  # the store is down: nobody else can write
    try:
        for k in range(4):
            send_tcp(port, b"".join(line(i) + b"\n" for i in range(1000 + k * 500,
                                                                      1500 + k * 500)))
            time.sleep(1)
        assert harness.count() == 1000
        mid = harness.stats()
        assert mid["sink"]["healthy"] is False and mid["sink"]["retries"] >= 1
        assert mid["spool"]["pending_bytes"] > 0
        assert mid["sources"]["tcp"]["received"] == 3000
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert harness.wait_count(3000) == 3000
    harness.stop()
    stats = harness.stats()
    tcp = stats["sources"]["tcp"]
    assert tcp["received"] == tcp["parsed"] == tcp["shipped"] + tcp["duplicates"] == 3000
    assert stats["store"]["events"] == 3000 and stats["sink"]["healthy"] is True


def test_kill_9_mid_stream_loses_nothing_and_duplicates_nothing(harness: Harness) -> None:
    path = harness.root / "app.log"
    total = 6000
    stop = threading.Event()

    def writer() -> None:
        with path.open("ab", buffering=0) as fh:
            for k in range(0, total, 100):
                fh.write(b"".join(b"Invalid user k%d from 203.0.113.9 port %d\n" % (i, i)
                                  for i in range(k, k + 100)))
                time.sleep(0.05)
        stop.set()

    harness.start()
    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(1.0)
    first = harness.count()
    harness.kill9()  # mid-stream: lines spooled but not shipped, lines not yet read
    assert 0 < first < total
    time.sleep(0.5)
    harness.start()
    thread.join(30)
    time.sleep(1.0)
    harness.kill9()  # a second kill, for good measure
    harness.start()
    assert harness.wait_count(total) == total
    time.sleep(1.0)
    harness.stop()
    with harness.db() as db:
        distinct = db.execute("SELECT count(DISTINCT user_name) FROM events").fetchone()[0]
    assert harness.count() == total and distinct == total
    assert harness.stats()["store"]["dead_letter"] == 0


def test_file_rotated_while_tailed_and_while_stopped(harness: Harness) -> None:
    path = harness.root / "app.log"
    harness.start()

    def write(target: Path, start: int, n: int) -> None:
        with target.open("ab") as fh:
            fh.write(b"".join(b"Invalid user r%d from 203.0.113.9 port 1\n" % i
                              for i in range(start, start + n)))

    write(path, 0, 100)
    assert harness.wait_count(100) == 100
    path.rename(path.with_name("app.log.1"))   # logrotate: rename ...
    write(path.with_name("app.log.1"), 100, 10)  # ... the daemon still writes the old file
    write(path, 110, 100)                      # ... then reopens the new one
    assert harness.wait_count(210) == 210
    harness.stop()
    write(path, 210, 30)                       # written while the collector is down
    path.rename(path.with_name("app.log.1"))   # and rotated while it is down
    write(path, 240, 20)
    harness.start()
    assert harness.wait_count(260) == 260
    harness.stop()
    with harness.db() as db:
        assert db.execute("SELECT count(DISTINCT user_name) FROM events").fetchone()[0] == 260
    assert harness.count() == 260


def test_hostile_input_is_dead_lettered_or_counted_and_the_collector_survives(
        harness: Harness) -> None:
    ports = harness.ports  # type: ignore[attr-defined]
    harness.start()
    send_tcp(ports["tcp"], b"<38>Nov 22 07:43:17 h sshd[1]: bad \xff\xfe utf8\n"
             b"<38>Nov 22 07:43:17 h sshd[1]: nul \x00 byte\n"
             + b"<38>" + b"A" * (1 << 20) + b"\n"
             + b"not syslog at all\n"
             + b"1000000000 x\n")  # the rest of this stream is that frame's, skipped
    send_tcp(ports["tcp"], b"40 <38>Nov 22 07:43:17 h sshd[1]: cut")  # truncated frame
    for junk in (b"\x16\x03\x01garbage-not-a-client-hello" * 10, b"<38>plain text on tls\n",
                 b""):
        with socket.create_connection(("127.0.0.1", ports["tls"])) as s:
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(5)
            with contextlib.suppress(OSError):
                s.recv(100)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.sendto(b"\x00" * 100, ("127.0.0.1", ports["udp"]))
        u.sendto(b"<38>" + b"B" * 20000, ("127.0.0.1", ports["udp"]))
    with (harness.root / "app.log").open("ab") as fh:
        fh.write(b"Invalid user \xc3\x28 from 203.0.113.9 port 1\n" + b"C" * 70000 + b"\n")
    send_tcp(ports["tcp"], line(1) + b"\n")  # and the collector still works
    assert harness.wait_count(1) == 1
    time.sleep(1.5)
    assert harness.alive()
    harness.stop()
    reasons = [r for r, _ in harness.dead()]
    for expected in ("invalid UTF-8", "NUL byte", "line too long", "no syslog header",
                     "frame too large", "truncated frame", "datagram too long"):
        assert any(expected in r for r in reasons), (expected, reasons)
    stats = harness.stats()
    assert stats["sources"]["tls"]["tls_failures"] >= 2
    assert stats["sources"]["tcp"]["framing_errors"] >= 3
    assert harness.count() == 1
    for name, s in stats["sources"].items():
        assert s["received"] == s["parsed"] + s["dead_letter"], (name, s)


def test_numbers_the_parsers_or_the_store_cannot_hold_are_dead_letters_not_a_stop(
        harness: Harness) -> None:
    """Hostile numbers once stopped the collector without a word: a port wider than 64
    bits raised out of the parser (the file source's task died, a UDP batch was lost), and
    one between 2**63 and 2**64 passed JSON but not SQLite, which killed the shipper with
    the sink still "healthy" and the spool filling. Now each is that line's dead letter
    (the store's refusal keeps the raw line, so a retry can parse it again), the lines
    around it are stored, and the counters reconcile."""
    ports = harness.ports  # type: ignore[attr-defined]
    harness.start()
    acl = ("<190>Nov 22 07:43:17 p01-rtr1 1234: Nov 22 07:43:17: %SEC-6-IPACCESSLOGP: list 101 "
           "denied tcp 198.18.0.1({}) -> 198.18.0.2(22), 1 packet")
    wide = acl.format(10 ** 20).encode()  # > 2**64: JSON cannot hold it
    unsigned = acl.format(10 ** 19).encode()  # > 2**63: JSON can, SQLite cannot
    send_tcp(ports["tcp"], line(1) + b"\n" + wide + b"\n" + unsigned + b"\n" + line(2) + b"\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        for payload in (wide, unsigned, line(3)):
            u.sendto(payload, ("127.0.0.1", ports["udp"]))
    assert harness.wait_count(3) == 3
    send_tcp(ports["tcp"], line(5) + b"\n")  # the shipper is still shipping
    assert harness.wait_count(4) == 4
    harness.stop()
    dead = harness.dead()
    parser = [raw for reason, raw in dead if reason.startswith("parser error")]
    refused = [raw for reason, raw in dead if reason.startswith("rejected by sqlite")]
    assert parser == [wide, wide] and refused == [unsigned, unsigned], dead
    stats = harness.stats()
    assert stats["errors"] == [] and stats["sink"]["healthy"] is True
    assert stats["store"]["events"] == 4
    for name, received in {"tcp": 5, "udp": 3}.items():
        s = stats["sources"][name]
        assert s["received"] == s["parsed"] + s["dead_letter"] == received, (name, s)
        assert (s["dead_letter"], s["rejected"]) == (1, 1), (name, s)
        assert s["shipped"] + s["duplicates"] + s["rejected"] == s["parsed"], (name, s)


def test_udp_overflow_is_counted_so_sent_reconciles(tmp_path: Path) -> None:
    """Spool full (the sink is down) -> sources block -> UDP piles up in the kernel, which
    drops; the kernel's drop counter is reported, so sent == received + udp_drops."""
    port = free_port(socket.SOCK_DGRAM)
    h = Harness(tmp_path, [{"name": "udp", "source": {"type": "syslog_udp",
                                                       "listen": f"127.0.0.1:{port}"},
                            "parser": {"dataset": "syslog"}}],
                collect={"spool": {"max_bytes": 1 << 16}})
    try:
        h.start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.sendto(line(0), ("127.0.0.1", port))
            assert h.wait_count(1) == 1
            blocker = h.db()
            blocker.execute("BEGIN EXCLUSIVE")
            try:
                sent = 1
                for i in range(1, 20001):
                    u.sendto(line(i), ("127.0.0.1", port))
                    sent += 1
                    if i % 500 == 0:
                        time.sleep(0.01)
                time.sleep(3)
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            s = h.stats()["sources"]["udp"]
            if s["received"] + s["udp_drops"] >= sent and h.count() == s["parsed"]:
                break
            time.sleep(0.5)
        h.stop()
        s = h.stats()["sources"]["udp"]
        assert s["udp_drops"] > 0, s
        assert s["received"] + s["udp_drops"] == sent, s
        assert h.count() == s["parsed"] == s["received"]
    finally:
        h.close()


def test_retention_of_a_large_expired_backlog_goes_on_while_events_are_shipped(
        harness: Harness) -> None:
    """Retention used to be one DELETE holding the store's only writer: with an hour's
    worth of expired events the collector stopped shipping for minutes. Now it deletes a
    chunk per shipping round: new events are stored while the backlog is still going."""
    expired = 300_000
    now = time.time()
    cutoff = now - 90 * 86400  # the default retention
    store = SqliteStore(harness.state / "events.db")
    with store.transaction():  # events as large as real ones (~1 KB doc), 200 days old
        store.db.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO events (id, ts, ingested, dataset, source_ip, user_name, host_name,"
            " event_action, message, doc) SELECT printf('%032x', i), ? + i / 1000.0, ?, "
            "'sshd', '203.0.113.' || (i % 250), 'u' || i, 'p01-rtr1', 'ssh_login', "
            "'expired ' || i, printf('{\"message\":\"%.900c\"}', 'x') FROM n",
            (expired, now - 200 * 86400, now - 200 * 86400))
    store.close()
    harness.start()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())  # not expired, whenever run
    send_tcp(harness.ports["tcp"], b"".join(  # type: ignore[attr-defined]
        f"<38>1 {stamp} p01-rtr1 sshd 42 - - Failed password for root from 203.0.113.5 "
        f"port {i} ssh2\n".encode() for i in range(100)))
    assert harness.wait_count(100, f"ts >= {cutoff}") == 100
    assert 0 < harness.count(f"ts < {cutoff}") < expired  # stored mid-retention
    deadline = time.monotonic() + 120
    while harness.count(f"ts < {cutoff}") and time.monotonic() < deadline:
        time.sleep(0.5)
    harness.stop()
    stats = harness.stats()
    assert stats["sink"]["pruned"] == expired and stats["store"]["events"] == 100


def test_the_live_status_shows_each_source_and_the_sink(tmp_path: Path) -> None:
    """``collect run --status`` (on by default in a terminal): per source its counters,
    then the spool and the sink's health. Forced on here, where stdout is a pipe, so the
    table is printed once when the run ends."""
    log = tmp_path / "app.log"
    log.write_bytes(b"\n".join(line(i) for i in range(3)) + b"\nnot syslog at all\n")
    h = Harness(tmp_path, [{"name": "app", "source": {"type": "file", "paths": [str(log)]},
                            "parser": {"dataset": "syslog"}}], env={"COLUMNS": "250"})
    out = h.socctl("collect", "run", "--status", "--duration", "3")
    assert out.returncode == 0, out.stderr
    row = next(r for r in out.stdout.splitlines() if " app " in r)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[:2] == ["app", str(log)] and cells[2] == "4", row  # received
    assert (cells[4], cells[5]) == ("3", "1"), row  # parsed, dead letter
    assert "sink sqlite healthy" in out.stdout and "spool " in out.stdout, out.stdout


def test_a_connection_flood_is_refused_over_the_cap_and_senders_go_on(tmp_path: Path) -> None:
    """A host opening connections and sending nothing used up the collector's file
    descriptors (then the spool and the store could not open theirs). Over the source's
    max_connections, connections are closed at accept and counted; the connected senders
    go on, and a slot freed is taken again. 20 connections, all on loopback."""
    port = free_port()
    h = Harness(tmp_path, [{"name": "tcp", "source": {"type": "syslog_tcp",
                                                       "listen": f"127.0.0.1:{port}",
                                                       "max_connections": 3},
                            "parser": {"dataset": "syslog"}}])
    h.start()
    sockets: list[socket.socket] = []

    def connect() -> socket.socket:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        sockets.append(s)
        return s

    try:
        held = [connect() for _ in range(3)]
        held[0].sendall(line(1) + b"\n")
        assert h.wait_count(1) == 1  # the three are in (the first has been read)
        for s in [connect() for _ in range(20)]:
            with contextlib.suppress(ConnectionResetError):
                assert s.recv(1) == b""  # closed by the collector, not left waiting
        for k, s in enumerate(held):
            s.sendall(line(10 + k) + b"\n")
        assert h.wait_count(4) == 4
        held[1].close()
        deadline = time.monotonic() + 10
        while True:  # the freed slot: a new sender gets in once the close is seen
            again = connect()
            again.sendall(line(99) + b"\n")
            if h.wait_count(5, timeout=1) == 5 or time.monotonic() > deadline:
                break
        assert h.count() == 5
        deadline = time.monotonic() + 10
        while (tcp := h.stats()["sources"]["tcp"])["connections_refused"] < 20 and \
                time.monotonic() < deadline:
            time.sleep(0.3)
        assert tcp["connections_refused"] >= 20 and tcp["connections"] >= 4, tcp
        assert h.alive()
    finally:
        for s in sockets:
            s.close()
        h.stop()


def test_a_tailed_log_replayed_after_rotation_is_not_stored_twice(tmp_path: Path) -> None:
    """The collector shipped app.log as it was written; logrotate renamed it app.log.1
    and an analyst replays that: the same lines are the same events (ids by the file's
    first line, offset and line, not by path or inode)."""
    log = tmp_path / "app.log"
    log.write_bytes(b"".join(line(i) + b"\n" for i in range(5)))
    h = Harness(tmp_path, [{"name": "app", "source": {"type": "file", "paths": [str(log)]},
                            "parser": {"dataset": "syslog"}}])
    h.start()
    try:
        assert h.wait_count(5) == 5
    finally:
        h.stop()
    rotated = log.rename(tmp_path / "app.log.1")
    out = h.socctl("-o", "json", "collect", "replay", "--source", "app", str(rotated))
    assert out.returncode == 0, out.stderr
    counts = json.loads(out.stdout)
    assert (counts["read"], counts["stored"], counts["duplicates"]) == (5, 0, 5)
    assert h.count() == 5


def test_a_replaced_botnet_list_is_used_without_a_restart(tmp_path: Path) -> None:
    """The national monitoring centre's list changes while collectors run for months: a
    replaced file is read again (every botnet_reload_seconds); one with a bad line leaves
    the list in use in place, with a warning in the stats."""
    port = free_port()
    h = Harness(tmp_path, [{"name": "tcp", "source": {"type": "syslog_tcp",
                                                       "listen": f"127.0.0.1:{port}"},
                            "parser": {"dataset": "syslog"}}],
                collect={"enrichment": {"inventory_profile": "lab", "botnet_list": "botnet.txt",
                                        "botnet_reload_seconds": 1}})
    listed = tmp_path / "project" / "collectors" / "botnet.txt"

    def replace(text: str) -> None:
        tmp = listed.with_suffix(".new")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, listed)

    def send_until(n: int, where: str) -> int:
        """Lines from 198.51.100.7 (new ports: new events) until ``where`` holds for one."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(f"<38>Nov 22 07:43:17 p01-rtr1 sshd[42]: Failed password for root "
                          f"from 198.51.100.7 port {n} ssh2\n".encode())
            n += 1
            if h.wait_count(1, where, timeout=1) >= 1:
                return n
        raise AssertionError(f"no event with {where} in 20 s")

    h.start()
    try:
        n = send_until(1000, "source_ip = '198.51.100.7'")
        assert h.count("threat_indicator_ip IS NOT NULL") == 0  # not listed yet
        replace("203.0.113.0/25\n198.51.100.0/24\n")
        n = send_until(n, "threat_indicator_ip = '198.51.100.7'")
        replace("203.0.113.0/25\nnot-an-address\n")
        deadline = time.monotonic() + 20
        # the content is now invalid (collect check rejects the list): `collect stats`
        # still shows the running collector's counters, and says so
        stats = h.stats()
        while not any("botnet list not reloaded" in e for e in stats["errors"]):
            assert time.monotonic() < deadline, stats
            time.sleep(0.5)
            stats = h.stats()
        assert any("collector content is invalid" in e and "not-an-address" in e
                   for e in stats["errors"]), stats["errors"]
        assert stats["running"] and stats["store"]["events"] == h.count() > 0
        send_until(n, f"source_port = {n}")  # the list in use still matches
        assert h.count(f"source_port = {n} AND threat_indicator_ip = '198.51.100.7'") == 1
        table = h.socctl("collect", "stats")
        assert table.returncode == 0 and "collector running" in table.stdout, table
        assert "collector content is invalid" in table.stdout
    finally:
        h.stop()
