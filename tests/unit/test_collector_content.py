"""collectors/ content: the shipped definitions load; bad ones give every located problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from socctl.collector.definition import build_collection, load_collection
from socctl.collector.enrich import BotnetList
from socctl.errors import ValidationFailed
from tests.conftest import FIXTURES, REPO
from tests.unit.test_cli import socctl

INVALID = FIXTURES / "collectors" / "invalid"


def test_shipped_collectors_are_clean_and_cover_every_dataset() -> None:
    collection, problems = build_collection(REPO / "collectors")
    assert collection is not None and problems == []
    datasets = {c.dataset for c in collection.collectors.values()}
    assert {"sshd", "nginx.access", "apache.access", "netfilter", "postgresql", "frr",
            "cisco_ios", "snmp.trap", "clamav", "syslog"} <= datasets
    # a value's spaces are its own: PostgreSQL's prefix ends with one
    assert collection.get("postgresql").spec.parser.options["log_line_prefix"] == \
        "%m [%p] %q%u@%d "
    botnet = collection.settings.enrichment.botnet_list
    assert botnet is not None
    listed, found = BotnetList.load(collection.resolve(botnet))
    assert found == [] and len(listed) > 0


def test_every_shipped_file_names_itself() -> None:
    """Corpus rule: the file name is the collector name (so `--source NAME` finds it)."""
    for path in sorted((REPO / "collectors" / "sources").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert data["name"] == path.stem, f"{path}: name {data['name']!r} != file name"


@pytest.mark.parametrize("case", sorted(p.name for p in INVALID.iterdir()))
def test_invalid_content_reports_every_problem_located(case: str) -> None:
    expected = yaml.safe_load((INVALID / case / "expect.yaml").read_text(encoding="utf-8"))
    collection, problems = build_collection(INVALID / case)
    assert collection is None
    shown = [str(p) for p in problems]
    for fragment in expected:
        assert any(fragment in line for line in shown), f"{fragment!r} not in {shown}"
    assert len(shown) == len(expected), shown
    with pytest.raises(ValidationFailed):
        load_collection(INVALID / case)


def test_check_command_exit_code_and_json(tmp_path: Path) -> None:
    ok = socctl("collect", "check")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = socctl("-o", "json", "collect", "check", str(INVALID / "many_errors"))
    assert bad.returncode == 1
    data = json.loads(bad.stdout)
    assert data["ok"] is False and data["errors"] == 8
    assert {"line": 5, "field": "source.colour"}.items() <= next(
        p for p in data["problems"] if p["field"] == "source.colour").items()
