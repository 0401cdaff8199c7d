"""Syslog message headers: RFC 5424, RFC 3164 (BSD) and the ISO-8601 file format.

The header gives the time, the sending host, the program and its pid; the parsers of each
dataset then read the message body. Regexes are compiled once and timestamps are cached
per distinct string, because this runs once per received event (the ingest hot path).
"""

from __future__ import annotations

import calendar
import re
import time
from datetime import UTC as _UTC
from datetime import datetime, tzinfo
from functools import cache
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
    r"(\S+) ([^\s:\[\]]+)(?:\[(\d{1,10})\])?(?:: ?| |(?=\Z))(.*)\Z", re.DOTALL)
"""The tag ends in a colon, or (rsyslog's file of an RFC 5424 message: ``sshd[42] Failed
...``, ``- msg`` for no APP-NAME) in a space: a collector's file held every forwarded
message in that form, and all of them were dead-lettered."""


class Zone:
    """The zone in which a log's zone-less times were written: RFC 3164 stamps, ISO-8601
    without an offset, FRR's and clamd's log files, Cisco's without a zone name.

    ``UTC``, ``local`` (the collector host's zone: what rsyslog and the hosts beside it
    write) or an IANA name such as ``Asia/Ho_Chi_Minh``. The agency's devices log in
    UTC+7: read as UTC, each of their events would be seven hours in the future and out of
    step with the sources that write an offset (nginx, PostgreSQL, RFC 5424). Conversions
    are cached per distinct string, per zone (the ingest hot path).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.tz: tzinfo | None = (_UTC if name == "UTC" else None if name == "local"
                                  else ZoneInfo(name))
        self.iso: dict[str, float] = {}
        self.bsd: dict[tuple[str, int], float] = {}
        self._years: dict[int, int] = {}

    def year(self, when: float) -> int:
        """The year in this zone at ``when`` (cached per quarter hour: zones are offset
        from UTC by multiples of 15 minutes, and a batch shares its reception time)."""
        quarter = int(when) // 900
        year = self._years.get(quarter)
        if year is None:
            if len(self._years) > 64:
                self._years.clear()
            at = quarter * 900
            year = self._years[quarter] = (time.gmtime(at) if self.tz is _UTC
                                           else datetime.fromtimestamp(at, self.tz).timetuple()
                                           ).tm_year
        return year

    def epoch(self, y: int, mo: int, d: int, hh: int, mi: int, ss: int) -> float:
        """A wall-clock time of this zone -> epoch seconds (naive: the host's zone)."""
        if self.tz is _UTC:
            return float(calendar.timegm((y, mo, d, hh, mi, ss)))
        return datetime(y, mo, d, hh, mi, ss, tzinfo=self.tz).timestamp()

    def __repr__(self) -> str:
        return f"Zone({self.name!r})"


@cache
def zone_named(name: str) -> Zone:
    """The shared :class:`Zone` of a name (its caches are shared too); ValueError if the
    name is no zone."""
    try:
        return Zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (UTC, local, or an IANA name such "
                         "as Asia/Ho_Chi_Minh)") from None


UTC = zone_named("UTC")
NAMED_ZONES = {"UTC": "UTC", "GMT": "UTC", "Z": "UTC", "ICT": "Asia/Ho_Chi_Minh"}
"""Zone names a stamp may carry (Cisco's show-timezone, PostgreSQL's %t) that say one
zone; any other name is ambiguous (IST, CST), so such a time is read in the collector's."""


def written_zone(name: str, default: Zone) -> Zone:
    """The zone a stamp's zone name (may be empty) stands for, else ``default``."""
    named = NAMED_ZONES.get(name.upper()) if name else None
    return zone_named(named) if named is not None else default


def iso_to_epoch(text: str, zone: Zone = UTC) -> float | None:
    """ISO-8601 (``Z`` or offset; without one, a time of ``zone``) -> epoch seconds;
    ``None`` if bad."""
    cached = zone.iso.get(text)
    if cached is not None:
        return cached
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        if zone.tz is _UTC:
            value = calendar.timegm(stamp.timetuple()) + stamp.microsecond / 1e6
        else:
            value = stamp.replace(tzinfo=zone.tz).timestamp() if zone.tz else stamp.timestamp()
    else:
        value = stamp.timestamp()
    if len(zone.iso) > 4096:
        zone.iso.clear()
    zone.iso[text] = value
    return value


def bsd_to_epoch(mon: str, day: str, hh: str, mm: str, ss: str, received: float,
                 zone: Zone = UTC) -> float | None:
    """RFC 3164 time (no year, no zone: a time of ``zone``) -> epoch, year inferred from
    ``received`` (the year in ``zone`` then: at 00:30 on 1 January in Hanoi it is still
    the last year in UTC).

    A time more than two days ahead of reception belongs to last year (December lines
    read in January); a January time that the next year puts within two days ahead of a
    reception in late December belongs to the next year (a sender's clock a little ahead
    at New Year). The cache holds a stamp's time per year, not the year chosen: the choice
    depends on the reception time, and a stamp seen once early fixed it for good.
    """
    month = MONTHS.get(mon)
    if month is None:
        return None
    stamp = f"{mon}{day} {hh}{mm}{ss}"
    year = zone.year(received)
    value = _bsd_in(zone, stamp, year, month, day, hh, mm, ss)
    if value is None:
        return None
    ahead = received + 2 * 86400
    if value > ahead:
        return _bsd_in(zone, stamp, year - 1, month, day, hh, mm, ss)
    if month == 1 and zone.year(ahead) > year:
        following = _bsd_in(zone, stamp, year + 1, month, day, hh, mm, ss)
        if following is not None and following <= ahead:
            return following
    return value


def _bsd_in(zone: Zone, stamp: str, year: int, month: int, day: str, hh: str, mm: str,
            ss: str) -> float | None:
    key = (stamp, year)
    cached = zone.bsd.get(key)
    if cached is not None:
        return cached
    try:
        if not (1 <= int(day) <= 31 and int(hh) < 24 and int(mm) < 60 and int(ss) < 61):
            return None
        value = zone.epoch(year, month, int(day), int(hh), int(mm), int(ss))
    except (ValueError, OverflowError):
        return None
    if len(zone.bsd) > 4096:
        zone.bsd.clear()
    zone.bsd[key] = value
    return value


def _nil(value: str) -> str | None:
    return None if value == "-" else value


def parse_header(line: str, received: float, zone: Zone = UTC) -> Header | None:
    """The syslog header of ``line``, or ``None`` when it has none we recognise; a time
    without a zone is one of ``zone``."""
    first = line[:1]
    if first == "<":
        m = RE_5424.match(line)
        if m is not None:
            pri, stamp, host, app, procid, msgid, sd, msg = m.groups()
            ts = iso_to_epoch(stamp, zone) if stamp != "-" else None
            pid = (int(procid) if procid.isascii() and procid.isdigit() and len(procid) < 11
                   else None)
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
            return Header(iso_to_epoch(stamp, zone), host, _nil(app),
                          int(pid_s) if pid_s else None, msg,
                          int(pri) if pri else None, fmt="iso")
    m = RE_3164.match(line)
    if m is not None:
        pri, mon, day, hh, mm, ss, host, app, pid_s, msg = m.groups()
        return Header(bsd_to_epoch(mon, day, hh, mm, ss, received, zone), host, app,
                      int(pid_s) if pid_s else None, msg, int(pri) if pri else None)
    m = RE_3164_NOTAG.match(line)
    if m is not None:
        pri, mon, day, hh, mm, ss, host, msg = m.groups()
        return Header(bsd_to_epoch(mon, day, hh, mm, ss, received, zone), host, None, None, msg,
                      int(pri) if pri else None)
    return None
