"""Fixtures shared by the unit tests that drive the CLI end to end."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private state directory (its own embedded store) and an analyst's name."""
    monkeypatch.setenv("SOCCTL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("SOCCTL_EVENTS_DB", raising=False)
    monkeypatch.setenv("SOCCTL_USER", "analyst1")
    return tmp_path
