"""Run one task per device: bounded concurrency, waves with a failure budget, results as
data, and a JSON record of every run under the state directory.

A device's failure is caught and stored on its result; the others go on. Between waves
the budget is checked: past it, the remaining devices are not touched and say why (a bad
template must not reach 3,000 routers).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from socctl.automation.waves import RolloutHost, plan_waves, rollout_order
from socctl.errors import SocctlError
from socctl.inventory.model import Device, Inventory
from socctl.results import HostResult, RunResult

DEFAULT_CONCURRENCY = 20

Task = Callable[[Device], HostResult]
Progress = Callable[[HostResult], None]


@dataclass(frozen=True, slots=True)
class RunOptions:
    concurrency: int = DEFAULT_CONCURRENCY
    wave_size: int = 0
    """Devices per wave after a one-device canary; 0 means one wave of everything."""
    failure_budget: int = -1
    """Failed devices tolerated before the next wave is cancelled; -1: no limit."""


def _guarded(task: Task, device: Device) -> HostResult:
    try:
        return task(device)
    except SocctlError as exc:
        return HostResult(device.name, failed=True, message=str(exc),
                          exception=type(exc).__name__)
    except Exception as exc:  # one device's bug must not stop the run
        return HostResult(device.name, failed=True,
                          message=f"{device.name}: internal error: {type(exc).__name__}: {exc}",
                          exception=type(exc).__name__)


def run(operation: str, devices: Sequence[Device], task: Task,
        options: RunOptions = RunOptions(), progress: Progress | None = None) -> RunResult:
    """Run ``task`` on every device, wave by wave, in the given (rollout) order.

    Waves are cut as ``socctl provision`` cuts them (:func:`plan_waves`): with a wave size,
    a one-device canary first, and a failed canary stops the run. After any wave, more
    failures than ``failure_budget`` cancel the waves not yet started.
    """
    result = RunResult(operation)
    by_name = {d.name: d for d in devices}
    waves = plan_waves(list(by_name), options.wave_size if options.wave_size > 0 else None)
    failed = 0
    stopped: str | None = None
    with ThreadPoolExecutor(max_workers=max(1, options.concurrency)) as pool:
        for wave in waves:
            if stopped is None and 0 <= options.failure_budget < failed:
                stopped = (f"failure budget {options.failure_budget} exhausted "
                           f"({failed} failed) before wave {wave.number}")
            if stopped is not None:
                for name in wave.hosts:
                    skipped = HostResult(name, failed=True, message=f"not attempted: {stopped}",
                                         data={"skipped": True, "wave": wave.number})
                    result.hosts.append(skipped)
                    if progress:
                        progress(skipped)
                continue
            futures = [pool.submit(_guarded, task, by_name[n]) for n in wave.hosts]
            wave_failed = 0
            for future in as_completed(futures):
                host = future.result()
                host.data.setdefault("wave", wave.number)
                result.hosts.append(host)
                wave_failed += host.failed
                if progress:
                    progress(host)
            failed += wave_failed
            if wave.canary and wave_failed:
                stopped = f"canary {wave.hosts[0]} failed"
    order = {name: i for i, name in enumerate(by_name)}
    result.hosts.sort(key=lambda h: order.get(h.host, len(order)))
    return result


def rollout(inventory: Inventory, devices: Sequence[Device]) -> list[Device]:
    """The devices in rollout order (districts first, the DCs last), as provisioning."""
    order = rollout_order([RolloutHost(d.name, inventory.sites[d.site].tier, d.security_level)
                           for d in devices])
    by_name = {d.name: d for d in devices}
    return [by_name[n] for n in order]


def record(state_dir: Path, run_result: RunResult, extra: dict[str, Any]) -> Path:
    """Write the run as JSON (0600: configs may be sensitive) and return its path."""
    folder = state_dir / "network" / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    path = folder / f"{stamp}-{run_result.operation}.json"
    data = {"started": extra.pop("started", None), "finished": time.time(), **extra,
            **run_result.to_dict()}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=1, default=str)
    return path
