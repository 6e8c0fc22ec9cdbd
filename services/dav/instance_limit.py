"""CALDAV:max-instances for what is stored (RFC 4791 §5.3.2.1): no calendar object generates more
recurrence instances than MAX_INSTANCES, the limit expand and free-busy keep and calendars advertise.

An endless rule generates infinitely many, so, as CalendarServer does, instances are counted within a
horizon: two years (CalendarServer counts the year either side of today), or two whole periods of the
set's slowest rule when that is longer. The horizon starts at the set's first instance rather than at
today, so counting reads at most MAX_INSTANCES + 1 instances from dateutil however old the rule is, and an
object accepted once is accepted on every later COPY, MOVE, restore or scheduling delivery. A finite set
shorter than the horizon is counted whole. A yearly birthday (2 instances), a daily standup (731) or a
daily rule for twenty years (731) are accepted; a rule repeating hourly (17,544) or a COUNT of 6,000
instances within two years are not. Rules that repeat at most daily without BYHOUR, BYMINUTE or BYSECOND
make at most one instance a day, so an ordinary event is judged without walking its rule at all.
"""
from __future__ import annotations

import heapq
from datetime import date, datetime, time, timedelta, timezone

import icalendar
from dateutil.rrule import rrulestr

from .errors import CALDAV, Precondition
from .query.instances import MAX_INSTANCES, PERIODS, UNREADABLE

HORIZON = timedelta(days=731)
AT_MOST_DAILY = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
FINER_THAN_A_DAY = ("BYHOUR", "BYMINUTE", "BYSECOND")


def check_instance_count(calendar: icalendar.Component, kind: str) -> None:
    """Precondition CALDAV:max-instances when a recurring `kind` of `calendar` generates more than
    MAX_INSTANCES instances within its horizon."""
    for master in calendar.subcomponents:
        if master.name != kind or "RECURRENCE-ID" in master or not ("RRULE" in master or "RDATE" in master):
            continue
        try:
            horizon = max([HORIZON, *(2 * _period(rule) for rule in _list(master.get("RRULE")))])
            counted = _count(master, horizon)
        except UNREADABLE:
            continue  # dates or rules nobody can read: time_bounds refuses them with valid-calendar-data
        if counted > MAX_INSTANCES:
            raise Precondition(CALDAV, "max-instances",
                               f"this {kind} repeats more than {MAX_INSTANCES} times within "
                               f"{round(horizon.days / 365.25)} years of its first instance (the limit, "
                               "CALDAV:max-instances): repeat it less often or split it")


def _count(master: icalendar.Component, horizon: timedelta) -> int:
    """Instances of the master's set within `horizon` of its first, counted up to MAX_INSTANCES + 1."""
    start = _moment(master.get("DTSTART"))
    if start is None:
        return 0  # a rule needs DTSTART: the store reads such an object as having no instances
    rules = [(rule, _rule(rule, start)) for rule in _list(master.get("RRULE"))]
    rdates = sorted(_comparable(moment, start) for moment in _values(master.get("RDATE")))
    exdates = {_comparable(moment, start) for moment in _values(master.get("EXDATE"))}
    if 1 + len(rdates) + sum(_at_most(rule, horizon) for rule, _ in rules) <= MAX_INSTANCES:
        return 0  # within the limit whatever the rule does: no need to walk it
    end = min([start, *rdates]) + horizon
    counted, previous = 0, None
    for moment in heapq.merge([start], rdates, *(parsed for _, parsed in rules)):
        if moment >= end or counted > MAX_INSTANCES:
            break
        if moment != previous and moment not in exdates:
            counted += 1
        previous = moment
    return counted


def _rule(rule: icalendar.vRecur, start: datetime):
    """The dateutil rule, its UNTIL made comparable with DTSTART (clients mix UTC, local and dates)."""
    parts = {name: values for name, values in rule.items() if name != "UNTIL"}
    parsed = rrulestr(icalendar.vRecur(parts).to_ical().decode(), dtstart=start)
    until = rule.get("UNTIL")
    if until:
        parsed = parsed.replace(until=_comparable(until[0], start, end_of_day=True))
    return parsed


def _at_most(rule: icalendar.vRecur, horizon: timedelta) -> float:
    """An upper bound of the rule's instances within the horizon, known without walking it."""
    count = rule.get("COUNT")
    if count:
        return int(count[0])
    freq = str(rule.get("FREQ", [""])[0]).upper()
    if freq in AT_MOST_DAILY and not any(part in rule for part in FINER_THAN_A_DAY):
        return horizon.days + 1  # the time of day is DTSTART's: one instance a day at most
    return float("inf")


def _period(rule: icalendar.vRecur) -> timedelta:
    freq = str(rule.get("FREQ", [""])[0]).upper()
    return PERIODS.get(freq, timedelta(0)) * int(rule.get("INTERVAL", [1])[0] or 1)


def _moment(prop) -> datetime | None:
    value = getattr(prop, "dt", None)
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    return None


def _comparable(value, start: datetime, end_of_day: bool = False) -> datetime:
    """`value` (a date, a floating or zoned date-time, an RDATE period) as DTSTART's kind of datetime."""
    if isinstance(value, tuple):  # an RDATE period: it starts an instance
        value = value[0]
    if not isinstance(value, datetime):
        value = datetime.combine(value, time.max if end_of_day else time())
    if start.tzinfo is None and value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    if start.tzinfo is not None and value.tzinfo is None:
        return value.replace(tzinfo=start.tzinfo)
    return value


def _values(props) -> list:
    return [value.dt for prop in _list(props) for value in getattr(prop, "dts", None) or [prop]]


def _list(props) -> list:
    return props if isinstance(props, list) else [] if props is None else [props]
