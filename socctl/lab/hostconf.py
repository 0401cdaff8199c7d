"""The files, setup commands and daemons of one lab host, as a spec for its init.

This is the host's baseline as a freshly installed machine would have it: sshd with its
own host key and key-only root login on the management address, rsyslog, snmpd (SNMPv3
user from the lab's secrets) and, on routers, FRR with OSPF over the WAN links plus a
``netops`` user whose login shell is vtysh. Provisioning (Ansible) changes it from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from socctl.lab.plan import LabHost, LabPlan

NETOPS_USER = "netops"
OVERLAYS = ("/etc", "/var", "/root")
HOST_KEY = "/etc/ssh/ssh_host_lab_ed25519_key"
"""Not the machine's key path: a host must never reuse the machine's host key."""


def _sshd(host: LabHost) -> str:
    return "\n".join([
        "# socctl lab: this host's own sshd, on the management address only",
        f"ListenAddress {host.management.ip}",
        f"HostKey {HOST_KEY}",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UseDNS no",
        "MaxStartups 64:30:128",
        f"Match User {NETOPS_USER}",
        "    PasswordAuthentication yes",
        "",
    ])


def _frr(plan: LabPlan, host: LabHost) -> str:
    lines = [
        "frr version 8.4",
        "frr defaults datacenter",
        f"hostname {host.name}",
        "log syslog informational",
        "service integrated-vtysh-config",
        "!",
    ]
    passive = ["lo"]
    ifaces: list[tuple[str, int]] = []
    for link in plan.links.values():
        if link.kind == "lan":
            continue
        if link.a_host == host.name:
            ifaces.append((link.a_if, link.cost))
        elif link.z_host == host.name:
            ifaces.append((link.z_if, link.cost))
    if host.lan is not None:
        passive.append("lan0")
    for name in passive:
        lines += [f"interface {name}", " ip ospf area 0", "!"]
    for name, cost in ifaces:
        lines += [
            f"interface {name}",
            " ip ospf area 0",
            " ip ospf network point-to-point",
            f" ip ospf cost {cost}",
            " ip ospf hello-interval 1",
            " ip ospf dead-interval 3",
            " ip ospf retransmit-interval 1",
            "!",
        ]
    lines += ["router ospf"]
    if host.loopback is not None:
        lines.append(f" ospf router-id {host.loopback}")
    lines += [f" passive-interface {name}" for name in passive]
    lines += [" timers throttle spf 0 50 500", "!", "line vty", "!", ""]
    return "\n".join(lines)


def _daemons_file() -> str:
    original = Path("/etc/frr/daemons").read_text(encoding="utf-8")
    out = []
    for line in original.splitlines():
        if line.startswith("ospfd="):
            line = "ospfd=yes"
        out.append(line)
    return "\n".join(out) + "\n"


def _rsyslog_conf() -> str:
    """The machine's rsyslog.conf without imklog: a lab host must not read the kernel log."""
    original = Path("/etc/rsyslog.conf").read_text(encoding="utf-8")
    return "\n".join(
        ("# " + line) if "imklog" in line and not line.lstrip().startswith("#") else line
        for line in original.splitlines()) + "\n"


RSYSLOG_INIT = """#!/bin/sh
# socctl lab: Debian 12's rsyslog ships no init script (it relies on systemd) and lab hosts
# have no systemd, so this one lets Ansible's service module (use: sysvinit) manage it.
PIDFILE=/run/rsyslogd.pid
DAEMON=/usr/sbin/rsyslogd
case "$1" in
  start) start-stop-daemon --start --quiet --oknodo --pidfile $PIDFILE --exec $DAEMON ;;
  stop) start-stop-daemon --stop --quiet --oknodo --retry 5 --pidfile $PIDFILE \\
          --exec $DAEMON && rm -f $PIDFILE ;;
  restart|force-reload) "$0" stop && "$0" start ;;
  reload) start-stop-daemon --stop --signal HUP --quiet --pidfile $PIDFILE --exec $DAEMON ;;
  status) start-stop-daemon --status --pidfile $PIDFILE --exec $DAEMON ;;
  *) echo "usage: $0 start|stop|restart|reload|status" >&2; exit 3 ;;
esac
"""


ROOT_DOTFILES: tuple[dict[str, str], ...] = (
    {"path": "/root/.bashrc", "content": "# socctl lab host: a fresh root home\n"
     "case $- in *i*) ;; *) return ;; esac\nPS1='\\h:\\w\\$ '\n"},
    {"path": "/root/.profile", "content": "# socctl lab host: a fresh root home\n"
     "[ -n \"$BASH\" ] && [ -f ~/.bashrc ] && . ~/.bashrc\n"},
)
"""A lab host's /root overlays the machine's: without these, every ssh session on it
(bash reads ~/.bashrc when sshd starts it, interactive or not) ran the operator's own
start-up files. On a developer machine with pyenv that is ~130 ms of CPU per session,
and Ansible opens one per task and host: most of a provisioning run's time."""


def _hosts_file(plan: LabPlan) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{h.management.ip}\t{h.name}" for h in plan.hosts.values()]
    return "\n".join(lines) + "\n"


def host_spec(plan: LabPlan, host: LabHost, host_dir: Path, public_key: str,
              secret: dict[str, str]) -> dict[str, Any]:
    files: list[dict[str, str]] = [
        {"path": "/etc/ssh/sshd_config.d/00-socctl-lab.conf", "content": _sshd(host)},
        {"path": "/root/.ssh/authorized_keys", "content": public_key + "\n", "mode": "0600"},
        *ROOT_DOTFILES,
        {"path": "/etc/hosts", "content": _hosts_file(plan)},
        {"path": "/etc/hostname", "content": host.name + "\n"},
    ]
    dirs = [{"path": "/run/sshd", "mode": "0755"}, {"path": "/root/.ssh", "mode": "0700"}]
    setup: list[list[str]] = [
        ["sh", "-c", f"test -f {HOST_KEY} || ssh-keygen -q -t ed25519 -N '' -f {HOST_KEY}"],
    ]
    daemons: list[list[str]] = [["/usr/sbin/sshd"]]
    if "rsyslog" in host.services:
        files.append({"path": "/etc/rsyslog.conf", "content": _rsyslog_conf()})
        files.append({"path": "/etc/init.d/rsyslog", "content": RSYSLOG_INIT, "mode": "0755"})
        daemons.append(["/usr/sbin/rsyslogd"])
    if "snmpd" in host.services:
        files.append({"path": "/etc/snmp/snmpd.conf", "content": "\n".join([
            "# socctl lab baseline: SNMPv3 only, on the management address",
            f"agentaddress udp:{host.management.ip}:161",
            f"rouser {secret['snmp_user']} priv",
            f"sysName {host.name}",
            f"sysLocation {host.site}",
            "sysContact noc@vss.internal",
            "",
        ])})
        files.append({"path": "/var/lib/snmp/snmpd.conf", "owner": "Debian-snmp:Debian-snmp",
                      "mode": "0600", "content":
                      f"createUser {secret['snmp_user']} SHA \"{secret['snmp_auth']}\" AES "
                      f"\"{secret['snmp_priv']}\"\n"})
        daemons.append(["/usr/sbin/snmpd", "-LS4d", "-u", "Debian-snmp", "-g", "Debian-snmp",
                        "-I", "-smux,mteTrigger,mteTriggerConf", "-p", "/run/snmpd.pid"])
    if host.is_router:
        files += [
            {"path": "/etc/frr/frr.conf", "content": _frr(plan, host), "owner": "frr:frr",
             "mode": "0640"},
            {"path": "/etc/frr/daemons", "content": _daemons_file(), "owner": "frr:frr",
             "mode": "0640"},
            {"path": "/etc/frr/vtysh.conf", "content": "service integrated-vtysh-config\n",
             "owner": "frr:frrvty", "mode": "0640"},
            {"path": "/run/socctl-netops.pw", "mode": "0600",
             "content": f"{NETOPS_USER}:{secret['netops_password']}\n"},
            {"path": f"/var/lib/{NETOPS_USER}/.ssh/authorized_keys",
             "content": public_key + "\n", "mode": "0600"},
        ]
        setup += [
            ["sh", "-c", f"id {NETOPS_USER} >/dev/null 2>&1 || useradd -M -d "
                         f"/var/lib/{NETOPS_USER} -s /usr/bin/vtysh -G frr,frrvty {NETOPS_USER}"],
            ["chown", "-R", f"{NETOPS_USER}:{NETOPS_USER}", f"/var/lib/{NETOPS_USER}"],
            ["chmod", "700", f"/var/lib/{NETOPS_USER}/.ssh"],
            ["sh", "-c", "chpasswd < /run/socctl-netops.pw && rm -f /run/socctl-netops.pw"],
        ]
        daemons.append(["/usr/lib/frr/frrinit.sh", "start"])
    return {
        "hostname": host.name,
        "host_dir": str(host_dir),
        "overlays": list(OVERLAYS),
        "remove": [f"/etc/ssh/ssh_host_{kind}_key{ext}" for kind in ("rsa", "ecdsa", "ed25519")
                   for ext in ("", ".pub")],
        "files": files,
        "dirs": dirs,
        "setup": setup,
        "daemons": daemons,
    }
