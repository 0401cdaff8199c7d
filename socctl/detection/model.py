"""Typed content of detections/: rules with their test events, suppressions, lookups."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

Level = Literal["informational", "low", "medium", "high", "critical"]
LEVEL_ORDER: dict[str, int] = {"informational": 0, "low": 1, "medium": 2, "high": 3,
                               "critical": 4}


def _duration(value: str) -> str:
    parse_duration(value)
    return value


Duration = Annotated[str, AfterValidator(_duration)]


def parse_duration(text: str) -> float:
    """``30s``, ``5m``, ``1h``, ``2d`` -> seconds (Sigma's timespan syntax)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = str(text).strip()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise ValueError(f"not a duration {text!r} (use e.g. 30s, 5m, 1h, 2d)")
    return float(int(text[:-1]) * units[text[-1]])


def _close(name: str, valid: Any) -> str:
    from difflib import get_close_matches

    close = get_close_matches(name, list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class TestEvent(BaseModel):
    """One raw log line a rule must (or must not) match, with what the parser yields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str
    line: str
    #: ECS fields the collector's parser extracts from ``line`` (dotted names).
    fields: dict[str, Any] = Field(default_factory=dict)
    #: Seconds after the start of the test; repeated events are spaced by ``every``.
    at: float = 0.0
    repeat: Annotated[int, Field(ge=1, le=1000)] = 1
    every: float = 1.0
    #: For repeats: ``{i}`` in the line and in field values becomes the repeat index (1..).
    vary: bool = False

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, value: str) -> str:
        from socctl.collector.parse import DATASETS

        if value not in DATASETS:
            raise ValueError(f"unknown dataset {value!r}{_close(value, DATASETS)} "
                             f"(valid: {', '.join(DATASETS)})")
        return value

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        from socctl.detection.pipeline import FIELD_COLUMNS

        unknown = [name for name in value if name not in FIELD_COLUMNS]
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}{_close(unknown[0], FIELD_COLUMNS)}"
                             " (a test field is an ECS field the store has a column for: "
                             f"{', '.join(sorted(FIELD_COLUMNS))})")
        return value

    def expand(self, start: float) -> list[tuple[float, str, dict[str, Any]]]:
        """(ts, line, fields) for every repetition."""
        out = []
        for n in range(1, self.repeat + 1):
            line, fields = self.line, dict(self.fields)
            if self.vary:
                line = line.replace("{i}", str(n))
                fields = {k: v.replace("{i}", str(n)) if isinstance(v, str) else v
                          for k, v in fields.items()}
            out.append((start + self.at + (n - 1) * self.every, line, fields))
        return out


class Scenario(BaseModel):
    """Events replayed together into an empty store (a correlation needs several)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=3)
    events: list[TestEvent] = Field(min_length=1)
    #: Entity the alert must name (fire scenarios), e.g. {source.ip: 198.18.7.7}.
    entity: dict[str, str] = Field(default_factory=dict)


class RuleTests(BaseModel):
    """The ``<rule>.tests.yml`` next to a rule: both kinds are required."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fire: list[Scenario] = Field(min_length=1)
    quiet: list[Scenario] = Field(min_length=1)


class SocctlRuleOptions(BaseModel):
    """The ``socctl:`` block of a rule: how its alerts are grouped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Entity fields (ECS names) an alert is grouped by, e.g. [source.ip].
    entity: list[str] = Field(default_factory=lambda: ["source.ip"])
    #: Matches of the same rule and entity within this window join one alert.
    window: Duration = "1h"




class Suppression(BaseModel):
    """An exception: matches of ``rule`` whose entity fields equal ``match`` raise no alert."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    rule: str  # rule id (UUID) or "*"
    match: dict[str, str] = Field(min_length=1)
    owner: str = Field(min_length=1)
    reason: str = Field(min_length=5)
    expires: dt.date
    created: dt.date | None = None

    @field_validator("match")
    @classmethod
    def _addresses(cls, value: dict[str, str]) -> dict[str, str]:
        """An address field's value is an address or a network (CIDR): anything else
        (198.19.128.0/33, a typo) never matched, silently."""
        import ipaddress

        for key, pattern in value.items():
            if not key.endswith(".ip"):
                continue
            try:
                if "/" in pattern:
                    ipaddress.ip_network(pattern, strict=False)
                else:
                    ipaddress.ip_address(pattern)
            except ValueError as exc:
                raise ValueError(f"{key}: {pattern!r} is not an IP address or network "
                                 f"(CIDR): {exc}") from None
        return value

    def active(self, today: dt.date) -> bool:
        return today <= self.expires


class SuppressionFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    suppressions: list[Suppression]


@dataclass(frozen=True)
class Rule:
    """One loaded, validated rule file: the parsed Sigma rule plus socctl's additions."""

    path: Path
    id: str
    name: str | None
    title: str
    level: str
    tags: tuple[str, ...]
    kind: str  # "event" or "correlation"
    sigma: Any = field(repr=False)  # SigmaRule | SigmaCorrelationRule
    text: str = field(repr=False)
    options: SocctlRuleOptions = field(default_factory=SocctlRuleOptions)
    tests: RuleTests | None = None
    #: ECS names of the correlation's group-by (the alert entity for correlations).
    group_by: tuple[str, ...] = ()

    @property
    def entity_fields(self) -> tuple[str, ...]:
        return self.group_by or tuple(self.options.entity)


@dataclass(frozen=True)
class RuleSet:
    """Every rule under a folder, with its suppressions and lookup lists."""

    root: Path
    rules: tuple[Rule, ...]
    suppressions: tuple[Suppression, ...] = ()
    lookups: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def by_id(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule_id in (rule.id, rule.name):
                return rule
        raise KeyError(rule_id)
