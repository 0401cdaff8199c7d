"""Backup status: freshness against the policy's own schedule, WAL gaps, broken chains.

:func:`evaluate_pgbackrest` is pure (pgBackRest's info JSON, the repo listings and the
archiver state in, findings out) so it is unit-tested on recorded shapes; the engine
calls that feed it live in the drivers.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from socctl.backup import wal
from socctl.backup.calendar import freshness_limits_for_tier
from socctl.backup.hosts import Hosts
from socctl.backup.policy import Engine, Policy
from socctl.errors import SocctlError


@dataclass
class Finding:
    policy: str
    tier: str
    check: str
    ok: bool
    detail: str
    age_s: float | None = None
    limit_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _age(now: float, ts: float | None) -> float | None:
    return None if ts is None else max(0.0, now - ts)


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return str(timedelta(seconds=round(seconds)))


def evaluate_pgbackrest(policy: Policy, info: dict[str, Any], listings: dict[int, list[str]],
                        archiver: dict[str, Any] | None, now: float) -> list[Finding]:
    out: list[Finding] = []
    backups: list[dict[str, Any]] = info.get("backup", [])
    for tier in policy.tiers:
        repo = tier.repo
        mine = [b for b in backups if b.get("database", {}).get("repo-key") == repo]
        mine.sort(key=lambda b: b["timestamp"]["stop"])
        limits = freshness_limits_for_tier(policy, tier.name)
        for kind, types in (("full", {"full"}), ("diff", {"full", "diff"})):
            if kind not in limits:
                continue
            last = max((b["timestamp"]["stop"] for b in mine if b["type"] in types),
                       default=None)
            age = _age(now, last)
            limit = limits[kind].total_seconds()
            ok = age is not None and age <= limit
            out.append(Finding(policy.id, tier.name, f"{kind} fresh", ok,
                               f"last {'full' if kind == 'full' else 'full/diff'} "
                               f"{_fmt(age)} ago (limit {_fmt(limit)})", age, limit))
        labels = {b["label"] for b in mine}
        broken = [b["label"] for b in mine if b.get("prior") and b["prior"] not in labels]
        errored = [b["label"] for b in mine if b.get("error")]
        segs = listings.get(repo or 0, [])
        missing_in_backup = []
        for b in mine:
            start, stop = b.get("archive", {}).get("start"), b.get("archive", {}).get("stop")
            if start and stop and wal.gaps(segs, start, stop):
                missing_in_backup.append(b["label"])
        problems = ([f"{lbl}: prior backup missing" for lbl in broken]
                    + [f"{lbl}: page errors" for lbl in errored]
                    + [f"{lbl}: WAL of the backup missing" for lbl in missing_in_backup])
        out.append(Finding(policy.id, tier.name, "chain intact", not problems,
                           "; ".join(problems) or f"{len(mine)} backup(s) restorable"))
        if mine and mine[0].get("archive", {}).get("start"):
            holes = wal.gaps(segs, mine[0]["archive"]["start"])
            detail = (", ".join(f"{a}..{b}" for a, b in holes[:3])
                      + (f" (+{len(holes) - 3} more)" if len(holes) > 3 else ""))
            out.append(Finding(policy.id, tier.name, "WAL archive continuous", not holes,
                               f"missing {detail}" if holes else
                               f"{len(segs)} segments, no gap since {mine[0]['label']}"))
    if archiver is not None and "wal" in freshness_limits_for_tier(policy, None):
        limit = freshness_limits_for_tier(policy, None)["wal"].total_seconds()
        failing = (archiver.get("last_failed_time") or 0) > (
            archiver.get("last_archived_time") or 0)
        lag = None
        # After a promotion the last archived file can be a timeline's .history file:
        # no segment number, so the lag is unknown and the age decides.
        current = wal.parse(archiver.get("current") or "")
        archived = wal.parse(archiver.get("last_archived_wal") or "")
        if current is not None and archived is not None:
            lag = current[1] - archived[1]
        age = _age(now, archiver.get("last_archived_time"))
        # nothing ever archived (archive_mode off, archive_command never succeeded) is no
        # archiving at all: it once read as "archived 0 s ago"
        never = archiver.get("last_archived_wal") is None or age is None
        ok = not failing and not never and (
            (lag is not None and lag <= 1) or (age is not None and age <= limit))
        detail = (f"archiver failing since {archiver.get('last_failed_wal')}" if failing
                  else "no WAL segment has ever been archived (archive_mode, "
                       "archive_command?)" if never
                  else f"last archived {archiver.get('last_archived_wal')} {_fmt(age)} ago, "
                       f"{lag} segment(s) behind")
        out.append(Finding(policy.id, "all", "WAL archiving", ok, detail, age, limit))
    return out


def evaluate_restic(policy: Policy, snapshots: dict[str, list[dict[str, Any]]],
                    checks: dict[str, bool], now: float) -> list[Finding]:
    out: list[Finding] = []
    for tier in policy.tiers:
        limits = freshness_limits_for_tier(policy, tier.name)
        limit = limits.get("full")
        snaps = snapshots.get(tier.name, [])
        for host in policy.target.hosts:
            times = [s["epoch"] for s in snaps if s.get("hostname") == host]
            age = _age(now, max(times, default=None))
            ok = age is not None and (limit is None or age <= limit.total_seconds())
            out.append(Finding(policy.id, tier.name, f"{host} fresh", ok,
                               f"last snapshot {_fmt(age)} ago (limit "
                               f"{_fmt(limit.total_seconds() if limit else None)})", age,
                               limit.total_seconds() if limit else None))
        ok = checks.get(tier.name, False)
        out.append(Finding(policy.id, tier.name, "repository check", ok,
                           "restic check passed" if ok else "restic check failed"))
    return out


def status(hosts: Hosts, policies: list[Policy]) -> list[Finding]:
    """Live status of each policy; an unreachable engine is a failed finding, not a crash."""
    from socctl.backup import pgbackrest, restic

    now = time.time()
    out: list[Finding] = []
    for policy in policies:
        try:
            if policy.engine is Engine.PGBACKREST:
                host = pgbackrest.find_primary(hosts, policy)
                info = pgbackrest.info(hosts, host, policy)
                listings = {t.repo: pgbackrest.archived_segments(hosts, host, policy, t.repo)
                            for t in policy.tiers if t.repo is not None}
                archiver = pgbackrest.archiver_state(hosts, host, policy)
                out += evaluate_pgbackrest(policy, info, listings, archiver, now)
            else:
                snaps, checks = restic.inspect(hosts, policy)
                out += evaluate_restic(policy, snaps, checks, now)
        except SocctlError as exc:
            out.append(Finding(policy.id, "all", "reachable", False, str(exc)))
    return out


def dumps(findings: list[Finding]) -> str:
    return json.dumps([f.to_dict() for f in findings], indent=2)
