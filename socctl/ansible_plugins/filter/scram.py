"""Ansible filter ``scram_sha256_matches``: whether a PostgreSQL ``rolpassword`` (read
from pg_authid) is the SCRAM-SHA-256 verifier of a password, so a role sets a rotated
password and reports ``changed`` only when it really differs.

Loaded by ansible.cfg (``filter_plugins``). The verifier is
``SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>`` (RFC 5802,
RFC 7677): SaltedPassword = PBKDF2-HMAC-SHA256(password, salt, iterations), ClientKey =
HMAC(SaltedPassword, "Client Key"), StoredKey = SHA256(ClientKey), ServerKey =
HMAC(SaltedPassword, "Server Key"). PostgreSQL prepares the password with SASLprep; the
passwords this is used for are compared as their UTF-8 bytes, which SASLprep leaves
unchanged for ASCII (a non-ASCII password that SASLprep would change is reported as not
matching: it is set again, which is safe).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable
from typing import Any


def scram_sha256_matches(verifier: str | None, password: str) -> bool:
    """True when ``verifier`` is the SCRAM-SHA-256 verifier of ``password``; False for
    any other verifier (none, md5, malformed)."""
    if not verifier or not verifier.startswith("SCRAM-SHA-256$"):
        return False
    try:
        params, keys = verifier[len("SCRAM-SHA-256$"):].split("$", 1)
        iterations_text, salt_b64 = params.split(":", 1)
        stored_b64, server_b64 = keys.split(":", 1)
        iterations = int(iterations_text)
        salt = base64.b64decode(salt_b64, validate=True)
        stored_key = base64.b64decode(stored_b64, validate=True)
        server_key = base64.b64decode(server_b64, validate=True)
    except (ValueError, binascii.Error):
        return False
    if iterations < 1:
        return False
    salted = hashlib.pbkdf2_hmac("sha256", str(password).encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return (hmac.compare_digest(hashlib.sha256(client_key).digest(), stored_key)
            and hmac.compare_digest(server, server_key))


class FilterModule:
    """The filters this file gives Ansible."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"scram_sha256_matches": scram_sha256_matches}
