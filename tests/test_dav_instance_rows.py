"""Events' instances stored at PUT: a closed-range calendar-query over the years around now answers from them
without parsing, and always as the exact reading of the bytes does (RFC 4791 §9.9).

The query is the daemon's own (report_calendar._matching) on a real database; parses are counted on the real
parser it calls. Every answer is compared with the exact test on the parsed bytes (calfilter.matches).
"""
from __future__ import annotations

import asyncio
import functools
import random
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from services.core.db import Database, db_path, open_db, write
from services.dav.http import report_calendar
from services.dav.http.paths import parse_path
from services.dav.http.resources import load
from services.dav import instancerows
from services.dav.instancerefresh import refresh
from services.dav.query.caldata import CalendarData
from services.dav.query.calfilter import matches, parse_filter
from services.dav.query.parsing import read_for_query
from services.dav.store import CALENDAR, create_collection, delete_collection, delete_item, move_item, put_item
from tests.daemons import serving
from tests.dav_harness import DavDaemon, wait_for

C = 'xmlns:C="urn:ietf:params:xml:ns:caldav"'
NOW = datetime.now(timezone.utc)
YEAR = NOW.year  # inside the covered years: the one being lived
BERLIN, NEW_YORK, TOKYO = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo")


def ics(*events: list[str]) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//hearth tests//EN"]
    for event in events:
        lines += ["BEGIN:VEVENT", "DTSTAMP:20240101T000000Z", *event, "END:VEVENT"]
    return ("\r\n".join([*lines, "END:VCALENDAR", ""])).encode()


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def time_filter(start: datetime, end: datetime):
    return parse_filter(ET.fromstring(
        f'<C:filter {C}><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        f'<C:time-range start="{stamp(start)}" end="{stamp(end)}"/></C:comp-filter></C:comp-filter></C:filter>'))


class Calendar:
    """alice's calendar in a real database, queried as a calendar-query REPORT on it is; counts parses."""

    def __init__(self, db, monkeypatch):
        self.db, self.parses = db, 0
        self.id = write(db, lambda d: create_collection(d, "alice", CALENDAR, "cal")).id
        cached = report_calendar.cached_for_query

        def counted(etag, raw):
            self.parses += 1
            return cached(etag, raw)
        monkeypatch.setattr(report_calendar, "cached_for_query", counted)

    def put(self, name: str, raw: bytes) -> None:
        write(self.db, lambda d: put_item(d, self.id, name, raw))

    def query(self, start: datetime, end: datetime, tz=None) -> set[str]:
        resource = load(self.db, parse_path("/dav/calendars/alice/cal/"), "alice", "read")
        found = report_calendar._matching(self.db, resource, time_filter(start, end), CalendarData(), tz)
        return {item.name for item, _ in found}

    def exact(self, start: datetime, end: datetime, tz=None) -> set[str]:
        """What the exact reading of every stored item's bytes answers."""
        flt = time_filter(start, end)
        rows = self.db.execute("SELECT name, raw FROM dav_items WHERE collection_id = ?", [self.id]).fetchall()
        return {name for name, raw in rows if matches(self._parse(raw), flt, tz)}

    @functools.lru_cache(maxsize=None)
    def _parse(self, raw: bytes):
        return read_for_query(raw)

    def rows(self, name: str) -> int:
        return self.db.execute("SELECT count(*) FROM dav_instances WHERE collection_id = ? AND name = ?",
                               [self.id, name]).fetchone()[0]


@pytest.fixture
def cal(db, monkeypatch) -> Calendar:
    return Calendar(db, monkeypatch)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


JUNE = (utc(YEAR, 6, 1), utc(YEAR, 7, 1))


def birthday(uid: str, born: date) -> bytes:
    return ics([f"UID:{uid}", f"DTSTART;VALUE=DATE:{born:%Y%m%d}",
                f"DTEND;VALUE=DATE:{born + timedelta(days=1):%Y%m%d}", "RRULE:FREQ=YEARLY", "SUMMARY:Birthday"])


def anniversary(uid: str, first: datetime, *extra: list[str]) -> bytes:
    """A yearly event at 18:00 Berlin time since `first`, with extra components (overrides)."""
    return ics([f"UID:{uid}", f"DTSTART;TZID=Europe/Berlin:{first:%Y%m%dT%H%M%S}",
                f"DTEND;TZID=Europe/Berlin:{first + timedelta(hours=2):%Y%m%dT%H%M%S}", "RRULE:FREQ=YEARLY",
                *(line for part in extra[:1] for line in part)], *extra[1:])


# --- the cost is gone ------------------------------------------------------------------------------

def test_a_month_of_endless_series_is_answered_without_parsing(cal):
    cal.put("b1.ics", birthday("b1", date(1940, 6, 12)))  # in June every year
    cal.put("b2.ics", birthday("b2", date(1975, 8, 3)))  # never in June
    cal.put("a1.ics", anniversary("a1", datetime(1999, 6, 20, 18)))
    cal.put("w1.ics", ics(["UID:w1", "DTSTART;TZID=Europe/Berlin:20200106T090000",
                           "DTEND;TZID=Europe/Berlin:20200106T091500", "RRULE:FREQ=WEEKLY"]))
    cal.put("m1.ics", ics(["UID:m1", "DTSTART:20210115T100000Z", "DURATION:PT1H", "RRULE:FREQ=MONTHLY"]))
    assert cal.query(*JUNE) == cal.exact(*JUNE) == {"b1.ics", "a1.ics", "w1.ics", "m1.ics"}
    assert cal.parses == 0  # before: every recurring candidate parsed and walked, all 5 of them


# --- exact at the edges ------------------------------------------------------------------------------

def test_an_override_moved_into_or_out_of_the_range_and_an_excluded_instance(cal):
    moved_in = anniversary("in", datetime(2001, 5, 20, 18),
                           [f"EXDATE;TZID=Europe/Berlin:{YEAR - 1}0520T180000"],
                           ["UID:in", f"RECURRENCE-ID;TZID=Europe/Berlin:{YEAR}0520T180000",
                            f"DTSTART;TZID=Europe/Berlin:{YEAR}0610T180000",
                            f"DTEND;TZID=Europe/Berlin:{YEAR}0610T200000"])
    moved_out = anniversary("out", datetime(2001, 6, 20, 18), [],
                            ["UID:out", f"RECURRENCE-ID;TZID=Europe/Berlin:{YEAR}0620T180000",
                             f"DTSTART;TZID=Europe/Berlin:{YEAR}0702T180000",
                             f"DTEND;TZID=Europe/Berlin:{YEAR}0702T200000"])
    excluded = anniversary("ex", datetime(2001, 6, 20, 18), [f"EXDATE;TZID=Europe/Berlin:{YEAR}0620T180000"])
    for name, raw in (("in.ics", moved_in), ("out.ics", moved_out), ("ex.ics", excluded)):
        cal.put(name, raw)
    assert cal.query(*JUNE) == cal.exact(*JUNE) == {"in.ics"}
    july = (utc(YEAR, 7, 1), utc(YEAR, 8, 1))
    assert cal.query(*july) == cal.exact(*july) == {"out.ics"}
    assert cal.parses == 0


@pytest.mark.parametrize("tz, hit", [(None, False), (BERLIN, True), (NEW_YORK, False), (TOKYO, True)])
def test_a_floating_instance_at_the_range_end_is_read_in_the_query_zone(cal, tz, hit):
    # 23:30 floating every June 30th: 21:30Z in Berlin, 14:30Z in Tokyo, 03:30Z July 1st in New York
    cal.put("f.ics", ics(["UID:f", "DTSTART:20180630T233000", "DURATION:PT1H", "RRULE:FREQ=YEARLY"]))
    end = utc(YEAR, 6, 30, 22)
    assert cal.query(utc(YEAR, 6, 1), end, tz) == cal.exact(utc(YEAR, 6, 1), end, tz) == ({"f.ics"} if hit else set())
    assert cal.parses == 0


@pytest.mark.parametrize("tz", [None, BERLIN, NEW_YORK, TOKYO])
def test_all_day_and_instant_instances_at_the_range_start(cal, tz):
    cal.put("day.ics", ics(["UID:day", "DTSTART;VALUE=DATE:20190601", "RRULE:FREQ=YEARLY"]))  # no end: one day
    cal.put("instant.ics", ics(["UID:instant", "DTSTART:20190601T000000Z", "RRULE:FREQ=YEARLY"]))
    cal.put("before.ics", ics(["UID:before", "DTSTART:20190531T230000Z", "DTEND:20190601T000000Z",
                               "RRULE:FREQ=YEARLY"]))
    for start in (utc(YEAR, 6, 1), utc(YEAR, 6, 1, 12), utc(YEAR, 5, 31, 20)):
        end = start + timedelta(hours=5)
        assert cal.query(start, end, tz) == cal.exact(start, end, tz)
    assert cal.parses == 0


def test_a_rewritten_item_answers_by_its_new_bytes_and_a_deleted_one_leaves_no_rows(cal, db):
    cal.put("b.ics", birthday("b", date(1980, 6, 12)))
    assert cal.query(*JUNE) == {"b.ics"} and cal.rows("b.ics") > 0
    cal.put("b.ics", birthday("b", date(1980, 9, 12)))
    assert cal.query(*JUNE) == cal.exact(*JUNE) == set()
    write(db, lambda d: move_item(d, cal.id, "b.ics", cal.id, "c.ics"))
    assert cal.rows("b.ics") == 0 and cal.rows("c.ics") > 0  # renamed with its item
    september = (utc(YEAR, 9, 1), utc(YEAR, 10, 1))
    assert cal.query(*september) == {"c.ics"}
    write(db, lambda d: delete_item(d, cal.id, "c.ics"))
    assert cal.rows("c.ics") == 0
    assert db.execute("SELECT count(*) FROM dav_instance_sets").fetchone()[0] == 0
    assert cal.parses == 0


def test_a_deleted_calendar_leaves_no_rows(cal, db):
    cal.put("b.ics", birthday("b", date(1980, 6, 12)))
    assert cal.rows("b.ics") == 4  # one a year: last year, this one and the two ahead
    write(db, lambda d: delete_collection(d, cal.id))
    assert db.execute("SELECT count(*) FROM dav_instances").fetchone()[0] == 0


def test_ranges_outside_the_stored_years_and_items_without_rows_are_read_exactly(cal, db):
    cal.put("b.ics", birthday("b", date(1980, 6, 12)))
    cal.put("daily.ics", ics(["UID:daily", "DTSTART:20200101T070000Z", "DURATION:PT15M", "RRULE:FREQ=DAILY"]))
    assert cal.rows("daily.ics") == 0  # more than MAX_ROWS instances in the stored years: a PUT stays cheap
    assert cal.query(*JUNE) == cal.exact(*JUNE) == {"b.ics", "daily.ics"}
    assert cal.parses == 1
    lo, hi = instancerows.covered_years(NOW)
    for year in (lo.year - 1, hi.year, YEAR + 40):
        cal.parses = 0
        june = (utc(year, 6, 1), utc(year, 7, 1))
        assert cal.query(*june) == cal.exact(*june) == {"b.ics", "daily.ics"}
        assert cal.parses == 2
    # An item stored before the rows existed (or whose rows were computed for other bytes) is read exactly.
    db.execute("DELETE FROM dav_instance_sets WHERE name = 'b.ics'")
    db.execute("UPDATE dav_items SET raw = ?, etag = '\"other\"' WHERE name = 'daily.ics'",
               [birthday("daily", date(1980, 9, 1))])
    cal.parses = 0
    assert cal.query(*JUNE) == cal.exact(*JUNE) == {"b.ics"}
    assert cal.parses == 2


def test_a_finite_series_is_stored_whole_and_answers_any_range(cal):
    cal.put("s.ics", ics(["UID:s", "DTSTART;TZID=America/New_York:20150302T090000",
                          "DTEND;TZID=America/New_York:20150302T100000", "RRULE:FREQ=WEEKLY;COUNT=20"]))
    for rng in ((utc(2015, 3, 1), utc(2015, 4, 1)), (utc(2015, 8, 1), utc(2015, 9, 1)), JUNE):
        assert cal.query(*rng) == cal.exact(*rng)
    assert cal.parses == 0 and cal.rows("s.ics") == 20


def test_the_daemon_stores_instances_for_events_stored_before_and_again_as_the_years_move_on(cal, db, tmp_path):
    cal.put("b.ics", birthday("b", date(1980, 6, 12)))
    cal.put("c.ics", birthday("c", date(1981, 6, 13)))
    db.execute("DELETE FROM dav_instance_sets")  # as stored before instances were stored
    assert cal.query(*JUNE) == {"b.ics", "c.ics"} and cal.parses == 2
    database = Database(tmp_path / "db" / "hearth.sqlite3")
    try:
        assert asyncio.run(refresh(database, NOW)) == 2
        assert asyncio.run(refresh(database, NOW)) == 0  # nothing left to do
        cal.parses = 0
        assert cal.query(*JUNE) == {"b.ics", "c.ics"} and cal.parses == 0
        later = NOW.replace(year=YEAR + 7, day=1)
        june_later = (utc(YEAR + 7, 6, 1), utc(YEAR + 7, 7, 1))
        assert cal.query(*june_later) == {"b.ics", "c.ics"} and cal.parses == 2  # outside the stored years
        assert asyncio.run(refresh(database, later)) == 2
        cal.parses = 0
        assert cal.query(*june_later) == cal.exact(*june_later) == {"b.ics", "c.ics"} and cal.parses == 0
    finally:
        database.close()


def test_the_dav_daemon_stores_instances_of_events_stored_before_when_it_starts(tmp_path):
    daemon = DavDaemon(tmp_path)
    with serving(daemon, "alice"):
        assert daemon.request("PUT", "/dav/calendars/alice/calendar/b.ics", birthday("b", date(1980, 6, 12)),
                              user="alice")[0] == 201
    db = open_db(db_path(tmp_path / "var"))
    try:
        assert db.execute("SELECT count(*) FROM dav_instances").fetchone()[0] > 0  # stored by the PUT
        db.execute("DELETE FROM dav_instance_sets")  # as stored before instances were stored
        daemon.start()  # its schedule's first pass runs at start, not an interval later
        try:
            wait_for(lambda: db.execute("SELECT count(*) FROM dav_instances").fetchone()[0] > 0)
            # The line is written after the rows' commit: a stop between the two would cut it off.
            wait_for(lambda: "instances: stored the instances of 1 events" in daemon.log())
        finally:
            assert daemon.stop() == 0
    finally:
        db.close()


# --- the same answers as the exact reading, on many shapes ------------------------------------------

def random_event(rng: random.Random, uid: str) -> bytes:
    """One VEVENT set: zoned, UTC, floating or all-day; an end, a duration or none; a rule or not; some
    excluded and moved instances."""
    kind = rng.choice(("zoned", "utc", "floating", "date"))
    first = datetime(rng.randrange(YEAR - 6, YEAR + 2), rng.randrange(1, 13), rng.randrange(1, 29),
                     rng.randrange(24), rng.choice((0, 30)))
    zone = rng.choice(("Europe/Berlin", "America/New_York", "Asia/Tokyo"))

    def when(name: str, moment: datetime) -> str:
        if kind == "date":
            return f"{name};VALUE=DATE:{moment:%Y%m%d}"
        if kind == "zoned":
            return f"{name};TZID={zone}:{moment:%Y%m%dT%H%M%S}"
        return f"{name}:{moment:%Y%m%dT%H%M%S}" + ("Z" if kind == "utc" else "")

    length = timedelta(days=rng.choice((1, 2))) if kind == "date" else timedelta(minutes=rng.choice((0, 30, 90, 1500)))
    ending = rng.choice(("end", "duration", "none"))
    master = [f"UID:{uid}", when("DTSTART", first)]
    if ending == "end":
        master.append(when("DTEND", first + length))
    elif ending == "duration":
        master.append(f"DURATION:PT{int(length.total_seconds())}S")
    freq = rng.choice((None, "YEARLY", "MONTHLY", "WEEKLY"))
    events = [master]
    if freq is not None:
        step = {"YEARLY": timedelta(days=365), "MONTHLY": timedelta(days=30), "WEEKLY": timedelta(weeks=1)}[freq]
        count = rng.choice(("", f";COUNT={rng.randrange(2, 60)}"))
        master.append(f"RRULE:FREQ={freq}{count}")
        for _ in range(rng.randrange(3)):  # an instance near now excluded, another one moved
            n = max(1, int((datetime(YEAR, rng.randrange(1, 13), 1) - first) / step))
            original = first + step * n if freq == "WEEKLY" else _same_day(first, freq, n)
            if rng.random() < 0.5:
                master.append(when("EXDATE", original))
            else:
                moved = original + timedelta(days=rng.choice((-20, -3, 1, 12)), hours=rng.choice((0, 5)))
                events.append([f"UID:{uid}", when("RECURRENCE-ID", original), when("DTSTART", moved),
                               when("DTEND", moved + length) if kind != "date" or length else ""])
    return ics(*([line for line in event if line] for event in events))


def _same_day(first: datetime, freq: str, n: int) -> datetime:
    months = n * (12 if freq == "YEARLY" else 1)
    year, month = first.year + (first.month - 1 + months) // 12, (first.month - 1 + months) % 12 + 1
    return first.replace(year=year, month=month)


def test_random_events_answer_as_the_exact_reading(cal):
    rng = random.Random(4791)
    for i in range(150):
        cal.put(f"e{i}.ics", random_event(rng, f"e{i}"))
    assert cal.db.execute("SELECT count(*) FROM dav_instance_sets").fetchone()[0] == 150
    hits = 0
    for _ in range(100):
        start = datetime(YEAR + rng.randrange(0, 2), rng.randrange(1, 13), rng.randrange(1, 29), rng.randrange(24),
                         tzinfo=timezone.utc)
        end = start + timedelta(hours=rng.choice((1, 10, 24, 24 * 7, 24 * 31)))
        tz = rng.choice((None, BERLIN, NEW_YORK, TOKYO))
        found = cal.query(start, end, tz)
        assert found == cal.exact(start, end, tz), (start, end, tz)
        hits += len(found)
    assert cal.parses == 0 and hits > 500


def test_max_rows_holds_a_weekly_rule_over_the_stored_years():
    lo, hi = instancerows.covered_years(NOW)
    assert (hi - lo).days // 7 + 1 <= instancerows.MAX_ROWS
