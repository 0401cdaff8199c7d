"""Turn ansible-runner's event stream into per-host results and progress updates.

Pure functions over the event dicts ansible-runner hands to ``event_handler`` (the same
shape as its ``job_events/*.json``), so the parsing is tested without running Ansible.
Results of tasks marked ``no_log`` arrive censored by Ansible itself; nothing here ever
looks for secrets, and only a task's ``msg`` (never its arguments) is kept.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from socctl.automation.result import HostRun, TaskError

MAX_MESSAGE = 600

_STAT_KEYS = {"ok": "ok", "changed": "changed", "failures": "failed", "dark": "unreachable",
              "skipped": "skipped", "rescued": "rescued", "ignored": "ignored"}


@dataclass(frozen=True, slots=True)
class Progress:
    """One line of live progress: a host finished a task (for the CLI's progress view)."""

    host: str
    task: str
    state: str  # ok, changed, failed, unreachable, skipped


def _message(res: Mapping[str, Any]) -> str:
    parts = []
    msg = res.get("msg")
    if msg:
        parts.append(str(msg))
    for key in ("stderr", "module_stderr"):
        value = res.get(key)
        if value and str(value).strip() not in parts:
            parts.append(str(value).strip())
    if not parts and res.get("rc") not in (None, 0):
        parts.append(f"exit status {res.get('rc')}")
    text = " | ".join(parts) or "failed (no message)"
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "…"


def _diff_text(diff: Mapping[str, Any]) -> str:
    if "prepared" in diff:
        return str(diff["prepared"])
    before, after = diff.get("before"), diff.get("after")
    if not isinstance(before, str) or not isinstance(after, str):
        return ""
    return "".join(difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True),
        fromfile=str(diff.get("before_header", "before")),
        tofile=str(diff.get("after_header", "after"))))


class EventCollector:
    """Accumulates one run's events; :meth:`handle` returns progress for the caller."""

    def __init__(self, hosts: dict[str, HostRun]) -> None:
        self.hosts = hosts
        self.stats_seen = False

    def _host(self, name: str) -> HostRun:
        if name not in self.hosts:
            self.hosts[name] = HostRun(host=name)
        return self.hosts[name]

    def handle(self, event: Mapping[str, Any]) -> Progress | None:
        kind = str(event.get("event", ""))
        data: Mapping[str, Any] = event.get("event_data") or {}
        if kind == "playbook_on_stats":
            self._stats(data)
            return None
        host = data.get("host")
        if not host or not kind.startswith("runner_on_"):
            return None
        task = str(data.get("task") or data.get("task_action") or "")
        res: Mapping[str, Any] = data.get("res") or {}
        run = self._host(str(host))
        run.ran = True
        if kind == "runner_on_unreachable":
            run.errors.append(TaskError(task, _message(res), unreachable=True))
            return Progress(run.host, task, "unreachable")
        if kind == "runner_on_failed":
            if data.get("ignore_errors"):
                return Progress(run.host, task, "ok")
            run.errors.append(TaskError(task, _message(res)))
            return Progress(run.host, task, "failed")
        if kind == "runner_on_skipped":
            return Progress(run.host, task, "skipped")
        if kind == "runner_on_ok":
            changed = bool(res.get("changed"))
            if changed:
                run.changed_tasks.append(task)
            diffs = res.get("diff")
            if changed and diffs:
                for diff in diffs if isinstance(diffs, list) else [diffs]:
                    text = _diff_text(diff) if isinstance(diff, Mapping) else ""
                    if text:
                        run.diffs.append({"task": task, "diff": text})
            return Progress(run.host, task, "changed" if changed else "ok")
        return None

    def _stats(self, data: Mapping[str, Any]) -> None:
        """Ansible's own totals are authoritative for the counts."""
        self.stats_seen = True
        for key, attr in _STAT_KEYS.items():
            for host, count in (data.get(key) or {}).items():
                run = self._host(str(host))
                run.ran = True
                setattr(run, attr, int(count))
