"""Drill reports: JSON (the record), Markdown and an HTML page with a timeline chart.

Kept under ``<state>/drills/<drill id>/``; ``history`` reads the JSON records back.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from socctl.config import Settings
from socctl.drill.runner import DrillResult


def drills_dir(settings: Settings) -> Path:
    return settings.state_dir / "drills"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def follow_ups(result: DrillResult) -> list[str]:
    actions = []
    for name, v in result.verdicts().items():
        if not v["pass"]:
            actions.append(f"{name}: target {v['target']}, measured {v['actual']}: find the "
                           "cause and re-run the drill")
    if result.stopped_at:
        step = next(s for s in result.steps if s.id == result.stopped_at)
        actions.append(f"Fix step '{step.id}' (owner: {step.owner}): {step.detail}; check "
                       "which node is primary before re-running")
    return actions


def to_record(result: DrillResult) -> dict[str, Any]:
    plan = result.plan
    return {
        "drill_id": result.drill_id, "plan": plan.id, "title": plan.title,
        "type": "lab" if result.lab else "live", "scenario": plan.scenario, "systems": plan.systems,
        "plan_file": plan.path, "started": _iso(result.started),
        "finished": _iso(result.finished), "ok": result.ok,
        "stopped_at": result.stopped_at, "targets": plan.targets.model_dump(),
        "measures": result.measures, "verdicts": result.verdicts(),
        "steps": [s.to_dict() for s in result.steps],
        "events": [{"at": _iso(t), "t": round(t - result.started, 3), "event": e}
                   for t, e in result.events],
        "observations": result.observations, "follow_up_actions": follow_ups(result),
        "sign_off": {"drill_lead": "", "dba": "", "security_officer": "", "date": ""},
    }


def markdown(rec: dict[str, Any]) -> str:
    lines = [f"# DR drill {rec['drill_id']}", "",
             f"- Plan: {rec['plan']} ({rec['title']})", f"- Scenario: {rec['scenario']}",
             f"- Systems: {', '.join(rec['systems'])}",
             f"- Started: {rec['started']}  Finished: {rec['finished']}",
             f"- Result: **{'PASS' if rec['ok'] else 'FAIL'}**"
             + (f" (stopped at step `{rec['stopped_at']}`)" if rec["stopped_at"] else ""),
             "", "## Targets and actuals", "", "| measure | target | actual | result |",
             "|---|---|---|---|"]
    for name, v in rec["verdicts"].items():
        lines.append(f"| {name} | {v['target']} | {v['actual']} | "
                     f"{'pass' if v['pass'] else 'FAIL'} |")
    lines += ["", "## Step log", "", "| # | step | owner | status | seconds | detail |",
              "|---|---|---|---|---|---|"]
    for i, s in enumerate(rec["steps"], 1):
        lines.append(f"| {i} | {s['id']} ({s['section']}) | {s['owner']} | {s['status']} | "
                     f"{s['seconds']} | {s['detail'].replace('|', '/')} |")
    lines += ["", "## Observations", ""] + [f"- {o}" for o in rec["observations"] or ["none"]]
    lines += ["", "## Follow-up actions", ""] + [f"- {a}" for a in
                                                 rec["follow_up_actions"] or ["none"]]
    lines += ["", "## Sign-off", "", "| role | name | signature | date |", "|---|---|---|---|",
              "| Drill lead | | | |", "| DBA | | | |", "| Security officer | | | |", ""]
    return "\n".join(lines)


def svg_timeline(rec: dict[str, Any], width: int = 900) -> str:
    steps = [s for s in rec["steps"] if s["started"]]
    if not steps:
        return "<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'></svg>"
    t0 = min(s["started"] for s in steps)
    t1 = max(s["finished"] or s["started"] for s in steps)
    span = max(t1 - t0, 0.001)
    left, row = 170, 22
    height = row * len(steps) + 40
    scale = (width - left - 20) / span
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             "font-family='sans-serif' font-size='12' role='img' aria-label='drill timeline'>"]
    for i, s in enumerate(steps):
        y = 10 + i * row
        x = left + (s["started"] - t0) * scale
        w = max(2.0, ((s["finished"] or s["started"]) - s["started"]) * scale)
        colour = {"ok": "#2e7d32", "failed": "#c62828"}.get(s["status"], "#9e9e9e")
        parts.append(f"<text x='5' y='{y + 14}'>{html.escape(s['id'])}</text>")
        parts.append(f"<rect x='{x:.1f}' y='{y + 3}' width='{w:.1f}' height='14' "
                     f"fill='{colour}'><title>{html.escape(s['id'])}: {s['seconds']} s, "
                     f"{s['status']}</title></rect>")
    for e in rec["events"]:
        if "loss" in e["event"] or "first write" in e["event"]:
            ts = datetime.fromisoformat(e["at"]).timestamp()
            x = left + (ts - t0) * scale
            parts.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='5' y2='{height - 25}' "
                         "stroke='#1565c0' stroke-dasharray='3,3'><title>"
                         f"{html.escape(e['event'])}</title></line>")
    parts.append(f"<text x='{left}' y='{height - 8}'>0 s</text>")
    parts.append(f"<text x='{width - 80}' y='{height - 8}'>{span:.1f} s</text></svg>")
    return "".join(parts)


def html_page(rec: dict[str, Any]) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(n)}</td><td>{v['target']}</td><td>{v['actual']}</td>"
        f"<td class='{'pass' if v['pass'] else 'fail'}'>{'pass' if v['pass'] else 'FAIL'}"
        "</td></tr>" for n, v in rec["verdicts"].items())
    steps = "".join(
        f"<tr><td>{esc(s['id'])}</td><td>{esc(s['owner'])}</td><td>{esc(s['command'])}</td>"
        f"<td>{esc(s['check'])}</td><td class='{s['status']}'>{s['status']}</td>"
        f"<td>{s['seconds']}</td><td>{esc(s['detail'])}</td></tr>" for s in rec["steps"])
    lis = "".join(f"<li>{esc(x)}</li>" for x in rec["observations"]) or "<li>none</li>"
    fol = "".join(f"<li>{esc(x)}</li>" for x in rec["follow_up_actions"]) or "<li>none</li>"
    return f"""<!doctype html><html><head><meta charset='utf-8'>
<title>DR drill {esc(rec['drill_id'])}</title><style>
body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px}} .pass,.ok{{color:#2e7d32}}
.fail,.failed{{color:#c62828;font-weight:bold}}</style></head><body>
<h1>DR drill {esc(rec['drill_id'])}</h1>
<p>Plan <b>{esc(rec['plan'])}</b>: {esc(rec['title'])}<br>Type: {esc(rec['type'])};
scenario: {esc(rec['scenario'])}; systems: {esc(', '.join(rec['systems']))}<br>
{esc(rec['started'])} to {esc(rec['finished'])}; result:
<b class='{'pass' if rec['ok'] else 'fail'}'>{'PASS' if rec['ok'] else 'FAIL'}</b>
{('stopped at step <b>' + esc(rec['stopped_at']) + '</b>') if rec['stopped_at'] else ''}</p>
<h2>Targets and actuals</h2><table><tr><th>measure</th><th>target</th><th>actual</th>
<th>result</th></tr>{rows}</table>
<h2>Timeline</h2>{svg_timeline(rec)}
<h2>Step log</h2><table><tr><th>step</th><th>owner</th><th>command</th><th>check</th>
<th>status</th><th>s</th><th>detail</th></tr>{steps}</table>
<h2>Observations</h2><ul>{lis}</ul><h2>Follow-up actions</h2><ul>{fol}</ul>
<h2>Sign-off</h2><table><tr><th>role</th><th>name</th><th>signature</th><th>date</th></tr>
<tr><td>Drill lead</td><td></td><td></td><td></td></tr>
<tr><td>DBA</td><td></td><td></td><td></td></tr>
<tr><td>Security officer</td><td></td><td></td><td></td></tr></table></body></html>
"""


def write(settings: Settings, result: DrillResult) -> dict[str, Path]:
    rec = to_record(result)
    out = drills_dir(settings) / result.drill_id
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "markdown": out / "report.md",
             "html": out / "report.html"}
    paths["json"].write_text(json.dumps(rec, indent=2), encoding="utf-8")
    paths["markdown"].write_text(markdown(rec), encoding="utf-8")
    paths["html"].write_text(html_page(rec), encoding="utf-8")
    return paths


def history(settings: Settings) -> list[dict[str, Any]]:
    out = []
    for path in sorted(drills_dir(settings).glob("*/report.json")):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        out.append({k: rec.get(k) for k in ("drill_id", "plan", "scenario", "started", "ok",
                                             "stopped_at")}
                   | {"rto_seconds": rec.get("measures", {}).get("rto_seconds"),
                      "rpo_rows": rec.get("measures", {}).get("rpo_rows"),
                      "report": str(path.parent / "report.html")})
    return out


def schedule(settings: Settings, plan_id: str, every: str, directory: Path,
             socctl: str = "/usr/local/bin/socctl", lab: bool = True) -> list[Path]:
    """A systemd timer (+ cron line) that runs the drill, on the lab or (``lab=False``)
    on the inventory's servers; a scheduled drill has nobody to approve its gates: --yes.
    Its 02:00 is on the clock of the backup policy the drill's database follows (the
    agency's: a host kept in UTC would otherwise start it at 09:00 in Hanoi, in the
    working day), as the backups' own timers are."""
    from socctl.backup.calendar import cron_zone, timer_units, zoned
    from socctl.backup.ops import load, policies_dir
    from socctl.drill.plan import resolve

    calendars = {"weekly": ("Sat *-*-* 02:00:00", "0 2 * * 6"),
                 "monthly": ("*-*-01 02:00:00", "0 2 1 * *"),
                 "quarterly": ("*-01,04,07,10-01 02:00:00", "0 2 1 1,4,7,10 *"),
                 "yearly": ("*-08-21 02:00:00", "0 2 21 8 *")}
    if every not in calendars:
        from socctl.errors import ConfigError

        raise ConfigError(f"unknown --every {every!r}",
                          hint=f"valid: {', '.join(calendars)}")
    plan = resolve(policies_dir(settings) / "drills", plan_id)
    zone = load(settings, plan.database.policy)[0].timezone
    spec, cron = calendars[every]
    cmd = f"{socctl} drill run {plan.id}{' --lab' if lab else ''} --yes"
    unit = timer_units(f"socctl-drill-{plan.id}", f"socctl DR drill {plan.id} ({every})",
                       [zoned(spec, zone)], cmd)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in unit.files.items():
        (directory / name).write_text(text, encoding="utf-8")
        written.append(directory / name)
    cron_path = directory / f"socctl-drill-{plan.id}.cron"
    cron_path.write_text(f"# socctl DR drill {plan.id} ({every})\n{cron_zone(zone)}{cron} "
                         f"root {cmd}\n", encoding="utf-8")
    written.append(cron_path)
    return written
