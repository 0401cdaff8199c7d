"""Device credentials: from the environment, a 0600 file, an ansible-vault file, or the
lab's secrets. Never from the repository, never logged: ``repr`` hides every secret.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from socctl.errors import ConfigError, Location

ENV = {
    "username": "SOCCTL_NET_USERNAME",
    "password": "SOCCTL_NET_PASSWORD",
    "secret": "SOCCTL_NET_SECRET",
    "snmp_user": "SOCCTL_SNMP_USER",
    "snmp_auth": "SOCCTL_SNMP_AUTH_PASS",
    "snmp_priv": "SOCCTL_SNMP_PRIV_PASS",
}
# What this module read before it took the Ansible roles' names: one variable per secret
# for both, so an engineer who exports them once polls with what the agents were given.
_RENAMED = {"SOCCTL_SNMP_AUTH": ENV["snmp_auth"], "SOCCTL_SNMP_PRIV": ENV["snmp_priv"]}
VAULT_PASSWORD_FILE = "SOCCTL_VAULT_PASSWORD_FILE"


@dataclass(frozen=True)
class Credentials:
    """CLI login (Netmiko) and SNMPv3 USM user (SHA auth, AES privacy)."""

    username: str = ""
    password: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)
    snmp_user: str = ""
    snmp_auth: str = field(default="", repr=False)
    snmp_priv: str = field(default="", repr=False)
    source: str = "environment"

    def require_cli(self) -> None:
        if not self.username or not self.password:
            raise ConfigError(f"no device login in {self.source}",
                              hint=f"set {ENV['username']} and {ENV['password']}, or pass "
                                   "--credentials FILE (0600) or --lab")

    def require_snmp(self) -> None:
        if not (self.snmp_user and self.snmp_auth and self.snmp_priv):
            raise ConfigError(f"no SNMPv3 user in {self.source}",
                              hint=f"set {ENV['snmp_user']}, {ENV['snmp_auth']} and "
                                   f"{ENV['snmp_priv']}, or pass --credentials FILE or --lab")

    def secrets(self) -> list[str]:
        """Every secret value, for callers that must scrub text before storing it."""
        return [s for s in (self.password, self.secret, self.snmp_auth, self.snmp_priv) if s]


def from_mapping(data: Mapping[str, Any], source: str) -> Credentials:
    unknown = sorted(set(data) - set(ENV))
    if unknown:
        raise ConfigError(f"unknown credential key {unknown[0]!r}", Location.of(source),
                          hint=f"valid keys: {', '.join(ENV)}")
    return Credentials(**{k: str(v) for k, v in data.items()}, source=source)


def from_env(environ: Mapping[str, str] | None = None) -> Credentials:
    env = os.environ if environ is None else environ
    for old, new in _RENAMED.items():
        if env.get(old) and not env.get(new):
            # Not read silently as the new name: a left-over export of an old key would be
            # used without anyone noticing that the roles configured another.
            raise ConfigError(f"{old} is set but is no longer read",
                              hint=f"export it as {new}, the name the snmp role reads")
    return Credentials(**{k: env.get(v, "") for k, v in ENV.items()}, source="environment")


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"credentials file is readable by others (mode {oct(mode & 0o777)})",
                          Location.of(path), hint=f"chmod 600 {path}")


def from_file(path: Path, environ: Mapping[str, str] | None = None) -> Credentials:
    """A YAML or JSON mapping of the :data:`ENV` keys; mode 0600; may be ansible-vault
    encrypted (vault password file in ``SOCCTL_VAULT_PASSWORD_FILE``)."""
    env = os.environ if environ is None else environ
    try:
        _check_private(path)
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read credentials: {exc.strerror}", Location.of(path)) from exc
    if raw.startswith(b"$ANSIBLE_VAULT"):
        raw = _decrypt(path, raw, env)
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        # Never echo the file's content: it holds secrets.
        raise ConfigError("credentials file is not valid YAML/JSON", Location.of(path)) from exc
    if not isinstance(data, dict):
        raise ConfigError("credentials file must hold a mapping", Location.of(path),
                          hint=f"keys: {', '.join(ENV)}")
    return from_mapping(data, str(path))


def _decrypt(path: Path, raw: bytes, env: Mapping[str, str]) -> bytes:
    password_file = env.get(VAULT_PASSWORD_FILE)
    if not password_file:
        raise ConfigError("credentials file is ansible-vault encrypted", Location.of(path),
                          hint=f"set {VAULT_PASSWORD_FILE} to the vault password file")
    from ansible.parsing.vault import VaultLib, VaultSecret

    try:
        secret = Path(password_file).read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the vault password file: {exc.strerror}",
                          Location.of(Path(password_file)),
                          hint=f"{VAULT_PASSWORD_FILE} names it") from exc
    try:
        plain: bytes = VaultLib([("default", VaultSecret(secret))]).decrypt(raw)
    except Exception as exc:
        raise ConfigError(f"cannot decrypt the vault: {type(exc).__name__}",
                          Location.of(path)) from exc
    return plain


def from_lab(state_dir: Path) -> Credentials:
    """The lab's generated secrets (``<state>/lab/secrets.json``, 0600): user ``netops``."""
    path = state_dir / "lab" / "secrets.json"
    if not path.exists():
        raise ConfigError("the lab's secrets do not exist yet", Location.of(path),
                          hint="run 'socctl lab up' first")
    data = json.loads(path.read_text(encoding="utf-8"))
    return Credentials(username="netops", password=data["netops_password"],
                       snmp_user=data["snmp_user"], snmp_auth=data["snmp_auth"],
                       snmp_priv=data["snmp_priv"], source=str(path))
