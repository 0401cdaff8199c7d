"""Syslog over UDP (one message per datagram), TCP and TLS (RFC 5425, RFC 6587 framing).

TLS handshakes are done after accept (``start_tls``) so that a failed handshake (garbage
on the TLS port, a plain-text client) is counted per source and the listener goes on.

A TCP/TLS source holds at most ``max_connections`` connections (rsyslog's MaxSessions,
syslog-ng's max-connections): without a cap, a host opening connections and sending
nothing used up the process's file descriptors, and then the spool and the store could
not open theirs. Connections over the cap are closed at accept and counted
(``connections_refused``); the senders already connected go on.
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


class _TlsAccept(asyncio.Protocol):
    """Accepts a TLS connection with reading paused until the handshake starts."""

    def __init__(self, source: StreamSource) -> None:
        self.source = source

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if not self.source.admit():
            transport.abort()
            return
        transport.pause_reading()
        task = asyncio.get_running_loop().create_task(self.source._tls_client(transport))
        self.source.tasks.add(task)
        task.add_done_callback(self.source.tasks.discard)


class StreamSource(Source):
    """A listener whose senders hold connections (TCP, TLS, RELP, RELP over TLS): at most
    ``max_connections`` of them, each read by a task of its own; with ``tls``, each
    connection's handshake is done (and a failed one counted) before :meth:`_serve`
    reads it."""

    kind = "tcp"
    """The protocol's name in messages and in :meth:`describe`."""

    def __init__(self, name: str, intake: Intake, listen: str, max_len: int,
                 tls: ssl.SSLContext | None = None, max_connections: int = 4096) -> None:
        super().__init__(name, intake)
        self.listen = listen
        self.max_len = max_len
        self.tls = tls
        self.max_connections = max_connections
        self.open = 0
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.last_tls_error = ""

    def admit(self) -> bool:
        """At accept: room for one more connection (then it is counted open until its
        reader ends), or it is refused."""
        if self.open >= self.max_connections:
            self.stats.connections_refused += 1
            return False
        self.open += 1
        return True

    async def start(self) -> None:
        host, port = split_listen(self.listen)
        loop = asyncio.get_running_loop()
        try:
            if self.tls is None:
                self.server = await asyncio.start_server(
                    self._plain_client, host, port, reuse_address=True, limit=READ_CHUNK)
            else:
                self.server = await loop.create_server(lambda: _TlsAccept(self), host, port,
                                                       reuse_address=True)
        except OSError as exc:
            raise ConfigError(f"{self.name}: cannot listen on {self.label()} {self.listen}: "
                              f"{exc.strerror}") from exc

    async def _plain_client(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        if not self.admit():
            writer.transport.abort()
            return
        peer = writer.get_extra_info("peername")
        await self._session(reader, writer, peer[0] if peer else "-")

    async def _tls_client(self, transport: asyncio.Transport) -> None:
        """Handshake on a paused transport (no byte of the ClientHello consumed before),
        so a failure is seen here and counted, then read the stream."""
        loop = asyncio.get_running_loop()
        peer = transport.get_extra_info("peername")
        ip = peer[0] if peer else "-"
        reader = asyncio.StreamReader(limit=READ_CHUNK, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        assert self.tls is not None
        try:
            tls = await loop.start_tls(transport, protocol, self.tls, server_side=True,
                                       ssl_handshake_timeout=10)
        except (ssl.SSLError, OSError, TimeoutError, ConnectionError) as exc:
            self.stats.tls_failures += 1
            self.last_tls_error = f"{ip}: {type(exc).__name__}: {exc}"
            transport.close()
            self.open -= 1
            return
        if tls is None:
            transport.close()
            self.open -= 1
            return
        reader.set_transport(tls)
        await self._session(reader, asyncio.StreamWriter(tls, protocol, reader, loop), ip)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       ip: str) -> None:
        """One admitted connection, from its first byte to its close: counted, tracked
        for :meth:`stop`, and its slot given back however it ends."""
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        self.stats.connections += 1
        try:
            await self._serve(reader, writer, ip)
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            self.open -= 1
            writer.close()
            if task is not None:
                self.tasks.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     ip: str) -> None:
        """Read one connection's protocol until it ends."""
        raise NotImplementedError

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    def label(self) -> str:
        """What the listener speaks: ``relp``, ``relp+tls``."""
        return f"{self.kind}+tls" if self.tls is not None else self.kind

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"listen": f"{self.label()} {self.listen}",
                               "open_connections": self.open}
        if self.last_tls_error:
            out["last_tls_error"] = self.last_tls_error
        return out


class TcpSyslog(StreamSource):
    def __init__(self, name: str, intake: Intake, listen: str, framing: str, max_len: int,
                 tls: ssl.SSLContext | None = None, max_connections: int = 4096) -> None:
        super().__init__(name, intake, listen, max_len, tls, max_connections)
        self.framing = framing

    def label(self) -> str:
        return "tcp" if self.tls is None else "tls"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     ip: str) -> None:
        framer = Framer(self.framing, self.max_len)  # type: ignore[arg-type]
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
