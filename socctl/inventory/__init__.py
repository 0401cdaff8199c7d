"""The agency's topology: sites, devices, links and information systems."""

from socctl.inventory.loader import DEFAULT_PROFILE, build_inventory, load_inventory
from socctl.inventory.model import Device, Inventory, Link, Site, System

__all__ = [
    "DEFAULT_PROFILE",
    "Device",
    "Inventory",
    "Link",
    "Site",
    "System",
    "build_inventory",
    "load_inventory",
]
