"""A collector under test: a throw-away project (collectors/ content) and state directory,
and ``socctl collect run`` as a real subprocess that can be stopped or killed -9."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Harness:
    def __init__(self, root: Path, sources: list[dict[str, Any]],
                 collect: dict[str, Any] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.root = root
        self.state = root / "state"
        folder = root / "project" / "collectors"
        (folder / "sources").mkdir(parents=True)
        (folder / "botnet.txt").write_text("203.0.113.0/25\n", encoding="utf-8")
        settings = {"enrichment": {"inventory_profile": "lab", "botnet_list": "botnet.txt"},
                    **(collect or {})}
        (folder / "collect.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
        for source in sources:
            (folder / "sources" / f"{source['name']}.yaml").write_text(
                yaml.safe_dump(source), encoding="utf-8")
        self.env = {**os.environ, "SOCCTL_PROJECT_ROOT": str(root / "project"),
                    "SOCCTL_INVENTORY": str(REPO / "inventory"),
                    "SOCCTL_STATE_DIR": str(self.state), **(env or {})}
        self.proc: subprocess.Popen[str] | None = None

    def socctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "socctl", *args], capture_output=True,
                              text=True, env=self.env, timeout=60)

    def start(self) -> None:
        log = (self.root / "collector.log").open("a")
        self.proc = subprocess.Popen([sys.executable, "-m", "socctl", "collect", "run",
                                      "--no-status"], env=self.env, stdout=log, stderr=log,
                                     text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("collector exited: " + self.log())
            stats = self.state / "collect" / "stats.json"
            if stats.exists() and json.loads(stats.read_text()).get("pid") == self.proc.pid:
                return
            time.sleep(0.1)
        raise AssertionError("collector did not start: " + self.log())

    def log(self) -> str:
        return (self.root / "collector.log").read_text(errors="replace")

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(30) == 0, self.log()
        self.proc = None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.state / "events.db", timeout=30)

    def count(self, where: str = "1") -> int:
        if not (self.state / "events.db").exists():
            return 0
        with self.db() as db:
            return int(db.execute(f"SELECT count(*) FROM events WHERE {where}").fetchone()[0])

    def dead(self) -> list[tuple[str, bytes]]:
        with self.db() as db:
            return list(db.execute("SELECT reason, raw FROM dead_letter ORDER BY seq"))

    def wait_count(self, n: int, where: str = "1", timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        got = self.count(where)
        while got < n and time.monotonic() < deadline:
            time.sleep(0.2)
            got = self.count(where)
        return got

    def stats(self) -> dict[str, Any]:
        out = self.socctl("-o", "json", "collect", "stats")
        assert out.returncode == 0, out.stderr
        data: dict[str, Any] = json.loads(out.stdout)
        return data

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
