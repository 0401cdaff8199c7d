"""Config backups in a git repository under the state directory.

Configs are stored normalised (no timestamps, uptime or counters), one file per device
(``<site>/<device>.cfg``), so ``git log -p`` shows only real changes. One commit per run
with a message naming what changed; a run that changed nothing makes no commit. The
documented policy backs up important equipment monthly, on the last day of the month:
:func:`is_policy_day` lets a daily timer run ``socctl net backup --policy-day-only``.
"""

from __future__ import annotations

import calendar
import datetime as dt
import subprocess
from pathlib import Path

from socctl.errors import Location, ToolError
from socctl.inventory.model import Inventory
from socctl.results import RunResult
from socctl.text import some


def repo_path(state_dir: Path) -> Path:
    return state_dir / "network" / "backups"


def is_policy_day(day: dt.date) -> bool:
    """The last day of the month (VSS backup policy for equipment configuration)."""
    return day.day == calendar.monthrange(day.year, day.month)[1]


def _git(repo: Path, *args: str) -> str:
    try:
        result = subprocess.run(
            ["git", "-C", str(repo), "-c", "user.name=socctl", "-c",
             "user.email=socctl@localhost", "-c", "commit.gpgsign=false", *args],
            capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError as exc:
        raise ToolError("git not found", hint="apt-get install git") from exc
    if result.returncode != 0:
        raise ToolError(f"git {args[0]} failed: {result.stderr.strip()}", Location.of(repo))
    return result.stdout


def store(state_dir: Path, inventory: Inventory, fetched: RunResult,
          today: dt.date | None = None) -> dict[str, object]:
    """Write the fetched configs and commit them; returns what was committed (or not)."""
    repo = repo_path(state_dir)
    repo.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not (repo / ".git").exists():
        _git(repo, "init", "-q", "-b", "main")
    for host in fetched.hosts:
        if host.failed or "config" not in host.data:
            continue
        site = inventory.devices[host.host].site
        path = repo / site / f"{host.host}.cfg"
        path.parent.mkdir(exist_ok=True)
        path.write_text(str(host.data.pop("config")), encoding="utf-8")
        host.data["path"] = str(path.relative_to(repo))
    _git(repo, "add", "-A")
    status = _git(repo, "status", "--porcelain").splitlines()
    changed = sorted({Path(line[3:].strip()).stem for line in status})
    for host in fetched.hosts:
        host.changed = host.host in changed
    failed = [h.host for h in fetched.hosts if h.failed]
    summary: dict[str, object] = {"repository": str(repo), "changed": changed,
                                  "failed": failed, "commit": None}
    if not changed:
        return summary
    day = today or dt.date.today()
    title = f"backup {day.isoformat()}: {len(changed)} device(s) changed: {some(changed)}"
    body = [f"{len(fetched.hosts) - len(failed)} device(s) fetched, {len(failed)} failed."]
    if failed:
        body.append("Not reached (previous backup kept): " + ", ".join(failed))
    if is_policy_day(day):
        body.append("Monthly backup (policy: last day of the month).")
    _git(repo, "commit", "-q", "-m", title, "-m", "\n".join(body))
    summary["commit"] = _git(repo, "rev-parse", "HEAD").strip()
    summary["message"] = title
    return summary


def commits(state_dir: Path) -> list[str]:
    repo = repo_path(state_dir)
    if not (repo / ".git").exists():
        return []
    try:
        return _git(repo, "log", "--format=%H %s").splitlines()
    except ToolError:
        return []  # an empty repository has no log yet
