"""The `when` field of newsyslog.conf(5): intervals and scheduled instants.

Three forms, as in FreeBSD, plus their combination:

    24          an interval in hours (fractions allowed: 0.5 is 30 minutes)
    @T00        restricted ISO 8601 `[[[[cc]yy]mm]dd][T[hh[mm[ss]]]]`: date fields
                left out repeat (every day, month or year), time fields left out are 0
    $W0D23      day/week/month: `$Dhh`, `$Ww[Dhh]`, `$Mdd[Dhh]` (dd may be L, the
                month's last day); the hour defaults to 0
    24@T00      both: the scheduled instant has passed AND the interval has elapsed

Everything here is pure: callers pass `now` (a naive local datetime, the clock
newsyslog reads) and the time of the last rotation, so tests need no clock tricks.
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_INTERVAL = re.compile(r"\d+(?:\.\d+)?")
_ISO = re.compile(r"@(?P<date>\d*)(?:T(?P<time>\d*))?")
_DWM = re.compile(
    r"\$(?:D(?P<dhour>\d{1,2})"
    r"|W(?P<wday>\d)(?:D(?P<whour>\d{1,2}))?"
    r"|M(?P<mday>\d{1,2}|[Ll])(?:D(?P<mhour>\d{1,2}))?)"
)
# How far back to look for a matching day: a 29 February can be 8 years away.
_LOOKBACK_DAYS = 8 * 366 + 1


class WhenError(ValueError):
    """The `when` field cannot be read; the message says what was expected."""


@dataclass(frozen=True)
class Schedule:
    """Which instants match. None means "any" for date fields; `mday` -1 is the last day."""

    year: int | None = None
    month: int | None = None
    mday: int | None = None
    wday: int | None = None   # 0 = Sunday, as in newsyslog.conf(5)
    hour: int = 0
    minute: int = 0
    second: int = 0

    def matches_day(self, day: datetime) -> bool:
        if self.year is not None and day.year != self.year:
            return False
        if self.month is not None and day.month != self.month:
            return False
        if self.mday == -1:
            if day.day != calendar.monthrange(day.year, day.month)[1]:
                return False
        elif self.mday is not None and day.day != self.mday:
            return False
        # datetime.weekday() counts from Monday; newsyslog counts from Sunday.
        return self.wday is None or (day.weekday() + 1) % 7 == self.wday

    def last_instant(self, now: datetime) -> datetime | None:
        """The latest scheduled instant at or before `now`, or None if there is none."""
        if self.year is not None:   # a full date: one instant, ever
            instant = datetime(self.year, self.month, self.mday, self.hour, self.minute, self.second)
            return instant if instant <= now else None
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        for _ in range(_LOOKBACK_DAYS):
            if self.matches_day(day):
                instant = day.replace(hour=self.hour, minute=self.minute, second=self.second)
                if instant <= now:
                    return instant
            day -= timedelta(days=1)
        return None


@dataclass(frozen=True)
class When:
    """A parsed `when` field: an interval, a schedule, or both."""

    raw: str
    interval_hours: float | None = None
    schedule: Schedule | None = None

    def is_due(self, now: datetime, last_rotated: datetime | None) -> bool:
        """Whether to rotate now, given when the log was last rotated (None: never).

        With a schedule: due when the last rotation happened before the most recent
        scheduled instant. With an interval: due when at least that long has passed
        since the last rotation. Never rotated counts as "long ago".
        """
        if self.schedule is not None:
            instant = self.schedule.last_instant(now)
            if instant is None or (last_rotated is not None and last_rotated >= instant):
                return False
        if self.interval_hours is not None and last_rotated is not None:
            if now - last_rotated < timedelta(hours=self.interval_hours):
                return False
        return True


def parse_when(raw: str) -> When:
    """Read a `when` field (not `*`, which means "no time condition")."""
    head, sep, tail = raw.partition("@") if "@" in raw else raw.partition("$")
    spec = sep + tail
    interval = None
    if head:
        if not _INTERVAL.fullmatch(head):
            raise WhenError(f"{raw!r}: expected hours, @ISO-8601 time or $ day/week/month time")
        interval = float(head)
        if interval <= 0:
            raise WhenError(f"{raw!r}: the interval must be more than 0 hours")
    schedule = None
    if sep == "@":
        schedule = _parse_iso(raw, spec)
    elif sep == "$":
        schedule = _parse_dwm(raw, spec)
    return When(raw=raw, interval_hours=interval, schedule=schedule)


def _parse_iso(raw: str, spec: str) -> Schedule:
    m = _ISO.fullmatch(spec)
    if not m:
        raise WhenError(f"{raw!r}: expected @[[[[cc]yy]mm]dd][T[hh[mm[ss]]]]")
    date, time_ = m["date"], m["time"] or ""
    if len(date) % 2 or len(date) > 8 or len(time_) % 2 or len(time_) > 6:
        raise WhenError(f"{raw!r}: date and time fields come in pairs of digits")
    pairs = [int(date[i:i + 2]) for i in range(0, len(date), 2)]
    fields: dict[str, int] = {}
    if pairs:
        fields["mday"] = pairs[-1]
    if len(pairs) >= 2:
        fields["month"] = pairs[-2]
    if len(pairs) == 3:   # yy: the POSIX strptime pivot, 69-99 are 1900s
        fields["year"] = pairs[0] + (1900 if pairs[0] >= 69 else 2000)
    elif len(pairs) == 4:
        fields["year"] = pairs[0] * 100 + pairs[1]
    fields.update(zip(["hour", "minute", "second"],
                      [int(time_[i:i + 2]) for i in range(0, len(time_), 2)]))
    return _checked(raw, Schedule(**fields))


def _parse_dwm(raw: str, spec: str) -> Schedule:
    m = _DWM.fullmatch(spec)
    if not m:
        raise WhenError(f"{raw!r}: expected $Dhh, $Ww[Dhh] or $Mdd[Dhh]")
    hour = int(m["dhour"] or m["whour"] or m["mhour"] or 0)
    if m["wday"] is not None:
        if int(m["wday"]) > 6:
            raise WhenError(f"{raw!r}: day of week must be 0 (Sunday) to 6")
        return _checked(raw, Schedule(wday=int(m["wday"]), hour=hour))
    if m["mday"] is not None:
        mday = -1 if m["mday"] in "Ll" else int(m["mday"])
        return _checked(raw, Schedule(mday=mday, hour=hour))
    return _checked(raw, Schedule(hour=hour))


def _checked(raw: str, s: Schedule) -> Schedule:
    limits = [("month", s.month, 1, 12), ("day of month", s.mday if s.mday != -1 else None, 1, 31),
              ("hour", s.hour, 0, 23), ("minute", s.minute, 0, 59), ("second", s.second, 0, 59)]
    for name, value, low, high in limits:
        if value is not None and not low <= value <= high:
            raise WhenError(f"{raw!r}: {name} {value} is outside {low}..{high}")
    if s.year is not None:
        try:
            datetime(s.year, s.month, s.mday)
        except ValueError as e:
            raise WhenError(f"{raw!r}: {e}") from None
    elif s.month is not None and s.mday is not None and s.mday > calendar.monthrange(2000, s.month)[1]:
        raise WhenError(f"{raw!r}: month {s.month} has no day {s.mday}")
    return s
