"""ClamAV: clamd scan results and clamav-milter verdicts on e-mail.

A detection is category [malware], action ``virus_found``, outcome success (the scanner
did find it), rule.name = the signature (ECS: "the rule or signature generating the
event"), file.path/name for clamd, email.* for clamav-milter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from socctl.collector.ecs import Event
from socctl.collector.syslog import MONTHS, UTC

RE_LOGTIME = re.compile(r"[A-Z][a-z]{2} (?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<hh>\d\d):"
                        r"(?P<mm>\d\d):(?P<ss>\d\d) (?P<year>\d{4}) -> ")
RE_FOUND = re.compile(r"(?P<path>.+?): (?P<sig>\S+) FOUND\s*\Z")
RE_MILTER = re.compile(r"Message (?P<qid>\S+) from <(?P<from>[^>]*)> to <(?P<to>[^>]*)> with "
                       r"subject '(?P<subject>.*)' message-id '(?P<mid>[^']*)' date '[^']*' "
                       r"infected by (?P<sig>\S+)\s*\Z", re.DOTALL)
RE_MILTER_BASIC = re.compile(r"Message (?P<qid>\S+) infected by (?P<sig>\S+)\s*\Z")


def parse(body: str, ev: Event, opts: Mapping[str, Any]) -> float | None:
    e = ev["event"]
    ts: float | None = None
    if (t := RE_LOGTIME.match(body)) is not None:  # clamd's LogFile with LogTime
        month = MONTHS.get(t.group("mon"), 1)
        try:
            ts = opts.get("timezone", UTC).epoch(
                int(t.group("year")), month, int(t.group("day")), int(t.group("hh")),
                int(t.group("mm")), int(t.group("ss")))
        except (ValueError, OverflowError):
            ts = None
        body = body[t.end():]
        ev["message"] = body
    if (m := RE_MILTER.match(body)) is not None:
        e.update(action="virus_found", category=["malware", "email"], type=["info"],
                 outcome="success")
        ev["rule"] = {"name": m.group("sig")}
        ev["email"] = {"local_id": m.group("qid"), "from": {"address": [m.group("from")]},
                       "to": {"address": [m.group("to")]}, "subject": m.group("subject"),
                       "message_id": m.group("mid")}
    elif (m := RE_MILTER_BASIC.match(body)) is not None:
        e.update(action="virus_found", category=["malware", "email"], type=["info"],
                 outcome="success")
        ev["rule"] = {"name": m.group("sig")}
        ev["email"] = {"local_id": m.group("qid")}
    elif (m := RE_FOUND.match(body)) is not None:
        e.update(action="virus_found", category=["malware", "file"], type=["info"],
                 outcome="success")
        ev["rule"] = {"name": m.group("sig")}
        path = m.group("path")
        ev["file"] = {"path": path, "name": path.rsplit("/", 1)[-1]}
    return ts
