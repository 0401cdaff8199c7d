"""Load detections/: every rule file, its test events, suppressions and lookup lists.

Two tiers, as everywhere in socctl: schema and pySigma parsing per file, then checks across
files (unique ids, dangling correlation references, fields the store has no column for).
Every problem is collected with its file, line and field; nothing stops at the first one.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

from socctl.content import LineDict, error, line_of, load_yaml, validate, warning
from socctl.detection.model import (
    Rule,
    RuleSet,
    RuleTests,
    SocctlRuleOptions,
    Suppression,
    SuppressionFile,
)
from socctl.detection.pipeline import FIELD_COLUMNS, find_logsource
from socctl.errors import Location, Problem, ValidationFailed

REQUIRED_KEYS = ("title", "id", "status", "description", "author", "date", "tags", "level")
ATTACK_TAG = re.compile(r"^attack\.(t\d{4}(\.\d{3})?|[a-z_-]+)$")
TESTS_SUFFIX = ".tests.yml"
SUPPRESSION_DIR = "suppressions"
LOOKUP_DIR = "lookups"
MITRE_DATA = Path("mitre") / "enterprise-attack-subset.json"


def rule_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(
        p for p in root.rglob("*.yml")
        if not p.name.endswith(TESTS_SUFFIX)
        and SUPPRESSION_DIR not in p.relative_to(root).parts
        and LOOKUP_DIR not in p.relative_to(root).parts
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def tests_path(rule_path: Path) -> Path:
    return rule_path.with_name(rule_path.name.removesuffix(".yml") + TESTS_SUFFIX)


def _detection_fields(detection: Any) -> list[tuple[str, list[str | int]]]:
    """(ECS field, location inside ``detection``) for every field a selection names."""
    found: list[tuple[str, list[str | int]]] = []
    for name, selection in detection.items():
        if name in ("condition", "timeframe"):
            continue
        maps: list[tuple[list[str | int], Any]] = []
        if isinstance(selection, dict):
            maps.append(([name], selection))
        elif isinstance(selection, list):
            maps.extend(([name, i], item) for i, item in enumerate(selection)
                        if isinstance(item, dict))
        for loc, mapping in maps:
            for key in mapping:
                found.append((str(key).split("|")[0], [*loc, key]))
    return found


def _check_rule_dict(data: LineDict, path: Path) -> list[Problem]:
    """Our house rules on top of Sigma's: SigmaHQ metadata, UUIDv4, ATT&CK tags, fields."""
    problems: list[Problem] = []

    def at(loc: list[str | int], msg: str) -> None:
        field = ".".join(str(p) for p in loc) or None
        problems.append(error(Location.of(path, line_of(data, loc), field), msg))

    for key in REQUIRED_KEYS:
        if key not in data:
            at([], f"missing required key {key!r}")
    if "correlation" not in data:
        for key in ("logsource", "detection", "falsepositives"):
            if key not in data:
                at([], f"missing required key {key!r}")
    rid = data.get("id")
    try:
        if uuid.UUID(str(rid)).version != 4:
            at(["id"], f"id must be a UUIDv4, got {rid!r}")
    except ValueError:
        at(["id"], f"id must be a UUIDv4, got {rid!r}")
    tags = data.get("tags") or []
    if not any(re.match(r"^attack\.t\d{4}", str(t)) for t in tags):
        at(["tags"], "needs at least one ATT&CK technique tag (attack.tNNNN)")
    for i, tag in enumerate(tags):
        if str(tag).startswith("attack.") and not ATTACK_TAG.match(str(tag)):
            at(["tags", i], f"malformed ATT&CK tag {tag!r}")
    logsource = data.get("logsource")
    if isinstance(logsource, dict):
        ls = find_logsource(logsource.get("product"), logsource.get("category"),
                            logsource.get("service"))
        if ls is None:
            at(["logsource"], f"unsupported logsource {dict(logsource)!r} (supported: "
               + "; ".join(x.describe() for x in _logsources()) + ")")
    detection = data.get("detection")
    if isinstance(detection, dict):
        for name, loc in _detection_fields(detection):
            if name not in FIELD_COLUMNS:
                at(["detection", *loc], f"field {name!r} has no column in the store "
                   f"(known ECS fields: {', '.join(sorted(FIELD_COLUMNS))})")
    correlation = data.get("correlation")
    if isinstance(correlation, dict):
        for i, name in enumerate(correlation.get("group-by") or []):
            if name not in FIELD_COLUMNS:
                at(["correlation", "group-by", i], f"field {name!r} has no column in the store")
    return problems


PLACEHOLDER = re.compile(r"%([\w.-]+)%")


def _check_placeholders(data: LineDict, path: Path,
                        lookups: dict[str, tuple[str, ...]]) -> list[Problem]:
    """Every ``%name%`` of an ``|expand`` value needs ``lookups/<name>.txt``: a missing one
    is an error here, not a "no such table" that fails every rule sharing its scan."""
    detection = data.get("detection")
    if not isinstance(detection, dict):
        return []
    problems = []
    for _name, loc in _detection_fields(detection):
        if "expand" not in str(loc[-1]).split("|")[1:]:
            continue
        for value in _values(_at(detection, loc)):
            for name in PLACEHOLDER.findall(value):
                if name in lookups:
                    continue
                from difflib import get_close_matches

                close = get_close_matches(name, list(lookups), n=1)
                hint = f"; did you mean %{close[0]}%?" if close else ""
                known = ", ".join(sorted(lookups)) or "none"
                field = ".".join(str(p) for p in ["detection", *loc])
                problems.append(error(
                    Location.of(path, line_of(data, ["detection", *loc]), field),
                    f"unknown lookup %{name}%: no {LOOKUP_DIR}/{name}.txt{hint} "
                    f"(known lookups: {known})"))
    return problems


def _logsources() -> tuple[Any, ...]:
    from socctl.detection.pipeline import LOGSOURCES

    return LOGSOURCES


def _parse_sigma(data: LineDict, path: Path) -> tuple[Any, list[Problem]]:
    """pySigma's own parsing; its errors keep the file and, where it says, the line."""
    from sigma.correlations import SigmaCorrelationRule
    from sigma.exceptions import SigmaError
    from sigma.rule import SigmaRule

    from socctl.detection.regex import POLICY

    plain = _plain(data)
    plain.pop("socctl", None)
    cls = SigmaCorrelationRule if "correlation" in plain else SigmaRule
    try:
        rule = cls.from_dict(plain, collect_errors=True, policy=POLICY)
    except SigmaError as exc:
        return None, [error(_sigma_location(exc, data, path), str(exc))]
    problems = [error(_sigma_location(exc, data, path), str(exc)) for exc in rule.errors]
    if isinstance(rule, SigmaRule) and not problems:
        try:
            rule.detection.parsed_condition[0].parse()
        except SigmaError as exc:
            problems.append(error(Location.of(path, line_of(data, ["detection", "condition"]),
                                              "detection.condition"), str(exc)))
    return rule, problems


def _sigma_location(exc: Exception, data: LineDict, path: Path) -> Location:
    """Where pySigma's error is: the line it gives; else the detection item holding a
    value the message quotes (a bad regex: pySigma names the pattern, not the field);
    else a top-level key the message names as a word ("invalid" once matched ``id``)."""
    source = getattr(exc, "source", None)
    line = getattr(source, "line", None)
    if isinstance(line, int):
        return Location.of(path, line)
    text = str(exc)
    detection = data.get("detection")
    quotes = re.findall(r"'([^']+)'", text)
    if isinstance(detection, dict):
        for quoted in quotes:
            for _name, loc in _detection_fields(detection):
                # a value the message quotes, or a modifier of the key (|contians)
                if quoted in _values(_at(detection, loc)) or \
                        quoted in str(loc[-1]).split("|")[1:]:
                    return Location.of(path, line_of(data, ["detection", *loc]),
                                       ".".join(str(p) for p in ["detection", *loc]))
    correlation = data.get("correlation")
    if isinstance(correlation, dict):  # timespan '5min', type, a condition's value
        for quoted in quotes:
            for loc in _scalar_locations(correlation, ["correlation"]):
                if str(_at(data, loc)) == quoted:
                    return Location.of(path, line_of(data, loc),
                                       ".".join(str(p) for p in loc))
    for key in data:
        if re.search(rf"(?<![\w.-]){re.escape(key)}(?![\w.-])", text.lower()):
            return Location.of(path, data.key_lines.get(key), key)
    return Location.of(path, data.line or None)


def _scalar_locations(node: Any, loc: list[str | int]) -> list[list[str | int]]:
    """The location of every scalar under ``node`` (found at ``loc``)."""
    if isinstance(node, dict):
        return [x for k, v in node.items() for x in _scalar_locations(v, [*loc, k])]
    if isinstance(node, list):
        return [x for i, v in enumerate(node) for x in _scalar_locations(v, [*loc, i])]
    return [loc]


def _at(node: Any, loc: list[str | int]) -> Any:
    for part in loc:
        node = node[part]
    return node


def _values(node: Any) -> list[str]:
    return [str(v) for v in node] if isinstance(node, list) else [str(node)]


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def load_rule(path: Path, *, with_tests: bool = True,
              lookups: dict[str, tuple[str, ...]] | None = None
              ) -> tuple[Rule | None, list[Problem]]:
    """One rule file (and its tests); with ``lookups``, its ``%name%`` placeholders are
    checked against them."""
    data, problems = load_yaml(path)
    if data is None:
        return None, problems
    if not isinstance(data, LineDict):
        return None, [*problems, error(Location.of(path, 1), "a rule file is one YAML mapping")]
    problems += _check_rule_dict(data, path)
    if lookups is not None:
        problems += _check_placeholders(data, path, lookups)
    options = SocctlRuleOptions()
    if "socctl" in data:
        parsed, found = validate(SocctlRuleOptions, data["socctl"], path, ("socctl",))
        problems += found
        options = parsed or options
        for i, name in enumerate(options.entity):
            if name not in FIELD_COLUMNS:
                problems.append(error(Location.of(path, line_of(data, ["socctl", "entity", i]),
                                                  f"socctl.entity[{i}]"),
                                      f"entity field {name!r} has no column in the store"))
    sigma, found = _parse_sigma(data, path)
    problems += found
    tests = None
    if with_tests:
        tpath = tests_path(path)
        if not tpath.exists():
            problems.append(error(Location.of(path), f"no test events: create {tpath.name} "
                                  "with both 'fire' and 'quiet' events"))
        else:
            tdata, found = load_yaml(tpath)
            problems += found
            if tdata is not None:
                tests, found = validate(RuleTests, tdata, tpath)
                problems += found
    if sigma is None or any(p.severity.value == "error" for p in problems):
        return None, problems
    correlation = data.get("correlation") or {}
    return Rule(
        path=path, id=str(sigma.id), name=sigma.name, title=sigma.title,
        level=sigma.level.name.lower() if sigma.level else "medium",
        tags=tuple(str(t) for t in sigma.tags), kind="correlation" if correlation else "event",
        sigma=sigma, text=path.read_text(encoding="utf-8"), options=options, tests=tests,
        group_by=tuple(correlation.get("group-by") or ()),
    ), problems


SuppressionPlace = tuple[Location, dict[str, Location]]
"""Where a suppression is: its id's location, and each of its match keys'."""


def load_suppressions(root: Path, where: dict[str, SuppressionPlace] | None = None
                      ) -> tuple[list[Suppression], list[Problem]]:
    """Every ``suppressions/*.yml``; an id given twice (in one file or two) is an error.
    ``where`` receives each suppression's place (file, line of its id and match keys)."""
    out: list[Suppression] = []
    problems: list[Problem] = []
    located: dict[str, SuppressionPlace] = {} if where is None else where
    folder = root / SUPPRESSION_DIR
    if not folder.is_dir():
        return out, problems
    for path in sorted(folder.glob("*.yml")):
        data, found = load_yaml(path, empty_ok=True)  # a placeholder with comments only
        problems += found
        if data is None:
            continue
        parsed, found = validate(SuppressionFile, data, path)
        problems += found
        if not parsed:
            continue
        for i, item in enumerate(parsed.suppressions):
            here = Location.of(path, line_of(data, ["suppressions", i, "id"]),
                               f"suppressions[{i}].id")
            if item.id in located:
                problems.append(error(here, f"duplicate suppression id {item.id!r} (also "
                                      f"at {located[item.id][0]}): ids name one exception"))
                continue
            located[item.id] = (here, {
                key: Location.of(path, line_of(data, ["suppressions", i, "match", key]),
                                 f"suppressions[{i}].match.{key}") for key in item.match})
            out.append(item)
    return out, problems


def lookups_root(root: Path) -> Path:
    """Where ``lookups/`` is for ``root``: the folder itself, or for one rule file the
    nearest folder above it that has one (``detections/`` for ``detections/web/x.yml``)."""
    if root.is_dir():
        return root
    for parent in root.resolve().parents:
        if (parent / LOOKUP_DIR).is_dir():
            return parent
    return root.parent


def load_lookups(root: Path) -> dict[str, tuple[str, ...]]:
    """``lookups/<name>.txt``: one value a line, ``#`` comments; fills ``%name%``."""
    folder = lookups_root(root) / LOOKUP_DIR
    lookups: dict[str, tuple[str, ...]] = {}
    if folder.is_dir():
        for path in sorted(folder.glob("*.txt")):
            values = [line.split("#", 1)[0].strip()
                      for line in path.read_text(encoding="utf-8").splitlines()]
            lookups[path.stem] = tuple(v for v in values if v)
    return lookups


def check_rules(root: Path, *, with_tests: bool = True) -> tuple[RuleSet, list[Problem]]:
    """Load everything under ``root``; return what loaded and every problem found."""
    problems: list[Problem] = []
    rules: list[Rule] = []
    lookups = load_lookups(root)
    for path in rule_files(root):
        rule, found = load_rule(path, with_tests=with_tests, lookups=lookups)
        problems += found
        if rule is not None:
            rules.append(rule)
    seen: dict[str, Path] = {}
    names: dict[str, Path] = {}
    for rule in rules:
        if rule.id in seen:
            problems.append(error(Location.of(rule.path, None, "id"),
                                  f"duplicate rule id {rule.id} (also in {seen[rule.id]})"))
        seen[rule.id] = rule.path
        if rule.name:
            if rule.name in names:
                problems.append(error(Location.of(rule.path, None, "name"),
                                      f"duplicate rule name {rule.name!r}"))
            names[rule.name] = rule.path
    for rule in rules:
        if rule.kind == "correlation":
            for ref in rule.sigma.rules:
                if ref.reference not in names and ref.reference not in seen:
                    problems.append(error(Location.of(rule.path, None, "correlation.rules"),
                                          f"unknown rule {ref.reference!r}: no rule has this "
                                          "name or id"))
    suppressions: list[Suppression] = []
    problems += _check_attack_tags(root, rules)
    if root.is_dir():
        where: dict[str, SuppressionPlace] = {}
        suppressions, found = load_suppressions(root, where)
        problems += found
        problems += _check_suppressions(suppressions, where, rules)
    return RuleSet(root, tuple(rules), tuple(suppressions), lookups), problems


def _check_suppressions(suppressions: list[Suppression], where: dict[str, SuppressionPlace],
                        rules: list[Rule]) -> list[Problem]:
    """A suppression names a rule that exists, and matches on fields that rule's alerts
    are grouped by (its entity): on any other field it never applies."""
    by_ref = {**{r.id: r for r in rules}, **{r.name: r for r in rules if r.name}}
    every = sorted({f for r in rules for f in r.entity_fields})
    problems = []
    for s in suppressions:
        here, key_places = where[s.id]
        if s.rule != "*" and s.rule not in by_ref:
            problems.append(error(here, f"suppression {s.id} names unknown rule {s.rule!r}"))
            continue
        entity = every if s.rule == "*" else list(by_ref[s.rule].entity_fields)
        for key in s.match:
            if key not in entity:
                whose = "any rule" if s.rule == "*" else f"rule {by_ref[s.rule].title!r}"
                problems.append(warning(
                    key_places[key],
                    f"suppression {s.id} never applies: {key} is not an alert entity field "
                    f"of {whose} (entity fields: {', '.join(entity)})"))
    return problems


def _check_attack_tags(root: Path, rules: list[Rule]) -> list[Problem]:
    """Every ATT&CK tag must exist in the offline data the converters use."""
    import json

    data_file = (root if root.is_dir() else root.parent) / MITRE_DATA
    if not data_file.exists():
        return []
    known: set[str] = set()
    for obj in json.loads(data_file.read_text(encoding="utf-8")).get("objects", []):
        for ref in obj.get("external_references", []):
            if ref.get("source_name") == "mitre-attack":
                if obj.get("type") == "x-mitre-tactic":
                    known.add(str(obj.get("x_mitre_shortname")))
                known.add(str(ref.get("external_id")).lower())
    problems = []
    for rule in rules:
        for tag in rule.tags:
            if tag.startswith("attack.") and tag.removeprefix("attack.") not in known:
                problems.append(error(Location.of(rule.path, None, "tags"),
                                      f"{tag} is not in {data_file.name} (add the tactic or "
                                      "technique from attack.mitre.org, or fix the tag)"))
    return problems


def load_rules(root: Path, *, with_tests: bool = False) -> RuleSet:
    """Load or raise :class:`ValidationFailed` with every problem."""
    ruleset, problems = check_rules(root, with_tests=with_tests)
    if any(p.severity.value == "error" for p in problems):
        raise ValidationFailed(str(root), problems)
    return ruleset
