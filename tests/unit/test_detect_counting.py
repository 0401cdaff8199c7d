"""The counting fast path (event_count / value_count) finds exactly what the SQLite
backend's staged correlation plan finds, window for window, on the same stored events."""

from __future__ import annotations

import dataclasses
import random
import sqlite3
from pathlib import Path

from socctl.collector.ecs import event_id
from socctl.collector.parse import parse_event
from socctl.detection.engine import Scope, compile_rules, run
from socctl.detection.loader import load_rules
from socctl.detection.testing import parser_options
from socctl.store.sqlite import SqliteStore, to_row
from tests.conftest import REPO


def _lines(n: int, seed: int = 3) -> list[tuple[str, str, float]]:
    """Bursts from a few sources (so windows qualify, overlap and end), case variants of
    user names (value_count folds case), equal timestamps (windows include their peers)."""
    rnd = random.Random(seed)
    out = []
    t = 1_795_000_000.0
    for i in range(n):
        t += rnd.choice([0.0, 0.02, 0.05, 0.3, 20.0 if i % 500 == 0 else 0.3])
        ip = f"198.18.7.{rnd.randint(1, 6)}"
        r = rnd.random()
        if r < 0.4:
            user = rnd.choice(["root", "Root", "admin", "ADMIN", "oracle", "test", "x1", "x2"])
            verb = rnd.choice(["Failed password for", "Failed password for invalid user",
                               "Invalid user"])
            line = f"Nov 22 08:00:01 dc-primary-db1 sshd[{i}]: {verb} {user} from {ip} port 4"
            if verb == "Invalid user":
                line = f"Nov 22 08:00:01 dc-primary-db1 sshd[{i}]: Invalid user {user} from {ip}"
            out.append(("sshd", line, t))
        elif r < 0.8:
            out.append(("netfilter", f"Nov 22 08:00:01 dc-primary-wrtr1 kernel: DROP IN=eth1 "
                        f"OUT= SRC={ip} DST=198.19.128.{rnd.randint(1, 30)} LEN=44 PROTO=TCP "
                        f"SPT=4444 DPT={rnd.randint(1, 40)} SYN", t))
        else:
            status = rnd.choice([200, 404, 404])
            out.append(("nginx.access", f'{ip} - - [22/Nov/2026:08:00:01 +0000] "GET /x{i} '
                        f'HTTP/1.1" {status} 10 "-" "curl/8"', t))
    for i in range(450):  # a flood (and a 404 burst) from one source
        t += 0.05
        out.append(("nginx.access", f'198.18.9.9 - - [22/Nov/2026:08:00:01 +0000] "GET /f{i} '
                    f'HTTP/1.1" {404 if i % 2 else 200} 10 "-" "curl/8"', t))
    for _ in range(300):  # logins answered 200/302 from one address, two tools (the
        # user agent is a second group key; its case is folded as the other keys are)
        t += rnd.choice([0.0, 0.1, 0.3])
        agent = rnd.choice(["curl/8", "Mozilla/5.0 (Hydra)", "mozilla/5.0 (hydra)"])
        out.append(("nginx.access", f'198.18.8.3 - - [22/Nov/2026:08:00:01 +0000] "POST '
                    f'/login HTTP/1.1" {rnd.choice([200, 302])} 10 "-" "{agent}"', t))
    for i in range(800):  # mail, web login and router login guessing, with pauses
        t += rnd.choice([0.0, 0.2, 0.5, 2.0, 1200.0 if i % 400 == 0 else 1.0])
        ip = f"198.18.8.{rnd.randint(1, 2)}"
        kind = rnd.randrange(4)
        if kind == 0:
            out.append(("postfix", f"Nov 22 08:00:01 mail1 postfix/smtpd[{i}]: NOQUEUE: reject: "
                        f"RCPT from unknown[{ip}]: 554 5.7.1 Service unavailable; Client host "
                        f"[{ip}] blocked using zen.spamhaus.org; from=<a@b.example> "
                        f"to=<n{i}@vss.gov.vn> proto=ESMTP helo=<b.example>", t))
        elif kind == 1:
            out.append(("postfix", f"Nov 22 08:00:01 mail1 postfix/smtpd[{i}]: warning: unknown"
                        f"[{ip}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6", t))
        elif kind == 2:
            status = rnd.choice([401, 403, 302, 429])  # 429: refused by a login limit
            out.append(("nginx.access", f'{ip} - - [22/Nov/2026:08:00:01 +0000] "POST '
                        f'/dang-nhap HTTP/1.1" {status} 10 "-" "curl/8"', t))
        else:
            out.append(("cisco_ios", f"<188>{i}: p01-rtr1: *Nov 22 08:00:01.000 UTC: "
                        "%SEC_LOGIN-4-LOGIN_FAILED: Login failed [user: admin] "
                        f"[Source: {ip}] [localport: 22] [Reason: Login Authentication "
                        "Failed] at 08:00:01 UTC Sun Nov 22 2026", t))
    return out


def _store(tmp_path: Path, lines: list[tuple[str, str, float]]) -> Path:
    """The lines parsed by the collector's parser into a store, as `collect` writes it."""
    db = tmp_path / "events.db"
    store = SqliteStore(db)
    rows = []
    for dataset, line, ts in lines:
        _, ev = parse_event(dataset, line, ts, parser_options().get(dataset))
        rows.append(to_row(event_id(dataset, f"{ts:.6f}", line), ts, ts, ev))
    store.insert_rows(rows)
    store.close()
    return db


def test_counting_matches_the_backend_plan(tmp_path: Path) -> None:
    db = _store(tmp_path, _lines(6000))
    ruleset = load_rules(REPO / "detections")
    counting = [c for c in compile_rules(ruleset.rules) if c.counting is not None]
    kinds = {c.rule.sigma.type.name.lower() for c in counting}
    assert kinds == {"event_count", "value_count"}, kinds
    conn = sqlite3.connect(db)
    compared = 0
    quiet = set()
    for c in counting:
        fast = run(conn, [c], Scope(), ruleset.lookups)
        plan = run(conn, [dataclasses.replace(c, counting=None)], Scope(), ruleset.lookups)

        def key(hits: list) -> set:  # type: ignore[type-arg]
            return {(h.entity, h.first_ts, h.last_ts, tuple(sorted(h.event_ids)))
                    for h in hits}

        assert key(fast) == key(plan), c.rule.title
        compared += len(plan)
        if not plan:
            quiet.add(c.rule.title)
    conn.close()
    # every counting rule but the PostgreSQL one (no such events here) had windows
    assert compared > 500 and quiet == {
        "PostgreSQL Authentication Failures in a Burst From One Source"}, quiet


def _brute_then_success(seed: int = 11) -> list[tuple[str, str, float]]:
    """Bursts of failures from a few sources, and logins before, inside, just after,
    long after (beyond 15 minutes) the bursts, from the same and other sources."""
    rnd = random.Random(seed)
    out = []
    t = 1_795_000_000.0
    for burst in range(40):
        ip = f"198.18.7.{rnd.randint(1, 5)}"
        for _ in range(rnd.randint(3, 14)):  # some bursts stay under the threshold
            t += rnd.choice([1.0, 5.0, 20.0])
            out.append(("sshd", f"Nov 22 08:00:01 dc-primary-db1 sshd[{burst}]: Failed "
                        f"password for root from {ip} port 4 ssh2", t))
        for offset in rnd.sample([-400.0, 0.0, 30.0, 600.0, 899.0, 901.0, 1500.0], 3):
            who = ip if rnd.random() < 0.7 else f"198.18.8.{rnd.randint(1, 3)}"
            out.append(("sshd", f"Nov 22 08:00:01 dc-primary-db1 sshd[{burst}]: Accepted "
                        f"password for root from {who} port 4 ssh2", t + offset))
        t += rnd.choice([60.0, 400.0, 2000.0])
    return out


def test_narrowed_temporal_matches_the_full_plan(tmp_path: Path) -> None:
    db = _store(tmp_path, _brute_then_success())
    ruleset = load_rules(REPO / "detections")
    temporal = [c for c in compile_rules(ruleset.rules) if c.narrowing is not None]
    assert [c.rule.title for c in temporal] == [
        "SSH Successful Login After Brute Force From the Same Source"]
    c = temporal[0]
    conn = sqlite3.connect(db)
    narrowed = run(conn, [c], Scope(), ruleset.lookups)
    full = run(conn, [dataclasses.replace(c, narrowing=None)], Scope(), ruleset.lookups)
    conn.close()

    def key(hits: list) -> set:  # type: ignore[type-arg]
        return {(h.entity, h.first_ts, h.last_ts, tuple(sorted(h.event_ids))) for h in hits}

    assert len(full) >= 5
    assert key(narrowed) == key(full)


def test_a_burst_exactly_one_timespan_long_fires_and_one_short_does_not(tmp_path: Path
                                                                        ) -> None:
    """The fast path drops a source whose events never come ``count`` within one
    timespan before it walks the windows; that shortcut must keep the edge cases: 10
    failures spread over exactly 5 minutes fire (both ends are in the window), 10 over
    5 minutes and a millisecond do not, nor do 9 at once."""
    lines = []
    t0 = 1_795_000_000.0

    def fail(ip: str, t: float, pid: int) -> tuple[str, str, float]:
        return ("sshd", f"Nov 22 08:00:01 dc-primary-db1 sshd[{pid}]: Failed password for "
                        f"root from {ip} port 4 ssh2", t)

    lines += [fail("198.18.7.1", t0 + k * 300.0 / 9, k) for k in range(10)]
    lines += [fail("198.18.7.2", t0 + k * 300.001 / 9, k) for k in range(10)]
    lines += [fail("198.18.7.3", t0, k) for k in range(9)]
    db = _store(tmp_path, lines)
    ruleset = load_rules(REPO / "detections")
    (c,) = [c for c in compile_rules(ruleset.rules)
            if c.counting is not None and c.rule.title == "SSH Brute Force From One Source"]
    conn = sqlite3.connect(db)
    fast = run(conn, [c], Scope(), ruleset.lookups)
    plan = run(conn, [dataclasses.replace(c, counting=None)], Scope(), ruleset.lookups)
    conn.close()
    assert {h.entity for h in fast} == {(("source.ip", "198.18.7.1"),)}
    assert len(fast[0].event_ids) == 10
    assert {(h.entity, h.last_ts, tuple(sorted(h.event_ids))) for h in fast} == \
        {(h.entity, h.last_ts, tuple(sorted(h.event_ids))) for h in plan}
