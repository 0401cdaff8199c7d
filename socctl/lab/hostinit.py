"""The tiny init of a lab host (stdlib only; runs as PID 1 of the host's pid namespace).

Started by the lab as ``ip netns exec NS unshare --mount --uts --ipc --pid --fork
python3 -m socctl.lab.hostinit SPEC``. It makes the host's private filesystem view
(overlayfs over /etc, /var and /root; fresh /run, /tmp and /dev), writes the host's files,
starts its daemons, reports ``READY`` on stdout and then reaps zombies until killed.

Its process name is set to ``socctl-lab``: Ansible guesses the service manager from
/proc/1/comm and would take ``init`` or a name ending in ``sh`` for something else.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROCESS_NAME = b"socctl-lab"


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


def _set_name() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, ctypes.c_char_p(PROCESS_NAME), 0, 0, 0)  # PR_SET_NAME
    except OSError:
        pass


def _filesystems(spec: dict[str, Any]) -> None:
    base = Path(spec["host_dir"])
    for target in spec["overlays"]:
        key = target.strip("/").replace("/", "_")
        upper, work = base / "upper" / key, base / "work" / key
        upper.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        _mount("-t", "overlay", "overlay", "-o",
               f"lowerdir={target},upperdir={upper},workdir={work}", target)
    _mount("-t", "proc", "proc", "/proc")
    _mount("-t", "tmpfs", "-o", "mode=755,nosuid,nodev", "tmpfs", "/run")
    _mount("-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", "/tmp")
    _dev()


def _dev() -> None:
    """A private /dev: its own /dev/log for the host's syslog, its own ptys for sshd."""
    _mount("-t", "tmpfs", "-o", "mode=755,nosuid", "tmpfs", "/dev")
    for name, major, minor in (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7),
                               ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)):
        path = f"/dev/{name}"
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(path, 0o666)
    os.mkdir("/dev/pts")
    _mount("-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=0620,gid=5", "devpts",
           "/dev/pts")
    os.symlink("pts/ptmx", "/dev/ptmx")
    os.mkdir("/dev/shm")
    _mount("-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", "/dev/shm")
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{fd}", f"/dev/{name}")
    os.symlink("/proc/self/fd", "/dev/fd")


def _files(spec: dict[str, Any]) -> None:
    for path in spec.get("remove", []):
        Path(path).unlink(missing_ok=True)
    for entry in spec.get("files", []):
        path = Path(entry["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(entry["content"], encoding="utf-8")
        os.chmod(path, int(entry.get("mode", "0644"), 8))
        if entry.get("owner"):
            subprocess.run(["chown", entry["owner"], str(path)], check=True)
    for directory in spec.get("dirs", []):
        Path(directory["path"]).mkdir(parents=True, exist_ok=True)
        os.chmod(directory["path"], int(directory.get("mode", "0755"), 8))
        if directory.get("owner"):
            subprocess.run(["chown", directory["owner"], directory["path"]], check=True)


def _run_all(commands: list[list[str]], log: Any) -> None:
    for argv in commands:
        result = subprocess.run(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                timeout=60, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}")


def _reap_forever() -> None:
    def on_term(signum: int, frame: object) -> None:
        try:
            os.kill(-1, signal.SIGTERM)
            time.sleep(0.5)
        finally:
            os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            signal.pause()
        except InterruptedError:
            continue


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    ready = os.fdopen(os.dup(1), "w")
    log = open(Path(spec["host_dir"]) / "init.log", "a", buffering=1)  # noqa: SIM115
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)
    try:
        _set_name()
        socket.sethostname(spec["hostname"])
        _filesystems(spec)
        _files(spec)
        _run_all(spec.get("setup", []), log)
        _run_all(spec.get("daemons", []), log)
    except Exception as exc:  # report any failure to the lab, which shows it to the user
        ready.write(f"FAILED {type(exc).__name__}: {exc}\n")
        ready.close()
        return 1
    ready.write("READY\n")
    ready.close()
    _reap_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
