"""Ingest throughput and latency: syslog over TCP on loopback -> parse -> ECS -> embedded
store (through the durable spool), next to rsyslog receiving the same stream into a file.

A second socctl run sends at half the measured peak rate, so its latency is the pipeline's
(not a queue of a burst). Two in-process figures, pinned to the same CPU, show where the
collector's time goes: the processing stage alone (parse -> ECS -> enrichment -> id ->
row, nothing written) and the store alone (those rows inserted as the shipper does:
frames of 500, 8 per commit, background checkpoints, CPU of every thread counted).
Both receivers are pinned to the same single CPU (taskset); this process (the sender and
the watcher that polls the store) is kept off that CPU, so it takes none of its time.
Throughput = events / (first byte sent -> last event committed). Latency of event k =
first time the store (rsyslog: the file) holds k events minus the time k was sent,
sampled every 2 ms; p50/p99 over all events. Target (issue 6): >= 60,000 events/s on
one core into the embedded store.

Run: .venv/bin/python benchmarks/ingest.py [events] [cpu]
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
FRAME = 500  # events per spool frame (the collector's default)
FRAMES_PER_COMMIT = 8  # the shipper's read of up to 8 frames per commit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def messages(n: int, rate: float = 0) -> list[bytes]:
    """A realistic mix: sshd failures (routed, enriched, botnet-checked), FRR, Postfix.
    All stamped 07:43:17, or from then on at ``rate`` events per second."""
    out = []
    stamp = "Nov 22 07:43:17"
    for i in range(n):
        if rate:
            sec = 27797 + int(i / rate)  # 07:43:17
            stamp = f"Nov 22 {sec // 3600 % 24:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}"
        k = i % 4
        if k == 0:
            msg = (f"<38>{stamp} p01-rtr1 sshd[812]: Failed password for invalid user "
                   f"u{i} from 203.0.113.{i % 250} port {1024 + i % 60000} ssh2")
        elif k == 1:
            msg = (f"<38>{stamp} dc-primary-log1 sshd[813]: Accepted publickey for "
                   f"root from 198.18.0.1 port {1024 + i % 60000} ssh2: ED25519 SHA256:x{i}")
        elif k == 2:
            msg = (f"<30>{stamp} p79-rtr1 ospfd[99]: [AZ6WF-7E8WC] AdjChg: Nbr "
                   f"198.19.255.{i % 200}(x) on wan1: Full -> Deleted (InactivityTimer) #{i}")
        else:
            msg = (f"<22>{stamp} mail1 postfix/smtpd[7]: NOQUEUE: reject: RCPT from "
                   f"unknown[198.51.100.{i % 250}]: 554 5.7.1 blocked; from=<a{i}@x.example> "
                   f"to=<b@vss.gov.vn> proto=ESMTP helo=<x>")
        out.append(msg.encode() + b"\n")
    return out


def send(port: int, lines: list[bytes], sent_at: list[float], rate: float = 0) -> float:
    """Send in 64 KiB writes (paced: 50-event writes at ``rate`` events/s); sent_at[k] =
    time event k left. Returns the start time."""
    chunk = 65536 if not rate else 50 * 140
    with socket.create_connection(("127.0.0.1", port)) as s:
        start = time.perf_counter()
        buf: list[bytes] = []
        size = 0
        for k, line in enumerate(lines):
            buf.append(line)
            size += len(line)
            if size >= chunk:
                if rate:
                    wait = start + k / rate - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                now = time.perf_counter()
                for j in range(k - len(buf) + 1, k + 1):
                    sent_at[j] = now
                s.sendall(b"".join(buf))
                buf, size = [], 0
        if buf:
            now = time.perf_counter()
            for j in range(len(lines) - len(buf), len(lines)):
                sent_at[j] = now
            s.sendall(b"".join(buf))
    return start


def watch(count: Callable[[], int], total: int, timeout: float) -> list[tuple[float, int]]:
    seen: list[tuple[float, int]] = []
    deadline = time.perf_counter() + timeout
    last = -1
    while time.perf_counter() < deadline:
        n = count()
        if n != last:
            seen.append((time.perf_counter(), n))
            last = n
        if n >= total:
            break
        time.sleep(0.002)
    return seen


def figures(name: str, total: int, start: float, sent_at: list[float],
            seen: list[tuple[float, int]]) -> dict[str, float]:
    done = seen[-1][0] if seen and seen[-1][1] >= total else float("nan")
    lat: list[float] = []
    idx = 0
    for k in range(total):
        while idx < len(seen) and seen[idx][1] < k + 1:
            idx += 1
        if idx < len(seen):
            lat.append(seen[idx][0] - sent_at[k])
    lat.sort()

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")

    rate = total / (done - start) if math.isfinite(done) else float("nan")
    return {"events": total, "seconds": done - start, "rate": rate,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "stored": seen[-1][1] if seen else 0}


def project(work: Path, port: int) -> dict[str, str]:
    """A collector project like production's (national inventory, botnet list, one TCP
    syslog source); returns the environment that points socctl at it."""
    folder = work / "project" / "collectors"
    (folder / "sources").mkdir(parents=True)
    shutil.copy(REPO / "collectors" / "botnet_ips.txt", folder)
    (folder / "collect.yaml").write_text(yaml.safe_dump({
        "enrichment": {"inventory_profile": "national", "botnet_list": "botnet_ips.txt"}}))
    (folder / "sources" / "tcp.yaml").write_text(yaml.safe_dump({
        "name": "tcp", "source": {"type": "syslog_tcp", "listen": f"127.0.0.1:{port}"},
        "parser": {"dataset": "syslog"}}))
    return {**os.environ, "SOCCTL_PROJECT_ROOT": str(work / "project"),
            "SOCCTL_INVENTORY": str(REPO / "inventory"), "SOCCTL_STATE_DIR": str(work / "state")}


def row_maker() -> tuple[Path, Callable[[str], tuple[Any, ...]]]:
    """In a child pointed at :func:`project`: its state directory, and line -> row as the
    collector's TCP source makes it (processor, enrichment, occurrence ids)."""
    from socctl.collector.definition import load_collection
    from socctl.collector.ecs import OccurrenceIds
    from socctl.collector.pipeline import Processor, build_enricher, collectors_folder
    from socctl.config import load_settings

    settings = load_settings()
    collection = load_collection(collectors_folder(settings))
    processor = Processor(collection.get("tcp"), build_enricher(settings, collection))
    ids = OccurrenceIds("tcp|127.0.0.1")
    now = time.time()
    return settings.state_dir, lambda line: processor.row(
        line, now, ids.next("syslog", line), "127.0.0.1")


def commits(rows: list[tuple[Any, ...]]) -> list[list[list[tuple[Any, ...]]]]:
    """Rows as the shipper writes them: frames of 500, 8 frames per commit."""
    frames = [rows[k:k + FRAME] for k in range(0, len(rows), FRAME)]
    return [frames[k:k + FRAMES_PER_COMMIT] for k in range(0, len(frames), FRAMES_PER_COMMIT)]


def stages(total: int) -> dict[str, float]:
    """Run inside the pinned child: events/s of the processing stage and of the store."""
    import gc

    from socctl.store.sqlite import SqliteStore

    state, row = row_maker()
    decoded = [m.rstrip(b"\n").decode() for m in messages(total)]
    gc.collect()
    gc.freeze()  # as `collect run` does
    started = time.process_time()
    rows = [row(line) for line in decoded]
    processing = time.process_time() - started
    store = SqliteStore(state / "stages.db", background_checkpoint=True)
    started = time.process_time()
    for batch in commits(rows):
        store.insert_batches(batch)
    store.close()
    storing = time.process_time() - started
    return {"processing": total / processing, "store": total / storing}


def pinned_child(script: str, cpu: str, env: dict[str, str], *args: str) -> Any:
    """Run ``script *args`` pinned to ``cpu`` in ``env``; what it printed, as JSON."""
    out = subprocess.run(["taskset", "-c", cpu, sys.executable, script, *args], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def run_stages(total: int, cpu: str, work: Path) -> dict[str, float]:
    figures: dict[str, float] = pinned_child(__file__, cpu, project(work, free_port()),
                                             "--stages", str(total))
    return figures


def run_socctl(lines: list[bytes], cpu: str, work: Path, rate: float = 0) -> dict[str, float]:
    port = free_port()
    env = project(work, port)
    proc = subprocess.Popen(["taskset", "-c", cpu, sys.executable, "-m", "socctl", "collect",
                             "run", "--no-status"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        proc.stderr.readline()  # "collecting: ..."
        time.sleep(0.5)
        db_path = work / "state" / "events.db"
        while not db_path.exists():
            time.sleep(0.05)
        db = sqlite3.connect(db_path, timeout=30, check_same_thread=False)
        sent_at = [0.0] * len(lines)
        seen: list[tuple[float, int]] = []
        watcher = threading.Thread(target=lambda: seen.extend(watch(
            lambda: int(db.execute("SELECT coalesce(max(rowid), 0) FROM events").fetchone()[0]),
            len(lines), 600)))
        watcher.start()
        start = send(port, lines, sent_at, rate)
        watcher.join()
        return figures("socctl", len(lines), start, sent_at, seen)
    finally:
        proc.terminate()
        proc.wait(30)


def run_rsyslog(lines: list[bytes], cpu: str, work: Path) -> dict[str, float] | None:
    if not shutil.which("rsyslogd"):
        return None
    port = free_port()
    out = work / "rsyslog.out"
    conf = work / "rsyslog.conf"
    conf.write_text(f"""
global(workDirectory="{work}")
module(load="imtcp")
input(type="imtcp" port="{port}" address="127.0.0.1")
*.* action(type="omfile" file="{out}" template="RSYSLOG_FileFormat" asyncWriting="off")
""")
    proc = subprocess.Popen(["taskset", "-c", cpu, "rsyslogd", "-n", "-f", str(conf),
                             "-i", str(work / "rsyslog.pid")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        state = {"pos": 0, "n": 0}

        def count() -> int:
            if not out.exists():
                return 0
            with out.open("rb") as fh:
                fh.seek(state["pos"])
                data = fh.read()
            state["pos"] += len(data)
            state["n"] += data.count(b"\n")
            return state["n"]

        sent_at = [0.0] * len(lines)
        seen: list[tuple[float, int]] = []
        watcher = threading.Thread(target=lambda: seen.extend(watch(count, len(lines), 600)))
        watcher.start()
        start = send(port, lines, sent_at)
        watcher.join()
        return figures("rsyslog", len(lines), start, sent_at, seen)
    finally:
        proc.terminate()
        proc.wait(30)


def cpu_list(spec: str) -> set[int]:
    """taskset's list form (``1``, ``0,2``, ``2-3``) as CPU numbers."""
    cpus: set[int] = set()
    for part in spec.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def keep_off(cpu: str) -> str:
    """Move this process to the CPUs that are not the receivers'; which ones, for the
    header (without another CPU, the sender shares the receivers' and says so)."""
    others = os.sched_getaffinity(0) - cpu_list(cpu)
    if not others:
        return "the sender shares it (no other CPU)"
    os.sched_setaffinity(0, others)
    return f"the sender on CPU {','.join(map(str, sorted(others)))}"


def main(total: int, cpu: str) -> None:
    lines = messages(total)
    sender = keep_off(cpu)
    print(f"{total} events, {sum(map(len, lines)) / total:.0f} bytes each on average; "
          f"receivers pinned to CPU {cpu} of {os.cpu_count()}, {sender}; "
          f"load average {os.getloadavg()[0]:.2f} (machine shared)")
    results: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="socctl-ingest-") as tmp:
        results.append(("socctl -> SQLite (spool, ECS, enrichment, indexes)",
                        run_socctl(lines, cpu, Path(tmp) / "socctl")))
        rs = run_rsyslog(lines, cpu, Path(tmp))
        if rs:
            results.append(("rsyslog imtcp -> file (the ceiling)", rs))
        parts = run_stages(total, cpu, Path(tmp) / "stages")
        paced = 0.5 * results[0][1]["rate"]
        if math.isfinite(paced):
            part = lines[:max(1000, int(paced * 5))]  # about 5 s at half the peak rate
            results.append((f"socctl at {paced:,.0f}/s (half its peak): latency",
                            run_socctl(part, cpu, Path(tmp) / "paced", paced)))
    print(f"{'receiver':52} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'stored':>8}")
    for name, r in results:
        print(f"{name:52} {r['rate']:>10,.0f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
              f"{r['stored']:>8.0f}")
    print(f"{'socctl stages alone, same CPU:':52} {'events/s':>10}")
    print(f"{'  parse -> ECS -> enrichment -> row':52} {parts['processing']:>10,.0f}")
    print(f"{'  SQLite insert of those rows (indexes, commits)':52} {parts['store']:>10,.0f}")
    bound = 1 / (1 / parts["processing"] + 1 / parts["store"])
    print(f"{'  both in series, nothing else (framing, spool)':52} {bound:>10,.0f}")
    print("target: >= 60,000 events/s on one core into the embedded store")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--stages"]:
        print(json.dumps(stages(int(sys.argv[2]))))
        sys.exit(0)
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000,
         sys.argv[2] if len(sys.argv) > 2 else "1")
