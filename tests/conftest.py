"""Shared test helpers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


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
