"""The postgresql role's passwords, run by real ansible-playbook against a scratch
PostgreSQL 15 cluster on a loopback port: a password with quotes, backslashes, spaces,
``$`` and ``:`` is set as it is (before, psql's ``\\set pw '...'`` broke on it or ran
what followed its quote), logs in over TCP and from the .pgpass the role writes; a rotated
password is applied to the existing role (before, an existing role was never changed),
and a run with the same password changes nothing."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.unit.test_playbook_vars import render_role

PG_BIN = Path("/usr/lib/postgresql/15/bin")
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
AS_ROOT = os.geteuid() == 0
# become postgres: a venv in a private directory is not theirs to run
PYTHON = shutil.which("python3", path="/usr/bin") if AS_ROOT else sys.executable
needs_postgres = pytest.mark.skipif(
    not (PG_BIN / "initdb").exists() or not ANSIBLE_PLAYBOOK.exists()
    or not shutil.which("psql") or (AS_ROOT and not shutil.which("sudo")),
    reason="needs PostgreSQL 15 (/usr/lib/postgresql/15/bin), psql, ansible-playbook")

FIRST = {"postgresql_app_password": "it's a \\ \"test\" $x:y",
         "postgresql_replication_password": "rep'l \\:\\\\ \"q\" $HOME :'pw' \\gexec"}
ROTATED = {"postgresql_app_password": "rotated 'app' \\ \"$y\":z",
           "postgresql_replication_password": "rotated \\ 'repl' \"$z\":\\:"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if AS_ROOT else command


@pytest.fixture
def cluster() -> Iterator[tuple[Path, int]]:
    """A fresh cluster (as postgres when root), local socket trust, TCP with SCRAM."""
    base = Path(tempfile.mkdtemp(prefix="socctl-pg-"))
    data, sockets = base / "data", base / "sock"
    sockets.mkdir()
    if AS_ROOT:
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    subprocess.run(as_owner([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                             "--auth-local=trust", "--auth-host=scram-sha-256"]),
                   check=True, capture_output=True, timeout=120)
    server = subprocess.Popen(as_owner([
        str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets),
        "-c", "listen_addresses=127.0.0.1"]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", str(sockets), "-p",
                               str(port)], check=False).returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the scratch PostgreSQL did not start")
        yield sockets, port
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def run_tasks(tmp_path: Path, files: list[str], variables: dict[str, Any],
              environment: dict[str, str] | None = None, role: str = "postgresql"
              ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """The role's task files on localhost, with its defaults (include_role), as the
    playbooks run them (the repository's ansible.cfg: its filter plugins)."""
    play = [{"name": "passwords", "hosts": "localhost", "gather_facts": False,
             "environment": environment or {},
             "tasks": [{"ansible.builtin.include_role": {"name": role, "tasks_from": name}}
                       for name in files]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": PYTHON}}}}))
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_STDOUT_CALLBACK": "json", "ANSIBLE_INVENTORY_ENABLED": "yaml",
           "ANSIBLE_PIPELINING": "True",
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    done = subprocess.run([str(ANSIBLE_PLAYBOOK), "-i", str(tmp_path / "hosts.yml"),
                           str(tmp_path / "play.yml"), "-e", f"@{tmp_path / 'vars.json'}"],
                          capture_output=True, text=True, timeout=300, env=env,
                          cwd=tmp_path)
    return done, json.loads(done.stdout[done.stdout.index("{"):])


def login(port: int, user: str, password: str | None, passfile: Path | None = None) -> bool:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if password is not None:
        env["PGPASSWORD"] = password
    env["PGPASSFILE"] = str(passfile or "/nonexistent")
    done = subprocess.run(["psql", "-X", "-At", "-w", "-h", "127.0.0.1", "-p", str(port),
                           "-U", user, "-d", "postgres", "-c", "SELECT current_user"],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    return done.returncode == 0 and done.stdout.strip() == user


@needs_postgres
def test_any_password_is_set_rotated_and_idempotent(
        tmp_path: Path, cluster: tuple[Path, int], monkeypatch: pytest.MonkeyPatch) -> None:
    sockets, port = cluster
    base = {"postgresql_port": port, "ansible_become": AS_ROOT}
    files = ["secrets.yml", "passwords.yml"]

    def run(passwords: dict[str, str], step: str) -> int:
        workdir = tmp_path / step
        workdir.mkdir()
        # the tasks' psql reaches the scratch server's socket
        done, data = run_tasks(workdir, files, {**base, **passwords},
                               {"PGHOST": str(sockets)})
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        for secret in passwords.values():
            assert secret not in done.stdout + done.stderr, "a password was logged"
        return int(data["stats"]["localhost"]["changed"])

    assert run(FIRST, "create") == 1
    assert login(port, "socctl_app", FIRST["postgresql_app_password"])
    assert login(port, "replicator", FIRST["postgresql_replication_password"])
    assert not login(port, "socctl_app", "wrong password")
    assert run(FIRST, "again") == 0, "the same passwords changed something"

    assert run(ROTATED, "rotate") == 1
    assert login(port, "socctl_app", ROTATED["postgresql_app_password"])
    assert login(port, "replicator", ROTATED["postgresql_replication_password"])
    assert not login(port, "socctl_app", FIRST["postgresql_app_password"])
    assert not login(port, "replicator", FIRST["postgresql_replication_password"])
    assert run(ROTATED, "rotated-again") == 0, "a rotated password was set twice"

    # the .pgpass the standbys replicate with, as the role writes it, is read by libpq
    passfile = tmp_path / "pgpass"
    (tmp_path / "render").mkdir()
    monkeypatch.setenv("SOCCTL_DB_REPLICATION_PASSWORD",
                       ROTATED["postgresql_replication_password"])
    rendered = render_role(tmp_path / "render", "postgresql", "pgpass.j2",
                           {"db1": {"socctl_db_port": port}})
    # .pgpass: ":" and "\\" in a field as "\\:" and "\\\\"
    assert rendered["db1"] == (f"*:{port}:*:replicator:"
                               "rotated \\\\ 'repl' \"$z\"\\:\\\\\\:\n")
    passfile.write_text(rendered["db1"])
    passfile.chmod(0o600)
    assert login(port, "replicator", None, passfile)


@pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="needs ansible-playbook")
@pytest.mark.parametrize("bad", ["two\nlines here ok", "carriage\rreturn here", "short"])
def test_a_password_psql_or_pgpass_cannot_carry_is_refused_by_name(
        tmp_path: Path, bad: str) -> None:
    done, data = run_tasks(tmp_path, ["secrets.yml"], {
        "postgresql_app_password": "a fine password", "postgresql_replication_password": bad})
    assert done.returncode != 0
    messages = [item.get("msg", "") for task in data["plays"][0]["tasks"]
                for result in task["hosts"].values()
                for item in result.get("results", [result]) if item.get("failed")]
    assert any("postgresql_replication_password is required" in str(m)
               and "SOCCTL_DB_REPLICATION_PASSWORD" in str(m) for m in messages), messages
    assert not any("postgresql_app_password is required" in str(m) for m in messages)
    assert bad not in done.stdout + done.stderr
