"""The instances of a calendar object's recurrence set that can overlap a time range.

Non-recurring components are their own single instance. Recurring ones are
read lazily, in time order, by recurring-ical-events, window after window: the
first about one period of the rule (or the whole range when it is that short),
then doubling while they hold few instances. Walking starts at the range's
start (or, for a range with no start, at the set's earliest moment), widened
by a day and the widest UTC offsets so floating and all-day instances are
never missed, with the rule moved ahead to just before it (skipahead.py), and
stops at the range's end. A filter asks `any()` of them, so a start-only range
over an endless rule costs the first instance at or after its start, and an
end-only range the first instance of the set: never the whole rule. The exact
§9.9 test (timerange.component_overlaps) decides each instance.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Callable, Iterator

import icalendar
import recurring_ical_events

from ..errors import CALDAV, Precondition
from .parsing import PARSES_KEPT
from .skipahead import skip_ahead
from .timerange import TimeRange, component_overlaps, to_utc

WIDEN = timedelta(days=1, hours=14)
# What reading dates or recurrence rules of stored data can raise (recurring-ical-events' own errors
# are ValueErrors): a query treats such an object as not matching instead of failing.
UNREADABLE = (ValueError, TypeError, KeyError, AttributeError, OverflowError)
EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9999, 1, 1, tzinfo=timezone.utc)
FIRST_WINDOW = timedelta(days=1)
MAX_FIRST_WINDOW = timedelta(days=4 * 366)
BATCH = 64  # instances in a window past which it stops growing
ONE_CALL = 2  # a range up to this many periods of the rule is read in one window
PERIODS = {"YEARLY": timedelta(days=366), "MONTHLY": timedelta(days=31), "WEEKLY": timedelta(days=7)}
# Instances a filter reads of one object before giving up: reached only when instance after instance
# overlaps the range but a nested filter that looks at their dates refuses it (a plain time-range stops
# at the first instance in range; other nested filters at the first one past the overrides).
WALK_LIMIT = 1000
# Instances one object may have in a bounded range where all are needed (expand, free-busy); beyond it the
# request is refused with CALDAV:max-instances (RFC 4791 §5.2.8) rather than expanding, say, 500 years
# of a daily rule. Advertised on calendar collections.
MAX_INSTANCES = 5000


def instances(calendar: icalendar.Component, name: str, rng: TimeRange | None, tz: tzinfo | None, *,
              tail_decides: bool = False, limit: int | None = WALK_LIMIT) -> Iterator[icalendar.Component]:
    """Components named `name` that overlap `rng` (all of them, unexpanded, when rng is None), lazily.

    `tail_decides`: the caller tests nothing that differs between the instances the rule generates
    (their dates), so once past every override and RDATE, the first instance in range stands for all
    the ones after it and the walk ends there. `limit`: instances read before giving up otherwise."""
    components = [c for c in calendar.subcomponents if c.name == name]
    if rng is None:
        yield from components
        return
    if not any("RRULE" in c or "RDATE" in c for c in components):
        yield from (c for c in components if component_overlaps(c, rng, tz))
        return
    lo = (rng.start or min(_moments(components, tz), default=EARLIEST)) - WIDEN
    hi = LATEST if rng.end is None else rng.end + WIDEN
    settled = max(_moments(components, tz, overrides_only=True), default=EARLIEST) + WIDEN
    view, moved = skip_ahead(calendar, name, lo, tz) if rng.start is not None else (calendar, None)
    if limit is None:
        query = recurring_ical_events.of(view, components=[name])
    else:
        query = READERS.get(calendar, (name, moved), lambda: recurring_ical_events.of(view, components=[name]))
    source = _sources(components, tz)
    window = _first_window(components)
    if hi - lo <= window * ONE_CALL:  # a range short for the rule: one window, one call
        window = hi - lo
    for walked, instance in enumerate(_walk(query, lo, hi, window), start=1):
        _keep_own_end(instance, source(instance))
        overlaps = component_overlaps(instance, rng, tz)
        if overlaps:
            yield instance
        if limit is not None and walked >= limit:
            return
        if tail_decides and overlaps and _start_key(instance) > settled:
            return


class Readers:
    """The recurrence readers (recurring-ical-events queries, with dateutil's cache of the instances
    already computed) of recently filtered parses, so the next query of the same object reuses them.

    Keyed by the parse's identity: the parse is kept alive with its reader, so the key cannot be reused
    by another object while the entry lives. Requests run on several threads, hence the lock."""

    def __init__(self, size: int):
        self.size, self.entries, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, calendar: icalendar.Component, key: tuple, make: Callable[[], object]):
        full = (id(calendar), *key)
        with self.lock:
            found = self.entries.get(full)
            if found is not None and found[0] is calendar:
                self.entries.move_to_end(full)
                return found[1]
        reader = make()
        with self.lock:
            self.entries[full] = (calendar, reader)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return reader


READERS = Readers(PARSES_KEPT)


def all_instances(calendar: icalendar.Component, name: str, rng: TimeRange,
                  tz: tzinfo | None) -> list[icalendar.Component]:
    """Every instance overlapping a bounded `rng`, for answers that need them all; the precondition
    CALDAV:max-instances past MAX_INSTANCES (a narrower range is the client's way out)."""
    found = []
    for instance in instances(calendar, name, rng, tz, limit=None):
        found.append(instance)
        if len(found) > MAX_INSTANCES:
            raise Precondition(CALDAV, "max-instances",
                               f"more than {MAX_INSTANCES} instances of one {name} in the range: ask for a "
                               "narrower one")
    return found


def _walk(query, lo: datetime, hi: datetime, window: timedelta) -> Iterator[icalendar.Component]:
    """Instances touching [lo, hi), window by window in time order, each once."""
    seen: set[tuple] = set()
    while lo < hi:
        stop = lo + window if hi - lo > window else hi
        found = sorted(query.between(lo, stop), key=_start_key)
        for instance in found:
            key = _identity(instance)
            if key not in seen:
                seen.add(key)
                yield instance
        # Sparse windows double, so a rule that has ended or an empty stretch is crossed in a few steps;
        # busy ones keep their size, so one window never builds thousands of instances at once.
        lo, window = stop, window * 2 if len(found) < BATCH else window


def _sources(components: list[icalendar.Component], tz: tzinfo | None):
    """Which component an instance was made from: the override with its RECURRENCE-ID, else the master."""
    masters = [c for c in components if "RECURRENCE-ID" not in c]
    overrides = {to_utc(c["RECURRENCE-ID"].dt, tz): c for c in components
                 if "RECURRENCE-ID" in c and hasattr(getattr(c["RECURRENCE-ID"], "dt", None), "year")}

    def source(instance: icalendar.Component) -> icalendar.Component | None:
        recurrence_id = getattr(instance.get("RECURRENCE-ID"), "dt", None)
        if recurrence_id is not None and overrides:
            found = overrides.get(to_utc(recurrence_id, tz))
            if found is not None:
                return found
        return masters[0] if masters else None
    return source


def _keep_own_end(instance: icalendar.Component, source: icalendar.Component | None) -> None:
    """recurring-ical-events gives every instance a DTEND or DUE; §9.9 reads a to-do's DURATION, or its
    lack of any end, by other rows of its table, so an instance keeps the kind of end its source had."""
    end = "DUE" if instance.name == "VTODO" else "DTEND"
    if source is None or end in source or end not in instance:
        return
    instance.pop(end)
    if "DURATION" in source:
        instance["DURATION"] = source["DURATION"]


def _first_window(components: list[icalendar.Component]) -> timedelta:
    """About one period of the rules (FREQ × INTERVAL): the first window then holds an instance or two."""
    window = FIRST_WINDOW
    for component in components:
        rules = component.get("RRULE")
        for rule in rules if isinstance(rules, list) else [rules] if rules is not None else []:
            try:
                period = PERIODS.get(str(rule.get("FREQ", [""])[0]).upper(), FIRST_WINDOW)
                window = max(window, period * int(rule.get("INTERVAL", [1])[0] or 1))
            except (ValueError, TypeError):
                continue
    return min(window, MAX_FIRST_WINDOW)


def _identity(instance: icalendar.Component) -> tuple:
    """An instance is known by its RECURRENCE-ID (its place in the set), or its start when it has none."""
    return tuple(getattr(prop, "dt", None) for prop in (instance.get("RECURRENCE-ID"), instance.get("DTSTART")))


def _start_key(instance: icalendar.Component) -> datetime:
    start = getattr(instance.get("DTSTART"), "dt", None)
    return EARLIEST if start is None else to_utc(start, None)


def _moments(components: list[icalendar.Component], tz: tzinfo | None, overrides_only: bool = False):
    """Every DTSTART, DUE, RECURRENCE-ID and RDATE of the components (only the overrides' and the RDATEs
    when `overrides_only`), in UTC: where the set's first instance or its last irregular one can be."""
    for component in components:
        override = "RECURRENCE-ID" in component
        names = ("DTSTART", "DUE", "RECURRENCE-ID") if override or not overrides_only else ()
        for name in (*names, "RDATE"):
            props = component.get(name)
            for prop in props if isinstance(props, list) else [props]:
                for value in getattr(prop, "dts", None) or [prop]:
                    moment = getattr(value, "dt", None)
                    if isinstance(moment, tuple):  # an RDATE period
                        moment = moment[0]
                    if moment is not None and hasattr(moment, "year"):
                        yield to_utc(moment, tz)
