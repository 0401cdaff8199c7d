"""Provisioning library: event parsing, waves and the failure budget, records, the runner.

The runner test drives real ansible-runner and ansible-playbook (connection local, no
lab needed); the wave tests drive the rollout logic with a scripted wave runner, since
what they check is the order and the stop decision, not Ansible.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from socctl.automation.events import EventCollector
from socctl.automation.record import write_record
from socctl.automation.result import HostRun, HostStatus, ProvisionResult, Wave
from socctl.automation.runner import PlaybookJob, run_job
from socctl.automation.secrets import production_secret_env
from socctl.automation.waves import RolloutHost, plan_waves, roll_out, rollout_order
from socctl.errors import ConfigError
from tests.conftest import FIXTURES, REPO


def _ok(host: str, task: str, changed: bool = False, **res: object) -> dict[str, object]:
    return {"event": "runner_on_ok",
            "event_data": {"host": host, "task": task, "res": {"changed": changed, **res}}}


def test_events_give_per_host_counts_errors_and_diffs() -> None:
    hosts = {"a": HostRun("a"), "b": HostRun("b"), "c": HostRun("c")}
    collector = EventCollector(hosts)
    events = [
        _ok("a", "Write sshd", changed=True,
            diff=[{"before": "x\n", "after": "y\n", "before_header": "/etc/f"}]),
        {"event": "runner_on_failed", "event_data": {
            "host": "b", "task": "Check config", "res": {"msg": "bad value", "rc": 1}}},
        {"event": "runner_on_failed", "event_data": {
            "host": "a", "task": "Optional", "ignore_errors": True, "res": {"msg": "meh"}}},
        {"event": "runner_on_unreachable", "event_data": {
            "host": "c", "task": "Gathering", "res": {"msg": "ssh: connect timed out"}}},
        {"event": "playbook_on_stats", "event_data": {
            "ok": {"a": 3}, "changed": {"a": 1}, "failures": {"b": 1}, "dark": {"c": 1},
            "skipped": {"a": 2}, "ignored": {"a": 1}}},
    ]
    progress = [collector.handle(e) for e in events]
    assert [p.state for p in progress if p] == ["changed", "failed", "ok", "unreachable"]
    assert hosts["a"].status is HostStatus.CHANGED and hosts["a"].changed == 1
    assert hosts["a"].changed_tasks == ["Write sshd"]
    assert "-x\n+y\n" in hosts["a"].diffs[0]["diff"]
    assert hosts["b"].status is HostStatus.FAILED
    assert hosts["b"].errors[0].task == "Check config"
    assert hosts["b"].errors[0].message == "bad value"
    assert hosts["c"].status is HostStatus.UNREACHABLE and hosts["c"].errors[0].unreachable


def test_a_long_error_message_is_cut() -> None:
    hosts: dict[str, HostRun] = {}
    EventCollector(hosts).handle({"event": "runner_on_failed", "event_data": {
        "host": "a", "task": "t", "res": {"msg": "x" * 5000}}})
    assert len(hosts["a"].errors[0].message) < 700


def test_rollout_goes_from_districts_to_the_primary_dc() -> None:
    order = rollout_order([
        RolloutHost("dc-primary-db1", "dc", 4), RolloutHost("p01-rtr1", "province", 2),
        RolloutHost("dc-dr-wrtr1", "dc", 2), RolloutHost("p01d01-rtr1", "district", 2),
    ])
    assert order == ["p01d01-rtr1", "p01-rtr1", "dc-dr-wrtr1", "dc-primary-db1"]


def test_a_database_standby_never_rolls_out_before_its_primary() -> None:
    hosts = [RolloutHost("dc-primary-db1", "dc", 4), RolloutHost("dc-dr-db1", "dc", 4),
             RolloutHost("dc-primary-log1", "dc", 4), RolloutHost("p01-rtr1", "province", 2)]
    plain = rollout_order(hosts)
    assert plain.index("dc-dr-db1") < plain.index("dc-primary-db1")  # by name alone
    order = rollout_order(hosts, after={"dc-dr-db1": "dc-primary-db1", "x": "y"})
    assert order == ["p01-rtr1", "dc-primary-db1", "dc-dr-db1", "dc-primary-log1"]
    # with waves of one host each, the standby's wave comes after the primary's
    waves = plan_waves(order, size=1)
    wave_of = {h: w.number for w in waves for h in w.hosts}
    assert wave_of["dc-dr-db1"] == wave_of["dc-primary-db1"] + 1


def test_provisioning_orders_the_lab_database_standby_after_its_primary() -> None:
    from socctl.automation.provision import _dependencies
    from socctl.inventory import load_inventory

    deps = _dependencies(load_inventory(REPO / "inventory", "national"))
    assert deps == {"dc-dr-db1": "dc-primary-db1", "dc-dr-db2": "dc-primary-db1",
                    "dc-primary-db2": "dc-primary-db1"}


def test_waves_start_with_a_one_host_canary() -> None:
    names = [f"h{i}" for i in range(10)]
    assert [w.hosts for w in plan_waves(names)] == [names]
    waves = plan_waves(names, size=4)
    assert [len(w.hosts) for w in waves] == [1, 4, 4, 1]
    assert waves[0].canary and not any(w.canary for w in waves[1:])
    assert [len(w.hosts) for w in plan_waves(names, percent=25)] == [1, 3, 3, 3]
    assert [h for w in plan_waves(names, percent=33) for h in w.hosts] == names


@pytest.mark.parametrize("kwargs", [{"size": 0}, {"percent": 0}, {"percent": 150},
                                    {"size": 2, "percent": 10}])
def test_bad_wave_options_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        plan_waves(["a", "b"], **kwargs)  # type: ignore[arg-type]


def _scripted(bad: set[str]):  # type: ignore[no-untyped-def]
    ran: list[list[str]] = []

    def run_wave(wave: Wave) -> dict[str, HostRun]:
        ran.append(list(wave.hosts))
        wave.rc = 2 if bad & set(wave.hosts) else 0
        return {h: HostRun(h, ran=True, ok=1, failed=int(h in bad)) for h in wave.hosts}

    return run_wave, ran


def test_a_failing_canary_stops_the_rollout() -> None:
    waves = plan_waves(["a", "b", "c", "d"], size=2)
    run_wave, ran = _scripted({"a"})
    results, stopped = roll_out(waves, run_wave, max_fail_percent=50)
    assert ran == [["a"]]
    assert stopped and "canary a failed" in stopped
    assert [results[h].status for h in "abcd"] == [HostStatus.FAILED] + [HostStatus.NOT_RUN] * 3


def test_failures_within_budget_let_the_rollout_go_on() -> None:
    waves = plan_waves(["a", "b", "c", "d", "e"], size=2)
    run_wave, ran = _scripted({"c"})
    results, stopped = roll_out(waves, run_wave, max_fail_percent=40)
    assert stopped is None and ran == [["a"], ["b", "c"], ["d", "e"]]
    assert results["c"].status is HostStatus.FAILED
    assert results["e"].status is HostStatus.OK


def test_failures_over_budget_stop_before_the_next_wave() -> None:
    waves = plan_waves(["a", "b", "c", "d", "e"], size=2)
    run_wave, ran = _scripted({"b", "c"})
    results, stopped = roll_out(waves, run_wave, max_fail_percent=40)
    assert ran == [["a"], ["b", "c"]]
    assert stopped and "2 of 3 hosts failed" in stopped
    assert results["d"].status is HostStatus.NOT_RUN and results["d"].wave == 3


def test_record_is_written_under_the_state_dir(tmp_path: Path) -> None:
    result = ProvisionResult(playbook="playbooks/site.yml", inventory="inv", check=True,
                             diff=False, selection={"site": ["p01"]}, max_fail_percent=0,
                             started="2026-11-22T08:00:00+00:00", user="tester")
    result.hosts = {"p01-rtr1": HostRun("p01-rtr1", ran=True, ok=3)}
    path = write_record(tmp_path, result)
    again = write_record(tmp_path, result)
    assert path != again and path.parent == tmp_path / "provision" / "runs"
    data = json.loads(path.read_text())
    assert data["user"] == "tester" and data["selection"] == {"site": ["p01"]}
    assert data["hosts"]["p01-rtr1"]["status"] == "ok"
    assert data["counts"]["ok"] == 1


def test_production_secrets_come_from_the_environment_or_a_vault(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SOCCTL_SNMP_AUTH_PASS"):
        production_secret_env(None, {"SOCCTL_SNMP_USER": "u"})
    env = {"SOCCTL_SNMP_USER": "u", "SOCCTL_SNMP_AUTH_PASS": "a" * 10,
           "SOCCTL_SNMP_PRIV_PASS": "p" * 10, "OTHER": "x"}
    assert set(production_secret_env(None, env)) == set(env) - {"OTHER"}
    vault = tmp_path / "vault.yml"
    vault.write_text("$ANSIBLE_VAULT;1.1;AES256\n")
    assert production_secret_env(vault, {}) == {}
    with pytest.raises(ConfigError, match="vault file not found"):
        production_secret_env(tmp_path / "missing.yml", {})


def test_runner_runs_real_ansible_and_keeps_going_past_a_failed_host(tmp_path: Path) -> None:
    secret = "s3cr3t-never-shown-4711"
    seen: list[str] = []
    job = PlaybookJob(
        playbook=FIXTURES / "playbooks" / "local.yml",
        inventory=FIXTURES / "playbooks" / "hosts.yml",
        ansible_cfg=FIXTURES / "playbooks" / "ansible.cfg", hosts=("good", "bad"),
        extra_vars={"marker_dir": str(tmp_path)}, secret_env={"SOCCTL_TEST_SECRET": secret})
    hosts, rc = run_job(job, lambda p: seen.append(f"{p.host} {p.task} {p.state}"))
    assert rc != 0
    assert hosts["good"].status is HostStatus.CHANGED
    assert (hosts["good"].ok, hosts["good"].changed, hosts["good"].skipped) == (2, 1, 3)
    assert hosts["bad"].status is HostStatus.FAILED
    assert hosts["bad"].errors[0].message == "bad was told to fail"
    assert (tmp_path / "good.txt").read_text() == "good\n"
    assert "good Write a marker file changed" in seen
    everything = json.dumps([h.to_dict() for h in hosts.values()]) + "".join(seen)
    assert secret not in everything


def test_a_run_stopped_at_its_timeout_fails_every_host_of_it(tmp_path: Path) -> None:
    """Killed at the job's timeout, ansible-playbook sends no summary: a host that had
    changed a file and then hung was counted "changed", so the canary and the failure
    budget never saw the failure. Real ansible-playbook, one host hanging in a task."""
    job = PlaybookJob(
        playbook=FIXTURES / "playbooks" / "local.yml",
        inventory=FIXTURES / "playbooks" / "hosts.yml",
        ansible_cfg=FIXTURES / "playbooks" / "ansible.cfg", hosts=("good",), timeout=8,
        extra_vars={"marker_dir": str(tmp_path), "linger": True},
        secret_env={"SOCCTL_TEST_SECRET": "x"})
    hosts, rc = run_job(job)
    assert rc != 0 and (tmp_path / "good.txt").exists()  # it got that far
    assert hosts["good"].status is HostStatus.FAILED
    assert "timeout" in hosts["good"].errors[-1].message


def test_check_mode_changes_nothing(tmp_path: Path) -> None:
    job = PlaybookJob(
        playbook=FIXTURES / "playbooks" / "local.yml",
        inventory=FIXTURES / "playbooks" / "hosts.yml",
        ansible_cfg=FIXTURES / "playbooks" / "ansible.cfg", hosts=("good",), check=True, diff=True,
        extra_vars={"marker_dir": str(tmp_path)}, secret_env={"SOCCTL_TEST_SECRET": "x"})
    hosts, rc = run_job(job)
    assert rc == 0 and hosts["good"].changed == 1
    assert not (tmp_path / "good.txt").exists()
    assert "+good" in hosts["good"].diffs[0]["diff"]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SOCCTL_SNMP_")}
    return subprocess.run([sys.executable, "-m", "socctl", "provision", *args],
                          capture_output=True, text=True, cwd=REPO,
                          env={**clean, **(env or {})}, timeout=120)


def test_cli_names_the_valid_playbooks_for_an_unknown_one() -> None:
    result = _cli("--playbook", "nope", "--site", "p01")
    assert result.returncode == 1
    assert "unknown playbook 'nope'" in result.stderr
    assert "site" in result.stderr and "district_edge" in result.stderr


def test_cli_refuses_two_wave_sizes_and_missing_secrets(tmp_path: Path) -> None:
    both = _cli("--site", "p01", "--wave", "2", "--wave-percent", "10")
    assert both.returncode == 1 and "not both" in both.stderr
    missing = _cli("--site", "p01", env={"SOCCTL_STATE_DIR": str(tmp_path)})
    assert missing.returncode == 1
    assert "SOCCTL_SNMP_USER" in missing.stderr and "--vault-file" in missing.stderr
    lab = _cli("--lab", env={"SOCCTL_STATE_DIR": str(tmp_path)})
    assert lab.returncode == 1 and "lab up" in lab.stderr
    assert "Traceback" not in both.stderr + missing.stderr + lab.stderr
