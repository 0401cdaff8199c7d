"""Drill plans (``backup_policies/drills/*.yaml``) as frozen typed models.

A plan is content: scenario, systems, targets, ordered steps (owner, command, check,
timeout, optional approval gate) and the switch-back. Each step names an ``action`` from
the runner's registry; an unknown action is a located error listing the valid ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from socctl.backup.policy import parse_duration
from socctl.content import error, line_of, load_model_file
from socctl.errors import ContentError, Location, Problem, Severity, ValidationFailed

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$", max_length=60)]

ACTIONS: tuple[str, ...] = (
    "check_replication", "check_backups", "start_load", "stop_primary_hard",
    "lose_primary_dc", "restore_primary_dc", "promote_standby", "checkpoint",
    "redirect_clients", "verify_integrity", "rewind_old_primary", "switch_back", "shell",
)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Step(Frozen):
    id: Name
    action: str
    owner: str = Field(min_length=2)
    command: str = Field(min_length=1)
    check: str = Field(min_length=3)
    timeout: str = "60s"
    approval: bool = False
    host: str | None = None  # action shell: where the command runs (argv via sh -c)

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        if value.endswith("s") and value[:-1].isdigit():
            return value
        parse_duration(value)
        return value

    @property
    def timeout_seconds(self) -> float:
        if self.timeout.endswith("s") and self.timeout[:-1].isdigit():
            return float(self.timeout[:-1])
        return parse_duration(self.timeout).total_seconds()


class Database(Frozen):
    policy: str
    primary: str
    standby: str


class Targets(Frozen):
    rto_seconds: float = Field(gt=0)
    rpo_rows: int = Field(ge=0)
    failback_seconds: float | None = Field(default=None, gt=0)
    switchback_downtime_seconds: float | None = Field(default=None, gt=0)


class Load(Frozen):
    rate_per_second: float = Field(default=40, gt=0, le=500)
    max_rows: int = Field(default=4000, ge=10, le=100_000)
    after_failover_rows: int = Field(default=40, ge=1)


class DrillPlan(Frozen):
    id: Name
    title: str
    scenario: Literal["primary_db_loss", "primary_dc_loss", "planned_switchover"]
    systems: list[str] = Field(min_length=1)
    database: Database
    targets: Targets
    load: Load = Load()
    steps: list[Step] = Field(min_length=1)
    switch_back: list[Step] = Field(default_factory=list)
    path: str = ""


def _checks(plan: DrillPlan, data: object, path: Path) -> list[Problem]:
    problems = []
    seen: set[str] = set()
    for section in ("steps", "switch_back"):
        for i, step in enumerate(getattr(plan, section)):
            if step.action not in ACTIONS:
                problems.append(error(
                    Location.of(path, line_of(data, (section, i, "action")),
                                f"{section}[{i}].action"),
                    f"unknown action {step.action!r} (valid: {', '.join(ACTIONS)})"))
            if step.action == "shell" and not step.host:
                problems.append(error(
                    Location.of(path, line_of(data, (section, i)), f"{section}[{i}].host"),
                    "a shell step needs the host it runs on"))
            if step.id in seen:
                problems.append(error(
                    Location.of(path, line_of(data, (section, i, "id")), f"{section}[{i}].id"),
                    f"duplicate step id {step.id!r}"))
            seen.add(step.id)
    return problems


def load_plan_file(path: Path) -> tuple[DrillPlan | None, list[Problem]]:
    return load_model_file(path, DrillPlan, "drill plan", _checks)


def load_plans(directory: Path) -> tuple[dict[str, DrillPlan], list[Problem]]:
    plans: dict[str, DrillPlan] = {}
    problems: list[Problem] = []
    for path in sorted(directory.glob("*.yaml")):
        plan, found = load_plan_file(path)
        problems += found
        if plan is not None:
            if plan.id in plans:
                problems.append(error(Location.of(path, 1, "id"),
                                      f"duplicate drill id {plan.id!r}"))
            plans[plan.id] = plan
    return plans, problems


def resolve(directory: Path, name: str) -> DrillPlan:
    """A plan by id, or by path to a YAML file."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") and candidate.exists():
        plan, problems = load_plan_file(candidate)
    else:
        plans, problems = load_plans(directory)
        plan = plans.get(name)
        if plan is None and not any(p.severity is Severity.ERROR for p in problems):
            raise ContentError(f"no drill plan {name!r}",
                               hint=f"plans: {', '.join(sorted(plans)) or 'none'}")
    if plan is None or any(p.severity is Severity.ERROR for p in problems):
        raise ValidationFailed(name, problems)
    return plan
