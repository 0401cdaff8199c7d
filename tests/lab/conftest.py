"""The lab fixture: brought up once per session, always torn down.

Lab tests need root and the lab's Debian packages; elsewhere they skip with the reason.
CI runs as root with the packages installed, so there they run.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator

import pytest

from socctl.config import Settings, load_settings
from socctl.errors import LabError
from socctl.lab import runtime
from socctl.lab.plan import LabPlan
from tests.conftest import REPO


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "lab tests need root (network namespaces, mounts)"
    try:
        runtime.preflight()
    except LabError as exc:
        return f"lab unavailable: {exc}"
    return None


@pytest.fixture(scope="session")
def lab_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = load_settings(environ={"SOCCTL_INVENTORY": str(REPO / "inventory")})
    state = tmp_path_factory.mktemp("state")
    return Settings(project_root=REPO, inventory=REPO / "inventory", state_dir=state,
                    lab_profile=settings.lab_profile)


# There is one lab per machine (its namespaces, bridge and runtime directory are fixed), so
# concurrent test sessions (several worktrees, a developer's shell) queue for it here; the
# socctl processes a test starts act for this session (runtime.claim).
LAB_LOCK_WAIT = 3600.0


@pytest.fixture(scope="session")
def lab(lab_settings: Settings) -> Iterator[LabPlan]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    runtime.claim(wait=LAB_LOCK_WAIT)  # released when this test process exits
    atexit.register(runtime.down, lab_settings)
    plan = runtime.up(lab_settings)
    try:
        yield plan
    finally:
        runtime.down(lab_settings)
