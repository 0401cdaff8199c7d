"""Wording shared by messages: long lists cut to what a line can hold."""

from __future__ import annotations

from collections.abc import Sequence


def some(items: Sequence[str], limit: int = 8) -> str:
    """The first ``limit`` items and how many were left out: an error or summary naming
    hundreds of hosts or addresses stays one readable line, and still says how many."""
    shown = ", ".join(items[:limit])
    rest = len(items) - limit
    return f"{shown} and {rest} more" if rest > 0 else shown
