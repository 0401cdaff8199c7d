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
        "%m [%p] %q%u@%d %h "
    botnet = collection.settings.enrichment.botnet_list
    assert botnet is not None
    listed, found = BotnetList.load(collection.resolve(botnet))
    assert found == [] and len(listed) > 0


def test_postgresql_log_format_is_one_on_the_servers_the_collector_and_the_rule_tests(
) -> None:
    """The log_line_prefix the postgresql role writes on the database servers is the one
    the postgresql collector parses with and the one the rule tests parse with: the
    PostgreSQL rules group by source.ip, which only %h puts on an authentication line."""
    from socctl.detection.testing import parser_options

    role = REPO / "playbooks" / "roles" / "postgresql"
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text(encoding="utf-8"))
    server = defaults["postgresql_log_line_prefix"]
    assert "%h" in server and defaults["postgresql_log_connections"] is True
    template = (role / "templates" / "socctl.conf.j2").read_text(encoding="utf-8")
    assert "log_line_prefix = '{{ postgresql_log_line_prefix }}'" in template
    assert "log_connections = {{ 'on' if postgresql_log_connections | bool" in template
    # no inventory or play overrides the role's value behind the collector's back
    overrides = [p for p in (REPO / "playbooks").rglob("*.yml")
                 if p != role / "defaults" / "main.yml"
                 and "log_line_prefix" in p.read_text(encoding="utf-8")]
    assert overrides == []
    collection = load_collection(REPO / "collectors")
    readers = [c for c in collection.collectors.values() if c.dataset == "postgresql"]
    assert readers
    for collector in readers:
        assert collector.spec.parser.options.get("log_line_prefix") == server, collector.path
    # and the file pg_ctlcluster writes for the role's cluster is one the collector reads
    cluster_log = (f"/var/log/postgresql/postgresql-{defaults['postgresql_version']}-"
                   f"{defaults['postgresql_cluster']}.log")
    assert any(cluster_log in c.spec.source.paths for c in readers), cluster_log
    assert parser_options()["postgresql"] == {"log_line_prefix": server}
    # a server's log forwarded by rsyslog (no prefix configured for it) is read with it too
    from socctl.collector.parsers.postgresql import ROLE_PREFIX
    assert server == ROLE_PREFIX
    assert defaults["postgresql_log_file"] == (
        "/var/log/postgresql/postgresql-{{ postgresql_version }}-{{ postgresql_cluster }}.log")


def test_a_file_source_whose_lines_name_no_host_gets_the_collectors_host() -> None:
    """clamd's own log file names no host: its alerts (entity host.name) said null and
    grouped unrelated machines' detections into one."""
    from socctl.collector.definition import local_host_name
    from socctl.collector.pipeline import Processor

    collection = load_collection(REPO / "collectors")
    for name in ("clamav", "postgresql"):
        assert collection.get(name).spec.source.host_name == "local", name
    proc = Processor(collection.get("clamav"))
    _, ev = proc.event("Sun Nov 22 08:00:01 2026 -> /srv/upload/x.doc: Doc.Dropper.Agent-123 "
                       "FOUND", 0.0, "a")
    assert ev["host"]["name"] == local_host_name() != ""
    _, ev = proc.event("Nov 22 08:00:01 mail1 clamd[987]: /tmp/a.doc: Doc.Dropper.Agent-123 "
                       "FOUND", 0.0, "b")
    assert ev["host"]["name"] == "mail1"  # a line that names its host keeps it


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
