"""The lab runtime's rules that need no lab: one session at a time, what a failed start or
an incomplete teardown leaves, files that survive a full disk, addresses kept in the lab.

Real processes stand in for other sessions and half-started hosts (started here, ended by
their PID); the namespaces themselves are covered by tests/lab/test_lab.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

import pytest

from socctl import demo
from socctl.config import Settings
from socctl.errors import LabError
from socctl.lab import runtime
from socctl.lab.plan import LabPlan, _check_addresses
from tests.conftest import REPO

HOLD = textwrap.dedent("""
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.ftruncate(fd, 0); os.write(fd, f"{os.getpid()}\\n".encode())
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
""")

CLAIM_THEN_CHILD = textwrap.dedent("""
    import subprocess, sys
    from socctl.lab import runtime
    from pathlib import Path
    runtime.LAB_LOCK = Path(sys.argv[1])
    runtime.claim()
    child = ("import sys; from pathlib import Path; from socctl.lab import runtime; "
             "runtime.LAB_LOCK = Path(sys.argv[1]); runtime.claim(); print('child ok')")
    print(subprocess.run([sys.executable, "-c", child, sys.argv[1]], capture_output=True,
                         text=True, check=True).stdout.strip())
""")


@pytest.fixture
def lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "socctl-lab.lock"
    monkeypatch.setattr(runtime, "LAB_LOCK", path)
    monkeypatch.setattr(runtime, "_held", {})
    return path


def _holder(lock: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_lab_held_by_another_session_is_refused_naming_its_pid(lock: Path) -> None:
    other = _holder(lock, 30)
    try:
        with pytest.raises(LabError, match=rf"in use by another session \(pid {other.pid}\)"):
            runtime.claim()
    finally:
        other.kill()
        other.wait()


def test_a_session_queues_behind_another_when_asked_to_wait(lock: Path) -> None:
    other = _holder(lock, 1.0)
    try:
        started = time.monotonic()
        runtime.claim(wait=20)
        assert time.monotonic() - started >= 0.5  # it did wait for the other to end
        assert lock.read_text().strip() == str(os.getpid())
        runtime.claim()  # reentrant in the holding process
    finally:
        other.kill()
        other.wait()


def test_the_holders_children_act_for_its_session(lock: Path) -> None:
    """A test session's socctl subprocesses (drills cutting links) are not refused."""
    result = subprocess.run([sys.executable, "-c", CLAIM_THEN_CHILD, str(lock)],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "child ok"


def _settings(tmp_path: Path) -> Settings:
    return Settings(project_root=REPO, inventory=REPO / "inventory", state_dir=tmp_path)


def test_a_host_that_misses_its_start_deadline_is_ended_not_left_running(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, the late host came up unrecorded: status DOWN, start "already running"."""
    settings = _settings(tmp_path)
    plan = runtime.load_plan(settings)
    monkeypatch.setattr(runtime, "RUNTIME_DIR", tmp_path / "run")
    monkeypatch.setattr(runtime, "READY_TIMEOUT", 1.0)
    runtime._ensure_key(runtime.LabPaths.of(settings))  # before Popen is replaced below
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def slow_host(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = real_popen(["sh", "-c", "sleep 3; echo READY; exec sleep 60"], **kwargs)
        started.append(proc)
        return proc

    monkeypatch.setattr(runtime.subprocess, "Popen", slow_host)
    with pytest.raises(LabError, match="p79-rtr1: timed out"):
        runtime._start_hosts(plan, ["p79-rtr1"], settings)
    (proc,) = started
    assert proc.poll() is not None, "the late host was left running"
    assert _live_in_group(proc.pid) == [], "part of the host's process group runs on"


def _live_in_group(pgid: int) -> list[int]:
    """Processes of a group that are still running (zombies await a reaper: not running)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


def test_down_fails_and_names_what_it_could_not_remove(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lock: Path) -> None:
    monkeypatch.setattr(runtime.os, "geteuid", lambda: 0)
    monkeypatch.setattr(runtime, "RUNTIME_DIR", tmp_path / "run")
    monkeypatch.setattr(runtime, "LAB_STORAGE", tmp_path / "storage")
    monkeypatch.setattr(runtime, "lab_namespaces", lambda: ["socctl-p79-rtr1"])
    monkeypatch.setattr(runtime, "lab_links", lambda: ["slm0"])
    monkeypatch.setattr(runtime, "_kill_netns", lambda ns: runtime._Killed())

    def refuse(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 2, "", "Device or resource busy")

    monkeypatch.setattr(runtime, "_run", refuse)
    with pytest.raises(LabError) as raised:
        runtime.down(_settings(tmp_path))
    assert "network namespace socctl-p79-rtr1" in str(raised.value)
    assert "link slm0" in str(raised.value)


def test_the_lab_needs_root_says_so_instead_of_a_permission_error(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(runtime.os, "geteuid", lambda: 1000)
    for call in (lambda: runtime.status(_settings(tmp_path)),
                 lambda: runtime.nsenter_argv("p79-rtr1", ["true"]),
                 lambda: runtime.fail_host(_settings(tmp_path), "p79-rtr1")):
        with pytest.raises(LabError, match="needs root"):
            call()


def test_a_broken_secrets_file_is_a_located_error_and_secrets_are_written_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = runtime.LabPaths(tmp_path / "lab")
    paths.root.mkdir()
    paths.secrets.write_text("")  # what a full disk left before
    with pytest.raises(LabError, match="secrets file is unreadable") as raised:
        runtime.lab_secrets(paths)
    assert raised.value.location is not None
    assert raised.value.location.path == str(paths.secrets)
    assert "delete it" in (raised.value.hint or "")
    paths.secrets.unlink()

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runtime.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        runtime.lab_secrets(paths)
    assert list(paths.root.iterdir()) == [], "a failed write left a file behind"
    monkeypatch.undo()
    made = runtime.lab_secrets(paths)
    assert json.loads(paths.secrets.read_text()) == made
    assert paths.secrets.stat().st_mode & 0o777 == 0o600


def test_a_lost_public_key_is_derived_again_from_the_private_one(tmp_path: Path) -> None:
    paths = runtime.LabPaths(tmp_path / "lab")
    first = runtime._ensure_key(paths)
    paths.key.with_suffix(".pub").unlink()
    assert runtime._ensure_key(paths).split()[:2] == first.split()[:2]


def test_a_profile_with_addresses_outside_the_lab_range_is_refused(tmp_path: Path) -> None:
    plan: LabPlan = runtime.load_plan(_settings(tmp_path))
    _check_addresses(plan)  # the shipped lab profile is inside 198.18.0.0/15
    host = plan.hosts["p79-rtr1"]
    moved = replace(plan, hosts={**plan.hosts, host.name: replace(
        host, management=IPv4Interface("192.168.1.5/24"))})
    with pytest.raises(LabError, match=r"outside 198\.18\.0\.0/15: p79-rtr1 management "
                                       r"192\.168\.1\.5"):
        _check_addresses(moved)


def test_one_steps_bug_fails_that_step_and_the_demo_goes_on() -> None:
    def broken() -> tuple[str, dict[str, Any]]:
        raise KeyError("hosts")

    step = demo._timed("lab status", broken)
    assert step.status == "failed" and step.detail == "internal error: KeyError: 'hosts'"


def test_an_interrupted_demo_still_takes_the_lab_down_when_asked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = runtime.load_plan(_settings(tmp_path))
    downs: list[Settings] = []
    monkeypatch.setattr(demo.os, "geteuid", lambda: 0)
    monkeypatch.setattr(runtime, "up", lambda settings: plan)
    monkeypatch.setattr(runtime, "down", downs.append)

    def interrupted(settings: Settings) -> list[runtime.HostState]:
        raise KeyboardInterrupt

    monkeypatch.setattr(runtime, "status", interrupted)
    monkeypatch.setattr(demo, "_detections", lambda settings: ("skipped here", {}))
    steps = demo.run_demo(_settings(tmp_path), keep_lab=False)
    with pytest.raises(KeyboardInterrupt):
        for _ in steps:
            pass
    assert len(downs) == 1


def test_lab_exec_exits_as_a_shell_does_when_the_command_is_killed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from socctl.cli.main import cli

    for sig in (signal.SIGTERM, signal.SIGKILL):
        monkeypatch.setattr(runtime, "nsenter_argv",
                            lambda host, argv, sig=sig: ["sh", "-c", f"kill -{int(sig)} $$"])
        with pytest.raises(SystemExit) as exited:
            cli.main(["lab", "exec", "p79-rtr1", "true"], prog_name="socctl")
        assert exited.value.code == 128 + sig
