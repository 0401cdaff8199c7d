"""Cisco IOS syslog: ``[seq: ][*]Mmm dd hh:mm:ss.mmm TZ: %FACILITY-SEVERITY-MNEMONIC: text``.

event.code is ``FACILITY-SEVERITY-MNEMONIC``; log.level follows the severity digit. Login
(SEC_LOGIN, SSH), configuration (SYS-5-CONFIG_I), interface up/down and ACL-deny
(SEC-6-IPACCESSLOGP) messages fill user/source/destination fields.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from socctl.collector.ecs import Event, ParseError
from socctl.collector.syslog import MONTHS, UTC, bsd_to_epoch, written_zone

RE_MSG = re.compile(
    r"(?:(?P<seq>\d+): )?(?:(?P<host>[^\s:]+): )?(?:[*.]?(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d+) "
    r"(?:(?P<year>\d{4}) )?(?P<hh>\d\d):(?P<mm>\d\d):(?P<ss>\d\d)(?:\.\d+)?"
    r"(?: (?P<tz>[A-Z]{2,5}))?: )?"
    r"%(?P<fac>[A-Z0-9_]+)-(?P<sev>[0-7])-(?P<mn>[A-Z0-9_]+): (?P<text>.*)\Z", re.DOTALL)
RE_ANY = re.compile(r"%(?P<fac>[A-Z0-9_]+)-(?P<sev>[0-7])-(?P<mn>[A-Z0-9_]+): (?P<text>.*)\Z",
                    re.DOTALL)
LEVELS = ("emergency", "alert", "critical", "error", "warning", "notice", "informational",
          "debug")
RE_LOGIN = re.compile(r"Login (?P<r>Success|failed) \[user: (?P<user>[^\]]*)\] "
                      r"\[Source: (?P<ip>[^\]]+)\](?: \[localport: (?P<lport>\d+)\])?")
RE_CONFIG = re.compile(r"Configured from (?P<via>\S+) by (?P<user>\S+)"
                       r"(?: on (?P<line>\S+))?(?: \((?P<ip>[0-9A-Fa-f:.]+)\))?")
RE_UPDOWN = re.compile(r"Interface (?P<ifname>[^,]+), changed state to "
                       r"(?P<state>up|down|administratively down)")
RE_ACL = re.compile(r"list (?P<acl>\S+) (?P<verdict>denied|permitted) (?P<proto>\w+) "
                    r"(?P<src>[0-9A-Fa-f:.]+)(?:\((?P<sport>\d+)\))? -> "
                    r"(?P<dst>[0-9A-Fa-f:.]+)(?:\((?P<dport>\d+)\))?")
RE_SSH = re.compile(r"User '(?P<user>[^']*)' authentication for SSH2? Session from "
                    r"(?P<ip>[0-9A-Fa-f:.]+).*?(?P<r>Succeeded|Failed)\s*\Z", re.DOTALL)
RE_OSPF = re.compile(r"Process \S+, Nbr (?P<nbr>\S+) on (?P<ifname>\S+) from (?P<old>\S+) to "
                     r"(?P<new>\S+)")


def parse(body: str, ev: Event, opts: Mapping[str, Any]) -> float | None:
    m = RE_MSG.match(body) or RE_ANY.search(body)
    if m is None:
        raise ParseError("no Cisco %FACILITY-SEVERITY-MNEMONIC in the message")
    fac, sev, mn, text = m.group("fac"), int(m.group("sev")), m.group("mn"), m.group("text")
    e = ev["event"]
    e["code"] = f"{fac}-{sev}-{mn}"
    e["action"] = mn.lower()
    ev["log"]["level"] = LEVELS[sev]
    ev["message"] = text
    ev["cisco"] = {"ios": {"facility": fac, "mnemonic": mn}}
    groups = m.groupdict()
    if groups.get("host") and "host" not in ev:
        ev["host"] = {"name": groups["host"]}
    if (r := RE_LOGIN.match(text)) is not None:
        ok = r.group("r") == "Success"
        e.update(action="login", category=["authentication"], type=["start"] if ok else ["info"],
                 outcome="success" if ok else "failure")
        ev["user"] = {"name": r.group("user")}
        ev["source"] = {"ip": r.group("ip")}
        if r.group("lport"):
            ev["destination"] = {"port": int(r.group("lport"))}
    elif (r := RE_SSH.match(text)) is not None:
        ok = r.group("r") == "Succeeded"
        e.update(action="login", category=["authentication"], type=["start"] if ok else ["info"],
                 outcome="success" if ok else "failure")
        ev["user"] = {"name": r.group("user")}
        ev["source"] = {"ip": r.group("ip")}
    elif (r := RE_CONFIG.match(text)) is not None:
        e.update(action="configuration_change", category=["configuration"], type=["change"])
        ev["user"] = {"name": r.group("user")}
        if r.group("ip"):
            ev["source"] = {"ip": r.group("ip")}
    elif (r := RE_UPDOWN.search(text)) is not None:
        up = r.group("state") == "up"
        e.update(action="interface_up" if up else "interface_down", category=["network"],
                 type=["change"], outcome="success" if up else "failure")
        ev.setdefault("observer", {})["ingress"] = {"interface": {"name": r.group("ifname")}}
    elif (r := RE_ACL.match(text)) is not None:
        denied = r.group("verdict") == "denied"
        e.update(action="acl_" + r.group("verdict"), category=["network"],
                 type=["connection", "denied" if denied else "allowed"],
                 outcome="failure" if denied else "success")
        ev["source"] = {"ip": r.group("src")}
        ev["destination"] = {"ip": r.group("dst")}
        if r.group("sport"):
            ev["source"]["port"] = int(r.group("sport"))
        if r.group("dport"):
            ev["destination"]["port"] = int(r.group("dport"))
        ev["network"] = {"transport": r.group("proto").lower()}
        ev.setdefault("rule", {})["name"] = r.group("acl")
    elif (r := RE_OSPF.match(text)) is not None:
        e.update(action="ospf_adjacency_change", category=["network"], type=["change"],
                 outcome="success" if r.group("new") == "FULL" else "failure")
    if groups.get("mon"):
        # "show-timezone" stamps name their zone; "year" ones need no guess of it
        zone = written_zone(groups.get("tz") or "", opts.get("timezone", UTC))
        if groups.get("year") and groups["mon"] in MONTHS:
            try:
                return zone.epoch(int(groups["year"]), MONTHS[groups["mon"]],
                                  int(groups["day"]), int(groups["hh"]), int(groups["mm"]),
                                  int(groups["ss"]))
            except (ValueError, OverflowError):
                return None
        received = ev.get("@timestamp")
        return bsd_to_epoch(groups["mon"], groups["day"], groups["hh"], groups["mm"],
                            groups["ss"], received if isinstance(received, float | int)
                            else time.time(), zone)
    return None
