"""Kernel netfilter LOG / nftables ``log`` lines: ``PREFIX IN=.. OUT=.. SRC=.. DST=..``.

The log prefix (``nft-drop:``, ``[UFW BLOCK]``) names the verdict: a prefix containing
drop/deny/reject/block gives event.type [denied] and outcome failure, accept/allow gives
[allowed]; no prefix gives [info]. The kernel's uptime stamp ``[1234.567]`` is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from socctl.collector.ecs import Event, ParseError

RE_LINE = re.compile(r"(?:\[\s*\d+\.\d+\]\s*)?(?P<prefix>.*?)\s*(?P<kv>IN=\S* OUT=.*)\Z",
                     re.DOTALL)
RE_KV = re.compile(r"([A-Z]+)=(\S*)")
_DENY = ("drop", "deny", "reject", "block")
_ALLOW = ("accept", "allow", "pass")


def _number(text: str | None, limit: int) -> int | None:
    """An ASCII decimal up to ``limit``, else None: the kernel writes nothing else there,
    and a forged ``SPT=²`` or a 20-digit port must not reach int() or the store."""
    if text and len(text) <= 10 and text.isascii() and text.isdigit():
        value = int(text)
        return value if value <= limit else None
    return None


def parse(body: str, ev: Event, opts: Mapping[str, Any]) -> float | None:
    m = RE_LINE.match(body)
    if m is None:
        raise ParseError("not a netfilter LOG line (no IN=... OUT=...)")
    fields = dict(RE_KV.findall(m.group("kv")))
    if "SRC" not in fields or "DST" not in fields:
        raise ParseError("netfilter line without SRC= and DST=")
    prefix = m.group("prefix").strip()
    low = prefix.lower()
    e = ev["event"]
    e["category"] = ["network"]
    if any(word in low for word in _DENY):
        e.update(type=["connection", "denied"], outcome="failure", action="drop")
    elif any(word in low for word in _ALLOW):
        e.update(type=["connection", "allowed"], outcome="success", action="accept")
    else:
        e.update(type=["connection", "info"], action="log")
    if prefix:
        ev.setdefault("labels", {})["netfilter_prefix"] = prefix.rstrip(":")
    ev["source"] = {"ip": fields["SRC"]}
    ev["destination"] = {"ip": fields["DST"]}
    proto = fields.get("PROTO")
    network: dict[str, Any] = {}
    if proto:
        network["transport"] = proto.lower()
    spt, dpt, size = (_number(fields.get(k), limit) for k, limit in
                      (("SPT", 65535), ("DPT", 65535), ("LEN", 1 << 32)))
    if spt is not None:
        ev["source"]["port"] = spt
    if dpt is not None:
        ev["destination"]["port"] = dpt
    if size is not None:
        network["bytes"] = size
    if network:
        ev["network"] = network
    observer: dict[str, Any] = {}
    if fields.get("IN"):
        observer["ingress"] = {"interface": {"name": fields["IN"]}}
    if fields.get("OUT"):
        observer["egress"] = {"interface": {"name": fields["OUT"]}}
    if observer:
        ev["observer"] = {**ev.get("observer", {}), **observer}
    return None
