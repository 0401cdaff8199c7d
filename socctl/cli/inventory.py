"""socctl inventory: check, summarise, list and show the national inventory."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from socctl.cli import render
from socctl.cli.main import AppContext
from socctl.cli.options import profile_option, selection_from, selection_options
from socctl.errors import Severity
from socctl.inventory import build_inventory, load_inventory
from socctl.inventory.report import describe, device_row, summary
from socctl.inventory.select import select


@click.group("inventory")
def group() -> None:
    """The agency's sites, devices, links and information systems."""


@group.command("check")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@profile_option
@click.pass_obj
def check(app: AppContext, path: Path | None, profile: str) -> None:
    """Validate the inventory and list EVERY problem with file:line and field."""
    folder = path or app.settings.inventory
    _, problems = build_inventory(folder, profile)
    render.problems(problems, f"inventory {folder} (profile {profile})")
    if any(p.severity is Severity.ERROR for p in problems):
        sys.exit(1)


@group.command("summary")
@profile_option
@click.pass_obj
def summary_cmd(app: AppContext, profile: str) -> None:
    """Counts by tier, role and platform."""
    data = summary(load_inventory(app.settings.inventory, profile))
    if render.is_json():
        render.emit_json(data)
        return
    render.table(f"Inventory ({profile})", ["sites", "count"], data["sites"].items())
    render.table(None, ["links", "count"], data["links_by_kind"].items())
    render.table(None, ["role", "devices"], data["devices_by_role"].items())
    render.table(None, ["platform", "devices"], data["devices_by_platform"].items())
    render.console.print(f"{data['devices']} devices, {data['links']} links, "
                         f"{data['systems']} information systems "
                         f"(by level: {data['systems_by_level']})")


@group.command("list")
@selection_options
@profile_option
@click.pass_obj
def list_cmd(app: AppContext, /, profile: str, **kwargs: Any) -> None:
    """Devices matching the selection."""
    inv = load_inventory(app.settings.inventory, profile)
    rows = [device_row(inv, d) for d in select(inv, selection_from(kwargs))]
    if render.is_json():
        render.emit_json(rows)
        return
    columns = ["name", "site", "tier", "province", "role", "platform", "management",
               "security_level"]
    render.table(f"{len(rows)} devices", columns, ([r[c] for c in columns] for r in rows))


@group.command("show")
@click.argument("name")
@profile_option
@click.pass_obj
def show(app: AppContext, name: str, profile: str) -> None:
    """One site or device with everything known about it."""
    data = describe(load_inventory(app.settings.inventory, profile), name)
    if render.is_json():
        render.emit_json(data)
        return
    from rich.pretty import Pretty

    render.console.print(Pretty(data, expand_all=False))
