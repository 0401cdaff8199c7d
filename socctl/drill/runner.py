"""Run a drill plan step by step, measuring what happened (results as data).

Measured, not estimated: RTO from the loss to the first acknowledged write at the DR
side (detection included); RPO as acknowledged rows missing after failover, plus the
time between the newest acknowledged row and the newest one that survived. A step that
fails or times out stops the drill; the report names it, and nothing after it runs.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from socctl.backup.hosts import Hosts
from socctl.config import Settings
from socctl.drill.load import CREATE_SQL, WriteLoad, dsn
from socctl.drill.plan import DrillPlan, Step
from socctl.errors import SocctlError

PG_BIN = "/usr/lib/postgresql/15/bin"
VERSION, CLUSTER = "15", "socdb"


class StepFailed(SocctlError):
    """A step's check did not hold."""


@dataclass
class StepLog:
    id: str
    section: str
    action: str
    owner: str
    command: str
    check: str
    started: float = 0.0
    finished: float = 0.0
    status: str = "pending"  # ok | failed | skipped | not run
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return max(0.0, self.finished - self.started) if self.finished else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {
            "seconds": round(self.seconds, 3)}


@dataclass
class DrillResult:
    drill_id: str
    plan: DrillPlan
    started: float
    finished: float = 0.0
    steps: list[StepLog] = field(default_factory=list)
    measures: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[float, str]] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)
    stopped_at: str | None = None
    lab: bool = True  # run on the lab's hosts, or (False) on real servers over ssh

    @property
    def ok(self) -> bool:
        return self.stopped_at is None and all(v["pass"] for v in self.verdicts().values())

    def verdicts(self) -> dict[str, dict[str, Any]]:
        t = self.plan.targets
        m = self.measures
        pairs: list[tuple[str, float | None, float | None]] = [
            ("rto_seconds", t.rto_seconds, m.get("rto_seconds")),
            ("rpo_rows", t.rpo_rows, m.get("rpo_rows")),
            ("failback_seconds", t.failback_seconds, m.get("failback_seconds")),
            ("switchback_downtime_seconds", t.switchback_downtime_seconds,
             m.get("switchback_downtime_seconds")),
            ("switchback_rows_lost", 0, m.get("switchback_rows_lost")),
        ]
        out = {}
        for name, target, actual in pairs:
            if target is None:
                continue
            out[name] = {"target": target, "actual": actual,
                         "pass": actual is not None and actual <= target}
        return out


@dataclass(frozen=True)
class Target:
    """Where a drill runs: how socctl and the clients reach each database server, the
    application's password (the write load logs in as the application), and whether
    these are the lab's hosts (the only place where a DC can be made to disappear)."""

    addresses: dict[str, str]
    app_password: str = field(repr=False)
    lab: bool = False


class Context:
    """What steps share: hosts, addresses, the load, the clock."""

    def __init__(self, settings: Settings, plan: DrillPlan, hosts: Hosts,
                 result: DrillResult, target: Target) -> None:
        from socctl.backup.provision import PORT

        self.settings, self.plan, self.hosts, self.result = settings, plan, hosts, result
        self.target = target
        self.primary, self.standby = plan.database.primary, plan.database.standby
        self.mgmt = {n: target.addresses[n] for n in (self.primary, self.standby)}
        # Where each node is reached for replication (pg_rewind's source): learnt from
        # the primary's pg_stat_replication by the pre-check; the client address until then.
        self.replication = dict(self.mgmt)
        self.port = PORT
        self.load: WriteLoad | None = None
        self.loss_at: float | None = None

    def event(self, text: str) -> None:
        self.result.events.append((time.time(), text))

    def psql(self, host: str, sql: str, db: str = "postgres", timeout: float = 30) -> str:
        r = self.hosts.run(host, ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-p",
                                  str(self.port), "-d", db], user="postgres",
                           input_text=sql, timeout=timeout)
        if not r.ok:
            raise StepFailed(f"{host}: psql failed: {r.brief()}")
        return r.stdout.strip()

    def client_dsn(self) -> str:
        from socctl.backup.provision import APP_DATABASE, APP_USER

        return dsn([self.mgmt[self.primary], self.mgmt[self.standby]], self.port,
                   APP_DATABASE, APP_USER, self.target.app_password)

    def pg(self, host: str, *args: str, timeout: float = 60) -> None:
        r = self.hosts.run(host, ["pg_ctlcluster", VERSION, CLUSTER, *args], timeout=timeout)
        if not r.ok:
            raise StepFailed(f"{host}: pg_ctlcluster {' '.join(args)}: {r.brief()}")

    def in_recovery(self, host: str) -> bool | None:
        """True/False from the server; None when it does not answer (down, or the whole
        host is gone: a powered-off lab host cannot even be entered)."""
        try:
            r = self.hosts.run(host, ["psql", "-X", "-At", "-p", str(self.port), "-c",
                                      "SELECT pg_is_in_recovery()"], user="postgres",
                               timeout=5)
        except SocctlError:
            return None
        return None if not r.ok else r.stdout.strip() == "t"


Action = Callable[[Context, Step], str]


# -- actions ---------------------------------------------------------------------------

def check_replication(ctx: Context, step: Step) -> str:
    deadline = time.monotonic() + step.timeout_seconds
    last = ""
    while time.monotonic() < deadline:
        last = ctx.psql(ctx.primary, "SELECT application_name || '|' || state || '|' || "
                        "sync_state || '|' || coalesce(extract(epoch from replay_lag), 0) "
                        "|| '|' || coalesce(host(client_addr), '') FROM pg_stat_replication;")
        for line in last.splitlines():
            name, state, sync, lag, address = line.split("|")
            if (name == ctx.standby.replace("-", "_") and state == "streaming"
                    and sync == "sync" and float(lag) < 1.0):
                if address:
                    ctx.replication[ctx.standby] = address
                return (f"{ctx.standby} streaming from {address or 'a local socket'}, "
                        f"synchronous, replay lag {float(lag):.3f} s")
        time.sleep(0.3)
    raise StepFailed(f"{ctx.standby} not streaming synchronously: {last or 'no walsender'}")


def check_backups(ctx: Context, step: Step) -> str:
    from socctl.backup import ops

    findings = ops.status(ctx.settings, ctx.plan.database.policy)
    bad = [f for f in findings if not f.ok]
    if bad:
        raise StepFailed(f"{len(bad)} backup finding(s): " + "; ".join(
            f"{f.tier} {f.check}: {f.detail}" for f in bad[:3]))
    return f"{len(findings)} backup checks pass"


def start_load(ctx: Context, step: Step) -> str:
    from socctl.backup.provision import APP_DATABASE

    ctx.psql(ctx.primary, f"SET synchronous_commit = local; {CREATE_SQL}; "
             "GRANT ALL ON drill_writes TO socctl_app;", APP_DATABASE)
    load = WriteLoad(ctx.client_dsn(), ctx.result.drill_id, ctx.plan.load.rate_per_second,
                     ctx.plan.load.max_rows)
    ctx.load = load
    load.start()
    since = time.time()
    if not load.wait_for(5, since, ctx.mgmt[ctx.primary], step.timeout_seconds):
        raise StepFailed(f"the load got no acknowledged write from {ctx.primary}: "
                         f"{load.errors[-1][1] if load.errors else 'no error seen'}")
    return f"{len(load.acks)} writes acknowledged by {ctx.primary}"


def stop_primary_hard(ctx: Context, step: Step) -> str:
    ctx.loss_at = time.time()
    ctx.event(f"loss: {ctx.primary} stopped hard")
    r = ctx.hosts.run(ctx.primary, ["pg_ctlcluster", VERSION, CLUSTER, "stop", "-m",
                                    "immediate"], timeout=step.timeout_seconds)
    if not r.ok:
        raise StepFailed(f"could not stop {ctx.primary}: {r.brief()}")
    if ctx.in_recovery(ctx.primary) is not None:
        raise StepFailed(f"{ctx.primary} still answers")
    acked = len(ctx.load.acks) if ctx.load else 0
    return f"{ctx.primary} down (immediate stop); {acked} writes acknowledged before"


def _dc_links(ctx: Context) -> tuple[str, list[str]]:
    """The primary DB's site and every WAN/DC link of that site's routers (its LAN stays:
    it is inside the lost site)."""
    from socctl.lab import runtime

    plan = runtime.load_plan(ctx.settings)
    site = plan.host(ctx.primary).site
    routers = {h.name for h in plan.hosts.values() if h.is_router and h.site == site}
    return site, sorted(n for n, lk in plan.links.items() if lk.kind != "lan"
                        and (lk.a_host in routers or lk.z_host in routers))


LAB_ONLY_ACTIONS = ("lose_primary_dc", "restore_primary_dc")


def lose_primary_dc(ctx: Context, step: Step) -> str:
    """The whole primary DC is lost: its WAN and DC-interconnect links are cut and the
    database server loses power (every process on it dies at once, no clean shutdown).
    A powered-off node cannot come back on its own: that is the fencing here."""
    from socctl.lab import runtime

    site, links = _dc_links(ctx)
    ctx.loss_at = time.time()
    ctx.event(f"loss: primary DC {site} cut off, {ctx.primary} powered off")
    for name in links:
        runtime.set_link(ctx.settings, name, False)
    runtime.fail_host(ctx.settings, ctx.primary)
    if ctx.in_recovery(ctx.primary) is not None:
        raise StepFailed(f"{ctx.primary} still answers after the power loss")
    acked = len(ctx.load.acks) if ctx.load else 0
    return (f"{site} lost: links {', '.join(links)} down, {ctx.primary} powered off; "
            f"{acked} writes acknowledged before")


def restore_primary_dc(ctx: Context, step: Step) -> str:
    """Power and links come back, PostgreSQL stays down (it would come back as a second
    read-write primary: clients would split): the rewind step makes it a standby."""
    from socctl.lab import runtime

    site, links = _dc_links(ctx)
    for name in links:
        runtime.set_link(ctx.settings, name, True)
    with contextlib.suppress(SocctlError):
        runtime.start_host(ctx.settings, ctx.primary)  # already running: fine
    plan = runtime.load_plan(ctx.settings)
    runtime.wait_converged(plan, timeout=step.timeout_seconds)
    running = ctx.hosts.run(ctx.primary, ["pgrep", "-x", "postgres"], timeout=10)
    if running.ok:
        raise StepFailed(f"PostgreSQL is running on {ctx.primary} after the power came "
                         "back: stop it before it takes writes")
    # The power loss left the old postmaster.pid: its PID may name another process now.
    data = f"/var/lib/postgresql/{VERSION}/{CLUSTER}"
    ctx.hosts.run(ctx.primary, ["rm", "-f", f"{data}/postmaster.pid"], timeout=10)
    ctx.event(f"primary DC {site} back; {ctx.primary} up with PostgreSQL fenced (down)")
    return f"{site} links up, OSPF converged, {ctx.primary} powered on, PostgreSQL down"


def promote_standby(ctx: Context, step: Step) -> str:
    # Detection: the primary must really be gone (a fenced node never comes back here).
    deadline = time.monotonic() + step.timeout_seconds
    while ctx.in_recovery(ctx.primary) is not None:
        if time.monotonic() > deadline:
            raise StepFailed(f"{ctx.primary} is still up: refusing to promote (split brain)")
        time.sleep(0.05)
    ctx.event("detected: primary unreachable")
    r = ctx.hosts.run(ctx.standby, [f"{PG_BIN}/pg_ctl", "-D",
                                    f"/var/lib/postgresql/{VERSION}/{CLUSTER}", "promote",
                                    "-w", "-t", str(int(step.timeout_seconds))],
                      user="postgres", timeout=step.timeout_seconds + 5)
    if not r.ok or ctx.in_recovery(ctx.standby) is not False:
        raise StepFailed(f"promotion of {ctx.standby} failed: {r.brief()}")
    ctx.event(f"promoted: {ctx.standby}")
    return f"{ctx.standby} promoted"


def checkpoint(ctx: Context, step: Step) -> str:
    host = ctx.standby if ctx.in_recovery(ctx.standby) is False else ctx.primary
    ctx.psql(host, "CHECKPOINT;", timeout=step.timeout_seconds)
    slot = ctx.primary.replace("-", "_") if host == ctx.standby else ctx.standby.replace("-",
                                                                                         "_")
    ctx.psql(host, f"SELECT pg_create_physical_replication_slot('{slot}') WHERE NOT EXISTS "
             f"(SELECT 1 FROM pg_replication_slots WHERE slot_name = '{slot}');")
    tli = ctx.psql(host, "SELECT timeline_id FROM pg_control_checkpoint();")
    return f"CHECKPOINT on {host}, timeline {tli}; slot {slot} ready for the old primary"


def redirect_clients(ctx: Context, step: Step) -> str:
    import psycopg

    with psycopg.connect(ctx.client_dsn(), connect_timeout=2) as conn:
        server = str(conn.execute("SELECT inet_server_addr()").fetchone()[0])  # type: ignore[index]
    if server != ctx.mgmt[ctx.standby]:
        raise StepFailed(f"a read-write session landed on {server}, not {ctx.standby}")
    assert ctx.load is not None and ctx.loss_at is not None
    if not ctx.load.wait_for(1, ctx.loss_at, server, step.timeout_seconds):
        raise StepFailed(f"the load wrote nothing to {ctx.standby} after the loss")
    first = ctx.load.acked_since(ctx.loss_at, server)[0]
    ctx.result.measures["rto_seconds"] = round(first.at - ctx.loss_at, 3)
    ctx.result.measures["first_write_at_dr"] = first.at
    ctx.event(f"first write acknowledged at {ctx.standby}")
    return (f"clients follow target_session_attrs=read-write to {ctx.standby}; first write "
            f"{first.at - ctx.loss_at:.3f} s after the loss")


def _integrity(ctx: Context, host: str, since: float) -> tuple[int, int, float]:
    from socctl.backup.provision import APP_DATABASE

    assert ctx.load is not None
    ctx.load.wait_for(ctx.plan.load.after_failover_rows, since, ctx.mgmt[host], 30)
    acked = {a.seq: a.at for a in list(ctx.load.acks)}
    present = {int(x) for x in ctx.psql(
        host, f"SELECT seq FROM drill_writes WHERE drill_id = '{ctx.result.drill_id}';",
        APP_DATABASE).split()}
    missing = sorted(set(acked) - present)
    lag = 0.0
    if missing:
        newest_missing = max(acked[s] for s in missing)
        older = [t for s, t in acked.items() if s in present and t <= newest_missing]
        lag = newest_missing - max(older, default=ctx.result.started)
    return len(acked), len(missing), lag


def verify_integrity(ctx: Context, step: Step) -> str:
    host = ctx.standby if ctx.in_recovery(ctx.standby) is False else ctx.primary
    since = ctx.loss_at or ctx.result.started
    if ctx.result.measures.get("switchback_at"):
        since = ctx.result.measures["switchback_at"]
    acked, missing, lag = _integrity(ctx, host, since)
    key = "switchback_rows_lost" if ctx.result.measures.get("switchback_at") else "rpo_rows"
    ctx.result.measures[key] = missing
    if key == "rpo_rows":
        ctx.result.measures["rpo_seconds"] = round(lag, 3)
    if missing:
        raise StepFailed(f"{missing} of {acked} acknowledged rows missing at {host} "
                         f"(lag {lag:.3f} s)")
    return f"all {acked} acknowledged rows present at {host}"


def rewind_old_primary(ctx: Context, step: Step) -> str:
    started = time.time()
    data = f"/var/lib/postgresql/{VERSION}/{CLUSTER}"
    source = (f"host={ctx.replication[ctx.standby]} port={ctx.port} user=replicator "
              "dbname=postgres passfile=/var/lib/postgresql/.pgpass")
    # pg_rewind needs a clean shutdown, and its own crash recovery (postgres --single)
    # cannot find the configuration under /etc: recover here, reachable by no client
    # and archiving nothing, then stop cleanly.
    ctx.pg(ctx.primary, "start", "-o", "-c listen_addresses= -c archive_mode=off",
           timeout=step.timeout_seconds)
    ctx.pg(ctx.primary, "stop", "-m", "fast", timeout=step.timeout_seconds)
    r = ctx.hosts.run(ctx.primary, [f"{PG_BIN}/pg_rewind", f"--target-pgdata={data}",
                                    f"--source-server={source}", "--no-ensure-shutdown",
                                    "--progress"],
                      user="postgres", timeout=step.timeout_seconds)
    if not r.ok:
        raise StepFailed(f"pg_rewind failed: {r.brief()}")
    # pg_rewind copied the source's postgresql.auto.conf: re-apply this node's settings
    # (they live in /etc/postgresql/.../conf.d; auto.conf goes back to empty).
    ctx.hosts.run(ctx.primary, ["tee", f"{data}/postgresql.auto.conf"], user="postgres",
                  input_text="# reset by socctl drill after pg_rewind\n")
    ctx.hosts.run(ctx.primary, ["touch", f"{data}/standby.signal"], user="postgres")
    ctx.pg(ctx.primary, "start", timeout=step.timeout_seconds)
    deadline = time.monotonic() + step.timeout_seconds
    while time.monotonic() < deadline:
        # caught up: streaming and replaying within 1 MiB of the primary under load
        rows = ctx.psql(ctx.standby, "SELECT state || ':' || coalesce(pg_wal_lsn_diff("
                        "pg_current_wal_lsn(), replay_lsn) < 1048576, false) FROM "
                        "pg_stat_replication WHERE "
                        f"application_name = '{ctx.primary.replace('-', '_')}';")
        if rows == "streaming:true":
            ctx.result.measures["failback_seconds"] = round(time.time() - started, 3)
            ctx.event(f"{ctx.primary} rewound and streaming from {ctx.standby}")
            return (f"{ctx.primary} rewound, streaming from {ctx.standby} and caught up in "
                    f"{time.time() - started:.1f} s")
        time.sleep(0.2)
    raise StepFailed(f"{ctx.primary} did not catch up with {ctx.standby}")


def switch_back(ctx: Context, step: Step) -> str:
    data = f"/var/lib/postgresql/{VERSION}/{CLUSTER}"
    assert ctx.load is not None
    before = time.time()
    ctx.pg(ctx.standby, "stop", "-m", "fast")
    ctx.event(f"switch-back: {ctx.standby} stopped")
    ctl = ctx.hosts.run(ctx.standby, [f"{PG_BIN}/pg_controldata", data], user="postgres")
    final = next((ln.split(":", 1)[1].strip() for ln in ctl.stdout.splitlines()
                  if ln.startswith("Latest checkpoint location")), None)
    deadline = time.monotonic() + step.timeout_seconds
    while final is not None:
        caught = ctx.psql(ctx.primary, f"SELECT pg_last_wal_replay_lsn() >= '{final}'::pg_lsn;")
        if caught == "t":
            break
        if time.monotonic() > deadline:
            raise StepFailed(f"{ctx.primary} did not replay up to {final}")
        time.sleep(0.02)
    ctx.pg(ctx.primary, "promote")
    while ctx.in_recovery(ctx.primary) is not False:
        if time.monotonic() > deadline:
            raise StepFailed(f"{ctx.primary} did not leave recovery")
        time.sleep(0.02)
    ctx.event(f"switch-back: {ctx.primary} promoted")
    slot = ctx.standby.replace("-", "_")
    ctx.psql(ctx.primary, "SET synchronous_commit = local; CHECKPOINT; "
             f"SELECT pg_create_physical_replication_slot('{slot}') WHERE NOT EXISTS "
             f"(SELECT 1 FROM pg_replication_slots WHERE slot_name = '{slot}');")
    ctx.hosts.run(ctx.standby, ["tee", f"{data}/postgresql.auto.conf"], user="postgres",
                  input_text="# reset by socctl drill at switch-back\n")
    ctx.hosts.run(ctx.standby, ["touch", f"{data}/standby.signal"], user="postgres")
    ctx.pg(ctx.standby, "start")
    ctx.result.measures["switchback_at"] = before
    if not ctx.load.wait_for(1, before, ctx.mgmt[ctx.primary], step.timeout_seconds):
        raise StepFailed(f"no write acknowledged by {ctx.primary} after the switch-back")
    first = ctx.load.acked_since(before, ctx.mgmt[ctx.primary])[0]
    last_before = max((a.at for a in ctx.load.acks if a.at < before), default=before)
    downtime = first.at - last_before
    ctx.result.measures["switchback_downtime_seconds"] = round(downtime, 3)
    ctx.event(f"switch-back: first write at {ctx.primary}")
    return (f"{ctx.primary} primary again; {ctx.standby} standby; write downtime "
            f"{downtime:.3f} s")


def shell(ctx: Context, step: Step) -> str:
    assert step.host is not None
    r = ctx.hosts.run(step.host, ["sh", "-c", step.command], timeout=step.timeout_seconds)
    if not r.ok:
        raise StepFailed(f"exit {r.returncode}: {r.brief()}")
    return r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "ok"


ACTIONS: dict[str, Action] = {
    "check_replication": check_replication, "check_backups": check_backups,
    "start_load": start_load, "stop_primary_hard": stop_primary_hard,
    "lose_primary_dc": lose_primary_dc, "restore_primary_dc": restore_primary_dc,
    "promote_standby": promote_standby, "checkpoint": checkpoint,
    "redirect_clients": redirect_clients, "verify_integrity": verify_integrity,
    "rewind_old_primary": rewind_old_primary, "switch_back": switch_back, "shell": shell,
}


Approver = Callable[[Step], bool]


def new_drill_id(plan: DrillPlan) -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{plan.id}-{uuid.uuid4().hex[:6]}"


def _refused(approve: Approver | None, step: Step) -> str:
    """Why the gate of ``step`` is not passed, or "" if it is approved. A prompt cancelled
    (Ctrl-C, stdin closed: click's Abort) is a refusal, so the drill still ends with its
    report: at the switch-back gate that report is the record of a failed-over estate."""
    if approve is None:
        return "approval refused"
    try:
        return "" if approve(step) else "approval refused"
    except (Exception, KeyboardInterrupt) as exc:
        return f"approval not given (the prompt was cancelled: {type(exc).__name__})"


def run(settings: Settings, plan: DrillPlan, hosts: Hosts, target: Target, *,
        approve: Approver | None = None,
        assume_yes: bool = False, on_step: Callable[[StepLog], None] | None = None
        ) -> DrillResult:
    """Execute the plan; stop at the first failing step (its log says why)."""
    result = DrillResult(new_drill_id(plan), plan, time.time(), lab=target.lab)
    ctx = Context(settings, plan, hosts, result, target)
    ordered = [("steps", s) for s in plan.steps] + [("switch_back", s)
                                                   for s in plan.switch_back]
    result.steps = [StepLog(s.id, sec, s.action, s.owner, s.command, s.check)
                    for sec, s in ordered]
    ctx.event("drill started")
    try:
        for (_, step), log in zip(ordered, result.steps, strict=True):
            if result.stopped_at is not None:
                log.status = "not run"
                continue
            log.started = time.time()
            refused = step.approval and not assume_yes and _refused(approve, step)
            if refused:
                log.finished = time.time()
                log.status = "failed"
                log.detail = f"{refused} (run with --yes to approve every gate)"
                result.stopped_at = step.id
                ctx.event(f"stopped at {step.id}")
                continue
            try:
                log.detail = ACTIONS[step.action](ctx, step)
                log.status = "ok"
            except (SocctlError, OSError) as exc:
                log.status = "failed"
                log.detail = str(exc)
                result.stopped_at = step.id
                ctx.event(f"stopped at {step.id}")
            except Exception as exc:  # a bug or a driver error must still leave a report
                log.status = "failed"
                log.detail = f"{type(exc).__name__}: {exc}"
                result.stopped_at = step.id
            log.finished = time.time()
            if on_step:
                on_step(log)
    finally:
        if ctx.load is not None:
            ctx.load.stop()
            result.measures["rows_acknowledged"] = len(ctx.load.acks)
            result.measures["write_errors"] = len(ctx.load.errors)
        result.finished = time.time()
        ctx.event("drill finished")
    if result.stopped_at:
        result.observations.append(
            f"The drill stopped at step '{result.stopped_at}'; later steps did not run.")
    return result
