"""The national inventory: shipped data, models, checks and bad input."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml

from socctl.errors import Severity, ValidationFailed
from socctl.inventory import build_inventory, load_inventory
from socctl.inventory.select import Selection, select
from tests.conftest import FIXTURES, REPO

INVALID = sorted(p.name for p in (FIXTURES / "inventory" / "invalid").iterdir())


@pytest.fixture(scope="module")
def national():  # type: ignore[no-untyped-def]
    return load_inventory(REPO / "inventory")


def test_shipped_inventory_is_clean() -> None:
    inventory, problems = build_inventory(REPO / "inventory")
    assert inventory is not None
    assert [str(p) for p in problems] == []


def test_shipped_inventory_has_the_documented_shape(national) -> None:  # type: ignore[no-untyped-def]
    tiers = Counter(s.tier for s in national.sites.values())
    assert tiers == {"dc": 2, "ops": 1, "province": 63, "district": 705}
    codes = [s.province for s in national.sites.values() if s.tier == "province"]
    assert len(set(codes)) == 63 and "01" in codes and "79" in codes and "96" in codes
    assert national.sites["dc-primary"].location.startswith("Viettel IDC")
    assert national.sites["dc-dr"].location.startswith("GDS Thang Long")
    levels = Counter(s.level for s in national.systems.values())
    assert levels == {2: 12, 3: 10}
    assert sum(1 for s in national.systems.values() if s.target_level == 4) == 4


def test_every_office_has_two_wan_links_on_different_carriers(national) -> None:  # type: ignore[no-untyped-def]
    wan: dict[str, dict[str, str]] = {}
    for link in national.links.values():
        if link.kind.startswith("wan_"):
            wan.setdefault(link.a_site, {})[link.kind] = link.carrier
    offices = [s for s in national.sites.values() if s.tier in ("province", "district")]
    for site in offices:
        assert set(wan[site.name]) == {"wan_primary", "wan_backup"}, site.name
        assert len(set(wan[site.name].values())) == 2, site.name


def test_internet_links_meet_the_documented_minimums(national) -> None:  # type: ignore[no-untyped-def]
    inet = Counter(lk.a_site for lk in national.links.values() if lk.kind == "internet")
    dc = [lk for lk in national.links.values()
          if lk.kind == "internet" and lk.a_site == "dc-primary"]
    assert len(dc) == 4 and all(lk.bandwidth_mbps == 900 for lk in dc)
    for site in national.sites.values():
        if site.tier == "province":
            assert inet[site.name] >= 2
        elif site.tier == "district":
            assert inet[site.name] >= 1
    assert any(lk.kind == "interconnect" and {lk.a_site, lk.z_site} == {"dc-primary", "dc-dr"}
               for lk in national.links.values())


def test_backup_link_costs_more_than_primary(national) -> None:  # type: ignore[no-untyped-def]
    costs: dict[str, dict[str, int]] = {}
    for link in national.links.values():
        if link.kind.startswith("wan_"):
            costs.setdefault(link.a_site, {})[link.kind] = link.cost
    assert len(costs) == 63 + 705
    for site, cost in costs.items():
        assert cost["wan_backup"] > cost["wan_primary"], site


def test_addresses_are_unique_and_inside_their_site(national) -> None:  # type: ignore[no-untyped-def]
    mgmt = [d.management.ip for d in national.devices.values()]
    assert len(mgmt) == len(set(mgmt))
    loops = [d.loopback for d in national.devices.values() if d.loopback]
    assert len(loops) == len(set(loops))
    for device in national.devices.values():
        assert device.management.ip in national.sites[device.site].subnets["management"]


def test_addressing_is_deterministic_and_stable(make_inventory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "national"
    shutil.copytree(REPO / "inventory", folder)
    before = load_inventory(folder)
    again = load_inventory(folder)
    assert {n: s.subnets for n, s in before.sites.items()} == \
        {n: s.subnets for n, s in again.sites.items()}
    # adding a district to Hà Nội must not renumber any other site
    data = yaml.safe_load((folder / "provinces.yaml").read_text(encoding="utf-8"))
    data["provinces"][0]["districts"].append("Quận Mới")
    (folder / "provinces.yaml").write_text(yaml.safe_dump(data, allow_unicode=True),
                                           encoding="utf-8")
    after = load_inventory(folder)
    assert len(after.sites) == len(before.sites) + 1
    for name, site in before.sites.items():
        assert after.sites[name].subnets == site.subnets, name
    for name, device in before.devices.items():
        assert after.devices[name].management == device.management, name


def test_security_level_follows_hosted_systems(national) -> None:  # type: ignore[no-untyped-def]
    db = national.devices["dc-primary-db1"]
    assert db.security_level == 4  # hosts systems being raised to level 4
    assert "hi-assessment" in db.systems
    assert national.devices["p01d01-rtr1"].security_level == 2


def test_selection_filters_combine(national) -> None:  # type: ignore[no-untyped-def]
    hanoi_routers = select(national, Selection(provinces=("01",), roles=("edge_router",)))
    assert {d.site for d in hanoi_routers} == {
        s.name for s in national.sites.values() if s.province == "01"}
    assert all(d.role == "edge_router" for d in hanoi_routers)
    assert len(hanoi_routers) == 2 * 31  # the province and its 30 districts, 2 routers each
    with pytest.raises(Exception, match="unknown province '99'"):
        select(national, Selection(provinces=("99",)))


def test_lab_profile_uses_lab_addresses_only() -> None:
    lab = load_inventory(REPO / "inventory", "lab")
    assert {s.name for s in lab.sites.values()} == {
        "dc-primary", "dc-dr", "p01", "p01d01", "p01d02", "p79"}
    for device in lab.devices.values():
        assert str(device.management.ip).startswith("198.18.0.")
        for iface in device.interfaces:
            assert str(iface.address.ip).startswith("198.19.")


def test_valid_fixture_loads() -> None:
    inventory, problems = build_inventory(FIXTURES / "inventory" / "valid" / "minimal")
    assert inventory is not None and problems == []
    assert len(inventory.devices) == 11


@pytest.mark.parametrize("case", INVALID)
def test_invalid_inventory_reports_located_problems(case: str, make_inventory) -> None:  # type: ignore[no-untyped-def]
    folder = make_inventory(case)
    expected = yaml.safe_load((FIXTURES / "inventory" / "invalid" / case / "expect.yaml")
                              .read_text(encoding="utf-8"))["expect"]
    _, problems = build_inventory(folder)
    errors = [p for p in problems if p.severity is Severity.ERROR]
    assert errors, f"{case}: no error reported"
    for want in expected:
        matches = [
            p for p in errors
            if Path(p.location.path).name == want["file"] and p.location.line == want["line"]
            and (want["field"] is None or p.location.field == want["field"])
            and want["message"] in p.message
        ]
        assert matches, f"{case}: expected {want}, got {[str(p) for p in errors]}"
    with pytest.raises(ValidationFailed) as raised:
        load_inventory(folder)
    assert len(raised.value.problems) == len(problems)
