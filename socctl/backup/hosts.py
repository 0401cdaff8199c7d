"""Running engine commands on the database and file-system hosts.

In the lab a host is entered with nsenter (its namespaces; the lab is up on this
machine); elsewhere over ssh to its management address. Either way a call returns the
completed process and never raises on the exit status: drivers decide what failure means.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from socctl.config import Settings
from socctl.errors import Location, ToolError


@dataclass(frozen=True)
class Completed:
    host: str
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def brief(self) -> str:
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return text[-1] if text else f"exit {self.returncode}"


BACKUP_STORAGE = Path("/srv/backup")
"""Where the shipped policies' repositories live: each DC's backup storage, mounted."""


class Hosts:
    """Base: how to run a command on a named host (optionally as another user).

    Environment variables (restic's password) are handed over through the process
    environment, never on a command line, so only drivers that keep the environment
    (nsenter) accept them.
    """

    passes_env = False

    def argv(self, host: str, argv: Sequence[str]) -> list[str]:
        raise NotImplementedError

    def storage(self, path: str) -> str:
        """Where a policy's repository path is on these hosts: itself."""
        return path

    def run(self, host: str, argv: Sequence[str], *, user: str | None = None,
            env: Mapping[str, str] | None = None, timeout: float = 300,
            input_text: str | None = None) -> Completed:
        inner = list(argv)
        if env and not self.passes_env:
            raise ToolError(f"cannot pass environment (secrets) to {host} this way",
                            Location(f"host:{host}"), hint="run it on the lab or locally")
        if user:
            # The host's working directory (/root) is closed to the user; PostgreSQL's
            # tools (pg_ctl, pg_rewind) resolve their own path through getcwd and fail.
            inner = ["runuser", "-u", user, "--", "env", "-C", "/", *inner]
        full = self.argv(host, inner)
        started = time.monotonic()
        try:
            proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                                  input=input_text, check=False,
                                  env={**os.environ, **(env or {})})
        except subprocess.TimeoutExpired as exc:
            raise ToolError(f"{' '.join(argv[:3])} timed out after {timeout:.0f} s",
                            Location(f"host:{host}")) from exc
        except FileNotFoundError as exc:
            raise ToolError(f"{full[0]} not found", Location(f"host:{host}")) from exc
        return Completed(host, tuple(argv), proc.returncode, proc.stdout, proc.stderr,
                         time.monotonic() - started)


class LabHosts(Hosts):
    """Lab hosts, entered with nsenter (the environment passes through)."""

    passes_env = True

    def argv(self, host: str, argv: Sequence[str]) -> list[str]:
        from socctl.lab import runtime

        return runtime.nsenter_argv(host, argv)

    def storage(self, path: str) -> str:
        """A repository on the DCs' backup storage (:data:`BACKUP_STORAGE`) is on the lab's
        stand-in for it; a path elsewhere would be the machine's own disk, outside what
        ``lab down`` empties, and is refused."""
        from socctl.lab.runtime import LAB_STORAGE

        try:
            inside = Path(path).relative_to(BACKUP_STORAGE)
        except ValueError:
            raise ToolError(f"repository {path} is not on the backup storage "
                            f"({BACKUP_STORAGE}), which the lab stands in for at "
                            f"{LAB_STORAGE}", hint="put the policy's tier paths under "
                            f"{BACKUP_STORAGE}") from None
        return str(LAB_STORAGE / inside)


class SshHosts(Hosts):
    """Real hosts over ssh (key-based, as root) at their inventory management address."""

    def __init__(self, addresses: Mapping[str, str], options: Sequence[str] = ()) -> None:
        self.addresses = dict(addresses)
        self.options = list(options)  # e.g. -i KEY, -o UserKnownHostsFile=...

    def argv(self, host: str, argv: Sequence[str]) -> list[str]:
        import shlex

        if host not in self.addresses:
            raise ToolError(f"no address for host {host!r}")
        return ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", *self.options,
                f"root@{self.addresses[host]}", shlex.join(argv)]


def lab_is_up() -> bool:
    return Path("/run/socctl-lab/state.json").exists() and os.geteuid() == 0


def hosts_for(settings: Settings) -> Hosts:
    """The lab when it is up on this machine, else ssh with the inventory's addresses."""
    if lab_is_up():
        return LabHosts()
    from socctl.inventory import load_inventory

    inv = load_inventory(settings.inventory)
    return SshHosts({name: str(d.management.ip) for name, d in inv.devices.items()})
