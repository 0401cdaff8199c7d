"""Netmiko's session log with the configuration secrets masked, line by line.

Netmiko hides the login password and enable secret in its session log, nothing else: a
``--session-log`` of a push held every pushed line as the device echoed it (an SNMP
community, a vty password, SNMPv3 keys), and a fetch the device's running config with its
own secrets. This log holds back what follows the last line break of each read, so a
secret split across two reads is masked whole, and masks each complete line as every
other output of socctl does (:mod:`socctl.network.masking`), after the prompt the device
echoes in front of a command. The secrets of the commands a session sends are added to
Netmiko's own replacement too (:meth:`hide`), for an echo the terminal wrapped.
"""

from __future__ import annotations

import os
import re

from netmiko.session_log import SessionLog

from socctl.network.masking import mask_line

_PROMPT = re.compile(r"^[\w.-]+(?:\([\w-]+\))?[#>]\s*")


def mask_session_line(line: str) -> str:
    """``line`` masked after the device prompt echoed in front of a command, if any."""
    prompt = _PROMPT.match(line)
    if prompt is None:
        return mask_line(line)
    return line[:prompt.end()] + mask_line(line[prompt.end():])


class MaskingSessionLog(SessionLog):
    """A session log file, created 0600, that masks what it writes."""

    def __init__(self, file_name: str, no_log: dict[str, str]) -> None:
        super().__init__(file_name=file_name, no_log={k: v for k, v in no_log.items() if v})

    def open(self) -> None:
        assert self.file_name is not None
        fd = os.open(self.file_name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # a log left by an earlier run keeps its mode otherwise
        self.session_log = os.fdopen(fd, "w", encoding=self.file_encoding)
        self._session_log_close = True

    def hide(self, secrets: list[str]) -> None:
        """Words to replace wherever they appear from now on (a pushed line's secrets)."""
        for secret in secrets:
            if secret:
                self.no_log[f"socctl-{len(self.no_log)}"] = secret

    def _flush_buffer(self, final: bool = False) -> None:
        if self.session_log is None:
            return
        data = self._read_buffer()
        if not final:
            cut = data.rfind("\n") + 1
            self.slog_buffer.write(data[cut:])
            data = data[:cut]
        if data:
            text = self.no_log_filter(data)
            self._write("\n".join(mask_session_line(line) for line in text.split("\n")))
