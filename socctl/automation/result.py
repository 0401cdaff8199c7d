"""What an Ansible run did, host by host, as data (the CLI renders it; nothing prints here).

Counts come from Ansible's own end-of-play statistics; the task-level events add what the
statistics lack: the failing task and its message, the diffs, and live progress.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class HostStatus(StrEnum):
    """One word per host for the summary, worst first when several apply."""

    UNREACHABLE = "unreachable"
    FAILED = "failed"
    NOT_RUN = "not run"  # a wave was never started: the failure budget stopped the rollout
    CHANGED = "changed"
    OK = "ok"


@dataclass(slots=True)
class TaskError:
    """A task that failed on a host, or the host being unreachable."""

    task: str
    message: str
    unreachable: bool = False


@dataclass(slots=True)
class HostRun:
    host: str
    wave: int | None = None
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0
    ran: bool = False
    errors: list[TaskError] = field(default_factory=list)
    changed_tasks: list[str] = field(default_factory=list)
    diffs: list[dict[str, str]] = field(default_factory=list)

    @property
    def status(self) -> HostStatus:
        if self.unreachable:
            return HostStatus.UNREACHABLE
        if self.failed:
            return HostStatus.FAILED
        if not self.ran:
            return HostStatus.NOT_RUN
        if self.changed:
            return HostStatus.CHANGED
        return HostStatus.OK

    @property
    def is_failure(self) -> bool:
        return self.status in (HostStatus.FAILED, HostStatus.UNREACHABLE)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data


@dataclass(slots=True)
class Wave:
    number: int
    hosts: list[str]
    canary: bool = False
    rc: int | None = None
    seconds: float = 0.0


@dataclass(slots=True)
class ProvisionResult:
    """One ``socctl provision``: what was asked, what ran, and how each host ended."""

    playbook: str
    inventory: str
    check: bool
    diff: bool
    selection: dict[str, list[str]]
    max_fail_percent: float
    waves: list[Wave] = field(default_factory=list)
    hosts: dict[str, HostRun] = field(default_factory=dict)
    stopped: str | None = None
    user: str = ""
    started: str = ""
    finished: str = ""
    seconds: float = 0.0
    record: str | None = None
    unmanaged: list[str] = field(default_factory=list)
    """Selected hosts no play of the playbook targets: not run, not in any wave."""

    @property
    def failures(self) -> list[HostRun]:
        return [h for h in self.hosts.values() if h.is_failure]

    @property
    def failed(self) -> bool:
        return bool(self.failures) or self.stopped is not None

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in HostStatus}
        for h in self.hosts.values():
            out[h.status.value] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "playbook": self.playbook,
            "inventory": self.inventory,
            "check": self.check,
            "diff": self.diff,
            "selection": self.selection,
            "max_fail_percent": self.max_fail_percent,
            "user": self.user,
            "started": self.started,
            "finished": self.finished,
            "seconds": round(self.seconds, 2),
            "failed": self.failed,
            "stopped": self.stopped,
            "counts": self.counts(),
            "waves": [asdict(w) for w in self.waves],
            "hosts": {name: h.to_dict() for name, h in self.hosts.items()},
            "record": self.record,
            "unmanaged": self.unmanaged,
        }
