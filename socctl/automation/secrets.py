"""Where provisioning secrets come from: the lab's 0600 file, the environment, or a vault.

The roles read the SNMPv3 credentials from the ``SOCCTL_SNMP_*`` and the database
passwords from the ``SOCCTL_DB_*`` environment variables of the ansible-playbook process
(``lookup('ansible.builtin.env', ...)`` in the role defaults), or from an ansible-vault
encrypted variables file that sets the role variables directly. Secrets never go on a
command line, into the run record or output.

The database passwords are needed only where the ``postgresql`` role runs (database
servers), the ``SOCCTL_NET_*`` credentials only for Cisco IOS routers (network_cli), so
production runs without them are allowed; a host that needs them fails with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from socctl.config import Settings
from socctl.errors import ConfigError, LabError, Location

SECRET_ENV = ("SOCCTL_SNMP_USER", "SOCCTL_SNMP_AUTH_PASS", "SOCCTL_SNMP_PRIV_PASS")
DB_SECRET_ENV = ("SOCCTL_DB_REPLICATION_PASSWORD", "SOCCTL_DB_APP_PASSWORD")
# Cisco IOS routers (network_cli): the credentials `socctl net` uses too.
NET_SECRET_ENV = ("SOCCTL_NET_USERNAME", "SOCCTL_NET_PASSWORD", "SOCCTL_NET_SECRET")
_LAB_KEYS = {"SOCCTL_SNMP_USER": "snmp_user", "SOCCTL_SNMP_AUTH_PASS": "snmp_auth",
             "SOCCTL_SNMP_PRIV_PASS": "snmp_priv"}


def lab_secret_env(settings: Settings) -> dict[str, str]:
    """The lab's SNMPv3 credentials (the ones its snmpd baseline was created with) and its
    database passwords (generated once per machine, shared with ``socctl backup``)."""
    from socctl.backup.provision import db_secrets
    from socctl.lab.runtime import LabPaths

    path = LabPaths.of(settings).secrets
    if not path.exists():
        raise LabError("the lab has no secrets file yet", Location.of(path),
                       hint="run 'socctl lab up' first")
    import json

    data = json.loads(path.read_text(encoding="utf-8"))
    missing = [k for k in _LAB_KEYS.values() if not data.get(k)]
    if missing:
        raise LabError(f"lab secrets lack {', '.join(missing)}", Location.of(path),
                       hint="'socctl lab down' then 'socctl lab up' regenerates them")
    db = db_secrets(settings)
    return {**{env: str(data[key]) for env, key in _LAB_KEYS.items()},
            "SOCCTL_DB_REPLICATION_PASSWORD": db.replication_password,
            "SOCCTL_DB_APP_PASSWORD": db.app_password}


def production_secret_env(vault_file: Path | None,
                          environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Secrets from the environment; with a vault file, the vault provides them instead."""
    env = os.environ if environ is None else environ
    if vault_file is not None:
        if not vault_file.is_file():
            raise ConfigError("vault file not found", Location.of(vault_file))
        return {}
    missing = [name for name in SECRET_ENV if not env.get(name)]
    if missing:
        raise ConfigError(
            f"missing secrets: {', '.join(missing)}",
            hint="export them, or pass --vault-file with an ansible-vault encrypted file "
                 "setting snmp_v3_user, snmp_v3_auth_pass and snmp_v3_priv_pass")
    return {name: env[name] for name in (*SECRET_ENV, *DB_SECRET_ENV, *NET_SECRET_ENV)
            if env.get(name)}
