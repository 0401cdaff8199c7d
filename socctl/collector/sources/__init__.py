"""Sources, built from collector definitions; one module per kind, registered in
:data:`BUILDERS` (source type -> builder)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from socctl.collector.definition import Collector
from socctl.collector.sources.base import Intake, Source, SourceStats


def _udp(c: Collector, intake: Intake, state: Path) -> Source:
    from socctl.collector.sources.syslog import UdpSyslog

    assert c.spec.source.listen is not None
    return UdpSyslog(c.name, intake, c.spec.source.listen, c.spec.source.max_line)


def _tcp(c: Collector, intake: Intake, state: Path) -> Source:
    from socctl.collector.sources.syslog import TcpSyslog

    assert c.spec.source.listen is not None
    return TcpSyslog(c.name, intake, c.spec.source.listen, c.spec.source.framing,
                     c.spec.source.max_line, max_connections=c.spec.source.max_connections)


def _tls(c: Collector, intake: Intake, state: Path) -> Source:
    from socctl.collector.sources.syslog import TcpSyslog, server_tls_context

    src = c.spec.source
    assert src.listen is not None and src.tls_cert and src.tls_key
    ctx = server_tls_context(src.tls_cert, src.tls_key, src.tls_client_ca)
    return TcpSyslog(c.name, intake, src.listen, src.framing, src.max_line, tls=ctx,
                     max_connections=src.max_connections)


def _relp(c: Collector, intake: Intake, state: Path) -> Source:
    from socctl.collector.sources.relp import RelpSyslog
    from socctl.collector.sources.syslog import server_tls_context

    src = c.spec.source
    assert src.listen is not None
    ctx = None
    if src.tls_cert and src.tls_key:
        ctx = server_tls_context(src.tls_cert, src.tls_key, src.tls_client_ca)
    return RelpSyslog(c.name, intake, src.listen, src.max_line, tls=ctx,
                      max_connections=src.max_connections)


def _file(c: Collector, intake: Intake, state: Path) -> Source:
    from socctl.collector.sources.file import FileTail

    src = c.spec.source
    return FileTail(c.name, intake, src.paths, src.start_at, src.max_line,
                    state / "checkpoints" / f"{c.name}.json")


def _snmp(c: Collector, intake: Intake, state: Path) -> Source:
    from socctl.collector.sources.snmp import SnmpTraps

    src = c.spec.source
    assert src.listen is not None
    return SnmpTraps(c.name, intake, src.listen, src.snmp_communities, src.snmp_users_env)


BUILDERS: dict[str, Callable[[Collector, Intake, Path], Source]] = {
    "syslog_udp": _udp,
    "syslog_tcp": _tcp,
    "syslog_tls": _tls,
    "relp": _relp,
    "file": _file,
    "snmp_trap": _snmp,
}

__all__ = ["BUILDERS", "Intake", "Source", "SourceStats"]
