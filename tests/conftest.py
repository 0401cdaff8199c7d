"""Shared test helpers."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# The collectors read zone-less times (RFC 3164) in this host's zone (collect.yaml:
# timezone: local) and the fixtures' expected times are UTC: the suite runs in UTC, and
# so do the collectors and lab daemons it starts, whatever the machine's zone.
# tests/unit/test_collect_replay.py sets another zone where that is what it tests.
os.environ["TZ"] = "UTC"
time.tzset()


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``./dev test`` runs two xdist workers: every lab test on one of them, in file order
    (they share one lab: the converge before the checks of what it built, the teardown
    test last), and the unit tests spread over both, using the time the lab tests spend
    waiting on daemons, timers and playbooks. The lab is one scope, decided here by path:
    xdist's own ``xdist_group`` suffix is not applied under pytest 9 (seen: 3.8.0)."""
    from xdist.scheduler import LoadScopeScheduling

    class LabApart(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "lab" if nodeid.startswith("tests/lab/") else nodeid

    return LabApart(config, log)


@pytest.fixture
def make_inventory(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Copy the valid minimal inventory, overlay the files of an invalid case on it."""

    def build(case: str | None = None) -> Path:
        target = tmp_path / "inventory"
        shutil.copytree(FIXTURES / "inventory" / "valid" / "minimal", target)
        if case is not None:
            for path in (FIXTURES / "inventory" / "invalid" / case).glob("*.yaml"):
                if path.name != "expect.yaml":
                    shutil.copy(path, target / path.name)
        return target

    return build
