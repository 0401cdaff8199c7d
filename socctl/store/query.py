"""The search language of ``socctl events search``, for both stores.

``field:value`` terms (``*`` wildcards; in a quoted value ``*`` is only a character, as in
Lucene's phrases), ranges ``field:[a TO b]`` and
``field:>=400``, free words (searched in the raw line), combined with AND, OR, NOT and
parentheses; juxtaposition means AND. Field names are ECS (``source.ip``,
``event.outcome``). The query is parsed once into a small tree, compiled to SQL for the
SQLite store and to query DSL for Elasticsearch.

IP fields (ECS type ``ip``: ``source.ip``, ``host.ip``, any ``*.ip``) compare as
addresses, as Elasticsearch's ``ip`` type does, so both stores give the same answer:
``source.ip:198.18.4.0/22`` (a network), ``source.ip:198.18.4.*`` (whole octets: the
same as /24), ``source.ip:[198.18.0.1 TO 198.18.0.20]`` (numeric, not text order, which
put 198.18.0.10 before 198.18.0.9). A value that is not an address is an error there.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from typing import Any

from socctl.collector.ecs import canonical_ip
from socctl.errors import SocctlError

ALIASES = {"@timestamp": "ts", "event.dataset": "dataset", "event.id": "id",
           "event.ingested": "ingested", "log.original": "message"}
MULTI = frozenset({"event_category", "event_type", "email_from", "email_to", "host_ip"})
IP_MATCH_FUNCTION = "socctl_ip_in"
"""The SQLite function (registered by the store) for address ranges: see :func:`ip_in`."""


class QueryError(SocctlError):
    """The search query does not parse."""


@dataclass(frozen=True)
class Term:
    field: str | None
    op: str  # = | < | <= | > | >= | range
    value: str
    upper: str | None = None
    #: the value was quoted: ``*`` in it is a character, not a wildcard (``user.name:"*"``
    #: is the user named ``*``, not every event with a user)
    literal: bool = False

    @property
    def exists(self) -> bool:
        """``field:*``: any value at all."""
        return self.op == "=" and self.value == "*" and not self.literal

    @property
    def wildcard(self) -> bool:
        return self.op == "=" and "*" in self.value and not self.literal


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class Bool:
    op: str  # AND | OR
    children: tuple[Node, ...]


Node = Term | Not | Bool
MAX_DEPTH = 100

_TOKEN = re.compile(r'\s*(?:(?P<paren>[()])|(?P<term>(?:[^\s()":]+:)?(?:"(?:[^"\\]|\\.)*"'
                    r'|\[[^\]]*\]|[^\s()]+)))')


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise QueryError(f"cannot parse query at column {pos + 1}: {text[pos:pos + 20]!r}")
        out.append(m.group("paren") or m.group("term"))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def parse_query(text: str) -> Node | None:
    tokens = _tokens(text)
    if not tokens:
        return None
    pos = 0
    depth = 0  # parentheses and NOTs open: a hostile query once hit Python's recursion limit

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def or_expr() -> Node:
        parts = [and_expr()]
        while peek() == "OR":
            take()
            parts.append(and_expr())
        return parts[0] if len(parts) == 1 else Bool("OR", tuple(parts))

    def and_expr() -> Node:
        parts = [not_expr()]
        while (tok := peek()) is not None and tok not in ("OR", ")"):
            if tok == "AND":
                take()
            parts.append(not_expr())
        return parts[0] if len(parts) == 1 else Bool("AND", tuple(parts))

    def deeper() -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_DEPTH:
            raise QueryError(f"query nested deeper than {MAX_DEPTH} levels")

    def not_expr() -> Node:
        if peek() == "NOT":
            take()
            deeper()
            return Not(not_expr())
        return atom()

    def atom() -> Node:
        tok = peek()
        if tok is None:
            raise QueryError("query ends where a term was expected")
        take()
        if tok == "(":
            deeper()
            node = or_expr()
            if peek() != ")":
                raise QueryError("missing ')' in query")
            take()
            return node
        if tok in (")", "AND", "OR"):
            raise QueryError(f"unexpected {tok!r} in query")
        return _term(tok)

    node = or_expr()
    if pos != len(tokens):
        raise QueryError(f"unexpected {tokens[pos]!r} in query")
    return node


_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


def _unquote(value: str) -> str:
    if value.startswith('"'):
        if not _QUOTED.fullmatch(value):
            raise QueryError(f"unterminated quote in {value!r}")
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _term(tok: str) -> Term:
    if tok.startswith('"'):
        return Term(None, "=", _unquote(tok), literal=True)
    field, sep, value = tok.partition(":")
    if not sep:
        return Term(None, "=", tok)
    if not value:
        raise QueryError(f"no value for field {field!r}")
    if value.startswith("["):
        m = re.fullmatch(r"\[\s*(\S+)\s+TO\s+(\S+)\s*\]", value)
        if m is None:
            raise QueryError(f"bad range {value!r} (use field:[low TO high], * for open)")
        return Term(field, "range", _unquote(m.group(1)), _unquote(m.group(2)))
    for op in (">=", "<=", ">", "<"):
        if value.startswith(op):
            return Term(field, op, _unquote(value[len(op):]))
    return Term(field, "=", _unquote(value), literal=value.startswith('"'))


# -- IP fields --------------------------------------------------------------------------------
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_OCTETS = re.compile(r"(?:\d{1,3}\.){1,3}\*")


def is_ip_field(field: str) -> bool:
    """ECS names its address fields ``*.ip`` (source, destination, host, observer, client,
    server, related, threat.indicator); the index template maps them as ``ip``."""
    return field == "ip" or field.endswith(".ip")


def _address(field: str, value: str) -> Address:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise QueryError(f"{field}: {value!r} is not an IP address",
                         hint="an address, a network (198.18.4.0/22), whole octets "
                              "(198.18.4.*) or a range [a TO b]") from None


def ip_range(node: Term) -> tuple[Address, Address] | None:
    """The inclusive (lowest, highest) addresses a term on an IP field admits, an open end
    filled with the first or last address of the bound's version; None for an exact
    address (compared as text, which the column's index serves) or ``[* TO *]``."""
    assert node.field is not None
    field, value = node.field, node.value
    if node.op == "range":
        low = None if value == "*" else _address(field, value)
        high = None if node.upper in (None, "*") else _address(field, node.upper)
    elif node.op != "=":
        bound = _address(field, value)
        try:  # > and < as inclusive bounds: the next or the previous address
            bound = bound + 1 if node.op == ">" else bound - 1 if node.op == "<" else bound
        except ipaddress.AddressValueError:
            raise QueryError(f"{field}: no address is {node.op} {value}") from None
        low, high = (bound, None) if node.op.startswith(">") else (None, bound)
    else:
        if node.literal:  # a quoted * is a character: no address has one
            pass
        elif _OCTETS.fullmatch(value):
            octets = value[:-2].split(".")
            value = ".".join(octets + ["0"] * (4 - len(octets))) + f"/{8 * len(octets)}"
        elif "*" in value:
            raise QueryError(f"{field}: wildcard {value!r} on an IP field",
                             hint="use whole octets (198.18.4.*) or a network (198.18.4.0/22)")
        if "/" not in value:
            _address(field, value)
            return None
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise QueryError(f"{field}: {value!r} is not a network",
                             hint="e.g. 198.18.4.0/22 or 2001:db8::/32") from None
        return net.network_address, net.broadcast_address
    if low is None and high is None:
        return None
    if low is not None and high is not None and low.version != high.version:
        raise QueryError(f"{field}: a range from IPv{low.version} to IPv{high.version}")
    given = low if low is not None else high
    assert given is not None
    whole = ipaddress.ip_network("0.0.0.0/0" if given.version == 4 else "::/0")
    return (low if low is not None else whole.network_address,
            high if high is not None else whole.broadcast_address)


def _key(address: Address) -> bytes:
    """Addresses in order as bytes: by version, then by value (memcmp order)."""
    return bytes([address.version]) + address.packed


def ip_in(values: str | None, low: bytes, high: bytes) -> int:
    """SQLite function: 1 if any comma-separated address in ``values`` is within
    [low, high] (keys of :func:`_key`, one version). What is not an address: no match."""
    if values is None:
        return 0
    for text in values.split(","):
        try:
            key = _key(ipaddress.ip_address(text.strip()))
        except ValueError:
            continue
        if low <= key <= high:
            return 1
    return 0


def _sql_ip(col: str, low: Address, high: Address, params: list[Any]) -> str:
    test = f"{IP_MATCH_FUNCTION}({col}, ?, ?)"
    # IPv4 with whole octets in common: a text prefix first, which the column's index can
    # serve; the function checks what the prefix lets through
    prefix = _common_octets(low, high) if low.version == 4 and col not in MULTI else ""
    if prefix:
        params.extend([prefix + ".*", _key(low), _key(high)])
        return f"({col} GLOB ? AND {test})"
    params.extend([_key(low), _key(high)])
    return test


def _common_octets(low: Address, high: Address) -> str:
    same = []
    for a, b in zip(str(low).split(".")[:3], str(high).split(".")[:3], strict=True):
        if a != b:
            break
        same.append(a)
    return ".".join(same)


# -- SQLite -----------------------------------------------------------------------------------
def _sql_field(field: str) -> str:
    from socctl.store.sqlite import COLUMN_NAMES, COLUMN_OF

    name = ALIASES.get(field, field)
    column = COLUMN_OF.get(name, name)
    if column in COLUMN_NAMES or column in ("ts", "dataset", "id", "ingested"):
        return column
    if not re.fullmatch(r"[A-Za-z0-9_@.]+", field):
        raise QueryError(f"bad field name {field!r}")
    path = "$" + "".join(f'."{part}"' for part in field.split("."))
    return f"json_extract(doc, '{path}')"


def _value(field: str, value: str) -> Any:
    from socctl.store.sqlite import INTEGER_COLUMNS

    if field in ("ts", "ingested"):
        return _time_value(value)
    if field in INTEGER_COLUMNS or field.startswith("json_extract"):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value) if field.startswith("json_extract") else value
            except ValueError:
                return value
    return value


def _bound(field: str, col: str, value: str) -> Any:
    """A range's bound: on a number column, a number (text there compares above every
    number in SQLite, so ``[400 TO 4x9]`` once had no upper bound at all)."""
    from socctl.store.sqlite import INTEGER_COLUMNS

    bound = _value(col, value)
    if col in INTEGER_COLUMNS and isinstance(bound, str):
        raise QueryError(f"{field}: {value!r} is not a number")
    return bound


def _time_value(value: str) -> float:
    from socctl.store.sqlite import iso_epoch

    try:
        return float(value)
    except ValueError:
        pass
    try:
        return iso_epoch(value)
    except ValueError:
        raise QueryError(f"bad time {value!r} (epoch seconds or ISO-8601)") from None


def _like(value: str, literal: bool = False) -> str:
    """A LIKE pattern matching ``value``: its own ``%`` and ``_`` escaped, and ``*`` the
    wildcard unless the value was quoted."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped if literal else escaped.replace("*", "%")


def _sql(node: Node, params: list[Any]) -> str:
    if isinstance(node, Bool):
        return "(" + f" {node.op} ".join(_sql(c, params) for c in node.children) + ")"
    if isinstance(node, Not):
        # an event without the field is NOT field:value, as Elasticsearch's must_not has it;
        # in SQL the comparison with NULL is NULL, and NOT NULL would leave it out
        return f"NOT COALESCE(({_sql(node.child, params)}), 0)"
    if node.field is None:
        params.append("%" + _like(node.value, node.literal) + "%")
        return "message LIKE ? ESCAPE '\\'"
    col = _sql_field(node.field)
    if is_ip_field(node.field) and not node.exists:
        span = ip_range(node)
        if span is not None:
            return _sql_ip(col, *span, params)
        if node.op == "=" and (canon := canonical_ip(node.value)) != node.value:
            return _sql(replace(node, value=canon), params)  # as the collector stores it
    if node.op == "range":
        parts = []
        if node.value != "*":
            parts.append(f"{col} >= ?")
            params.append(_bound(node.field, col, node.value))
        if node.upper is not None and node.upper != "*":
            parts.append(f"{col} <= ?")
            params.append(_bound(node.field, col, node.upper))
        return " AND ".join(parts) or "1"
    if node.op != "=":
        params.append(_bound(node.field, col, node.value))
        return f"{col} {node.op} ?"
    if node.exists:
        return f"{col} IS NOT NULL"
    if col in MULTI:
        params.append("%," + _like(node.value, node.literal) + ",%")
        return f"(',' || {col} || ',') LIKE ? ESCAPE '\\'"
    if node.wildcard:
        params.append(_like(node.value))
        return f"{col} LIKE ? ESCAPE '\\'"
    params.append(_value(col, node.value))
    return f"{col} = ?"


def compile_sqlite(text: str) -> tuple[str, list[Any]]:
    """Query text -> (WHERE clause, parameters); empty clause for an empty query."""
    node = parse_query(text)
    params: list[Any] = []
    if node is None:
        return "", params
    return _sql(node, params), params


# -- Elasticsearch ----------------------------------------------------------------------------
def _es(node: Node) -> dict[str, Any]:
    if isinstance(node, Bool):
        key = "filter" if node.op == "AND" else "should"
        body: dict[str, Any] = {key: [_es(c) for c in node.children]}
        if node.op == "OR":
            body["minimum_should_match"] = 1
        return {"bool": body}
    if isinstance(node, Not):
        return {"bool": {"must_not": [_es(node.child)]}}
    if node.field is None:
        return {"match_phrase": {"log.original": node.value}}
    field = {"ts": "@timestamp", "dataset": "event.dataset"}.get(node.field, node.field)
    if is_ip_field(field) and not node.exists:
        span = ip_range(node)
        if span is not None:
            return {"range": {field: {"gte": str(span[0]), "lte": str(span[1])}}}
    if node.op == "range":
        rng: dict[str, str] = {}
        if node.value != "*":
            rng["gte"] = _es_value(field, node.value)
        if node.upper is not None and node.upper != "*":
            rng["lte"] = _es_value(field, node.upper)
        return {"range": {field: rng}}
    if node.op != "=":
        op = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}[node.op]
        return {"range": {field: {op: _es_value(field, node.value)}}}
    if node.exists:
        return {"exists": {"field": field}}
    if node.wildcard:
        return {"wildcard": {field: {"value": node.value}}}
    return {"term": {field: node.value}}


def _es_value(field: str, value: str) -> str:
    """A time as ISO 8601 UTC: a bare number is epoch seconds in this language (as in the
    embedded store), and epoch milliseconds to a ``date`` field in Elasticsearch."""
    if field != "@timestamp":
        return value
    from datetime import UTC, datetime

    return datetime.fromtimestamp(_time_value(value), UTC).isoformat().replace("+00:00", "Z")


def compile_es(text: str) -> dict[str, Any]:
    node = parse_query(text)
    return {"match_all": {}} if node is None else _es(node)
