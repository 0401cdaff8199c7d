"""Parse one log line into a nested ECS event: the entry point for every source and test.

``parse_line(dataset, line)`` reads the syslog header when there is one (RFC 5424, RFC
3164, ISO-8601 file format), then the dataset's message parser. Dataset ``syslog`` routes
by program name (``sshd`` -> ``sshd``, ``postfix/smtpd`` -> ``postfix``, kernel or ulogd
lines with ``IN= ... SRC=`` -> ``netfilter``, nginx's error lines, which share its access
log's tag, -> ``nginx.error``, ``%FAC-SEV-MNEMONIC`` -> ``cisco_ios`` ...) and keeps
what no parser claims as a generic ``syslog`` event. A line that cannot be an event raises
:class:`ParseError`; the caller puts it in the dead-letter store with the reason.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from socctl.collector.ecs import ECS_VERSION, Event, ParseError, canonical_ip
from socctl.collector.parsers import MODULES, PARSERS
from socctl.collector.syslog import UTC, Header, Zone, parse_header, zone_named

if TYPE_CHECKING:
    from socctl.collector.enrich import Enricher

__all__ = ["DATASETS", "DEFAULT_ROUTES", "MAX_LINE", "ParseError", "format_ts", "parse_event",
           "parse_line", "route"]

DATASETS: tuple[str, ...] = tuple(PARSERS)
MAX_LINE = 65536
"""Longer lines are dead-lettered (a 1 MB "line" is an attack or a framing error)."""

DEFAULT_ROUTES: dict[str, str] = {
    "sshd": "sshd", "sshd-session": "sshd", "sshd-auth": "sshd",
    "nginx": "nginx.access", "apache2": "apache.access", "httpd": "apache.access",
    "postgres": "postgresql", "postgresql": "postgresql",
    "zebra": "frr", "ospfd": "frr", "ospf6d": "frr", "bgpd": "frr", "watchfrr": "frr",
    "staticd": "frr", "mgmtd": "frr", "isisd": "frr", "bfdd": "frr", "frr": "frr",
    "clamd": "clamav", "clamav-milter": "clamav",
    "amavis": "amavis", "amavisd": "amavis", "amavisd-new": "amavis",
    "snmptrap": "snmp.trap",
}
"""Program name (syslog tag) -> dataset. ``postfix/*`` goes to postfix."""
_PACKET_LOGGERS = frozenset({"kernel", "ulogd"})
"""Programs that write netfilter's packet log lines: the kernel's own log, and ulogd2 (the
firewall role's NFLOG target), whose lines are the kernel's text under its own name."""

RE_PRI = re.compile(r"<(\d{1,3})>")
RE_NGINX_ERROR = re.compile(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[")
RE_CISCO = re.compile(r"%[A-Z0-9_]+-[0-7]-[A-Z0-9_]+: ")
_SEVERITY = ("emergency", "alert", "critical", "error", "warning", "notice", "informational",
             "debug")


def route(header: Header | None, body: str, routes: Mapping[str, str] = DEFAULT_ROUTES) -> str:
    """The dataset of a syslog message, from its program name and (for kernel/Cisco) body."""
    app = header.app if header is not None else None
    if app:
        dataset = routes.get(app)
        if dataset is not None:
            if dataset == "nginx.access" and RE_NGINX_ERROR.match(body) is not None:
                return "nginx.error"  # one tag for both of nginx's logs (the web role's)
            return dataset
        if app.startswith("postfix"):
            return "postfix"
        if app in _PACKET_LOGGERS and "SRC=" in body and "IN=" in body:
            return "netfilter"
    if "%" in body and RE_CISCO.search(body) is not None:
        return "cisco_ios"
    return "syslog"


_second_text: dict[int, str] = {}


def format_ts(ts: float) -> str:
    """Epoch -> ``2026-11-22T07:43:17.123Z`` (cached per second: called per event)."""
    sec = int(ts)
    text = _second_text.get(sec)
    if text is None:
        if len(_second_text) > 4096:
            _second_text.clear()
        text = _second_text[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    ms = min(int((ts - sec) * 1000 + 0.5), 999)
    return f"{text}.{ms:03d}Z"


def check_line(line: str) -> None:
    """Reject what must never be stored as an event: NUL bytes, bad UTF-8, huge lines."""
    if len(line) > MAX_LINE:
        raise ParseError(f"line too long ({len(line)} characters, limit {MAX_LINE})")
    if "\x00" in line:
        raise ParseError("NUL byte in line")
    if not line.isascii():
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:
            raise ParseError("invalid UTF-8") from None


_ADDRESSED = ("source", "destination", "client", "server")
"""ECS objects whose ``ip`` a parser fills from the line: an IPv6 address is stored
compressed and in lower case (ip6tables' LOG writes every zero, Cisco upper case, sshd
as the client sent it), so one attacker is one ``source.ip`` for searches and for the
correlations grouping by it, as the inventory and the botnet list write addresses."""


def parse_event(dataset: str, line: str, received: float,
                options: Mapping[str, Any] | None = None,
                routes: Mapping[str, str] | None = None) -> tuple[float | None, Event]:
    """``(time written in the line, event)``: the hot-path form of :func:`parse_line` (no
    ISO formatting needed by the caller, which stores the epoch). The time is ``None``
    when the line has none; ``@timestamp`` is then ``received``. ``options["timezone"]``
    (a :class:`~socctl.collector.syslog.Zone` or its name; default UTC) is the zone of
    times written without one."""
    check_line(line)
    raw = line.rstrip("\r\n")
    if not raw or raw.isspace():
        raise ParseError("empty line")
    opts = options or {}
    zone = opts.get("timezone", UTC)
    if not isinstance(zone, Zone):
        zone = zone_named(str(zone))
        opts = {**opts, "timezone": zone}
    header = parse_header(raw, received, zone)
    body = header.msg if header is not None else raw
    if header is None and raw[:1] == "<" and (pm := RE_PRI.match(raw)) is not None:
        # A PRI but no standard header (Cisco IOS: "<189>123: *Nov 22 ...: %SYS-5-...")
        header = Header(None, None, None, None, raw[pm.end():], int(pm.group(1)), fmt="pri")
        body = header.msg
    wanted = dataset
    if dataset == "syslog":
        if header is None and not RE_CISCO.search(raw):
            raise ParseError("no syslog header")
        dataset = route(header, body, routes or DEFAULT_ROUTES)
    parser = PARSERS.get(dataset)
    if parser is None:
        raise ParseError(f"unknown dataset {dataset!r} (known: {', '.join(DATASETS)})")
    ev: Event = {
        "@timestamp": received,  # while parsers run: the reception time (epoch), for a
        # parser that must infer a stamp's year (Cisco); the event's own time replaces it
        "ecs": {"version": ECS_VERSION},
        "event": {"kind": "event", "dataset": dataset, "module": MODULES[dataset]},
        "log": {"original": raw},
        "message": body,
    }
    if header is not None:
        if header.host:
            ev["host"] = {"name": header.host}
        if header.app:
            ev["process"] = {"name": header.app, "pid": header.pid} if header.pid is not None \
                else {"name": header.app}
        if header.pri is not None and header.pri < 192:
            ev["log"]["syslog"] = {"priority": header.pri,
                                   "facility": {"code": header.pri >> 3},
                                   "severity": {"code": header.pri & 7}}
            ev["log"]["level"] = _SEVERITY[header.pri & 7]
        if header.msgid:
            ev["log"]["syslog"] = {**ev["log"].get("syslog", {}), "msgid": header.msgid}
        if header.sd:
            ev["log"]["syslog"] = {**ev["log"].get("syslog", {}), "structured_data": header.sd}
    try:
        ts = parser(body, ev, opts)
    except ParseError as exc:
        if wanted != "syslog":
            raise
        # A valid syslog line whose program's parser does not know it: keep it, generic.
        ev["event"] = {"kind": "event", "dataset": "syslog", "module": "syslog"}
        ev["message"] = body
        ev["error"] = {"message": exc.reason}
        ts = None
    for side in _ADDRESSED:
        part = ev.get(side)
        ip = part.get("ip") if part is not None else None
        if isinstance(ip, str) and ":" in ip:  # IPv6 as one text, whoever wrote it
            part["ip"] = canonical_ip(ip)  # type: ignore[index]
    if ts is None and header is not None:
        ts = header.ts
    ev["@timestamp"] = format_ts(received if ts is None else ts)
    return ts, ev


def parse_line(dataset: str, line: str, *, received: float | None = None,
               options: Mapping[str, Any] | None = None,
               enrich: Enricher | None = None) -> Event:
    """One line -> one nested ECS event dict (``@timestamp`` ISO-8601, ``log.original``).

    ``options`` are the dataset's parser options (``log_line_prefix`` for postgresql,
    ``timezone`` for times written without a zone: UTC unless given).
    ``enrich`` adds inventory site/tier/province and botnet-list matches. Raises
    :class:`ParseError` (``.reason``) for a line that belongs in the dead-letter store.
    """
    _, ev = parse_event(dataset, line, time.time() if received is None else received, options)
    if enrich is not None:
        enrich.apply(ev)
    return ev
