"""The command line as a user runs it: exit codes, one-line errors, JSON output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from tests.conftest import REPO


def socctl(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "socctl", *args], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, **(env or {})}, timeout=120)


def test_check_is_clean_on_the_shipped_inventory() -> None:
    result = socctl("inventory", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s)" in result.stdout


def test_check_lists_every_problem_and_fails(make_inventory) -> None:  # type: ignore[no-untyped-def]
    folder = make_inventory("many_errors")
    result = socctl("inventory", "check", str(folder))
    assert result.returncode == 1
    lines = [line for line in result.stdout.splitlines() if ": error: " in line]
    assert len(lines) == 4, result.stdout
    assert any("profiles.yaml:27: profiles.national.devices.dc_primary[1].platform" in line
               for line in lines)
    assert "Traceback" not in result.stdout + result.stderr
    as_json = json.loads(socctl("-o", "json", "inventory", "check", str(folder)).stdout)
    assert as_json["ok"] is False and as_json["errors"] == 4
    assert {p["line"] for p in as_json["problems"]} == {27, 11, 10, 5}


def test_summary_json_has_the_documented_counts() -> None:
    result = socctl("-o", "json", "inventory", "summary")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["sites"] == {"dc": 2, "ops": 1, "province": 63, "district": 705}
    assert data["devices"] > 3000 and data["links"] > 2 * 768


def test_list_filters_and_show() -> None:
    data = json.loads(socctl("-o", "json", "inventory", "list", "--province", "79",
                             "--role", "edge_router").stdout)
    assert data and all(r["province"] == "79" and r["role"] == "edge_router" for r in data)
    shown = json.loads(socctl("-o", "json", "inventory", "show", "p79").stdout)
    assert shown["kind"] == "site" and shown["display"] == "Hồ Chí Minh"
    assert {lk["kind"] for lk in shown["links"]} >= {"wan_primary", "wan_backup", "internet"}
    device = json.loads(socctl("-o", "json", "inventory", "show", "p79-rtr1").stdout)
    assert device["vars"]["socctl_interfaces"][0]["name"] == "wan1"


def test_unknown_name_is_one_located_line_with_suggestions() -> None:
    result = socctl("inventory", "show", "p79-rtr9")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: no site or device named 'p79-rtr9'")
    assert "did you mean" in result.stderr and "Traceback" not in result.stderr
    debug = socctl("--debug", "inventory", "show", "p79-rtr9")
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_bad_selection_value_lists_valid_ones() -> None:
    result = socctl("inventory", "list", "--tier", "county")
    assert result.returncode == 1
    assert "unknown tier 'county'" in result.stderr and "valid: dc, district" in result.stderr


def test_config_file_and_environment(tmp_path: Path, make_inventory) -> None:  # type: ignore[no-untyped-def]
    folder = make_inventory()
    (tmp_path / "socctl.toml").write_text(f'[socctl]\ninventory = "{folder}"\n')
    data = json.loads(socctl("-o", "json", "inventory", "summary", cwd=tmp_path).stdout)
    assert data["sites"]["province"] == 2
    env_data = json.loads(socctl("-o", "json", "inventory", "summary",
                                 env={"SOCCTL_INVENTORY": str(REPO / "inventory")},
                                 cwd=tmp_path).stdout)
    assert env_data["sites"]["province"] == 63
    (tmp_path / "bad.toml").write_text('[socctl]\ninventroy = "x"\n')
    bad = socctl("--config", str(tmp_path / "bad.toml"), "inventory", "summary")
    assert bad.returncode == 1
    assert "bad.toml:2: socctl.inventroy: unknown setting 'inventroy'" in bad.stderr


def test_demo_scratch_is_fresh_and_leaves_the_operators_state_alone(tmp_path: Path) -> None:
    from socctl.config import Settings

    settings = Settings(project_root=tmp_path, inventory=tmp_path, state_dir=tmp_path / "s")
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "events.db").write_text("operator's store")
    first = settings.demo_scratch("collect")
    assert first.state_dir == tmp_path / "s" / "demo" / "collect" and first.state_dir.is_dir()
    assert first.project_root == settings.project_root
    (first.state_dir / "events.db").write_text("last run")
    again = settings.demo_scratch("collect")
    assert list(again.state_dir.iterdir()) == []  # the last run's store was replaced
    assert (tmp_path / "s" / "events.db").read_text() == "operator's store"


def test_output_is_taken_after_the_command_too(tmp_path: Path) -> None:
    """The issues write ``socctl collect replay --source auth FILE --output json``; click
    alone takes the root's -o only before the command ("No such option" after it)."""
    log = tmp_path / "auth.log"
    log.write_bytes(b"Nov 22 07:43:17 p01-rtr1 sshd[812]: Failed password for invalid user "
                    b"admin from 203.0.113.7 port 4242 ssh2\n\xff\xfe not a log line\n")
    env = {"SOCCTL_STATE_DIR": str(tmp_path / "state")}
    replay = socctl("collect", "replay", "--source", "auth", str(log), "--output", "json",
                    env=env)
    assert replay.returncode == 0, replay.stderr
    counts = json.loads(replay.stdout)
    assert (counts["read"], counts["stored"], counts["dead_letter"]) == (2, 1, 1)
    found = socctl("events", "search", "user.name:admin", "--since", "100000d", "-o", "json",
                   env=env)
    assert [e["source"]["ip"] for e in json.loads(found.stdout)] == ["203.0.113.7"]
    # after the command it wins over the root's
    table = socctl("-o", "json", "collect", "replay", "--source", "auth", str(log), "-o",
                   "table", env=env)
    assert table.returncode == 0 and not table.stdout.lstrip().startswith("{"), table.stdout
    bad = socctl("events", "search", "user.name:admin", "--output", "yaml", env=env)
    assert bad.returncode == 2 and "'yaml' is not one of 'table', 'json'" in bad.stderr


def test_commands_that_pass_arguments_on_keep_their_dash_o() -> None:
    """``socctl lab exec HOST ip -o addr`` and ``lab ssh HOST -- -o Opt=val`` hand their
    arguments on to the command or ssh: an -o there is not socctl's."""
    from socctl.cli.main import cli

    lab = cli.commands["lab"]
    assert isinstance(lab, click.Group)
    for name in ("ssh", "exec"):
        assert all("--output" not in getattr(p, "opts", ()) for p in lab.commands[name].params)
    ctx = lab.commands["exec"].make_context("exec", ["p01-rtr1", "ip", "-o", "addr"],
                                            parent=click.Context(cli))
    assert ctx.params["command"] == ("ip", "-o", "addr")


def test_a_table_piped_to_a_file_keeps_every_value_whole(tmp_path: Path) -> None:
    """Rich assumes 80 columns when stdout is not a terminal and cut a search's addresses
    and host names ("203.0…") over several lines: ``| grep 203.0.113.7`` found nothing."""
    log = tmp_path / "auth.log"
    log.write_text("Nov 22 07:43:17 p01d01-rtr1 sshd[812]: Failed password for invalid user "
                   "administrator from 203.0.113.77 port 4242 ssh2\n")
    env = {"SOCCTL_STATE_DIR": str(tmp_path / "state"), "COLUMNS": ""}
    assert socctl("collect", "replay", "--source", "auth", str(log), env=env).returncode == 0
    out = socctl("events", "search", "user.name:administrator", "--since", "100000d",
                 env=env).stdout
    row = [line for line in out.splitlines() if "203.0.113.77" in line]
    assert len(row) == 1, out
    assert all(v in row[0] for v in ("T07:43:17.000Z", "ssh_login", "failure",
                                     "administrator", "p01d01-rtr1", "p01d01")), out
    narrow = socctl("events", "search", "user.name:administrator", "--since", "100000d",
                    env={**env, "COLUMNS": "60"}).stdout
    assert "203.0.113.77" not in narrow  # an explicit width is the user's choice


def test_what_the_estate_wrote_is_shown_not_obeyed(tmp_path: Path) -> None:
    """Log lines are the attacker's text. A user name "[/x]" made ``events search`` crash
    (rich read it as a closing markup tag), "[red]eve" lost its "[red]", and a terminal's
    escape sequences in a line (set the title, clear the screen) reached the analyst's
    terminal; NULs of a dead letter too. All of it is shown as text, colours on or off."""
    log = tmp_path / "auth.log"
    users = [b"[/x]", b"[red]eve", b"a\x1b]0;pwned\x07b\x1b[2J", "adm\u202enimda".encode()]
    log.write_bytes(b"".join(b"Nov 22 07:43:1%d p01-rtr1 sshd[812]: Failed password for "
                             b"invalid user %s from 203.0.113.9 port 2222 ssh2\n" % (k, u)
                             for k, u in enumerate(users)) + b"nul\x00 line\n")
    env = {"SOCCTL_STATE_DIR": str(tmp_path / "state"), "COLUMNS": ""}
    replay = socctl("collect", "replay", "--source", "auth", str(log), "-o", "json", env=env)
    counts = json.loads(replay.stdout)
    assert (counts["read"], counts["stored"], counts["dead_letter"]) == (5, 4, 1)
    for colour in ({}, {"FORCE_COLOR": "1", "COLUMNS": "400"}):
        found = socctl("events", "search", "source.ip:203.0.113.9", "--since", "100000d",
                       env={**env, **colour})
        assert found.returncode == 0, found.stderr
        for shown in ("[/x]", "[red]eve", "a\\x1b]0;pwned\\x07b\\x1b[2J", "adm\\u202enimda"):
            assert shown in found.stdout, (colour, found.stdout)
        assert "\x1b]0;" not in found.stdout and "\x1b[2J" not in found.stdout
        assert "\u202e" not in found.stdout
        assert ("\x1b" in found.stdout) == bool(colour)  # colours still work
        dead = socctl("collect", "dead-letter", env={**env, **colour}).stdout
        assert "nul\\x00 line" in dead and "\x00" not in dead, dead
    bad = socctl("events", "search", "--since", "[/x]", env=env)
    assert bad.returncode == 1 and "bad --since '[/x]'" in bad.stderr, bad.stderr


def test_the_demo_names_each_step_as_it_starts(tmp_path: Path) -> None:
    """Provisioning takes minutes: the demo says which step is under way, not only which
    ones have ended. Only the first three steps run here (they need no lab): the
    generator is closed before the lab's."""
    from socctl.config import Settings
    from socctl.demo import run_demo

    settings = Settings(project_root=REPO, inventory=REPO / "inventory", state_dir=tmp_path)
    received: list[str] = []
    started: list[tuple[str, int]] = []
    steps = run_demo(settings, starting=lambda name: started.append((name, len(received))))
    for _ in range(3):
        received.append(next(steps).name)
    steps.close()
    assert received == ["inventory check", "inventory summary", "detections"]
    # each step announced before it ran, i.e. after the previous one was shown
    assert started == [(name, k) for k, name in enumerate(received)]


def test_the_demo_in_a_terminal_shows_the_step_under_way(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The CLI side: in a terminal the step's name is on screen while it runs (a spinner
    line); the finished steps are printed as before. run_demo is replaced here by two
    steps that take a moment: what is tested is the rendering."""
    import time

    from click.testing import CliRunner

    from socctl.cli import render
    from socctl.cli.main import cli  # first: importing socctl.cli.demo alone is circular
    from socctl.demo import Step

    demo_cli = sys.modules["socctl.cli.demo"]

    def fake_run(settings: object, keep_lab: bool = True, starting=None):  # type: ignore[no-untyped-def]
        for name in ("provision lab", "WAN failover"):
            starting(name)
            time.sleep(0.3)  # long enough for the spinner to draw
            yield Step(name, "ok", f"{name} done", 0.3)

    monkeypatch.setattr(demo_cli, "run_demo", fake_run)
    runner = CliRunner()
    with runner.isolation() as (out, _err, *_):
        monkeypatch.setattr(render, "console", render.SafeConsole(
            file=sys.stdout, force_terminal=True, width=100))
        with pytest.raises(SystemExit) as done:
            cli.main(["demo", "--no-keep-lab"], prog_name="socctl")
        text = out.getvalue().decode()
    assert done.value.code == 0
    assert "provision lab ..." in text and "WAN failover ..." in text  # while running
    assert "provision lab done" in text and "WAN failover done" in text  # when done


def test_collect_stats_before_any_collector_ran_says_so(tmp_path: Path) -> None:
    env = {"SOCCTL_STATE_DIR": str(tmp_path / "state")}
    shown = socctl("collect", "stats", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "no source counters" in shown.stdout
    assert "no collector has run with this state directory" in shown.stdout
    assert "socctl collect run" in shown.stdout
    (tmp_path / "state" / "collect").mkdir(parents=True)
    (tmp_path / "state" / "collect" / "stats.json").write_text("{truncated")
    data = json.loads(socctl("-o", "json", "collect", "stats", env=env).stdout)
    assert data["sources"] == {} and data["running"] is False
    assert any("cannot read the collector's counters" in e and "stats.json" in e
               for e in data["errors"]), data


def test_json_output_survives_bytes_that_were_not_utf8(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    """A path or a log line holding non-UTF-8 bytes (surrogate escapes) failed the whole
    -o json output as an internal error; a C1 control (CSI) reached the terminal raw."""
    from socctl.cli import render

    render.emit_json({"files": ["/var/log/caf\udce9.log"], "site": "Hà Nội"})
    render.emit_json({"site": "Hà Nội", "line": "a\x9b[31mb"})
    first, second = capsys.readouterr().out.split("\n}\n")[:2]
    assert json.loads(first + "}")["files"] == ["/var/log/caf\udce9.log"]
    assert '"Hà Nội"' in second and "\x9b" not in second
    assert json.loads(second + "}")["line"] == "a\x9b[31mb"
