"""What an analyst runs on a log taken from the lab: `collect replay --source auth`,
`detect run --all`, `alerts list`, through the CLI, in a state directory of the test's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from socctl.cli.main import cli


def replay_and_detect(log: Path, state: Path, monkeypatch: pytest.MonkeyPatch
                      ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The replay's counts and the alerts, each command's exit checked."""
    monkeypatch.setenv("SOCCTL_STATE_DIR", str(state))
    monkeypatch.delenv("SOCCTL_EVENTS_DB", raising=False)
    runner = CliRunner()
    replay = runner.invoke(cli, ["-o", "json", "collect", "replay", "--source", "auth",
                                 str(log)], catch_exceptions=False)
    assert replay.exit_code == 0, replay.output
    run = runner.invoke(cli, ["-o", "json", "detect", "run", "--all"],
                        catch_exceptions=False)
    assert run.exit_code == 0, run.output
    listed = runner.invoke(cli, ["-o", "json", "alerts", "list"], catch_exceptions=False)
    assert listed.exit_code == 0, listed.output
    alerts: list[dict[str, Any]] = json.loads(listed.output)
    return json.loads(replay.output), alerts


def search_store(state: Path, query: str) -> list[dict[str, Any]]:
    """`events search QUERY` over the store of ``state`` (as replay_and_detect left it)."""
    found = CliRunner().invoke(cli, ["-o", "json", "events", "search", query, "--limit",
                                     "10000"], env={"SOCCTL_STATE_DIR": str(state)},
                               catch_exceptions=False)
    assert found.exit_code == 0, found.output
    events: list[dict[str, Any]] = json.loads(found.output)
    return events
