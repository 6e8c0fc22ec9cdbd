"""The instances of a stored event, written at PUT, so a time-range query is answered without parsing it.

A calendar shown a month at a time asks "which events overlap this month":
for a recurring event that costs a parse and a walk of its rule on every
query. So at PUT each event's instances over the years around now (all of
them when it has no instance outside those years) become rows of the store:
start and end in UTC epoch seconds, exactly as the query reads them
(query/instances.py on the parse query/parsing.py makes, the §9.9 end rules
of timerange.event_span). A floating or all-day time has no zone until a
query names one: its row keeps the wall-clock time read as UTC and a flag,
and `overlaps` reads it in the query's zone. An end given as a duration (or
none at all) is kept as one, so it follows the start in any zone.

An item with more than MAX_ROWS instances in those years (a daily rule) gets
no rows, so a PUT stays cheap; its queries read it the exact way. So do
queries outside the covered years. As the years move on, the DAV daemon
recomputes the rows (instancerefresh.py), and computes them for items stored
before they existed.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo

import icalendar

from .query.instances import UNREADABLE, instances
from .query.parsing import read_for_query
from .query.timerange import TimeRange, to_utc, value
from .timebounds import FLOATING_SLACK

YEARS_BEFORE, YEARS_AFTER = 1, 2  # the stored years: from last January 1st to the end of the second year ahead
MAX_ROWS = 250  # a weekly rule over those years fits; a daily one does not
# How far a query's range must lie inside the covered years: a floating time moves by up to the widest
# UTC offset in the query's zone, and a day more keeps every rounding away from the edge.
MARGIN = FLOATING_SLACK + timedelta(days=1)
START_FLOATING, END_FLOATING, END_FOLLOWS_START = 1, 2, 4


@dataclass(frozen=True)
class InstanceRows:
    """Every instance of the item's events within [covered_from, covered_until) (epoch seconds, None =
    unbounded; an empty span when the item has no rows): (start, end, flags) each, floating times read as
    UTC. `years_from`: where the stored years began when they were computed."""

    covered_from: int | None
    covered_until: int | None
    rows: tuple[tuple[int, int, int], ...]
    years_from: int


def covered_years(now: datetime) -> tuple[datetime, datetime]:
    """The span whose instances are stored: whole years around `now`."""
    return (datetime(now.year - YEARS_BEFORE, 1, 1, tzinfo=timezone.utc),
            datetime(now.year + YEARS_AFTER + 1, 1, 1, tzinfo=timezone.utc))


def instance_rows(raw: bytes, first_start: int | None, last_end: int | None, now: datetime | None = None,
                  parsed: icalendar.Calendar | None = None) -> InstanceRows:
    """The rows of the VEVENTs of the calendar object `raw`, validated, whose index bounds are
    [first_start, last_end]; none, covering nothing, when it has too many instances or they cannot be read.
    `parsed`: a plain parse of `raw` the caller has, used when it is what queries read (no VTIMEZONE)."""
    years_from, years_until = covered_years(now or datetime.now(timezone.utc))
    lo, hi = years_from, years_until
    # Bounds are the index's promise that no instance lies outside them (time_bounds): a set with both
    # bounds known is read whole, and within the span read every instance has a row. A day's room absorbs a
    # client's VTIMEZONE (which the bounds read) differing from the system's zone of that name (which the
    # rows read).
    room = timedelta(days=1)
    if first_start is not None and last_end is not None:
        lo, hi = min(lo, _utc(first_start) - room), max(hi, _utc(last_end) + room)
    covered_from = None if first_start is not None and first_start >= (lo + room).timestamp() \
        else int(lo.timestamp())
    covered_until = None if last_end is not None and last_end <= (hi - room).timestamp() else int(hi.timestamp())
    nothing = InstanceRows(int(lo.timestamp()), int(lo.timestamp()), (), int(years_from.timestamp()))
    rows = []
    try:
        # What queries read, so rows answer as the exact reading would.
        calendar = parsed if parsed is not None and b"BEGIN:VTIMEZONE" not in raw else read_for_query(raw)
        for instance in instances(calendar, "VEVENT", TimeRange(lo, hi), None, limit=None):
            row = _row(instance)
            if row is not None:
                rows.append(row)
            if len(rows) > MAX_ROWS:
                return nothing
    except UNREADABLE:
        return nothing
    return InstanceRows(covered_from, covered_until, tuple(rows), int(years_from.timestamp()))


def _row(instance: icalendar.Component) -> tuple[int, int, int] | None:
    start = value(instance, "DTSTART")
    if start is None or not hasattr(start, "year"):
        return None  # no instance by §9.9: it never overlaps
    flags = START_FLOATING if _floating(start) else 0
    lo = _epoch(start)
    end, duration = value(instance, "DTEND"), value(instance, "DURATION")
    if end is not None:
        flags |= END_FLOATING if _floating(end) else 0
        return lo, _epoch(end), flags
    if isinstance(duration, timedelta):
        length = int(duration.total_seconds())
    else:
        length = 0 if isinstance(start, datetime) else int(timedelta(days=1).total_seconds())
    return lo, lo + length, flags | END_FOLLOWS_START


def overlaps(row: tuple[int, int, int], rng: TimeRange, tz: tzinfo | None) -> bool:
    """RFC 4791 §9.9 for the instance a row stands for, as timerange.component_overlaps decides a VEVENT."""
    start, end, flags = row
    lo = _moment(start, flags & START_FLOATING, tz)
    if flags & END_FOLLOWS_START:
        hi = lo + timedelta(seconds=end - start)
    else:
        hi = _moment(end, flags & END_FLOATING, tz)
    if hi <= lo:  # an instant: start <= DTSTART < end
        return rng.holds(lo)
    return rng.overlaps(lo, hi)


def covers(covered_from: int | None, covered_until: int | None, rng: TimeRange) -> bool:
    """Whether every instance that can overlap `rng`, in any zone, has a row."""
    return ((covered_from is None or (rng.start is not None and rng.start - MARGIN >= _utc(covered_from)))
            and (covered_until is None or (rng.end is not None and rng.end + MARGIN <= _utc(covered_until))))


def row_span(rng: TimeRange) -> tuple[int | None, int | None]:
    """The (start, end) in epoch seconds the rows that can overlap `rng` in any zone lie around."""
    return (None if rng.start is None else int((rng.start - MARGIN).timestamp()),
            None if rng.end is None else int((rng.end + MARGIN).timestamp()))


def _moment(seconds: int, floating: int, tz: tzinfo | None) -> datetime:
    moment = _utc(seconds)
    return to_utc(moment.replace(tzinfo=None), tz) if floating else moment


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


def _floating(moment: date | datetime) -> bool:
    return not isinstance(moment, datetime) or moment.tzinfo is None


def _epoch(moment: date | datetime) -> int:
    return int(to_utc(moment, None).timestamp())
