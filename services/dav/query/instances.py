"""The instances of a calendar object's recurrence set that can overlap a time range.

Non-recurring components are their own single instance. Recurring ones are
expanded by recurring-ical-events over the range widened by a day and the
widest UTC offsets, so floating and all-day instances are never missed; the
exact §9.9 test (timerange.component_overlaps) then decides.
"""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone, tzinfo

import icalendar
import recurring_ical_events

from .timerange import TimeRange, component_overlaps

WIDEN = timedelta(days=1, hours=14)
# What reading dates or recurrence rules of stored data can raise (recurring-ical-events' own errors
# are ValueErrors): a query treats such an object as not matching instead of failing.
UNREADABLE = (ValueError, TypeError, KeyError, AttributeError, OverflowError)
EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
OPEN_ENDED_LIMIT = 10000  # instances read from an infinite rule when the range has no end


def is_recurring(calendar: icalendar.Component, name: str) -> bool:
    return any("RRULE" in c or "RDATE" in c for c in calendar.walk(name))


def instances(calendar: icalendar.Component, name: str, rng: TimeRange | None,
              tz: tzinfo | None) -> list[icalendar.Component]:
    """Components named `name` that overlap `rng` (all of them, unexpanded, when rng is None)."""
    components = [c for c in calendar.subcomponents if c.name == name]
    if rng is None:
        return components
    if not any("RRULE" in c or "RDATE" in c for c in components):
        return [c for c in components if component_overlaps(c, rng, tz)]
    query = recurring_ical_events.of(calendar, components=[name])
    if rng.end is None:
        found = itertools.islice(query.after((rng.start or EARLIEST) - WIDEN), OPEN_ENDED_LIMIT)
    else:
        found = query.between((rng.start or EARLIEST) - WIDEN, rng.end + WIDEN)
    return [c for c in found if component_overlaps(c, rng, tz)]
