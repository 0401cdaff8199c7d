"""Secrets in device configuration lines, masked wherever socctl shows or records a line.

The lines a compliance rule forbids are the secret ones (an SNMP community, a vty
password), and a diff or a push that removes them names them as ``-`` lines and ``no``
commands: what goes to the console, to ``-o json`` and to the run records must carry the
line's keywords, never its secret. What is sent to the device is the real line; only what
is reported of it is masked. Both IOS and FRR spellings (FRR's CLI follows IOS's).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MASK = "***"

# the part kept, then the secret: the next word (an encryption type digit stays visible)
_SECRET = re.compile(
    r"""^(?P<keep>[-+ ]?\s*(?:no\s+)?(?:
        (?:enable\s+)?(?:secret|password)(?:\s+[0-9])?\s+
      | username\s+\S+(?:\s+privilege\s+\d+)?\s+(?:secret|password)(?:\s+[0-9])?\s+
      | snmp-server\s+community\s+
      | (?:tacacs-server|radius-server)\s+key(?:\s+[0-9])?\s+
      | key-string(?:\s+[0-9])?\s+
      | crypto\s+isakmp\s+key(?:\s+[0-9])?\s+
      | ip\s+ospf\s+authentication-key(?:\s+[0-9])?\s+
      | ip\s+ospf\s+message-digest-key\s+\d+\s+md5(?:\s+[0-9])?\s+
      | neighbor\s+\S+\s+password(?:\s+[0-9])?\s+
    ))(?P<secret>\S+)""", re.VERBOSE)
# SNMPv3 users carry two keys on one line
_SNMP_USER = re.compile(r"^[-+ ]?\s*(?:no\s+)?snmp-server\s+user\s")
_SNMP_KEYS = re.compile(r"(?P<keep>\b(?:auth\s+(?:md5|sha\S*)|priv\s+(?:des|3des|aes(?:\s+\d+)?))"
                        r"\s+)(?P<secret>\S+)")


def mask_line(line: str) -> str:
    """``line`` with its secret (if it holds one) replaced by ``***``; a device's
    complaint about a line (``% Unknown command: no password ...``) too."""
    if line.lstrip().startswith("%") and ": " in line:
        head, _, tail = line.partition(": ")
        return f"{head}: {mask_line(tail)}"
    if _SNMP_USER.match(line):
        return _SNMP_KEYS.sub(lambda m: m["keep"] + MASK, line)
    m = _SECRET.match(line)
    return line if m is None else m["keep"] + MASK + line[m.end():]


def secrets_of(lines: Sequence[str]) -> list[str]:
    """The secret words the lines hold, for text that quotes them out of their lines."""
    found: list[str] = []
    for line in lines:
        if _SNMP_USER.match(line):
            found += [m["secret"] for m in _SNMP_KEYS.finditer(line)]
        elif (m := _SECRET.match(line)) is not None:
            found.append(m["secret"])
    return found


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` with each secret replaced by ``***``: as it is, as a regex escapes it, and
    as ``repr`` shows either.

    Netmiko's read timeout names the pattern it waited for, the command escaped and in
    ``repr`` (``'password\\ Vty\\-S3cret!'``, backslashes doubled), which no line mask
    recognises."""
    forms = {form for secret in secrets if secret
             for plain in (secret, re.escape(secret)) for form in (repr(plain)[1:-1], plain)}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, MASK)
    return text


def mask_text(text: str) -> str:
    """Every line of a config or a unified diff, masked."""
    return "\n".join(mask_line(line) for line in text.split("\n"))


def mask_lines(lines: list[str]) -> list[str]:
    return [mask_line(line) for line in lines]
