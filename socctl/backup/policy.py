"""Backup policies (``backup_policies/*.yaml``) as frozen typed models.

The loader collects every problem (``file:line: field: message``) before raising, and
cross-checks what a schema cannot: run tiers that exist, one repository per tier, a copy
tier pointing at a real tier.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from socctl.content import error, line_of, load_model_file
from socctl.errors import Location, Problem, Severity, ValidationFailed


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Engine(StrEnum):
    PGBACKREST = "pgbackrest"
    RESTIC = "restic"


class BackupType(StrEnum):
    FULL = "full"
    DIFF = "diff"
    INCR = "incr"
    LOG = "log"


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TimeOfDay = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$", max_length=40)]
_DURATION = re.compile(r"^(\d+)([mhdw])$")


def parse_duration(text: str) -> timedelta:
    """``90m``, ``6h``, ``2d``, ``1w`` -> timedelta (the policy's duration syntax)."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 6h, 2d, 1w)")
    n, unit = int(match[1]), match[2]
    return {"m": timedelta(minutes=n), "h": timedelta(hours=n), "d": timedelta(days=n),
            "w": timedelta(weeks=n)}[unit]


def _duration(value: str) -> str:
    parse_duration(value)
    return value


class Calendar(Frozen):
    """When something runs: weekdays or days of the month, at a time of day."""

    weekdays: list[Weekday] | None = None
    monthdays: list[int | Literal["last"]] | None = None
    at: TimeOfDay

    @model_validator(mode="after")
    def _one_calendar(self) -> Calendar:
        if (self.weekdays is None) == (self.monthdays is None):
            raise ValueError("give exactly one of weekdays or monthdays")
        for day in self.monthdays or []:
            if isinstance(day, int) and not 1 <= day <= 31:
                raise ValueError(f"monthday {day} is not in 1..31 (or 'last')")
        return self


class Run(Calendar):
    """One scheduled run: which type, on which days, at what time, into which tiers."""

    type: BackupType
    tiers: list[Name] = Field(min_length=1)
    why: str = Field(min_length=3)


class VerifyRun(Calendar):
    """A scheduled restore test (``socctl backup verify``) from one tier (default: the DR
    copy, see :meth:`Policy.verify_tier`), so the evidence that backups restore is as
    regular as the backups."""

    tier: Name | None = None
    why: str = Field(min_length=3)


class Retention(Frozen):
    full: int | None = Field(default=None, ge=1)
    diff: int | None = Field(default=None, ge=1)
    monthly: int | None = Field(default=None, ge=1)


class Tier(Frozen):
    name: Name
    site: str
    repo: int | None = Field(default=None, ge=1, le=256)
    path: str = Field(pattern=r"^/")
    copy_of: Name | None = None
    retention: Retention


class Target(Frozen):
    hosts: list[str] = Field(min_length=1)
    stanza: str | None = None
    port: int = Field(default=5432, ge=1, le=65535)
    database: str | None = None
    key_tables: list[str] = Field(default_factory=list)
    paths: list[str] = Field(default_factory=list)


class Freshness(Frozen):
    grace: str = "6h"
    wal_max_age: str = "1h"

    @field_validator("grace", "wal_max_age")
    @classmethod
    def _dur(cls, value: str) -> str:
        return _duration(value)


class Policy(Frozen):
    id: Name
    description: str
    engine: Engine
    source: str | None = None
    timezone: str | None = None
    """The zone of the runs' times ("23:00 at the end of every weekday" is the agency's
    clock, Asia/Ho_Chi_Minh); None: the host's. The timers carry it, so a server kept in
    UTC does not run the nightly backup at 06:00 in Hanoi, in the working day."""
    target: Target
    runs: list[Run] = Field(min_length=1)
    verify: list[VerifyRun] = Field(default_factory=list)
    tiers: list[Tier] = Field(min_length=1)
    freshness: Freshness = Freshness()
    path: str = ""  # where it was loaded from (set by the loader)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r} (an IANA name such as "
                                 "Asia/Ho_Chi_Minh)") from None
        return value

    def today(self) -> date:
        """Today in the policy's zone (the day whose plan runs now)."""
        if self.timezone is None:
            return date.today()
        from zoneinfo import ZoneInfo

        return datetime.now(ZoneInfo(self.timezone)).date()

    def tier(self, name: str) -> Tier:
        return next(t for t in self.tiers if t.name == name)

    def verify_tier(self, name: str | None = None) -> Tier:
        """The tier a restore test reads: the one named, else the first copy at another
        site than the first tier (the DR copy: what a disaster leaves), else the first."""
        if name is not None:
            return self.tier(name)
        home = self.tiers[0].site
        return next((t for t in self.tiers if t.site != home), self.tiers[0])


def _checks(policy: Policy, data: object, path: Path) -> list[Problem]:
    problems: list[Problem] = []
    names = [t.name for t in policy.tiers]
    for i, run in enumerate(policy.runs):
        for j, tier in enumerate(run.tiers):
            if tier not in names:
                problems.append(error(Location.of(path, line_of(data, ("runs", i, "tiers", j)),
                                                  f"runs[{i}].tiers[{j}]"),
                                      f"unknown tier {tier!r} (tiers: {', '.join(names)})"))
        if policy.engine is Engine.RESTIC and run.type is not BackupType.FULL:
            problems.append(error(Location.of(path, line_of(data, ("runs", i, "type")),
                                              f"runs[{i}].type"),
                                  "restic snapshots are always full: use type full"))
    for i, check in enumerate(policy.verify):
        if check.tier is not None and check.tier not in names:
            problems.append(error(Location.of(path, line_of(data, ("verify", i, "tier")),
                                              f"verify[{i}].tier"),
                                  f"unknown tier {check.tier!r} (tiers: {', '.join(names)})"))
    for i, t in enumerate(policy.tiers):
        where = Location.of(path, line_of(data, ("tiers", i)), f"tiers[{i}]")
        if names.count(t.name) > 1:
            problems.append(error(where, f"duplicate tier name {t.name!r}"))
        if policy.engine is Engine.PGBACKREST and t.repo is None:
            problems.append(error(where, "pgbackrest tiers need a repo number"))
        if t.copy_of is not None and t.copy_of not in names:
            problems.append(error(where, f"copy_of names unknown tier {t.copy_of!r}"))
    repos = [t.repo for t in policy.tiers if t.repo is not None]
    if len(repos) != len(set(repos)):
        problems.append(error(Location.of(path, line_of(data, ("tiers",)), "tiers"),
                              "two tiers share one repository number"))
    if policy.engine is Engine.PGBACKREST and not policy.target.stanza:
        problems.append(error(Location.of(path, line_of(data, ("target",)), "target.stanza"),
                              "pgbackrest policies need target.stanza"))
    return problems


def load_policy_file(path: Path) -> tuple[Policy | None, list[Problem]]:
    return load_model_file(path, Policy, "policy file", _checks)


def load_policies(directory: Path) -> tuple[dict[str, Policy], list[Problem]]:
    """Every ``*.yaml`` directly under ``directory`` (drills live in ``drills/``)."""
    policies: dict[str, Policy] = {}
    problems: list[Problem] = []
    files = sorted(directory.glob("*.yaml"))
    if not files:
        problems.append(error(Location.of(directory), "no policy files (*.yaml)"))
    for path in files:
        policy, found = load_policy_file(path)
        problems += found
        if policy is None:
            continue
        if policy.id in policies:
            problems.append(error(Location.of(path, 1, "id"),
                                  f"duplicate policy id {policy.id!r} (also in "
                                  f"{policies[policy.id].path})"))
            continue
        policies[policy.id] = policy
    return policies, problems


def policies_or_raise(directory: Path) -> dict[str, Policy]:
    policies, problems = load_policies(directory)
    if any(p.severity is Severity.ERROR for p in problems):
        raise ValidationFailed(str(directory), problems)
    return policies


def pick(policies: dict[str, Policy], name: str | None) -> list[Policy]:
    if name is None:
        return list(policies.values())
    if name not in policies:
        from socctl.errors import ContentError

        raise ContentError(f"no backup policy {name!r}",
                           hint=f"policies: {', '.join(sorted(policies))}")
    return [policies[name]]
