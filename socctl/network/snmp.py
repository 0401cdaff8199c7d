"""SNMPv3 polling (pysnmp 7, asyncio v3arch API) and the WAN view of the estate.

Numeric OIDs only: Debian ships no MIB files, and numeric OIDs need no MIB compilation.
One SNMP engine serves every target; a semaphore bounds the requests in flight, so
thousands of devices are polled concurrently from one process. Each device is read with
GETBULK over all IF-MIB columns at once (one or two round trips for an office router),
twice ``interval`` seconds apart when utilisation is wanted.

From the inventory the poll knows which interface is which office's primary and backup
WAN link, and reports per office (both links: up/down, errors, utilisation) and
nationally (offices on their backup link only, offices down).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from socctl.inventory.model import Device, Inventory
from socctl.network.credentials import Credentials
from socctl.network.drivers import DRIVERS, get_driver
from socctl.results import HostResult, RunResult

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
IF_COLUMNS = {
    "name": "1.3.6.1.2.1.31.1.1.1.1",        # IF-MIB::ifName
    "admin": "1.3.6.1.2.1.2.2.1.7",          # ifAdminStatus
    "oper": "1.3.6.1.2.1.2.2.1.8",           # ifOperStatus
    "in_errors": "1.3.6.1.2.1.2.2.1.14",     # ifInErrors
    "out_errors": "1.3.6.1.2.1.2.2.1.20",    # ifOutErrors
    "in_octets": "1.3.6.1.2.1.31.1.1.1.6",   # ifHCInOctets
    "out_octets": "1.3.6.1.2.1.31.1.1.1.10",  # ifHCOutOctets
    "speed_mbps": "1.3.6.1.2.1.31.1.1.1.15",  # ifHighSpeed
}
STATUS = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent",
          7: "lowerLayerDown"}
POLL_KINDS = ("router", "switch", "firewall", "load_balancer")
DEFAULT_POLL_CONCURRENCY = 200


def pollable(device: Device) -> bool:
    """Devices that answer SNMP: network gear, and hosts that run snmpd."""
    return "snmpd" in device.services or (device.kind in POLL_KINDS and not device.services)


@dataclass(frozen=True, slots=True)
class PollOptions:
    concurrency: int = DEFAULT_POLL_CONCURRENCY
    timeout: float = 2.0
    retries: int = 1
    interval: float = 1.0
    """Seconds between the two counter samples; 0 polls once (no utilisation)."""
    port: int = 161


class SnmpError(Exception):
    pass


async def _walk(engine: Any, auth: Any, target: Any, context: Any) -> tuple[float, str, dict[
        int, dict[str, Any]]]:
    from pysnmp.hlapi.v3arch.asyncio import ObjectIdentity, ObjectType, bulk_cmd, get_cmd

    err, status, _, binds = await get_cmd(
        engine, auth, target, context, ObjectType(ObjectIdentity(SYS_UPTIME)),
        ObjectType(ObjectIdentity(SYS_NAME)), lookupMib=False)
    if err or status:
        raise SnmpError(str(err or status))
    uptime = int(binds[0][1]) / 100.0
    sysname = str(binds[1][1])
    table: dict[int, dict[str, Any]] = {}
    columns = list(IF_COLUMNS.items())
    cursor = dict(columns)
    active = [key for key, _ in columns]
    while active:
        err, status, _, binds = await bulk_cmd(
            engine, auth, target, context, 0, 25,
            *[ObjectType(ObjectIdentity(cursor[k])) for k in active], lookupMib=False)
        if err or status:
            raise SnmpError(str(err or status))
        still: set[str] = set()
        width = len(active)
        for n, bind in enumerate(binds):
            key = active[n % width]
            oid, value = str(bind[0]), bind[1]
            prefix = IF_COLUMNS[key] + "."
            if not oid.startswith(prefix) or value.__class__.__name__ == "EndOfMibView":
                continue
            index = int(oid[len(prefix):])
            row = table.setdefault(index, {})
            row[key] = str(value) if key == "name" else int(value)
            cursor[key] = oid
            still.add(key)
        # a column that returned nothing new in this round has been fully read
        active = [k for k in active if k in still]
    return uptime, sysname, table


@dataclass
class DeviceSample:
    uptime: float
    sysname: str
    interfaces: dict[str, dict[str, Any]]
    at: float


def _by_name(table: dict[int, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in table.values():
        if "name" not in row:
            continue
        entry = {k: v for k, v in row.items() if k != "name"}
        for key in ("admin", "oper"):
            if key in entry:
                entry[key] = STATUS.get(int(entry[key]), str(entry[key]))
        out[str(row["name"])] = entry
    return out


async def _poll_device(engine: Any, credentials: Credentials, device: Device,
                       options: PollOptions, gate: asyncio.Semaphore) -> HostResult:
    from pysnmp.hlapi.v3arch.asyncio import (
        ContextData,
        UdpTransportTarget,
        UsmUserData,
        usmAesCfb128Protocol,
        usmHMACSHAAuthProtocol,
    )

    host = str(device.management.ip)
    auth = UsmUserData(credentials.snmp_user, credentials.snmp_auth, credentials.snmp_priv,
                       authProtocol=usmHMACSHAAuthProtocol, privProtocol=usmAesCfb128Protocol)
    samples: list[DeviceSample] = []
    try:
        async with gate:
            target = await UdpTransportTarget.create((host, options.port),
                                                     timeout=options.timeout,
                                                     retries=options.retries)
            uptime, sysname, table = await _walk(engine, auth, target, ContextData())
            samples.append(DeviceSample(uptime, sysname, _by_name(table), time.monotonic()))
        if options.interval > 0:
            await asyncio.sleep(options.interval)
            async with gate:
                uptime, sysname, table = await _walk(engine, auth, target, ContextData())
                samples.append(DeviceSample(uptime, sysname, _by_name(table),
                                            time.monotonic()))
    except Exception as exc:  # timeouts, auth failures, unreachable: per-device errors
        cause = str(exc) or type(exc).__name__
        if not samples:
            return HostResult(device.name, failed=True, exception=type(exc).__name__,
                              message=f"{device.name} ({host}:{options.port}): SNMP failed: "
                                      f"{cause}")
    last = samples[-1]
    data: dict[str, Any] = {"address": host, "sysname": last.sysname,
                            "uptime_seconds": last.uptime, "interfaces": last.interfaces}
    if len(samples) == 2:
        first = samples[0]
        seconds = max(last.at - first.at, 1e-3)
        for name, now in last.interfaces.items():
            before = first.interfaces.get(name, {})
            for key in ("in_octets", "out_octets"):
                if key in now and key in before:
                    delta = (now[key] - before[key]) % (1 << 64)
                    now[key.replace("octets", "bps")] = round(delta * 8 / seconds)
    return HostResult(device.name, data=data,
                      message=f"up {last.uptime:.0f} s, {len(last.interfaces)} interfaces")


async def _poll_all(devices: Sequence[Device], credentials: Credentials,
                    options: PollOptions, progress: Callable[[HostResult], None] | None
                    ) -> list[HostResult]:
    from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

    engine = SnmpEngine()
    gate = asyncio.Semaphore(max(1, options.concurrency))
    try:
        tasks = [asyncio.create_task(_poll_device(engine, credentials, d, options, gate))
                 for d in devices]
        results = []
        for task in asyncio.as_completed(tasks):
            result = await task
            results.append(result)
            if progress:
                progress(result)
    finally:
        engine.close_dispatcher()
    order = {d.name: i for i, d in enumerate(devices)}
    return sorted(results, key=lambda r: order[r.host])


@dataclass
class PollReport:
    run: RunResult
    offices: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "offices": self.offices, **self.run.to_dict()}


def poll(inventory: Inventory, devices: Sequence[Device], credentials: Credentials,
         options: PollOptions = PollOptions(),
         progress: Callable[[HostResult], None] | None = None) -> PollReport:
    credentials.require_snmp()
    targets = [d for d in devices if pollable(d)]
    run = RunResult("poll", asyncio.run(_poll_all(targets, credentials, options, progress)))
    offices = office_view(inventory, {d.name for d in targets}, run)
    return PollReport(run, offices, national_summary(offices))


def _link_state(inventory: Inventory, results: dict[str, HostResult], link_name: str
                ) -> dict[str, Any] | None:
    link = inventory.links[link_name]
    if link.a_device is None:
        return None
    device = inventory.devices[link.a_device]
    iface = next((i for n, i in enumerate(device.interfaces) if i.link == link_name), None)
    if iface is None:
        return None
    index = device.interfaces.index(iface)
    name = (get_driver(device.platform).interface_name(device, iface, index)
            if device.platform in DRIVERS else iface.name)
    state: dict[str, Any] = {"link": link_name, "device": device.name, "interface": name,
                             "carrier": link.carrier, "bandwidth_mbps": link.bandwidth_mbps}
    result = results.get(device.name)
    if result is None or result.failed:
        state["status"] = "unreachable"
        state["error"] = result.message if result else "not polled"
        return state
    row = result.data["interfaces"].get(name)
    if row is None:
        state["status"] = "missing"
        return state
    state["status"] = row.get("oper", "unknown")
    state["admin"] = row.get("admin")
    state["errors"] = row.get("in_errors", 0) + row.get("out_errors", 0)
    if "in_bps" in row:
        peak = max(row["in_bps"], row.get("out_bps", 0))
        state["utilisation_pct"] = round(100.0 * peak / (link.bandwidth_mbps * 1e6), 2)
    return state


def office_view(inventory: Inventory, polled: set[str], run: RunResult
                ) -> list[dict[str, Any]]:
    """Per office: its primary and backup WAN links as its own router sees them."""
    results = {h.host: h for h in run.hosts}
    offices = []
    for site in inventory.sites.values():
        if site.tier not in ("province", "district", "ops"):
            continue
        wan = {kind: [ln for ln in inventory.links.values()
                      if ln.a_site == site.name and ln.kind == kind]
               for kind in ("wan_primary", "wan_backup")}
        if not any(ln.a_device in polled for links in wan.values() for ln in links):
            continue
        primary = [s for ln in wan["wan_primary"]
                   if (s := _link_state(inventory, results, ln.name))]
        backup = [s for ln in wan["wan_backup"]
                  if (s := _link_state(inventory, results, ln.name))]
        p_up = any(s["status"] == "up" for s in primary)
        b_up = any(s["status"] == "up" for s in backup)
        if p_up and b_up:
            status = "ok"
        elif b_up:
            status = "on_backup"
        elif p_up:
            status = "backup_down"
        else:
            status = "down"
        offices.append({"site": site.name, "display": site.display, "tier": site.tier,
                        "status": status, "primary": primary, "backup": backup})
    return offices


def national_summary(offices: list[dict[str, Any]]) -> dict[str, Any]:
    counts = dict.fromkeys(("ok", "on_backup", "backup_down", "down"), 0)
    for office in offices:
        counts[office["status"]] += 1
    return {"offices": len(offices), **counts,
            "on_backup_sites": [o["site"] for o in offices if o["status"] == "on_backup"],
            "down_sites": [o["site"] for o in offices if o["status"] == "down"]}
