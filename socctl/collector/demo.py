"""The demo's log-collection step: lab hosts send real syslog and SNMP traps to a collector
on the management bridge; the events land in an embedded store, enriched with their site."""

from __future__ import annotations

import socket
import time
from typing import Any

from socctl.collector.definition import CollectFile, Collection, Collector, CollectorFile
from socctl.collector.runtime import Runtime
from socctl.collector.sinks.sqlite import SqliteSink
from socctl.config import Settings
from socctl.errors import SocctlError
from socctl.store.sqlite import SqliteStore

GATEWAY = "198.18.0.1"


def _port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((GATEWAY, 0))
        return int(s.getsockname()[1])


def demo_collect(settings: Settings) -> tuple[str, dict[str, Any]]:
    from socctl.lab import runtime as lab

    local = settings.demo_scratch("collect")  # store, spool and stats under work/
    work = local.state_dir
    udp, trap = _port(socket.SOCK_DGRAM), _port(socket.SOCK_DGRAM)
    specs = [
        CollectorFile.model_validate({"name": "lab-syslog", "source": {
            "type": "syslog_udp", "listen": f"{GATEWAY}:{udp}"},
            "parser": {"dataset": "syslog"}}),
        CollectorFile.model_validate({"name": "lab-traps", "source": {
            "type": "snmp_trap", "listen": f"{GATEWAY}:{trap}",
            "snmp_communities": ["socctl-demo"]}, "parser": {"dataset": "snmp.trap"}}),
    ]
    collection = Collection(work, CollectFile.model_validate(
        {"enrichment": {"inventory_profile": "lab"}}),
        {s.name: Collector(s.name, s, work / f"{s.name}.yaml") for s in specs})
    rt = Runtime(local, collection, sink=SqliteSink(work / "events.db"))
    rt.start()
    try:
        for host in ("p01-rtr1", "p79-rtr1", "dc-primary-log1"):
            lab.run_in(host, ["logger", "-n", GATEWAY, "-P", str(udp), "-d", "-t", "sshd",
                              "-p", "auth.info", "Failed password for invalid user admin "
                              "from 203.0.113.5 port 4242 ssh2"])
        lab.run_in("p01d01-rtr1", ["snmptrap", "-v2c", "-c", "socctl-demo",
                                   f"{GATEWAY}:{trap}", "", "1.3.6.1.6.3.1.1.5.3",
                                   "1.3.6.1.2.1.2.2.1.1.2", "i", "2"])
        deadline = time.monotonic() + 15
        count = 0
        while time.monotonic() < deadline:
            with SqliteStore(work / "events.db") as store:
                count = store.count()
            if count >= 4:
                break
            time.sleep(0.3)
    finally:
        rt.stop()
    with SqliteStore(work / "events.db") as store:
        sites = sorted({e["socctl"]["site"] for e in store.search("socctl.site:*")})
        failed = store.count("event_action = 'ssh_login' AND event_outcome = 'failure'")
    if count < 4:
        raise SocctlError(f"only {count} of 4 events arrived at the collector")
    return (f"{count} events from lab hosts (syslog + SNMP trap) stored as ECS, "
            f"{failed} failed SSH logins, sites {', '.join(sites)}"), {
                "store": str(work / "events.db"), "sites": sites}
