"""A fake Cisco IOS router (fakenos) on 127.0.0.1 for the tests that need one.

fakenos emulates an IOS command line over real SSH (paramiko server): login, prompts,
``enable``, canned ``show`` output. It keeps NO config state: configuration commands
change nothing and ``show running-config`` always answers the same text. It stands in
for an IOS device only because none can run on this machine; every test using it says
so.
"""

from __future__ import annotations

import socket
import threading
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

PASSWORD = "fake-Secret-42"
USERNAME = "netops"


def _daemon_thread(*args: Any, **kwargs: Any) -> threading.Thread:
    """fakenos starts non-daemon threads and leaves some running after a refused login;
    without this, the test process would wait for them forever at exit."""
    kwargs["daemon"] = True
    return threading.Thread(*args, **kwargs)


FAKENOS_THREADING = types.SimpleNamespace(**{**vars(threading), "Thread": _daemon_thread})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, timeout: float = 10.0) -> None:
    """fakenos binds its socket in ``start()`` but calls ``listen()`` later, on its
    listener thread: a client that connects in between is refused (seen once in a full
    run of the suite: "Unable to connect to port ..."). Wait for the LISTEN state in
    /proc/net/tcp rather than probing with a connection, which fakenos would take for a
    client and fail on."""
    wanted = f":{port:04X}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/net/tcp") as table:
            for line in table.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if local.endswith(wanted) and state == "0A":  # TCP_LISTEN
                    return
        time.sleep(0.01)
    raise RuntimeError(f"fakenos is not listening on 127.0.0.1:{port} after {timeout} s")


@contextmanager
def fake_ios(folder: Path, running_config: str,
             commands: dict[str, dict[str, Any]] | None = None) -> Iterator[int]:
    """Serve one fake IOS router ``rtr-01``; yields its SSH port."""
    import fakenos

    base = Path(fakenos.__file__).parent / "plugins" / "nos" / "platforms_yaml"
    nos: dict[str, Any] = yaml.safe_load((base / "cisco_ios.yaml").read_text())
    nos["commands"]["show running-config"] = {
        "output": running_config, "help": "running config", "prompt": ["{base_prompt}#"]}
    # Ansible's IOS terminal plugin asks for the privilege level before anything else.
    nos["commands"]["show privilege"] = {
        "output": "Current privilege level is 15", "help": "privilege",
        "prompt": ["{base_prompt}#"]}
    nos["commands"].update(commands or {})
    path = folder / "cisco_ios_socctl.yaml"
    path.write_text(yaml.safe_dump(nos))
    port = free_port()
    inventory = {
        "default": {"username": USERNAME, "password": PASSWORD, "port": port,
                    "server": {"plugin": "ParamikoSshServer",
                               "configuration": {"address": "127.0.0.1", "timeout": 1}},
                    "shell": {"plugin": "CMDShell", "configuration": {}},
                    "nos": {"plugin": str(path), "configuration": {}}},
        "hosts": {"rtr-01": {"port": port}},
    }
    patch = pytest.MonkeyPatch()
    for module in ("fakenos.core.servers", "fakenos.plugins.servers.ssh_server_paramiko",
                   "fakenos.plugins.shell.cmd_shell"):
        patch.setattr(f"{module}.threading", FAKENOS_THREADING)
    try:
        with fakenos.FakeNOS(inventory=inventory):
            _wait_listening(port)
            yield port
    finally:
        patch.undo()
