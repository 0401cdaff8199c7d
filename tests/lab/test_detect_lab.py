"""Real attack logs from the lab: hydra, from the management network (the machine's own
namespace: lab hosts do not reach each other's management addresses), guesses the netops
password of a router's own sshd, then the attacker logs in with the right one. The
router's auth.log (written by its own sshd + rsyslog) goes through `socctl collect
replay` and `socctl detect run --all`, which must give exactly one grouped brute-force
alert and one success-after-brute-force alert on the attacker's address, and nothing on
the lab's own key-based root logins.

Bounded: 24 guesses, 4 tasks, a 90 s timeout, lab-only addresses (198.18.0.0/15)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from socctl.config import Settings
from socctl.detection.demo import brute_force
from socctl.lab import runtime
from socctl.lab.plan import LabPlan
from tests.lab.analyst import replay_and_detect

TARGET = "p01-rtr1"


def test_hydra_then_login_gives_grouped_alerts_on_the_attacker(
        lab: LabPlan, lab_settings: Settings, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("hydra") is None or shutil.which("sshpass") is None:
        pytest.skip("hydra and sshpass are needed (./dev installs them)")
    attack = brute_force(lab_settings, TARGET, guesses=24)
    attacker_ip, log = attack.attacker_ip, attack.auth_log
    password = runtime.lab_secrets(runtime.LabPaths.of(lab_settings))["netops_password"]
    # sshd logs through the host's own rsyslog (auth facility -> auth.log)
    assert f"Failed password for netops from {attacker_ip}" in log, log[-1500:]
    assert f"Accepted password for netops from {attacker_ip}" in log, log[-1500:]
    auth = tmp_path / "auth.log"
    auth.write_text(log, encoding="utf-8")

    _, alerts = replay_and_detect(auth, tmp_path / "state", monkeypatch)
    got = sorted((a["rule_title"], a.get("source.ip")) for a in alerts)
    assert got == [("SSH Brute Force From One Source", attacker_ip),
                   ("SSH Successful Login After Brute Force From the Same Source",
                    attacker_ip)], got
    brute = next(a for a in alerts if a["rule_title"].startswith("SSH Brute"))
    assert brute["count"] >= 20  # every failed guess sshd logged, in one alert
    assert password not in log and password not in json.dumps(alerts)
