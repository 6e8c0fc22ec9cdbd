"""iCalendar as CalDAV stores it: validate a calendar object resource and learn what to index.

Parsing is done with `icalendar` (lenient about real clients' quirks: Outlook
ORGANIZERs, X- properties, missing DTSTAMP, LF line endings) and recurrence with
`recurring-ical-events`. Nothing here rewrites the client's bytes: the store
keeps them as sent and only records what this module extracts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import icalendar
import recurring_ical_events

from .errors import CALDAV, Precondition, invalid_calendar, invalid_calendar_object
from .instance_limit import check_instance_count
from .rule_check import check_rules
from .timebounds import BoundsError, time_bounds

COMPONENTS = ("VEVENT", "VTODO", "VJOURNAL")


@dataclass(frozen=True)
class CalendarObject:
    """What the store indexes about one calendar object resource."""

    uid: str
    component: str  # 'VEVENT' | 'VTODO' | 'VJOURNAL'
    first_start: int | None  # UTC epoch seconds; None = unbounded
    last_end: int | None
    calendar: icalendar.Calendar | None = field(default=None, compare=False, repr=False)  # the parse, to read only


def parse_calendar(raw: bytes) -> CalendarObject:
    """Validate `raw` as one calendar object resource (RFC 4791 §4.1).

    Raises Precondition `valid-calendar-data` (not iCalendar, a vCard, dates
    that cannot be read, an RRULE part out of range: rule_check.py), `valid-calendar-object-resource` (no component,
    mixed component types, missing or several different UIDs) or
    `max-instances` (a rule repeating too often, instance_limit.py).
    """
    calendar = _calendar(raw)
    components = [c for c in calendar.subcomponents if c.name in COMPONENTS]
    if not components:
        if any(c.name == "VFREEBUSY" for c in calendar.subcomponents):
            raise Precondition(CALDAV, "supported-calendar-component", "VFREEBUSY cannot be stored")
        raise invalid_calendar_object("no VEVENT, VTODO or VJOURNAL in the VCALENDAR")
    kinds = {c.name for c in components}
    if len(kinds) > 1:
        raise invalid_calendar_object(f"mixed component types: {', '.join(sorted(kinds))}")
    uids = {str(c.get("UID", "")).strip() for c in components}
    if "" in uids:
        raise invalid_calendar_object("a component has no UID")
    if len(uids) > 1:
        raise invalid_calendar_object(f"{len(uids)} different UIDs in one resource")
    kind = kinds.pop()
    check_rules(calendar, kind)
    check_instance_count(calendar, kind)  # first: refuses a minutely rule before time_bounds walks it
    try:
        first_start, last_end = time_bounds(calendar, kind)
    except BoundsError as error:
        raise invalid_calendar(str(error)) from None
    return CalendarObject(uids.pop(), kind, first_start, last_end, calendar)


def occurrences(raw: bytes, start: date | datetime, end: date | datetime) -> list[icalendar.Component]:
    """The instances of a stored resource overlapping [start, end), each a component with its own
    DTSTART/DTEND (or DUE) and RECURRENCE-ID: what CalDAV `expand` returns."""
    calendar = _calendar(raw)
    query = recurring_ical_events.of(calendar, components=list(COMPONENTS))
    return list(query.between(start, end))


def _calendar(raw: bytes) -> icalendar.Calendar:
    try:
        found = icalendar.Calendar.from_ical(_text(raw), multiple=True)
    except ValueError as error:
        raise invalid_calendar(f"not iCalendar: {error}") from None
    if not found:
        raise invalid_calendar("empty")
    if len(found) > 1:
        raise invalid_calendar(f"{len(found)} objects where one VCALENDAR was expected")
    calendar = found[0]
    if calendar.name == "VCARD":
        raise invalid_calendar("a vCard is not calendar data")
    if calendar.name != "VCALENDAR":
        raise invalid_calendar(f"expected a VCALENDAR, found {calendar.name}")
    return calendar


def _text(raw: bytes) -> str:
    """RFC 5545 says UTF-8; some exporters still write Latin-1, which we read rather than refuse."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
