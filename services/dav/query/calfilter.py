"""CALDAV:filter (RFC 4791 §9.7): read it from the request, test a calendar object against it.

A comp-filter matches when some component of that name (for a time-range: some
instance of the recurrence set, overridden instances included) satisfies all of
its prop-filters and nested comp-filters. Instances are full components, so a
prop-filter sees the values of the instance it tests (an override's SUMMARY,
not the master's).
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import tzinfo

import icalendar

from ..errors import CALDAV, Precondition
from .instances import instances
from .textmatch import ParamFilter, TextMatch, parse_param_filter, parse_text_match
from .timerange import TimeRange, alarm_overlaps, component_overlaps, parse_time_range, to_utc

RECURRING_KINDS = ("VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY")
KNOWN_COMPONENTS = (*RECURRING_KINDS, "VALARM", "VTIMEZONE", "STANDARD", "DAYLIGHT", "VAVAILABILITY", "AVAILABLE")
NAME = re.compile(r"(X-|[A-Z])[A-Z0-9-]*")
DEFAULT_COLLATION = "i;ascii-casemap"
INSTANCE_DATES = ("DTSTART", "DTEND", "DUE", "RECURRENCE-ID", "DURATION")


def _c(name: str) -> str:
    return f"{{{CALDAV}}}{name}"


@dataclass(frozen=True)
class PropFilter:
    name: str
    is_not_defined: bool = False
    time_range: TimeRange | None = None
    text_match: TextMatch | None = None
    params: tuple[ParamFilter, ...] = ()


@dataclass(frozen=True)
class CompFilter:
    name: str
    is_not_defined: bool = False
    time_range: TimeRange | None = None
    props: tuple[PropFilter, ...] = ()
    comps: tuple["CompFilter", ...] = field(default=())

    @property
    def index_hint(self) -> tuple[str | None, TimeRange | None]:
        """(component kind every match must be, time range every match must overlap), from the
        VCALENDAR's direct comp-filters, so the store's index can pick the candidates."""
        kind, rng = None, None
        for comp in self.comps:
            if comp.is_not_defined:
                continue
            if comp.name in ("VEVENT", "VTODO", "VJOURNAL"):
                kind = kind or comp.name
            if comp.time_range is not None and comp.name in ("VEVENT", "VTODO", "VJOURNAL"):
                rng = rng or comp.time_range
        return kind, rng

    @property
    def plain_time_range(self) -> tuple[str, TimeRange] | None:
        """(kind, range) when the filter is only "a <kind> overlapping <range>": the common query,
        which the index alone can answer for items whose bounds lie inside the range."""
        if self.props or len(self.comps) != 1:
            return None
        only = self.comps[0]
        if only.is_not_defined or only.props or only.comps or only.time_range is None:
            return None
        return only.name, only.time_range


def parse_filter(node: ET.Element | None) -> CompFilter:
    """The filter's VCALENDAR comp-filter; valid-filter / supported-filter / supported-collation otherwise."""
    if node is None or node.tag != _c("filter"):
        raise Precondition(CALDAV, "valid-filter", "calendar-query needs a CALDAV:filter")
    comps = [child for child in node if child.tag == _c("comp-filter")]
    if len(comps) != 1 or comps[0].get("name", "").upper() != "VCALENDAR":
        raise Precondition(CALDAV, "valid-filter", "the filter must hold one comp-filter named VCALENDAR")
    return _comp_filter(comps[0], depth=0)


def _comp_filter(node: ET.Element, depth: int) -> CompFilter:
    name = node.get("name", "").upper()
    if not NAME.fullmatch(name):
        raise Precondition(CALDAV, "valid-filter", f"comp-filter name {name!r} is not a component name")
    if depth > 0 and not name.startswith("X-") and name not in KNOWN_COMPONENTS:
        raise Precondition(CALDAV, "supported-filter", f"no component {name!r} can be queried")
    is_not_defined, time_range, props, comps = False, None, [], []
    for child in node:
        if child.tag == _c("is-not-defined"):
            is_not_defined = True
        elif child.tag == _c("time-range"):
            if name not in (*RECURRING_KINDS, "VALARM"):
                raise Precondition(CALDAV, "valid-filter", f"no time-range on {name}")
            time_range = parse_time_range(child)
        elif child.tag == _c("prop-filter"):
            props.append(_prop_filter(child))
        elif child.tag == _c("comp-filter"):
            comps.append(_comp_filter(child, depth + 1))
        else:
            raise Precondition(CALDAV, "valid-filter", f"unexpected {child.tag} in a comp-filter")
    return CompFilter(name, is_not_defined, time_range, tuple(props), tuple(comps))


def _prop_filter(node: ET.Element) -> PropFilter:
    name = node.get("name", "").upper()
    if not NAME.fullmatch(name):
        raise Precondition(CALDAV, "valid-filter", f"prop-filter name {name!r} is not a property name")
    is_not_defined, time_range, text_match, params = False, None, None, []
    for child in node:
        if child.tag == _c("is-not-defined"):
            is_not_defined = True
        elif child.tag == _c("time-range"):
            time_range = parse_time_range(child)
        elif child.tag == _c("text-match"):
            text_match = parse_text_match(child, CALDAV, DEFAULT_COLLATION)
        elif child.tag == _c("param-filter"):
            params.append(_param_filter(child))
        else:
            raise Precondition(CALDAV, "valid-filter", f"unexpected {child.tag} in a prop-filter")
    return PropFilter(name, is_not_defined, time_range, text_match, tuple(params))


def _param_filter(node: ET.Element) -> ParamFilter:
    name = node.get("name", "").upper()
    if not NAME.fullmatch(name):
        raise Precondition(CALDAV, "valid-filter", f"param-filter name {name!r} is not a parameter name")
    return parse_param_filter(node, name, CALDAV, DEFAULT_COLLATION)


def matches(calendar: icalendar.Component, root: CompFilter, tz: tzinfo | None = None) -> bool:
    """Whether the calendar object (a parsed VCALENDAR) satisfies the filter."""
    return _candidate_matches(calendar, root, tz)


def _candidate_matches(component: icalendar.Component, flt: CompFilter, tz: tzinfo | None) -> bool:
    return (all(_prop_matches(component, prop, tz) for prop in flt.props)
            and all(_comp_matches(component, comp, tz) for comp in flt.comps))


def _comp_matches(parent: icalendar.Component, flt: CompFilter, tz: tzinfo | None) -> bool:
    present = [c for c in parent.subcomponents if c.name == flt.name]
    if flt.is_not_defined:
        return not present
    if flt.time_range is None:
        candidates = present
    elif flt.name == "VALARM":
        candidates = [alarm for alarm in present if alarm_overlaps(alarm, parent, flt.time_range, tz)]
    elif parent.name == "VCALENDAR":
        candidates = instances(parent, flt.name, flt.time_range, tz, tail_decides=_dateless(flt)) \
            if present else []
    else:  # a recurring kind nested somewhere odd: its own dates only
        candidates = [c for c in present if component_overlaps(c, flt.time_range, tz)]
    return any(_candidate_matches(candidate, flt, tz) for candidate in candidates)


def _dateless(flt: CompFilter) -> bool:
    """Whether the filter's nested tests ignore what differs between a rule's instances: their dates
    (and the alarms that follow them)."""
    return (all(prop.name not in INSTANCE_DATES for prop in flt.props)
            and all(comp.time_range is None and _dateless(comp) for comp in flt.comps))


def _prop_matches(component: icalendar.Component, flt: PropFilter, tz: tzinfo | None) -> bool:
    found = component.get(flt.name)
    props = found if isinstance(found, list) else [] if found is None else [found]
    if flt.is_not_defined:
        return not props
    return any(_one_prop_matches(prop, flt, tz) for prop in props)


def _one_prop_matches(prop, flt: PropFilter, tz: tzinfo | None) -> bool:
    if flt.time_range is not None:
        moment = getattr(prop, "dt", None)
        if moment is None or not hasattr(moment, "year") or not flt.time_range.holds(to_utc(moment, tz)):
            return False
    if flt.text_match is not None and not flt.text_match.matches(text_of(prop)):
        return False
    return all(_param_matches(getattr(prop, "params", {}), param) for param in flt.params)


def _param_matches(params, flt: ParamFilter) -> bool:
    present = params.get(flt.name)
    if flt.is_not_defined:
        return present is None
    if present is None:
        return False
    if flt.text_match is None:
        return True
    values = present if isinstance(present, list) else [present]
    return any(flt.text_match.matches(str(v)) for v in values)


def text_of(prop) -> str:
    """A property's value as text: the unescaped string for text values, the iCalendar form otherwise."""
    if isinstance(prop, str):
        return str(prop)
    cats = getattr(prop, "cats", None)
    if cats is not None:
        return ",".join(str(c) for c in cats)
    try:
        return prop.to_ical().decode("utf-8", "replace")
    except AttributeError:
        return str(prop)
