"""The sink interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from socctl.errors import Problem, SocctlError
from socctl.store.sqlite import Row


class SinkUnavailable(SocctlError):
    """The sink cannot take the batch now (down, overloaded): retry later, keep spooled."""


@dataclass
class SinkResult:
    stored: int = 0
    duplicates: int = 0
    rejected: list[tuple[Row, str]] = field(default_factory=list)


@dataclass
class Health:
    ok: bool
    detail: str


class Sink(ABC):
    name: str = "sink"

    def validate(self) -> list[Problem]:
        return []

    @abstractmethod
    def build(self) -> None:
        """Connect / open; raises SinkUnavailable when the target cannot be reached."""

    @abstractmethod
    def healthcheck(self) -> Health: ...

    @abstractmethod
    def write(self, rows: Sequence[Row]) -> SinkResult:
        """Store rows (idempotent by event id); raise SinkUnavailable to retry later."""

    def write_batches(self, batches: Sequence[Sequence[Row]]) -> list[SinkResult]:
        """Several spool frames at once, a result for each (per-source counters). A sink
        that can commit them together overrides this: one commit instead of one each."""
        return [self.write(rows) for rows in batches]

    def close(self) -> None:
        return None
