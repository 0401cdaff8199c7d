"""Bad rule files give located errors (file, line, field), all of them, and a non-zero
`socctl detect check`."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from socctl.cli.main import cli
from socctl.detection.loader import check_rules

DETECTIONS = Path(__file__).resolve().parents[2] / "detections"


def _copy(tmp: Path, name: str = "web_xss") -> Path:
    for suffix in (".yml", ".tests.yml"):
        shutil.copy(DETECTIONS / "web" / f"{name}{suffix}", tmp / f"{name}{suffix}")
    return tmp / f"{name}.yml"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_unknown_field_is_located_at_its_line(tmp_path: Path) -> None:
    rule = _copy(tmp_path)
    _edit(rule, "url.original|contains:", "cs-uri-query|contains:")
    _, problems = check_rules(tmp_path)
    [p] = [p for p in problems if "cs-uri-query" in p.message]
    assert p.location.path == str(rule)
    assert p.location.line == _line_of(rule, "cs-uri-query")
    assert p.location.field == "detection.selection.cs-uri-query|contains"
    assert "no column in the store" in p.message


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    rule = _copy(tmp_path)
    _edit(rule, "status: test", "status: test\nlogsource_typo: 1")
    text = rule.read_text()
    rid = text.split("id: ", 1)[1].split("\n", 1)[0]
    rule.write_text(text.replace(rid, "not-a-uuid").replace("  - attack.t1190\n", "")
                    .replace("  - attack.t1059.007\n", ""))
    other = _copy(tmp_path, "web_sqli")
    _edit(other, "category: webserver", "category: proxy")
    _, problems = check_rules(tmp_path)
    messages = [f"{Path(p.location.path).name}:{p.location.field}: {p.message}"
                for p in problems]
    assert any("web_xss.yml:id: id must be a UUIDv4" in m for m in messages), messages
    assert any("web_xss.yml:tags: needs at least one ATT&CK technique" in m for m in messages)
    assert any("web_sqli.yml:logsource: unsupported logsource" in m for m in messages)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    rule = _copy(tmp_path)
    _edit(rule, "title: Cross-Site", "title: Cross: Site")
    _, problems = check_rules(tmp_path)
    assert problems[0].location.line == 1 and "invalid YAML" in problems[0].message


def test_pysigma_errors_are_reported_with_the_file(tmp_path: Path) -> None:
    rule = _copy(tmp_path)
    _edit(rule, "condition: selection", "condition: selection and missing_one")
    _, problems = check_rules(tmp_path)
    assert any(p.location.path == str(rule) and "missing_one" in p.message for p in problems)


def test_a_bad_regex_is_located_at_its_field_and_re2_stays_quiet(tmp_path: Path,
                                                                capfd) -> None:  # type: ignore[no-untyped-def]
    """pySigma names the pattern, not the field; "is invalid" once located the error at
    the rule's ``id`` line ("inval-id"). RE2's C++ library also printed its own copy of
    the error to stderr."""
    rule = _copy(tmp_path, "web_sqli")
    text = rule.read_text()
    field = next(line for line in text.splitlines() if "|re" in line)
    key = field.partition(": ")[0]
    rule.write_text(text.replace(field, f"{key}: '(['"))
    _, problems = check_rules(tmp_path)
    [p] = [p for p in problems if "Regular expression" in p.message]
    assert p.location.line == _line_of(rule, "'(['"), p
    assert p.location.field == f"detection.union.{key.strip()}", p  # selection "union"
    assert "re2.cc" not in capfd.readouterr().err


def test_correlation_naming_an_unknown_rule(tmp_path: Path) -> None:
    shutil.copy(DETECTIONS / "account" / "ssh_brute_force.yml", tmp_path)
    shutil.copy(DETECTIONS / "account" / "ssh_brute_force.tests.yml", tmp_path)
    _, problems = check_rules(tmp_path)
    assert any("unknown rule 'ssh_auth_failure'" in p.message for p in problems)


def test_suppression_needs_owner_reason_and_expiry(tmp_path: Path) -> None:
    _copy(tmp_path)
    (tmp_path / "suppressions").mkdir()
    bad = tmp_path / "suppressions" / "bad.yml"
    bad.write_text("suppressions:\n  - id: x1\n    rule: '*'\n    match: {source.ip: 1.2.3.4}\n"
                   "    reason: scanner of the SOC\n")
    _, problems = check_rules(tmp_path)
    fields = {p.location.field for p in problems if p.location.path == str(bad)}
    assert fields == {"suppressions[0].owner", "suppressions[0].expires"}


def test_detect_check_cli_exits_non_zero_with_locations(tmp_path: Path) -> None:
    rule = _copy(tmp_path)
    _edit(rule, "level: high", "level: severe")
    result = CliRunner().invoke(cli, ["detect", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{rule}" in result.output and "error" in result.output


def test_the_shipped_rules_pass_detect_check() -> None:
    result = CliRunner().invoke(cli, ["detect", "check", str(DETECTIONS)])
    assert result.exit_code == 0, result.output


def test_an_empty_rule_file_is_an_error_not_a_rule_less(tmp_path: Path) -> None:
    """A rule file truncated to nothing (or to its comments) once loaded as no rule at all,
    without a word: the attack class it covered went undetected."""
    rule = _copy(tmp_path)
    rule.write_text("# Cross-site scripting\n")
    result = CliRunner().invoke(cli, ["detect", "check", str(tmp_path)])
    assert result.exit_code != 0
    assert f"{rule.name}" in result.output and "file is empty" in result.output
    tests = tmp_path / "web_xss.tests.yml"
    _copy(tmp_path)
    tests.write_text("")
    _, problems = check_rules(tmp_path)
    assert [(Path(p.location.path).name, p.message) for p in problems] == \
        [(tests.name, "file is empty")]


def _copy_botnet(tmp: Path) -> Path:
    for suffix in (".yml", ".tests.yml"):
        shutil.copy(DETECTIONS / "threat_intel" / f"botnet_connection{suffix}", tmp)
    (tmp / "lookups").mkdir()
    shutil.copy(DETECTIONS / "lookups" / "botnet_ips.txt", tmp / "lookups")
    return tmp / "botnet_connection.yml"


def test_a_lookup_no_file_provides_is_located_at_its_field(tmp_path: Path) -> None:
    """A typo in a placeholder passed `detect check`, then failed `detect test` and every
    rule of its shared scan in `detect run` with "no such table: lookup_botnet_ipz"."""
    rule = _copy_botnet(tmp_path)
    _edit(rule, "source.ip|expand: '%botnet_ips%'", "source.ip|expand: '%botnet_ipz%'")
    _, problems = check_rules(tmp_path)
    [p] = problems
    assert p.location.path == str(rule)
    assert p.location.line == _line_of(rule, "%botnet_ipz%")
    assert p.location.field == "detection.listed_source.source.ip|expand"
    assert "unknown lookup %botnet_ipz%" in p.message and "%botnet_ips%?" in p.message
    result = CliRunner().invoke(cli, ["detect", "check", str(tmp_path)])
    assert result.exit_code == 1 and "botnet_ipz" in result.output


def test_a_rule_file_checked_alone_finds_the_lookups_of_its_folder() -> None:
    from socctl.detection.testing import run_rule_tests

    ruleset, problems = check_rules(DETECTIONS / "threat_intel" / "botnet_connection.yml")
    assert problems == [] and ruleset.lookups["botnet_ips"]
    assert run_rule_tests(ruleset) == []


def _write_tests(tmp: Path, event: str) -> Path:
    _copy(tmp)
    tests = tmp / "web_xss.tests.yml"
    line = ('198.18.7.7 - - [22/Nov/2026:08:00:01 +0000] "GET /?q=%3Cscript%3E HTTP/1.1" '
            '200 5 "-" "Mozilla/5.0"')
    tests.write_text(f"fire:\n- name: attack\n  events:\n  - dataset: nginx.access\n"
                     f"    line: '{line}'\n"
                     f"quiet:\n- name: benign\n  events:\n{event}")
    return tests


def test_a_test_field_that_is_no_column_is_a_located_error(tmp_path: Path) -> None:
    """It was "internal error: KeyError: 'sourceip'" in `detect test`, with no file."""
    tests = _write_tests(tmp_path, "  - dataset: nginx.access\n    line: 'x'\n"
                                   "    fields:\n      sourceip: 198.18.7.7\n")
    _, problems = check_rules(tmp_path)
    [p] = problems
    assert p.location.path == str(tests) and p.location.line == _line_of(tests, "fields:")
    assert p.location.field == "quiet[0].events[0].fields"
    assert "unknown field 'sourceip'" in p.message and "'source.ip'" in p.message
    result = CliRunner().invoke(cli, ["detect", "test", str(tmp_path)])
    assert result.exit_code == 1 and "internal error" not in result.output
    assert f"{tests}:{p.location.line}" in result.output


def test_a_test_dataset_no_parser_reads_is_a_located_error(tmp_path: Path) -> None:
    """It was "internal error: ParseError: unknown dataset 'nginx'", with no file."""
    tests = _write_tests(tmp_path, "  - dataset: nginx\n    line: 'x'\n")
    _, problems = check_rules(tmp_path)
    [p] = problems
    line = tests.read_text().splitlines().index("  - dataset: nginx") + 1
    assert p.location.path == str(tests) and p.location.line == line
    assert p.location.field == "quiet[0].events[0].dataset"
    assert "unknown dataset 'nginx'" in p.message and "nginx.access" in p.message
    result = CliRunner().invoke(cli, ["detect", "test", str(tmp_path)])
    assert result.exit_code == 1 and "internal error" not in result.output


def test_a_test_line_the_parser_refuses_fails_its_scenario(tmp_path: Path) -> None:
    from socctl.detection.loader import load_rules
    from socctl.detection.testing import run_rule_tests

    _write_tests(tmp_path, "  - dataset: nginx.access\n    line: 'GET / HTTP/1.1'\n")
    ruleset = load_rules(tmp_path, with_tests=True)
    [failure] = run_rule_tests(ruleset)
    assert (failure.scenario, failure.kind) == ("benign", "quiet")
    assert "dead-letter" in failure.message and "combined-format" in failure.message
    result = CliRunner().invoke(cli, ["detect", "test", str(tmp_path)])
    assert result.exit_code == 1 and "internal error" not in result.output
    assert "web_xss.yml: quiet scenario 'benign'" in result.output


def _suppressions(tmp: Path, name: str, body: str) -> Path:
    folder = tmp / "suppressions"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("suppressions:\n" + body)
    return path


ENTRY = ("  - id: {id}\n    rule: '*'\n    match:\n      {key}: {value}\n"
         "    owner: soc\n    reason: the SOC scanner\n    expires: 2027-06-30\n")


def test_a_suppression_id_given_twice_is_located_at_the_second(tmp_path: Path) -> None:
    _copy(tmp_path)
    first = _suppressions(tmp_path, "a.yml", ENTRY.format(id="scanner", key="source.ip",
                                                          value="198.19.128.250"))
    second = _suppressions(tmp_path, "b.yml", ENTRY.format(id="other", key="source.ip",
                                                           value="198.19.128.9")
                           + ENTRY.format(id="scanner", key="source.ip", value="10.1.0.250"))
    ruleset, problems = check_rules(tmp_path)
    [p] = problems
    assert (p.location.path, p.location.line, p.location.field) == \
        (str(second), 9, "suppressions[1].id")
    assert "duplicate suppression id 'scanner'" in p.message and f"{first}:2" in p.message
    assert [s.id for s in ruleset.suppressions] == ["scanner", "other"]


def test_a_suppression_address_that_is_no_address_is_located(tmp_path: Path) -> None:
    """198.19.128.0/33 loaded and then silently never matched."""
    _copy(tmp_path)
    path = _suppressions(tmp_path, "a.yml",
                         ENTRY.format(id="typo", key="source.ip", value="198.19.128.0/33")
                         + ENTRY.format(id="typo2", key="source.ip", value="198.19.128.300"))
    _, problems = check_rules(tmp_path)
    assert [(p.location.line, p.location.field) for p in problems] == \
        [(4, "suppressions[0].match"), (11, "suppressions[1].match")]
    assert all(p.location.path == str(path) for p in problems)
    assert "'198.19.128.0/33' is not an IP address or network" in problems[0].message


def test_a_suppression_on_no_entity_field_is_a_located_warning(tmp_path: Path) -> None:
    """Alerts are grouped by their rule's entity fields; a suppression matching anything
    else never applies."""
    _copy(tmp_path)
    path = _suppressions(tmp_path, "a.yml",
                         ENTRY.format(id="health", key="url.original", value="/health"))
    _, problems = check_rules(tmp_path)
    [p] = problems
    assert p.severity.value == "warning"
    assert (p.location.path, p.location.line, p.location.field) == \
        (str(path), 5, "suppressions[0].match.url.original")
    assert "never applies" in p.message and "source.ip" in p.message


def test_alerts_suppress_picks_an_id_no_other_file_uses(tmp_path: Path) -> None:
    import datetime as dt

    from socctl.triage.store import Alert
    from socctl.triage.suppress import add_suppression

    _copy(tmp_path)
    alert = Alert(1, "x", "Cross-Site Scripting", "medium", (), {"source.ip": "198.18.7.7"},
                  0.0, 0.0, 1, "new", None, None, 0.0, None, None)
    _suppressions(tmp_path, "deployed.yml", ENTRY.format(
        id="cross-site-scripting-198-18-7-7", key="source.ip", value="198.18.7.7"))
    _, entry, _ = add_suppression(tmp_path, alert, owner="a1", reason="known tester",
                               expires=dt.date(2027, 1, 31), today=dt.date(2026, 12, 3))
    assert entry.id == "cross-site-scripting-198-18-7-7-2"
    assert [p for p in check_rules(tmp_path)[1] if "duplicate" in p.message] == []


def test_a_modifier_typo_is_located_at_its_key(tmp_path: Path) -> None:
    """pySigma's "Unknown modifier 'contians'" was located at line 1 with no field."""
    rule = _copy(tmp_path)
    _edit(rule, "url.original|contains:", "url.original|contians:")
    _, problems = check_rules(tmp_path)
    [p] = [p for p in problems if "contians" in p.message]
    assert p.location.line == _line_of(rule, "|contians:")
    assert p.location.field == "detection.selection.url.original|contians"


def test_a_bad_correlation_timespan_is_located_at_its_line(tmp_path: Path) -> None:
    for name in ("ssh_brute_force", "ssh_auth_failure"):
        for suffix in (".yml", ".tests.yml"):
            shutil.copy(DETECTIONS / "account" / f"{name}{suffix}", tmp_path)
    rule = tmp_path / "ssh_brute_force.yml"
    _edit(rule, "timespan: 5m\n", "timespan: 5min\n")
    _, problems = check_rules(tmp_path)
    [p] = problems
    assert p.location.path == str(rule) and "'5min'" in p.message
    assert (p.location.line, p.location.field) == \
        (_line_of(rule, "timespan: 5min"), "correlation.timespan")
