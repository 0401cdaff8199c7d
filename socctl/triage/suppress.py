"""Suppressions live in detections/suppressions/*.yml (owner, reason, expiry), versioned
with the rules. ``socctl alerts suppress`` appends one built from an alert."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pydantic
import yaml

from socctl.detection.loader import load_suppressions
from socctl.detection.model import Suppression
from socctl.errors import Location
from socctl.triage.store import Alert, TriageError

FILE = "suppressions/from-triage.yml"


def add_suppression(rules: Path, alert: Alert, *, owner: str, reason: str,
                    expires: dt.date, today: dt.date) -> tuple[Path, Suppression, bool]:
    """Append a suppression of this alert's rule and entity, or renew the one the file
    has (its owner, reason and expiry replaced; its id and creation date kept): ``(file,
    entry, renewed)``. One entry per rule and entity, so that suppressing again (a
    re-run after the alert could not be closed, a renewal before expiry) never adds a
    second. ``today`` is the agency's date (:func:`socctl.triage.store.day_in`), the one
    ``expires`` is judged against.

    Everything is checked before the file is touched: an entity with no value (a
    PostgreSQL line without ``%h`` names no source) would be a suppression matching
    nothing, and an expiry in the past one that never applies; both were written, and
    a bad reason or owner was an internal error.
    """
    path = rules / FILE
    match = {k: v for k, v in alert.entity.items() if v is not None and v != ""}
    if not match:
        empty = ", ".join(f"{k} is empty" for k in alert.entity) or "its rule names no field"
        raise TriageError(f"alert {alert.id} has no entity value ({empty}): nothing for a "
                          "suppression to match",
                          hint="an exception for every source is a change to the rule")
    if expires < today:
        raise TriageError(f"expiry {expires} is in the past (today is {today})",
                          hint="give the last day the suppression applies")
    data: dict[str, list[dict[str, object]]] = {"suppressions": []}
    if path.exists():
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        data["suppressions"] = list(loaded.get("suppressions") or [])
    same = next((n for n, s in enumerate(data["suppressions"])
                 if isinstance(s, dict) and s.get("rule") == alert.rule_id
                 and s.get("match") == match), None)
    if same is not None:
        old = data["suppressions"][same]
        sid, created = str(old.get("id")), old.get("created") or today
    else:
        slug = re.sub(r"[^a-z0-9]+", "-",
                      f"{alert.rule_title[:30]}-{'-'.join(match.values())}".lower()).strip("-")
        existing = {str(s.get("id")) for s in data["suppressions"]}
        existing |= {s.id for s in load_suppressions(rules)[0]}  # ids are unique across files
        sid, n = slug, 2
        while sid in existing:
            sid, n = f"{slug}-{n}", n + 1
        created = today
    try:
        entry = Suppression(id=sid, rule=alert.rule_id, match=match, owner=owner,
                            reason=reason, expires=expires, created=created)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise TriageError(f"suppression {where}: {first['msg']} (got {first['input']!r})",
                          Location.of(path, field=where)) from None
    dumped = entry.model_dump(mode="json", exclude_none=True)
    if same is not None:
        data["suppressions"][same] = dumped
    else:
        data["suppressions"].append(dumped)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Written by 'socctl alerts suppress'; review and commit with the rules.\n"
                    + yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
                    encoding="utf-8")
    return path, entry, same is not None
