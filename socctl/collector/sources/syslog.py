"""Syslog over UDP (one message per datagram), TCP and TLS (RFC 5425, RFC 6587 framing).

TLS handshakes are done after accept (``start_tls``) so that a failed handshake (garbage
on the TLS port, a plain-text client) is counted per source and the listener goes on.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from typing import Any

from socctl.collector.framing import Framer
from socctl.collector.sources.base import Intake, Source
from socctl.errors import ConfigError

READ_CHUNK = 256 * 1024
UDP_RCVBUF = 4 << 20


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def udp_drops(inode: int) -> int | None:
    """The kernel's drop counter of one UDP socket (last column of /proc/net/udp)."""
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table, encoding="ascii") as fh:
                next(fh)
                for line in fh:
                    parts = line.split()
                    if len(parts) >= 13 and parts[9] == str(inode):
                        return int(parts[12])
        except OSError:
            continue
    return None


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, source: UdpSyslog) -> None:
        self.source = source

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.source.on_datagram(data, addr[0])


class UdpSyslog(Source):
    def __init__(self, name: str, intake: Intake, listen: str, max_len: int) -> None:
        super().__init__(name, intake)
        self.listen = listen
        self.max_len = max_len
        self.transport: asyncio.DatagramTransport | None = None
        self.inode = 0
        self.pending: dict[str, list[tuple[bytes, str | None]]] = {}
        self.flush_handle: asyncio.Handle | None = None

    async def start(self) -> None:
        host, port = split_listen(self.listen)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RCVBUF)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"{self.name}: cannot listen on udp {self.listen}: "
                              f"{exc.strerror}") from exc
        self.inode = os.fstat(sock.fileno()).st_ino
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), sock=sock)
        self.transport = transport

    def on_datagram(self, data: bytes, peer: str) -> None:
        self.stats.bytes += len(data)
        text = data.rstrip(b"\r\n\x00")
        item: tuple[bytes, str | None]
        if len(text) > self.max_len:
            item = (text[:self.max_len], f"datagram too long ({len(text)} bytes)")
        else:
            item = (text, None if text.strip() else "empty datagram")
        self.pending.setdefault(peer, []).append(item)
        if sum(len(v) for v in self.pending.values()) >= 1000:
            self.flush()
        elif self.flush_handle is None:
            self.flush_handle = asyncio.get_running_loop().call_later(0.05, self.flush)

    def flush(self) -> None:
        if self.flush_handle is not None:
            self.flush_handle.cancel()
            self.flush_handle = None
        pending, self.pending = self.pending, {}
        for peer, items in pending.items():
            self.intake.submit(items, peer)

    async def stop(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.flush()

    def poll_kernel(self) -> None:
        drops = udp_drops(self.inode) if self.inode else None
        if drops is not None:
            self.stats.udp_drops = drops

    def describe(self) -> dict[str, Any]:
        return {"listen": f"udp {self.listen}"}


class TcpSyslog(Source):
    def __init__(self, name: str, intake: Intake, listen: str, framing: str, max_len: int,
                 tls: ssl.SSLContext | None = None) -> None:
        super().__init__(name, intake)
        self.listen = listen
        self.framing = framing
        self.max_len = max_len
        self.tls = tls
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        host, port = split_listen(self.listen)
        try:
            self.server = await asyncio.start_server(self._client, host, port,
                                                     reuse_address=True, limit=READ_CHUNK)
        except OSError as exc:
            raise ConfigError(f"{self.name}: cannot listen on tcp {self.listen}: "
                              f"{exc.strerror}") from exc

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        peer = writer.get_extra_info("peername")
        ip = peer[0] if peer else "-"
        self.stats.connections += 1
        try:
            if self.tls is not None:
                try:
                    await asyncio.wait_for(writer.start_tls(self.tls), timeout=10)
                except (ssl.SSLError, OSError, TimeoutError, ConnectionError):
                    self.stats.tls_failures += 1
                    return
            mode: Any = self.framing  # auto: RFC 5425 octet counting or LF, per frame
            framer = Framer(mode, self.max_len)
            while True:
                try:
                    data = await reader.read(READ_CHUNK)
                except (ConnectionError, ssl.SSLError, OSError):
                    data = b""
                if not data:
                    tail = framer.close()
                    self.stats.framing_errors += len(tail)
                    self.intake.submit(tail, ip)
                    return
                self.stats.bytes += len(data)
                before = framer.errors
                messages = framer.feed(data)
                self.stats.framing_errors += framer.errors - before
                self.intake.submit(messages, ip)
        finally:
            writer.close()
            if task is not None:
                self.tasks.discard(task)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    def describe(self) -> dict[str, Any]:
        return {"listen": f"{'tls' if self.tls else 'tcp'} {self.listen}"}


def server_tls_context(cert: str, key: str, client_ca: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
        if client_ca:
            ctx.load_verify_locations(client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load TLS certificate/key ({cert}, {key}): {exc}") from exc
    return ctx
