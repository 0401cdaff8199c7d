"""Suppressions live in detections/suppressions/*.yml (owner, reason, expiry), versioned
with the rules. ``socctl alerts suppress`` appends one built from an alert."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import yaml

from socctl.detection.model import Suppression
from socctl.triage.store import Alert

FILE = "suppressions/from-triage.yml"


def add_suppression(rules: Path, alert: Alert, *, owner: str, reason: str,
                    expires: dt.date, today: dt.date) -> tuple[Path, Suppression]:
    """Append a suppression of this alert's rule and entity; ``today`` is the agency's
    date (:func:`socctl.triage.store.day_in`), the one ``expires`` is judged against."""
    path = rules / FILE
    data: dict[str, list[dict[str, object]]] = {"suppressions": []}
    if path.exists():
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        data["suppressions"] = list(loaded.get("suppressions") or [])
    match = {k: v for k, v in alert.entity.items() if v is not None}
    slug = re.sub(r"[^a-z0-9]+", "-", f"{alert.rule_title[:30]}-{'-'.join(match.values())}"
                  .lower()).strip("-")
    existing = {str(s.get("id")) for s in data["suppressions"]}
    sid, n = slug, 2
    while sid in existing:
        sid, n = f"{slug}-{n}", n + 1
    entry = Suppression(id=sid, rule=alert.rule_id, match=match, owner=owner, reason=reason,
                        expires=expires, created=today)
    data["suppressions"].append(entry.model_dump(mode="json", exclude_none=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Written by 'socctl alerts suppress'; review and commit with the rules.\n"
                    + yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
                    encoding="utf-8")
    return path, entry
