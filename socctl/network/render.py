"""Intended configs: Jinja2 templates (content, ``device_templates/<platform>/``) rendered
from the inventory.

Templates are content, not code: network engineers edit them like the inventory, and a
corpus test renders every one. They live at the repository root beside ``inventory/``
(house style: content in plural top-level folders), one folder per driver, plus
``settings.yaml`` for per-profile values (NTP servers, banner, ACL name).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from socctl.content import load_yaml, validate
from socctl.errors import ContentError, DeviceError, Location, ValidationFailed
from socctl.inventory.model import Device, Inventory
from socctl.network.drivers import DRIVERS, Driver, get_driver
from socctl.results import HostResult, RunResult

STRICT_LEVEL = 3
"""Sites hosting level-3/4 systems get the stricter settings (shorter timeouts, login
blocking) and the stricter compliance rules."""


class ClockZone(BaseModel):
    """The devices' clock zone. IOS keeps UTC unless told (``clock timezone``), and its
    logs say which zone they were written in (``show-timezone``): the collectors read
    "ICT" as UTC+7 and a device left in UTC as UTC, so either is stored right, but an
    operator reading a console sees the agency's clock only with this set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Z]{3,5}$")
    hours: int = Field(ge=-12, le=14)
    minutes: int = Field(default=0, ge=0, le=59)


class ProfileSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ntp_servers: tuple[str, ...] = Field(min_length=1)
    clock_timezone: ClockZone
    banner: str
    snmp_group: str
    management_acl: str


class TemplateSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    profiles: dict[str, ProfileSettings]


def load_settings(templates: Path, profile: str) -> ProfileSettings:
    path = templates / "settings.yaml"
    data, problems = load_yaml(path)
    model = None
    if not problems:
        model, problems = validate(TemplateSettings, data, path)
    if problems or model is None:
        raise ValidationFailed(str(path), problems)
    if profile not in model.profiles:
        raise ContentError(f"no template settings for profile {profile!r}",
                           Location.of(path, None, "profiles"),
                           hint=f"profiles: {', '.join(model.profiles)}")
    return model.profiles[profile]


def _net(interface: IPv4Interface) -> dict[str, Any]:
    network = interface.network
    return {"ip": str(interface.ip), "netmask": str(network.netmask),
            "network": str(network), "network_address": str(network.network_address),
            "wildcard": str(network.hostmask), "prefixlen": network.prefixlen,
            "gateway": str(interface.ip)}


def _lan(network: IPv4Network) -> dict[str, Any]:
    gateway = IPv4Interface((int(network.network_address) + 1, network.prefixlen))
    return _net(gateway)


@dataclass
class Renderer:
    """Renders devices of one inventory; facts shared by all devices are computed once."""

    inventory: Inventory
    templates: Path
    settings: ProfileSettings
    _envs: dict[str, Any] = field(default_factory=dict)
    _collectors: list[str] = field(default_factory=list)
    _servers_at: set[str] = field(default_factory=set)

    @classmethod
    def create(cls, inventory: Inventory, templates: Path) -> Renderer:
        r = cls(inventory, templates, load_settings(templates, inventory.profile))
        r._collectors = [str(d.management.ip) for d in inventory.devices.values()
                         if d.role == "log_collector"]
        r._servers_at = {d.site for d in inventory.devices.values() if d.kind == "server"}
        return r

    def _env(self, driver: Driver) -> Any:
        if driver.name not in self._envs:
            import jinja2

            self._envs[driver.name] = jinja2.Environment(
                loader=jinja2.FileSystemLoader(self.templates / driver.name),
                undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                keep_trailing_newline=True, autoescape=False)
        return self._envs[driver.name]

    def context(self, device: Device, driver: Driver) -> dict[str, Any]:
        inv = self.inventory
        site = inv.sites[device.site]
        level = max(site.security_level, device.security_level)
        interfaces = []
        for index, iface in enumerate(device.interfaces):
            link = inv.links.get(iface.link)
            carrier = f" {link.carrier} {link.bandwidth_mbps}M" if link else ""
            role = {"wan_primary": "WAN primary", "wan_backup": "WAN backup",
                    "interconnect": "DC interconnect", "internet": "Internet"}[iface.kind]
            interfaces.append({
                **_net(iface.address),
                "name": driver.interface_name(device, iface, index), "logical": iface.name,
                "link": iface.link, "kind": iface.kind, "peer": iface.peer_device,
                "peer_address": str(iface.peer_address), "cost": iface.cost,
                "description": f"{role} {iface.link} to {iface.peer_device}{carrier}",
            })
        lan = site.subnets.get("lan")
        has_lan = lan is not None and device.site in self._servers_at
        return {
            "device": {"name": device.name, "role": device.role, "platform": device.platform,
                       "kind": device.kind, "loopback": str(device.loopback or "") or None,
                       "security_level": device.security_level},
            "site": {"name": site.name, "display": site.display, "tier": site.tier,
                     "location": site.location, "security_level": site.security_level},
            "level": level,
            "strict": level >= STRICT_LEVEL,
            "exec_timeout": 5 if level >= STRICT_LEVEL else 10,
            "management": _net(device.management),
            "interfaces": interfaces,
            "wan_primary": [i for i in interfaces if i["kind"] == "wan_primary"],
            "wan_backup": [i for i in interfaces if i["kind"] == "wan_backup"],
            "lan_interface": driver.lan_interface(has_lan),
            "lan": _lan(lan) if lan is not None else None,
            "collectors": self._collectors,
            "settings": self.settings.model_dump(),
        }

    def render(self, device: Device) -> str:
        """The intended config of one device, normalised as the driver compares it."""
        import jinja2

        driver = get_driver(device.platform)
        try:
            template = self._env(driver).get_template(driver.template)
            text = template.render(self.context(device, driver))
        except jinja2.TemplateSyntaxError as exc:
            raise ContentError(f"template syntax: {exc.message}",
                               Location.of(exc.filename or self.templates, exc.lineno)) from exc
        except jinja2.TemplateNotFound as exc:
            raise ContentError(f"template {exc.name} missing for platform {driver.name}",
                               Location.of(self.templates / driver.name)) from exc
        except jinja2.UndefinedError as exc:
            raise ContentError(f"template uses an undefined value: {exc.message}",
                               Location.of(self.templates / driver.name / driver.template),
                               hint=f"device {device.name}") from exc
        return driver.normalise(text)


def supported(devices: Iterable[Device]) -> tuple[list[Device], list[Device]]:
    """Devices with a network driver, and the others (servers, appliances, ...)."""
    yes: list[Device] = []
    no: list[Device] = []
    for d in devices:
        (yes if d.platform in DRIVERS else no).append(d)
    return yes, no


def render_all(inventory: Inventory, devices: list[Device], templates: Path,
               out: Path | None = None) -> RunResult:
    """Render every selected device; devices without a driver are reported as skipped."""
    renderer = Renderer.create(inventory, templates)
    run = RunResult("render")
    ok, unsupported = supported(devices)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    for device in ok:
        try:
            text = renderer.render(device)
        except (ContentError, DeviceError) as exc:
            run.hosts.append(HostResult(device.name, failed=True, message=str(exc)))
            continue
        result = HostResult(device.name, message=f"{len(text.splitlines())} lines",
                            data={"platform": device.platform, "lines": len(text.splitlines())})
        if out is not None:
            path = out / f"{device.name}.cfg"
            path.write_text(text, encoding="utf-8")
            result.data["path"] = str(path)
        else:
            result.data["config"] = text
        run.hosts.append(result)
    for device in unsupported:
        run.hosts.append(HostResult(device.name, message=f"skipped: no network driver for "
                                    f"platform {device.platform}",
                                    data={"platform": device.platform, "skipped": True}))
    run.hosts.sort(key=lambda h: h.host)
    return run
