"""RFC 4791 §9.9: when a component, an alarm or a date property overlaps a time range.

Every moment is compared as an aware UTC datetime. Floating times and DATE
values have no zone of their own; they are read in `tz`, the calendar's (or the
request's) timezone, and in UTC when there is none, as §9.9 asks.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo

import icalendar

from ..errors import CALDAV, Precondition

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class TimeRange:
    """A CALDAV:time-range: aware UTC datetimes, None for an open side."""

    start: datetime | None
    end: datetime | None

    def overlaps(self, lo: datetime, hi: datetime) -> bool:
        """The usual test for a span of positive length: start < hi and end > lo."""
        return (self.start is None or self.start < hi) and (self.end is None or self.end > lo)

    def holds(self, moment: datetime) -> bool:
        """A moment inside the range: start <= moment < end."""
        return (self.start is None or self.start <= moment) and (self.end is None or self.end > moment)


def parse_time_range(node, namespace: str = CALDAV) -> TimeRange:
    """The range a time-range element names; valid-filter unless its bounds are UTC and in order."""
    start, end = node.get("start"), node.get("end")
    if start is None and end is None:
        raise Precondition(namespace, "valid-filter", "a time-range needs start or end")
    parsed = TimeRange(_utc_attribute(start, namespace), _utc_attribute(end, namespace))
    if parsed.start is not None and parsed.end is not None and parsed.start >= parsed.end:
        raise Precondition(namespace, "valid-filter", f"time-range start {start} is not before end {end}")
    return parsed


def _utc_attribute(text: str | None, namespace: str) -> datetime | None:
    if text is None:
        return None
    try:
        if not text.endswith("Z") or len(text) != 16:
            raise ValueError
        return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise Precondition(namespace, "valid-filter",
                           f"time-range bounds must be UTC date-times like 20250101T000000Z, not {text!r}") from None


def to_utc(moment: date | datetime, tz: tzinfo | None) -> datetime:
    """An aware UTC datetime; floating times and dates are read in `tz` (UTC when None)."""
    zone = tz or timezone.utc
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone) if zone is timezone.utc else _localize(moment, zone)
    return moment.astimezone(timezone.utc)


def _localize(moment: datetime, zone: tzinfo) -> datetime:
    localize = getattr(zone, "localize", None)  # pytz zones need localize(), not replace()
    return localize(moment) if localize else moment.replace(tzinfo=zone)


def value(component: icalendar.Component, name: str):
    """The Python value of a date, date-time or duration property, None if absent or unreadable."""
    prop = component.get(name)
    if isinstance(prop, list):
        prop = prop[0] if prop else None
    return getattr(prop, "dt", None)


def component_overlaps(component: icalendar.Component, rng: TimeRange, tz: tzinfo | None) -> bool:
    """Whether one component (one instance of a recurrence set) overlaps `rng`, by its §9.9 table."""
    name = component.name
    if name == "VEVENT":
        return _event(component, rng, tz)
    if name == "VTODO":
        return _todo(component, rng, tz)
    if name == "VJOURNAL":
        start = value(component, "DTSTART")
        if start is None:
            return False
        if isinstance(start, datetime):
            return rng.holds(to_utc(start, tz))
        return rng.overlaps(to_utc(start, tz), to_utc(start, tz) + ONE_DAY)
    if name == "VFREEBUSY":
        return _freebusy(component, rng, tz)
    return False


def event_span(event: icalendar.Component, tz: tzinfo | None) -> tuple[datetime, datetime] | None:
    """A VEVENT's (start, end) in UTC by RFC 4791 §9.9 (no DTEND or DURATION: an instant, or the whole
    day of an all-day DTSTART); None without a DTSTART."""
    start = value(event, "DTSTART")
    if start is None:
        return None
    lo = to_utc(start, tz)
    end, duration = value(event, "DTEND"), value(event, "DURATION")
    if end is not None:
        return lo, to_utc(end, tz)
    if isinstance(duration, timedelta):
        return lo, lo + duration
    return lo, lo if isinstance(start, datetime) else lo + ONE_DAY


def _event(event: icalendar.Component, rng: TimeRange, tz: tzinfo | None) -> bool:
    span = event_span(event, tz)
    if span is None:
        return False
    lo, hi = span
    if hi <= lo:  # zero duration (DTEND = DTSTART or DURATION PT0S): an instant, start <= DTSTART < end
        return rng.holds(lo)
    return rng.overlaps(lo, hi)


def _todo(todo: icalendar.Component, rng: TimeRange, tz: tzinfo | None) -> bool:
    start, due = value(todo, "DTSTART"), value(todo, "DUE")
    duration = value(todo, "DURATION")
    completed, created = value(todo, "COMPLETED"), value(todo, "CREATED")
    lo_ok = (lambda t: rng.start is None or rng.start <= t)
    lo_lt = (lambda t: rng.start is None or rng.start < t)
    hi_gt = (lambda t: rng.end is None or rng.end > t)
    hi_ge = (lambda t: rng.end is None or rng.end >= t)
    if start is not None:
        s = to_utc(start, tz)
        if isinstance(duration, timedelta):
            e = s + duration
            return lo_ok(e) and (hi_gt(s) or hi_ge(e))
        if due is not None:
            d = to_utc(due, tz)
            return (lo_lt(d) or lo_ok(s)) and (hi_gt(s) or hi_ge(d))
        return lo_ok(s) and hi_gt(s)
    if due is not None:
        d = to_utc(due, tz)
        return lo_lt(d) and hi_ge(d)
    if completed is not None and created is not None:
        c, m = to_utc(created, tz), to_utc(completed, tz)
        return (lo_ok(c) or lo_ok(m)) and (hi_ge(c) or hi_ge(m))
    if completed is not None:
        m = to_utc(completed, tz)
        return lo_ok(m) and hi_ge(m)
    if created is not None:
        return hi_gt(to_utc(created, tz))
    return True


def _freebusy(component: icalendar.Component, rng: TimeRange, tz: tzinfo | None) -> bool:
    periods = [p for p in periods_of(component, tz)]
    if periods:
        return any(rng.overlaps(lo, hi) for lo, hi, _ in periods)
    start, end = value(component, "DTSTART"), value(component, "DTEND")
    if start is None or end is None:
        return False
    return (rng.start is None or rng.start <= to_utc(end, tz)) and (rng.end is None or rng.end > to_utc(start, tz))


def periods_of(component: icalendar.Component, tz: tzinfo | None):
    """(start, end, FBTYPE) of every FREEBUSY period of a VFREEBUSY, in UTC."""
    props = component.get("FREEBUSY", [])
    for prop in props if isinstance(props, list) else [props]:
        fbtype = str(prop.params.get("FBTYPE", "BUSY")).upper()
        for period in prop.dts if hasattr(prop, "dts") else [prop]:
            lo, hi = period.dt if hasattr(period, "dt") else period
            lo = to_utc(lo, tz)
            yield lo, (lo + hi if isinstance(hi, timedelta) else to_utc(hi, tz)), fbtype


def alarm_overlaps(alarm: icalendar.Component, parent: icalendar.Component, rng: TimeRange,
                   tz: tzinfo | None) -> bool:
    """Whether any trigger of the alarm (repetitions included) falls in `rng` (§9.9 VALARM)."""
    return any(rng.holds(moment) for moment in alarm_triggers(alarm, parent, tz))


def alarm_triggers(alarm: icalendar.Component, parent: icalendar.Component, tz: tzinfo | None) -> list[datetime]:
    trigger = alarm.get("TRIGGER")
    if trigger is None or not hasattr(trigger, "dt"):
        return []
    offset = trigger.dt
    if isinstance(offset, timedelta):
        related_end = str(trigger.params.get("RELATED", "START")).upper() == "END"
        anchor = _anchor(parent, related_end, tz)
        if anchor is None:
            return []
        first = anchor + offset
    else:
        first = to_utc(offset, tz)
    repeat, every = alarm.get("REPEAT"), value(alarm, "DURATION")
    moments = [first]
    if repeat is not None and isinstance(every, timedelta):
        moments += [first + every * n for n in range(1, int(repeat) + 1)]
    return moments


def _anchor(parent: icalendar.Component, related_end: bool, tz: tzinfo | None) -> datetime | None:
    start = value(parent, "DTSTART")
    if not related_end:
        return None if start is None else to_utc(start, tz)
    end = value(parent, "DTEND") or value(parent, "DUE")
    if end is not None:
        return to_utc(end, tz)
    duration = value(parent, "DURATION")
    if start is not None and isinstance(duration, timedelta):
        return to_utc(start, tz) + duration
    return None if start is None else to_utc(start, tz)


def timezone_of(vcalendar_text: str | bytes | None) -> tzinfo | None:
    """The tzinfo of the first VTIMEZONE in a CALDAV:timezone / calendar-timezone value; None if unusable."""
    if not vcalendar_text:
        return None
    try:
        calendar = icalendar.Calendar.from_ical(vcalendar_text)
        for zone in calendar.walk("VTIMEZONE"):
            return zone.to_tz()
    except (ValueError, KeyError, AttributeError, TypeError):
        return None
    return None
