"""FRR routing daemons' syslog (zebra, ospfd, bgpd, watchfrr, ...).

FRR 8 puts a unique message id in front (``[AZ6WF-7E8WC] ``), kept as event.code.
Adjacency changes are what detections and the NOC use: action ``ospf_adjacency_change``
or ``bgp_adjacency_change`` with ``frr.neighbor``, ``frr.interface``, ``frr.state``
(the new state); outcome failure when the neighbour went down.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from socctl.collector.ecs import Event
from socctl.collector.syslog import UTC

RE_FILE = re.compile(r"(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d)(?:\.\d+)? "
                     r"(?P<daemon>[A-Z0-9]+): ")
RE_ID = re.compile(r"\[([A-Z0-9]{5}-[A-Z0-9]{5})\] ")
RE_OSPF = re.compile(r"AdjChg: Nbr (?P<nbr>[^\s(,]+)(?:\([^)]*\))?(?:, NbrIP (?P<nbrip>\S+)"
                     r"(?: \([^)]*\))?)? on (?P<ifname>[^\s:]+)(?::\S+)?: "
                     r"(?P<old>\S+) -> (?P<new>[^\s(]+)(?: \((?P<why>[^)]*)\))?")
"""FRR 7 "Nbr 1.2.3.4(x) on wan1: Full -> Deleted (Why)" and FRR 8.4+ "Nbr 1.2.3.4, NbrIP
10.0.0.5 (default) on wan1:10.0.0.6: Full -> Deleted (KillNbr)"."""
RE_BGP = re.compile(r"%ADJCHANGE: neighbor (?P<nbr>\S+?)(?:\([^)]*\))?(?: in vrf \S+)? "
                    r"(?P<new>Up|Down)(?: (?P<why>.*))?")
_DOWN = {"Deleted", "Down", "Init"}


def parse(body: str, ev: Event, opts: Mapping[str, Any]) -> float | None:
    e = ev["event"]
    ts: float | None = None
    m = RE_FILE.match(body)
    if m is not None:  # FRR's own "log file" format: 2026/11/22 07:43:17 OSPF: ...
        y, mo, d, hh, mi, ss = (int(x) for x in m.groups()[:6])
        try:
            ts = opts.get("timezone", UTC).epoch(y, mo, d, hh, mi, ss)
        except (ValueError, OverflowError):
            ts = None
        ev["process"] = {"name": m.group("daemon").lower() + "d"
                         if m.group("daemon") in ("OSPF", "BGP", "ISIS", "BFD", "OSPF6")
                         else m.group("daemon").lower()}
        body = body[m.end():]
        ev["message"] = body
    m = RE_ID.match(body)
    if m is not None:
        e["code"] = m.group(1)
        body = body[m.end():]
        ev["message"] = body
    frr: dict[str, Any] = {}
    m = RE_OSPF.search(body)
    if m is not None:
        e.update(action="ospf_adjacency_change", category=["network"], type=["change"],
                 outcome="failure" if m.group("new") in _DOWN else "success")
        frr.update(neighbor=m.group("nbr"), interface=m.group("ifname"), state=m.group("new"),
                   previous_state=m.group("old"))
        if m.group("nbrip"):
            frr["neighbor_ip"] = m.group("nbrip")
        if m.group("why"):
            e["reason"] = m.group("why")
    elif (m := RE_BGP.search(body)) is not None:
        e.update(action="bgp_adjacency_change", category=["network"], type=["change"],
                 outcome="failure" if m.group("new") == "Down" else "success")
        frr.update(neighbor=m.group("nbr"), state=m.group("new"))
        if m.group("why"):
            e["reason"] = m.group("why")
    if frr:
        ev["frr"] = frr
    return ts
