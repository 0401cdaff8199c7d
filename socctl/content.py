"""Loading content files (YAML) with line numbers, and turning validation errors into
located :class:`~socctl.errors.Problem` records.

Every content folder (inventory/, detections/, collectors/, backup_policies/) goes
through here so that a bad value anywhere is reported as ``file:line: field: message``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from socctl.errors import Location, Problem, Severity

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineDict(dict[str, Any]):
    """A mapping that remembers the line of itself and of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class LineList(list[Any]):
    """A sequence that remembers the line of itself and of each item (1-based)."""

    line: int = 0
    item_lines: list[int]


class _LineLoader(_Loader):  # type: ignore[misc,valid-type]
    problems: list[tuple[int, str]]


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        line = key_node.start_mark.line + 1
        if key in out:
            loader.problems.append((line, f"duplicate key {key!r}"))
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = line
    return out


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: Path, *, empty_ok: bool = False) -> tuple[Any, list[Problem]]:
    """Parse one YAML file; syntax errors and duplicate keys come back as problems, and so
    does an empty (or comments-only) file unless ``empty_ok``: a content file truncated to
    nothing must not load as "no rules" or "no sources" without a word."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [error(Location.of(path), f"cannot read file: {exc}")]
    loader = _LineLoader(text)
    loader.problems = []
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        return None, [error(Location.of(path, line), f"invalid YAML: {reason}")]
    finally:
        loader.dispose()
    problems = [error(Location.of(path, line), msg) for line, msg in loader.problems]
    if data is None and not empty_ok:
        problems.append(error(Location.of(path), "file is empty"))
    return data, problems


def line_of(data: Any, loc: Sequence[int | str]) -> int | None:
    """The line of the deepest node on ``loc`` that exists in ``data``."""
    best: int | None = getattr(data, "line", None) or None
    node = data
    for part in loc:
        if isinstance(node, LineDict) and isinstance(part, str) and part in node:
            best = node.key_lines.get(part, best)
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            best = node.item_lines[part]
            node = node[part]
        else:
            break
        inner = getattr(node, "line", None)
        if inner and not isinstance(node, LineDict | LineList):
            best = inner
    return best


def dotted(loc: Iterable[int | str]) -> str:
    """``('provinces', 3, 'code')`` -> ``provinces[3].code``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def error(location: Location, message: str) -> Problem:
    return Problem(Severity.ERROR, location, message)


def warning(location: Location, message: str) -> Problem:
    return Problem(Severity.WARNING, location, message)


M = TypeVar("M", bound=BaseModel)


def validate(
    model: type[M], data: Any, path: Path, prefix: Sequence[int | str] = ()
) -> tuple[M | None, list[Problem]]:
    """Validate ``data`` (found at ``prefix`` inside ``path``) into ``model``.

    Returns the model or ``None`` plus one located problem per pydantic error.
    """
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = (*prefix, *err["loc"])
            field = dotted(loc)
            message = err["msg"]
            if err["type"] == "extra_forbidden":
                message = "unknown key"
                allowed = sorted(model.model_fields) if not err["loc"][:-1] else None
                if allowed:
                    message += f" (valid keys: {', '.join(allowed)})"
            elif err["type"] == "value_error":
                message = message.removeprefix("Value error, ")
            elif err["type"] != "missing" and "input" in err:
                shown = repr(err["input"])
                if len(shown) > 60:
                    shown = shown[:57] + "..."
                message += f", got {shown}"
            problems.append(error(Location.of(path, line_of(data, err["loc"]), field), message))
        return None, problems


def load_model_file(path: Path, model: type[M], kind: str,
                    checks: Callable[[M, Any, Path], list[Problem]] | None = None
                    ) -> tuple[M | None, list[Problem]]:
    """One YAML mapping file as ``model`` (with ``path`` set to where it came from), then
    the cross-checks a schema cannot express; every problem located."""
    data, problems = load_yaml(path)
    if problems:
        return None, problems
    if not isinstance(data, dict):
        return None, [error(Location.of(path, 1), f"a {kind} is a mapping")]
    found, problems = validate(model, data, path)
    if found is None:
        return None, problems
    if "path" in model.model_fields:
        found = found.model_copy(update={"path": str(path)})
    return found, checks(found, data, path) if checks else []
