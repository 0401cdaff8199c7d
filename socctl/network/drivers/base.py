"""The driver base class: what differs between platforms, as hooks.

A driver says which template renders a device, what in a running config is noise, how a
line is negated, which blocks may be deleted whole, how to open a CLI session (a Netmiko
connection class) and how to read routing adjacencies. Everything else (render, diff,
push with rollback, backup, compliance) is the same code for every platform.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from socctl.errors import DeviceError, Location
from socctl.inventory.model import Device, Interface
from socctl.network import configtree
from socctl.network.credentials import Credentials
from socctl.network.masking import mask_line, mask_text, scrub, secrets_of


@dataclass(frozen=True, slots=True)
class Target:
    """Where to reach a device: its name (for messages) and management address."""

    name: str
    host: str
    port: int = 22

    @property
    def location(self) -> Location:
        return Location(f"{self.name} ({self.host}:{self.port})")


class Session:
    """One open CLI session to a device, through a Netmiko connection.

    Only this class talks to Netmiko; every method turns Netmiko's exceptions into a
    :class:`DeviceError` naming the host and the cause.
    """

    def __init__(self, driver: Driver, target: Target, connection: Any) -> None:
        self.driver = driver
        self.target = target
        self.conn = connection

    def show(self, command: str, timeout: float = 30.0) -> str:
        try:
            return str(self.conn.send_command(command, read_timeout=timeout))
        except Exception as exc:
            raise DeviceError(f"{command!r} failed: {_cause(exc)}",
                              self.target.location) from exc

    def running(self) -> str:
        return self.show(self.driver.running_command)

    def configure(self, commands: Sequence[str], timeout: float = 60.0) -> str:
        """Send config-mode commands; any error line in the echo fails the whole set."""
        if not commands:
            return ""
        hide = getattr(getattr(self.conn, "session_log", None), "hide", None)
        if hide is not None:  # a MaskingSessionLog: the commands' secrets, wherever echoed
            hide(secrets_of(commands))
        try:
            # cmd_verify: each command's echo and the prompt after it are read before the
            # next is sent, as Netmiko does by default, not 2 s of silence awaited once
            output = str(self.conn.send_config_set(list(commands), read_timeout=timeout,
                                                   cmd_verify=True))
        except Exception as exc:
            cause = scrub(_cause(exc), secrets_of(commands))
            raise DeviceError(f"configuration failed: {mask_text(cause)}",
                              self.target.location) from exc
        errors = self._complaints(output)
        if errors:
            raise DeviceError(f"device refused configuration: {'; '.join(errors[:3])}",
                              self.target.location)
        return output

    def _complaints(self, output: str, saving: bool = False) -> list[str]:
        """The device's error lines in ``output``, masked (it echoes the line it refuses,
        secret and all); when ``saving``, also ``[FAILED]`` and a ``%`` line that says
        it failed (FRR's "% Configuration write failed.")."""
        return [mask_line(line.strip()) for line in output.splitlines()
                if any(p.search(line) for p in self.driver.error_patterns)
                or (saving and ("[FAILED]" in line
                               or (line.lstrip().startswith("%") and "fail" in line.lower())))]

    def save(self) -> str:
        """Running -> startup; the device's own complaint (a ``%`` line, ``[FAILED]``) is
        a failure too, not only a broken session."""
        try:
            output = str(self.conn.save_config())
        except Exception as exc:
            raise DeviceError(f"saving the configuration failed: {_cause(exc)}",
                              self.target.location) from exc
        errors = self._complaints(output, saving=True)
        if errors:
            raise DeviceError(f"saving the configuration failed: {'; '.join(errors[:3])}",
                              self.target.location)
        return output

    def adjacencies(self) -> dict[str, str]:
        """Routing neighbours as ``{interface/neighbour: state}`` (empty if no routing)."""
        if not self.driver.adjacency_command:
            return {}
        return self.driver.parse_adjacencies(self.show(self.driver.adjacency_command))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.disconnect()


def _cause(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


@functools.cache
def _noise(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One compiled alternation of a driver's noise patterns."""
    return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None


class Driver:
    """Base of every platform driver. Subclasses set the class attributes and hooks."""

    name: ClassVar[str]
    description: ClassVar[str]
    template: ClassVar[str] = "device.j2"
    running_command: ClassVar[str] = "show running-config"
    ignore: ClassVar[tuple[str, ...]] = ()
    """Regexes of running-config lines that are noise (banners of the show command,
    timestamps, uptime, counters)."""
    sortable_blocks: ClassVar[tuple[str, ...]] = ("interface ",)
    deletable_blocks: ClassVar[tuple[str, ...]] = ()
    keep_on_remove: ClassVar[tuple[str, ...]] = ("hostname ",)
    """Lines never negated: a new value replaces them (``no hostname`` would leave none)."""
    negations: ClassVar[tuple[tuple[str, str], ...]] = ()
    """(regex, replacement) for lines whose ``no`` form drops the arguments."""
    error_patterns: ClassVar[tuple[re.Pattern[str], ...]] = (
        re.compile(r"^\s*% ?(Unknown|Invalid|Incomplete|Ambiguous|Configuration failed|"
                   r"Error|.*[Ee]rror)"),
        re.compile(r"^\s*Unknown command"),
    )
    adjacency_command: ClassVar[str | None] = None
    settle_seconds: ClassVar[float] = 5.0
    """How long after a change before adjacencies are judged: a routing protocol notices a
    broken neighbour only after its dead interval."""

    def interface_name(self, device: Device, interface: Interface, index: int) -> str:
        """The name of an inventory interface on the device (logical names by default)."""
        return interface.name

    def lan_interface(self, has_lan: bool) -> str | None:
        return None

    # -- configuration text -------------------------------------------------------------
    def tree(self, text: str) -> configtree.Node:
        tree = configtree.parse(text, _noise(self.ignore))
        return configtree.canonical(tree, lambda line: line.startswith(self.sortable_blocks))

    def normalise(self, text: str) -> str:
        """The config as socctl compares and stores it: noise dropped, blocks ordered."""
        return configtree.render(self.tree(text))

    def negate(self, line: str) -> str | None:
        if line.startswith(self.keep_on_remove):
            return None
        for pattern, replacement in self.negations:
            if re.match(pattern, line):
                return re.sub(pattern, replacement, line)
        return line[3:] if line.startswith("no ") else f"no {line}"

    def commands(self, running: str, intended: str) -> list[str]:
        """Only the lines needed to turn ``running`` into ``intended``."""
        plan = configtree.changes(self.tree(running), self.tree(intended))
        return configtree.commands(
            plan, self.negate, lambda path: path[-1].startswith(self.deletable_blocks))

    # -- sessions -----------------------------------------------------------------------
    def connection_class(self) -> type[Any]:
        raise NotImplementedError

    def connect(self, target: Target, credentials: Credentials, timeout: float = 20.0,
                session_log: str | None = None) -> Session:
        """Open a session; unreachable, refused, wrong credentials and timeouts become a
        :class:`DeviceError` naming the host and the cause."""
        from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException

        params: dict[str, Any] = {
            "host": target.host, "port": target.port, "username": credentials.username,
            "password": credentials.password, "secret": credentials.secret or "",
            "conn_timeout": timeout, "auth_timeout": timeout, "banner_timeout": timeout,
            "timeout": timeout, "fast_cli": True, "use_keys": False,
            "allow_agent": False, "ssh_config_file": None,
        }
        if session_log:
            # Netmiko's own log masks only the password and secret (no_log): this one the
            # configuration's secrets too
            from socctl.network.session_log import MaskingSessionLog

            params["session_log"] = MaskingSessionLog(session_log, {
                "password": credentials.password, "secret": credentials.secret or ""})
        try:
            conn = self.connection_class()(**params)
            if not conn.check_enable_mode():
                conn.enable()
        except NetmikoAuthenticationException as exc:
            raise DeviceError(f"authentication failed for user {credentials.username!r}",
                              target.location, hint="check the credentials source") from exc
        except NetmikoTimeoutException as exc:
            raise DeviceError(f"unreachable: {_cause(exc)}", target.location) from exc
        except (TimeoutError, OSError, EOFError) as exc:
            raise DeviceError(f"connection failed: {_cause(exc)}", target.location) from exc
        except Exception as exc:
            raise DeviceError(f"session failed: {_cause(exc)}", target.location) from exc
        return Session(self, target, conn)

    def parse_adjacencies(self, output: str) -> dict[str, str]:
        return {}
