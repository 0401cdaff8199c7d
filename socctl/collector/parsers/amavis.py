"""amavisd-new, the content filter between Postfix and ClamAV/SpamAssassin.

Its main log line (default ``log_templ``)::

    (12345-01) Blocked SPAM {DiscardedInbound,Quarantined}, [203.0.113.5]:41234
    [203.0.113.5] <a@b.example> -> <c@d.example>, quarantine: ..., Queue-ID: 4F2A81C0123,
    Message-ID: <1@b.example>, mail_id: ..., Hits: 12.31, size: 4567, 312 ms

ECS: category [email]; action ``<verdict>_<content>`` lower-cased (``blocked_spam``,
``passed_clean``, ``passed_spammy``, ``blocked_infected`` ...), outcome failure for
Blocked (the message was not delivered), success for Passed; source.ip the SMTP client
amavis names first (Postfix hands it over with XFORWARD), email.from/to, email.local_id
(Postfix's queue id), email.message_id; rule.name the virus name of an INFECTED verdict.
Other amavis lines (start-up, SpamAssassin rule loading) keep only their message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from socctl.collector.ecs import Event

RE_VERDICT = re.compile(
    r"(?:\([0-9-]+\) )?(?P<verdict>Passed|Blocked|Not-Delivered) (?P<content>[A-Z][A-Z-]*)"
    r"(?: \((?P<detail>[^)]*)\))?(?: \{[^}]*\})?, (?:LOCAL |MYNETS )?"
    r"\[(?P<ip>[0-9A-Fa-f:.]+)\](?::\d+)?(?: \[[0-9A-Fa-f:.]+\])* "
    r"<(?P<from>[^>]*)> -> (?P<to><[^>]*>(?:,<[^>]*>)*)")
RE_QUEUE_ID = re.compile(r"Queue-ID: (?P<qid>[0-9A-Za-z]+)")
RE_MESSAGE_ID = re.compile(r"Message-ID: <(?P<mid>[^>]*)>")


def parse(body: str, ev: Event, opts: Mapping[str, Any]) -> float | None:
    e = ev["event"]
    e["category"] = ["email"]
    e["type"] = ["info"]
    m = RE_VERDICT.search(body)
    if m is None:
        return None
    verdict, content = m.group("verdict"), m.group("content")
    e.update(action=f"{verdict}_{content}".lower().replace("-", "_"),
             outcome="success" if verdict == "Passed" else "failure")
    if verdict != "Passed":
        e["type"] = ["denied"]
    if content == "INFECTED" and m.group("detail"):
        e["category"] = ["email", "malware"]
        ev["rule"] = {"name": m.group("detail").split(",")[0].strip()}
    ev["source"] = {"ip": m.group("ip")}
    email: dict[str, Any] = {"to": {"address": re.findall(r"<([^>]*)>", m.group("to"))}}
    if m.group("from"):
        email["from"] = {"address": [m.group("from")]}
    rest = body[m.end():]
    if (q := RE_QUEUE_ID.search(rest)) is not None:
        email["local_id"] = q.group("qid")
    if (mid := RE_MESSAGE_ID.search(rest)) is not None:
        email["message_id"] = mid.group("mid")
    ev["email"] = email
    return None
