"""SNMP traps, as the collector's trap receiver writes them: one JSON object per line.

``{"agent": "198.18.0.5", "port": 45000, "version": "v2c", "trap_oid": "1.3.6.1.6.3.1.1.5.3",
"uptime": 1234, "varbinds": [["1.3.6.1.2.1.2.2.1.1.2", "2"], ...], "user": "..."}``.
The community string is never written (it is a shared secret). Generic traps get their
names as event.action (``link_down``, ``authentication_failure`` ...).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from socctl.collector.ecs import Event, ParseError

TRAP_NAMES: dict[str, str] = {
    "1.3.6.1.6.3.1.1.5.1": "cold_start",
    "1.3.6.1.6.3.1.1.5.2": "warm_start",
    "1.3.6.1.6.3.1.1.5.3": "link_down",
    "1.3.6.1.6.3.1.1.5.4": "link_up",
    "1.3.6.1.6.3.1.1.5.5": "authentication_failure",
    "1.3.6.1.4.1.8072.4.0.2": "agent_shutdown",
    "1.3.6.1.4.1.8072.4.0.1": "agent_start",
}
IF_INDEX = "1.3.6.1.2.1.2.2.1.1."


def parse(body: str, ev: Event, opts: Mapping[str, Any]) -> float | None:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ParseError(f"SNMP trap line is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("trap_oid"), str):
        raise ParseError("SNMP trap line without trap_oid")
    oid = data["trap_oid"]
    name = TRAP_NAMES.get(oid, "trap")
    e = ev["event"]
    e.update(action=name, category=["network"], type=["info"])
    if name == "authentication_failure":
        e.update(category=["authentication"], outcome="failure")
    elif name in ("link_down", "link_up"):
        e.update(type=["change"], outcome="failure" if name == "link_down" else "success")
    agent = data.get("agent")
    if isinstance(agent, str):
        ev["source"] = {"ip": agent}
        if isinstance(data.get("port"), int):
            ev["source"]["port"] = data["port"]
        ev.setdefault("observer", {})["ip"] = agent
    snmp: dict[str, Any] = {"trap_oid": oid, "version": str(data.get("version", ""))}
    varbinds = data.get("varbinds") or []
    if isinstance(varbinds, list):
        snmp["varbinds"] = {str(k): str(v) for k, v in
                            (vb for vb in varbinds if isinstance(vb, list) and len(vb) == 2)}
        for key, value in snmp["varbinds"].items():
            if key.startswith(IF_INDEX):
                snmp["if_index"] = value
    if data.get("user"):
        ev["user"] = {"name": str(data["user"])}
    if isinstance(data.get("uptime"), int):
        snmp["uptime"] = data["uptime"]
    ev["snmp"] = snmp
    ev["message"] = f"{name} {oid} from {agent}"
    ts = data.get("ts")
    return float(ts) if isinstance(ts, int | float) else None
