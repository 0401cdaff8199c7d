"""SNMP traps (v2c and v3/USM) with pysnmp 7, written as one JSON line per trap.

The JSON line (see :mod:`socctl.collector.parsers.snmp_trap`) is the event's
log.original, so a trap can be replayed like any log line. Communities come from the
environment (``SOCCTL_SNMP_COMMUNITIES``, comma-separated) and v3 users from the variable
named in the definition (``user:authkey:privkey:engineid[,...]``, SHA + AES-128; the
engine id is the sender's, which v3 traps need). Neither is ever written to an event.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from socctl.collector.sources.base import Intake, Source
from socctl.collector.sources.syslog import split_listen
from socctl.errors import ConfigError

SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
AUTH_FAILURE_COUNTERS = (
    ("__SNMPv2-MIB", ("snmpInBadCommunityNames",)),
    ("__SNMP-USER-BASED-SM-MIB", ("usmStatsUnknownUserNames", "usmStatsWrongDigests",
                                  "usmStatsDecryptionErrors", "usmStatsUnknownEngineIDs",
                                  "usmStatsNotInTimeWindows")),
)
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"


def parse_users(text: str) -> list[tuple[str, str, str, str]]:
    users = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        parts = item.split(":")
        if len(parts) != 4 or not all(parts):
            raise ConfigError("SNMPv3 users must be user:authkey:privkey:engineid "
                              "(comma-separated)")
        users.append((parts[0], parts[1], parts[2], parts[3].removeprefix("0x")))
    return users


class SnmpTraps(Source):
    def __init__(self, name: str, intake: Intake, listen: str, communities: tuple[str, ...],
                 users_env: str | None) -> None:
        super().__init__(name, intake)
        self.listen = listen
        env = os.environ.get("SOCCTL_SNMP_COMMUNITIES", "")
        self.communities = list(communities) + [c for c in env.split(",") if c]
        self.users = parse_users(os.environ.get(users_env, "")) if users_env else []
        self.engine: Any = None
        self.inode = 0

    async def start(self) -> None:
        from pysnmp.carrier.asyncio.dgram import udp
        from pysnmp.entity import config, engine
        from pysnmp.entity.rfc3413 import ntfrcv
        from pysnmp.proto.api import v2c

        if not self.communities and not self.users:
            raise ConfigError(f"{self.name}: no SNMP community or v3 user configured",
                              hint="set SOCCTL_SNMP_COMMUNITIES or the users variable")
        snmp = engine.SnmpEngine()
        host, port = split_listen(self.listen)
        transport = udp.UdpTransport().open_server_mode((host, port))
        config.add_transport(snmp, udp.DOMAIN_NAME, transport)
        try:
            await transport._lport  # bind now, so a busy port is an error here
        except OSError as exc:
            raise ConfigError(f"{self.name}: cannot listen on udp {self.listen}: "
                              f"{exc.strerror}") from exc
        for i, community in enumerate(self.communities):
            config.add_v1_system(snmp, f"c{i}", community)
        for user, auth, priv, engine_id in self.users:
            config.add_v3_user(snmp, user, config.USM_AUTH_HMAC96_SHA, auth,
                               config.USM_PRIV_CFB128_AES, priv,
                               securityEngineId=v2c.OctetString(hexValue=engine_id))
        ntfrcv.NotificationReceiver(snmp, self._on_trap)
        snmp.transport_dispatcher.job_started(1)
        self.engine = snmp

    def _on_trap(self, snmp: Any, state_ref: Any, ctx_engine: Any, ctx_name: Any,
                 varbinds: Any, cb_ctx: Any) -> None:
        _, address = snmp.message_dispatcher.get_transport_info(state_ref)
        context = snmp.observer.get_execution_context("rfc3412.receiveMessage:request")
        model = int(context.get("securityModel", 0))
        record: dict[str, Any] = {
            "agent": str(address[0]), "port": int(address[1]),
            "version": {1: "v1", 2: "v2c", 3: "v3"}.get(model, str(model)),
            "ts": time.time(), "varbinds": []}
        if model == 3:
            record["user"] = str(context.get("securityName", ""))
        for oid, value in varbinds:
            name = str(oid)
            text = value.prettyPrint()
            if name == SNMP_TRAP_OID:
                record["trap_oid"] = text
            elif name == SYS_UPTIME:
                try:
                    record["uptime"] = int(value)
                except (TypeError, ValueError):
                    record["uptime"] = text
            else:
                record["varbinds"].append([name, text])
        line = json.dumps(record, separators=(", ", ": ")).encode()
        self.stats.bytes += len(line)
        self.intake.submit([(line, None)], record["agent"])

    def poll_kernel(self) -> None:
        """Traps pysnmp drops before any callback (a wrong community, an unknown v3 user,
        a wrong key, a replay out of the time window) are counted only in its own MIB:
        a guessing sender would otherwise leave no trace at all."""
        if self.engine is None:
            return
        builder = self.engine.get_mib_builder()
        total = 0
        for module, names in AUTH_FAILURE_COUNTERS:
            for counter in builder.import_symbols(module, *names):
                total += int(counter.syntax)
        self.stats.auth_failures = total

    async def stop(self) -> None:
        if self.engine is not None:
            self.poll_kernel()
            self.engine.transport_dispatcher.close_dispatcher()
            self.engine = None

    def describe(self) -> dict[str, Any]:
        return {"listen": f"udp {self.listen} (SNMP traps)"}
