"""Any syslog message: the header's host and program, the body as message.

``parse_line("syslog", ...)`` first routes by program name (see
:data:`socctl.collector.parse.DEFAULT_ROUTES`); this parser handles what no route claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from socctl.collector.ecs import Event


def parse(body: str, ev: Event, opts: Mapping[str, Any]) -> float | None:
    return None
