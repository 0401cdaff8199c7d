"""The driver registry: platform name -> driver class, an explicit dict.

A new platform (fortinet next) is one file in this folder plus one line below.
"""

from __future__ import annotations

from socctl.errors import DeviceError
from socctl.network.drivers.base import Driver, Session, Target
from socctl.network.drivers.cisco_ios import CiscoIosDriver
from socctl.network.drivers.frr import FrrDriver

__all__ = ["DRIVERS", "Driver", "Session", "Target", "get_driver", "register"]


def register(registry: dict[str, type[Driver]], driver: type[Driver]) -> None:
    if driver.name in registry:
        raise ValueError(f"duplicate network driver {driver.name!r}")
    registry[driver.name] = driver


DRIVERS: dict[str, type[Driver]] = {}
register(DRIVERS, FrrDriver)
register(DRIVERS, CiscoIosDriver)


def get_driver(platform: str) -> Driver:
    try:
        return DRIVERS[platform]()
    except KeyError:
        raise DeviceError(f"no network driver for platform {platform!r}",
                          hint=f"drivers: {', '.join(sorted(DRIVERS))}") from None
