"""Syslog over a byte stream (TCP, TLS): RFC 6587 octet counting and newline framing.

``auto`` decides per frame, as rsyslog does: a frame starting with digits and a space is
octet-counted (``LEN SP MSG``, RFC 5425/6587), anything else runs to the next LF.
Over-long frames are not buffered: the first ``max_len`` bytes go to the dead letter with
the reason and the rest is skipped; a frame cut off by the end of the connection is
returned by :meth:`Framer.close` as ``truncated frame``. Pure and synchronous so it can be
fuzzed.
"""

from __future__ import annotations

from typing import Literal

Mode = Literal["auto", "octet", "newline"]
Message = tuple[bytes, str | None]
"""(bytes, None) for a message; (raw bytes, reason) for something to dead-letter."""


class Framer:
    def __init__(self, mode: Mode = "auto", max_len: int = 65536) -> None:
        self.mode = mode
        self.max_len = max_len
        self.buf = bytearray()
        self.skip = 0          # octet-counted bytes still to discard
        self.skip_line = False  # discarding an over-long newline frame up to its LF
        self.errors = 0

    def feed(self, data: bytes) -> list[Message]:
        out: list[Message] = []
        self.buf += data
        buf = self.buf
        pos = 0
        n = len(buf)
        while pos < n:
            if self.skip:
                take = min(self.skip, n - pos)
                self.skip -= take
                pos += take
                continue
            if self.skip_line:
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    pos = n
                    break
                pos = nl + 1
                self.skip_line = False
                continue
            first = buf[pos]
            if self.mode == "octet" or (self.mode == "auto" and 0x30 <= first <= 0x39):
                sp = buf.find(b" ", pos, pos + 11)
                digits = bytes(buf[pos:sp]) if sp > pos else b""
                if sp < 0 and n - pos < 11 and bytes(buf[pos:n]).isdigit():
                    break  # the length is still arriving
                if digits.isdigit():
                    length = int(digits)
                    start = sp + 1
                    if length > self.max_len:
                        have = min(n - start, self.max_len)
                        self.errors += 1
                        out.append((bytes(buf[pos:start + have]),
                                    f"frame too large ({length} bytes, limit {self.max_len})"))
                        consumed = min(n - start, length)
                        self.skip = length - consumed
                        pos = start + consumed
                        continue
                    if n - start < length:
                        break  # wait for the rest
                    out.append((bytes(buf[start:start + length]), None))
                    pos = start + length
                    continue
                if self.mode == "octet":
                    nl = buf.find(b"\n", pos)
                    end = nl if nl >= 0 else n
                    self.errors += 1
                    out.append((bytes(buf[pos:end]), "bad octet-counting frame header"))
                    if nl < 0:
                        self.skip_line = True
                        pos = n
                        break
                    pos = nl + 1
                    continue
            nl = buf.find(b"\n", pos, pos + self.max_len + 1)
            if nl < 0:
                if n - pos > self.max_len:
                    self.errors += 1
                    out.append((bytes(buf[pos:pos + self.max_len]),
                                f"line too long (more than {self.max_len} bytes)"))
                    self.skip_line = True
                    pos += self.max_len
                    continue
                break
            line = bytes(buf[pos:nl]).rstrip(b"\r")
            pos = nl + 1
            if line.strip(b" \t\x00"):
                out.append((line, None))
            elif line:
                self.errors += 1
                out.append((line, "blank or NUL-only frame"))
        del buf[:pos]
        return out

    def close(self) -> list[Message]:
        """What is left when the peer closes: a cut-off frame is a dead letter."""
        rest = bytes(self.buf)
        self.buf.clear()
        if self.skip or not rest.strip():
            return []
        self.errors += 1
        return [(rest[:self.max_len], "truncated frame (connection closed mid-message)")]
