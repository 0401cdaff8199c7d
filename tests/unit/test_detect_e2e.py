"""End to end without the lab: attack and benign log files -> `socctl collect replay`
(the collector's real parsers, enrichment and SQLite store) -> `socctl detect run --all`
-> grouped alerts -> triage from the CLI. The lab test replays logs the real daemons
wrote (tests/lab/test_detect_lab.py); this one pins the expected alert set exactly."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from socctl.cli.main import cli

ATTACKER_SSH = "198.18.7.7"
ATTACKER_SCAN = "198.18.7.8"
ATTACKER_WEB = "198.18.7.9"
BENIGN = "198.19.128.50"
T0 = dt.datetime(2026, 11, 22, 8, 0, 0)


def _syslog_ts(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).strftime("%b %d %H:%M:%S")


def _nginx_ts(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).strftime("%d/%b/%Y:%H:%M:%S +0000")


def write_logs(folder: Path) -> dict[str, Path]:
    auth, kern, access = [], [], []
    # hydra: 30 root password guesses in a minute, then the guess that works
    for i in range(30):
        auth.append(f"{_syslog_ts(i * 2)} dc-primary-db1 sshd[{3000 + i}]: Failed password "
                    f"for root from {ATTACKER_SSH} port {40000 + i} ssh2")
    auth.append(f"{_syslog_ts(75)} dc-primary-db1 sshd[3100]: Accepted password for root "
                f"from {ATTACKER_SSH} port 40100 ssh2")
    # benign: an admin with a key, one typo by a staff member
    auth.append(f"{_syslog_ts(10)} dc-primary-db1 sshd[3200]: Accepted publickey for alice "
                f"from {BENIGN} port 52000 ssh2: ED25519 SHA256:abc")
    auth.append(f"{_syslog_ts(20)} dc-primary-db1 sshd[3201]: Failed password for nguyenvana "
                f"from {BENIGN} port 52001 ssh2")
    # nmap SYN scan: 100 ports in 10 seconds, dropped by the edge firewall
    for i in range(100):
        kern.append(f"{_syslog_ts(200 + i / 10)} dc-primary-wrtr1 kernel: [81234.{i:06d}] "
                    f"DROP IN=eth1 OUT= SRC={ATTACKER_SCAN} DST=198.19.128.10 LEN=44 TOS=0x00 "
                    f"PREC=0x00 TTL=42 ID={i} PROTO=TCP SPT=41234 DPT={1000 + i} WINDOW=1024 "
                    "RES=0x00 SYN URGP=0")
    kern.append(f"{_syslog_ts(205)} dc-primary-wrtr1 kernel: [81240.000001] ACCEPT IN=eth1 "
                f"OUT= SRC={BENIGN} DST=198.19.128.10 LEN=60 TOS=0x00 PREC=0x00 TTL=63 ID=9 "
                "DF PROTO=TCP SPT=52000 DPT=443 WINDOW=64240 RES=0x00 SYN URGP=0")
    # sqlmap against the lookup portal
    payloads = ["/tra-cuu?so_the=1%27%20AND%20SLEEP(5)--%20-",
                "/tra-cuu?so_the=1%20UNION%20ALL%20SELECT%20NULL,NULL,version()--%20-",
                "/tra-cuu?so_the=1%27%20OR%20%271%27=%271"]
    for i in range(12):
        access.append(f'{ATTACKER_WEB} - - [{_nginx_ts(300 + i)}] "GET {payloads[i % 3]} '
                      'HTTP/1.1" 200 612 "-" "sqlmap/1.7.2#stable (https://sqlmap.org)"')
    # benign browsing, including the tricky names
    for i, url in enumerate(["/", "/tra-cuu?ho_ten=O%27Brien", "/search?q=union+station",
                             "/static/app.js", "/login?next=/tra-cuu"]):
        access.append(f'{BENIGN} - - [{_nginx_ts(310 + i)}] "GET {url} HTTP/1.1" 200 1024 '
                      '"-" "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/120.0"')
    files = {"auth": sorted(auth), "netfilter": sorted(kern), "nginx": access}
    out = {}
    for source, lines in files.items():
        path = folder / f"{source}.log"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        out[source] = path
    return out


def socctl(*args: str) -> object:
    result = CliRunner().invoke(cli, ["--output", "json", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output) if result.output.strip() else None


def test_replayed_attacks_give_one_grouped_alert_each_and_benign_none(env: Path) -> None:
    for source, path in write_logs(env).items():
        replay = socctl("collect", "replay", "--source", source, str(path))
        assert replay["dead_letter"] == 0, replay  # type: ignore[index]
    run = socctl("detect", "run", "--all")
    assert run["new_alerts"], run  # type: ignore[index]

    alerts = socctl("alerts", "list")
    assert isinstance(alerts, list)
    got = sorted((a["rule_title"], a["source.ip"]) for a in alerts)
    assert got == sorted([
        ("SSH Brute Force From One Source", ATTACKER_SSH),
        ("SSH Login Attempt With a Default or Built-in Account", ATTACKER_SSH),
        ("SSH Successful Login After Brute Force From the Same Source", ATTACKER_SSH),
        ("Port Scan Against the Edge or Core (many destination ports from one source)",
         ATTACKER_SCAN),
        ("SQL Injection Attempt in Web Request", ATTACKER_WEB),
        ("Web Vulnerability Scanner User Agent", ATTACKER_WEB),
    ])
    assert all(a["source.ip"] != BENIGN for a in alerts)
    by_rule = {a["rule_title"]: a for a in alerts}
    brute = by_rule["SSH Brute Force From One Source"]
    assert brute["count"] == 30 and brute["status"] == "new" and brute["level"] == "high"
    assert "attack.t1110.001" in brute["tags"]
    assert brute["first_seen"] < brute["last_seen"]
    assert len(brute["sample_event_ids"]) == 10
    scan = by_rule["Port Scan Against the Edge or Core (many destination ports from one source)"]
    assert scan["count"] == 100  # every dropped packet of the scan, in one alert
    assert by_rule["Web Vulnerability Scanner User Agent"]["count"] == 12
    for key in ("id", "rule_id", "rule_title", "level", "tags", "entity", "first_seen",
                "last_seen", "count", "status"):
        assert key in brute

    # running again (scheduled, from the checkpoint, then --all) adds nothing
    assert socctl("detect", "run")["new_alerts"] == []  # type: ignore[index]
    again = socctl("detect", "run", "--all")
    assert again["new_alerts"] == [] and again["new_events"] == 0  # type: ignore[index]


def _pg(seconds: float, pid: int, who: str, host: str, level: str, message: str) -> str:
    """A line as PostgreSQL 15 writes it with the postgresql role's settings
    (log_line_prefix '%m [%p] %q%u@%d %h ', log_connections on)."""
    stamp = (T0 + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return f"{stamp} UTC [{pid}] {who} {host} {level}:  {message}"


def test_postgresql_log_as_the_role_configures_it_raises_the_database_alerts(
        env: Path) -> None:
    """Password guessing then a superuser login from outside the DC, read by the shipped
    postgresql collector: the rules see the client address on every line."""
    lines = []
    for i in range(8):
        pid = 5000 + i
        lines += [
            _pg(i, pid, "[unknown]@[unknown]", ATTACKER_SSH, "LOG",
                f"connection received: host={ATTACKER_SSH} port={41000 + i}"),
            _pg(i + 0.01, pid, "postgres@postgres", ATTACKER_SSH, "FATAL",
                'password authentication failed for user "postgres"'),
            _pg(i + 0.01, pid, "postgres@postgres", ATTACKER_SSH, "DETAIL",
                'Connection matched pg_hba.conf line 99: "host all all 0.0.0.0/0 '
                'scram-sha-256"'),
        ]
    lines += [
        _pg(9, 5100, "[unknown]@[unknown]", ATTACKER_SSH, "LOG",
            f"connection received: host={ATTACKER_SSH} port=41100"),
        _pg(9.01, 5100, "postgres@postgres", ATTACKER_SSH, "LOG",
            "connection authorized: user=postgres database=postgres application_name=psql"),
        # benign: a DBA on the server itself (socket, IPv6 loopback), the nightly backup
        # from the primary DC's LAN (national addressing), the application
        _pg(10, 5200, "postgres@postgres", "[local]", "LOG",
            "connection authorized: user=postgres database=postgres application_name=psql"),
        _pg(10.5, 5203, "postgres@postgres", "::1", "LOG",
            "connection authorized: user=postgres database=postgres application_name=psql"),
        _pg(10.7, 5202, "pgbackrest@postgres", "10.1.0.21", "LOG",
            "connection authorized: user=pgbackrest database=postgres "
            "application_name=pgBackRest [backup]"),
        _pg(11, 5201, "app@bhxh", "198.19.128.50", "LOG",
            "connection authorized: user=app database=bhxh"),
        "2026-11-22 08:00:12.000 UTC [99] LOG:  checkpoint starting: time",  # %q: no session
    ]
    log = env / "postgresql.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    replay = socctl("collect", "replay", "--source", "postgresql", str(log))
    assert replay["dead_letter"] == 0, replay  # type: ignore[index]
    socctl("detect", "run", "--all")
    alerts = socctl("alerts", "list")
    assert isinstance(alerts, list)
    assert sorted((a["rule_title"], a["source.ip"]) for a in alerts) == [
        ("PostgreSQL Authentication Failures in a Burst From One Source", ATTACKER_SSH),
        ("PostgreSQL Superuser Login From Outside the DC Networks", ATTACKER_SSH),
    ]


def test_clamd_log_file_alerts_name_the_host_and_skip_the_eicar_test(env: Path) -> None:
    """clamd's own log (LogTime yes) names no host: the shipped clamav collector gives its
    events the host it runs on; the mail team's EICAR test (current signature name) is
    not a virus alert."""
    from socctl.collector.definition import local_host_name

    log = env / "clamav.log"
    log.write_text(
        "Sun Nov 22 08:00:01 2026 -> /var/lib/amavis/tmp/amavis-1/parts/p002: "
        "Win.Trojan.Emotet-9953378-0 FOUND\n"
        "Sun Nov 22 08:03:01 2026 -> /var/lib/amavis/tmp/amavis-2/parts/p001: "
        "Win.Test.EICAR_HDB-1 FOUND\n"
        "Sun Nov 22 08:05:01 2026 -> /srv/upload/ho-so/x.doc: Doc.Dropper.Agent-123 FOUND\n",
        encoding="utf-8")
    replay = socctl("collect", "replay", "--source", "clamav", str(log))
    assert replay["dead_letter"] == 0, replay  # type: ignore[index]
    socctl("detect", "run", "--all")
    alerts = socctl("alerts", "list")
    assert isinstance(alerts, list)
    [alert] = alerts
    assert alert["rule_title"] == "Virus Detected by ClamAV (E-mail and Scanned Files)"
    assert alert["entity"] == {"host.name": local_host_name()} and alert["count"] == 2


def test_an_analyst_triages_end_to_end_from_the_cli(env: Path) -> None:
    for source, path in write_logs(env).items():
        socctl("collect", "replay", "--source", source, str(path))
    socctl("detect", "run", "--all")
    alerts = {a["rule_title"]: a["id"] for a in socctl("alerts", "list")}  # type: ignore[attr-defined]
    brute = alerts["SSH Brute Force From One Source"]
    ua = alerts["Web Vulnerability Scanner User Agent"]

    assert socctl("alerts", "ack", str(brute), "-n", "looking")[0]["status"] == "acknowledged"  # type: ignore[index]
    assigned = socctl("alerts", "assign", str(brute), "--to", "tier2")[0]  # type: ignore[index]
    assert assigned["status"] == "assigned" and assigned["assignee"] == "tier2"
    closed = socctl("alerts", "close", str(brute), "--reason", "true_positive",
                    "-n", "root password reset, source blocked")[0]  # type: ignore[index]
    assert closed["status"] == "closed" and closed["close_reason"] == "true_positive"
    assert socctl("alerts", "reopen", str(brute))[0]["status"] == "assigned"  # type: ignore[index]
    socctl("alerts", "close", str(ua), "--reason", "false_positive")

    shown = socctl("alerts", "show", str(brute))
    assert len(shown["events"]) == 30  # type: ignore[index]
    assert all("Failed password for root" in e["message"] for e in shown["events"])  # type: ignore[index]
    trail = [(h["action"], h["who"], h["to"]) for h in shown["history"]]  # type: ignore[index]
    # for people: the level in brackets (rich once read "[high]" as markup and dropped it)
    header = CliRunner().invoke(cli, ["alerts", "show", str(brute)]).output
    assert header.startswith(f"alert {brute} SSH Brute Force From One Source [high] "
                             "status=assigned assignee=tier2"), header
    assert f"entity source.ip={ATTACKER_SSH}  count 30" in header, header  # as in the list
    assert trail == [("created", "socctl-detect", "new"),
                     ("acknowledge", "analyst1", "acknowledged"),
                     ("assign", "analyst1", "assigned"), ("close", "analyst1", "closed"),
                     ("reopen", "analyst1", "assigned")]

    open_alerts = socctl("alerts", "list", "--status", "open", "--severity", "high")
    assert brute in [a["id"] for a in open_alerts]  # type: ignore[union-attr]
    assert ua not in [a["id"] for a in open_alerts]  # type: ignore[union-attr]

    stats = socctl("alerts", "stats")
    assert stats["total"] == 6  # type: ignore[index]
    assert stats["mtta_seconds"] is not None and stats["mttr_seconds"] is not None  # type: ignore[index]
    per_rule = {r["rule_title"]: r for r in stats["per_rule"]}  # type: ignore[index]
    assert per_rule["Web Vulnerability Scanner User Agent"]["false_positive_rate"] == 1.0

    # a wrong transition is refused with a clear message and a non-zero exit
    result = CliRunner().invoke(cli, ["alerts", "reopen", str(ua + 1000)])
    assert result.exit_code != 0 and "no alert" in result.output
    assert "0 alert(s)" not in result.output  # the error alone, not an empty table too


def test_suppress_writes_an_owned_expiring_exception_that_the_next_run_honours(
        env: Path) -> None:
    import shutil

    rules = env / "detections"
    shutil.copytree(Path(__file__).resolve().parents[2] / "detections", rules)
    for source, path in write_logs(env).items():
        socctl("collect", "replay", "--source", source, str(path))
    socctl("detect", "run", "--all", "--rules", str(rules))
    ua = next(a for a in socctl("alerts", "list")  # type: ignore[attr-defined]
              if a["rule_title"] == "Web Vulnerability Scanner User Agent")
    out = socctl("alerts", "suppress", str(ua["id"]), "--reason", "authorised sqlmap test",
                 "--expires", "2099-12-31", "--owner", "soc-lead", "--rules", str(rules))
    written = Path(out["file"])  # type: ignore[index]
    assert written.parent == rules / "suppressions"
    text = written.read_text()
    assert "owner: soc-lead" in text and "authorised sqlmap test" in text
    assert "2099-12-31" in text and ATTACKER_WEB in text
    assert socctl("alerts", "show", str(ua["id"]))["status"] == "closed"  # type: ignore[index]
    # the suppression file is valid content, and the next detection run honours it
    check = CliRunner().invoke(cli, ["detect", "check", str(rules)])
    assert check.exit_code == 0, check.output
    later = env / "later.log"
    later.write_text(f'{ATTACKER_WEB} - - [22/Nov/2026:09:30:00 +0000] "GET / HTTP/1.1" 200 '
                     '1 "-" "sqlmap/1.7.2#stable (https://sqlmap.org)"\n')
    socctl("collect", "replay", "--source", "nginx", str(later))
    run = socctl("detect", "run", "--rules", str(rules))
    assert run["suppressed"] == 1 and run["new_alerts"] == []  # type: ignore[index]


BACKTRACKING_RULE = """\
title: Long Run of One Letter in a URL
id: 5b0c7d2e-9a41-4c3e-8f6a-2d1e0b9c8a71
status: test
description: A regular expression that backtracks exponentially in Python's re.
author: socctl tests
date: 2026-12-02
tags:
  - attack.initial-access
  - attack.t1190
logsource:
  category: webserver
detection:
  selection:
    url.original|re: '^/(a+)+$'
  condition: selection
falsepositives:
  - none
level: low
"""


def test_a_rules_regex_cannot_hold_detection_on_a_crafted_line(env: Path) -> None:
    """pySigma validates ``|re`` with RE2 (no backtracking); evaluated with Python's re,
    ``^/(a+)+$`` against "/aaaa...a!" (the attacker's URL) takes 2^40 steps: the run
    never ends. On RE2 it is linear. The time limit only bounds the test if that
    regresses; it measures nothing."""
    rules = env / "rules"
    rules.mkdir()
    (rules / "backtrack.yml").write_text(BACKTRACKING_RULE, encoding="utf-8")
    access = env / "access.log"
    access.write_text("".join(
        f'{ATTACKER_WEB} - - [{_nginx_ts(i)}] "GET {url} HTTP/1.1" 404 0 "-" "curl/8"\n'
        for i, url in enumerate(["/" + "a" * 40 + "!", "/" + "a" * 40, "/ab"])),
        encoding="utf-8")
    assert socctl("collect", "replay", "--source", "nginx", str(access))["stored"] == 3  # type: ignore[index]
    run = subprocess.run([sys.executable, "-m", "socctl", "-o", "json", "detect", "run",
                          "--all", "--rules", str(rules)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert (result["events"], result["hits"], len(result["new_alerts"])) == (3, 1, 1)
    shown = socctl("alerts", "show", str(result["new_alerts"][0]))
    assert [e["message"] for e in shown["events"]] == [  # type: ignore[index]
        f'{ATTACKER_WEB} - - [{_nginx_ts(1)}] "GET /{"a" * 40} HTTP/1.1" 404 0 "-" "curl/8"']


@pytest.mark.parametrize("args", [["alerts", "list", "--since", "1y"],
                                  ["detect", "run", "--since", "5x"],
                                  ["detect", "run", "--every", "soon", "--max-runs", "1"],
                                  ["events", "search", "--since", "yesterday", "x"]])
def test_a_bad_duration_is_a_clear_error_in_every_command(env: Path, args: list[str]) -> None:
    """`alerts list --since 1w` was an internal error (exit 70) while `events search`
    took it: one syntax now, and a bad value says which option."""
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert f"bad {args[2]} " in result.output and "internal error" not in result.output


def test_a_week_is_a_duration_for_alerts_too(env: Path) -> None:
    socctl("collect", "replay", "--source", "auth", str(write_logs(env)["auth"]))
    socctl("detect", "run", "--all")
    assert socctl("alerts", "list", "--since", "1w") == []  # the replayed events are old
