"""What runs when: the policy calendar, the freshness it implies, and timer/cron units.

Freshness is derived from the schedule itself (the longest gap between two runs that
refresh a backup of that kind, plus the policy's grace) so that a policy edit cannot
leave ``backup status`` checking against a stale constant.
"""

from __future__ import annotations

import calendar as _cal
import itertools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from socctl.backup.policy import WEEKDAYS, BackupType, Calendar, Policy, parse_duration


@dataclass(frozen=True)
class PlannedRun:
    policy: str
    type: str
    at: str
    tiers: tuple[str, ...]
    why: str
    source: str
    timezone: str | None = None  # of ``at``; None: the host's

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {
            "tiers": list(self.tiers)}


def runs_on(run: Calendar, day: date) -> bool:
    if run.weekdays is not None:
        return WEEKDAYS[day.weekday()] in run.weekdays
    last = _cal.monthrange(day.year, day.month)[1]
    return any((d == "last" and day.day == last) or d == day.day
               for d in run.monthdays or [])


def plan_for(policies: list[Policy], day: date) -> list[PlannedRun]:
    """Every run due on ``day``, in time order, each with the rule it comes from."""
    out = []
    for policy in policies:
        for i, run in enumerate(policy.runs):
            if runs_on(run, day):
                where = Path(policy.path)
                out.append(PlannedRun(policy.id, run.type.value, run.at, tuple(run.tiers),
                                      run.why, f"{where.parent.name}/{where.name}: runs[{i}]",
                                      policy.timezone))
        for i, check in enumerate(policy.verify):
            if runs_on(check, day):
                where = Path(policy.path)
                tier = policy.verify_tier(check.tier).name
                out.append(PlannedRun(policy.id, "verify", check.at, (tier,), check.why,
                                      f"{where.parent.name}/{where.name}: verify[{i}]",
                                      policy.timezone))
    return sorted(out, key=lambda r: (r.at, r.policy, r.type))


_REFRESHES = {
    BackupType.FULL: {BackupType.FULL},
    BackupType.DIFF: {BackupType.FULL, BackupType.DIFF},
    BackupType.INCR: {BackupType.FULL, BackupType.DIFF, BackupType.INCR},
    BackupType.LOG: {BackupType.LOG},
}


def max_gap(policy: Policy, kind: BackupType, start: date | None = None,
            days: int = 400, tier: str | None = None) -> timedelta | None:
    """The longest time between two consecutive runs that refresh ``kind``.

    None if the policy never refreshes it. Scans ``days`` from ``start`` (a year and a
    bit covers every month length and weekday pattern).
    """
    start = start or date(2024, 1, 1)
    times: list[datetime] = []
    for n in range(days):
        day = start + timedelta(days=n)
        for run in policy.runs:
            if (run.type in _REFRESHES[kind] and runs_on(run, day)
                    and (tier is None or tier in run.tiers)):
                hh, mm = map(int, run.at.split(":"))
                times.append(datetime.combine(day, time(hh, mm)))
    times.sort()
    if len(times) < 2:
        return None
    return max(b - a for a, b in itertools.pairwise(times))


def freshness_limits_for_tier(policy: Policy, tier: str | None) -> dict[str, timedelta]:
    """Maximum acceptable age per backup kind in one tier: its schedule gap + grace."""
    grace = parse_duration(policy.freshness.grace)
    limits = {}
    for kind in (BackupType.FULL, BackupType.DIFF):
        gap = max_gap(policy, kind, tier=tier)
        if gap is not None:
            limits[kind.value] = gap + grace
    if any(r.type is BackupType.LOG for r in policy.runs):
        limits["wal"] = parse_duration(policy.freshness.wal_max_age)
    return limits


def zoned(spec: str, zone: str | None) -> str:
    """An OnCalendar= value in ``zone`` (systemd reads a trailing zone name), else in the
    host's."""
    return f"{spec} {zone}" if zone else spec


def cron_zone(zone: str | None) -> str:
    """The line that puts the cron lines after it in ``zone`` (cronie reads CRON_TZ;
    Debian's cron does not and runs them in the host's zone: the timers are the schedule,
    the cron file the alternative)."""
    return f"CRON_TZ={zone}\n" if zone else ""


def on_calendar(run: Calendar, zone: str | None = None) -> list[str]:
    """systemd OnCalendar= values for a run (``*-*~01`` is the last day of the month), in
    ``zone`` when given, else the host's."""
    hhmm = zoned(f"{run.at}:00", zone)
    if run.weekdays is not None:
        days = ",".join(d.capitalize() for d in run.weekdays)
        return [f"{days} *-*-* {hhmm}"]
    return [f"*-*~01 {hhmm}" if d == "last" else f"*-*-{int(d):02d} {hhmm}"
            for d in run.monthdays or []]


def cron_line(run: Calendar, command: str, zone: str | None = None) -> str:
    """The crontab line(s) of a run; "the last day" is asked of ``date`` in ``zone`` (the
    one CRON_TZ names above the lines), so it is the policy's last day, not the host's."""
    hh, mm = (int(x) for x in run.at.split(":"))
    if run.weekdays is not None:
        dow = ",".join(str((WEEKDAYS.index(d) + 1) % 7) for d in run.weekdays)
        return f"{mm} {hh} * * {dow} root {command}"
    days = [d for d in run.monthdays or [] if d != "last"]
    lines = []
    if days:
        lines.append(f"{mm} {hh} {','.join(str(d) for d in days)} * * root {command}")
    if "last" in (run.monthdays or []):
        # cron has no "last day": run on 28-31 and keep only the day before the 1st.
        tz = f"TZ={zone} " if zone else ""
        lines.append(f'{mm} {hh} 28-31 * * root [ "$({tz}date -d tomorrow +\\%d)" = 01 ] '
                     f"&& {command}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Unit:
    name: str
    files: dict[str, str]


def timer_units(name: str, description: str, calendar_spec: list[str], command: str) -> Unit:
    service = (f"[Unit]\nDescription={description}\n\n[Service]\nType=oneshot\n"
               f"ExecStart={command}\n")
    timer = (f"[Unit]\nDescription={description} (timer)\n\n[Timer]\n"
             + "".join(f"OnCalendar={c}\n" for c in calendar_spec)
             + "Persistent=true\nRandomizedDelaySec=60\n\n"
             "[Install]\nWantedBy=timers.target\n")
    return Unit(name, {f"{name}.service": service, f"{name}.timer": timer})


def backup_units(policies: list[Policy], socctl: str = "/usr/local/bin/socctl"
                 ) -> tuple[list[Unit], list[str]]:
    units, cron = [], []
    for policy in policies:
        zone_line = cron_zone(policy.timezone)
        seen: dict[str, int] = {}
        for run in policy.runs:
            cmd = f"{socctl} backup run {policy.id} --type {run.type.value}"
            # a type that runs twice (a weekly full and a month-end one) gets a unit each:
            # under one name, the second overwrote the first's timer
            n = seen[run.type.value] = seen.get(run.type.value, 0) + 1
            name = f"socctl-backup-{policy.id}-{run.type.value}" + (f"-{n}" if n > 1 else "")
            units.append(timer_units(name, f"socctl backup {policy.id} {run.type.value}: "
                                     f"{run.why}", on_calendar(run, policy.timezone), cmd))
            cron.append(f"# {policy.id} {run.type.value}: {run.why}\n" + zone_line
                        + cron_line(run, cmd, policy.timezone))
        for i, check in enumerate(policy.verify):
            tier = policy.verify_tier(check.tier).name
            cmd = f"{socctl} backup verify {policy.id} --tier {tier}"
            name = f"socctl-verify-{policy.id}" + (f"-{i + 1}" if i else "")
            units.append(timer_units(name, f"socctl backup verify {policy.id} ({tier}): "
                                     f"{check.why}", on_calendar(check, policy.timezone), cmd))
            cron.append(f"# {policy.id} verify ({tier}): {check.why}\n" + zone_line
                        + cron_line(check, cmd, policy.timezone))
    return units, cron


def write_units(directory: Path, units: list[Unit], cron: list[str], cron_name: str
                ) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for unit in units:
        for filename, text in unit.files.items():
            path = directory / filename
            path.write_text(text, encoding="utf-8")
            written.append(path)
    cron_path = directory / cron_name
    cron_path.write_text("# socctl: cron alternative to the systemd timers\n"
                         "SHELL=/bin/sh\n" + "\n".join(cron) + "\n", encoding="utf-8")
    written.append(cron_path)
    return written


def freshness_limits(policy: Policy) -> dict[str, timedelta]:
    return freshness_limits_for_tier(policy, None)
