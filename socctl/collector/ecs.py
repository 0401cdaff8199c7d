"""Small helpers for nested ECS event dicts and deterministic event ids.

Events are plain nested dicts (what Elasticsearch stores and what ``doc`` holds as JSON),
built by the parsers with :func:`put`. Ids are deterministic so that re-sending an event
(spool replay after a crash, a file read again from its checkpoint, a replayed file) never
stores it twice. They lead with the event's own time (:func:`time_ordered`), so the
store's primary key grows at its end instead of everywhere at once.
"""

from __future__ import annotations

import zlib
from hashlib import blake2b
from ipaddress import IPv6Address, ip_address
from typing import Any

ECS_VERSION = "8.11.0"

Event = dict[str, Any]


class ParseError(Exception):
    """A line a parser cannot turn into an event: the reason goes to the dead-letter store."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def put(doc: Event, dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested dict, creating the intermediate objects."""
    parts = dotted.split(".")
    node = doc
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def get(doc: Event, dotted: str) -> Any:
    """The value at ``a.b.c`` or ``None``."""
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
        if node is None:
            return None
    return node


def flatten(doc: Event, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def event_id(*parts: str | int) -> str:
    """A 128-bit hex id from the parts that identify one occurrence of an event."""
    h = blake2b(digest_size=16)
    for part in parts:
        h.update(str(part).encode("utf-8", "surrogateescape"))
        h.update(b"\x1f")
    return h.hexdigest()


FP_BYTES = 256


def first_line_fingerprint(head: bytes) -> str | None:
    """crc32 of a file's first line, from its first :data:`FP_BYTES` bytes (all of them
    when the line is longer); None while that line is not complete."""
    nl = head.find(b"\n", 0, FP_BYTES)
    if nl < 0 and len(head) < FP_BYTES:
        return None
    return f"{zlib.crc32(head[:nl] if nl >= 0 else head[:FP_BYTES]):08x}"


def file_line_id(fingerprint: str | None, offset: int, line: bytes) -> str:
    """The id of a file's line: the file's first line, the line's offset and the line's
    bytes (without its newline). Not the path or the inode: the same log read again is
    the same events, whether it is the live file, its rotated name, or its .gz
    (decompressed offsets are the original's). The line itself is in, so two logs that
    happen to begin alike do not share ids where they differ."""
    h = blake2b(digest_size=16)
    h.update(f"file\x1f{fingerprint}\x1f{offset}\x1f".encode())
    h.update(line)
    return h.hexdigest()


def time_ordered(line_ts: float | None, eid: str) -> str:
    """The stored id: the event's time in whole seconds (8 hex digits) in front of the
    last 96 bits of its content id.

    The id is the store's primary key. Keyed by a hash alone, every insert lands on a
    random page of that B-tree, so once the key index outgrows the page cache each event
    costs a page read and rewrites a page in the WAL (``benchmarks/store.py``, 2,000,000
    events: 51-60 us per event hash-only, 32-40 time-first), and it only gets worse with the
    agency's retention. Time first, inserts touch the last pages only; so does retention's
    delete of the oldest. The time must be the one written in the line (``None`` when it
    has none; such events share prefix 0): the reception time would change when the line
    is sent again, and the id must not. 96 bits of hash within one second still make a
    collision improbable (birthday bound ~2^48 events per second).
    """
    sec = int(line_ts) if line_ts is not None and 0 <= line_ts < 1 << 32 else 0
    return f"{sec:08x}{eid[8:]}"


class OccurrenceIds:
    """Ids for events that have no position (network syslog): content + occurrence number.

    The n-th identical raw line from one origin gets occurrence n, so two genuinely equal
    lines stay two events, and the same stream sent again after a restart (a sender that
    re-sends unacknowledged lines) maps onto the same ids.

    Bounded by two generations of ``limit // 2`` distinct lines each: when the newer one
    is full, the older is forgotten and the newer takes its place, and a line found in the
    older one carries its count over. A repeat therefore keeps counting while fewer than
    ``limit // 2`` distinct lines came between. (The table used to be cleared whole at
    ``limit``: a repeat just after the clear started again at occurrence 0, took the id of
    its first copy, and was ignored as a re-send: an event lost.)
    """

    def __init__(self, origin: str, limit: int = 1 << 18) -> None:
        self.origin = origin
        self.generation = max(1, limit // 2)
        self._seen: dict[int, int] = {}
        self._older: dict[int, int] = {}

    def next(self, dataset: str, raw: str) -> str:
        key = hash(raw)  # only counts occurrences in this process; the id below is stable
        seen = self._seen
        n = seen.get(key)
        if n is None:
            n = self._older.get(key, 0)
            if len(seen) >= self.generation:
                self._older, seen = seen, {}
                self._seen = seen
        seen[key] = n + 1
        return blake2b(f"{self.origin}\x1f{dataset}\x1f{raw}\x1f{n}".encode(
            "utf-8", "surrogateescape"), digest_size=16).hexdigest()


def canonical_ip(ip: str) -> str:
    """An address as the inventory and the botnet list write it: IPv6 compressed and lower
    case (ip6tables' LOG writes every zero, Cisco upper case), and an IPv4 sender seen on
    an IPv6 socket (``::ffff:198.18.0.5``) as its IPv4 address. Anything else unchanged."""
    try:
        addr = ip_address(ip)
    except ValueError:
        return ip
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)
