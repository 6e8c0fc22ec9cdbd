"""The UTC interval a calendar object can ever occupy, for the store's time-range index.

The index only has to give a superset of the right answer (exact CalDAV
filtering runs afterwards on the candidates), but it must never miss an item.
So: floating times and all-day dates (which mean "whatever the viewer's zone
is") are read as UTC and widened by 14 hours either way; an infinite
recurrence has no end (None); anything we cannot bound cheaply is unbounded.
Component semantics follow RFC 4791 §9.9.
"""
from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta, timezone

import icalendar
import recurring_ical_events

FLOATING_SLACK = timedelta(hours=14)  # the widest UTC offsets in use are -12 and +14
MAX_EXPANDED = 1000  # beyond this many instances the end is left unbounded: a PUT stays fast

Bounds = tuple[int | None, int | None]


class BoundsError(ValueError):
    """The dates or recurrence rules of the data cannot be interpreted."""


def time_bounds(calendar: icalendar.Calendar, kind: str) -> Bounds:
    """[first start, last end] in UTC epoch seconds over every instance of `kind`; None = unbounded."""
    components = list(calendar.walk(kind))
    try:
        own = [component_bounds(c) for c in components]
        if not any("RRULE" in c or "RDATE" in c for c in components):
            return _envelope(own)
        instances = recurring_ical_events.of(calendar, components=[kind]).all()
        if any(_infinite(c) for c in components):
            # A rule's instances start at or after its DTSTART, an override's where it says: only an RDATE
            # can come first, and only then is the first instance looked for (an endless rule's is costly).
            first = next(iter(instances), None) if any("RDATE" in c for c in components) else None
            starts = [lo for lo, _ in own] + ([component_bounds(first)[0]] if first is not None else [])
            return (None if None in starts else min(starts)), None
        expanded = [component_bounds(c) for c in itertools.islice(instances, MAX_EXPANDED + 1)]
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError,
            recurring_ical_events.InvalidCalendar, recurring_ical_events.BadRuleStringFormat,
            recurring_ical_events.PeriodEndBeforeStart) as error:
        raise BoundsError(f"cannot read the dates: {error}") from None
    if not expanded:
        return _envelope(own)  # every instance excluded: keep it findable where it was written
    if len(expanded) > MAX_EXPANDED:
        return _envelope(expanded)[0], None
    return _envelope(expanded)


def component_bounds(component: icalendar.Component) -> Bounds:
    """One component's (or one instance's) interval, RFC 4791 §9.9 by component type."""
    if component.name == "VTODO":
        return _todo(component)
    start = _value(component, "DTSTART")
    if start is None:
        return None, None
    if component.name == "VEVENT":
        return _interval([start, component.end])  # icalendar applies DTEND / DURATION / all-day rules
    if isinstance(start, datetime):
        return _interval([start])
    return _interval([start, start + timedelta(days=1)])  # all-day VJOURNAL


def _todo(todo: icalendar.Component) -> Bounds:
    start, due = _value(todo, "DTSTART"), _value(todo, "DUE")
    duration = _value(todo, "DURATION")
    if start is not None:
        if duration is not None:
            return _interval([start, start + duration])
        return _interval([start] + ([due] if due is not None else []))
    if due is not None:
        return _interval([due])
    completed, created = _value(todo, "COMPLETED"), _value(todo, "CREATED")
    if completed is not None:
        return _interval([completed] + ([created] if created is not None else []))
    if created is not None:
        return _interval([created])[0], None  # created and still open: from then on
    return None, None  # no date at all: matches every range


def _interval(moments: list[date | datetime]) -> Bounds:
    slack = FLOATING_SLACK if any(_floating(m) for m in moments) else timedelta(0)
    utc = [_utc(m) for m in moments]
    return int((min(utc) - slack).timestamp()), int((max(utc) + slack).timestamp())


def _floating(moment: date | datetime) -> bool:
    return not isinstance(moment, datetime) or moment.tzinfo is None


def _utc(moment: date | datetime) -> datetime:
    if not isinstance(moment, datetime):
        return datetime(moment.year, moment.month, moment.day, tzinfo=timezone.utc)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _value(component: icalendar.Component, name: str):
    prop = component.get(name)
    if prop is None:
        return None
    if isinstance(prop, list):  # a repeated property: the first one counts
        prop = prop[0]
    if not hasattr(prop, "dt"):
        raise ValueError(f"{name} is not a date")
    return prop.dt


def _infinite(component: icalendar.Component) -> bool:
    rules = component.get("RRULE")
    rules = rules if isinstance(rules, list) else [rules] if rules is not None else []
    return any("COUNT" not in rule and "UNTIL" not in rule for rule in rules)


def _envelope(bounds: list[Bounds]) -> Bounds:
    if not bounds:
        return None, None
    starts, ends = [lo for lo, _ in bounds], [hi for _, hi in bounds]
    return (None if None in starts else min(starts)), (None if None in ends else max(ends))
