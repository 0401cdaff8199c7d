"""Message parsers, one module per dataset, registered by name in :data:`PARSERS`.

A parser reads the message body (the syslog header, if any, is already parsed), fills
the ECS event and returns the event's own timestamp when the body carries one. It raises
:class:`~socctl.collector.ecs.ParseError` when the body is not what the dataset expects;
that line goes to the dead-letter store with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from socctl.collector.ecs import Event
from socctl.collector.parsers import (
    amavis,
    cisco_ios,
    clamav,
    frr,
    netfilter,
    nginx_error,
    postfix,
    postgresql,
    snmp_trap,
    sshd,
    syslog_generic,
    web,
)

Parser = Callable[[str, Event, Mapping[str, Any]], "float | None"]

PARSERS: dict[str, Parser] = {
    "sshd": sshd.parse,
    "nginx.access": web.parse_nginx,
    "nginx.error": nginx_error.parse,
    "apache.access": web.parse_apache,
    "netfilter": netfilter.parse,
    "postgresql": postgresql.parse,
    "frr": frr.parse,
    "cisco_ios": cisco_ios.parse,
    "snmp.trap": snmp_trap.parse,
    "postfix": postfix.parse,
    "clamav": clamav.parse,
    "amavis": amavis.parse,
    "syslog": syslog_generic.parse,
}
"""dataset (event.dataset) -> parser. A new dataset is one module plus one line here."""

MODULES: dict[str, str] = {
    "sshd": "system",
    "nginx.access": "nginx",
    "nginx.error": "nginx",
    "apache.access": "apache",
    "netfilter": "iptables",
    "postgresql": "postgresql",
    "frr": "frr",
    "cisco_ios": "cisco",
    "snmp.trap": "snmp",
    "postfix": "postfix",
    "clamav": "clamav",
    "amavis": "amavis",
    "syslog": "syslog",
}
"""dataset -> event.module."""
