"""pgBackRest driver: backups per tier (repo), WAL checks, info, restore-point evidence.

Commands run as ``postgres`` on whichever policy host is the primary now (after a drill
that may be the DR host). ``pgbackrest verify`` exits 0 even when it finds corruption, so
its output is parsed rather than trusted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from socctl.backup.hosts import Completed, Hosts
from socctl.backup.policy import BackupType, Policy
from socctl.errors import Location, ToolError

PG_USER = "postgres"


@dataclass
class EngineRun:
    """One engine invocation of a backup run (a tier, or a WAL check)."""

    policy: str
    type: str
    tier: str
    host: str
    ok: bool
    seconds: float
    detail: str
    label: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def psql(hosts: Hosts, host: str, policy: Policy, sql: str, database: str | None = None,
         timeout: float = 60) -> Completed:
    db = database or policy.target.database or "postgres"
    return hosts.run(host, ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-p",
                            str(policy.target.port), "-d", db], user=PG_USER,
                     input_text=sql, timeout=timeout)


def find_primary(hosts: Hosts, policy: Policy) -> str:
    """The policy host whose cluster is up and not in recovery."""
    seen = []
    for host in policy.target.hosts:
        try:
            result = psql(hosts, host, policy, "SELECT pg_is_in_recovery();", "postgres",
                          timeout=10)
        except ToolError as exc:
            seen.append(f"{host}: {exc}")
            continue
        if result.ok and result.stdout.strip() == "f":
            return host
        seen.append(f"{host}: {'standby' if result.ok else result.brief()}")
    raise ToolError(f"no primary among {', '.join(policy.target.hosts)}: " + "; ".join(seen),
                    Location.of(policy.path, None, "target.hosts"))


def _pgbr(hosts: Hosts, host: str, policy: Policy, *args: str, timeout: float = 900
          ) -> Completed:
    return hosts.run(host, ["pgbackrest", f"--stanza={policy.target.stanza}", *args],
                     user=PG_USER, timeout=timeout)


def tiers_for(policy: Policy, kind: BackupType) -> list[str]:
    """The tiers a run of ``kind`` writes to (from the policy's runs)."""
    for candidate in (kind, BackupType.DIFF, BackupType.FULL):
        tiers = [t for r in policy.runs if r.type is candidate for t in r.tiers]
        if tiers:
            return list(dict.fromkeys(tiers))
    return [t.name for t in policy.tiers]


def backup(hosts: Hosts, policy: Policy, kind: BackupType, host: str) -> list[EngineRun]:
    """full/diff/incr into each tier's repo; log = switch WAL and check it reached them."""
    runs: list[EngineRun] = []
    if kind is BackupType.LOG:
        psql(hosts, host, policy, "SELECT pg_switch_wal();", "postgres")
        result = _pgbr(hosts, host, policy, "check", timeout=180)
        runs.append(EngineRun(policy.id, kind.value, "all", host, result.ok, result.seconds,
                              "WAL archived to every repository" if result.ok
                              else result.brief()))
        return runs
    for name in tiers_for(policy, kind):
        tier = policy.tier(name)
        result = _pgbr(hosts, host, policy, f"--repo={tier.repo}", f"--type={kind.value}",
                       "backup")
        label = None
        match = re.search(r"new backup label = (\S+)", result.stdout + result.stderr)
        if match:
            label = match[1]
        runs.append(EngineRun(policy.id, kind.value, name, host, result.ok, result.seconds,
                              f"repo{tier.repo} backup {label}" if result.ok
                              else result.brief(), label))
    return runs


def info(hosts: Hosts, host: str, policy: Policy) -> dict[str, Any]:
    result = _pgbr(hosts, host, policy, "--output=json", "info", timeout=120)
    if not result.ok:
        raise ToolError(f"pgbackrest info failed: {result.brief()}", Location(f"host:{host}"))
    data = json.loads(result.stdout or "[]")
    if not data:
        raise ToolError(f"stanza {policy.target.stanza} unknown to pgbackrest",
                        Location(f"host:{host}"))
    stanza: dict[str, Any] = data[0]
    return stanza


def archived_segments(hosts: Hosts, host: str, policy: Policy, repo: int) -> list[str]:
    result = _pgbr(hosts, host, policy, f"--repo={repo}", "repo-ls",
                   f"archive/{policy.target.stanza}", "--recurse", "--output=json",
                   timeout=120)
    if not result.ok:
        raise ToolError(f"pgbackrest repo-ls repo{repo} failed: {result.brief()}",
                        Location(f"host:{host}"))
    listing: dict[str, dict[str, Any]] = json.loads(result.stdout or "{}")
    return [name for name, meta in listing.items() if meta.get("type") == "file"]


def archiver_state(hosts: Hosts, host: str, policy: Policy) -> dict[str, Any]:
    """pg_stat_archiver plus the segment being written now."""
    result = psql(hosts, host, policy,
                  "SELECT json_build_object('archived', archived_count, 'failed', failed_count,"
                  " 'last_archived_wal', last_archived_wal, 'last_archived_time',"
                  " extract(epoch from last_archived_time), 'last_failed_wal', last_failed_wal,"
                  " 'last_failed_time', extract(epoch from last_failed_time), 'current',"
                  " pg_walfile_name(pg_current_wal_lsn())) FROM pg_stat_archiver;", "postgres")
    if not result.ok:
        raise ToolError(f"cannot read pg_stat_archiver: {result.brief()}",
                        Location(f"host:{host}"))
    state: dict[str, Any] = json.loads(result.stdout.strip())
    return state


# -- restore-point evidence: the data at a known point, for `backup verify` -------------

CHECKSUM_SQL = ("SELECT count(*)::text || ':' || coalesce(md5(string_agg(md5(t::text), '' "
                "ORDER BY md5(t::text))), '-') FROM {table} t")


def table_checksums_sql(tables: list[str]) -> str:
    parts = [f"SELECT '{t}', ({CHECKSUM_SQL.format(table=t)})" for t in tables]
    return " UNION ALL ".join(parts) + ";"


def existing_tables(hosts: Hosts, host: str, policy: Policy) -> list[str]:
    if not policy.target.key_tables:
        return []
    names = ",".join(f"'{t}'" for t in policy.target.key_tables)
    result = psql(hosts, host, policy,
                  f"SELECT relname FROM pg_class WHERE relkind = 'r' AND relname IN ({names});")
    if not result.ok:  # not "no tables": a restore point without checksums proves nothing
        raise ToolError(f"cannot list the key tables: {result.brief()}",
                        Location(f"host:{host}"))
    return sorted(result.stdout.split())


def mark_restore_point(hosts: Hosts, host: str, policy: Policy, name: str) -> dict[str, Any]:
    """Checksums of the key tables and a named restore point at the same instant.

    SHARE locks keep writers out between the checksum and the restore point, so a
    restore to that point must show exactly these rows.
    """
    tables = existing_tables(hosts, host, policy)
    lock = f"LOCK TABLE {', '.join(tables)} IN SHARE MODE;" if tables else ""
    checks = table_checksums_sql(tables) if tables else "SELECT 'none', '0';"
    sql = (f"SET synchronous_commit = local; BEGIN; {lock}\n{checks}\n"
           f"SELECT 'restore_point', pg_create_restore_point('{name}');\n"
           "SELECT 'time', extract(epoch from now()); COMMIT;")
    result = psql(hosts, host, policy, sql.replace("; ", ";\n"))
    if not result.ok:
        raise ToolError(f"restore point failed: {result.brief()}", Location(f"host:{host}"))
    values: dict[str, str] = {}
    for line in result.stdout.splitlines():
        if "|" in line:
            key, _, value = line.partition("|")
            values[key] = value
    switched = psql(hosts, host, policy, "SELECT pg_switch_wal();", "postgres")
    check = _pgbr(hosts, host, policy, "check", timeout=180)
    return {"name": name, "host": host, "lsn": values.get("restore_point"),
            "time": float(values.get("time", "0")),
            "tables": {t: values[t] for t in tables if t in values},
            "archived": switched.ok and check.ok,
            "recorded": datetime.now(UTC).isoformat()}


@dataclass
class RestoreResult:
    ok: bool
    seconds: float
    detail: str
    checksums: dict[str, str] = field(default_factory=dict)
