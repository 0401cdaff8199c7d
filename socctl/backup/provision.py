"""Set up the lab's PostgreSQL primary and DR standby with the ``postgresql`` role.

A small ansible-playbook helper of this package (to be unified with
``socctl.automation`` later): runs ``playbooks/database.yml`` against the lab's Ansible
view with the secrets in a 0600 extra-vars file, and reports what changed.

Lab storage: pgBackRest's repositories stand for storage at each DC (repo1 primary DC,
repo2 DR DC, repo3 tape). In the lab they are paths under :data:`LAB_STORAGE`, which every
lab host sees (lab hosts overlay only /etc, /var and /root), as an NFS share from each
DC's backup array would be. pgBackRest 2.45 cannot push a backup to a repository on a
remote repo host from the database host, so shared paths are the honest lab stand-in.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socctl.config import Settings
from socctl.errors import Location, ToolError

LAB_STORAGE = Path("/srv/socctl-lab")
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
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out)
    loaded = json.loads(path.read_text(encoding="utf-8"))
    return DbSecrets(**loaded)


@dataclass
class PlaybookResult:
    playbook: str
    returncode: int
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    recap: dict[str, dict[str, int]] = field(default_factory=dict)
    output_tail: str = ""

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0 and self.failed == 0 and self.unreachable == 0

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {
            "succeeded": self.succeeded}


_RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
                    re.MULTILINE)


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    """Host -> counters, from ansible-playbook's PLAY RECAP."""
    return {m[1]: {"ok": int(m[2]), "changed": int(m[3]), "unreachable": int(m[4]),
                   "failed": int(m[5])} for m in _RECAP.finditer(output)}


def run_playbook(settings: Settings, playbook: str, inventory: Path,
                 extra_vars: dict[str, Any], timeout: float = 600) -> PlaybookResult:
    """ansible-playbook with the extra vars in a 0600 file (secrets never on argv)."""
    exe = str(Path(sys.executable).parent / "ansible-playbook")
    if not Path(exe).exists():
        exe = shutil.which("ansible-playbook") or exe
    vars_dir = settings.state_dir / "backup"
    vars_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    vars_file = vars_dir / "extra-vars.json"
    fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(extra_vars, out)
    path = settings.project_root / "playbooks" / playbook
    env = {**os.environ, "ANSIBLE_CONFIG": str(settings.ansible_cfg),
           "ANSIBLE_ROLES_PATH": str(settings.project_root / "playbooks" / "roles"),
           "ANSIBLE_NOCOLOR": "1"}
    try:
        proc = subprocess.run([exe, "-i", str(inventory), str(path), "-e", f"@{vars_file}"],
                              capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=settings.project_root, check=False)
    except FileNotFoundError as exc:
        raise ToolError("ansible-playbook not found", hint="pip install ansible-core") from exc
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"{playbook} did not finish in {timeout:.0f} s",
                        Location.of(path)) from exc
    finally:
        vars_file.unlink(missing_ok=True)
    recap = parse_recap(proc.stdout)
    result = PlaybookResult(playbook, proc.returncode, recap=recap,
                            output_tail="\n".join((proc.stdout + proc.stderr)
                                                  .splitlines()[-40:]))
    for counters in recap.values():
        result.ok += counters["ok"]
        result.changed += counters["changed"]
        result.failed += counters["failed"]
        result.unreachable += counters["unreachable"]
    return result


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
                       fresh: bool = False) -> PlaybookResult:
    """Run playbooks/database.yml against the lab (primary DC primary, DR DC standby)."""
    from socctl.lab import runtime

    if fresh:
        reset_lab_storage()
    plan = runtime.load_plan(settings)
    addresses = {name: str(lan.ip) for name in (PRIMARY, STANDBY)
                 if (lan := plan.host(name).lan) is not None}
    s = db_secrets(settings)
    repos = [{"path": str(path), "retention_full": repo_retention.get(tier, (2, 6))[0],
              "retention_diff": repo_retention.get(tier, (2, 6))[1]}
             for tier, path in lab_repo_paths().items()]
    extra = {"postgresql_addresses": addresses,
             "postgresql_replication_password": s.replication_password,
             "postgresql_app_password": s.app_password,
             "postgresql_pgbackrest_repos": repos,
             "postgresql_port": PORT, "postgresql_cluster": CLUSTER}
    inventory = runtime.LabPaths.of(settings).ansible_inventory
    return run_playbook(settings, "database.yml", inventory, extra)


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
