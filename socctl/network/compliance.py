"""Compliance: rules kept as content (``compliance_rules/*.yaml``) checked against running
(or intended) configs, pass/fail per device and rule.

A rule applies to platforms, optionally only where the site's security level is at least
``min_level`` (stricter rules for sites hosting level-3/4 systems), optionally only
``when`` a Jinja expression on the device's facts holds, and optionally once per item of
a list (``each: collectors``: syslog to *every* collector). Its ``require`` or ``forbid``
regex is matched against the lines of the top level or of every block whose header
matches ``parent``. Patterns are Jinja templates over the device's facts; inserted values
are regex-escaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from socctl.content import error, load_yaml, validate
from socctl.errors import Location, Problem, ValidationFailed
from socctl.network import configtree

RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=60)]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: RuleId
    title: str
    platforms: tuple[str, ...] = Field(min_length=1)
    severity: Literal["error", "warning"] = "error"
    min_level: int = Field(default=0, ge=0, le=4)
    when: str | None = None
    each: str | None = None
    parent: str | None = None
    require: str | None = None
    forbid: str | None = None

    @model_validator(mode="after")
    def _one_check(self) -> Rule:
        if (self.require is None) == (self.forbid is None):
            raise ValueError("a rule needs exactly one of 'require' or 'forbid'")
        return self


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class LoadedRule:
    rule: Rule
    source: Location


def load_rules(folder: Path, platforms: Iterable[str]) -> tuple[list[LoadedRule], list[Problem]]:
    """Every rule file; problems collected across files (unknown platform, duplicate id,
    bad regex or template), each with file and line."""
    import jinja2

    known = set(platforms)
    out: list[LoadedRule] = []
    problems: list[Problem] = []
    seen: dict[str, Location] = {}
    files = sorted(folder.glob("*.yaml"))
    if not files:
        problems.append(error(Location.of(folder), "no rule files (*.yaml)"))
    env = jinja2.Environment(autoescape=False)
    for path in files:
        data, found = load_yaml(path)
        problems += found
        if found:
            continue
        model, found = validate(RuleFile, data, path)
        problems += found
        if model is None:
            continue
        lines = getattr(data.get("rules"), "item_lines", [])
        for index, rule in enumerate(model.rules):
            where = Location.of(path, lines[index] if index < len(lines) else None,
                                f"rules[{index}]")
            if rule.id in seen:
                problems.append(error(where, f"duplicate rule id {rule.id!r} (first at "
                                             f"{seen[rule.id]})"))
                continue
            seen[rule.id] = where
            for platform in rule.platforms:
                if platform not in known:
                    problems.append(error(where, f"unknown platform {platform!r} (drivers: "
                                                 f"{', '.join(sorted(known))})"))
            for name in ("when", "parent", "require", "forbid"):
                text = getattr(rule, name)
                if text is None:
                    continue
                try:
                    if name == "when":
                        env.compile_expression(text)
                    else:
                        env.parse(text)
                        re.compile(re.sub(r"\{\{.*?\}\}", "x", text))
                except (jinja2.TemplateSyntaxError, re.error) as exc:
                    problems.append(error(Location(where.path, where.line,
                                                   f"{where.field}.{name}"),
                                          f"invalid {name}: {exc}"))
            out.append(LoadedRule(rule, where))
    return out, problems


def load_rules_or_raise(folder: Path, platforms: Iterable[str]) -> list[LoadedRule]:
    rules, problems = load_rules(folder, platforms)
    if problems:
        raise ValidationFailed(str(folder), problems)
    return rules


@dataclass(frozen=True, slots=True)
class Outcome:
    rule: str
    status: Literal["pass", "fail"]
    severity: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "status": self.status, "severity": self.severity,
                "message": self.message}


def _env() -> Any:
    import jinja2

    return jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined,
                              finalize=lambda v: re.escape(str(v)))


def _lookup(context: dict[str, Any], dotted: str) -> Any:
    value: Any = context
    for part in dotted.split("."):
        value = value[part]
    return value


def check(tree: configtree.Node, rules: list[LoadedRule], platform: str,
          context: dict[str, Any]) -> list[Outcome]:
    """Evaluate the rules that apply to this device (platform, level, ``when``)."""
    import jinja2

    env = _env()
    plain = jinja2.Environment(autoescape=False)
    out: list[Outcome] = []
    for loaded in rules:
        rule = loaded.rule
        if platform not in rule.platforms or context["level"] < rule.min_level:
            continue
        if rule.when and not plain.compile_expression(rule.when)(**context):
            continue
        items: list[Any] = [None]
        if rule.each:
            items = list(_lookup(context, rule.each))
            if not items:
                continue
        failures: list[str] = []
        for item in items:
            failures += _check_one(tree, rule, env, {**context, "item": item})
        status: Literal["pass", "fail"] = "fail" if failures else "pass"
        out.append(Outcome(rule.id, status, rule.severity,
                           "; ".join(failures) if failures else rule.title))
    return out


def _check_one(tree: configtree.Node, rule: Rule, env: Any, context: dict[str, Any]
               ) -> list[str]:
    blocks = [tree]
    if rule.parent:
        parent = re.compile(env.from_string(rule.parent).render(context))
        blocks = [n for n in tree.children if parent.search(n.line)]
        if not blocks:
            return [f"no block matching /{parent.pattern}/"] if rule.require else []
    if rule.require:
        pattern = re.compile(env.from_string(rule.require).render(context))
        return [f"missing /{pattern.pattern}/" + (f" in {b.line!r}" if b.line else "")
                for b in blocks if not any(pattern.search(c.line) for c in b.children)]
    assert rule.forbid is not None
    pattern = re.compile(env.from_string(rule.forbid).render(context))
    return [f"forbidden line {c.line!r}" + (f" in {b.line!r}" if b.line else "")
            for b in blocks for c in b.children if pattern.search(c.line)]
