"""CalDAV/CardDAV query semantics without HTTP: RFC 4791 §9.9 overlap rules, filters, collations,
expansion and free-busy, on small hand-written objects."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import icalendar
import pytest

from services.dav.errors import Precondition
from services.dav.query.caldata import expand, limit_recurrence_set, parse_calendar_data, render_calendar_data
from services.dav.query.calfilter import matches, parse_filter
from services.dav.query.carddata import parse_address_data, render_address_data
from services.dav.query.cardfilter import card_matches, may_match, parse_card_filter, read_card
from services.dav.query.freebusy import busy_periods, render_freebusy
from services.dav.query.textmatch import TextMatch
from services.dav.query.timerange import TimeRange, component_overlaps, parse_time_range

C = 'xmlns:C="urn:ietf:params:xml:ns:caldav"'
CR = 'xmlns:CR="urn:ietf:params:xml:ns:carddav"'


def utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


def rng(start: str | None, end: str | None) -> TimeRange:
    return TimeRange(start and utc(start), end and utc(end))


def calendar(*lines: str) -> icalendar.Calendar:
    body = "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//t//EN", *lines, "END:VCALENDAR", ""])
    return icalendar.Calendar.from_ical(body)


def component(kind: str, *lines: str) -> icalendar.Component:
    return calendar(f"BEGIN:{kind}", "UID:x", *lines, f"END:{kind}").subcomponents[0]


# --- RFC 4791 §9.9, VEVENT rows -------------------------------------------------------------

@pytest.mark.parametrize("lines, start, end, expected", [
    # DTEND given: start < DTEND and end > DTSTART
    (("DTSTART:20250301T100000Z", "DTEND:20250301T110000Z"), "20250301T110000Z", "20250301T120000Z", False),
    (("DTSTART:20250301T100000Z", "DTEND:20250301T110000Z"), "20250301T105959Z", "20250301T120000Z", True),
    (("DTSTART:20250301T100000Z", "DTEND:20250301T110000Z"), "20250301T090000Z", "20250301T100000Z", False),
    (("DTSTART:20250301T100000Z", "DTEND:20250301T110000Z"), "20250301T090000Z", "20250301T100001Z", True),
    # DURATION > 0
    (("DTSTART:20250301T100000Z", "DURATION:PT1H"), "20250301T105900Z", "20250301T120000Z", True),
    (("DTSTART:20250301T100000Z", "DURATION:PT1H"), "20250301T110000Z", "20250301T120000Z", False),
    # DURATION = 0: start <= DTSTART and end > DTSTART
    (("DTSTART:20250301T100000Z", "DURATION:PT0S"), "20250301T100000Z", "20250301T100001Z", True),
    (("DTSTART:20250301T100000Z", "DURATION:PT0S"), "20250301T090000Z", "20250301T100000Z", False),
    # neither, DATE-TIME: an instant
    (("DTSTART:20250301T100000Z",), "20250301T100000Z", "20250301T110000Z", True),
    (("DTSTART:20250301T100000Z",), "20250301T090000Z", "20250301T100000Z", False),
    # neither, DATE: one day
    (("DTSTART;VALUE=DATE:20250301",), "20250301T230000Z", "20250302T000000Z", True),
    (("DTSTART;VALUE=DATE:20250301",), "20250302T000000Z", "20250303T000000Z", False),
    (("DTSTART;VALUE=DATE:20250301",), "20250228T000000Z", "20250301T000000Z", False),
    # all-day with DTEND over two days
    (("DTSTART;VALUE=DATE:20250301", "DTEND;VALUE=DATE:20250303"), "20250302T120000Z", None, True),
    # open-ended ranges
    (("DTSTART:20250301T100000Z", "DTEND:20250301T110000Z"), None, "20250301T100001Z", True),
    (("DTSTART:20250301T100000Z", "DTEND:20250301T110000Z"), "20250301T110000Z", None, False),
])
def test_vevent_rows(lines, start, end, expected):
    assert component_overlaps(component("VEVENT", *lines), rng(start, end), None) is expected


def test_floating_event_is_read_in_the_calendar_timezone():
    event = component("VEVENT", "DTSTART:20250301T100000", "DTEND:20250301T110000")
    assert component_overlaps(event, rng("20250301T100000Z", "20250301T103000Z"), None)  # UTC by default
    paris = ZoneInfo("Europe/Paris")  # 10:00 in Paris is 09:00 UTC
    assert component_overlaps(event, rng("20250301T090000Z", "20250301T093000Z"), paris)
    assert not component_overlaps(event, rng("20250301T100000Z", "20250301T103000Z"), paris)


def test_tzid_event():
    event = component("VEVENT", "DTSTART;TZID=America/New_York:20250301T100000",
                      "DTEND;TZID=America/New_York:20250301T110000")
    assert component_overlaps(event, rng("20250301T150000Z", "20250301T151000Z"), None)
    assert not component_overlaps(event, rng("20250301T100000Z", "20250301T110000Z"), None)


# --- VTODO table ------------------------------------------------------------------------------

@pytest.mark.parametrize("lines, start, end, expected", [
    # DTSTART + DURATION: start <= DTSTART+DURATION and (end > DTSTART or end >= DTSTART+DURATION)
    (("DTSTART:20250301T100000Z", "DURATION:PT1H"), "20250301T110000Z", "20250301T120000Z", True),
    (("DTSTART:20250301T100000Z", "DURATION:PT1H"), "20250301T110001Z", "20250301T120000Z", False),
    # DTSTART + DUE: (start < DUE or start <= DTSTART) and (end > DTSTART or end >= DUE)
    (("DTSTART:20250301T100000Z", "DUE:20250301T110000Z"), "20250301T110000Z", "20250301T120000Z", False),
    (("DTSTART:20250301T100000Z", "DUE:20250301T110000Z"), "20250301T080000Z", "20250301T100001Z", True),
    (("DTSTART:20250301T100000Z", "DUE:20250301T110000Z"), "20250301T080000Z", "20250301T100000Z", False),
    # DTSTART only: start <= DTSTART and end > DTSTART
    (("DTSTART:20250301T100000Z",), "20250301T100000Z", "20250301T100001Z", True),
    (("DTSTART:20250301T100000Z",), "20250301T100001Z", "20250301T120000Z", False),
    # DUE only: start < DUE and end >= DUE
    (("DUE:20250301T100000Z",), "20250301T090000Z", "20250301T100000Z", True),
    (("DUE:20250301T100000Z",), "20250301T100000Z", "20250301T110000Z", False),
    # COMPLETED + CREATED
    (("CREATED:20250301T100000Z", "COMPLETED:20250305T100000Z"), "20250303T000000Z", "20250304T000000Z", True),
    (("CREATED:20250301T100000Z", "COMPLETED:20250305T100000Z"), "20250201T000000Z", "20250202T000000Z", False),
    (("CREATED:20250301T100000Z", "COMPLETED:20250305T100000Z"), "20250305T000000Z", "20250306T000000Z", True),
    # COMPLETED only: start <= COMPLETED and end >= COMPLETED
    (("COMPLETED:20250305T100000Z",), "20250305T000000Z", "20250305T100000Z", True),
    (("COMPLETED:20250305T100000Z",), "20250305T100001Z", "20250306T000000Z", False),
    # CREATED only: end > CREATED
    (("CREATED:20250301T100000Z",), "20260101T000000Z", "20260102T000000Z", True),
    (("CREATED:20250301T100000Z",), "20250201T000000Z", "20250301T100000Z", False),
    # nothing: always
    ((), "20000101T000000Z", "20000102T000000Z", True),
])
def test_vtodo_rows(lines, start, end, expected):
    assert component_overlaps(component("VTODO", *lines), rng(start, end), None) is expected


@pytest.mark.parametrize("lines, start, end, expected", [
    (("DTSTART:20250301T100000Z",), "20250301T100000Z", "20250301T100001Z", True),
    (("DTSTART:20250301T100000Z",), "20250301T090000Z", "20250301T100000Z", False),
    (("DTSTART;VALUE=DATE:20250301",), "20250301T120000Z", "20250301T130000Z", True),
    (("DTSTART;VALUE=DATE:20250301",), "20250302T000000Z", "20250302T130000Z", False),
    ((), "20000101T000000Z", "20300101T000000Z", False),
])
def test_vjournal_rows(lines, start, end, expected):
    assert component_overlaps(component("VJOURNAL", *lines), rng(start, end), None) is expected


# --- filters ---------------------------------------------------------------------------------

def cal_filter(inner: str):
    return parse_filter(ET.fromstring(f'<C:filter {C}><C:comp-filter name="VCALENDAR">{inner}'
                                      f'</C:comp-filter></C:filter>'))


WEEKLY = calendar(
    "BEGIN:VEVENT", "UID:w", "DTSTART;TZID=Europe/Paris:20250303T090000",
    "DTEND;TZID=Europe/Paris:20250303T093000", "RRULE:FREQ=WEEKLY;COUNT=5", "EXDATE;TZID=Europe/Paris:20250317T090000",
    "SUMMARY:Standup", "BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-PT15M", "END:VALARM", "END:VEVENT",
    "BEGIN:VEVENT", "UID:w", "RECURRENCE-ID;TZID=Europe/Paris:20250310T090000",
    "DTSTART;TZID=Europe/Paris:20250310T140000", "DTEND;TZID=Europe/Paris:20250310T143000",
    "SUMMARY:Standup moved", "END:VEVENT")


@pytest.mark.parametrize("start, end, expected", [
    ("20250303T080000Z", "20250303T083000Z", True),  # first instance (09:00 Paris = 08:00 UTC)
    ("20250310T080000Z", "20250310T083000Z", False),  # overridden away from 09:00
    ("20250310T130000Z", "20250310T133000Z", True),  # ... to 14:00 Paris
    ("20250317T080000Z", "20250317T083000Z", False),  # EXDATE
    ("20250324T080000Z", "20250324T083000Z", True),
    ("20250331T070000Z", "20250331T073000Z", True),  # summer time: 09:00 Paris = 07:00 UTC
    ("20250407T070000Z", "20250407T073000Z", False),  # COUNT=5 is over
])
def test_recurring_time_range(start, end, expected):
    flt = cal_filter(f'<C:comp-filter name="VEVENT"><C:time-range start="{start}" end="{end}"/></C:comp-filter>')
    assert matches(WEEKLY, flt) is expected


def test_prop_filter_sees_the_instance_in_range():
    moved = ('<C:comp-filter name="VEVENT"><C:time-range start="20250310T000000Z" end="20250311T000000Z"/>'
             '<C:prop-filter name="SUMMARY"><C:text-match>moved</C:text-match></C:prop-filter></C:comp-filter>')
    assert matches(WEEKLY, cal_filter(moved))
    assert not matches(WEEKLY, cal_filter(moved.replace("20250310", "20250324").replace("20250311", "20250325")))


def test_valarm_time_range_and_is_not_defined():
    alarm = ('<C:comp-filter name="VEVENT"><C:comp-filter name="VALARM">'
             '<C:time-range start="20250303T074500Z" end="20250303T074501Z"/></C:comp-filter></C:comp-filter>')
    assert matches(WEEKLY, cal_filter(alarm))
    assert not matches(WEEKLY, cal_filter(alarm.replace("074500Z", "074400Z").replace("074501Z", "074459Z")))
    assert not matches(WEEKLY, cal_filter('<C:comp-filter name="VTODO"/>'))
    assert matches(WEEKLY, cal_filter('<C:comp-filter name="VTODO"><C:is-not-defined/></C:comp-filter>'))
    assert matches(WEEKLY, cal_filter('<C:comp-filter name="VEVENT"><C:prop-filter name="LOCATION">'
                                      '<C:is-not-defined/></C:prop-filter></C:comp-filter>'))


@pytest.mark.parametrize("text, collation, negate, expected", [
    ("STANDUP", "i;ascii-casemap", "no", True),
    ("STANDUP", "i;octet", "no", False),
    ("Standup", "i;octet", "no", True),
    ("standup", "i;ascii-casemap", "yes", False),
    ("lunch", "i;ascii-casemap", "yes", True),
    ("STANDUP", "i;unicode-casemap", "no", True),
])
def test_text_match_collations_and_negation(text, collation, negate, expected):
    flt = cal_filter(f'<C:comp-filter name="VEVENT"><C:prop-filter name="SUMMARY"><C:text-match '
                     f'collation="{collation}" negate-condition="{negate}">{text}</C:text-match>'
                     f'</C:prop-filter></C:comp-filter>')
    assert matches(WEEKLY, flt) is expected


def test_param_filter_and_prop_time_range():
    flt = cal_filter('<C:comp-filter name="VEVENT"><C:prop-filter name="DTSTART"><C:param-filter name="TZID">'
                     '<C:text-match>paris</C:text-match></C:param-filter></C:prop-filter></C:comp-filter>')
    assert matches(WEEKLY, flt)
    flt = cal_filter('<C:comp-filter name="VEVENT"><C:prop-filter name="DTSTART"><C:param-filter name="VALUE">'
                     '<C:is-not-defined/></C:param-filter></C:prop-filter></C:comp-filter>')
    assert matches(WEEKLY, flt)
    todo = calendar("BEGIN:VTODO", "UID:t", "COMPLETED:20250305T100000Z", "END:VTODO")
    done_in_march = ('<C:comp-filter name="VTODO"><C:prop-filter name="COMPLETED"><C:time-range '
                     'start="20250301T000000Z" end="20250401T000000Z"/></C:prop-filter></C:comp-filter>')
    assert matches(todo, cal_filter(done_in_march))
    assert not matches(todo, cal_filter(done_in_march.replace("20250401", "20250302")))


@pytest.mark.parametrize("inner, element", [
    ('<C:comp-filter name="VFOO"/>', "supported-filter"),
    ('<C:comp-filter name="VEVENT"><C:time-range start="20250302T000000Z" end="20250301T000000Z"/>'
     '</C:comp-filter>', "valid-filter"),
    ('<C:comp-filter name="VEVENT"><C:time-range start="20250301T000000"/></C:comp-filter>', "valid-filter"),
    ('<C:comp-filter name="VEVENT"><C:time-range start="2025-03-01"/></C:comp-filter>', "valid-filter"),
    ('<C:comp-filter name="VEVENT"><C:time-range/></C:comp-filter>', "valid-filter"),
    ('<C:comp-filter name="VEVENT"><C:prop-filter name="SUMMARY"><C:text-match collation="i;klingon">x'
     '</C:text-match></C:prop-filter></C:comp-filter>', "supported-collation"),
])
def test_bad_filters(inner, element):
    with pytest.raises(Precondition) as raised:
        cal_filter(inner)
    assert raised.value.element == element


def test_filter_root_must_be_vcalendar():
    with pytest.raises(Precondition):
        parse_filter(ET.fromstring(f'<C:filter {C}><C:comp-filter name="VEVENT"/></C:filter>'))


def test_time_range_attribute_parsing():
    parsed = parse_time_range(ET.fromstring('<t start="20250301T000000Z"/>'))
    assert parsed == TimeRange(utc("20250301T000000Z"), None)


# --- text-match ------------------------------------------------------------------------------

@pytest.mark.parametrize("match, value, expected", [
    (TextMatch("ann", "i;unicode-casemap", "contains"), "JoANNa", True),
    (TextMatch("ann", "i;unicode-casemap", "equals"), "ANN", True),
    (TextMatch("ann", "i;unicode-casemap", "equals"), "ANNa", False),
    (TextMatch("jo", "i;unicode-casemap", "starts-with"), "Joanna", True),
    (TextMatch("na", "i;unicode-casemap", "ends-with"), "Joanna", True),
    (TextMatch("jo", "i;unicode-casemap", "ends-with"), "Joanna", False),
    (TextMatch("ÉLODIE", "i;unicode-casemap", "equals"), "élodie", True),
    (TextMatch("ÉLODIE", "i;ascii-casemap", "equals"), "élodie", False),
    (TextMatch("ÉLODIE", "i;ascii-casemap", "equals"), "Élodie", True),
    (TextMatch("Jo", "i;octet", "starts-with"), "joanna", False),
    (TextMatch("ann", "i;unicode-casemap", "contains", negate=True), "Joanna", False),
])
def test_text_match(match, value, expected):
    assert match.matches(value) is expected


# --- addressbook filters -----------------------------------------------------------------------

CARD = (b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c1\r\nFN:Joanna Smith\r\nN:Smith;Joanna;;;\r\n"
        b"EMAIL;TYPE=work:jo@example.org\r\nTEL;TYPE=cell:+1 555 0100\r\nORG:Acme;Dev\r\n"
        b"X-PET:Rex\r\nEND:VCARD\r\n")
CARD21 = b"BEGIN:VCARD\r\nVERSION:2.1\r\nUID:c2\r\nFN:Old Phone\r\nTEL;WORK;VOICE:+1 555 0199\r\nEND:VCARD\r\n"


def card_filter(inner: str, test: str = "anyof"):
    return parse_card_filter(ET.fromstring(f'<CR:filter {CR} test="{test}">{inner}</CR:filter>'))


@pytest.mark.parametrize("inner, test, expected", [
    ('<CR:prop-filter name="FN"><CR:text-match match-type="starts-with">joa</CR:text-match></CR:prop-filter>',
     "anyof", True),
    ('<CR:prop-filter name="EMAIL"><CR:text-match match-type="ends-with">@example.org</CR:text-match>'
     '</CR:prop-filter>', "anyof", True),
    ('<CR:prop-filter name="TEL"><CR:text-match match-type="equals">+1 555 0100</CR:text-match></CR:prop-filter>',
     "anyof", True),
    ('<CR:prop-filter name="N"><CR:text-match>smith;jo</CR:text-match></CR:prop-filter>', "anyof", True),
    ('<CR:prop-filter name="ORG"><CR:text-match>acme</CR:text-match></CR:prop-filter>', "anyof", True),
    ('<CR:prop-filter name="X-PET"><CR:text-match match-type="equals">rex</CR:text-match></CR:prop-filter>',
     "anyof", True),
    ('<CR:prop-filter name="NICKNAME"><CR:is-not-defined/></CR:prop-filter>', "anyof", True),
    ('<CR:prop-filter name="FN"><CR:text-match>nobody</CR:text-match></CR:prop-filter>'
     '<CR:prop-filter name="UID"><CR:text-match match-type="equals">c1</CR:text-match></CR:prop-filter>',
     "anyof", True),
    ('<CR:prop-filter name="FN"><CR:text-match>nobody</CR:text-match></CR:prop-filter>'
     '<CR:prop-filter name="UID"><CR:text-match match-type="equals">c1</CR:text-match></CR:prop-filter>',
     "allof", False),
    ('<CR:prop-filter name="FN" test="allof"><CR:text-match>joanna</CR:text-match>'
     '<CR:text-match>nobody</CR:text-match></CR:prop-filter>', "anyof", False),
    ('<CR:prop-filter name="FN" test="anyof"><CR:text-match>joanna</CR:text-match>'
     '<CR:text-match>nobody</CR:text-match></CR:prop-filter>', "anyof", True),
    ('<CR:prop-filter name="EMAIL"><CR:param-filter name="TYPE"><CR:text-match match-type="equals">WORK'
     '</CR:text-match></CR:param-filter></CR:prop-filter>', "anyof", True),
    ('<CR:prop-filter name="FN"><CR:text-match negate-condition="yes">joanna</CR:text-match></CR:prop-filter>',
     "anyof", False),
    ('<CR:prop-filter name="FN"><CR:text-match collation="i;octet">joanna</CR:text-match></CR:prop-filter>',
     "anyof", False),
    ('<CR:prop-filter name="FN"><CR:text-match collation="i;ascii-casemap">JOANNA</CR:text-match>'
     '</CR:prop-filter>', "anyof", True),
])
def test_card_filters(inner, test, expected):
    flt = card_filter(inner, test)
    assert card_matches(read_card(CARD), flt) is expected
    if expected:
        assert may_match(CARD, flt)  # the byte prefilter never drops a match


def test_vcard_21_bare_types_and_prefilter():
    flt = card_filter('<CR:prop-filter name="TEL"><CR:param-filter name="TYPE"><CR:text-match '
                      'match-type="equals">work</CR:text-match></CR:param-filter></CR:prop-filter>')
    assert card_matches(read_card(CARD21), flt)
    assert not may_match(CARD21, card_filter('<CR:prop-filter name="FN"><CR:text-match>joanna</CR:text-match>'
                                             '</CR:prop-filter>'))


def test_card_filter_errors():
    with pytest.raises(Precondition) as raised:
        card_filter('<CR:prop-filter name="FN"><CR:text-match collation="i;nope">x</CR:text-match></CR:prop-filter>')
    assert raised.value.element == "supported-collation"
    with pytest.raises(Precondition):
        card_filter('<CR:prop-filter name="FN"><CR:text-match match-type="sounds-like">x</CR:text-match>'
                    '</CR:prop-filter>')
    with pytest.raises(Precondition):
        card_filter("", test="someof")


def test_address_data_selection_keeps_stored_lines():
    request = parse_address_data(ET.fromstring(f'<CR:address-data {CR}><CR:prop name="FN"/><CR:prop name="EMAIL"/>'
                                               '</CR:address-data>'))
    assert render_address_data(CARD, request) == ("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Joanna Smith\r\n"
                                                  "EMAIL;TYPE=work:jo@example.org\r\nEND:VCARD\r\n")


# --- calendar-data: partial retrieval, expand, limit-recurrence-set ------------------------------

def test_expand_gives_utc_instances_without_rules():
    expanded = expand(WEEKLY, rng("20250301T000000Z", "20250325T000000Z"), None)
    events = expanded.walk("VEVENT")
    starts = sorted(e["DTSTART"].dt for e in events)
    assert starts == [utc("20250303T080000Z"), utc("20250310T130000Z"), utc("20250324T080000Z")]
    text = expanded.to_ical().decode()
    for gone in ("RRULE", "EXDATE", "TZID", "VTIMEZONE"):
        assert gone not in text
    assert all("RECURRENCE-ID" in e for e in events)
    assert "RECURRENCE-ID:20250310T080000Z" in text


def test_limit_recurrence_set_keeps_master_and_overrides_in_range():
    kept = limit_recurrence_set(calendar(*[line for line in WEEKLY.to_ical().decode().splitlines()
                                           if line not in ("BEGIN:VCALENDAR", "END:VCALENDAR")]),
                                rng("20250320T000000Z", "20250401T000000Z"), None)
    assert [e.get("RECURRENCE-ID") is None for e in kept.walk("VEVENT")] == [True]


def test_partial_retrieval():
    request = parse_calendar_data(ET.fromstring(
        f'<C:calendar-data {C}><C:comp name="VCALENDAR"><C:prop name="VERSION"/><C:comp name="VEVENT">'
        '<C:prop name="SUMMARY"/><C:prop name="UID"/></C:comp></C:comp></C:calendar-data>'))
    text = render_calendar_data(WEEKLY.to_ical(), request)
    assert "SUMMARY:Standup" in text and "UID:w" in text and "VERSION:2.0" in text
    assert "DTSTART" not in text and "PRODID" not in text and "VALARM" not in text
    assert render_calendar_data(b"BEGIN:VCALENDAR\r\nX:1\r\n", parse_calendar_data(
        ET.fromstring(f"<C:calendar-data {C}/>"))) == "BEGIN:VCALENDAR\r\nX:1\r\n"  # verbatim
    with pytest.raises(Precondition):
        parse_calendar_data(ET.fromstring(f'<C:calendar-data {C} content-type="application/json"/>'))


# --- free-busy ---------------------------------------------------------------------------------

def event_bytes(*lines: str) -> bytes:
    return calendar("BEGIN:VEVENT", "UID:e", *lines, "END:VEVENT").to_ical()


def test_busy_periods_merge_and_exclusions():
    items = [
        event_bytes("DTSTART:20250301T100000Z", "DTEND:20250301T110000Z"),
        event_bytes("DTSTART:20250301T103000Z", "DTEND:20250301T120000Z"),
        event_bytes("DTSTART:20250301T130000Z", "DTEND:20250301T140000Z", "TRANSP:TRANSPARENT"),
        event_bytes("DTSTART:20250301T150000Z", "DTEND:20250301T160000Z", "STATUS:CANCELLED"),
        event_bytes("DTSTART:20250301T170000Z", "DTEND:20250301T180000Z", "STATUS:TENTATIVE"),
        event_bytes("DTSTART:20250228T230000Z", "DTEND:20250301T010000Z"),  # clipped at the range start
        event_bytes("DTSTART:20250301T060000Z", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=3"),
        b"not a calendar",
    ]
    periods = busy_periods(items, utc("20250301T000000Z"), utc("20250302T000000Z"))
    assert periods == [
        (utc("20250301T000000Z"), utc("20250301T010000Z"), "BUSY"),
        (utc("20250301T060000Z"), utc("20250301T070000Z"), "BUSY"),
        (utc("20250301T100000Z"), utc("20250301T120000Z"), "BUSY"),
        (utc("20250301T170000Z"), utc("20250301T180000Z"), "BUSY-TENTATIVE"),
    ]
    text = render_freebusy(periods, utc("20250301T000000Z"), utc("20250302T000000Z")).decode()
    assert "BEGIN:VFREEBUSY" in text and "DTSTART:20250301T000000Z" in text
    assert "FREEBUSY;FBTYPE=BUSY-TENTATIVE" in text and "20250301T100000Z/20250301T120000Z" in text
