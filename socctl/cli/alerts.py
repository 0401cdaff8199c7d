"""socctl alerts: list, show and triage grouped alerts; suppressions; statistics."""

from __future__ import annotations

import datetime as dt
import getpass
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from socctl.cli import render
from socctl.cli.detect import rules_dir, store_option, store_path
from socctl.cli.main import AppContext

if TYPE_CHECKING:
    from socctl.triage.store import Alert


def _store(app: AppContext, store: Path | None):  # type: ignore[no-untyped-def]
    from socctl.detection.runner import open_db
    from socctl.triage.store import AlertStore

    return AlertStore(open_db(store_path(app, store)))


def _who(who: str | None) -> str:
    return who or os.environ.get("SOCCTL_USER") or getpass.getuser()


MESSAGE_WIDTH = 200
"""Characters of an event's message in ``alerts show``'s table."""

who_option = click.option("--who", help="Analyst name for the audit trail "
                          "(default: $SOCCTL_USER or the login name).")
note_option = click.option("--note", "-n", help="Note for the audit trail.")


@click.group("alerts")
def group() -> None:
    """Grouped alerts and their triage: new -> acknowledged -> assigned -> closed."""


def _entity(entity: Mapping[str, object]) -> str:
    return " ".join(f"{k}={v}" for k, v in entity.items()) or "-"


def _seconds(value: object) -> str:
    return "-" if value is None else f"{value} s"


def _print_alerts(alerts: Sequence[Alert]) -> None:
    if render.is_json():
        render.emit_json([a.to_dict() for a in alerts])
        return
    rows = []
    for a in alerts:
        d = a.to_dict()
        rows.append([a.id, a.level, a.status, a.rule_title[:60], _entity(a.entity), a.count,
                     d["first_seen"], d["last_seen"], a.assignee or ""])
    render.table(f"{len(alerts)} alert(s)", ["id", "level", "status", "rule", "entity",
                 "count", "first_seen", "last_seen", "assignee"], rows)


@group.command("list")
@click.option("--status", multiple=True,
              type=click.Choice(["new", "acknowledged", "assigned", "closed", "open"]),
              help="Repeatable; 'open' = every status but closed.")
@click.option("--severity", type=click.Choice(["informational", "low", "medium", "high",
                                               "critical"]), help="Minimum level.")
@click.option("--rule", help="Rule id or part of its title.")
@click.option("--since", help="Last seen within this duration (e.g. 24h).")
@click.option("--limit", type=click.IntRange(min=0), default=1000, show_default=True,
              help="At most this many, newest activity first (0: all).")
@store_option
@click.pass_obj
def list_cmd(app: AppContext, status: tuple[str, ...], severity: str | None,
             rule: str | None, since: str | None, limit: int, store: Path | None) -> None:
    """Alerts, newest activity first.

    A list cut at --limit says so on stderr ("showing 1000 of 1005"); -o json stays a
    list of alerts.
    """
    from socctl.cli.options import duration_seconds

    since_ts = time.time() - duration_seconds(since) if since else None
    statuses = [s for s in status if s != "open"]
    if "open" in status:
        statuses += ["new", "acknowledged", "assigned"]
    s = _store(app, store)
    alerts = s.query(status=statuses, min_level=severity, rule=rule, since=since_ts,
                     limit=limit or None)
    total = len(alerts)
    if limit and total == limit:
        total = s.count(status=statuses, min_level=severity, rule=rule, since=since_ts)
    _print_alerts(alerts)
    if total > len(alerts):
        render.err_console.print(f"showing {len(alerts)} of {total} alerts, newest activity "
                                 "first (use --limit N, or --limit 0 for all)",
                                 highlight=False, soft_wrap=True)


@group.command("show")
@click.argument("alert_id", type=int)
@store_option
@click.pass_obj
def show(app: AppContext, alert_id: int, store: Path | None) -> None:
    """One alert with its matching events and audit trail."""
    s = _store(app, store)
    alert, events, history = s.get(alert_id), s.events(alert_id), s.history(alert_id)
    if render.is_json():
        render.emit_json({**alert.to_dict(), "events": events,
                          "history": [h.to_dict() for h in history]})
        return
    d = alert.to_dict()
    render.console.print(render.styled((f"alert {alert.id}", "bold"),
                                       f" {alert.rule_title} [{alert.level}] "
                                       f"status={alert.status} assignee={alert.assignee or '-'} "
                                       f"reason={alert.close_reason or '-'}"), highlight=False)
    render.console.print(f"rule {alert.rule_id}  tags {', '.join(alert.tags)}",
                         highlight=False)
    render.console.print(f"entity {_entity(alert.entity)}  count {alert.count}  "
                         f"{d['first_seen']} .. {d['last_seen']}", highlight=False)
    # a cell, not the record (-o json has it whole): one scanner's 20 KB query strings
    # made 240 KB of table per event when piped, as ``events search`` cuts them
    render.table("events", ["id", "ts", "dataset", "message"],
                 ([e["id"][:12], e["ts"], e["dataset"],
                   render.shorten(e["message"] or "", MESSAGE_WIDTH)] for e in events))
    render.table("history", ["at", "who", "action", "from", "to", "note"],
                 ([h.to_dict()[k] for k in ("at", "who", "action", "from", "to", "note")]
                  for h in history))


def _each(ids: tuple[int, ...], op: Callable[[int], Alert]) -> None:
    """``op`` on every id; one alert's refusal is reported and the rest go on. Any other
    error (the store busy past its timeout, Ctrl-C) stops the batch, but first the
    alerts already changed are printed and the ids left unchanged named: `alerts close 1
    2 3` failing at 3 said nothing of closing 1 and 2."""
    from socctl.triage.store import TriageError

    done: list[Alert] = []
    failed = 0
    for n, alert_id in enumerate(ids):
        try:
            done.append(op(alert_id))
        except TriageError as exc:
            failed += 1
            render.err_console.print(render.styled(("error", "red"), f": {exc}"), highlight=False)
        except BaseException:
            if done or render.is_json():
                _print_alerts(done)
            render.err_console.print(f"not changed: {' '.join(map(str, ids[n:]))}",
                                     highlight=False, soft_wrap=True)
            raise
    if done or render.is_json():
        _print_alerts(done)
    if failed:
        sys.exit(1)


@group.command("ack")
@click.argument("ids", type=int, nargs=-1, required=True)
@who_option
@note_option
@store_option
@click.pass_obj
def ack(app: AppContext, ids: tuple[int, ...], who: str | None, note: str | None,
        store: Path | None) -> None:
    """Acknowledge new alerts."""
    s = _store(app, store)
    _each(ids, lambda i: s.acknowledge(i, _who(who), note))


def _analyst(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not value.strip():
        raise click.BadParameter("must name an analyst (it is empty)")
    return value.strip()


@group.command("assign")
@click.argument("ids", type=int, nargs=-1, required=True)
@click.option("--to", "assignee", required=True, callback=_analyst,
              help="Analyst the alerts go to.")
@who_option
@note_option
@store_option
@click.pass_obj
def assign(app: AppContext, ids: tuple[int, ...], assignee: str, who: str | None,
           note: str | None, store: Path | None) -> None:
    """Assign alerts to an analyst."""
    s = _store(app, store)
    _each(ids, lambda i: s.assign(i, _who(who), assignee, note))


@group.command("close")
@click.argument("ids", type=int, nargs=-1, required=True)
@click.option("--reason", required=True,
              type=click.Choice(["true_positive", "false_positive", "benign", "duplicate"]))
@who_option
@note_option
@store_option
@click.pass_obj
def close(app: AppContext, ids: tuple[int, ...], reason: str, who: str | None,
          note: str | None, store: Path | None) -> None:
    """Close alerts with a reason."""
    s = _store(app, store)
    _each(ids, lambda i: s.close(i, _who(who), reason, note))


@group.command("reopen")
@click.argument("ids", type=int, nargs=-1, required=True)
@who_option
@note_option
@store_option
@click.pass_obj
def reopen(app: AppContext, ids: tuple[int, ...], who: str | None, note: str | None,
           store: Path | None) -> None:
    """Reopen closed alerts."""
    s = _store(app, store)
    _each(ids, lambda i: s.reopen(i, _who(who), note))


def _reason(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if len(value.strip()) < 5:
        raise click.BadParameter(f"{value!r} is too short: at least 5 characters saying why "
                                 "matches like this one are not alerts")
    return value.strip()


@group.command("suppress")
@click.argument("alert_id", type=int)
@click.option("--reason", required=True, callback=_reason,
              help="Why matches like this one are not alerts (5 characters or more).")
@click.option("--expires", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="Last day the suppression applies (YYYY-MM-DD).")
@click.option("--owner", help="Who answers for it (default: --who).")
@click.option("--close/--no-close", "close_it", default=True,
              help="Also close the alert as benign (default: yes).")
@click.option("--rules", "rules", type=click.Path(path_type=Path),
              help="detections/ folder the suppression file is written to.")
@who_option
@store_option
@click.pass_obj
def suppress(app: AppContext, alert_id: int, reason: str, expires: dt.datetime,
             owner: str | None, close_it: bool, rules: Path | None, who: str | None,
             store: Path | None) -> None:
    """Write a suppression for this alert's rule and entity into detections/suppressions/.

    The file is content: review and commit it with the rules, so tuning survives updates.
    """
    from socctl.triage.store import day_in
    from socctl.triage.suppress import add_suppression

    today = day_in(app.settings.timezone)
    if expires.date() < today:
        raise click.BadParameter(f"{expires.date()} is in the past (today is {today}, "
                                 f"{app.settings.timezone})", param_hint="'--expires'")
    s = _store(app, store)
    alert = s.get(alert_id)
    path, entry, renewed = add_suppression(rules_dir(app, rules), alert,
                                           owner=owner or _who(who), reason=reason,
                                           expires=expires.date(), today=today)
    done = f"suppression {entry.id} {'renewed in' if renewed else 'written to'} {path}"
    if close_it and alert.status != "closed":
        try:
            s.close(alert_id, _who(who), "benign", f"suppressed: {entry.id} ({reason})")
        except BaseException:
            # The file and the store cannot change together: say which one did.
            render.err_console.print(f"{done}; alert {alert_id} not closed: the same "
                                     "command again closes it and renews this suppression "
                                     "(no second one is written)", highlight=False,
                                     soft_wrap=True)
            raise
    if render.is_json():
        render.emit_json({"file": str(path), "renewed": renewed,
                          "suppression": entry.model_dump(mode="json")})
    else:
        render.console.print(done, highlight=False)


@group.command("stats")
@store_option
@click.pass_obj
def stats(app: AppContext, store: Path | None) -> None:
    """Open alerts by severity, MTTA, MTTR, false-positive rate per rule, noisiest rules."""
    data = _store(app, store).stats()
    if render.is_json():
        render.emit_json(data)
        return
    render.table("open by severity", ["level", "open"], data["open_by_severity"].items())
    render.console.print(f"total {data['total']}  MTTA {_seconds(data['mtta_seconds'])}  "
                         f"MTTR {_seconds(data['mttr_seconds'])}  suppressed hits "
                         f"{data['suppressed_hits']}", highlight=False)
    render.table("per rule (noisiest first)", ["rule", "alerts", "events", "closed", "FP",
                 "FP rate"], ([r["rule_title"][:60], r["alerts"], r["events"], r["closed"],
                               r["false_positives"], r["false_positive_rate"]]
                              for r in data["per_rule"]))
