"""nginx's error log: what nginx refused or failed to do, and for which client.

``2026/12/08 00:58:06 [error] 24934#24934: *4 limiting requests, excess: 2.983 by zone
"login", client: 198.18.2.10, server: portal, request: "POST /dang-nhap HTTP/1.1", host:
"portal"``: the time (the host's wall clock, no zone), the level, pid#thread, the
connection (``*N``), the message, then the request's context, which nginx appends in a
fixed order (client, server, request, subrequest, upstream, host, referrer). The same
text arrives over syslog (tag ``nginx``, the web role's ``error_log syslog:``) and in
error.log files.

The client is the first ``, client: <address>, server: `` of the line. The message
before it can quote a path from the request (``open() "/var/www/x" failed``), so a
client could write a false context there; the rate-limit and access-control messages
socctl's rules read carry no request text before the context.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from socctl.collector.ecs import Event, ParseError
from socctl.collector.syslog import UTC, Zone

RE_HEAD = re.compile(r"(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d) \[([a-z]+)\] (\d+)#\d+: "
                     r"(?:\*(\d+) )?")
RE_CLIENT = re.compile(r", client: ([0-9A-Fa-f:.]+|unix:), server: ")
RE_CONTEXT = re.compile(r'(?:^|, )(server|request|subrequest|upstream|host|referrer): '
                        r'(?:"((?:[^"\\]|\\.)*)"|([^,]*))')
RE_LIMIT = re.compile(r'limiting (requests|connections)(?:, excess: ([\d.]+))? by zone '
                      r'"([^"]+)"')
RE_REQUEST = re.compile(r"([A-Z][A-Za-z_-]{0,19}) (\S+) HTTP/(\d(?:\.\d)?)\Z")

_LEVELS = {"debug": "debug", "info": "info", "notice": "notice", "warn": "warning",
           "error": "error", "crit": "critical", "alert": "alert", "emerg": "emergency"}
"""nginx's level names -> syslog's, as log.level is written for every other source."""

ACTIONS: tuple[tuple[str, str, str], ...] = (
    ("limiting requests", "request-rate-limited", "denied"),
    ("limiting connections", "connection-limited", "denied"),
    ("access forbidden by rule", "access-forbidden", "denied"),
    ("is forbidden", "access-forbidden", "denied"),
    ("client intended to send too large body", "request-body-too-large", "denied"),
    ("SSL_do_handshake() failed", "tls-handshake-failed", "error"),
    ("upstream timed out", "upstream-timeout", "error"),
    ("while connecting to upstream", "upstream-unreachable", "error"),
    ("no live upstreams", "upstream-unreachable", "error"),
    ("failed (2: No such file or directory)", "file-not-found", "error"),
    ("failed (13: Permission denied)", "permission-denied", "error"),
)
"""The messages an analyst asks for by name (``event.action``), with their event.type
beside ``error`` (``denied``: nginx refused the client). The first that occurs in the
message wins; any other message is an error event with no action."""


def parse(body: str, ev: Event, opts: Mapping[str, Any]) -> float | None:
    head = RE_HEAD.match(body)
    if head is None:
        raise ParseError("not an nginx error-log line (YYYY/MM/DD HH:MM:SS [level] pid#tid:)")
    y, mo, d, hh, mi, ss, level, pid, connection = head.groups()
    if level not in _LEVELS:
        raise ParseError(f"unknown nginx error-log level [{level}]")
    rest = body[head.end():]
    client = RE_CLIENT.search(rest)
    message = rest[:client.start()] if client is not None else rest
    e = ev["event"]
    e.update(category=["web"], type=["error"], outcome="failure")
    for text, action, kind in ACTIONS:
        if text in message:
            e["action"] = action
            if kind != "error":
                e["type"] = ["error", kind]
            break
    ev["log"]["level"] = _LEVELS[level]
    ev["process"] = {**ev.get("process", {"name": "nginx"}), "pid": int(pid)}
    ev["message"] = message
    detail: dict[str, Any] = {}
    if connection is not None:
        detail["connection_id"] = int(connection)
    limit = RE_LIMIT.search(message)
    if limit is not None:
        detail["zone"] = limit.group(3)
        if limit.group(2) is not None:
            detail["excess"] = float(limit.group(2))
    if client is not None:
        address = client.group(1)
        if address != "unix:":
            ev["source"] = {"ip": address}
        _context(rest[client.end() - len("server: "):], ev, detail)
    if detail:
        ev["nginx"] = {"error": detail}
    stamp = (int(y), int(mo), int(d), int(hh), int(mi), int(ss))
    try:
        datetime(*stamp)  # checks the fields only: the zone is the option's
        zone: Zone = opts.get("timezone", UTC)
        return zone.epoch(*stamp)
    except (ValueError, OverflowError, OSError) as exc:
        raise ParseError(f"bad nginx error-log time {body[:19]!r}: {exc}") from None


def _context(text: str, ev: Event, detail: dict[str, Any]) -> None:
    """``server: S, request: "R", upstream: "U", host: "H", referrer: "F"`` -> ECS."""
    for key, quoted, bare in RE_CONTEXT.findall(text):
        value = quoted or bare
        if not value:
            continue
        if key == "request":
            rm = RE_REQUEST.match(value)
            if rm is None:
                detail["request"] = value
                continue
            method, target, version = rm.groups()
            path, _, query = target.partition("?")
            ev["url"] = {"original": target, "path": path, **({"query": query} if query else {})}
            ev["http"] = {"request": {"method": method}, "version": version}
        elif key == "host":
            ev["destination"] = {"domain": value.partition(":")[0]}
        elif key == "referrer":
            ev.setdefault("http", {}).setdefault("request", {})["referrer"] = value
        else:
            detail[key] = value
