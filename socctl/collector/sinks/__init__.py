"""Sinks: where the collector ships events. One file per sink, registered in :data:`SINKS`.

Like Vector's sinks, each has ``validate()`` (config problems before anything starts),
``build()`` (connect), ``healthcheck()`` and ``write(rows)``; a write returns what was
stored and, per event, what the sink rejected (those go to the dead-letter store). A
write that raises :class:`SinkUnavailable` stored nothing durable: the spool keeps the
batch and retries it.
"""

from __future__ import annotations

from socctl.collector.sinks.base import Sink, SinkResult, SinkUnavailable
from socctl.collector.sinks.sqlite import SqliteSink

SINKS: dict[str, type[Sink]] = {"sqlite": SqliteSink}


def register(name: str, cls: type[Sink]) -> None:
    if name in SINKS:
        raise ValueError(f"sink {name!r} is already registered")
    SINKS[name] = cls


__all__ = ["SINKS", "Sink", "SinkResult", "SinkUnavailable", "register"]
