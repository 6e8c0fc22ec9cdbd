"""iTIP (RFC 5546) as implicit scheduling needs it, on parsed iCalendar and nothing else: the organizer's side.

From an organizer's old and new calendar object: which attendee gets which
message (REQUEST, CANCEL), and whether it carries a change they care about
(RFC 6638 §3.2.8). The attendee's side (REPLY) is in attendee.py.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timezone

import icalendar

from .addresses import normalize

SCHEDULED = ("VEVENT", "VTODO")
# What an attendee cares about (RFC 6638 §3.2.8): a change elsewhere sends no email.
SIGNIFICANT = ("DTSTART", "DTEND", "DURATION", "DUE", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID",
               "LOCATION", "SUMMARY", "DESCRIPTION", "STATUS")
# A change to these moves the event: an answer given for the old time no longer holds (CalendarServer's
# iCalDiff.attendeeNeedsAction resets the attendee to NEEDS-ACTION on the same properties).
TIMING = ("DTSTART", "DTEND", "DURATION", "DUE", "RRULE", "RDATE")
# Bookkeeping that changes on every save and means nothing to anyone else.
HOUSEKEEPING = ("DTSTAMP", "LAST-MODIFIED", "SEQUENCE", "CREATED")
SERVER_PARAMS = ("SCHEDULE-STATUS", "SCHEDULE-FORCE-SEND")


@dataclass
class Message:
    """One iTIP message for one recipient."""

    recipient: str  # normalized calendar user address
    method: str  # REQUEST | CANCEL | REPLY
    calendar: icalendar.Calendar
    significant: bool = True  # worth an email (RFC 6638 §3.2.8)


def parse(raw: bytes | None) -> icalendar.Calendar | None:
    """The calendar, or None when there is none or it cannot be read (the store decides on validity)."""
    if not raw:
        return None
    try:
        return icalendar.Calendar.from_ical(raw)
    except ValueError:
        return None


def components(calendar: icalendar.Calendar | None) -> list[icalendar.Component]:
    return [] if calendar is None else [c for c in calendar.subcomponents if c.name in SCHEDULED]


def instance_key(component: icalendar.Component) -> str:
    """'' for the master, else its RECURRENCE-ID as written (with TZID)."""
    rid = component.get("RECURRENCE-ID")
    if rid is None:
        return ""
    when = rid.dt
    if isinstance(when, datetime) and when.tzinfo is not None:  # the same instant however it is written
        when = when.astimezone(timezone.utc)
    return when.isoformat()


def organizer(calendar: icalendar.Calendar | None) -> str | None:
    """The normalized ORGANIZER address, if the object has one."""
    for component in components(calendar):
        value = component.get("ORGANIZER")
        if value is not None:
            return normalize(value)
    return None


def organizer_schedules(calendar: icalendar.Calendar) -> bool:
    """False when the ORGANIZER carries SCHEDULE-AGENT=CLIENT/NONE: the client does the scheduling."""
    for component in components(calendar):
        value = component.get("ORGANIZER")
        if value is not None:
            return _agent(value) == "SERVER"
    return True


def attendees(component: icalendar.Component) -> list:
    value = component.get("ATTENDEE")
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def find_attendee(component: icalendar.Component, address: str):
    for attendee in attendees(component):
        if normalize(attendee) == address:
            return attendee
    return None


def scheduled_attendees(calendar: icalendar.Calendar | None, organizer_address: str) -> set[str]:
    """The attendees the server schedules: not the organizer, not SCHEDULE-AGENT=CLIENT/NONE."""
    return {normalize(a) for c in components(calendar) for a in attendees(c)
            if normalize(a) != organizer_address and _agent(a) == "SERVER"}


def is_cancelled(calendar: icalendar.Calendar | None) -> bool:
    """The whole object is cancelled (its master, or every component when there is no master)."""
    comps = components(calendar)
    masters = [c for c in comps if instance_key(c) == ""] or comps
    return bool(masters) and all(str(c.get("STATUS", "")).upper() == "CANCELLED" for c in masters)


def view(calendar: icalendar.Calendar | None, address: str) -> list[icalendar.Component]:
    """Copies of the components `address` attends; the master excludes (EXDATE) instances they were
    taken out of, so their copy does not show an occurrence they are no longer invited to."""
    comps = components(calendar)
    mine = [copy.deepcopy(c) for c in comps if find_attendee(c, address) is not None]
    master = next((c for c in mine if instance_key(c) == ""), None)
    if master is not None:
        for other in comps:
            if instance_key(other) and find_attendee(other, address) is None:
                rid = other["RECURRENCE-ID"]
                master.add("EXDATE", rid.dt, parameters=dict(rid.params))
    return mine


def fingerprint(comps: list[icalendar.Component], significant_only: bool) -> frozenset:
    """What a recipient would notice: significant properties only, or everything but housekeeping."""
    lines = set()
    for component in comps:
        key = instance_key(component)
        for name, value in component.property_items(recursive=False):
            if name in ("BEGIN", "END") or name in HOUSEKEEPING:
                continue
            if significant_only and name not in SIGNIFICANT:
                continue
            if name in ("ATTENDEE", "ORGANIZER"):
                value = copy.deepcopy(value)
                for param in SERVER_PARAMS:
                    value.params.pop(param, None)
            lines.add((key, str(component.content_line(name, value, sorted=True))))
    return frozenset(lines)


def timing(component: icalendar.Component) -> frozenset:
    """The properties that say when the component happens, as comparable content lines."""
    return frozenset(str(component.content_line(name, value, sorted=True))
                     for name, value in component.property_items(recursive=False) if name in TIMING)


def organizer_messages(old: icalendar.Calendar | None, new: icalendar.Calendar | None,
                       organizer_address: str) -> list[Message]:
    """What the organizer's PUT (new) or DELETE (new None) of `old` sends to each attendee.

    REQUEST to attendees whose view changed (new ones included), CANCEL to those
    removed and to everyone when the event is deleted or cancelled; nothing for
    a change nobody can see (DTSTAMP, SEQUENCE alone, an identical re-PUT)."""
    before = scheduled_attendees(old, organizer_address)
    after = scheduled_attendees(new, organizer_address)
    source = new if new is not None else old
    messages = []
    cancel_all = new is None or is_cancelled(new)
    for address in sorted(before | after):
        old_view, new_view = view(old, address), view(new, address)
        if cancel_all:
            if old_view and not is_cancelled(old):
                comps = new_view or old_view
                messages.append(Message(address, "CANCEL", build("CANCEL", source, _cancelled(comps))))
            continue
        if not new_view:
            messages.append(Message(address, "CANCEL", build("CANCEL", old, _cancelled(old_view))))
        elif not old_view:
            messages.append(Message(address, "REQUEST", build("REQUEST", new, new_view)))
        elif fingerprint(old_view, False) != fingerprint(new_view, False):
            significant = fingerprint(old_view, True) != fingerprint(new_view, True)
            messages.append(Message(address, "REQUEST", build("REQUEST", new, new_view), significant))
    return messages


def set_schedule_status(calendar: icalendar.Calendar, statuses: dict[str, str]) -> bool:
    """Write SCHEDULE-STATUS on the organizer's ATTENDEE properties (RFC 6638 §3.2.9); True if it changed."""
    changed = False
    for component in components(calendar):
        for attendee in attendees(component):
            status = statuses.get(normalize(attendee))
            if status is not None and attendee.params.get("SCHEDULE-STATUS") != status:
                attendee.params["SCHEDULE-STATUS"] = status
                changed = True
    return changed


def build(method: str, source: icalendar.Calendar, comps: list[icalendar.Component]) -> icalendar.Calendar:
    """An iTIP message: METHOD, the source's time zones, the given components without server params."""
    message = icalendar.Calendar()
    message.add("PRODID", "-//hearth//scheduling//EN")
    message.add("VERSION", "2.0")
    message.add("METHOD", method)
    for zone in source.walk("VTIMEZONE"):
        message.add_component(copy.deepcopy(zone))
    for component in comps:
        component = copy.deepcopy(component)
        for address in attendees(component) + [component.get("ORGANIZER")]:
            if address is not None:
                for param in SERVER_PARAMS:
                    address.params.pop(param, None)
        if method != "REPLY":
            component.subcomponents = [c for c in component.subcomponents if c.name != "VALARM"]
        message.add_component(component)
    return message


def _cancelled(comps: list[icalendar.Component]) -> list[icalendar.Component]:
    result = []
    for component in comps:
        component = copy.deepcopy(component)
        component.pop("STATUS", None)
        component.add("STATUS", "CANCELLED")
        result.append(component)
    return result


def _agent(address) -> str:
    return str(getattr(address, "params", {}).get("SCHEDULE-AGENT", "SERVER")).upper()
