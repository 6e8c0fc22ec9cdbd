"""RFC 5545 §3.3.10's ranges for the parts of an RRULE, checked when an object is stored.

icalendar reads a part's digits without asking whether they can name a month or a day, and dateutil
then searches every year up to 9999 for a thirteenth month: a rule no date can match must be refused
with valid-calendar-data at PUT, not stored as an event that never happens.
"""
from __future__ import annotations

import icalendar

from .errors import invalid_calendar

FREQUENCIES = frozenset({"SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
# part: (lowest, highest, whether the value may count from the end: -highest..-1)
RANGES = {
    "BYSECOND": (0, 60, False), "BYMINUTE": (0, 59, False), "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True), "BYYEARDAY": (1, 366, True), "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False), "BYSETPOS": (1, 366, True),
}


def check_rules(calendar: icalendar.Component, kind: str) -> None:
    """Precondition valid-calendar-data naming the first RRULE part of a `kind` that is out of range."""
    for component in calendar.walk(kind):
        rules = component.get("RRULE")
        for rule in rules if isinstance(rules, list) else [rules] if rules is not None else []:
            if isinstance(rule, icalendar.vRecur):
                _check(rule)


def _check(rule: icalendar.vRecur) -> None:
    freq = [str(value).upper() for value in rule.get("FREQ", [])]
    if len(freq) != 1 or freq[0] not in FREQUENCIES:
        raise invalid_calendar(f"RRULE needs one FREQ of {', '.join(sorted(FREQUENCIES))}")
    if "COUNT" in rule and "UNTIL" in rule:
        raise invalid_calendar("RRULE has both COUNT and UNTIL (RFC 5545 allows one)")
    for part in ("COUNT", "INTERVAL"):
        if any(_number(part, value) < 1 for value in rule.get(part, [])):
            raise invalid_calendar(f"RRULE {part} must be a positive whole number")
    for part, (low, high, from_end) in RANGES.items():
        for value in rule.get(part, []):
            number = _number(part, value)
            if not (low <= number <= high or (from_end and -high <= number <= -1)):
                allowed = f"{low}..{high}" + (f" or -{high}..-1" if from_end else "")
                raise invalid_calendar(f"RRULE {part}={number} is out of range ({allowed})")
    for day in rule.get("BYDAY", []):
        ordinal = getattr(day, "relative", None)
        if ordinal is not None and not (1 <= abs(ordinal) <= 53):
            raise invalid_calendar(f"RRULE BYDAY={day}: a weekday's number must be 1..53 or -53..-1")


def _number(part: str, value) -> int:
    try:
        return int(str(value).removesuffix("L"))  # "5L": a leap month of RFC 7529's calendars
    except (TypeError, ValueError):
        raise invalid_calendar(f"RRULE {part}={value} is not a whole number") from None
