"""Start reading a long-running recurrence rule near the range asked about, not at its DTSTART.

dateutil, under recurring-ical-events, walks a rule period by period from
DTSTART, and a period costs tens of microseconds (a yearly birthday since 1940
is 85 of them before 2025; a daily rule since 1900, 46,000). The set a rule
without COUNT produces from some instance on is the same when DTSTART is
moved forward by a whole number of its periods (FREQ × INTERVAL), as long as
every value dateutil would take from DTSTART stays the same: the time of day,
the day of the month, the month, the weekday. Whole years (monthly and yearly
rules), whole weeks and whole days in wall-clock time keep them; so the
master's DTSTART (with its DTEND or DUE) is moved by whole periods to at
least the instance's length (and two days) before the range, where the moved
DTSTART (which the library counts as an instance of its own) can never
overlap what is read. Overrides and EXDATEs keep their meaning: they name
instances by RECURRENCE-ID, and an override of an instance before the moved
start still shows where its own dates put it.

A Feb 29 moves to the latest leap year that fits. Rules this does not move
(COUNT, which counts from DTSTART; several RRULEs; RANGE=THISANDFUTURE
overrides; hourly and finer rules) are read from DTSTART.
"""
from __future__ import annotations

import copy
import math
from datetime import date, datetime, timedelta, tzinfo

import icalendar

from .timerange import to_utc, value

MARGIN = timedelta(days=2)
DAYS_PER_UNIT = {"WEEKLY": 7, "DAILY": 1}


def skip_ahead(calendar: icalendar.Component, name: str, lo: datetime,
               tz: tzinfo | None) -> tuple[icalendar.Component, date | datetime | None]:
    """(`calendar` or a view of it whose `name` master starts a whole number of periods before `lo`, an
    aware UTC datetime; that new DTSTART, None when not moved). The calendar itself is never changed:
    it may be a shared parse."""
    components = [c for c in calendar.subcomponents if c.name == name]
    masters = [c for c in components if "RECURRENCE-ID" not in c and "RRULE" in c]
    if len(masters) != 1 or any(_this_and_future(c) for c in components):
        return calendar, None
    master = masters[0]
    rule = master.get("RRULE")
    if isinstance(rule, list) or "COUNT" in rule:
        return calendar, None
    moved = _moved_master(master, rule, lo, tz)
    if moved is None:
        return calendar, None
    view = icalendar.Calendar()
    view.update(calendar)
    view.subcomponents = [moved if c is master else c for c in calendar.subcomponents]
    return view, moved["DTSTART"].dt


def _moved_master(master: icalendar.Component, rule, lo: datetime, tz: tzinfo | None):
    start = value(master, "DTSTART")
    if start is None:
        return None
    freq = str(rule.get("FREQ", [""])[0]).upper()
    interval = int(rule.get("INTERVAL", [1])[0] or 1)
    try:
        first = to_utc(start, tz)
        room = lo - first - _length(master, start, tz) - MARGIN
        if freq in ("YEARLY", "MONTHLY"):
            step = interval if freq == "YEARLY" else math.lcm(12, interval) // 12  # in years
            years = room.days // 366 // step * step
            new_start = _years_later(start, years, step)
        elif freq in DAYS_PER_UNIT:
            step = DAYS_PER_UNIT[freq] * interval  # in days
            days = room.days // step * step
            new_start = start + timedelta(days=days) if days > 0 else None
        else:
            return None
        if new_start is None:
            return None
        moved = type(master)()
        moved.update(master)
        moved.subcomponents = master.subcomponents
        moved["DTSTART"] = _with(master["DTSTART"], new_start)
        for name in ("DTEND", "DUE"):  # the same length after the move as before
            old = value(master, name)
            if old is not None:
                moved[name] = _with(master[name], new_start + (old - start))
        return moved
    except (ValueError, TypeError, OverflowError):
        return None


def _years_later(start: date | datetime, years: int, step: int) -> date | datetime | None:
    """`start` `years` later in wall-clock time; for a Feb 29, the latest leap year a step earlier or more."""
    while years > 0:
        try:
            return start.replace(year=start.year + years)
        except ValueError:  # Feb 29 in a common year
            years -= step
    return None


def _length(master: icalendar.Component, start, tz: tzinfo | None) -> timedelta:
    end = value(master, "DTEND") or value(master, "DUE")
    if end is not None:
        return max(to_utc(end, tz) - to_utc(start, tz), timedelta(0))
    duration = value(master, "DURATION")
    return duration if isinstance(duration, timedelta) else timedelta(days=1)


def _this_and_future(component: icalendar.Component) -> bool:
    recurrence_id = component.get("RECURRENCE-ID")
    return recurrence_id is not None and str(getattr(recurrence_id, "params", {}).get("RANGE", "")).upper() \
        == "THISANDFUTURE"


def _with(prop, moment):
    moved = copy.copy(prop)
    moved.dt = moment
    return moved
