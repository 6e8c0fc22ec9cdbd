"""CALDAV:calendar-data in a REPORT's prop (RFC 4791 §9.6): what of each object to return, and how.

With nothing asked the stored bytes go back untouched. Partial retrieval
(comp/prop/allcomp/allprop) keeps only the components and properties named;
`expand` replaces each recurrence set with its instances in the range, as
separate components in UTC with a RECURRENCE-ID and no RRULE/RDATE/EXDATE (and
no VTIMEZONE, which nothing then refers to); `limit-recurrence-set` keeps the
master and only the overridden instances that touch the range.
`limit-freebusy-set` only concerns VFREEBUSY components, which a calendar
collection here never stores, so it is accepted and changes nothing.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, tzinfo

import icalendar

from ..errors import CALDAV, Precondition
from .instances import all_instances
from .timerange import TimeRange, component_overlaps, parse_time_range, to_utc

KINDS = ("VEVENT", "VTODO", "VJOURNAL")
RECURRENCE_RULES = ("RRULE", "RDATE", "EXDATE")
MOMENTS = ("DTSTART", "DTEND", "DUE", "RECURRENCE-ID")


def _c(name: str) -> str:
    return f"{{{CALDAV}}}{name}"


@dataclass(frozen=True)
class Selection:
    """A C:comp of partial retrieval: which properties (None = all) and subcomponents (None = all) to keep."""

    name: str
    props: frozenset[str] | None
    comps: tuple["Selection", ...] | None


@dataclass(frozen=True)
class CalendarData:
    selection: Selection | None = None
    expand: TimeRange | None = None
    limit_recurrence: TimeRange | None = None

    @property
    def verbatim(self) -> bool:
        """Whether the stored bytes are the answer as they are."""
        return self.selection is None and self.expand is None and self.limit_recurrence is None


def parse_calendar_data(node: ET.Element) -> CalendarData:
    """What a C:calendar-data request element asks for; supported-calendar-data for another format."""
    content_type = node.get("content-type", "text/calendar")
    if content_type != "text/calendar" or node.get("version", "2.0") != "2.0":
        raise Precondition(CALDAV, "supported-calendar-data",
                           f"calendar data is served as text/calendar 2.0, not {content_type}")
    selection = expand = limit = None
    for child in node:
        if child.tag == _c("comp"):
            selection = _selection(child)
        elif child.tag == _c("expand"):
            expand = _bounded(child)
        elif child.tag == _c("limit-recurrence-set"):
            limit = _bounded(child)
    return CalendarData(selection, expand, limit)


def _bounded(node: ET.Element) -> TimeRange:
    """RFC 4791 §9.6.5/§9.6.6: both ends are required; an open one would ask for endless instances."""
    rng = parse_time_range(node)
    if rng.start is None or rng.end is None:
        raise Precondition(CALDAV, "valid-filter", f"{node.tag.rsplit('}', 1)[-1]} needs both start and end",
                           status=400)
    return rng


def _selection(node: ET.Element) -> Selection:
    props: set[str] | None = set()
    comps: list[Selection] | None = []
    for child in node:
        if child.tag == _c("allprop"):
            props = None
        elif child.tag == _c("prop") and props is not None:
            props.add(child.get("name", "").upper())
        elif child.tag == _c("allcomp"):
            comps = None
        elif child.tag == _c("comp") and comps is not None:
            comps.append(_selection(child))
    return Selection(node.get("name", "").upper(), None if props is None else frozenset(props),
                     None if comps is None else tuple(comps))


def render_calendar_data(raw: bytes, request: CalendarData, calendar: icalendar.Component | None = None,
                         tz: tzinfo | None = None) -> str:
    """The text to put in calendar-data for one stored object (`calendar`: its parse, if already made)."""
    if request.verbatim:
        return raw.decode("utf-8", "replace")
    if calendar is None:
        calendar = icalendar.Calendar.from_ical(raw)
    if request.expand is not None:
        calendar = expand(calendar, request.expand, tz)
    elif request.limit_recurrence is not None:
        calendar = limit_recurrence_set(calendar, request.limit_recurrence, tz)
    if request.selection is not None:
        calendar = select(calendar, request.selection)
    return calendar.to_ical().decode("utf-8", "replace")


def expand(calendar: icalendar.Component, rng: TimeRange, tz: tzinfo | None) -> icalendar.Calendar:
    """A VCALENDAR with the instances overlapping `rng` as separate components in UTC (§9.6.5)."""
    out = icalendar.Calendar()
    for name, value in calendar.property_items(recursive=False)[1:-1]:
        out.add(name, value)
    for kind in KINDS:
        for instance in all_instances(calendar, kind, rng, tz):
            out.add_component(_in_utc(instance, tz))
    return out


def _in_utc(component: icalendar.Component, tz: tzinfo | None) -> icalendar.Component:
    for name in RECURRENCE_RULES:
        component.pop(name, None)
    for name in MOMENTS:
        prop = component.get(name)
        moment = getattr(prop, "dt", None)
        if isinstance(moment, datetime):
            component.pop(name)
            component.add(name, to_utc(moment, tz))
    return component


def limit_recurrence_set(calendar: icalendar.Component, rng: TimeRange, tz: tzinfo | None) -> icalendar.Component:
    """The calendar with only those overridden instances that overlap `rng` or replace one in it (§9.6.6)."""
    kept = []
    for component in calendar.subcomponents:
        recurrence_id = getattr(component.get("RECURRENCE-ID"), "dt", None)
        if recurrence_id is None or component_overlaps(component, rng, tz) or rng.holds(to_utc(recurrence_id, tz)):
            kept.append(component)
    calendar.subcomponents[:] = kept
    return calendar


def select(component: icalendar.Component, selection: Selection) -> icalendar.Component:
    """A copy of `component` with only the properties and subcomponents `selection` names."""
    out = type(component)()
    out.name = component.name
    for name, value in component.items():
        if selection.props is None or name.upper() in selection.props:
            out[name] = value
    for sub in component.subcomponents:
        if selection.comps is None:
            out.add_component(sub)
            continue
        for wanted in selection.comps:
            if wanted.name == sub.name:
                out.add_component(select(sub, wanted))
                break
    return out
