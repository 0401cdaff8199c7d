"""WAL segment arithmetic and archive gap detection (pure functions, unit-tested).

Segment names are ``TTTTTTTTLLLLLLLLSSSSSSSS`` (timeline, log, segment); with 16 MiB
segments the segment part runs 00..FF. A promotion starts a new timeline at the segment
where it switched, so continuity is judged on (log, segment) across timelines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

SEGMENTS_PER_LOG = 0x100  # 4 GiB per log file / 16 MiB segments
# A promotion archives the old timeline's last, incomplete segment as ``<name>.partial``
# (a segment name all the same); ``<timeline>.history`` files are not segments.
_SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(?:\.partial)?"
                      r"(?:-[0-9a-f]{40})?(?:\.(?:gz|lz4|zst|xz|bz2))?$")


def parse(name: str) -> tuple[int, int] | None:
    """(timeline, absolute segment number) of a WAL file name, or None."""
    match = _SEGMENT.match(name)
    if not match:
        return None
    tli, log, seg = (int(g, 16) for g in match.groups())
    return tli, log * SEGMENTS_PER_LOG + seg


def number(name: str) -> int:
    parsed = parse(name)
    if parsed is None:
        raise ValueError(f"not a WAL segment name: {name!r}")
    return parsed[1]


def name_of(timeline: int, absolute: int) -> str:
    return f"{timeline:08X}{absolute // SEGMENTS_PER_LOG:08X}{absolute % SEGMENTS_PER_LOG:08X}"


def gaps(archived: Iterable[str], start: str, stop: str | None = None) -> list[tuple[str, str]]:
    """Missing runs of segments between ``start`` and ``stop`` (default: newest archived).

    Returns ``(first missing, last missing)`` pairs, named on the timeline of ``start``.
    """
    present = {n for name in archived if (p := parse(name.rsplit("/", 1)[-1])) for n in [p[1]]}
    parsed = parse(start)
    if parsed is None:
        raise ValueError(f"not a WAL segment name: {start!r}")
    tli, first = parsed
    last = number(stop) if stop else max(present, default=first)
    out: list[tuple[str, str]] = []
    run_start: int | None = None
    for n in range(first, last + 1):
        if n not in present:
            if run_start is None:
                run_start = n
        elif run_start is not None:
            out.append((name_of(tli, run_start), name_of(tli, n - 1)))
            run_start = None
    if run_start is not None:
        out.append((name_of(tli, run_start), name_of(tli, last)))
    return out
