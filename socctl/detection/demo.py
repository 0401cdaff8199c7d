"""The demo's attack step: a real, bounded SSH password-guessing attack on a lab router,
the router's own sshd log through the collector and the detection engine, grouped alerts.

hydra runs from the machine's side of the management bridge (the only place that reaches
the lab hosts' management addresses), with a fixed number of guesses, 4 tasks and a time
limit, against a lab address only (198.18.0.0/15); then the attacker logs in with the
right password (sshpass reads it from stdin: never on a command line or in an
environment variable of this process).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from socctl.config import Settings
from socctl.errors import LabError, SocctlError
from socctl.lab.plan import LAB_NETWORK

TARGET = "p01-rtr1"


@dataclass(frozen=True)
class Attack:
    target: str
    attacker_ip: str
    guesses: int
    auth_log: str  # the target's sshd log after the attack


def brute_force(settings: Settings, target: str = TARGET, guesses: int = 24,
                timeout: float = 90) -> Attack:
    """Guess ``netops``'s password on ``target`` ``guesses`` times, then log in."""
    from socctl.lab import runtime

    missing = [tool for tool in ("hydra", "sshpass") if shutil.which(tool) is None]
    if missing:
        raise LabError(f"{' and '.join(missing)} not installed", hint="./dev installs them")
    plan = runtime.load_plan(settings)
    target_ip = str(plan.host(target).management.ip)
    if ip_address(target_ip) not in LAB_NETWORK:
        raise LabError(f"{target} is at {target_ip}, outside the lab network {LAB_NETWORK}")
    route = subprocess.run(["ip", "-o", "route", "get", target_ip], capture_output=True,
                           text=True, check=True).stdout.split()
    attacker_ip = route[route.index("src") + 1]
    with tempfile.TemporaryDirectory(prefix="socctl-attack-") as work:
        words = Path(work) / "guesses.txt"
        words.write_text("\n".join(f"Winter2026!{i}" for i in range(guesses)) + "\n")
        # Two guesses per connection: hydra goes on guessing on one connection until sshd
        # cuts it at MaxAuthTries (3 on strict hosts, 6 on others), then waits ~30 s
        # before it tries the cut guess again (24 guesses on 4 tasks took 50 s, not 12).
        tasks = max(1, min(16, -(-guesses // 2)))
        subprocess.run(["hydra", "-l", "netops", "-P", str(words), "-t", str(tasks), "-I",
                        "-q", f"ssh://{target_ip}"], capture_output=True, text=True,
                       timeout=timeout, check=False)
    password = runtime.lab_secrets(runtime.LabPaths.of(settings))["netops_password"]
    subprocess.run([
        "sh", "-c", 'SSHPASS="$(cat)" exec sshpass -e ssh -o StrictHostKeyChecking=no '
        "-o UserKnownHostsFile=/dev/null -o PreferredAuthentications=password "
        f"-o PubkeyAuthentication=no -o ConnectTimeout=5 netops@{target_ip} 'show version'"],
        input=password, capture_output=True, text=True, timeout=30, check=False)
    log = runtime.run_in(target, ["sh", "-c", "cat /var/log/auth.log 2>/dev/null || "
                                  "grep sshd /var/log/syslog"]).stdout
    return Attack(target, attacker_ip, guesses, log)


def demo_attack(settings: Settings) -> tuple[str, dict[str, Any]]:
    """Attack, then `collect replay` + `detect run --all` + `alerts list` in a scratch
    state directory (``<state>/demo/detect``); the analyst's view is one alert per
    attack, on the attacker."""
    from socctl.collector.pipeline import replay_files, store_path
    from socctl.detection.runner import Detector, open_db
    from socctl.triage.store import AlertStore

    attack = brute_force(settings)
    local = settings.demo_scratch("detect")
    log = local.state_dir / f"{attack.target}-auth.log"
    log.write_text(attack.auth_log, encoding="utf-8")
    replayed = replay_files(local, "auth", [log])
    conn = open_db(store_path(local))
    try:
        Detector.from_path(settings.project_root / "detections",
                           timezone=settings.timezone).run(conn)
        alerts = AlertStore(conn).query()
    finally:
        conn.close()
    on_attacker = [a for a in alerts if attack.attacker_ip in str(a.entity)]
    if not on_attacker:
        raise SocctlError(f"no alert on the attacker {attack.attacker_ip} after "
                          f"{attack.guesses} guesses ({replayed.stored} events stored)")
    titles = "; ".join(f"{a.rule_title} ({a.count} events)" for a in on_attacker)
    return (f"hydra: {attack.guesses} guesses + a login on {attack.target} from "
            f"{attack.attacker_ip}; {replayed.stored} sshd events -> {len(alerts)} alert(s): "
            f"{titles}"), {"alerts": [a.to_dict() for a in alerts],
                           "store": str(store_path(local))}
