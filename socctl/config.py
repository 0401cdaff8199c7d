"""Settings from ``socctl.toml`` and ``SOCCTL_*`` environment variables.

Precedence, highest first: environment, the config file, built-in defaults. Nothing is
read at import time; :func:`load_settings` is called by the CLI (or a test) once.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import shutil
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from socctl.errors import ConfigError, Location

DEFAULT_CONFIG_NAME = "socctl.toml"
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
"""The agency's clock (UTC+7, as in its backup policies): the day on which a suppression's
last day (``expires``) ends and the date it was ``created``. Judged in UTC, a pentest
exception went on hiding alerts for the first seven hours of the day after its last."""


@functools.cache
def tzinfo_of(name: str) -> dt.tzinfo | None:
    """The zone a ``timezone`` setting names: an IANA name, or ``local`` (None: the host's
    zone, as :mod:`datetime` takes it). ValueError if there is no such zone."""
    if name == "local":
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as "
                         f"{DEFAULT_TIMEZONE}, UTC, or local)") from None


def _default_project_root() -> Path:
    """The folder holding the content (inventory/, playbooks/ ...).

    The working directory if it has an ``inventory/`` folder, else the checkout this
    package was installed from (editable installs), else the working directory.
    """
    cwd = Path.cwd()
    if (cwd / "inventory").is_dir():
        return cwd
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "inventory").is_dir():
        return checkout
    return cwd


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "socctl"


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved settings. Paths are absolute."""

    project_root: Path
    inventory: Path
    state_dir: Path
    lab_profile: str = "lab"
    config_file: Path | None = None
    timezone: str = DEFAULT_TIMEZONE

    @property
    def ansible_cfg(self) -> Path:
        return self.project_root / "ansible.cfg"

    def demo_scratch(self, step: str) -> Settings:
        """These settings with a fresh state directory ``<state>/demo/<step>``: a demo
        step's store stays for a look, apart from the operator's own, until the next run
        replaces it."""
        scratch = self.state_dir / "demo" / step
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        return replace(self, state_dir=scratch)


_KEYS: dict[str, str] = {
    "project_root": "path",
    "inventory": "path",
    "state_dir": "path",
    "lab_profile": "str",
    "timezone": "str",
}


def _line_of(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"\s*{re.escape(key)}\s*=", line):
            return number
    return None


def _from_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", Location.of(path)) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        raise ConfigError(f"invalid TOML: {exc}", Location.of(path, line)) from exc
    section = data.get("socctl", {})
    unknown_top = sorted(set(data) - {"socctl"})
    if unknown_top:
        raise ConfigError(
            f"unknown section [{unknown_top[0]}]",
            Location.of(path, _line_of(text, f"[{unknown_top[0]}"), unknown_top[0]),
            hint="settings live under [socctl]",
        )
    out: dict[str, str] = {}
    for key, value in section.items():
        if key not in _KEYS:
            raise ConfigError(
                f"unknown setting {key!r}",
                Location.of(path, _line_of(text, key), f"socctl.{key}"),
                hint=f"valid settings: {', '.join(sorted(_KEYS))}",
            )
        if not isinstance(value, str):
            raise ConfigError(
                f"setting {key!r} must be a string, got {type(value).__name__}",
                Location.of(path, _line_of(text, key), f"socctl.{key}"),
            )
        out[key] = value
    return out


def load_settings(config: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Resolve settings; a named config file must exist, the default one may be absent."""
    env = dict(os.environ if environ is None else environ)
    root = _default_project_root()
    values: dict[str, str] = {}
    config_file: Path | None = None
    if config is not None:
        if not config.is_file():
            raise ConfigError("config file not found", Location.of(config))
        config_file = config.resolve()
    elif (Path.cwd() / DEFAULT_CONFIG_NAME).is_file():
        config_file = (Path.cwd() / DEFAULT_CONFIG_NAME).resolve()
    base = config_file.parent if config_file else Path.cwd()
    if config_file:
        values.update(_from_file(config_file))
    for key in _KEYS:
        env_value = env.get(f"SOCCTL_{key.upper()}")
        if env_value:
            values[key] = env_value

    def path(key: str, default: Path) -> Path:
        raw = values.get(key)
        if raw is None:
            return default
        return (base / Path(raw).expanduser()).resolve()

    project_root = path("project_root", root)
    settings = Settings(
        project_root=project_root,
        inventory=path("inventory", project_root / "inventory"),
        state_dir=path("state_dir", _default_state_dir()),
        config_file=config_file,
    )
    if "lab_profile" in values:
        settings = replace(settings, lab_profile=values["lab_profile"])
    if "timezone" in values:
        try:
            tzinfo_of(values["timezone"])
        except ValueError as exc:
            if env.get("SOCCTL_TIMEZONE"):
                where = Location("SOCCTL_TIMEZONE")
            else:
                assert config_file is not None
                text = config_file.read_text(encoding="utf-8")
                where = Location.of(config_file, _line_of(text, "timezone"), "socctl.timezone")
            raise ConfigError(str(exc), where) from None
        settings = replace(settings, timezone=values["timezone"])
    return settings


def describe(settings: Settings) -> dict[str, str]:
    return {f.name: str(getattr(settings, f.name)) for f in fields(settings)}
