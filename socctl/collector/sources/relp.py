"""Syslog over RELP (rsyslog's Reliable Event Logging Protocol, omrelp -> imrelp).

Plain TCP syslog has no acknowledgement: when a connection breaks (a WAN link of an
office fails over, the collector restarts), the sender cannot tell which messages of its
last writes arrived, so it loses them or sends some twice. RELP acknowledges every
message; rsyslog keeps what is not acknowledged and sends it again on the next session.
This source answers a message only once it is in the durable spool (or the dead letter),
so an acknowledged message survives a kill -9 of the collector, and one not acknowledged
is sent again. A message that arrived, was spooled, and whose acknowledgement was lost
comes back on the next session with the same content and gets the id it had (content +
occurrence within the session), so the store keeps one copy.

Frame: ``TXNR SP COMMAND SP DATALEN [SP DATA] LF``. Commands: ``open`` (offers; answered
with ours: ``relp_version=0``, ``commands=syslog``), ``syslog``, ``close``. Anything else
on the connection (a plain-syslog client on this port, garbage, a frame over the
source's ``max_line``) is a framing error: the bytes go to the dead letter and the
connection is closed with ``serverclose``. Lines over ``max_line`` inside a well-formed
frame are dead-lettered and acknowledged (they are not lost; a re-send would not mend
them).

RELP over TLS (omrelp ``tls="on"``) is the same protocol inside a TLS session, handshaken
after accept as the TLS syslog source does (:class:`StreamSource`).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass, field
from typing import Any

from socctl.collector.sources.base import Intake
from socctl.collector.sources.syslog import READ_CHUNK, StreamSource

SOFTWARE = b"socctl"
OFFER = b"relp_version=0\nrelp_software=" + SOFTWARE + b"\ncommands=syslog"
SERVERCLOSE = b"0 serverclose 0\n"
HEADER = re.compile(rb"(\d{1,9}) ([a-z]{1,32}) (\d{1,9})([ \n])")
PARTIAL = re.compile(rb"\d{0,9}|\d{1,9} [a-z]{0,32}|\d{1,9} [a-z]{1,32} \d{0,9}")
"""What a header cut off by the end of a read looks like: more bytes may complete it."""
MAX_HEADER = 9 + 1 + 32 + 1 + 9 + 1


class RelpError(Exception):
    """The peer does not speak RELP (or breaks it): the session ends."""


@dataclass
class Fed:
    """What one read gave: messages, the answers to send at once (open), the answers due
    once the messages are spooled (syslog, close), and the error that ends the session
    after them (the frames before it are served)."""

    messages: list[tuple[bytes, str | None]] = field(default_factory=list)
    now: list[bytes] = field(default_factory=list)
    acks: list[bytes] = field(default_factory=list)
    error: str | None = None


class RelpSession:
    """One connection's protocol state: bytes in -> :class:`Fed`."""

    def __init__(self, max_len: int) -> None:
        self.max_len = max_len
        self.buffer = bytearray()
        self.opened = False
        self.closing = False

    def feed(self, data: bytes) -> Fed:
        self.buffer += data
        fed = Fed()
        try:
            while not self.closing and (frame := self._frame()) is not None:
                self._serve(fed, *frame)
        except RelpError as exc:
            fed.error = str(exc)
        return fed

    def _serve(self, fed: Fed, txnr: int, command: bytes, payload: bytes) -> None:
        if command == b"open":
            offers = dict(line.partition(b"=")[::2] for line in payload.split(b"\n"))
            if b"syslog" not in offers.get(b"commands", b"").split(b","):
                raise RelpError("the client does not offer the syslog command")
            self.opened = True
            fed.now.append(rsp(txnr, b"200 OK\n" + OFFER))
        elif not self.opened:
            raise RelpError(f"{command.decode()!r} before open")
        elif command == b"syslog":
            text = payload.rstrip(b"\r\n\x00")
            if len(text) > self.max_len:
                fed.messages.append((text[:self.max_len],
                                     f"message too long ({len(text)} bytes)"))
            else:
                fed.messages.append((text, None if text.strip() else "empty message"))
            fed.acks.append(rsp(txnr, b"200 OK"))
        elif command == b"close":
            fed.acks.append(rsp(txnr, b""))
            self.closing = True
        else:
            raise RelpError(f"unknown command {command.decode()!r}")

    def _frame(self) -> tuple[int, bytes, bytes] | None:
        """The next whole frame, taken off the buffer, or None until more bytes come."""
        buf = self.buffer
        m = HEADER.match(buf)
        if m is None:
            if len(buf) < MAX_HEADER and PARTIAL.fullmatch(buf):
                return None
            raise RelpError("not a RELP frame")
        txnr, command, datalen = int(m[1]), m[2], int(m[3])
        if datalen > self.max_len + 1024:
            raise RelpError(f"frame of {datalen} bytes (limit {self.max_len})")
        if datalen == 0:
            if m[4] != b"\n":
                raise RelpError("no trailer after an empty frame")
            del buf[:m.end()]
            return txnr, command, b""
        if m[4] != b" ":
            raise RelpError("no space before the data")
        end = m.end() + datalen
        if len(buf) <= end:
            return None
        if buf[end] != 0x0A:
            raise RelpError("no trailer after the data")
        payload = bytes(buf[m.end():end])
        del buf[:end + 1]
        return txnr, command, payload


def rsp(txnr: int, data: bytes) -> bytes:
    """A ``rsp`` frame answering transaction ``txnr``."""
    if not data:
        return b"%d rsp 0\n" % txnr
    return b"%d rsp %d %s\n" % (txnr, len(data), data)


class RelpSyslog(StreamSource):
    kind = "relp"

    def __init__(self, name: str, intake: Intake, listen: str, max_len: int,
                 tls: ssl.SSLContext | None = None, max_connections: int = 4096) -> None:
        super().__init__(name, intake, listen, max_len, tls, max_connections)
        self.last_protocol_error = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     ip: str) -> None:
        session = RelpSession(self.max_len)
        # Occurrences count per session, the id names the sender's address only: a message
        # sent again on the next session (its acknowledgement was lost) is the first of its
        # kind there too, so it gets the id it had, whether or not the collector restarted
        # in between. (rsyslog's RELP messages carry microsecond times: two genuinely
        # equal messages in two sessions do not happen.)
        occ = self.intake.counter(ip)
        while not session.closing:
            try:
                data = await reader.read(READ_CHUNK)
            except (ConnectionError, ssl.SSLError, OSError):
                data = b""
            if not data:
                if session.buffer:  # a frame cut off: never acknowledged, so re-sent
                    self.stats.framing_errors += 1
                return
            self.stats.bytes += len(data)
            fed = session.feed(data)
            if fed.now:
                writer.write(b"".join(fed.now))
            # spooled before they are acknowledged
            self.intake.submit(fed.messages, ip, occurrences=occ)
            if fed.acks:
                writer.write(b"".join(fed.acks))
            if fed.error is not None:
                self.stats.framing_errors += 1
                self.last_protocol_error = f"{ip}: {fed.error}"
                self.intake.submit([(bytes(session.buffer[:self.max_len]),
                                     f"RELP: {fed.error}")], ip, occurrences=occ)
                writer.write(SERVERCLOSE)
                await writer.drain()
                return
            await writer.drain()

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        if self.last_protocol_error:
            out["last_protocol_error"] = self.last_protocol_error
        return out
