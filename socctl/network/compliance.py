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

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from socctl.content import error, line_of, load_yaml, validate
from socctl.errors import Location, Problem, ValidationFailed
from socctl.network import configtree
from socctl.network.masking import mask_line

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
        items = data.get("rules") if isinstance(data, dict) else None
        if not isinstance(items, list):
            problems.append(error(Location.of(path, getattr(data, "line", None), "rules"),
                                  "a rule file holds a list under 'rules'"))
            continue
        lines = getattr(items, "item_lines", [])
        for index, item in enumerate(items):
            rule, found = validate(Rule, item, path, ("rules", index))
            problems += [_relocate(p, data, ("rules", index)) for p in found]
            if rule is None:
                continue
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


def _relocate(problem: Problem, data: Any, prefix: tuple[int | str, ...]) -> Problem:
    """Problems of one rule: the line of the offending key inside the whole file."""
    field = problem.location.field or ""
    loc: list[int | str] = list(prefix)
    for part in re.findall(r"[^.\[\]]+", field)[len(prefix):]:
        loc.append(int(part) if part.isdigit() else part)
    line = line_of(data, loc) or problem.location.line
    return Problem(problem.severity, Location(problem.location.path, line, field),
                   problem.message)


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


@functools.cache
def _env() -> Any:
    import jinja2

    return jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined,
                              finalize=lambda v: re.escape(str(v)))


@functools.cache
def _template(text: str) -> Any:
    return _env().from_string(text)


@functools.cache
def _condition(text: str) -> Any:
    import jinja2

    return jinja2.Environment(autoescape=False).compile_expression(text)


@functools.cache
def _regex(text: str) -> re.Pattern[str]:
    return re.compile(text)


def _pattern(text: str, context: dict[str, Any]) -> re.Pattern[str]:
    if "{" not in text:
        return _regex(text)
    return _regex(_template(text).render(context))


def _lookup(context: dict[str, Any], dotted: str) -> Any:
    value: Any = context
    for part in dotted.split("."):
        value = value[part]
    return value


def check(tree: configtree.Node, rules: list[LoadedRule], platform: str,
          context: dict[str, Any]) -> list[Outcome]:
    """Evaluate the rules that apply to this device (platform, level, ``when``)."""
    out: list[Outcome] = []
    for loaded in rules:
        rule = loaded.rule
        if platform not in rule.platforms or context["level"] < rule.min_level:
            continue
        if rule.when and not _condition(rule.when)(**context):
            continue
        items: list[Any] = [None]
        if rule.each:
            items = list(_lookup(context, rule.each))
            if not items:
                continue
        failures: list[str] = []
        for item in items:
            failures += _check_one(tree, rule, {**context, "item": item})
        status: Literal["pass", "fail"] = "fail" if failures else "pass"
        out.append(Outcome(rule.id, status, rule.severity,
                           "; ".join(failures) if failures else rule.title))
    return out


def _check_one(tree: configtree.Node, rule: Rule, context: dict[str, Any]) -> list[str]:
    blocks = [tree]
    if rule.parent:
        parent = _pattern(rule.parent, context)
        blocks = [n for n in tree.children if parent.search(n.line)]
        if not blocks:
            return [f"no block matching /{parent.pattern}/"] if rule.require else []
    if rule.require:
        pattern = _pattern(rule.require, context)
        return [f"missing /{pattern.pattern}/" + (f" in {b.line!r}" if b.line else "")
                for b in blocks if not any(pattern.search(c.line) for c in b.children)]
    assert rule.forbid is not None
    pattern = _pattern(rule.forbid, context)
    # the forbidden lines are often the secret ones (a community, a vty password)
    return [f"forbidden line {mask_line(c.line)!r}" + (f" in {b.line!r}" if b.line else "")
            for b in blocks for c in b.children if pattern.search(c.line)]
