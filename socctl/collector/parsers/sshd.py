"""OpenSSH server messages (auth.log via syslog, or the bare lines of ``sshd -E FILE``).

ECS conventions used here (detections rely on them):
- a login attempt: event.action ``ssh_login``, category [authentication], type [start]
  when accepted / [info] when refused, outcome success|failure, user.name,
  source.ip/port, ``ssh.method`` (password, publickey, ...);
- ``invalid_user`` (an unknown account was tried), outcome failure;
- ``ssh_disconnect`` / ``ssh_connection`` for session ends and new connections;
- ``ssh_auth_limit`` for "maximum authentication attempts exceeded".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from socctl.collector.ecs import Event

_IP = r"(?P<ip>[0-9A-Fa-f:.]+)"
_PORT = r"(?: port (?P<port>\d{1,5}))?"

RE_LOGIN = re.compile(
    r"(?P<result>Accepted|Failed) (?P<method>\S+) for (?P<invalid>invalid user )?"
    r"(?P<user>.*?) from " + _IP + _PORT)
RE_INVALID = re.compile(r"[Ii]nvalid user (?P<user>.*?) from " + _IP + _PORT)
RE_CLOSED = re.compile(
    r"(?P<what>Connection closed|Disconnected|Connection reset) (?:by|from) "
    r"(?:(?:authenticating|invalid) user (?P<user>\S*) |user (?P<user2>\S+) )?" + _IP + _PORT)
RE_RECEIVED_DISCONNECT = re.compile(r"Received disconnect from " + _IP + _PORT)
RE_MAX = re.compile(
    r"(?:error: )?maximum authentication attempts exceeded for (?:invalid user )?"
    r"(?P<user>\S+) from " + _IP + _PORT)
RE_TOO_MANY = re.compile(
    r"Disconnecting (?:authenticating|invalid) user (?P<user>\S+) " + _IP + _PORT
    + r": Too many authentication failures")
RE_CONNECTION = re.compile(r"Connection from " + _IP + _PORT + r" on (?P<dip>[0-9A-Fa-f:.]+)"
                           r"(?: port (?P<dport>\d{1,5}))?")
RE_NOID = re.compile(r"(?:Did not receive identification string from|banner exchange: "
                     r"Connection from|Unable to negotiate with|kex_exchange_identification:"
                     r".*?from) " + _IP + _PORT)
RE_PAM_FAIL = re.compile(r"pam_unix\(sshd:auth\): authentication failure;.*?rhost=(?P<ip>\S*)"
                         r"(?:\s+user=(?P<user>\S+))?")
RE_SESSION = re.compile(r"pam_unix\(sshd:session\): session (?P<what>opened|closed) for user "
                        r"(?P<user>[^\s(]+)")
RE_REPEATED = re.compile(r"message repeated (\d+) times: \[ ?(.*)\]\Z", re.DOTALL)


def _source(ev: Event, m: re.Match[str]) -> None:
    ev["source"] = {"ip": m.group("ip")}
    port = m.group("port")
    if port:
        ev["source"]["port"] = int(port)


def parse(body: str, ev: Event, opts: Mapping[str, Any]) -> float | None:
    body = body.rstrip("\r\n")
    repeated = RE_REPEATED.match(body)
    if repeated is not None:
        ev.setdefault("event", {})["count"] = int(repeated.group(1))
        body = repeated.group(2)
    e = ev["event"]
    m = RE_LOGIN.match(body)
    if m is not None:
        ok = m.group("result") == "Accepted"
        e.update(action="ssh_login", category=["authentication"],
                 type=["start"] if ok else ["info"], outcome="success" if ok else "failure")
        ev["user"] = {"name": m.group("user")}
        _source(ev, m)
        ev["ssh"] = {"method": m.group("method")}
        if m.group("invalid"):
            ev["ssh"]["invalid_user"] = True
        return None
    m = RE_INVALID.match(body)
    if m is not None:
        e.update(action="invalid_user", category=["authentication"], type=["info"],
                 outcome="failure")
        ev["user"] = {"name": m.group("user")}
        _source(ev, m)
        return None
    m = RE_MAX.match(body) or RE_TOO_MANY.match(body)
    if m is not None:
        e.update(action="ssh_auth_limit", category=["authentication"], type=["info"],
                 outcome="failure")
        ev["user"] = {"name": m.group("user")}
        _source(ev, m)
        return None
    m = RE_CLOSED.match(body)
    if m is not None:
        e.update(action="ssh_disconnect", category=["network", "session"], type=["end"])
        user = m.group("user") or m.group("user2")
        if user:
            ev["user"] = {"name": user}
        _source(ev, m)
        return None
    m = RE_RECEIVED_DISCONNECT.match(body)
    if m is not None:
        e.update(action="ssh_disconnect", category=["network", "session"], type=["end"])
        _source(ev, m)
        return None
    m = RE_CONNECTION.match(body)
    if m is not None:
        e.update(action="ssh_connection", category=["network"], type=["connection", "start"])
        _source(ev, m)
        ev["destination"] = {"ip": m.group("dip")}
        if m.group("dport"):
            ev["destination"]["port"] = int(m.group("dport"))
        return None
    m = RE_NOID.match(body)
    if m is not None:
        e.update(action="ssh_protocol_error", category=["network"], type=["connection"],
                 outcome="failure")
        _source(ev, m)
        return None
    m = RE_PAM_FAIL.match(body)
    if m is not None:
        e.update(action="pam_auth_failure", category=["authentication"], type=["info"],
                 outcome="failure")
        if m.group("ip"):
            ev["source"] = {"ip": m.group("ip")}
        if m.group("user"):
            ev["user"] = {"name": m.group("user")}
        return None
    m = RE_SESSION.match(body)
    if m is not None:
        opened = m.group("what") == "opened"
        e.update(action="session_" + m.group("what"), category=["session"],
                 type=["start"] if opened else ["end"])
        ev["user"] = {"name": m.group("user")}
    return None
