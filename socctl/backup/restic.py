"""restic driver: file-system backups per host, the DR copy, retention, inspection.

The DR repository is created with ``init --from-repo ... --copy-chunker-params`` so
that ``restic copy`` keeps deduplication. The repository password comes from the 0600
secrets file and reaches restic through its environment only.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any

from socctl.backup.hosts import Hosts
from socctl.backup.pgbackrest import EngineRun
from socctl.backup.policy import Policy, Tier
from socctl.errors import Location, ToolError

_password: dict[str, str] = {}


def set_password(password: str) -> None:
    """Called once by the entry point with the secret from the 0600 file."""
    _password["value"] = password


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    if "value" not in _password:
        raise ToolError("no restic password set", hint="socctl reads it from the state dir")
    env = {"RESTIC_PASSWORD": _password["value"]}
    if extra:
        env |= extra
    return env


def snapshot_epoch(text: str) -> float:
    """restic prints nanoseconds (``...:15.123456789+07:00``); Python parses microseconds."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    return datetime.fromisoformat(text).timestamp()


def _runner_host(policy: Policy) -> str:
    return policy.target.hosts[0]


def _restic(hosts: Hosts, host: str, repo: str, *args: str, timeout: float = 600,
            from_repo: str | None = None) -> Any:
    argv = ["restic", "--no-cache", "-r", hosts.storage(repo), *args]
    extra = None
    if from_repo is not None:
        argv += ["--from-repo", hosts.storage(from_repo)]
        extra = {"RESTIC_FROM_PASSWORD": _password.get("value", "")}
    return hosts.run(host, argv, env=_env(extra), timeout=timeout)


def ensure_repos(hosts: Hosts, policy: Policy) -> None:
    host = _runner_host(policy)
    for tier in policy.tiers:
        if _restic(hosts, host, tier.path, "cat", "config", timeout=60).ok:
            continue
        if tier.copy_of:
            source = policy.tier(tier.copy_of).path
            result = _restic(hosts, host, tier.path, "init", "--copy-chunker-params",
                             from_repo=source)
        else:
            result = _restic(hosts, host, tier.path, "init")
        if not result.ok:
            raise ToolError(f"restic init {tier.path} failed: {result.brief()}",
                            Location(f"host:{host}"))


def _primaries(policy: Policy) -> list[Tier]:
    return [t for t in policy.tiers if t.copy_of is None]


def backup(hosts: Hosts, policy: Policy) -> list[EngineRun]:
    ensure_repos(hosts, policy)
    runs: list[EngineRun] = []
    for tier in _primaries(policy):
        for host in policy.target.hosts:
            result = _restic(hosts, host, tier.path, "backup", "--host", host, "--tag",
                             f"socctl,{policy.id}", "--json", *policy.target.paths)
            snap = None
            for line in result.stdout.splitlines():
                if '"summary"' in line:
                    snap = json.loads(line).get("snapshot_id", "")[:8]
            runs.append(EngineRun(policy.id, "full", tier.name, host, result.ok,
                                  result.seconds, f"snapshot {snap}" if result.ok
                                  else result.brief(), snap))
    host = _runner_host(policy)
    for tier in policy.tiers:
        if tier.copy_of:
            source = policy.tier(tier.copy_of).path
            result = _restic(hosts, host, tier.path, "copy", from_repo=source)
            runs.append(EngineRun(policy.id, "copy", tier.name, host, result.ok,
                                  result.seconds, f"copied from {tier.copy_of}" if result.ok
                                  else result.brief()))
        if tier.retention.monthly:
            result = _restic(hosts, host, tier.path, "forget", "--keep-monthly",
                             str(tier.retention.monthly), "--prune", "--group-by", "host")
            runs.append(EngineRun(policy.id, "retention", tier.name, host, result.ok,
                                  result.seconds, f"keep {tier.retention.monthly} monthly"
                                  if result.ok else result.brief()))
    return runs


def inspect(hosts: Hosts, policy: Policy) -> tuple[dict[str, list[dict[str, Any]]],
                                                   dict[str, bool]]:
    host = _runner_host(policy)
    snaps: dict[str, list[dict[str, Any]]] = {}
    checks: dict[str, bool] = {}
    for tier in policy.tiers:
        result = _restic(hosts, host, tier.path, "snapshots", "--json", timeout=120)
        found = json.loads(result.stdout or "[]") if result.ok else []
        for s in found or []:
            s["epoch"] = snapshot_epoch(s["time"])
        snaps[tier.name] = found or []
        checks[tier.name] = _restic(hosts, host, tier.path, "check", timeout=300).ok
    return snaps, checks


def snapshot_files(listing: str) -> tuple[dict[str, Any], dict[str, int]]:
    """``restic ls --json`` output -> (the snapshot, regular file path -> size)."""
    snapshot: dict[str, Any] = {}
    files: dict[str, int] = {}
    for line in listing.splitlines():
        if not line.strip():
            continue
        node = json.loads(line)
        if node.get("struct_type") == "snapshot":
            snapshot = node
        elif node.get("type") == "file":
            files[node["path"]] = int(node.get("size", 0))
    return snapshot, files


def compare_restore(expected: dict[str, int], restored: dict[str, int]) -> list[str]:
    """What the restored tree lacks or got wrong against the snapshot's own listing."""
    problems = [f"missing {p}" for p in sorted(set(expected) - set(restored))]
    problems += [f"size {p}: {restored[p]} != {size} in the snapshot"
                 for p, size in sorted(expected.items())
                 if p in restored and restored[p] != size]
    problems += [f"unexpected {p}" for p in sorted(set(restored) - set(expected))]
    return problems


def verify(hosts: Hosts, policy: Policy, tier_name: str | None = None) -> dict[str, Any]:
    """Restore each host's latest snapshot into a scratch dir and prove it complete.

    The restore runs with ``--verify`` (restic re-reads every restored file against the
    repository's content hashes), then the restored tree is compared with the snapshot's
    own file listing (every file there, same size, nothing extra). Comparing with the
    live files instead would fail on every legitimate change since the backup; that
    drift is reported as information (``changed_since_backup``), never as a failure.
    """
    tier = policy.verify_tier(tier_name)
    results: dict[str, Any] = {"tier": tier.name, "hosts": {}}
    for host in policy.target.hosts:
        scratch = f"/var/tmp/socctl-verify-{policy.id}"
        hosts.run(host, ["rm", "-rf", scratch])
        listing = _restic(hosts, host, tier.path, "ls", "--json", "latest", "--host", host,
                          timeout=300)
        snapshot, expected = snapshot_files(listing.stdout) if listing.ok else ({}, {})
        snap_id = str(snapshot.get("short_id") or snapshot.get("id", ""))[:8]
        entry: dict[str, Any] = {"snapshot": snap_id or None}
        if not listing.ok or not snap_id:
            entry |= {"restored": False, "ok": False,
                      "detail": f"no snapshot of {host} in {tier.name}: {listing.brief()}"}
            results["hosts"][host] = entry
            continue
        restore = _restic(hosts, host, tier.path, "restore", snap_id, "--verify",
                          "--target", scratch)
        problems: list[str] = []
        drift: list[str] = []
        if restore.ok:
            found = hosts.run(host, ["find", scratch, "-type", "f", "-printf", "/%P\t%s\n"],
                              timeout=120)
            restored = {p: int(n) for p, _, n in
                        (line.rpartition("\t") for line in found.stdout.splitlines() if line)}
            problems = compare_restore(expected, restored)
            for path in policy.target.paths:
                diff = hosts.run(host, ["diff", "-rq", "--no-dereference",
                                        f"{scratch}{path}", path], timeout=120)
                drift += [line for line in diff.stdout.splitlines() if line.strip()]
        hosts.run(host, ["rm", "-rf", scratch])
        age = round(time.time() - snapshot_epoch(snapshot["time"]), 1)
        ok = restore.ok and not problems
        entry |= {"restored": restore.ok, "seconds": round(restore.seconds, 2),
                  "files": len(expected), "data_age_seconds": age,
                  "problems": problems[:20], "n_problems": len(problems),
                  "changed_since_backup": len(drift), "drift_sample": drift[:5], "ok": ok,
                  "detail": restore.brief() if not restore.ok else
                  (f"{len(expected)} files restored and verified"
                   + (f"; {len(drift)} changed on the host since" if drift else "")
                   if ok else f"{len(problems)} problem(s): {'; '.join(problems[:3])}")}
        results["hosts"][host] = entry
    hosts_out = results["hosts"].values()
    results["ok"] = bool(results["hosts"]) and all(h["ok"] for h in hosts_out)
    results["restore_seconds"] = round(sum(h.get("seconds", 0) for h in hosts_out), 2)
    ages = [h["data_age_seconds"] for h in hosts_out if "data_age_seconds" in h]
    results["data_age_seconds"] = max(ages) if ages else None
    results["detail"] = "; ".join(f"{name}: {h['detail']}"
                                  for name, h in results["hosts"].items())
    return results
