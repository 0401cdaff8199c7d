"""Syslog message headers: RFC 5424, RFC 3164 (BSD) and the ISO-8601 file format.

The header gives the time, the sending host, the program and its pid; the parsers of each
dataset then read the message body. Regexes are compiled once and timestamps are cached
per distinct string, because this runs once per received event (the ingest hot path).
"""

from __future__ import annotations

import calendar
import re
import time
from datetime import datetime
from typing import NamedTuple

MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}


class Header(NamedTuple):
    ts: float | None
    host: str | None
    app: str | None
    pid: int | None
    msg: str
    pri: int | None
    msgid: str | None = None
    sd: str | None = None
    fmt: str = "rfc3164"


_PRI = r"(?:<(\d{1,3})>)"
RE_5424 = re.compile(
    _PRI + r"1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (.*))?\Z",
    re.DOTALL)
RE_3164 = re.compile(
    _PRI + r"?([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)(?:\.\d+)? "
    r"(?:([^\s:\[]+) )?([^\s:\[\]]+)(?:\[(\d{1,10})\])?: ?(.*)\Z", re.DOTALL)
RE_3164_NOTAG = re.compile(
    _PRI + r"?([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)(?:\.\d+)? (\S+) (.*)\Z",
    re.DOTALL)
RE_ISO = re.compile(
    _PRI + r"?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?) "
    r"(\S+) ([^\s:\[\]]+)(?:\[(\d{1,10})\])?: ?(.*)\Z", re.DOTALL)

_iso_cache: dict[str, float] = {}
_bsd_cache: dict[tuple[str, int], float] = {}


def iso_to_epoch(text: str) -> float | None:
    """ISO-8601 (``Z`` or offset; no offset means UTC) -> epoch seconds; ``None`` if bad."""
    cached = _iso_cache.get(text)
    if cached is not None:
        return cached
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        value = calendar.timegm(stamp.timetuple()) + stamp.microsecond / 1e6
    else:
        value = stamp.timestamp()
    if len(_iso_cache) > 4096:
        _iso_cache.clear()
    _iso_cache[text] = value
    return value


_year_of_hour: dict[int, int] = {}


def _year(received: float) -> int:
    """The UTC year at ``received`` (per hour: a batch shares its reception time)."""
    hour = int(received) // 3600
    year = _year_of_hour.get(hour)
    if year is None:
        if len(_year_of_hour) > 64:
            _year_of_hour.clear()
        year = _year_of_hour[hour] = time.gmtime(hour * 3600).tm_year
    return year


def bsd_to_epoch(mon: str, day: str, hh: str, mm: str, ss: str, received: float) -> float | None:
    """RFC 3164 time (no year, no zone: UTC assumed) -> epoch, year inferred from ``received``.

    A time more than two days ahead of reception belongs to last year (December lines
    read in January).
    """
    month = MONTHS.get(mon)
    if month is None:
        return None
    year = _year(received)
    key = (f"{mon}{day} {hh}{mm}{ss}", year)
    cached = _bsd_cache.get(key)
    if cached is not None:
        return cached
    try:
        value = float(calendar.timegm((year, month, int(day), int(hh), int(mm), int(ss))))
        if not (1 <= int(day) <= 31 and int(hh) < 24 and int(mm) < 60 and int(ss) < 61):
            return None
    except (ValueError, OverflowError):
        return None
    if value > received + 2 * 86400:
        value = float(calendar.timegm((year - 1, month, int(day), int(hh), int(mm), int(ss))))
    if len(_bsd_cache) > 4096:
        _bsd_cache.clear()
    _bsd_cache[key] = value
    return value


def _nil(value: str) -> str | None:
    return None if value == "-" else value


def parse_header(line: str, received: float) -> Header | None:
    """The syslog header of ``line``, or ``None`` when it has none we recognise."""
    first = line[:1]
    if first == "<":
        m = RE_5424.match(line)
        if m is not None:
            pri, stamp, host, app, procid, msgid, sd, msg = m.groups()
            ts = iso_to_epoch(stamp) if stamp != "-" else None
            pid = int(procid) if procid.isdigit() and len(procid) < 11 else None
            if msg and msg.startswith("\ufeff"):
                msg = msg[1:]
            if msg and msg[:1] == " ":  # rsyslog's %msg% keeps the space after the tag
                msg = msg.lstrip(" ")
            return Header(ts, _nil(host), _nil(app), pid, msg or "", int(pri), _nil(msgid),
                          _nil(sd), "rfc5424")
    start = line.find(">", 0, 5) + 1 if first == "<" else 0
    if line[start + 4:start + 5] == "-" and line[start:start + 1].isdigit():
        m = RE_ISO.match(line)
        if m is not None:
            pri, stamp, host, app, pid_s, msg = m.groups()
            return Header(iso_to_epoch(stamp), host, app, int(pid_s) if pid_s else None, msg,
                          int(pri) if pri else None, fmt="iso")
    m = RE_3164.match(line)
    if m is not None:
        pri, mon, day, hh, mm, ss, host, app, pid_s, msg = m.groups()
        return Header(bsd_to_epoch(mon, day, hh, mm, ss, received), host, app,
                      int(pid_s) if pid_s else None, msg, int(pri) if pri else None)
    m = RE_3164_NOTAG.match(line)
    if m is not None:
        pri, mon, day, hh, mm, ss, host, msg = m.groups()
        return Header(bsd_to_epoch(mon, day, hh, mm, ss, received), host, None, None, msg,
                      int(pri) if pri else None)
    return None
