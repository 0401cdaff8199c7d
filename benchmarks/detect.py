"""Detection engine over 1,000,000 stored events, side by side with Zircolite.

socctl: raw log lines -> collector parser -> SQLite store (load events/s), then every rule
(rules x events / s for plain rules, seconds per correlation rule), peak memory
(private, and RSS with the store's mmap'd pages).
Zircolite (public, Python + SQLite, not on PyPI) gets the SAME events (flattened with the
store's column names, so its field names match) and the SAME rules (converted by our
pipeline to its JSON format) in its own venv under the cache dir; it is never vendored.

Targets (issue 7): >= 4x Zircolite's rules x events/s, <= 3 s per correlation per 1M
events, < 1 GB peak memory.

Run: .venv/bin/python benchmarks/detect.py [--events N] [--no-zircolite]
      (Zircolite source: SOCCTL_ZIRCOLITE_SRC=<checkout> or a git mirror; see --help)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "socctl-bench"

BENIGN_URLS = ["/", "/tra-cuu?so_the={n}", "/static/app.{n}.js", "/api/cards/{n}",
               "/search?q=union+station", "/tra-cuu?ho_ten=O%27Brien", "/login?next=/home",
               "/img/logo.png", "/danh-gia/evaluation-report?year=2026"]
ATTACK_URLS = ["/tra-cuu?so_the=1%20UNION%20ALL%20SELECT%20NULL--", "/q?x=%3Cscript%3E",
               "/download?file=../../etc/passwd", "/ping?h=1;id", "/hello?n={{{{7*7}}}}",
               "/FCKeditor/editor/filemanager/connectors/test.html"]


def synth_lines(n: int, seed: int = 7) -> list[tuple[str, str, float]]:
    """(dataset, line, ts): a realistic mix, with a sprinkle of attacks and scans."""
    rnd = random.Random(seed)
    t0 = 1_795_000_000.0
    out = []
    for i in range(n):
        ts = t0 + i * 0.05
        r = rnd.random()
        ip = f"198.19.{rnd.randint(128, 129)}.{rnd.randint(1, 254)}"
        if rnd.random() < 0.02:
            ip = f"198.18.7.{rnd.randint(1, 20)}"
        if r < 0.5:
            url = rnd.choice(ATTACK_URLS if rnd.random() < 0.01 else BENIGN_URLS)
            status = 404 if rnd.random() < 0.05 else 200
            ua = "sqlmap/1.7.2" if rnd.random() < 0.002 else "Mozilla/5.0 (X11) Firefox/120.0"
            out.append(("nginx.access", f'{ip} - - [22/Nov/2026:08:00:01 +0000] "GET '
                        f'{url.format(n=i % 9973)} HTTP/1.1" {status} 512 "-" "{ua}"', ts))
        elif r < 0.75:
            action = "DROP" if rnd.random() < 0.6 else "ACCEPT"
            out.append(("netfilter", f"Nov 22 08:00:01 dc-primary-wrtr1 kernel: {action} "
                        f"IN=eth1 OUT= SRC={ip} DST=198.19.128.{rnd.randint(1, 40)} LEN=44 "
                        f"PROTO=TCP SPT={rnd.randint(1024, 65535)} "
                        f"DPT={rnd.choice([22, 80, 443, 5432, rnd.randint(1, 9999)])} SYN", ts))
        elif r < 0.9:
            user = rnd.choice(["alice", "bob", "root", "admin", "nguyenvana"])
            verb = rnd.choice(["Failed password for", "Accepted publickey for",
                               "Failed password for invalid user", "Accepted password for"])
            out.append(("sshd", f"Nov 22 08:00:01 dc-primary-db1 sshd[{i % 30000}]: {verb} "
                        f"{user} from {ip} port {rnd.randint(1024, 65535)} ssh2", ts))
        elif r < 0.95:
            msg = rnd.choice(['FATAL:  password authentication failed for user "app"',
                              "LOG:  connection authorized: user=postgres database=postgres",
                              'ERROR:  duplicate key value violates unique constraint "pk"'])
            out.append(("postgresql", f"2026-11-22 08:00:01.123 UTC [{i % 30000}] app@bhxh "
                        f"{ip} {msg}", ts))
        elif r < 0.98:
            out.append(("syslog", "Nov 22 08:00:01 dc-primary-db1 sudo:    alice : TTY=pts/0 "
                        "; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id", ts))
        else:
            out.append(("clamav", "Nov 22 08:00:01 mail1 clamd[987]: /var/lib/amavis/tmp/p"
                        f"{i}: {rnd.choice(['OK', 'Win.Trojan.Agent-1 FOUND'])}", ts))
    return out


def load_store(path: Path, lines: list[tuple[str, str, float]]) -> tuple[float, int]:
    from socctl.collector.ecs import event_id
    from socctl.collector.parse import parse_event
    from socctl.detection.testing import parser_options
    from socctl.store.sqlite import SqliteStore, to_row

    store = SqliteStore(path)
    start = time.perf_counter()
    batch: list[tuple[Any, ...]] = []
    stored = 0
    for dataset, line, ts in lines:
        _, ev = parse_event(dataset, line, ts, parser_options().get(dataset))
        batch.append(to_row(event_id(dataset, f"{ts:.6f}", line), ts, ts, ev))
        if len(batch) >= 5000:
            stored += store.insert_rows(batch)
            batch = []
    stored += store.insert_rows(batch)
    seconds = time.perf_counter() - start
    store.close()
    return seconds, stored


class MemoryPeak:
    """Peak private (RssAnon) and file-backed (RssFile) memory of this process, sampled
    every 20 ms: ru_maxrss alone counts the mmap'd store pages as the engine's memory."""

    def __init__(self) -> None:
        self.anon_mb = 0.0
        self.file_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _read(self) -> None:
        fields = dict(line.split(":", 1) for line in
                      Path("/proc/self/status").read_text().splitlines() if ":" in line)
        self.anon_mb = max(self.anon_mb, int(fields["RssAnon"].split()[0]) / 1024)
        self.file_mb = max(self.file_mb, int(fields["RssFile"].split()[0]) / 1024)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self._read()

    def __enter__(self) -> MemoryPeak:
        self._read()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._read()


def run_socctl(path: Path) -> dict[str, Any]:
    from socctl.detection.engine import Scope, compile_rules, run
    from socctl.detection.loader import load_rules

    ruleset = load_rules(REPO / "detections")
    compiled = compile_rules(ruleset.rules)
    conn = sqlite3.connect(path)
    n = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    plain = [c for c in compiled if c.sql is not None]
    # plain rules run together, as `socctl detect run` runs them (one scan per logsource)
    start = time.perf_counter()
    found = run(conn, plain, Scope(), ruleset.lookups)
    plain_s = time.perf_counter() - start
    per_rule: dict[str, int] = {c.rule.title: 0 for c in plain}
    for h in found:
        per_rule[next(c.rule.title for c in plain if c.rule.id == h.rule_id)] += 1
    hits = len(found)
    corr: dict[str, float] = {}
    for c in compiled:
        if c.plan is None:
            continue
        start = time.perf_counter()
        hits += len(run(conn, [c], Scope(), ruleset.lookups))
        corr[c.rule.title] = time.perf_counter() - start
    conn.close()
    return {"events": n, "plain_rules": len(plain), "plain_seconds": plain_s,
            "rules_x_events_per_s": len(plain) * n / plain_s if plain_s else 0.0,
            "correlations": corr, "hits": hits, "per_rule": per_rule}


def zircolite_rules(out: Path) -> int:
    """Our rules in Zircolite's JSON format, for its table "logs" (same column names)."""
    from socctl.detection.convert import _referenced_only
    from socctl.detection.engine import _backend, _collection
    from socctl.detection.loader import load_rules


    ruleset = load_rules(REPO / "detections")
    plain = [r for r in ruleset.rules
             if r.kind == "event" and not _referenced_only(r, ruleset.rules)]
    rules = json.loads(_backend("logs").convert(_collection(plain), "zircolite"))
    for rule in rules:
        # Zircolite skips rules whose logsource does not match the log type it detected;
        # the dataset condition is already in the SQL, so the logsource hint goes.
        rule.pop("logsource", None)
        rule["rule"] = [zircolite_columns(sql) for sql in rule["rule"]]
    out.write_text(json.dumps(rules))
    return len(rules)


_SQL_LITERAL = re.compile(r"('(?:[^']|'')*')")


def zircolite_columns(sql: str) -> str:
    """Zircolite drops underscores from field names when it builds its table
    (``user_name`` becomes ``username``): rename the store's columns in the SQL, outside
    string literals, or its rules silently match nothing (found: 1 of 17 rules matched)."""
    from socctl.store.sqlite import COLUMN_NAMES

    names = sorted((c for c in COLUMN_NAMES if "_" in c), key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    parts = _SQL_LITERAL.split(sql)
    return "".join(part if i % 2 else pattern.sub(lambda m: m[1].replace("_", ""), part)
                   for i, part in enumerate(parts))


def _has_logs_table(path: Path) -> bool:
    try:
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'logs'"
                                ).fetchone() is not None
    except sqlite3.Error:
        return False


def export_jsonl(db: Path, out: Path) -> None:
    conn = sqlite3.connect(db)
    cur = conn.execute("SELECT * FROM events")
    cols = [d[0] for d in cur.description]
    with out.open("w", encoding="utf-8") as fh:
        for row in cur:
            fh.write(json.dumps({c: v for c, v in zip(cols, row, strict=True)
                                 if v is not None and c != "doc"}) + "\n")
    conn.close()


def zircolite_env(src: Path) -> Path:
    """Zircolite's own venv in the cache dir (its requirements), never in the repo."""
    env = CACHE / "zircolite-venv"
    if not (env / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
        subprocess.run([str(env / "bin" / "pip"), "install", "-q", "-r",
                        str(src / "requirements.txt")], check=True)
    return env / "bin" / "python"


def zircolite_src() -> Path | None:
    explicit = os.environ.get("SOCCTL_ZIRCOLITE_SRC")
    if explicit:
        return Path(explicit)
    target = CACHE / "zircolite-src"
    if (target / "zircolite.py").exists():
        return target
    mirror = Path("/work/.mirror/wagga40+Zircolite/repo")
    if mirror.exists():
        target.mkdir(parents=True, exist_ok=True)
        # only what runs (the mirror may lack large assets such as the GUI archive)
        archive = subprocess.run(["git", "--git-dir", str(mirror), "archive", "HEAD",
                                  "zircolite.py", "zircolite", "requirements.txt", "config",
                                  "templates"], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
        return target
    return None


def run_zircolite(db: Path, work: Path) -> dict[str, Any] | None:
    src = zircolite_src()
    if src is None:
        print("zircolite: no source (set SOCCTL_ZIRCOLITE_SRC to a checkout)")
        return None
    python = zircolite_env(src)
    rules = work / "rules.json"
    n_rules = zircolite_rules(rules)
    events = work / "events.jsonl"
    export_jsonl(db, events)
    saved = work / "zircolite.db"

    def zircolite(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
        start = time.perf_counter()
        proc = subprocess.run([str(python), str(src / "zircolite.py"), *args,
                               "--ruleset", str(rules), "--no-parallel",
                               "-o", str(work / "zircolite-out.json")],
                              cwd=src, capture_output=True, text=True, check=False)
        return time.perf_counter() - start, proc

    # 1: JSON events -> its table (saved) + rules; 2: the saved table + rules only, so
    # its rule time is measured apart from its load, as socctl's is.
    total, proc = zircolite("--events", str(events), "--jsononly", "--dbfile", str(saved))
    if proc.returncode != 0:
        print("zircolite failed:", proc.stderr[-800:])
        return None
    # it writes one database per input file: <stem>_<events file name>.db
    written = [p for p in work.glob(f"{saved.stem}*.db")
               if _has_logs_table(p)]
    if not written:
        print("zircolite saved no database with a logs table: rule time not measured")
        return None
    out = work / "zircolite-out.json"
    out.unlink(missing_ok=True)  # the matches compared below must be the second run's
    rules_only, proc2 = zircolite("--events", str(written[0]), "--db-input")
    if proc2.returncode != 0 or not out.exists():
        print("zircolite (saved database) failed:", (proc2.stdout + proc2.stderr)[-800:])
        return None
    matched: dict[str, int] = {}
    if out.exists():
        for item in json.loads(out.read_text()):
            matched[item["title"]] = int(item.get("count", 0))
    return {"rules": n_rules, "total_seconds": total, "rules_seconds": rules_only,
            "log": proc.stdout + proc.stderr + proc2.stdout + proc2.stderr,
            "per_rule": matched}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--no-zircolite", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="socctl-bench-") as tmp:
        work = Path(tmp)
        db = work / "events.db"
        lines = synth_lines(args.events)
        load_s, stored = load_store(db, lines)
        del lines
        print(f"socctl load: {stored} events in {load_s:.1f} s = {stored / load_s:,.0f} "
              "events/s (parse + store)")
        with MemoryPeak() as mem:
            res = run_socctl(db)
        print(f"socctl plain rules: {res['plain_rules']} rules over {res['events']:,} events "
              f"in {res['plain_seconds']:.2f} s = {res['rules_x_events_per_s']:,.0f} "
              "rules x events/s")
        for title, secs in res["correlations"].items():
            print(f"socctl correlation: {secs:6.2f} s  {title}")
        worst = max(res["correlations"].values(), default=0.0)
        print(f"socctl worst correlation: {worst:.2f} s per {res['events']:,} events "
              "(target <= 3 s per 1M)")
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"socctl peak private memory (RssAnon) while detecting: {mem.anon_mb:.0f} MB "
              "(target < 1024 MB)")
        print(f"socctl peak RSS: {rss_mb:.0f} MB, of which up to {mem.file_mb:.0f} MB are the "
              "store file's pages mapped by SQLite's mmap (page cache: the kernel caches the "
              "same pages when they are read(), and reclaims them)")
        if not args.no_zircolite:
            z = run_zircolite(db, work)
            if z is not None:
                load_s = max(z["total_seconds"] - z["rules_seconds"], 1e-9)
                rate = z["rules"] * res["events"] / z["rules_seconds"]
                print(f"zircolite load: {res['events'] / load_s:,.0f} events/s "
                      f"(JSON -> its table, {load_s:.1f} s)")
                print(f"zircolite rules: {z['rules']} rules from its saved table in "
                      f"{z['rules_seconds']:.1f} s (database open included) = {rate:,.0f} "
                      "rules x events/s")
                print(f"socctl / zircolite (rules x events/s): "
                      f"{res['rules_x_events_per_s'] / rate:.2f}x (target >= 4x)")
                same = all(z["per_rule"].get(t, 0) == n for t, n in res["per_rule"].items())
                print("same matches per rule as socctl (plain rules): "
                      f"{'yes' if same else 'NO: the speed ratio is not comparable'}; "
                      f"socctl: {res['per_rule']}; zircolite: {z['per_rule']}")
                print("zircolite correlation rules: not compared (these rules use "
                      "pySigma correlation plans; see README)")
                (CACHE / "zircolite-last.log").parent.mkdir(parents=True, exist_ok=True)
                (CACHE / "zircolite-last.log").write_text(z["log"])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
