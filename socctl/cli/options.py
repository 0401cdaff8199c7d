"""Options shared by command groups (device selection, inventory profile)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import click

from socctl.errors import SocctlError
from socctl.inventory.select import Selection

F = TypeVar("F", bound=Callable[..., Any])


def selection_options(func: F) -> F:
    """--tier/--province/--site/--role/--platform, each repeatable; AND across kinds."""
    for name, help_text in reversed((
        ("tier", "dc, ops, province or district"),
        ("province", "official 2-digit province code, e.g. 01"),
        ("site", "site name, e.g. p01 or p01d03"),
        ("role", "device role, e.g. edge_router"),
        ("platform", "device platform, e.g. cisco_ios, frr"),
    )):
        func = click.option(f"--{name}", f"{name}s", multiple=True, help=help_text)(func)
    return func


def selection_from(kwargs: dict[str, Any]) -> Selection:
    return Selection(
        tiers=tuple(kwargs.pop("tiers", ())),
        provinces=tuple(kwargs.pop("provinces", ())),
        sites=tuple(kwargs.pop("sites", ())),
        roles=tuple(kwargs.pop("roles", ())),
        platforms=tuple(kwargs.pop("platforms", ())),
    )


profile_option = click.option(
    "--profile", default="national", show_default=True,
    help="Inventory profile: national (production) or lab.")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_seconds(text: str, option: str = "--since") -> float:
    """``90s``, ``15m``, ``1h``, ``7d``, ``1w`` -> seconds; one syntax for every command's
    --since and --every, a bad one a clear error (it was an internal error in some)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw])", text.strip())
    if m is None:
        raise SocctlError(f"bad {option} {text!r}", hint="use e.g. 30m, 1h, 7d, 1w")
    return float(m.group(1)) * _UNITS[m.group(2)]
