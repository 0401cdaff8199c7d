"""One exception tree for the whole library.

Every error carries a :class:`Location` (a file and line, or a host and command) so the
CLI can print one actionable line without a traceback. Only ``socctl.cli`` turns these
into user messages; library code raises them and never prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Location:
    """Where a problem comes from: ``path:line`` plus the offending field.

    ``path`` may also name a host (``lab:dc1-rtr1``) for runtime errors.
    """

    path: str
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        text = self.path
        if self.line is not None:
            text += f":{self.line}"
        if self.field:
            text += f": {self.field}"
        return text

    @classmethod
    def of(cls, path: str | Path, line: int | None = None, field: str | None = None) -> Location:
        return cls(str(path), line, field)


class SocctlError(Exception):
    """Base of every error socctl raises on purpose."""

    exit_code = 1

    def __init__(
        self, message: str, location: Location | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class ConfigError(SocctlError):
    """socctl.toml or SOCCTL_* environment is wrong."""


class ContentError(SocctlError):
    """A content file (inventory, rule, policy, collector) is malformed."""


class InventoryError(ContentError):
    """The inventory is malformed or inconsistent."""


class LabError(SocctlError):
    """The network-namespace lab could not be built, reached or torn down."""


class DeviceError(SocctlError):
    """A device (host, router, switch) failed or refused an operation."""


class ToolError(SocctlError):
    """An external program socctl drives is missing or failed."""


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of a loader or check: never raised alone, always collected."""

    severity: Severity
    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.severity.value}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity.value,
            "path": self.location.path,
            "line": self.location.line,
            "field": self.location.field,
            "message": self.message,
        }


class ValidationFailed(ContentError):
    """Raised when loading found problems; carries every one of them, not just the first."""

    def __init__(self, what: str, problems: list[Problem]) -> None:
        errors = [p for p in problems if p.severity is Severity.ERROR]
        first = errors[0] if errors else problems[0]
        super().__init__(
            f"{first.message} ({len(errors)} error(s) in {what})",
            first.location,
        )
        self.problems = problems
