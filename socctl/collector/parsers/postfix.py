"""Postfix mail logs (``postfix/smtpd``, ``cleanup``, ``qmgr``, ``smtp`` ...).

ECS: category [email]; email.from.address / email.to.address (lists), email.subject
(from ``header_checks`` WARN/INFO/REJECT lines, which Postfix logs with the subject),
email.local_id (the queue id), source.ip of the sending client. Rejections (smtpd's and
postscreen's) and failed SASL logins are outcome failure; a ``reject_warning`` (warn_if_reject:
the mail was accepted) is action reject_warning, with no outcome.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from socctl.collector.ecs import Event

RE_QID = re.compile(r"([0-9A-F]{6,12}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,16}): ")
RE_CONNECT = re.compile(r"(?P<what>connect|disconnect) from (?P<name>[^\[\s]*)\[(?P<ip>[^\]]+)\]")
# smtpd: "RCPT from name[ip]: reason; from=<a> to=<b> ..."; postscreen (Postfix's DNSBL
# gate): "RCPT from [ip]:port: reason; from=<a>, to=<b>, ..."
RE_REJECT = re.compile(r"(?:NOQUEUE: )?(?P<verdict>reject_warning|reject|discard|hold): "
                       r"(?P<stage>\S+) from [^\[\s]*\[(?P<ip>[^\]]+)\](?::\d+)?: "
                       r"(?P<reason>.*?); from=<(?P<from>[^>]*)>,? to=<(?P<to>[^>]*)>")
RE_HEADER = re.compile(r"(?P<verdict>warning|reject|info|hold|discard|filter|redirect): header "
                       r"Subject: (?P<subject>.*?) from [^\[\s]*\[(?P<ip>[^\]]+)\]; "
                       r"from=<(?P<from>[^>]*)> to=<(?P<to>[^>]*)>")
RE_SASL = re.compile(r"warning: [^\[\s]*\[(?P<ip>[^\]]+)\]: SASL (?P<mech>\S+) authentication "
                     r"failed:(?:.*?sasl_username=(?P<user>\S+))?")
RE_CLIENT = re.compile(r"client=[^\[\s]*\[(?P<ip>[^\]]+)\](?:, sasl_method=[^,\s]+)?"
                       r"(?:, sasl_username=(?P<user>\S+))?")
RE_FROM = re.compile(r"from=<(?P<from>[^>]*)>, size=(?P<size>\d+)")
RE_TO = re.compile(r"to=<(?P<to>[^>]*)>,.*?status=(?P<status>\w+)")
RE_MSGID = re.compile(r"message-id=<?(?P<mid>[^>\s]*)>?")


def parse(body: str, ev: Event, opts: Mapping[str, Any]) -> float | None:
    e = ev["event"]
    e["category"] = ["email"]
    e["type"] = ["info"]
    email: dict[str, Any] = {}
    m = RE_QID.match(body)
    text = body
    if m is not None:
        email["local_id"] = m.group(1)
        text = body[m.end():]
    if (r := RE_HEADER.match(text)) is not None:
        e.update(action="header_" + r.group("verdict"),
                 outcome="failure" if r.group("verdict") in ("reject", "discard") else "success")
        email["subject"] = r.group("subject")
        ev["source"] = {"ip": r.group("ip")}
        _addresses(email, r.group("from"), r.group("to"))
    elif (r := RE_REJECT.match(text)) is not None:
        if r.group("verdict") == "reject_warning":  # warn_if_reject: logged, then accepted
            e.update(action="reject_warning", reason=r.group("reason"))
        else:
            e.update(action=r.group("verdict"), type=["denied"], outcome="failure",
                     reason=r.group("reason"))
        ev["source"] = {"ip": r.group("ip")}
        _addresses(email, r.group("from"), r.group("to"))
    elif (r := RE_SASL.match(text)) is not None:
        e.update(action="sasl_login", category=["authentication", "email"], outcome="failure")
        ev["source"] = {"ip": r.group("ip")}
        if r.group("user"):
            ev["user"] = {"name": r.group("user")}
    elif (r := RE_CONNECT.match(text)) is not None:
        e.update(action=r.group("what"), category=["email", "network"],
                 type=["connection", "start" if r.group("what") == "connect" else "end"])
        ev["source"] = {"ip": r.group("ip")}
        if r.group("name") and r.group("name") != "unknown":
            ev["source"]["domain"] = r.group("name")
    elif (r := RE_CLIENT.match(text)) is not None:
        e["action"] = "client"
        ev["source"] = {"ip": r.group("ip")}
        if r.group("user"):
            ev["user"] = {"name": r.group("user")}
    elif (r := RE_FROM.match(text)) is not None:
        e["action"] = "queued"
        _addresses(email, r.group("from"), None)
    elif (r := RE_TO.match(text)) is not None:
        status = r.group("status")
        e.update(action="delivery_" + status,
                 outcome="success" if status == "sent" else "failure")
        _addresses(email, None, r.group("to"))
    elif (r := RE_MSGID.match(text)) is not None:
        e["action"] = "message_id"
        email["message_id"] = r.group("mid")
    if email:
        ev["email"] = email
    return None


def _addresses(email: dict[str, Any], sender: str | None, recipient: str | None) -> None:
    if sender:
        email["from"] = {"address": [sender]}
    if recipient:
        email["to"] = {"address": [recipient]}
