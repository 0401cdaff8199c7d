"""Bring the lab up and down, inspect it, and inject faults.

Everything the lab creates is named so that ``down`` can find it even when the state
file is gone (a crashed run): network namespaces ``socctl-*``, root-namespace veths
``slm*``/``slv*``, the bridge ``socctl-mgmt`` and the tmpfs at :data:`RUNTIME_DIR`.
Only processes this lab started are ever signalled: the hosts' inits, found through the
namespaces, and with them (by the kernel) everything in their pid namespaces. Anything
else in a host's network namespace (an operator's ``ip netns exec NS tcpdump``) is left
running and reported.

There is one lab per machine, so every call that changes it takes :data:`LAB_LOCK`; a
process whose ancestor holds the lock (a test session's ``socctl`` subprocesses, a drill
run by a demo) is part of that session and goes on.
"""

from __future__ import annotations

import contextlib
import fcntl
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
from socctl.files import write_private
from socctl.inventory import load_inventory
from socctl.lab.hostconf import host_spec
from socctl.lab.plan import MGMT_BRIDGE, NETNS_PREFIX, LabHost, LabPlan, plan_from_inventory

RUNTIME_DIR = Path("/run/socctl-lab")
# Outside RUNTIME_DIR: it must outlive the tmpfs that ``down`` unmounts.
LAB_LOCK = Path("/run/socctl-lab.lock")
# Shared storage every lab host sees (hosts overlay only /etc, /var and /root): the DCs'
# backup arrays and the tape tier in the lab. It belongs to one lab's clusters, so it is
# emptied with the lab.
LAB_STORAGE = Path("/srv/socctl-lab")
REQUIRED_TOOLS = ("ip", "bridge", "unshare", "nsenter", "mount", "umount", "ssh-keygen",
                  "sshd", "vtysh", "rsyslogd", "snmpd")
READY_TIMEOUT = 30.0
FOREIGN_GRACE = 1.0

_held: dict[str, int] = {}  # "fd": the lock's descriptor, once this process has it


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (which may hold spaces and parentheses):
    [0] is the state, [1] the parent's PID."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _parent(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def _ancestors(pid: int | None) -> set[int]:
    found: set[int] = set()
    while pid is not None and pid > 1 and pid not in found:
        found.add(pid)
        pid = _parent(pid)
    return found


def _lock_holder() -> int | None:
    try:
        text = LAB_LOCK.read_text(encoding="ascii").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def claim(wait: float = 0.0) -> None:
    """Take the machine's lab for this process (and its children), or say who has it.

    Reentrant: the first call keeps the lock's descriptor for the life of the process.
    ``wait`` is how long to queue behind another session (test sessions queue; an
    operator's ``socctl lab up`` should not silently wait an hour).
    """
    if "fd" in _held:
        return
    deadline = time.monotonic() + wait
    fd = os.open(LAB_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            holder = _lock_holder()
            if holder is not None and holder in _ancestors(os.getpid()):
                os.close(fd)
                return  # our parent session holds the lab: we act for it
            if time.monotonic() >= deadline:
                os.close(fd)
                raise LabError(
                    f"the lab is in use by another session (pid {holder or 'unknown'})",
                    Location.of(LAB_LOCK),
                    hint="wait for it to finish; 'socctl lab down' there ends it") from None
            time.sleep(0.5)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held["fd"] = fd


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
    _need_root()
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
    public = paths.key.with_suffix(".pub")
    if not paths.key.exists():
        with contextlib.suppress(FileNotFoundError):
            public.unlink()
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "socctl-lab",
              "-f", str(paths.key)])
    os.chmod(paths.key, 0o600)
    if not public.exists():  # the public half is derived: make it again
        derived = _run(["ssh-keygen", "-y", "-f", str(paths.key)], check=False)
        if derived.returncode != 0:
            raise LabError(f"the lab key is unreadable: {derived.stderr.strip()}",
                           Location.of(paths.key), hint="delete it to make a new one")
        public.write_text(derived.stdout, encoding="utf-8")
    return public.read_text(encoding="utf-8").strip()


SECRET_KEYS = ("netops_password", "snmp_user", "snmp_auth", "snmp_priv")


def lab_secrets(paths: LabPaths) -> dict[str, str]:
    """Per-machine lab secrets (0600), generated once: never in the repo, never logged."""
    paths.root.mkdir(parents=True, exist_ok=True)
    if paths.secrets.exists():
        try:
            data: dict[str, str] = json.loads(paths.secrets.read_text(encoding="utf-8"))
            missing = [k for k in SECRET_KEYS if not isinstance(data.get(k), str)]
        except (OSError, ValueError, AttributeError) as exc:
            raise LabError(f"the lab's secrets file is unreadable: {exc}",
                           Location.of(paths.secrets),
                           hint="delete it: 'socctl lab up' makes new secrets") from exc
        if missing:
            raise LabError(f"the lab's secrets file lacks {', '.join(missing)}",
                           Location.of(paths.secrets, field=missing[0]),
                           hint="delete it: 'socctl lab up' makes new secrets")
        return data
    data = {
        "netops_password": secrets.token_urlsafe(18),
        "snmp_user": "socctl",
        "snmp_auth": secrets.token_urlsafe(18),
        "snmp_priv": secrets.token_urlsafe(18),
    }
    write_private(paths.secrets, json.dumps(data))
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
        write_private(spec_path, json.dumps(spec))
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
        # A host that missed its deadline may still come up later: it would then run
        # unrecorded (status DOWN, start "already running"). Each init leads its own
        # session and pid namespace, so killing its group ends the whole host.
        for proc in procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
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
    write_private(RUNTIME_DIR / "state.json", json.dumps(state))


def _need_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, mounts)",
                       hint="run as root, e.g. with sudo")


def _load_state() -> dict[str, Any]:
    _need_root()  # its directory is 0700: without root, only a PermissionError
    path = RUNTIME_DIR / "state.json"
    if not path.exists():
        raise LabError("the lab is not up", Location.of(path), hint="run 'socctl lab up'")
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data.get("pids"), dict):
            raise ValueError("no pids")
    except (OSError, ValueError) as exc:
        raise LabError(f"the lab's state is unreadable: {exc}", Location.of(path),
                       hint="'socctl lab down' removes what is left of it") from exc
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
        "  # The DCs' backup storage (/srv/backup in production)",
        f"  postgresql_pgbackrest_storage: {LAB_STORAGE}",
        "  # The kernel logs no namespace's packets: the drop log goes by NFLOG to ulogd2",
        "  firewall_log_target: nflog",
        "  # No certificate in the lab: the portal answers plain HTTP",
        "  web_tls: false",
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
    claim()
    down(settings)
    RUNTIME_DIR.mkdir(parents=True, exist_ok=True)
    _run(["mount", "-t", "tmpfs", "-o", "mode=700", "socctl-lab", str(RUNTIME_DIR)])
    try:
        _network(plan)
        pids = _start_hosts(plan, list(plan.hosts), settings)
        _save_state(plan, pids)
        write_ansible_view(settings, plan)
        wait_converged(plan)
    except BaseException as exc:
        try:
            down(settings)
        except LabError as cleanup:
            exc.add_note(f"and cleaning up after it: {cleanup}")
        raise
    return plan


@dataclass
class Cleanup:
    killed: list[int] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    unmounted: bool = False
    storage_removed: bool = False
    # Processes the lab did not start, found in a host's network namespace: left running.
    foreign: list[str] = field(default_factory=list)
    # What could not be removed (``down`` raises when there is any).
    leftovers: list[str] = field(default_factory=list)

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


def _ns_inode(pid: int | str, kind: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


def _describe(pid: int) -> str:
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        comm = "?"
    return f"{pid} ({comm})"


@dataclass
class _Killed:
    signalled: list[int] = field(default_factory=list)
    foreign: list[int] = field(default_factory=list)  # not ours: left running
    survivors: list[int] = field(default_factory=list)  # ours, still alive at the deadline


def _kill_netns(netns: str, timeout: float = 5.0) -> _Killed:
    """End one lab host: its init, and with it (the kernel does it) its pid namespace.

    Ours are the init, the ``unshare`` that started it and every process in the init's
    pid namespace (daemons, ``run_in`` commands, Ansible's ssh sessions). Anything else
    in the network namespace was started by someone else and is not signalled.
    """
    done = _Killed()
    ours_pidns: set[int] = set()
    parents: set[int] = set()
    for pid in _ns_pids(netns):
        if _is_init(pid) and (inode := _ns_inode(pid, "pid")) is not None:
            ours_pidns.add(inode)
            if (parent := _parent(pid)) is not None:
                parents.add(parent)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                done.signalled.append(pid)

    def ours(pid: int) -> bool:
        return pid in parents or _ns_inode(pid, "pid") in ours_pidns

    deadline = time.monotonic() + timeout
    grace: float | None = None
    while True:
        alive = [p for p in _ns_pids(netns) if _alive_any(p)]
        mine = [p for p in alive if ours(p)]
        others = [p for p in alive if not ours(p)]
        now = time.monotonic()
        if not mine and grace is None:
            # An ``nsenter`` parent (run_in) sits in the network namespace but outside the
            # host's pid namespace: it exits on its own once its child is gone.
            grace = now + FOREIGN_GRACE
        if (not mine and (not others or now >= (grace or now))) or now >= deadline:
            done.foreign, done.survivors = others, mine
            return done
        time.sleep(0.02)


def _alive_any(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def down(settings: Settings) -> Cleanup:
    """Idempotent: removes whatever the lab left, running or crashed."""
    _need_root()
    claim()
    report = Cleanup()
    namespaces = lab_namespaces()
    for ns in namespaces:
        killed = _kill_netns(ns)
        report.killed += killed.signalled
        report.foreign += [f"{ns}: {_describe(p)}" for p in killed.foreign]
        report.leftovers += [f"process {_describe(p)} of {ns} did not end"
                             for p in killed.survivors]
    for ns in namespaces:
        if _run(["ip", "netns", "del", ns], check=False).returncode == 0:
            report.namespaces.append(ns)
    for name in lab_links():
        if _run(["ip", "link", "del", name], check=False).returncode == 0:
            report.links.append(name)
    if os.path.ismount(RUNTIME_DIR):
        _run(["umount", "-l", str(RUNTIME_DIR)], check=False)
        report.unmounted = True
    with contextlib.suppress(OSError):
        RUNTIME_DIR.rmdir()
    if LAB_STORAGE.exists():
        shutil.rmtree(LAB_STORAGE, ignore_errors=True)
        report.storage_removed = not LAB_STORAGE.exists()
    # What is still there is what counts, whatever each command said.
    report.leftovers += [f"network namespace {ns}" for ns in lab_namespaces()]
    report.leftovers += [f"link {name}" for name in lab_links()]
    if os.path.ismount(RUNTIME_DIR):
        report.leftovers.append(f"mount {RUNTIME_DIR}")
    if LAB_STORAGE.exists():
        report.leftovers.append(f"directory {LAB_STORAGE}")
    if report.leftovers:
        raise LabError("the lab could not be removed completely: "
                       + "; ".join(report.leftovers),
                       hint="see what holds them (e.g. 'ip netns pids', 'fuser -m'), "
                            "then run 'socctl lab down' again")
    return report


def _alive(pid: int | None, netns: str) -> bool:
    """A host's init is alive: it exists, is not a zombie, is one of ours, and is in this
    host's network namespace (a recorded PID reused by another host's init is not it)."""
    if pid is None:
        return False
    try:
        wanted = os.stat(f"/run/netns/{netns}").st_ino
    except OSError:
        return False
    return _alive_any(pid) and _is_init(pid) and _ns_inode(pid, "net") == wanted


def _host_pid(name: str) -> int:
    state = _load_state()
    pid = state["pids"].get(name)
    if not _alive(pid, f"{NETNS_PREFIX}{name}"):
        raise LabError(f"lab host {name} is not running",
                       hint=f"'socctl lab start host {name}' starts it again")
    return int(pid)


def nsenter_argv(name: str, argv: Sequence[str]) -> list[str]:
    """The command line that runs ``argv`` inside a lab host (all its namespaces)."""
    pid = _host_pid(name)
    return ["nsenter", "-t", str(pid), "-m", "-u", "-i", "-n", "-p", "--wd=/root", *argv]


def lab_address(settings: Settings, name: str) -> str:
    """A running host's management address, as the lab that is up numbered it.

    Refused unless the address is routed into the lab's bridge: with the lab down, an
    address of 198.18.0.0/15 goes out of the default route, and the lab key with it.
    """
    state = _load_state()
    _host_pid(name)
    address = str(load_plan(settings, state.get("profile")).host(name).management.ip)
    route = _run(["ip", "-o", "route", "get", address], check=False).stdout.split()
    if "dev" not in route or route[route.index("dev") + 1] != MGMT_BRIDGE:
        raise LabError(f"{address} is not routed into the lab ({' '.join(route) or 'no route'})",
                       hint="'socctl lab up' builds the lab's bridge")
    return address


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
        running = _alive(pid, host.netns)
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
    plan = load_plan(settings, _load_state().get("profile"))
    claim()
    link = plan.link(name)
    for host, ifname in ((plan.hosts[link.a_host], link.a_if),
                         (plan.hosts[link.z_host], link.z_if)):
        _run([*_netns(host), "link", "set", ifname, "up" if up_ else "down"])


def fail_host(settings: Settings, name: str) -> list[str]:
    """Kill the host (its init: the kernel then kills the rest of its pid namespace).

    Returns the processes in its network namespace that the lab did not start, which
    are left running.
    """
    state = _load_state()
    plan = load_plan(settings, state.get("profile"))
    host = plan.host(name)
    claim()
    killed = _kill_netns(host.netns)
    if killed.survivors:
        raise LabError(f"lab host {name} did not end: "
                       + ", ".join(_describe(p) for p in killed.survivors))
    state["pids"].pop(name, None)  # a dead init's PID may soon be someone else's
    _save_state(plan, state["pids"])
    return [_describe(p) for p in killed.foreign]


def start_host(settings: Settings, name: str) -> None:
    state = _load_state()
    plan = load_plan(settings, state.get("profile"))
    host = plan.host(name)
    claim()
    if any(_is_init(p) for p in _ns_pids(host.netns)):
        raise LabError(f"lab host {name} is already running")
    pids = _start_hosts(plan, [name], settings)
    state["pids"].update(pids)
    _save_state(plan, state["pids"])
