"""Run one playbook over a list of hosts with ansible-runner; return per-host results.

ansible-runner starts ``ansible-playbook`` in a private data directory. That directory
receives the job's environment (ansible-runner records it in its artifacts), and the
environment carries the secrets, so it is created 0700 and removed after the run. No
secret is ever put on a command line; extra variables go through a 0600 file.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socctl.automation.events import EventCollector, Progress
from socctl.automation.result import HostRun, TaskError
from socctl.errors import ToolError

OnProgress = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class PlaybookJob:
    """Everything one ``ansible-playbook`` run needs; secrets only in ``secret_env``."""

    playbook: Path
    inventory: Path
    ansible_cfg: Path
    hosts: tuple[str, ...]
    check: bool = False
    diff: bool = False
    forks: int = 20
    extra_vars: Mapping[str, Any] = field(default_factory=dict)
    vault_file: Path | None = None
    vault_password_file: Path | None = None
    secret_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: int = 1800

    def cmdline(self) -> str:
        args = []
        if self.check:
            args.append("--check")
        if self.diff:
            args.append("--diff")
        if self.vault_file is not None:
            args.append(f"--extra-vars=@{self.vault_file}")
        if self.vault_password_file is not None:
            args.append(f"--vault-password-file={self.vault_password_file}")
        return " ".join(args)


def ansible_playbook() -> str:
    """The ansible-playbook of this Python environment (a venv need not be activated)."""
    beside = Path(sys.executable).parent / "ansible-playbook"
    if beside.exists():
        return str(beside)
    found = shutil.which("ansible-playbook")
    if found is None:
        raise ToolError("ansible-playbook not found",
                        hint="install socctl with its dependencies (ansible-core)")
    return found


def run_job(job: PlaybookJob, on_progress: OnProgress | None = None
            ) -> tuple[dict[str, HostRun], int]:
    """Run the job; returns per-host results and ansible-playbook's exit status."""
    try:
        import ansible_runner
    except ImportError as exc:  # pragma: no cover - a dependency of socctl
        raise ToolError("ansible-runner is not installed",
                        hint="pip install 'ansible-runner>=2.4,<2.5' (a socctl dependency)"
                        ) from exc
    hosts: dict[str, HostRun] = {name: HostRun(host=name) for name in job.hosts}
    collector = EventCollector(hosts)

    def on_event(event: dict[str, Any]) -> bool:
        progress = collector.handle(event)
        if progress is not None and on_progress is not None:
            on_progress(progress)
        return False  # do not keep the event's stdout in the artifacts

    private = Path(tempfile.mkdtemp(prefix="socctl-ansible-"))
    os.chmod(private, 0o700)
    env = {
        "ANSIBLE_CONFIG": str(job.ansible_cfg),
        "ANSIBLE_ROLES_PATH": str(job.playbook.parent / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        # ansible-runner finds ansible-playbook on PATH (its binary= drops the playbook)
        "PATH": f"{Path(ansible_playbook()).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        # ssh masters (ControlPersist) belong to this run: a lab host's address is reused
        # by the next lab, and a master left from an earlier one would hang on it.
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(private / "cp"),
        **job.secret_env,
    }
    try:
        runner = ansible_runner.run(
            private_data_dir=str(private),
            project_dir=str(job.playbook.parent),
            playbook=str(job.playbook),
            inventory=str(job.inventory),
            limit=",".join(job.hosts),
            forks=job.forks,
            cmdline=job.cmdline() or None,
            extravars=dict(job.extra_vars) or None,
            envvars=env,
            event_handler=on_event,
            quiet=True,
            suppress_env_files=True,
            timeout=job.timeout,
        )
        rc = int(runner.rc if runner.rc is not None else -1)
        if not collector.stats_seen and rc != 0:
            # killed at the job's timeout, or ansible-playbook died: no host finished the
            # play, whatever tasks of it went through, so none counts as done (a host whose
            # task failed once looked "ok" here and the canary and the budget never fired)
            tail = _stdout_tail(runner)
            why = ("the run was stopped at its timeout" if rc == 254 and job.timeout
                   else f"ansible-playbook ended (exit {rc}) before the play's summary")
            for run in hosts.values():
                if not (run.failed or run.unreachable):
                    run.failed = 1
                run.ran = True
                run.errors.append(TaskError("ansible-playbook", f"{why}: {tail}" if tail
                                            else why))
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return hosts, rc


def _stdout_tail(runner: Any, lines: int = 6) -> str:
    try:
        text = runner.stdout.read()
    except (OSError, AttributeError, ValueError):
        return ""
    return " | ".join(line.strip() for line in str(text).splitlines()[-lines:] if line.strip())
