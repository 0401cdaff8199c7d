"""Set up the lab's PostgreSQL primary and DR standby with the ``postgresql`` role.

Runs ``playbooks/database.yml`` through ``socctl.automation`` (the same runner, run
record and secrets handling as ``socctl provision``), with the backup policy's retention.

Lab storage: pgBackRest's repositories stand for storage at each DC (repo1 primary DC,
repo2 DR DC, repo3 tape). In the lab they are paths under :data:`LAB_STORAGE`, which every
lab host sees (lab hosts overlay only /etc, /var and /root), as an NFS share from each
DC's backup array would be. pgBackRest 2.45 cannot push a backup to a repository on a
remote repo host from the database host, so shared paths are the honest lab stand-in.
"""

from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from socctl.config import Settings
from socctl.errors import Location, ToolError
from socctl.files import write_private
from socctl.lab.runtime import LAB_STORAGE

PRIMARY = "dc-primary-db1"
STANDBY = "dc-dr-db1"
PORT = 5433
CLUSTER = "socdb"
VERSION = "15"
APP_USER = "socctl_app"
APP_DATABASE = "agency"


@dataclass(frozen=True)
class DbSecrets:
    replication_password: str
    app_password: str
    restic_password: str


def secrets_path(settings: Settings) -> Path:
    return settings.state_dir / "backup" / "secrets.json"


def db_secrets(settings: Settings) -> DbSecrets:
    """Per-machine secrets (0600 file under the state directory), generated once."""
    path = secrets_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        data = {k: secrets.token_urlsafe(18) for k in
                ("replication_password", "app_password", "restic_password")}
        write_private(path, json.dumps(data))
    loaded = json.loads(path.read_text(encoding="utf-8"))
    return DbSecrets(**loaded)


def lab_repo_paths(root: Path = LAB_STORAGE) -> dict[str, Path]:
    return {"primary_dc": root / "dc-primary" / "pgbackrest",
            "dr_dc": root / "dc-dr" / "pgbackrest",
            "tape": root / "tape" / "pgbackrest"}


def reset_lab_storage(root: Path = LAB_STORAGE) -> None:
    """Empty the lab's shared backup storage: a new lab has new clusters (new system ids)."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True, mode=0o755)


def setup_lab_database(settings: Settings, repo_retention: dict[str, tuple[int, int]],
                       fresh: bool = False) -> dict[str, Any]:
    """``socctl provision --lab --playbook database`` with the policy's retention.

    The same plays run in site.yml and the DC playbooks (role defaults = the policy's
    retention); this entry point exists so the backup tooling can (re)build the databases
    alone. Returns the provisioning result, plus the totals the backup commands print.
    """
    from socctl.automation.provision import ProvisionRequest, provision
    from socctl.inventory.select import Selection

    if fresh:
        reset_lab_storage()
    repos = [{"path": str(path), "retention_full": repo_retention.get(tier, (2, 6))[0],
              "retention_diff": repo_retention.get(tier, (2, 6))[1]}
             for tier, path in lab_repo_paths().items()]
    request = ProvisionRequest(playbook="database", lab=True,
                               selection=Selection(roles=("db_server",)),
                               extra_vars={"postgresql_pgbackrest_repos": repos})
    result = provision(settings, request)
    out = result.to_dict()
    totals = {k: sum(getattr(h, k) for h in result.hosts.values())
              for k in ("ok", "changed", "failed", "unreachable")}
    errors = [f"{h.host}: {e.task}: {e.message}" for h in result.failures for e in h.errors]
    return out | totals | {"succeeded": not result.failed,
                           "output_tail": "\n".join(errors) or (result.stopped or "")}


SEED_SQL = """
SET synchronous_commit = local;
CREATE TABLE IF NOT EXISTS insurance_card (id bigint PRIMARY KEY, holder text NOT NULL,
  province text NOT NULL, valid_until date NOT NULL);
CREATE TABLE IF NOT EXISTS contribution (id bigint PRIMARY KEY, card_id bigint NOT NULL,
  month date NOT NULL, amount_vnd bigint NOT NULL);
INSERT INTO insurance_card SELECT g, 'holder ' || g, lpad((g % 63 + 1)::text, 2, '0'),
  date '2027-12-31' - (g % 365) FROM generate_series(1, {rows}) g ON CONFLICT DO NOTHING;
INSERT INTO contribution SELECT g, g % {rows} + 1, date '2026-01-01' + (g % 12) * 31,
  (g % 97 + 1) * 10000 FROM generate_series(1, {rows}) g ON CONFLICT DO NOTHING;
GRANT ALL ON insurance_card, contribution TO socctl_app;
"""


def seed_lab_data(settings: Settings, rows: int = 20000) -> str:
    """A small agency database for backups, restores and drills (idempotent)."""
    from socctl.backup.hosts import LabHosts

    result = LabHosts().run(PRIMARY, ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-p",
                                      str(PORT), "-d", APP_DATABASE], user="postgres",
                            input_text=SEED_SQL.format(rows=rows), timeout=120)
    if not result.ok:
        raise ToolError(f"seeding the lab database failed: {result.brief()}",
                        Location(f"host:{PRIMARY}"))
    return f"{rows} rows in insurance_card and contribution"
