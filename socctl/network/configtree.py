"""IOS-style configuration as a tree: parse, normalise, compare, and plan the changes.

Both platforms socctl drives today (Cisco IOS and FRR's vtysh) write configuration as
indented blocks: a header line (``interface wan1``) and its indented children. Comparing
two configs as trees, not as text, is what lets socctl apply *only the needed lines* and
restore a backup by applying the difference back (the logic of FRR's ``frr-reload.py``,
but run on the controller: a vtysh login shell offers no Python on the far end).

Platform details (what is noise, how a line is negated, which blocks may be reordered)
come from the driver; this module knows none of them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field


@dataclass
class Node:
    """One configuration line and its indented children (in device order)."""

    line: str
    children: list[Node] = field(default_factory=list)

    def child(self, line: str) -> Node | None:
        for node in self.children:
            if node.line == line:
                return node
        return None

    def lines(self, depth: int = 0) -> list[str]:
        out = []
        for node in self.children:
            out.append(" " * depth + node.line)
            out += node.lines(depth + 1)
        return out


def parse(text: str, ignore: re.Pattern[str] | None = None,
          block_end: Sequence[str] = ("exit", "exit-address-family", "end", "!")) -> Node:
    """Indentation decides nesting; ignored lines, block terminators and blanks are dropped.

    Duplicate lines at one level are collapsed (FRR prints some service lines twice).
    """
    root = Node("")
    stack: list[tuple[int, Node]] = [(-1, root)]
    index: dict[int, dict[str, Node]] = {id(root): {}}
    ends = frozenset(block_end)
    for raw in text.splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped or stripped in ends or (ignore is not None and ignore.search(line)):
            continue
        indent = len(line) - len(line.lstrip(" "))
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        siblings = index[id(parent)]
        node = siblings.get(stripped)
        if node is None:
            node = Node(stripped)
            parent.children.append(node)
            siblings[stripped] = node
            index[id(node)] = {}
        stack.append((indent, node))
    return root


def canonical(tree: Node, sortable: Callable[[str], bool]) -> Node:
    """Blocks whose header ``sortable`` accepts are ordered by header, kept together at the
    place of the first one (FRR moves an interface block to the top when it is edited)."""
    out = Node(tree.line)
    movable = sorted((n for n in tree.children if sortable(n.line)), key=lambda n: n.line)
    placed = False
    for node in tree.children:
        if sortable(node.line):
            if not placed:
                out.children += [canonical(m, sortable) for m in movable]
                placed = True
            continue
        out.children.append(canonical(node, sortable))
    return out


def render(tree: Node) -> str:
    return "\n".join(tree.lines()) + "\n" if tree.children else ""


def unified(name: str, running: str, intended: str) -> str:
    """``-`` lines are on the device and not intended; ``+`` lines are intended and missing."""
    return "".join(difflib.unified_diff(
        running.splitlines(keepends=True), intended.splitlines(keepends=True),
        fromfile=f"{name} (running)", tofile=f"{name} (intended)"))


@dataclass(frozen=True, slots=True)
class Change:
    """A command path (parents then the line) to add, or to remove with its negation."""

    path: tuple[str, ...]
    remove: bool


def changes(current: Node, target: Node, path: tuple[str, ...] = ()) -> list[Change]:
    """What turns ``current`` into ``target``: removals first (deepest context kept), then
    additions in target order, so single-valued settings (``ip ospf cost``) are replaced."""
    removals: list[Change] = []
    additions: list[Change] = []
    for node in current.children:
        wanted = target.child(node.line)
        if wanted is None:
            removals.append(Change((*path, node.line), remove=True))
            if node.children:
                # Keep the children's paths too: a driver that cannot delete the block
                # itself (a physical interface) negates them one by one instead.
                removals += [Change((*path, node.line, *c.path), True)
                             for c in _all(node)]
        else:
            sub = changes(node, wanted, (*path, node.line))
            removals += [c for c in sub if c.remove]
            additions += [c for c in sub if not c.remove]
    for node in target.children:
        existing = current.child(node.line)
        if existing is None:
            additions.append(Change((*path, node.line), remove=False))
            additions += [Change((*path, node.line, *c.path), False) for c in _all(node)]
    return removals + additions


def _all(node: Node) -> Iterable[Change]:
    for child in node.children:
        yield Change((child.line,), False)
        for deeper in _all(child):
            yield Change((child.line, *deeper.path), False)


def commands(plan: Sequence[Change], negate: Callable[[str], str | None],
             deletable: Callable[[tuple[str, ...]], bool]) -> list[str]:
    """Config-mode commands for ``plan``: contexts entered and left explicitly.

    A removed block is deleted with one negated header where the driver allows it
    (``no router ospf``); otherwise its lines are negated one by one (a physical interface
    cannot be deleted). ``negate`` may return ``None`` for lines that need no removal
    because their replacement overrides them (``hostname``).
    """
    out: list[str] = []
    context: tuple[str, ...] = ()
    deleted: list[tuple[str, ...]] = []
    for change in plan:
        if any(change.path[:len(d)] == d for d in deleted):
            continue
        *parents, line = change.path
        if change.remove:
            if _has_children(plan, change.path):
                if not deletable(change.path):
                    continue
                deleted.append(change.path)
            command = negate(line)
            if command is None:
                continue
        else:
            command = line
        target = tuple(parents)
        common = 0
        while (common < len(context) and common < len(target)
               and context[common] == target[common]):
            common += 1
        out += ["exit"] * (len(context) - common)
        out += list(target[common:])
        context = target
        out.append(command)
        if not change.remove and _has_children(plan, change.path):
            context = change.path  # an added block header enters its context
    out += ["exit"] * len(context)
    return out


def _has_children(plan: Sequence[Change], path: tuple[str, ...]) -> bool:
    return any(len(c.path) > len(path) and c.path[:len(path)] == path for c in plan)
