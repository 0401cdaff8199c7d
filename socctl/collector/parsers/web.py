"""nginx and Apache access logs in the combined format (Apache's vhost_combined too).

``$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
"$http_referer" "$http_user_agent"``; nginx escapes quotes as ``\\x22``, Apache as ``\\"``.
A request line that is not ``METHOD TARGET PROTOCOL`` (TLS bytes sent to port 80, a
scanner's junk) is still an access event, without url.* fields.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from typing import Any

from socctl.collector.ecs import Event, ParseError
from socctl.collector.syslog import MONTHS

_Q = r'"((?:[^"\\]|\\.)*)"'
RE_COMBINED = re.compile(
    r"(?:(?P<vhost>[^\s:]+(?::\d+)?) )?(?P<ip>[0-9A-Fa-f:.]+|-) \S+ (?P<user>\S+) "
    r"\[(?P<time>[^\]]+)\] " + _Q.replace("(", "(?P<request>", 1)
    + r" (?P<status>\d{3}) (?P<bytes>\d+|-)(?: " + _Q.replace("(", "(?P<referrer>", 1)
    + r" " + _Q.replace("(", "(?P<agent>", 1) + r")?")
RE_TIME = re.compile(r"(\d\d)/(\w{3})/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)")
RE_REQUEST = re.compile(r"([A-Z][A-Za-z_-]{0,19}) (\S+) (HTTP/\d(?:\.\d)?)\Z")

_time_cache: dict[str, float] = {}


def _time(text: str) -> float:
    cached = _time_cache.get(text)
    if cached is not None:
        return cached
    m = RE_TIME.fullmatch(text)
    if m is None or m.group(2) not in MONTHS:
        raise ParseError(f"bad access-log time [{text}]")
    day, mon, year, hh, mm, ss, sign, oh, om = m.groups()
    value = float(calendar.timegm((int(year), MONTHS[mon], int(day), int(hh), int(mm),
                                   int(ss))))
    offset = (int(oh) * 3600 + int(om) * 60) * (1 if sign == "+" else -1)
    value -= offset
    if len(_time_cache) > 4096:
        _time_cache.clear()
    _time_cache[text] = value
    return value


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return text.replace("\\x22", '"').replace('\\"', '"').replace("\\\\", "\\")


def _parse(body: str, ev: Event, kind: str) -> float:
    m = RE_COMBINED.match(body)
    if m is None:
        raise ParseError(f"not a combined-format {kind} access line")
    ts = _time(m.group("time"))
    status = int(m.group("status"))
    e = ev["event"]
    e.update(category=["web"], type=["access"],
             outcome="failure" if status >= 400 else "success")
    ip = m.group("ip")
    if ip != "-":
        ev["source"] = {"ip": ip}
    user = m.group("user")
    if user != "-":
        ev["user"] = {"name": user}
    request = _unescape(m.group("request"))
    http: dict[str, Any] = {"response": {"status_code": status}}
    size = m.group("bytes")
    if size != "-":
        http["response"]["body"] = {"bytes": int(size)}
    rm = RE_REQUEST.match(request)
    if rm is not None:
        method, target, proto = rm.groups()
        http["request"] = {"method": method}
        http["version"] = proto[5:]
        path, _, query = target.partition("?")
        url: dict[str, Any] = {"original": target, "path": path}
        if query:
            url["query"] = query
        ev["url"] = url
        e["action"] = method.lower()
    elif request and request != "-":
        ev["http_request_line"] = request  # kept verbatim (non-HTTP bytes, junk)
    referrer = m.group("referrer")
    if referrer and referrer != "-":
        http.setdefault("request", {})["referrer"] = _unescape(referrer)
    ev["http"] = http
    agent = m.group("agent")
    if agent and agent != "-":
        ev["user_agent"] = {"original": _unescape(agent)}
    vhost = m.group("vhost")
    if vhost:
        ev["destination"] = {"domain": vhost.partition(":")[0]}
    return ts


def parse_nginx(body: str, ev: Event, opts: Mapping[str, Any]) -> float | None:
    return _parse(body, ev, "nginx")


def parse_apache(body: str, ev: Event, opts: Mapping[str, Any]) -> float | None:
    return _parse(body, ev, "apache")
