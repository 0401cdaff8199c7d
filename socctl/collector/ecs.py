"""Small helpers for nested ECS event dicts and deterministic event ids.

Events are plain nested dicts (what Elasticsearch stores and what ``doc`` holds as JSON),
built by the parsers with :func:`put`. Ids are deterministic so that re-sending an event
(spool replay after a crash, a file read again from its checkpoint, a replayed file) never
stores it twice.
"""

from __future__ import annotations

from hashlib import blake2b
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


class OccurrenceIds:
    """Ids for events that have no position (network syslog): content + occurrence number.

    The n-th identical raw line from one origin gets occurrence n, so two genuinely equal
    lines stay two events, and the same stream sent again after a restart (a sender that
    re-sends unacknowledged lines) maps onto the same ids. Bounded: the table of recent
    lines is cleared after ``limit`` distinct lines.
    """

    def __init__(self, origin: str, limit: int = 1 << 18) -> None:
        self.origin = origin
        self.limit = limit
        self._seen: dict[bytes, int] = {}

    def next(self, dataset: str, raw: str) -> str:
        key = blake2b(raw.encode("utf-8", "surrogateescape"), digest_size=16).digest()
        n = self._seen.get(key, 0)
        if n == 0 and len(self._seen) >= self.limit:
            self._seen.clear()
        self._seen[key] = n + 1
        return event_id(self.origin, dataset, key.hex(), n)
