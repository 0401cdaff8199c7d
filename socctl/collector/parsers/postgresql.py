"""PostgreSQL server log lines with a configurable ``log_line_prefix``.

The prefix is compiled once into a regex (option ``log_line_prefix``; without it, the
postgresql role's ``%m [%p] %q%u@%d %h ``, else Debian's ``%m [%p] %q%u@%d ``). ECS
conventions: category [database]; failed logins (password failure, no pg_hba entry,
unknown role) are category [authentication] with outcome failure, action
``login_failed``; ``connection authorized`` is ``login``; a ``syntax error`` is action
``syntax_error`` (a common sign of SQL injection), the query
text, when logged, is in ``postgresql.log.query``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from socctl.collector.ecs import Event, ParseError
from socctl.collector.syslog import UTC, Zone, written_zone

DEFAULT_PREFIX = "%m [%p] %q%u@%d "
"""Debian's ``log_line_prefix``."""
ROLE_PREFIX = "%m [%p] %q%u@%d %h "
"""The postgresql role's (playbooks/roles/postgresql), with the client's address, which the
database rules group by."""
ROUTED_PREFIXES = (ROLE_PREFIX, DEFAULT_PREFIX)
"""A line with no prefix configured for it (a database server's log forwarded by rsyslog,
routed by its program name ``postgres`` from a syslog source): the role's, else Debian's."""

_TS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: ?(?:[A-Za-z]{1,5}|[+-]\d\d(?::?\d\d)?))?"
_ESCAPES: dict[str, str] = {
    "a": r"(?P<app>.*?)",
    "u": r"(?P<user>.*?)",
    "d": r"(?P<db>.*?)",
    "r": r"(?P<host>[^\s(]*?)(?:\((?P<port>\d+)\))?",
    "h": r"(?P<host>[^\s(]*?)",
    "b": r"(?P<backend>.*?)",
    "p": r"(?P<pid>\d+)",
    "P": r"(?P<leader>\d*)",
    "t": r"(?P<ts>" + _TS + ")",
    "m": r"(?P<ts>" + _TS + ")",
    "n": r"(?P<epoch>\d+(?:\.\d+)?)",
    "s": r"(?:" + _TS + ")",
    "i": r"(?P<tag>.*?)",
    "e": r"(?P<sqlstate>[0-9A-Z]{5})",
    "c": r"(?P<session>[0-9a-f]+\.[0-9a-f]+)",
    "l": r"(?P<line>\d+)",
    "v": r"(?:\S*)",
    "x": r"(?:\d*)",
    "Q": r"(?:-?\d+)",
}
_LEVELS = ("LOG|ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|DEBUG[1-5]?|DETAIL|HINT|STATEMENT"
           "|CONTEXT|QUERY|LOCATION")

RE_AUTH_FAIL = re.compile(r'password authentication failed for user "(?P<user>[^"]*)"')
RE_NO_HBA = re.compile(r'no pg_hba\.conf entry for host "(?P<ip>[^"]*)", user "(?P<user>[^"]*)"'
                       r', database "(?P<db>[^"]*)"')
RE_NO_ROLE = re.compile(r'role "(?P<user>[^"]*)" does not exist')
RE_RECEIVED = re.compile(r"connection received: host=(?P<ip>\S+?)(?: port=(?P<port>\d+))?\Z")
RE_AUTHORIZED = re.compile(r"connection authorized: user=(?P<user>\S+)(?: database=(?P<db>\S+))?")
RE_DISCONNECT = re.compile(r"disconnection: .*?user=(?P<user>\S+) database=(?P<db>\S+)"
                           r" host=(?P<ip>\S+?)(?: port=(?P<port>\d+))?\Z")
RE_STATEMENT = re.compile(r"(?:statement|execute [^:]*): (?P<query>.*)\Z", re.DOTALL)


@lru_cache(maxsize=32)
def compile_prefix(prefix: str) -> re.Pattern[str]:
    """``log_line_prefix`` -> a regex matching prefix + ``LEVEL:  message``."""
    out: list[str] = []
    optional_from: int | None = None
    seen: set[str] = set()
    i = 0
    while i < len(prefix):
        ch = prefix[i]
        if ch != "%":
            out.append(re.escape(ch))
            i += 1
            continue
        start = i
        j = i + 1
        while j < len(prefix) and (prefix[j].isdigit() or prefix[j] == "-"):
            j += 1
        if j >= len(prefix):
            raise ValueError(f"log_line_prefix ends with an incomplete escape: {prefix!r}")
        code = prefix[j]
        i = j + 1
        if code == "%":
            out.append("%")
        elif code == "q":
            optional_from = len(out)
        elif code in _ESCAPES:
            pattern = _ESCAPES[code]
            group = re.search(r"\?P<(\w+)>", pattern)
            if group and group.group(1) in seen:  # the same escape twice: match, don't capture
                pattern = re.sub(r"\?P<\w+>", "?:", pattern)
            elif group:
                seen.add(group.group(1))
            padded = j > start + 1  # %-10u pads with spaces
            out.append(r"\s*" + pattern + r"\s*" if padded else pattern)
        else:
            raise ValueError(f"log_line_prefix: unknown escape %{code}")
    if optional_from is not None:
        out[optional_from:] = ["(?:" + "".join(out[optional_from:]) + ")?"]
    # syslog_sequence_numbers adds "[3-1] " when logging to syslog
    return re.compile(r"(?:\[\d+-\d+\] )?" + "".join(out) + r"(?P<level>" + _LEVELS
                      + r"):\s+(?P<msg>.*)\Z", re.DOTALL)


def _epoch(text: str, zone: Zone) -> float | None:
    """%t / %m: ``2026-11-22 07:43:17.123 +07`` or with a zone name (``UTC``, ``ICT``);
    none, or a name that is ambiguous, is read in the collector's zone."""
    date, _, rest = text.partition(" ")
    clock = rest[:8]
    tail = rest[8:]
    frac = 0.0
    if tail.startswith("."):
        k = 1
        while k < len(tail) and tail[k].isdigit():
            k += 1
        frac = float(tail[:k])
        tail = tail[k:]
    tail = tail.strip()
    try:
        y, mo, d = (int(x) for x in date.split("-"))
        hh, mi, ss = (int(x) for x in clock.split(":"))
        if tail[:1] in "+-" and tail:
            digits = tail[1:].replace(":", "")
            offset = int(digits[:2]) * 3600 + (int(digits[2:4]) * 60 if len(digits) >= 4 else 0)
            offset *= 1 if tail[0] == "+" else -1
            return calendar.timegm((y, mo, d, hh, mi, ss)) + frac - offset
        return written_zone(tail, zone).epoch(y, mo, d, hh, mi, ss) + frac
    except (ValueError, OverflowError):
        return None


def parse(body: str, ev: Event, opts: Mapping[str, Any]) -> float | None:
    configured = opts.get("log_line_prefix")
    prefixes = (str(configured),) if configured is not None else ROUTED_PREFIXES
    line = body.rstrip("\r\n")
    for prefix in prefixes:
        m = compile_prefix(prefix).match(line)
        if m is not None:
            break
    else:
        raise ParseError("not a PostgreSQL log line for log_line_prefix "
                         + " or ".join(repr(p) for p in prefixes))
    g = m.groupdict()
    level = g["level"]
    msg = g["msg"]
    e = ev["event"]
    e["category"] = ["database"]
    e["type"] = ["info"]
    ev["log"]["level"] = level.lower()
    ev["message"] = msg
    pg: dict[str, Any] = {}
    if g.get("sqlstate"):
        e["code"] = g["sqlstate"]
        pg["sql_state_code"] = g["sqlstate"]
    if g.get("pid"):
        ev["process"] = {"name": "postgres", "pid": int(g["pid"])}
    user = g.get("user")
    if user and user != "[unknown]":
        ev["user"] = {"name": user}
    if g.get("db") and g["db"] != "[unknown]":
        pg["database"] = g["db"]
    if g.get("app") and g["app"] != "[unknown]":
        pg["application_name"] = g["app"]
    if g.get("session"):
        pg["session_id"] = g["session"]
    host = g.get("host")
    if host and host not in ("[local]", "[unknown]"):
        ev["source"] = {"ip": host}
        if g.get("port"):
            ev["source"]["port"] = int(g["port"])
    mm = (RE_AUTH_FAIL.search(msg) or RE_NO_ROLE.search(msg)) if level == "FATAL" else None
    if mm is not None:
        e.update(category=["authentication", "database"], type=["info"], outcome="failure",
                 action="login_failed")
        ev["user"] = {"name": mm.group("user")}
    elif level == "FATAL" and (mm := RE_NO_HBA.search(msg)) is not None:
        e.update(category=["authentication", "database"], type=["info"], outcome="failure",
                 action="login_failed")
        ev["user"] = {"name": mm.group("user")}
        ev["source"] = {"ip": mm.group("ip")}
        pg["database"] = mm.group("db")
    elif (mm := RE_RECEIVED.match(msg)) is not None:
        e.update(category=["network", "database"], type=["connection", "start"],
                 action="connection_received")
        ev["source"] = {"ip": mm.group("ip")}
        if mm.group("port"):
            ev["source"]["port"] = int(mm.group("port"))
    elif (mm := RE_AUTHORIZED.match(msg)) is not None:
        e.update(category=["authentication", "database"], type=["start"], outcome="success",
                 action="login")
        ev["user"] = {"name": mm.group("user")}
        if mm.group("db"):
            pg["database"] = mm.group("db")
    elif (mm := RE_DISCONNECT.match(msg)) is not None:
        e.update(category=["network", "database"], type=["connection", "end"],
                 action="disconnection")
        ev["user"] = {"name": mm.group("user")}
        ev["source"] = {"ip": mm.group("ip")}
        if mm.group("port"):
            ev["source"]["port"] = int(mm.group("port"))
    elif level == "ERROR" and msg.startswith("syntax error"):
        e.update(type=["error"], outcome="failure", action="syntax_error")
    elif level == "STATEMENT":
        e["action"] = "failed_statement"
        pg["query"] = msg
    elif level == "LOG" and (mm := RE_STATEMENT.match(msg)) is not None:
        e["action"] = "statement"
        pg["query"] = mm.group("query")
    elif level in ("ERROR", "FATAL", "PANIC"):
        e.update(type=["error"], outcome="failure", action=level.lower())
    if pg:
        ev["postgresql"] = {"log": pg}
    if g.get("ts"):
        return _epoch(g["ts"], opts.get("timezone", UTC))
    if g.get("epoch"):
        return float(g["epoch"])
    return None
