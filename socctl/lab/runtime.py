"""Bring the lab up and down, inspect it, and inject faults.

Everything the lab creates is named so that ``down`` can find it even when the state
file is gone (a crashed run): network namespaces ``socctl-*``, root-namespace veths
``slm*``/``slv*``, the bridge ``socctl-mgmt`` and the tmpfs at :data:`RUNTIME_DIR`.
Only processes this lab started (the hosts' inits, found through the namespaces) are
ever signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socctl.config import Settings
from socctl.errors import LabError, Location
from socctl.inventory import load_inventory
from socctl.lab.hostconf import host_spec
from socctl.lab.plan import MGMT_BRIDGE, NETNS_PREFIX, LabHost, LabPlan, plan_from_inventory

RUNTIME_DIR = Path("/run/socctl-lab")
# Shared storage every lab host sees (hosts overlay only /etc, /var and /root): the DCs'
# backup arrays and the tape tier in the lab. It belongs to one lab's clusters, so it is
# emptied with the lab.
LAB_STORAGE = Path("/srv/socctl-lab")
REQUIRED_TOOLS = ("ip", "bridge", "unshare", "nsenter", "mount", "umount", "ssh-keygen",
                  "sshd", "vtysh", "rsyslogd", "snmpd")
READY_TIMEOUT = 30.0


@dataclass
class LabPaths:
    """Persistent lab files (key, secrets, Ansible view) under the state directory."""

    root: Path

    @classmethod
    def of(cls, settings: Settings) -> LabPaths:
        return cls(settings.state_dir / "lab")

    @property
    def key(self) -> Path:
        return self.root / "id_ed25519"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets.json"

    @property
    def ansible_inventory(self) -> Path:
        return self.root / "inventory" / "socctl.yml"



@dataclass
class HostState:
    name: str
    pid: int | None
    running: bool
    management: str
    role: str
    site: str
    daemons: dict[str, bool] = field(default_factory=dict)
    ospf_neighbours: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _run(argv: Sequence[str], *, check: bool = True, timeout: float = 30,
         input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                                input=input_text, check=False)
    except FileNotFoundError as exc:
        raise LabError(f"{argv[0]} not found", hint="run the README's set-up command, "
                       "which installs the lab's Debian packages") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{' '.join(argv)} timed out after {timeout:.0f} s") from exc
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed: {result.stderr.strip() or result.stdout}")
    return result


def preflight() -> None:
    """Say plainly why the lab cannot run here, before touching anything."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, mounts)",
                       hint="run as root, e.g. with sudo")
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None
               and not Path("/usr/sbin", t).exists()]
    if missing:
        raise LabError(f"missing programs: {', '.join(missing)}",
                       hint="apt-get install frr openssh-server snmpd snmp rsyslog "
                            "iproute2 iputils-ping util-linux")
    if not Path("/proc/self/ns/net").exists():
        raise LabError("this kernel has no network namespaces")


def load_plan(settings: Settings, profile: str | None = None) -> LabPlan:
    return plan_from_inventory(load_inventory(settings.inventory,
                                              profile or settings.lab_profile))


def _ensure_key(paths: LabPaths) -> str:
    paths.root.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.root, 0o700)
    if not paths.key.exists():
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "socctl-lab",
              "-f", str(paths.key)])
    os.chmod(paths.key, 0o600)
    return paths.key.with_suffix(".pub").read_text(encoding="utf-8").strip()


def lab_secrets(paths: LabPaths) -> dict[str, str]:
    """Per-machine lab secrets (0600), generated once: never in the repo, never logged."""
    paths.root.mkdir(parents=True, exist_ok=True)
    if paths.secrets.exists():
        data: dict[str, str] = json.loads(paths.secrets.read_text(encoding="utf-8"))
        return data
    data = {
        "netops_password": secrets.token_urlsafe(18),
        "snmp_user": "socctl",
        "snmp_auth": secrets.token_urlsafe(18),
        "snmp_priv": secrets.token_urlsafe(18),
    }
    fd = os.open(paths.secrets, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out)
    return data


def _netns(host: LabHost) -> list[str]:
    return ["ip", "-n", host.netns]


def _network(plan: LabPlan) -> None:
    _run(["ip", "link", "add", MGMT_BRIDGE, "type", "bridge"])
    _run(["ip", "addr", "add", str(plan.gateway), "dev", MGMT_BRIDGE])
    _run(["ip", "link", "set", MGMT_BRIDGE, "up"])
    for i, host in enumerate(plan.hosts.values()):
        _run(["ip", "netns", "add", host.netns])
        port = f"slm{i}"
        _run(["ip", "link", "add", port, "type", "veth", "peer", "name", f"slm{i}p"])
        _run(["ip", "link", "set", f"slm{i}p", "netns", host.netns, "name", "mgmt0"])
        _run(["ip", "link", "set", port, "master", MGMT_BRIDGE, "up"])
        _run(["bridge", "link", "set", "dev", port, "isolated", "on"])
        ns = _netns(host)
        _run([*ns, "link", "set", "lo", "up"])
        _run([*ns, "addr", "add", str(host.management), "dev", "mgmt0"])
        _run([*ns, "link", "set", "mgmt0", "up"])
        if host.loopback is not None:
            _run([*ns, "addr", "add", f"{host.loopback}/32", "dev", "lo"])
        if host.is_router:
            _run(["ip", "netns", "exec", host.netns, "sysctl", "-qw",
                  "net.ipv4.ip_forward=1"])
            if host.lan is not None:
                _run([*ns, "link", "add", "lan0", "type", "bridge"])
                _run([*ns, "addr", "add", str(host.lan), "dev", "lan0"])
                _run([*ns, "link", "set", "lan0", "up"])
    for j, link in enumerate(plan.links.values()):
        a, z = plan.hosts[link.a_host], plan.hosts[link.z_host]
        _run(["ip", "link", "add", f"slv{j}a", "type", "veth", "peer", "name", f"slv{j}z"])
        _run(["ip", "link", "set", f"slv{j}a", "netns", a.netns, "name", link.a_if])
        _run(["ip", "link", "set", f"slv{j}z", "netns", z.netns, "name", link.z_if])
        for host, ifname, address in ((a, link.a_if, link.a_address),
                                      (z, link.z_if, link.z_address)):
            if address is not None:
                _run([*_netns(host), "addr", "add", str(address), "dev", ifname])
            if link.z_bridge and host is z:
                _run([*_netns(host), "link", "set", ifname, "master", link.z_bridge])
            _run([*_netns(host), "link", "set", ifname, "up"])
        if link.kind == "lan" and a.lan_gateway is not None:
            _run([*_netns(a), "route", "add", "default", "via", str(a.lan_gateway)])


def _start_hosts(plan: LabPlan, names: Sequence[str], settings: Settings) -> dict[str, int]:
    """Start the inits of ``names`` in parallel; return their root-namespace PIDs."""
    paths = LabPaths.of(settings)
    public_key = _ensure_key(paths)
    secret = lab_secrets(paths)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for name in names:
        host = plan.hosts[name]
        host_dir = RUNTIME_DIR / "hosts" / name
        host_dir.mkdir(parents=True, exist_ok=True)
        spec = host_spec(plan, host, host_dir, public_key, secret)
        spec_path = host_dir / "spec.json"
        fd = os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(spec, out)
        procs[name] = subprocess.Popen(
            ["ip", "netns", "exec", host.netns, "unshare", "--mount", "--uts", "--ipc",
             "--pid", "--fork", "--propagation", "private", sys.executable, "-m",
             "socctl.lab.hostinit", str(spec_path)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd="/",
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )
    pids: dict[str, int] = {}
    failures: list[str] = []
    deadline = time.monotonic() + READY_TIMEOUT
    for name, proc in procs.items():
        line = _read_line(proc, deadline)
        if line != "READY":
            log = RUNTIME_DIR / "hosts" / name / "init.log"
            failures.append(f"{name}: {line or 'no answer'} (log: {log})")
            continue
        pid = _child_pid(proc.pid)
        if pid is None:
            failures.append(f"{name}: init has no process")
            continue
        pids[name] = pid
    if failures:
        raise LabError("lab hosts failed to start: " + "; ".join(failures))
    return pids


def _read_line(proc: subprocess.Popen[bytes], deadline: float) -> str:
    assert proc.stdout is not None
    buffer = b""
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timed out"
        ready, _, _ = select.select([proc.stdout], [], [], remaining)
        if not ready:
            return "timed out"
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        buffer += chunk
    return buffer.decode(errors="replace").strip().splitlines()[0] if buffer else ""


def _child_pid(pid: int) -> int | None:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def _save_state(plan: LabPlan, pids: dict[str, int]) -> None:
    state = {"profile": plan.profile, "started": time.time(), "pids": pids}
    RUNTIME_DIR.joinpath("state.json").write_text(json.dumps(state), encoding="utf-8")


def _load_state() -> dict[str, Any]:
    path = RUNTIME_DIR / "state.json"
    if not path.exists():
        raise LabError("the lab is not up", Location.of(path), hint="run 'socctl lab up'")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def write_ansible_view(settings: Settings, plan: LabPlan) -> Path:
    """The lab's own Ansible inventory source: same plugin, lab profile, lab access."""
    paths = LabPaths.of(settings)
    target = paths.ansible_inventory
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Written by 'socctl lab up': the lab as Ansible sees it. Do not edit.",
        "plugin: socctl",
        f"profile: {plan.profile}",
        f"inventory_dir: {settings.inventory}",
        "host_vars:",
        "  ansible_user: root",
        f"  ansible_ssh_private_key_file: {paths.key}",
        "  ansible_ssh_common_args: >-",
        "    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
        "  ansible_python_interpreter: /usr/bin/python3",
        "  ansible_connection: ssh",
        "  socctl_service_mgr: sysvinit",
        "  socctl_lab: true",
        "  # Servers' LAN addresses (the management bridge does not join hosts to each other)",
        "  socctl_lab_lan_addresses:",
        *[f"    {h.name}: {h.lan.ip}" for h in plan.hosts.values()
          if not h.is_router and h.lan is not None],
        "",
    ]
    target.write_text("\n".join(lines), encoding="utf-8")
    return target


def up(settings: Settings, profile: str | None = None) -> LabPlan:
    """Clean any stale lab, then build the network and start every host."""
    preflight()
    plan = load_plan(settings, profile)
    down(settings)
    RUNTIME_DIR.mkdir(parents=True, exist_ok=True)
    _run(["mount", "-t", "tmpfs", "-o", "mode=700", "socctl-lab", str(RUNTIME_DIR)])
    try:
        _network(plan)
        pids = _start_hosts(plan, list(plan.hosts), settings)
        _save_state(plan, pids)
        write_ansible_view(settings, plan)
        wait_converged(plan)
    except BaseException:
        down(settings)
        raise
    return plan


@dataclass
class Cleanup:
    killed: list[int] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    unmounted: bool = False
    storage_removed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def lab_namespaces() -> list[str]:
    result = _run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in result.stdout.splitlines()
            if line.startswith(NETNS_PREFIX)]


def lab_links() -> list[str]:
    result = _run(["ip", "-o", "link", "show"], check=False)
    names = []
    for line in result.stdout.splitlines():
        name = line.split(":", 2)[1].strip().split("@")[0]
        if name == MGMT_BRIDGE or (name.startswith(("slm", "slv")) and name[3:4].isdigit()):
            names.append(name)
    return names


def _ns_pids(netns: str) -> list[int]:
    result = _run(["ip", "netns", "pids", netns], check=False)
    return [int(p) for p in result.stdout.split() if p.isdigit()]


def _is_init(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "socctl-lab"
    except OSError:
        return False


def _kill_netns(netns: str, timeout: float = 5.0) -> list[int]:
    """Kill every process of one lab host; returns the PIDs signalled.

    The host's init goes first: the kernel then kills its whole pid namespace and the
    ``unshare`` above it reaps it, so no orphan is left for PID 1 to collect. Anything
    else still in the network namespace (a stray ``ip netns exec``) is killed after.
    """
    killed: list[int] = []
    for pid in _ns_pids(netns):
        if _is_init(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in _ns_pids(netns) if _alive_any(p)]
        if not alive:
            break
        if time.monotonic() > deadline - timeout / 2 or not killed:
            for pid in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
        time.sleep(0.02)
    return killed


def _alive_any(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def down(settings: Settings) -> Cleanup:
    """Idempotent: removes whatever the lab left, running or crashed."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, mounts)")
    report = Cleanup()
    namespaces = lab_namespaces()
    for ns in namespaces:
        report.killed += _kill_netns(ns)
    for ns in namespaces:
        _run(["ip", "netns", "del", ns], check=False)
        report.namespaces.append(ns)
    for name in lab_links():
        _run(["ip", "link", "del", name], check=False)
        report.links.append(name)
    if os.path.ismount(RUNTIME_DIR):
        _run(["umount", "-l", str(RUNTIME_DIR)], check=False)
        report.unmounted = True
    with contextlib.suppress(OSError):
        RUNTIME_DIR.rmdir()
    if LAB_STORAGE.exists():
        shutil.rmtree(LAB_STORAGE, ignore_errors=True)
        report.storage_removed = True
    return report


def _alive(pid: int | None) -> bool:
    """A host's init is alive: it exists, is not a zombie, and is one of ours."""
    if pid is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X") and comm == "socctl-lab"


def _host_pid(name: str) -> int:
    state = _load_state()
    pid = state["pids"].get(name)
    if not _alive(pid):
        raise LabError(f"lab host {name} is not running",
                       hint=f"'socctl lab start host {name}' starts it again")
    return int(pid)


def nsenter_argv(name: str, argv: Sequence[str]) -> list[str]:
    """The command line that runs ``argv`` inside a lab host (all its namespaces)."""
    pid = _host_pid(name)
    return ["nsenter", "-t", str(pid), "-m", "-u", "-i", "-n", "-p", "--wd=/root", *argv]


def ssh_argv(settings: Settings, address: str, user: str = "root") -> list[str]:
    """ssh to a lab host with the lab key (host keys change with every lab: not pinned)."""
    return ["ssh", "-i", str(LabPaths.of(settings).key), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5", f"{user}@{address}"]


def run_in(name: str, argv: Sequence[str], timeout: float = 60,
           input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command in a host and capture its output (does not raise on exit status)."""
    return _run(nsenter_argv(name, argv), check=False, timeout=timeout, input_text=input_text)


_DAEMONS = {"sshd": "sshd", "rsyslog": "rsyslogd", "snmpd": "snmpd", "frr": "zebra",
            "ospfd": "ospfd"}


def status(settings: Settings) -> list[HostState]:
    plan = load_plan(settings, _load_state().get("profile"))
    state = _load_state()
    out: list[HostState] = []
    for host in plan.hosts.values():
        pid = state["pids"].get(host.name)
        running = _alive(pid)
        hs = HostState(name=host.name, pid=pid, running=running,
                       management=str(host.management.ip), role=host.role, site=host.site)
        if running:
            comms = set()
            for p in _ns_pids(host.netns):
                with contextlib.suppress(OSError):
                    comms.add(Path(f"/proc/{p}/comm").read_text().strip())
            wanted = list(host.services) + (["ospfd"] if host.is_router else [])
            hs.daemons = {svc: _DAEMONS.get(svc, svc) in comms for svc in wanted}
            if host.is_router:
                hs.ospf_neighbours = ospf_neighbours(host.name)
        out.append(hs)
    return out


def ospf_neighbours(name: str) -> list[dict[str, str]]:
    result = run_in(name, ["vtysh", "-c", "show ip ospf neighbor json"], timeout=10)
    try:
        data = json.loads(result.stdout or "{}")
    except json.JSONDecodeError:
        return []
    found = []
    for router_id, entries in data.get("neighbors", {}).items():
        for entry in entries:
            found.append({
                "router_id": router_id,
                "state": str(entry.get("nbrState", entry.get("state", ""))),
                "interface": str(entry.get("ifaceName", "")).split(":")[0],
                "address": str(entry.get("ifaceAddress", entry.get("address", ""))),
            })
    return found


def routed_interfaces(plan: LabPlan, name: str) -> set[str]:
    """The OSPF interfaces of a router: its WAN and DC links (not LAN or management)."""
    found = set()
    for link in plan.links.values():
        if link.kind == "lan":
            continue
        if link.a_host == name:
            found.add(link.a_if)
        if link.z_host == name:
            found.add(link.z_if)
    return found


def wait_converged(plan: LabPlan, timeout: float = 30.0, down_links: Sequence[str] = ()
                   ) -> float:
    """Wait until every router has a Full OSPF neighbour on each of its up links.

    Returns the seconds waited; raises :class:`LabError` naming what is missing.
    """
    started = time.monotonic()
    skip = {(lk.a_host, lk.a_if) for n in down_links for lk in [plan.link(n)]}
    skip |= {(lk.z_host, lk.z_if) for n in down_links for lk in [plan.link(n)]}
    missing: list[str] = []
    while True:
        missing = []
        for host in plan.hosts.values():
            if not host.is_router:
                continue
            full = {n["interface"] for n in ospf_neighbours(host.name)
                    if n["state"].startswith("Full")}
            missing += [f"{host.name}:{i}" for i in sorted(routed_interfaces(plan, host.name))
                        if i not in full and (host.name, i) not in skip]
        if not missing:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise LabError(f"OSPF not converged after {timeout:.0f} s; no Full neighbour on "
                           + ", ".join(missing))
        time.sleep(0.2)


def set_link(settings: Settings, name: str, up_: bool) -> None:
    """Fail or heal a link: both ends go down (or up), as a cut cable would."""
    _load_state()
    plan = load_plan(settings, _load_state().get("profile"))
    link = plan.link(name)
    for host, ifname in ((plan.hosts[link.a_host], link.a_if),
                         (plan.hosts[link.z_host], link.z_if)):
        _run([*_netns(host), "link", "set", ifname, "up" if up_ else "down"])


def fail_host(settings: Settings, name: str) -> None:
    """Kill everything in the host (its init first: the kernel then kills the rest)."""
    plan = load_plan(settings, _load_state().get("profile"))
    _kill_netns(plan.host(name).netns)


def start_host(settings: Settings, name: str) -> None:
    state = _load_state()
    plan = load_plan(settings, state.get("profile"))
    host = plan.host(name)
    if _ns_pids(host.netns):
        raise LabError(f"lab host {name} is already running")
    pids = _start_hosts(plan, [name], settings)
    state["pids"].update(pids)
    _save_state(plan, state["pids"])
