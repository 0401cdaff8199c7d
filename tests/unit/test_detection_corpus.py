"""Corpus test: every rule in detections/ loads, validates (pySigma 2 here, sigma-cli 3.1 on
pySigma 1.x in .venv-sigma1), converts for every target, and fires on its own should-fire
events and stays quiet on its should-not-fire events through the real engine, with the
lines parsed by the collector's real parsers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from socctl.detection import convert
from socctl.detection.engine import compile_rules
from socctl.detection.loader import check_rules, rule_files
from socctl.detection.testing import hits_on, run_rule_tests, scenario_rows

DETECTIONS = Path(__file__).resolve().parents[2] / "detections"
RULESET, PROBLEMS = check_rules(DETECTIONS)
IDS = [str(r.path.relative_to(DETECTIONS)) for r in RULESET.rules]
SIGMA1 = convert.sigma1_python()
needs_sigma1 = pytest.mark.skipif(SIGMA1 is None, reason=".venv-sigma1 missing: ./dev builds "
                                  "it (sigma-cli 3.1 + Elasticsearch backend on pySigma 1.x)")


def test_every_rule_file_loads_without_problems() -> None:
    assert [str(p) for p in PROBLEMS] == []
    assert len(RULESET.rules) == len(rule_files(DETECTIONS)) >= 30


@pytest.mark.parametrize("rule", RULESET.rules, ids=IDS)
def test_rule_fires_on_its_attacks_and_not_on_benign_events(rule) -> None:  # type: ignore[no-untyped-def]
    assert rule.tests is not None and rule.tests.fire and rule.tests.quiet
    assert [str(f) for f in run_rule_tests(RULESET, only=[rule])] == []


def test_every_documented_attack_class_has_an_alerting_rule() -> None:
    titles = " | ".join(r.title.lower() for r in RULESET.rules)
    for needle in ("port scan", "host sweep", "scanner user agent", "404", "sql injection",
                   "cross-site scripting", "traversal", "command injection",
                   "template injection", "xpath", "open redirect", "web shell",
                   "known-vulnerable", "brute force", "enumeration", "default",
                   "after brute force", "sudo or su", "postgresql authentication failures",
                   "superuser", "errors typical of sql injection", "flood", "botnet",
                   "phishing", "virus", "suspected spam", "smtp auth password guessing",
                   "web login guessing", "server-side request forgery",
                   "cisco ios login guessing"):
        assert needle in titles, needle
    kinds = {r.sigma.type.name.lower() for r in RULESET.rules if r.kind == "correlation"}
    assert {"event_count", "value_count", "temporal_ordered"} <= kinds


def test_a_forgery_probe_in_a_redirect_parameter_raises_one_alert() -> None:
    """Both rules read URL parameters: a loopback or metadata URL in ``?url=`` is request
    forgery, and an analyst got an open-redirect alert for it as well."""
    compiled = {c.rule.path.stem: c for c in compile_rules(RULESET.rules)}
    ssrf, redirect = compiled["web_ssrf"], compiled["web_open_redirect"]
    assert ssrf.rule.tests is not None and redirect.rule.tests is not None
    for scenario in ssrf.rule.tests.fire:
        assert hits_on(scenario_rows(scenario), [redirect], RULESET) == [], scenario.name
    forgery = [s for s in redirect.rule.tests.quiet if "request forgery" in s.name]
    assert forgery
    for scenario in forgery:
        for row in scenario_rows(scenario):  # each probe is the SSRF rule's alert
            assert len(hits_on([row], [ssrf], RULESET)) == 1, row


def test_a_rule_without_both_kinds_of_test_events_fails(tmp_path: Path) -> None:
    src = DETECTIONS / "web" / "web_xss.yml"
    (tmp_path / "web_xss.yml").write_text(src.read_text())
    _, problems = check_rules(tmp_path)
    assert any("no test events" in p.message for p in problems)
    (tmp_path / "web_xss.tests.yml").write_text(
        "fire:\n- name: x\n  events:\n  - {dataset: nginx.access, line: 'x'}\nquiet: []\n")
    _, problems = check_rules(tmp_path)
    assert any(p.location.field == "quiet" for p in problems), problems


def test_a_rule_that_stops_matching_its_attack_fails_the_suite(tmp_path: Path) -> None:
    """The corpus test can fail: a weakened rule is caught by its own events."""
    for name in ("web_sqli.yml", "web_sqli.tests.yml"):
        (tmp_path / name).write_text((DETECTIONS / "web" / name).read_text())
    rule = tmp_path / "web_sqli.yml"
    rule.write_text(rule.read_text().replace(
        "condition: (union_guard and union) or (quote_guard and tautology) or functions",
        "condition: union_guard and union"))
    ruleset, problems = check_rules(tmp_path)
    assert problems == []
    failures = run_rule_tests(ruleset)
    assert {f.scenario for f in failures} == {"tautology", "sqlmap time-based blind",
                                              "postgres stacked query",
                                              "double-encoded tautology"}


def test_superuser_rule_allows_every_dc_lan_of_every_inventory_profile() -> None:
    """pg_superuser_outside_dc lists the DC networks (lookups match exact values, not
    CIDRs): every DC site's LAN in every profile of inventory/ must be inside one of them,
    so a DC added or renumbered there fails here instead of paging the SOC."""
    from ipaddress import ip_network

    import yaml

    from socctl.inventory.loader import load_inventory

    repo = DETECTIONS.parent
    rule = yaml.safe_load((DETECTIONS / "database" / "pg_superuser_outside_dc.yml")
                          .read_text(encoding="utf-8"))
    allowed = [ip_network(c) for c in rule["detection"]["dc_networks"]["source.ip|cidr"]]
    assert ip_network("127.0.0.0/8") in allowed and ip_network("::1/128") in allowed
    profiles = yaml.safe_load((repo / "inventory" / "profiles.yaml")
                              .read_text(encoding="utf-8"))["profiles"]
    assert {"national", "lab"} <= set(profiles)
    lans = []
    for profile in profiles:
        inventory = load_inventory(repo / "inventory", profile)
        lans += [(profile, site.name, site.subnets["lan"])
                 for site in inventory.sites.values() if site.tier == "dc"]
    assert len(lans) >= 4
    uncovered = [lan for lan in lans
                 if not any(lan[2].version == net.version and lan[2].subnet_of(net)  # type: ignore[arg-type]
                            for net in allowed)]
    assert uncovered == []


def test_sqlite_conversion_covers_every_alerting_rule() -> None:
    out = convert.convert(DETECTIONS, "sqlite")
    text = out.text()
    assert len(out.output) >= 25
    assert "REGEXP" in text and "lookup_botnet_ips" in text


@pytest.mark.parametrize("target", convert.ES_TARGETS)
def test_committed_elasticsearch_conversions_are_current(target: str) -> None:
    conv, digest = convert.load_committed(DETECTIONS, target)
    assert digest == convert.inputs_digest(DETECTIONS), (
        f"detections/.converted/{target}.json is stale: run "
        "'socctl detect convert --refresh'")
    converted = len(conv.output) + len(conv.skipped)
    assert converted >= 24
    if target == "kibana-ndjson":
        for line in conv.output:
            rule = json.loads(line)
            assert rule["rule_id"] and rule["query"] and rule["language"] in ("lucene", "esql")
            assert rule["threat"], f"{rule['name']}: no ATT&CK mapping (offline data missing?)"
    # only what the backends cannot express is skipped, each with its reason
    for item in conv.skipped:
        assert ("correlation" in item["reason"].lower() or "incorrect" in item["reason"]), item


@needs_sigma1
@pytest.mark.parametrize("target", convert.ES_TARGETS)
def test_live_elasticsearch_conversion_matches_the_committed_one(target: str,
                                                                 tmp_path: Path) -> None:
    assert SIGMA1 is not None
    live = convert.convert_live(DETECTIONS, target, SIGMA1, tmp_path)
    committed, _ = convert.load_committed(DETECTIONS, target)
    assert live.output == committed.output and live.skipped == committed.skipped


@needs_sigma1
def test_sigma_cli_check_passes_offline(tmp_path: Path) -> None:
    assert SIGMA1 is not None
    ok, output = convert.sigma_cli_check(DETECTIONS, SIGMA1, tmp_path)
    assert ok, output
    assert "Found 0 errors, 0 condition errors and 0 issues" in output


def test_the_elasticsearch_converter_routes_logsources_like_the_engine() -> None:
    """sigma1_convert.py runs in the pySigma 1.x venv and cannot import socctl: its copy of
    the logsource table must equal the engine's."""
    from socctl.detection import sigma1_convert
    from socctl.detection.pipeline import LOGSOURCES

    engine = {(ls.product, ls.category, ls.service): ls.datasets
              for ls in LOGSOURCES if ls.datasets}
    converter = {(d.get("product"), d.get("category"), d.get("service")): tuple(ds)
                 for d, ds in sigma1_convert.LOGSOURCES}
    assert converter == engine
