"""Templates and compliance rules as content: every device renders, every rendered config
passes its own platform's rules, the lab templates match the lab's baseline, and bad
content is reported with file, line and field."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from socctl.errors import ContentError, ValidationFailed
from socctl.inventory import load_inventory
from socctl.lab.hostconf import _frr
from socctl.lab.plan import plan_from_inventory
from socctl.network import compliance, configtree
from socctl.network.drivers import DRIVERS, get_driver
from socctl.network.render import Renderer, render_all
from tests.conftest import FIXTURES, REPO

TEMPLATES = REPO / "device_templates"
RULES = REPO / "compliance_rules"


@pytest.fixture(scope="module")
def rules() -> list[compliance.LoadedRule]:
    return compliance.load_rules_or_raise(RULES, DRIVERS)


@pytest.mark.parametrize("profile", ["national", "lab"])
def test_every_supported_device_renders_and_passes_its_rules(
        profile: str, rules: list[compliance.LoadedRule]) -> None:
    inv = load_inventory(REPO / "inventory", profile)
    renderer = Renderer.create(inv, TEMPLATES)
    failures = []
    checked = 0
    for device in inv.devices.values():
        if device.platform not in DRIVERS:
            continue
        driver = get_driver(device.platform)
        outcomes = compliance.check(driver.tree(renderer.render(device)), rules,
                                    device.platform, renderer.context(device, driver))
        checked += 1
        failures += [f"{device.name}: {o.rule}: {o.message}" for o in outcomes
                     if o.status == "fail"]
    assert checked > 0
    assert failures == []


def test_render_all_skips_devices_without_driver_and_writes_files(tmp_path: Path) -> None:
    inv = load_inventory(REPO / "inventory", "lab")
    run = render_all(inv, list(inv.devices.values()), TEMPLATES, tmp_path)
    rendered = {h.host for h in run.hosts if not h.data.get("skipped")}
    skipped = {h.host for h in run.hosts if h.data.get("skipped")}
    assert rendered == {d.name for d in inv.devices.values() if d.platform == "frr"}
    assert skipped == {d.name for d in inv.devices.values() if d.platform == "linux"}
    assert not run.failed
    text = (tmp_path / "p01d01-rtr1.cfg").read_text()
    assert "hostname p01d01-rtr1" in text


def test_intended_wan_costs_match_the_lab_baseline() -> None:
    """The Netmiko path and the lab's own FRR config agree on interfaces and costs, so a
    drift check on a fresh lab shows only what socctl adds, never a renamed link."""
    inv = load_inventory(REPO / "inventory", "lab")
    plan = plan_from_inventory(inv)
    renderer = Renderer.create(inv, TEMPLATES)
    for host in plan.hosts.values():
        if not host.is_router:
            continue
        driver = get_driver("frr")
        baseline = driver.tree(_frr(plan, host))
        intended = driver.tree(renderer.render(inv.devices[host.name]))
        base_ifaces = {n.line: n for n in baseline.children if n.line.startswith("interface")}
        want_ifaces = {n.line: n for n in intended.children if n.line.startswith("interface")}
        assert set(base_ifaces) == set(want_ifaces), host.name
        for name, node in base_ifaces.items():
            costs = [c.line for c in node.children if c.line.startswith("ip ospf cost")]
            assert costs == [c.line for c in want_ifaces[name].children
                             if c.line.startswith("ip ospf cost")], f"{host.name} {name}"


def test_backup_link_costs_more_than_primary_in_every_office() -> None:
    inv = load_inventory(REPO / "inventory", "national")
    renderer = Renderer.create(inv, TEMPLATES)
    device = inv.devices["p01d01-rtr2"]
    context = renderer.context(device, get_driver(device.platform))
    assert context["wan_backup"][0]["cost"] > 10
    text = renderer.render(device)
    assert f"interface {context['wan_backup'][0]['name']}" in text


def test_template_error_names_the_template_file(tmp_path: Path) -> None:
    shutil.copytree(TEMPLATES, tmp_path / "t")
    path = tmp_path / "t" / "frr" / "device.j2"
    path.write_text(path.read_text() + "{% if %}\n")
    inv = load_inventory(REPO / "inventory", "lab")
    with pytest.raises(ContentError) as info:
        Renderer.create(inv, tmp_path / "t").render(inv.devices["p01-rtr1"])
    assert str(path) in str(info.value)
    assert info.value.location is not None and info.value.location.line is not None


def test_bad_template_settings_are_located(tmp_path: Path) -> None:
    shutil.copytree(TEMPLATES, tmp_path / "t")
    settings = tmp_path / "t" / "settings.yaml"
    settings.write_text(settings.read_text().replace("snmp_group: SOCCTL-RO\n    "
                                                     "management_acl: mgmt",
                                                     "snmp_group: SOCCTL-RO\n    "
                                                     "managment_acl: mgmt"))
    with pytest.raises(ValidationFailed) as info:
        Renderer.create(load_inventory(REPO / "inventory", "lab"), tmp_path / "t")
    text = "\n".join(str(p) for p in info.value.problems)
    assert re.search(r"settings\.yaml:\d+: profiles\.lab\.managment_acl", text), text


def test_rule_loader_collects_every_problem_with_location() -> None:
    _, problems = compliance.load_rules(FIXTURES / "compliance" / "invalid", DRIVERS)
    text = "\n".join(str(p) for p in problems)
    assert "rules.yaml:6: rules[1]: error: duplicate rule id 'ok-rule'" in text
    assert "unknown platform 'junos_typo'" in text
    assert "rules[3].require: error: invalid require" in text
    assert "exactly one of 'require' or 'forbid'" in text
    assert len(problems) == 4


def _frr_context(name: str) -> tuple[configtree.Node, dict[str, object]]:
    inv = load_inventory(REPO / "inventory", "lab")
    renderer = Renderer.create(inv, TEMPLATES)
    driver = get_driver("frr")
    device = inv.devices[name]
    return driver.tree(renderer.render(device)), renderer.context(device, driver)


def test_compliance_flags_a_backup_link_costed_like_the_primary(
        rules: list[compliance.LoadedRule]) -> None:
    tree, context = _frr_context("p01d01-rtr1")
    text = configtree.render(tree).replace("ip ospf cost 100", "ip ospf cost 10")
    outcomes = compliance.check(get_driver("frr").tree(text), rules, "frr", context)
    failed = {o.rule: o.message for o in outcomes if o.status == "fail"}
    assert set(failed) == {"frr-wan-backup-ospf"}
    assert "interface wan2" in failed["frr-wan-backup-ospf"]


def test_level_four_sites_get_the_stricter_rules(rules: list[compliance.LoadedRule]) -> None:
    dc_tree, dc_context = _frr_context("dc-primary-wrtr1")
    office_tree, office_context = _frr_context("p01-rtr1")
    relaxed = configtree.render(dc_tree).replace("exec-timeout 5 0", "exec-timeout 9 0")
    dc = compliance.check(get_driver("frr").tree(relaxed), rules, "frr", dc_context)
    assert [o.rule for o in dc if o.status == "fail"] == ["frr-vty-timeout-strict"]
    office = compliance.check(office_tree, rules, "frr", office_context)
    assert "frr-vty-timeout-strict" not in {o.rule for o in office}
    assert "exec-timeout" not in configtree.render(office_tree)  # the default, 10 min


def test_forbid_rule_flags_telnet_on_ios(rules: list[compliance.LoadedRule]) -> None:
    inv = load_inventory(REPO / "inventory", "national")
    renderer = Renderer.create(inv, TEMPLATES)
    driver = get_driver("cisco_ios")
    device = inv.devices["p01d01-rtr1"]
    text = renderer.render(device).replace("transport input ssh", "transport input ssh telnet")
    text += "snmp-server community public RO\n"
    outcomes = compliance.check(driver.tree(text), rules, "cisco_ios",
                                renderer.context(device, driver))
    failed = {o.rule for o in outcomes if o.status == "fail"}
    assert failed == {"ios-no-telnet", "ios-vty-ssh-only", "ios-snmpv3-only"}


def test_ios_clock_is_the_agencys_and_a_router_left_in_utc_is_flagged(
        rules: list[compliance.LoadedRule]) -> None:
    """Logs are stamped ``localtime show-timezone``: without ``clock timezone`` an IOS
    router's local time is UTC. The template sets the zone of template settings, and the
    audit finds a router whose zone line is missing or wrong."""
    inv = load_inventory(REPO / "inventory", "national")
    renderer = Renderer.create(inv, TEMPLATES)
    driver = get_driver("cisco_ios")
    device = inv.devices["p01d01-rtr1"]
    text = renderer.render(device)
    assert "\nclock timezone ICT 7 0\n" in text
    context = renderer.context(device, driver)
    for wrong in ("", "clock timezone UTC 0 0\n"):
        outcomes = compliance.check(driver.tree(text.replace("clock timezone ICT 7 0\n",
                                                             wrong)),
                                    rules, "cisco_ios", context)
        assert {o.rule for o in outcomes if o.status == "fail"} == {"ios-clock-timezone"}


def test_frr_vty_without_timeout_is_flagged(rules: list[compliance.LoadedRule]) -> None:
    tree, context = _frr_context("p01-rtr1")
    text = configtree.render(tree).replace(" access-class mgmt", " access-class mgmt\n"
                                           " exec-timeout 0 0")
    outcomes = compliance.check(get_driver("frr").tree(text), rules, "frr", context)
    assert [o.rule for o in outcomes if o.status == "fail"] == ["frr-vty-timeout"]


def test_a_forbidden_secret_line_is_reported_without_its_secret(
        rules: list[compliance.LoadedRule]) -> None:
    """The lines compliance forbids are the secret ones: the vty password was printed
    whole in the audit's message (console, -o json, run records)."""
    tree, context = _frr_context("p01-rtr1")
    text = configtree.render(tree) + "\npassword Vty-S3cret!\n"  # FRR's is top-level
    outcomes = compliance.check(get_driver("frr").tree(text), rules, "frr", context)
    [failed] = [o for o in outcomes if o.status == "fail"]
    assert failed.rule == "frr-no-vty-password"
    assert "password ***" in str(failed.to_dict()) and "Vty-S3cret!" not in str(
        failed.to_dict())


@pytest.mark.parametrize(("line", "shown"), [
    ("password Vty-S3cret!", "password ***"),
    ("no password Vty-S3cret!", "no password ***"),
    ("- password 7 0822455D0A16", "- password 7 ***"),
    ("+snmp-server community s3cret RO 10", "+snmp-server community *** RO 10"),
    ("enable secret 9 $9$abc", "enable secret 9 ***"),
    ("username netops privilege 15 secret 9 $9$x", "username netops privilege 15 secret 9 ***"),
    ("snmp-server user mon grp v3 auth sha AuthK priv aes 128 PrivK",
     "snmp-server user mon grp v3 auth sha *** priv aes 128 ***"),
    (" ip ospf message-digest-key 1 md5 K3y", " ip ospf message-digest-key 1 md5 ***"),
    (" neighbor 198.18.0.1 password Bgp", " neighbor 198.18.0.1 password ***"),
    ("% Unknown command: no password Vty-S3cret!", "% Unknown command: no password ***"),
    ("service password-encryption", "service password-encryption"),
    ("key chain OSPF", "key chain OSPF"),
    ("hostname p01-rtr1", "hostname p01-rtr1"),
])
def test_secret_lines_keep_their_keywords_and_lose_their_secret(line: str, shown: str) -> None:
    from socctl.network.masking import mask_line

    assert mask_line(line) == shown
