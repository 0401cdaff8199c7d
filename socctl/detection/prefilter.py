"""A literal prefilter that spares SQLite most of the plain rules' string predicates.

Why: the web rules are dozens of ``LIKE '%..%'`` and REGEXP tests each; on 1M events
SQLite evaluated ~170 of them on every request row (6 s of a 9 s run), although almost
every row matches none. Each rule, however, can only match a row that contains one of a
few literals: ``union`` for the UNION SELECT branch, ``sleep(`` for the time-based one...
Finding those for all rules at once is one Aho-Corasick pass over each value (Rust,
``ahocorasick_rs``), about the cost of a single LIKE.

The prefilter is only ever a *necessary* condition, derived from the rule's own parsed
detection: it decides which rules' SQL SQLite evaluates on a row, never whether a rule
matches. The SQL the pySigma backend generated stays the one judge, so a rule cannot
match differently with and without the prefilter (the unit tests compare both).
Derivation, per node of the condition tree:

* a string value needs its longest literal piece (between wildcards) in its column;
* a regular expression needs the literals it cannot match without (from ``re``'s parser);
* AND needs all its children's needs; OR needs one of its children's needs; the tree is
  kept as OR-of-AND terms (:func:`terms`), large products flattened (:func:`resolve`,
  which picks an AND's rarest part on a sample of the rows);
* NOT, numbers, CIDRs, placeholders, field references need nothing we can use: a rule
  that needs nothing usable is evaluated on every row, as without the prefilter.

Values and literals are compared case-folded: SQLite's NOCASE and ``(?i)`` fold at most
what ``str.casefold`` folds, so folding keeps the prefilter a superset of the SQL.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: A leaf: (column, case-folded literal) pairs, any one of which a matching row contains.
Literals = frozenset[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every part is necessary (AND, a regex's sequence): :func:`terms` requires them all;
    where a product of terms grows too large, :func:`resolve` keeps the rarest one."""

    parts: tuple[Need, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """One of the parts is necessary (OR, a regex's alternation)."""

    parts: tuple[Need, ...]


#: What a row must contain for a rule to match; None: nothing usable.
Need = Literals | AllOf | AnyOf | None

#: Below this many string predicates per row, a Python call per row costs more than the
#: SQL it saves (measured: one UDF call with the automaton ~ 15 LIKEs on 1M rows).
MIN_PREDICATES = 16


def rarity(literal: str) -> int:
    """A guess at how seldom text contains ``literal`` when there is no sample: its
    length, punctuation counting three times a letter."""
    return sum(1 if ch.isalnum() else 3 for ch in literal)


def _all(parts: Iterable[Need]) -> Need:
    usable = tuple(p for p in parts if p)
    if not usable:
        return None
    return usable[0] if len(usable) == 1 else AllOf(usable)


def _any(parts: Sequence[Need]) -> Need:
    if not parts or any(not p for p in parts):
        return None
    if all(isinstance(p, frozenset) for p in parts):
        return frozenset().union(*parts)  # type: ignore[arg-type]
    return AnyOf(tuple(parts))


def rule_need(sigma_rule: Any, columns: dict[str, str], fulltext: str) -> Need:
    """What a row must contain for ``sigma_rule`` (parsed, before the pipeline) to match.

    ``columns`` maps ECS fields to store columns; keywords search ``fulltext``."""
    from sigma.conditions import (
        ConditionAND,
        ConditionFieldEqualsValueExpression,
        ConditionOR,
        ConditionValueExpression,
    )

    def node(n: Any) -> Need:
        if isinstance(n, ConditionAND):
            return _all(node(a) for a in n.args)
        if isinstance(n, ConditionOR):
            return _any([node(a) for a in n.args])
        if isinstance(n, ConditionFieldEqualsValueExpression):
            column = columns.get(n.field)
            return value_need(column, n.value) if column else None
        if isinstance(n, ConditionValueExpression):
            return value_need(fulltext, n.value)
        return None  # NOT and anything we do not know: no usable need

    conditions = sigma_rule.detection.parsed_condition
    return _any([node(c.parsed) for c in conditions])


def value_need(column: str, value: Any) -> Need:
    from sigma.types import (
        SigmaExpansion,
        SigmaRegularExpression,
        SigmaRegularExpressionFlag,
        SigmaString,
    )

    if isinstance(value, SigmaExpansion):
        return _any([value_need(column, v) for v in value.values])
    if isinstance(value, SigmaRegularExpression):
        flags = re.IGNORECASE if SigmaRegularExpressionFlag.IGNORECASE in value.flags else 0
        pattern = getattr(value.regexp, "original", None) or str(value.regexp)
        return regex_need(column, pattern, flags)
    if isinstance(value, SigmaString):
        if value.contains_placeholder():
            return None
        pieces = [p for p in value.s if isinstance(p, str)]
        longest = max(pieces, key=len, default="")
        return frozenset({(column, longest.casefold())}) if longest else None
    return None


def regex_need(column: str, pattern: str, flags: int = 0) -> Need:
    """Literals every match of ``pattern`` contains (case-folded), as a need tree.

    Uses the standard library's regex parser (private, hence the broad guard: a parser
    change costs speed, never correctness). The rules run on RE2, whose syntax is not
    Python's everywhere: a POSIX class (``[[:digit:]]``) reads to Python as a class and a
    literal ``]``, which made a rule's every match need a ``]``; so any pattern with
    ``[:``, and any the parser warns about, gives no literal."""
    if "[:" in pattern:
        return None
    try:
        from re import _constants as c  # type: ignore[attr-defined]
        from re import _parser  # type: ignore[attr-defined]

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            parsed = _parser.parse(pattern, flags)
    except Exception:  # any failure means "no usable literal"
        return None

    def seq(items: Iterable[tuple[Any, Any]]) -> Need:
        options: list[Need] = []
        run: list[str] = []
        for op, av in items:
            if op is c.LITERAL:
                run.append(chr(av))
                continue
            if run:
                options.append(frozenset({(column, "".join(run).casefold())}))
                run = []
            if op is c.SUBPATTERN:
                options.append(seq(av[3]))
            elif op is c.ATOMIC_GROUP:
                options.append(seq(av))
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT) and av[0] >= 1:
                options.append(seq(av[2]))
            elif op is c.BRANCH:
                options.append(_any([seq(alt) for alt in av[1]]))
            # anything else (classes, anchors, lookarounds, backrefs) breaks the run
        if run:
            options.append(frozenset({(column, "".join(run).casefold())}))
        return _all(options)

    return seq(parsed)


def leaves(need: Need) -> Iterable[tuple[str, str]]:
    if isinstance(need, frozenset):
        yield from need
    elif need is not None:
        for part in need.parts:
            yield from leaves(part)


def resolve(need: Need, rate: Callable[[Literals], float] | None = None) -> Literals | None:
    """Flatten a need tree into one literal set: for an AND, the part whose literals the
    fewest rows contain (``rate``: measured on a sample; without one, :func:`rarity`)."""
    if need is None or isinstance(need, frozenset):
        return need
    resolved = [resolve(p, rate) for p in need.parts]
    if isinstance(need, AnyOf):
        if any(r is None for r in resolved):
            return None
        return frozenset().union(*resolved)  # type: ignore[arg-type]
    usable = [r for r in resolved if r]
    if not usable:
        return None

    def cost(lits: Literals) -> tuple[float, int, int]:
        guess = min(rarity(lit) for _col, lit in lits)
        return (rate(lits) if rate else 0.0, -guess, len(lits))

    return min(usable, key=cost)


def sample_rate(rows: Sequence[Sequence[object]], columns: Sequence[str]
                ) -> Callable[[Literals], float]:
    """The share of ``rows`` (values of ``columns``) containing one of the literals."""
    if not rows:
        return lambda _lits: 0.0
    folded = [[v.casefold() if isinstance(v, str) else ("" if v is None else str(v))
               for v in row] for row in rows]
    at = {col: i for i, col in enumerate(columns)}
    memo: dict[tuple[str, str], int] = {}

    def hits(col: str, lit: str) -> int:
        key = (col, lit)
        if key not in memo:
            i = at[col]
            memo[key] = sum(1 << n for n, row in enumerate(folded) if lit in row[i])
        return memo[key]

    def rate(lits: Literals) -> float:
        bits = 0
        for col, lit in lits:
            bits |= hits(col, lit)
        return bits.bit_count() / len(folded)

    return rate


#: A need as OR of ANDs of literal sets; beyond this many terms a subtree is flattened.
MAX_TERMS = 16

Terms = list[tuple[Literals, ...]]


def terms(need: Need, rate: Callable[[Literals], float] | None = None) -> Terms | None:
    """``need`` as alternatives (OR) of literal sets that must all hold (AND): the
    SQL-injection rule is "union and select, or a quote and a space and or/and..., or
    one of the functions", which rejects a benign ``union+station`` or ``O'Brien`` that
    any single literal set lets through. Large products fall back to :func:`resolve`."""
    if need is None:
        return None
    if isinstance(need, frozenset):
        return [(need,)]
    parts = [terms(p, rate) for p in need.parts]
    if isinstance(need, AnyOf):
        if any(p is None for p in parts):
            return None
        out: Terms = [t for p in parts for t in p]  # type: ignore[union-attr]
    else:
        out = [()]
        for p in parts:
            if p is not None:
                out = [a + b for a in out for b in p]
                if len(out) > MAX_TERMS:
                    break
    if len(out) <= MAX_TERMS:
        return out
    flat = resolve(need, rate)
    return [(flat,)] if flat else None


@dataclass(frozen=True)
class Prefilter:
    """Which rules of a group may match a row: a bitmask (bit k = rule k).

    Each column has one automaton over every literal the rules look for in it; a value's
    found literals (a bitmask over them) decide, per rule, whether one of its terms can
    still hold, taking literal sets of other columns as satisfied. A row's mask is the AND
    of its columns' masks: each is necessary (the need trees are monotone: AND/OR only).
    Values repeat a lot in logs (paths, agents, messages): masks are memoised per value,
    within a bound."""

    columns: tuple[str, ...]
    always: int  # rules with no usable need: always evaluated
    automata: tuple[Any, ...]
    #: per column, per rule with a need: (bit, terms as tuples of literal bitmasks; an
    #: empty tuple = a term this column cannot refute)
    checks: tuple[tuple[tuple[int, tuple[tuple[int, ...], ...]], ...], ...]
    free: tuple[int, ...]  # per column: rule bits this column never refutes
    memo: tuple[dict[object, int], ...]

    MEMO_MAX = 200_000

    @staticmethod
    def columns_of(needs: Sequence[Need]) -> tuple[str, ...]:
        return tuple(sorted({col for need in needs for col, _lit in leaves(need)}))

    @classmethod
    def build(cls, needs: Sequence[Need], rate: Callable[[Literals], float] | None = None
              ) -> Prefilter | None:
        """None when no rule of the group has a usable need (nothing to spare)."""
        import ahocorasick_rs

        all_terms = [terms(need, rate) for need in needs]
        if not any(all_terms):
            return None
        always = 0
        literals: dict[str, dict[str, int]] = {}  # column -> literal -> index
        for bit, rule_terms in enumerate(all_terms):
            if not rule_terms:
                always |= 1 << bit
                continue
            for term in rule_terms:
                for lits in term:
                    for column, literal in lits:
                        index = literals.setdefault(column, {})
                        index.setdefault(literal, len(index))
        columns = tuple(sorted(literals))
        checks, free = [], []
        for column in columns:
            index = literals[column]
            col_checks, col_free = [], 0
            for bit, rule_terms in enumerate(all_terms):
                if not rule_terms:
                    continue
                projected = []
                for term in rule_terms:
                    masks = []
                    for lits in term:
                        if any(col != column for col, _lit in lits):
                            continue  # another column may satisfy it: not refutable here
                        mask = 0
                        for _col, literal in lits:
                            mask |= 1 << index[literal]
                        masks.append(mask)
                    projected.append(tuple(masks))
                if any(not t for t in projected):
                    col_free |= 1 << bit
                else:
                    col_checks.append((1 << bit, tuple(projected)))
            checks.append(tuple(col_checks))
            free.append(col_free)
        automata = tuple(ahocorasick_rs.AhoCorasick(list(literals[col])) for col in columns)
        return cls(columns, always, automata, tuple(checks), tuple(free),
                   tuple({} for _ in columns))

    def function(self) -> Callable[..., int]:
        """The UDF SQLite calls once per row: locals only, a memo lookup per value, the
        automaton on a miss (a method call with attribute lookups cost 10% more)."""
        memo, always, scan = self.memo, self.always, self._scan
        everything = -1

        def prefilter(*values: object) -> int:
            mask = everything
            for i, value in enumerate(values):
                found = memo[i].get(value)
                mask &= scan(i, value) if found is None else found
            return mask | always

        return prefilter

    def _scan(self, i: int, value: object) -> int:
        found = 0
        if value is not None:
            text = value if isinstance(value, str) else str(value)
            for index, _start, _end in self.automata[i].find_matches_as_indexes(
                    text.casefold(), overlapping=True):
                found |= 1 << index
        mask = self.free[i]
        for bit, rule_terms in self.checks[i]:
            for term in rule_terms:
                if all(found & m for m in term):
                    mask |= bit
                    break
        memo = self.memo[i]
        if len(memo) >= self.MEMO_MAX:
            memo.clear()
        memo[value] = mask
        return mask
