"""Busy time (RFC 4791 §7.10, reused for RFC 6638 free-busy through the schedule outbox).

`busy_periods` reads stored calendar objects and says when their owner is busy:
every instance of an opaque, not cancelled VEVENT (TENTATIVE ones as
BUSY-TENTATIVE) and the FREEBUSY periods of any VFREEBUSY, clipped to the
range and merged per FBTYPE. `render_freebusy` writes the VFREEBUSY answer.
"""
from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from typing import Iterable

import icalendar

from .instances import UNREADABLE, all_instances
from .parsing import read_for_query
from .timerange import TimeRange, event_span, periods_of

Period = tuple[datetime, datetime, str]
FBTYPES = ("BUSY", "BUSY-TENTATIVE", "BUSY-UNAVAILABLE")


def busy_periods(raw_items: Iterable[bytes], start: datetime, end: datetime,
                 tz: tzinfo | None = None) -> list[Period]:
    """(start, end, FBTYPE) in UTC, merged per FBTYPE and sorted; objects that cannot be read are skipped.

    `start` and `end` are aware datetimes; floating times are read in `tz` (UTC when None)."""
    rng = TimeRange(start.astimezone(timezone.utc), end.astimezone(timezone.utc))
    found: list[Period] = []
    for raw in raw_items:
        try:
            calendar = read_for_query(raw)
            found.extend(_event_periods(calendar, rng, tz))
            for component in calendar.walk("VFREEBUSY"):
                found.extend(p for p in periods_of(component, tz) if p[2] in FBTYPES)
        except UNREADABLE:
            continue
    clipped = [(max(lo, rng.start), min(hi, rng.end), kind) for lo, hi, kind in found
               if lo < rng.end and hi > rng.start]
    return _merge(clipped)


def _event_periods(calendar: icalendar.Component, rng: TimeRange, tz: tzinfo | None) -> Iterable[Period]:
    for event in all_instances(calendar, "VEVENT", rng, tz):
        if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
            continue
        status = str(event.get("STATUS", "CONFIRMED")).upper()
        if status == "CANCELLED":
            continue
        span = _span(event, tz)
        if span is not None:
            yield span[0], span[1], "BUSY-TENTATIVE" if status == "TENTATIVE" else "BUSY"


def _span(event: icalendar.Component, tz: tzinfo | None) -> tuple[datetime, datetime] | None:
    """The event's busy time; an instant is not busy."""
    span = event_span(event, tz)
    return span if span is not None and span[1] > span[0] else None


def _merge(periods: list[Period]) -> list[Period]:
    merged: list[Period] = []
    for kind in FBTYPES:
        spans = sorted((lo, hi) for lo, hi, k in periods if k == kind)
        for lo, hi in spans:
            if merged and merged[-1][2] == kind and lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(hi, merged[-1][1]), kind)
            else:
                merged.append((lo, hi, kind))
    return sorted(merged)


def render_freebusy(periods: Iterable[Period], start: datetime, end: datetime, *,
                    uid: str | None = None, organizer: str | None = None,
                    attendee: str | None = None) -> bytes:
    """A VCALENDAR holding one VFREEBUSY for [start, end) with a FREEBUSY line per period."""
    calendar = icalendar.Calendar()
    calendar.add("PRODID", "-//hearth//dav//EN")
    calendar.add("VERSION", "2.0")
    if organizer or attendee:
        calendar.add("METHOD", "REPLY")
    freebusy = icalendar.FreeBusy()
    if uid:
        freebusy.add("UID", uid)
    freebusy.add("DTSTAMP", datetime.now(timezone.utc).replace(microsecond=0))
    freebusy.add("DTSTART", start.astimezone(timezone.utc))
    freebusy.add("DTEND", end.astimezone(timezone.utc))
    if organizer:
        freebusy.add("ORGANIZER", organizer)
    if attendee:
        freebusy.add("ATTENDEE", attendee)
    for lo, hi, kind in periods:
        freebusy.add("FREEBUSY", (lo, hi), parameters={"FBTYPE": kind})
    calendar.add_component(freebusy)
    return calendar.to_ical()
