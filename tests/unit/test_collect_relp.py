"""The RELP source: rsyslog's own omrelp (the real sender, from Debian's rsyslog-relp)
into `socctl collect run` on loopback, a kill -9 of the collector in the middle, and the
protocol's edges from a raw socket. No root needed."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from socctl.collector.sources.relp import RelpSession, rsp
from tests.collect_harness import Harness, free_port

OMRELP = any(Path("/usr/lib").glob("*/rsyslog/omrelp.so"))


@pytest.fixture
def relp(tmp_path: Path) -> Iterator[Harness]:
    port = free_port()
    h = Harness(tmp_path, [{"name": "relp", "source": {"type": "relp",
                                                       "listen": f"127.0.0.1:{port}"},
                            "parser": {"dataset": "syslog"}}])
    h.ports = {"relp": port}  # type: ignore[attr-defined]
    yield h
    h.close()


def rsyslog_forwarding(work: Path, relp_port: int,
                       tls: str = "") -> tuple[subprocess.Popen[bytes], int]:
    """rsyslogd receiving plain TCP syslog and forwarding every message with omrelp (``tls``:
    omrelp's TLS parameters); (the process, its TCP port)."""
    tcp = free_port()
    work.mkdir()
    conf = work / "rsyslog.conf"
    conf.write_text(f"""
global(workDirectory="{work}")
module(load="imtcp")
module(load="omrelp" {'tls.tlslib="openssl"' if tls else ''})
input(type="imtcp" port="{tcp}" address="127.0.0.1")
*.* action(type="omrelp" target="127.0.0.1" port="{relp_port}" {tls}
           queue.type="LinkedList" action.resumeRetryCount="-1" action.resumeInterval="1")
""")
    proc = subprocess.Popen(["rsyslogd", "-n", "-f", str(conf), "-i", str(work / "pid")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", tcp)) == 0:
                return proc, tcp
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("rsyslogd did not start listening")


def certificates(folder: Path) -> dict[str, Path]:
    """A CA, the collector's certificate (collector.lab) and a sender's (p01-rtr1), each
    signed by the CA, as an agency's PKI would issue them."""
    folder.mkdir()
    out = {name: folder / name for name in
           ("ca.pem", "ca.key", "server.pem", "server.key", "client.pem", "client.key")}

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", *ec, "-subj", "/CN=socctl test CA", "-days", "1",
            "-keyout", "ca.key", "-out", "ca.pem")
    for who, name in (("server", "collector.lab"), ("client", "p01-rtr1")):
        openssl("req", *ec, "-subj", f"/CN={name}", "-keyout", f"{who}.key",
                "-out", f"{who}.csr")
        (folder / f"{who}.ext").write_text(f"subjectAltName=DNS:{name}\n")
        openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "1", "-extfile", f"{who}.ext", "-out", f"{who}.pem")
    return out


def sshd_line(i: int) -> bytes:
    return (b"<38>Nov 22 07:43:17 p01-rtr1 sshd[42]: Failed password for u%d from "
            b"203.0.113.9 port %d ssh2" % (i, i))


def source_stats(relp: Harness, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """``collect stats`` once the RELP source's counters (written every second) say so."""
    deadline = time.monotonic() + 10
    stats = relp.stats()
    while not ready(stats["sources"]["relp"]):
        assert time.monotonic() < deadline, stats
        time.sleep(0.2)
        stats = relp.stats()
    return stats


def stored_once(relp: Harness, total: int) -> None:
    """Every u0..u<total-1> stored, each once (the lost ones named when not)."""
    if relp.wait_count(total, timeout=60) != total:
        with relp.db() as db:
            have = {u for (u,) in db.execute("SELECT user_name FROM events")}
        missing = sorted({f"u{i}" for i in range(total)} - have)
        raise AssertionError(f"{len(missing)} not stored: {missing[:20]}")
    with relp.db() as db:
        distinct = db.execute("SELECT count(DISTINCT user_name) FROM events").fetchone()[0]
    assert relp.count() == total and distinct == total


@pytest.mark.skipif(not shutil.which("rsyslogd") or not OMRELP,
                    reason="needs rsyslogd with omrelp (Debian: rsyslog rsyslog-relp; "
                           "./dev installs them)")
def test_rsyslog_forwards_over_relp_and_every_message_is_stored_once(relp: Harness) -> None:
    """rsyslog's own omrelp (windows of 128 unacknowledged frames) into the source."""
    total = 4000
    relp.start()
    rsyslog, tcp = rsyslog_forwarding(relp.root / "rsyslog", relp.ports["relp"])  # type: ignore[attr-defined]
    try:
        with socket.create_connection(("127.0.0.1", tcp)) as s:
            for k in range(0, total, 500):
                s.sendall(b"".join(sshd_line(i) + b"\n" for i in range(k, k + 500)))
        stored_once(relp, total)
        stats = source_stats(relp, lambda s: s["received"] >= total)
    finally:
        rsyslog.terminate()
        rsyslog.wait(30)
    relp.stop()
    source = stats["sources"]["relp"]
    assert source["received"] == total and source["framing_errors"] == 0, source
    assert source["connections"] == 1 and stats["store"]["dead_letter"] == 0


@pytest.mark.skipif(not shutil.which("rsyslogd") or not OMRELP,
                    reason="needs rsyslogd with omrelp (Debian: rsyslog rsyslog-relp; "
                           "./dev installs them)")
def test_rsyslog_forwards_over_relp_with_tls_both_sides_authenticated(tmp_path: Path) -> None:
    """RELP over TLS as across an office's WAN link: omrelp checks the collector's name
    against the agency's CA, the collector asks for a client certificate from that CA.
    What cannot complete the handshake (garbage, a client without a certificate) is counted
    and the listener goes on serving."""
    total = 2000
    cert = certificates(tmp_path / "pki")
    port = free_port()
    relp = Harness(tmp_path, [{"name": "relp", "source": {
        "type": "relp", "listen": f"127.0.0.1:{port}", "tls_cert": str(cert["server.pem"]),
        "tls_key": str(cert["server.key"]), "tls_client_ca": str(cert["ca.pem"])},
        "parser": {"dataset": "syslog"}}])
    relp.start()
    tls = (f'tls="on" tls.caCert="{cert["ca.pem"]}" tls.myCert="{cert["client.pem"]}" '
           f'tls.myPrivKey="{cert["client.key"]}" tls.authMode="name" '
           f'tls.permittedPeer=["collector.lab"]')
    rsyslog, tcp = rsyslog_forwarding(tmp_path / "rsyslog", port, tls)
    try:
        with socket.create_connection(("127.0.0.1", tcp)) as s:
            s.sendall(b"".join(sshd_line(i) + b"\n" for i in range(total)))
        stored_once(relp, total)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"1 open 5 hello\n")  # plain RELP on the TLS port
            assert s.recv(4096) == b""
        anonymous = ssl.create_default_context(cafile=str(cert["ca.pem"]))
        anonymous.check_hostname = False
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                anonymous.wrap_socket(raw) as s:  # TLS 1.3: the refusal comes on read
            s.sendall(b"1 open 5 hello\n")
            try:
                answer = s.recv(4096)
            except (ssl.SSLError, ConnectionError) as exc:
                answer = repr(exc).encode()
            assert b"200 OK" not in answer, answer
        stats = source_stats(relp, lambda s: s["tls_failures"] >= 2)
        with relp.db() as db:
            site = db.execute("SELECT DISTINCT socctl_site FROM events").fetchall()
    finally:
        rsyslog.terminate()
        rsyslog.wait(30)
        relp.stop()
        relp.close()
    source = stats["sources"]["relp"]
    assert source["tls_failures"] == 2 and source["received"] == total, source
    assert source["connections"] == 1 and stats["store"]["dead_letter"] == 0, source
    assert site == [("p01",)]


class RelpClient:
    """A RELP sender as the protocol asks of one (librelp's behaviour): a window of
    unacknowledged frames, kept until answered, sent again on a new session when the
    connection breaks."""

    def __init__(self, port: int, window: int = 64, pause: float = 0.005) -> None:
        self.port = port
        self.window = window
        self.pause = pause
        self.unacked: dict[int, bytes] = {}
        self.txnr = 0
        self.resent = 0
        self.sessions = 0
        self.sent = 0  # messages sent once (not counting those sent again)
        self.sock: socket.socket | None = None

    def _connect(self, deadline: float) -> None:
        while True:
            try:
                self.sock = relp_session(self.port)
                self.txnr = 1
                self.sessions += 1
                return
            except (OSError, AssertionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _send(self, messages: list[bytes]) -> None:
        assert self.sock is not None
        frames = b""
        for msg in messages:
            self.txnr += 1
            self.unacked[self.txnr] = msg
            frames += b"%d syslog %d %s\n" % (self.txnr, len(msg), msg)
        self.sock.sendall(frames)

    def _read_acks(self) -> None:
        assert self.sock is not None
        data = b""
        while self.unacked:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("session closed")
            data += chunk
            *done, data = data.split(b"\n")
            for frame in done:
                txnr, command, rest = frame.split(b" ", 2)
                assert command == b"rsp" and rest.endswith(b"200 OK"), frame
                self.unacked.pop(int(txnr))

    def send_all(self, messages: list[bytes], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        self._connect(deadline)
        pos = 0
        while pos < len(messages) or self.unacked:
            try:
                if self.unacked:  # a new session: what the old one left unanswered first
                    again = list(self.unacked.values())
                    self.unacked.clear()
                    self.resent += len(again)
                    self._send(again)
                else:
                    self._send(messages[pos:pos + self.window])
                    pos += self.window
                    self.sent = min(pos, len(messages))
                self._read_acks()
                time.sleep(self.pause)
            except OSError:
                assert self.sock is not None
                self.sock.close()
                self._connect(deadline)
        assert self.sock is not None
        self.sock.close()


def test_kill_9_mid_stream_over_relp_loses_nothing_and_stores_nothing_twice(
        relp: Harness) -> None:
    """The collector killed -9 twice under a RELP sender: frames not yet answered are sent
    again on the next session, answered ones were spooled first, and re-sent ones that
    were already spooled keep their ids. (rsyslog 8.2302's omrelp itself dropped one
    message when the receiver stayed down over its retries, into rsyslog's own imrelp as
    well; this client does what the protocol asks, so the collector's side is what is
    measured here.)"""
    total = 10000
    # 64 frames each 50 ms (~1,300 a second): the stream outlasts a restart of the
    # collector, so that each kill comes mid-stream
    client = RelpClient(relp.ports["relp"], pause=0.05)  # type: ignore[attr-defined]
    messages = [sshd_line(i) for i in range(total)]
    relp.start()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            client.send_all(messages)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    # The kills go by the sender's progress, 500 frames into each session at least, not by
    # what the collector has stored: the store trails the answers (a frame is answered once
    # spooled), and the sender, 12,000 frames a second, had sent its last frame while the
    # collector was starting again (2 sessions, not 3).
    for mark in (total // 5, total // 2):
        mark = max(mark, client.sent + 500)
        assert mark < total - 500, (client.sent, "the sender is ahead of the kills")
        deadline = time.monotonic() + 20
        while client.sent < mark:
            assert time.monotonic() < deadline and thread.is_alive(), (errors, relp.log())
            time.sleep(0.002)
        relp.kill9()  # mid-stream: frames spooled and answered, spooled and not, in flight
        time.sleep(0.5)
        relp.start()
    thread.join(90)
    assert not thread.is_alive() and not errors, errors
    stored_once(relp, total)
    assert client.sessions == 3 and client.resent > 0, (client.sessions, client.resent)
    assert relp.stats()["store"]["dead_letter"] == 0
    relp.stop()


def relp_session(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    offers = b"relp_version=0\nrelp_software=test\ncommands=syslog"
    s.sendall(b"1 open %d %s\n" % (len(offers), offers))
    answer = s.recv(4096)
    assert answer.startswith(b"1 rsp ") and b"200 OK" in answer and b"commands=syslog" in answer
    return s


def read_until(s: socket.socket, end: bytes) -> bytes:
    data = b""
    while not data.endswith(end):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_relp_acknowledges_each_message_and_refuses_what_is_not_relp(relp: Harness) -> None:
    port = relp.ports["relp"]  # type: ignore[attr-defined]
    relp.start()
    with relp_session(port) as s:
        frames = b""
        for txnr, user in ((2, b"alice"), (3, b"bob")):
            msg = (b"<38>Nov 22 07:43:17 p01-rtr1 sshd[42]: Failed password for %s from "
                   b"203.0.113.9 port 22 ssh2" % user)
            frames += b"%d syslog %d %s\n" % (txnr, len(msg), msg)
        s.sendall(frames[:37])  # a frame cut by the network: nothing acknowledged yet
        time.sleep(0.2)
        s.sendall(frames[37:] + b"4 close 0\n")
        assert read_until(s, b"4 rsp 0\n") == b"2 rsp 6 200 OK\n3 rsp 6 200 OK\n4 rsp 0\n"
    assert relp.wait_count(2) == 2
    assert relp.count("user_name = 'bob' AND socctl_site = 'p01'") == 1

    # a plain syslog sender on the RELP port: dead-lettered, counted, connection closed
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"<38>Nov 22 07:43:17 p01-rtr1 sshd[42]: plain tcp syslog\n")
        assert read_until(s, b"serverclose 0\n") == b"0 serverclose 0\n"
    # a message before open
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"1 syslog 5 hello\n")
        assert read_until(s, b"serverclose 0\n") == b"0 serverclose 0\n"
    deadline = time.monotonic() + 10
    while len(relp.dead()) < 2:
        assert time.monotonic() < deadline, relp.dead()
        time.sleep(0.1)
    reasons = [reason for reason, _ in relp.dead()]
    assert reasons == ["RELP: not a RELP frame", "RELP: 'syslog' before open"], reasons
    assert relp.dead()[0][1].startswith(b"<38>Nov 22 07:43:17 p01-rtr1 sshd[42]: plain")
    stats = source_stats(relp, lambda s: s["framing_errors"] >= 2)["sources"]["relp"]
    assert stats["framing_errors"] == 2 and stats["received"] == 4, stats
    with relp_session(port) as s:  # and the source still serves
        s.sendall(b"2 close 0\n")
        assert read_until(s, b"2 rsp 0\n") == b"2 rsp 0\n"
    relp.stop()


def test_relp_frames_read_the_same_however_the_bytes_are_cut() -> None:
    """Whatever the reads' boundaries, the same messages and answers come out."""
    msgs = [b"<13>first", b"<13>second message", b"x" * 300, b"<13>" + "ồ".encode() * 3]
    offers = b"relp_version=0\ncommands=syslog,other"
    stream = b"1 open %d %s\n" % (len(offers), offers)
    for k, msg in enumerate(msgs, 2):
        stream += b"%d syslog %d %s\n" % (k, len(msg), msg)
    stream += b"9 close 0\n"
    whole = RelpSession(256).feed(stream)
    assert whole.error is None
    assert [m for m, _ in whole.messages] == [msgs[0], msgs[1], b"x" * 256, msgs[3]]
    assert whole.messages[2][1] == "message too long (300 bytes)"
    assert whole.acks == [rsp(k, b"200 OK") for k in range(2, 6)] + [b"9 rsp 0\n"]
    for size in (1, 2, 3, 7, 64):
        session = RelpSession(256)
        got, acks = [], []
        for i in range(0, len(stream), size):
            fed = session.feed(stream[i:i + size])
            assert fed.error is None, (size, i)
            got += fed.messages
            acks += fed.acks
        assert got == whole.messages and acks == whole.acks, size
    for bad, reason in ((b"1 open 1 x\n", "the client does not offer the syslog command"),
                        (b"12345678901 open 0\n", "not a RELP frame"),
                        (b"1 open 999999999 ", "frame of 999999999 bytes (limit 256)"),
                        (b"1 open 3 abcX", "no trailer after the data")):
        assert RelpSession(256).feed(bad).error == reason, bad


def test_a_window_sent_again_on_a_new_session_is_stored_once(relp: Harness) -> None:
    """A sender whose connection broke before the answers came sends the same frames on
    its next session, to the same running collector: stored once, counted as duplicates.
    (Per-sender occurrence counting, as for plain TCP, would have made them new events.)"""
    port = relp.ports["relp"]  # type: ignore[attr-defined]
    relp.start()

    def frames(first: int, users: range) -> bytes:
        return b"".join(b"%d syslog %d %s\n" % (first + k, len(sshd_line(i)), sshd_line(i))
                        for k, i in enumerate(users))

    with relp_session(port) as s:
        s.sendall(frames(2, range(50)))  # and the connection breaks: answers never read
    assert relp.wait_count(50) == 50
    with relp_session(port) as s:
        s.sendall(frames(2, range(60)) + b"62 close 0\n")
        assert read_until(s, b"62 rsp 0\n").count(b" rsp 6 200 OK\n") == 60
    assert relp.wait_count(60) == 60
    stats = source_stats(relp, lambda s: s["duplicates"] >= 50)["sources"]["relp"]
    assert stats["received"] == 110 and stats["duplicates"] == 50, stats
    assert relp.count() == 60
    relp.stop()
