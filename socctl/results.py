"""Results as data: operations return these and never print.

A failing host is stored on its :class:`HostResult` and the run goes on; the CLI decides
how to render it and which exit code follows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class HostResult:
    host: str
    changed: bool = False
    failed: bool = False
    diff: str = ""
    message: str = ""
    exception: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class RunResult:
    """Everything one operation did, host by host."""

    operation: str
    hosts: list[HostResult] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(h.failed for h in self.hosts)

    @property
    def changed(self) -> bool:
        return any(h.changed for h in self.hosts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "failed": self.failed,
            "changed": self.changed,
            "hosts": [h.to_dict() for h in self.hosts],
        }
