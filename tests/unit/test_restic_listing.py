"""The restic restore test's comparison, on real restic output (a repository in tmp).

Runs the real restic binary (Debian's, installed by ./dev); skips when it is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from socctl.backup.restic import compare_restore, snapshot_files

pytestmark = pytest.mark.skipif(shutil.which("restic") is None,
                                reason="restic is not installed (./dev installs it)")


def _restic(repo: Path, *args: str) -> str:
    env = {**os.environ, "RESTIC_PASSWORD": "unit-test-only", "RESTIC_CACHE_DIR": str(repo)}
    return subprocess.run(["restic", "--no-cache", "-r", str(repo), *args], env=env,
                          capture_output=True, text=True, check=True, timeout=120).stdout


def _tree(root: Path) -> dict[str, int]:
    """Regular files, as `find -type f` lists them on the host (symlinks are not)."""
    return {"/" + str(p.relative_to(root)): p.stat().st_size
            for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def test_restored_tree_is_compared_with_the_snapshot_listing(tmp_path: Path) -> None:
    source = tmp_path / "src" / "etc"
    (source / "ssh").mkdir(parents=True)
    (source / "hosts").write_text("127.0.0.1 localhost\n")
    (source / "ssh" / "sshd_config").write_text("PermitRootLogin no\n" * 50)
    (source / "empty").write_text("")
    (source / "link").symlink_to("hosts")
    repo = tmp_path / "repo"
    _restic(repo, "init")
    _restic(repo, "backup", "--host", "h1", str(source))
    snapshot, expected = snapshot_files(_restic(repo, "ls", "--json", "latest", "--host",
                                                "h1"))
    assert snapshot["hostname"] == "h1" and snapshot["short_id"]
    src = str(source)
    assert expected == {f"{src}/hosts": 20, f"{src}/ssh/sshd_config": 950, f"{src}/empty": 0}
    # the source changes after the backup: the restore test must not care
    (source / "hosts").write_text("changed after the backup\n")
    target = tmp_path / "restore"
    _restic(repo, "restore", snapshot["short_id"], "--verify", "--target", str(target))
    assert compare_restore(expected, _tree(target)) == []
    # a file the restore lost, a truncated one and a stray one are all reported
    (target / src.lstrip("/") / "empty").unlink()
    (target / src.lstrip("/") / "ssh" / "sshd_config").write_text("x")
    (target / src.lstrip("/") / "stray").write_text("?")
    problems = compare_restore(expected, _tree(target))
    assert problems == [f"missing {src}/empty",
                        f"size {src}/ssh/sshd_config: 1 != 950 in the snapshot",
                        f"unexpected {src}/stray"]
