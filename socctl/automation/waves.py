"""Staged rollout: order the hosts, cut them into waves (canary first), keep a budget.

The rollout goes from the least to the most critical hosts (districts, provinces, the
operations centre, then the data centres; lower security levels first), so a bad change
shows up on a district router before it reaches the primary DC; a host that needs
another (a database standby its primary) comes after it. The first wave is a
single canary host; any failure there stops the rollout. After each later wave the run
stops once failed + unreachable hosts exceed ``max_fail_percent`` of the hosts run so far.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from socctl.automation.result import HostRun, Wave
from socctl.errors import ConfigError

TIER_ORDER = {"district": 0, "province": 1, "ops": 2, "dc": 3}


@dataclass(frozen=True, slots=True)
class RolloutHost:
    name: str
    tier: str
    security_level: int


def rollout_order(hosts: Sequence[RolloutHost],
                  after: Mapping[str, str] | None = None) -> list[str]:
    """Least critical first; but a host listed in ``after`` (host -> the host it needs,
    e.g. a database standby -> its primary) never runs before what it needs."""
    order = [h.name for h in sorted(
        hosts, key=lambda h: (TIER_ORDER.get(h.tier, 9), h.security_level, h.name))]
    for host, needed in (after or {}).items():
        if host in order and needed in order and order.index(host) < order.index(needed):
            order.remove(host)
            order.insert(order.index(needed) + 1, host)
    return order


def plan_waves(hosts: Sequence[str], size: int | None = None,
               percent: float | None = None) -> list[Wave]:
    """One wave with every host, or a canary of one host then waves of ``size``.

    ``percent`` sizes the waves as that share of all hosts, rounded up (at least one).
    """
    if size is not None and percent is not None:
        raise ConfigError("give either --wave or --wave-percent, not both")
    if size is not None and size < 1:
        raise ConfigError(f"--wave must be at least 1, not {size}")
    if percent is not None and not 0 < percent <= 100:
        raise ConfigError(f"--wave-percent must be in (0, 100], not {percent}")
    names = list(hosts)
    if not names:
        return []
    if size is None and percent is None:
        return [Wave(number=1, hosts=names)]
    step = size if size is not None else max(1, math.ceil(len(names) * (percent or 0) / 100))
    waves = [Wave(number=1, hosts=names[:1], canary=True)]
    rest = names[1:]
    for start in range(0, len(rest), step):
        waves.append(Wave(number=len(waves) + 1, hosts=rest[start:start + step]))
    return waves


def over_budget(done: Sequence[HostRun], max_fail_percent: float) -> bool:
    if not done:
        return False
    failed = sum(h.is_failure for h in done)
    return failed * 100 > max_fail_percent * len(done)


RunWave = Callable[[Wave], dict[str, HostRun]]


def roll_out(waves: Sequence[Wave], run_wave: RunWave, max_fail_percent: float
             ) -> tuple[dict[str, HostRun], str | None]:
    """Run the waves in order; returns every host's result and why the rollout stopped.

    Hosts of waves never started are returned as not run. ``run_wave`` is the Ansible run
    of one wave (a failing host inside a wave never stops the others of that wave).
    """
    results: dict[str, HostRun] = {}
    stopped: str | None = None
    for wave in waves:
        if stopped is not None:
            for name in wave.hosts:
                results[name] = HostRun(host=name, wave=wave.number)
            continue
        got = run_wave(wave)
        for name in wave.hosts:
            run = got.get(name) or HostRun(host=name)
            run.wave = wave.number
            if not run.ran and wave.rc not in (None, 0):
                # Ansible stopped before this host produced anything (e.g. a syntax error)
                run.failed = 1
                run.ran = True
            results[name] = run
        done = [results[n] for w in waves if w.number <= wave.number for n in w.hosts]
        failed = [r.host for r in done if r.is_failure]
        if wave is not waves[-1]:
            if wave.canary and failed:
                stopped = f"canary {', '.join(failed)} failed; rollout stopped after wave 1"
            elif over_budget(done, max_fail_percent):
                stopped = (f"{len(failed)} of {len(done)} hosts failed, over the budget of "
                           f"{max_fail_percent:g}%; rollout stopped after wave {wave.number}")
    return results, stopped
