"""Time ranges with one side open, and ranges too wide to expand: RFC 4791 §9.9 answered from the first
instance at or after the start (or the first instance of the set), never by expanding the whole rule.

Cost is checked by structure, never by the clock: how many instances recurring-ical-events builds and how
many periods dateutil walks for one answer, counted on a real run of the real libraries.
"""
from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import dateutil.rrule
import icalendar
import pytest
import recurring_ical_events
import recurring_ical_events.occurrence

from services.dav.errors import Precondition
from services.dav.store import CALENDAR, Collection
from services.dav.store.items import parse_item
from services.dav.query.caldata import parse_calendar_data, render_calendar_data
from services.dav.query.calfilter import matches, parse_filter
from services.dav.query.freebusy import busy_periods
from services.dav.query import instances as instances_module
from services.dav.query.instances import instances
from services.dav.query.timerange import component_overlaps
from tests.dav_harness import propfind
from tests.test_dav_query import calendar, component, rng, utc
from tests.test_dav_reports import C as CD, NS, error_element, report, responses

C = 'xmlns:C="urn:ietf:params:xml:ns:caldav"'


def time_filter(kind: str, start: str | None, end: str | None, inner: str = ""):
    bounds = "".join(f' {name}="{value}"' for name, value in (("start", start), ("end", end)) if value)
    return parse_filter(ET.fromstring(f'<C:filter {C}><C:comp-filter name="VCALENDAR"><C:comp-filter name="{kind}">'
                                      f'<C:time-range{bounds}/>{inner}</C:comp-filter></C:comp-filter></C:filter>'))


class Counting:
    """How much work one answer took: instances built by recurring-ical-events, years and months dateutil
    set up while walking a rule (one per period of a yearly rule, one per month of a daily one)."""

    def __init__(self, monkeypatch):
        self.instances = self.periods = 0
        as_component = recurring_ical_events.occurrence.Occurrence.as_component
        rebuild = dateutil.rrule._iterinfo.rebuild

        def counted_component(occurrence, *args, **kwargs):
            self.instances += 1
            return as_component(occurrence, *args, **kwargs)

        def counted_rebuild(info, *args, **kwargs):
            self.periods += 1
            return rebuild(info, *args, **kwargs)

        monkeypatch.setattr(recurring_ical_events.occurrence.Occurrence, "as_component", counted_component)
        monkeypatch.setattr(dateutil.rrule._iterinfo, "rebuild", counted_rebuild)


@pytest.fixture
def counting(monkeypatch) -> Counting:
    return Counting(monkeypatch)


BIRTHDAY = calendar("BEGIN:VEVENT", "UID:b", "DTSTART;VALUE=DATE:19400312", "DTEND;VALUE=DATE:19400313",
                    "RRULE:FREQ=YEARLY", "SUMMARY:Birthday", "END:VEVENT")
DAILY_SINCE_1900 = calendar("BEGIN:VEVENT", "UID:d", "DTSTART;TZID=Europe/Berlin:19000101T090000",
                            "DTEND;TZID=Europe/Berlin:19000101T091500", "RRULE:FREQ=DAILY", "SUMMARY:Standup",
                            "END:VEVENT")

# python-caldav's testTodoDatesearch data (its tests/test_caldav.py: todo, todo2 ... todo6)
CALDAV_TODOS = {
    "t1": ("DUE;VALUE=DATE:20070501", "STATUS:NEEDS-ACTION"),
    "t2": ("DTSTART:19970415T133000Z", "DUE:19970416T045959Z", "STATUS:NEEDS-ACTION"),
    "t3": ("DTSTART:19970415T133000Z", "DUE:19970516T045959Z"),
    "t4": ("STATUS:NEEDS-ACTION",),
    "t5": ("DTSTART:19920415T133000Z", "DUE:19920516T045959Z"),
    "t6": ("DTSTART:19920415T133000Z", "DUE:19920516T045959Z", "RRULE:FREQ=YEARLY"),
}


def caldav_todo(uid: str) -> icalendar.Calendar:
    return calendar("BEGIN:VTODO", f"UID:{uid}", "DTSTAMP:19920901T130000Z", "SUMMARY:Income Tax Preparation",
                    *CALDAV_TODOS[uid], "END:VTODO")


# --- the cost is gone ------------------------------------------------------------------------------

@pytest.mark.parametrize("cal, kind", [(BIRTHDAY, "VEVENT"), (caldav_todo("t6"), "VTODO"),
                                       (DAILY_SINCE_1900, "VEVENT")])
def test_start_only_range_reads_one_instance_not_the_rule(counting, cal, kind):
    assert matches(cal, time_filter(kind, "20250414T000000Z", None))
    assert counting.instances <= 3  # the first instance at or after the start, not 10,000 of them
    assert counting.periods <= 10  # dateutil starts near 2025, not at 1900 or 1940


def test_end_only_range_reads_the_first_instance(counting):
    assert matches(DAILY_SINCE_1900, time_filter("VEVENT", None, "20250101T000000Z"))
    assert counting.instances <= 3 and counting.periods <= 10
    assert not matches(DAILY_SINCE_1900, time_filter("VEVENT", None, "19000101T080000Z"))  # 09:00 Berlin = 08:00Z


def test_a_closed_range_of_five_centuries_stops_at_the_first_match(counting):
    assert matches(DAILY_SINCE_1900, time_filter("VEVENT", "19000101T000000Z", "24000101T000000Z"))
    assert counting.instances <= 3


def test_the_first_instance_after_the_start_is_the_right_one():
    found = next(instances(DAILY_SINCE_1900, "VEVENT", rng("20250601T071600Z", None), None))
    assert found["DTSTART"].dt.isoformat() == "2025-06-02T09:00:00+02:00"  # 2025-06-01's ended 07:15Z
    birthday = next(instances(BIRTHDAY, "VEVENT", rng("20250312T000000Z", None), None))
    assert str(birthday["DTSTART"].dt) == "2025-03-12"


def test_a_nested_filter_that_never_holds_stops(counting):
    never = '<C:prop-filter name="SUMMARY"><C:text-match>nobody</C:text-match></C:prop-filter>'
    assert not matches(BIRTHDAY, time_filter("VEVENT", "20250101T000000Z", None, never))
    assert counting.instances <= 1000


# --- python-caldav's testTodoDatesearch -------------------------------------------------------------

def todo_hits(start: str | None, end: str | None, inner: str = "") -> list[str]:
    flt = time_filter("VTODO", start, end, inner)
    return [uid for uid in CALDAV_TODOS if matches(caldav_todo(uid), flt)]


def test_caldav_todo_datesearch_closed_range():
    # t5 lies before the range; t6 repeats yearly into it; t4 has no date and matches every range
    assert todo_hits("19970414T000000Z", "20150514T000000Z") == ["t1", "t2", "t3", "t4", "t6"]


def test_caldav_todo_datesearch_start_only():
    # t1's DUE (2007) is before the start: DUE alone is not an open end (RFC 4791 §9.9, DUE only)
    assert todo_hits("20250414T000000Z", None) == ["t4", "t6"]
    not_completed = '<C:prop-filter name="COMPLETED"><C:is-not-defined/></C:prop-filter>'
    assert todo_hits("20250414T000000Z", None, not_completed) == ["t4", "t6"]


def test_caldav_todo_datesearch_expands_the_yearly_todo_once_a_year():
    request = parse_calendar_data(ET.fromstring(
        f'<C:calendar-data {C}><C:expand start="19970414T000000Z" end="20150514T000000Z"/></C:calendar-data>'))
    text = render_calendar_data(caldav_todo("t6").to_ical(), request)
    assert text.count("DTSTART:20020415T133000Z") == 1
    assert text.count("BEGIN:VTODO") == 19  # April 15th 1997 .. 2015


# --- RFC 4791 §9.9 with an open side: overrides, EXDATEs, time zones ---------------------------------

UNTIL_2010 = ["BEGIN:VEVENT", "UID:u", "DTSTART:20000601T100000Z", "DTEND:20000601T110000Z",
              "RRULE:FREQ=YEARLY;UNTIL=20100601T100000Z", "SUMMARY:Yearly"]


@pytest.mark.parametrize("extra, components, start, end, expected", [
    ((), (), "20090701T000000Z", None, True),  # the 2010 instance
    (("EXDATE:20100601T100000Z",), (), "20090701T000000Z", None, False),  # ... excluded
    ((), (("RECURRENCE-ID:20100601T100000Z", "DTSTART:20090301T100000Z", "DTEND:20090301T110000Z"),),
     "20090701T000000Z", None, False),  # ... moved out, before the start
    ((), (("RECURRENCE-ID:20080601T100000Z", "DTSTART:20110301T100000Z", "DTEND:20110301T110000Z"),),
     "20100701T000000Z", None, True),  # the 2008 one moved into the range
    ((), (), "20100601T110000Z", None, False),  # the last one ends as the range starts
    ((), (), None, "20000601T100001Z", True),  # the first instance
    (("EXDATE:20000601T100000Z",), (), None, "20010101T000000Z", False),  # ... excluded
    (("EXDATE:20000601T100000Z",), (), None, "20010601T100001Z", True),  # the second one
    ((), (("RECURRENCE-ID:20000601T100000Z", "DTSTART:20000901T100000Z", "DTEND:20000901T110000Z"),),
     None, "20000701T000000Z", False),  # the first one moved past the end
    ((), (("RECURRENCE-ID:20050601T100000Z", "DTSTART:19990301T100000Z", "DTEND:19990301T110000Z"),),
     None, "20000101T000000Z", True),  # a later one moved before DTSTART
])
def test_overrides_and_exdates_with_an_open_side(extra, components, start, end, expected):
    lines = [*UNTIL_2010, *extra, "END:VEVENT"]
    for override in components:
        lines += ["BEGIN:VEVENT", "UID:u", *override, "SUMMARY:Moved", "END:VEVENT"]
    assert matches(calendar(*lines), time_filter("VEVENT", start, end)) is expected


def test_an_override_in_range_is_what_nested_filters_see():
    lines = [*UNTIL_2010, "END:VEVENT", "BEGIN:VEVENT", "UID:u", "RECURRENCE-ID:20100601T100000Z",
             "DTSTART:20100601T100000Z", "DTEND:20100601T110000Z", "SUMMARY:Moved", "END:VEVENT"]
    moved = '<C:prop-filter name="SUMMARY"><C:text-match>moved</C:text-match></C:prop-filter>'
    assert matches(calendar(*lines), time_filter("VEVENT", "20090701T000000Z", None, moved))
    assert not matches(calendar(*lines), time_filter("VEVENT", None, "20090701T000000Z", moved))


def test_floating_and_zoned_instances_with_an_open_side():
    from zoneinfo import ZoneInfo
    floating = calendar("BEGIN:VEVENT", "UID:f", "DTSTART:20000301T100000", "DTEND:20000301T103000",
                        "RRULE:FREQ=YEARLY;UNTIL=20250302T000000", "END:VEVENT")
    late = time_filter("VEVENT", "20250301T093000Z", None)
    assert matches(floating, late)  # read in UTC: 10:00-10:30Z
    assert not matches(floating, late, ZoneInfo("Europe/Paris"))  # in Paris: 09:00-09:30Z, then no more
    assert matches(floating, time_filter("VEVENT", "20250301T091000Z", None), ZoneInfo("Europe/Paris"))
    summer = calendar("BEGIN:VEVENT", "UID:s", "DTSTART;TZID=America/New_York:20000701T090000",
                      "DURATION:PT1H", "RRULE:FREQ=YEARLY;UNTIL=20250702T000000Z", "END:VEVENT")
    assert matches(summer, time_filter("VEVENT", "20250701T135900Z", None))  # 09:00 EDT = 13:00Z
    assert not matches(summer, time_filter("VEVENT", "20250701T140000Z", None))


@pytest.mark.parametrize("lines, start, end, expected", [
    (("DTSTART:20000415T100000Z", "DURATION:PT2H", "RRULE:FREQ=MONTHLY;UNTIL=20250415T100000Z"),
     "20250415T120000Z", None, True),  # DTSTART + DURATION: start <= DTSTART + DURATION
    (("DTSTART:20000415T100000Z", "DURATION:PT2H", "RRULE:FREQ=MONTHLY;UNTIL=20250415T100000Z"),
     "20250415T120001Z", None, False),
    (("DTSTART:20000415T100000Z", "DUE:20000416T100000Z", "RRULE:FREQ=DAILY;UNTIL=20250415T100000Z"),
     "20250416T095959Z", None, True),  # DTSTART + DUE: start < DUE
    (("DTSTART:20000415T100000Z", "RRULE:FREQ=DAILY"), None, "20000415T100000Z", False),  # end > DTSTART
    (("DTSTART:20000415T100000Z", "RRULE:FREQ=DAILY"), None, "20000415T100001Z", True),
    (("DTSTART:20000415T100000Z", "RRULE:FREQ=DAILY", "COMPLETED:20000101T000000Z"), "20250101T000000Z", None,
     True),  # a recurring to-do is judged by its instances' DTSTART, not by COMPLETED
])
def test_recurring_todo_rows_with_an_open_side(lines, start, end, expected):
    todo = calendar("BEGIN:VTODO", "UID:t", *lines, "END:VTODO")
    assert matches(todo, time_filter("VTODO", start, end)) is expected


def test_recurring_journal_with_an_open_side():
    journal = calendar("BEGIN:VJOURNAL", "UID:j", "DTSTART;VALUE=DATE:20000101", "RRULE:FREQ=MONTHLY",
                       "END:VJOURNAL")
    assert matches(journal, time_filter("VJOURNAL", "20250115T000000Z", None))
    assert not matches(journal, time_filter("VJOURNAL", None, "20000101T000000Z"))
    assert matches(journal, time_filter("VJOURNAL", None, "20000101T000001Z"))


def test_alarms_of_an_endless_rule_with_an_open_side():
    event = calendar("BEGIN:VEVENT", "UID:a", "DTSTART:20000101T100000Z", "DURATION:PT1H", "RRULE:FREQ=WEEKLY",
                     "BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-PT15M", "END:VALARM", "END:VEVENT")
    alarm_after = ('<C:comp-filter name="VALARM"><C:time-range start="20250106T094500Z"/></C:comp-filter>')
    assert matches(event, time_filter("VEVENT", "20250101T000000Z", None, alarm_after))
    alarm_before = ('<C:comp-filter name="VALARM"><C:time-range end="20000101T094500Z"/></C:comp-filter>')
    assert not matches(event, time_filter("VEVENT", None, "20010101T000000Z", alarm_before))
    assert matches(event, time_filter("VEVENT", None, "20010101T000000Z",
                                      alarm_before.replace("094500Z", "094501Z")))


@pytest.mark.parametrize("start, end, expected", [
    ("20250301T110000Z", None, True), ("20250301T120000Z", None, False),
    (None, "20250301T100000Z", False), (None, "20250301T100001Z", True),
])
def test_freebusy_component_with_an_open_side(start, end, expected):
    freebusy = component("VFREEBUSY", "DTSTART:20250301T000000Z", "DTEND:20250302T000000Z",
                         "FREEBUSY:20250301T100000Z/20250301T120000Z")
    assert component_overlaps(freebusy, rng(start, end), None) is expected


# --- expand and free-busy: both ends required, and bounded ------------------------------------------

@pytest.mark.parametrize("element", ["expand", "limit-recurrence-set"])
@pytest.mark.parametrize("bounds", ['start="20250101T000000Z"', 'end="20250101T000000Z"'])
def test_expand_and_limit_recurrence_set_need_both_ends(element, bounds):
    with pytest.raises(Precondition) as raised:
        parse_calendar_data(ET.fromstring(f'<C:calendar-data {C}><C:{element} {bounds}/></C:calendar-data>'))
    assert raised.value.element == "valid-filter" and raised.value.status == 400


def test_expanding_five_centuries_of_a_daily_rule_is_refused(counting):
    request = parse_calendar_data(ET.fromstring(
        f'<C:calendar-data {C}><C:expand start="19000101T000000Z" end="24000101T000000Z"/></C:calendar-data>'))
    with pytest.raises(Precondition) as raised:
        render_calendar_data(DAILY_SINCE_1900.to_ical(), request)
    assert raised.value.element == "max-instances"
    assert counting.instances <= instances_module.MAX_INSTANCES + 400  # stops past the limit, not after 182,000 days


def test_free_busy_over_five_centuries_is_refused():
    with pytest.raises(Precondition) as raised:
        busy_periods([DAILY_SINCE_1900.to_ical()], utc("19000101T000000Z"), utc("24000101T000000Z"))
    assert raised.value.element == "max-instances"


# --- over HTTP ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ranges_calendar(dav):
    path = "/dav/calendars/alice/ranges/"
    status, _, _ = dav.request("MKCALENDAR", path, user="alice")
    assert status == 201
    for uid in CALDAV_TODOS:
        text = caldav_todo(uid).to_ical()
        status, _, _ = dav.request("PUT", f"{path}{uid}.ics", text, user="alice",
                                   headers={"Content-Type": "text/calendar"})
        assert status == 201
    for name, cal in (("birthday", BIRTHDAY), ("daily", DAILY_SINCE_1900), ("excluded-first", EXCLUDED_FIRST),
                      ("moved-first", MOVED_FIRST), ("last-excluded", LAST_EXCLUDED)):
        status, _, _ = dav.request("PUT", f"{path}{name}.ics", cal.to_ical(), user="alice",
                                   headers={"Content-Type": "text/calendar"})
        assert status == 201
    return path


YEARLY_2000 = ("DTSTART:20000601T100000Z", "DTEND:20000601T110000Z", "RRULE:FREQ=YEARLY")
EXCLUDED_FIRST = calendar("BEGIN:VEVENT", "UID:x", *YEARLY_2000, "EXDATE:20000601T100000Z", "END:VEVENT")
MOVED_FIRST = calendar("BEGIN:VEVENT", "UID:m", *YEARLY_2000, "END:VEVENT", "BEGIN:VEVENT", "UID:m",
                       "RECURRENCE-ID:20000601T100000Z", "DTSTART:20010301T100000Z", "DTEND:20010301T110000Z",
                       "END:VEVENT")

LAST_EXCLUDED = calendar("BEGIN:VEVENT", "UID:l", "DTSTART:20250106T100000Z", "DURATION:PT1H",
                         "RRULE:FREQ=WEEKLY;COUNT=3", "EXDATE:20250120T100000Z", "END:VEVENT")


def query(dav, path: str, kind: str, start: str | None, end: str | None, data: str = "") -> tuple[int, bytes]:
    bounds = "".join(f' {name}="{value}"' for name, value in (("start", start), ("end", end)) if value)
    body = (f'<C:calendar-query {CD}><D:prop><D:getetag/>{data}</D:prop><C:filter><C:comp-filter name="VCALENDAR">'
            f'<C:comp-filter name="{kind}"><C:time-range{bounds}/></C:comp-filter></C:comp-filter></C:filter>'
            f'</C:calendar-query>')
    status, _, answer = report(dav, path, body)
    return status, answer


def names(answer: bytes) -> list[str]:
    return sorted(href.rsplit("/", 1)[-1].removesuffix(".ics") for href in responses(answer))


def test_open_ranges_over_http(dav, ranges_calendar):
    status, answer = query(dav, ranges_calendar, "VTODO", "20250414T000000Z", None)
    assert status == 207 and names(answer) == ["t4", "t6"]
    status, answer = query(dav, ranges_calendar, "VTODO", "19970414T000000Z", "20150514T000000Z")
    assert names(answer) == ["t1", "t2", "t3", "t4", "t6"]
    status, answer = query(dav, ranges_calendar, "VEVENT", "20250414T000000Z", None)
    assert names(answer) == ["birthday", "daily", "excluded-first", "moved-first"]  # endless: answered unparsed
    status, answer = query(dav, ranges_calendar, "VEVENT", None, "19300101T000000Z")
    assert names(answer) == ["daily"]
    status, answer = query(dav, ranges_calendar, "VEVENT", None, "20010101T000000Z")
    assert names(answer) == ["birthday", "daily"]  # the first 2000 instance is excluded, or moved to 2001
    status, answer = query(dav, ranges_calendar, "VEVENT", None, "20010701T000000Z")
    assert names(answer) == ["birthday", "daily", "excluded-first", "moved-first"]
    status, answer = query(dav, ranges_calendar, "VEVENT", None, "20250106T100001Z")
    assert "last-excluded" in names(answer)
    status, answer = query(dav, ranges_calendar, "VEVENT", "19000101T000000Z", "24000101T000000Z")
    assert names(answer) == ["birthday", "daily", "excluded-first", "last-excluded", "moved-first"]
    status, answer = query(dav, ranges_calendar, "VEVENT", "20250101T000000Z", None)
    assert "last-excluded" in names(answer)  # its last instance ends on the 13th: the index tells
    status, answer = query(dav, ranges_calendar, "VEVENT", "20250115T000000Z", None)
    assert "last-excluded" not in names(answer)  # the 20th is excluded


def test_expand_without_an_end_is_a_400_with_its_precondition(dav, ranges_calendar):
    status, answer = query(dav, ranges_calendar, "VEVENT", "20250101T000000Z", None,
                           '<C:calendar-data><C:expand start="20250101T000000Z"/></C:calendar-data>')
    assert status == 400 and error_element(answer) == "{urn:ietf:params:xml:ns:caldav}valid-filter"


def test_expand_of_five_centuries_is_refused_with_max_instances(dav, ranges_calendar):
    status, answer = query(dav, ranges_calendar, "VEVENT", "19000101T000000Z", "24000101T000000Z",
                           '<C:calendar-data><C:expand start="19000101T000000Z" end="24000101T000000Z"/>'
                           '</C:calendar-data>')
    assert status == 403 and error_element(answer) == "{urn:ietf:params:xml:ns:caldav}max-instances"


def test_free_busy_query_needs_both_ends(dav, ranges_calendar):
    body = f'<C:free-busy-query {CD}><C:time-range start="20250101T000000Z"/></C:free-busy-query>'
    status, _, answer = report(dav, ranges_calendar, body)
    assert status == 400 and error_element(answer) == "{urn:ietf:params:xml:ns:caldav}valid-filter"


def test_max_instances_is_advertised(dav, ranges_calendar):
    status, _, answer = propfind(dav, ranges_calendar, "<C:max-instances/>")
    assert status == 207
    assert ET.fromstring(answer).findtext(".//C:max-instances", namespaces=NS) == str(instances_module.MAX_INSTANCES)


# --- moving a rule ahead gives the same instances ----------------------------------------------------

RULES = [
    ("DTSTART;TZID=Europe/Berlin:20010314T093000", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE;WKST=SU"),
    ("DTSTART;TZID=America/New_York:19991109T180000", "DURATION:PT2H", "RRULE:FREQ=MONTHLY;BYDAY=2TU"),
    ("DTSTART:19970310T080000Z", "DURATION:PT30M", "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU"),
    ("DTSTART;VALUE=DATE:19960229", "RRULE:FREQ=YEARLY"),
    ("DTSTART:20000131T120000", "DURATION:PT1H", "RRULE:FREQ=MONTHLY;INTERVAL=5;BYMONTHDAY=31"),
    ("DTSTART;TZID=Asia/Tokyo:20030101T070000", "DURATION:PT10M", "RRULE:FREQ=DAILY;INTERVAL=3",
     "EXDATE;TZID=Asia/Tokyo:20250102T070000"),
    ("DTSTART:19800101T000000Z", "DURATION:PT1H", "RRULE:FREQ=YEARLY;INTERVAL=4;UNTIL=20400101T000000Z"),
]


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("start", ["20241231T230000Z", "20250227T120000Z", "20280301T000000Z"])
def test_instances_after_a_start_are_those_of_the_whole_rule(rule, start):
    cal = calendar("BEGIN:VEVENT", "UID:r", *rule, "END:VEVENT")
    moment = utc(start)
    ours = [i["DTSTART"].dt for i in itertools.islice(instances(cal, "VEVENT", rng(start, None), None), 4)]
    reference = [c["DTSTART"].dt for c in itertools.islice(recurring_ical_events.of(cal).after(moment), 8)
                 if component_overlaps(c, rng(start, None), None)][:4]
    assert ours == reference and ours


def test_storing_an_endless_rule_does_not_walk_it(counting):
    # The index's first start of an endless rule is its DTSTART (only an RDATE could come earlier), and its
    # instances are stored for the years around now only, or not at all past instancerows.MAX_ROWS.
    cal = parse_item(Collection(1, "alice", CALENDAR, "cal", None, None, None, None, ("VEVENT",), "", 0),
                     DAILY_SINCE_1900.to_ical())
    assert cal.first_start == utc("19000101T080000Z").timestamp()  # 09:00 in Berlin
    assert counting.periods <= 40  # months dateutil set up: about MAX_ROWS days, not from 1900
