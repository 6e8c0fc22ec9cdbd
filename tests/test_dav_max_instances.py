"""CALDAV:max-instances for what is stored (RFC 4791 §5.3.2.1): a PUT, COPY or MOVE of an object whose
recurrence repeats more than MAX_INSTANCES times within two years of its first instance is a 403 with the
precondition, and nothing is stored; endless birthdays and daily standups stay welcome. An invitation
that repeats too often is refused before any attendee is delivered to."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

import dateutil.rrule
import icalendar
import pytest

from services.core.db import write
from services.dav.errors import Precondition
from services.dav.ical import parse_calendar
from services.dav.instance_limit import check_instance_count
from services.dav.query.instances import MAX_INSTANCES
from services.dav.store import CALENDAR, copy_item, create_collection, list_items, move_item
from tests.dav_harness import propfind
from tests.test_dav_reports import error_element
from tests.test_dav_scheduling import invitation, items


def event(*lines: str, uid: str = "r") -> bytes:
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hearth tests//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20250101T000000Z\r\n" + "".join(f"{line}\r\n" for line in lines)
            + "SUMMARY:Repeating\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n").encode()


ACCEPTED = {
    "yearly birthday since 1940": event("DTSTART;VALUE=DATE:19400312", "RRULE:FREQ=YEARLY"),
    "daily standup since 1900": event("DTSTART;TZID=Europe/Berlin:19000101T090000", "DURATION:PT15M",
                                      "RRULE:FREQ=DAILY"),
    "daily for twenty years": event("DTSTART:20240110T100000Z", "DURATION:PT1H",
                                    "RRULE:FREQ=DAILY;UNTIL=20440110T100000Z"),
    "every four hours, endless": event("DTSTART:20250101T000000Z", "DURATION:PT5M", "RRULE:FREQ=HOURLY;INTERVAL=4"),
    f"exactly {MAX_INSTANCES} hourly": event("DTSTART:20250101T000000Z", f"RRULE:FREQ=HOURLY;COUNT={MAX_INSTANCES}"),
    "one over, less one excluded": event("DTSTART:20250101T000000Z", f"RRULE:FREQ=HOURLY;COUNT={MAX_INSTANCES + 1}",
                                         "EXDATE:20250101T010000Z"),
    "three days of minutes": event("DTSTART:20250101T000000Z", "RRULE:FREQ=MINUTELY;UNTIL=20250104T000000Z"),
}
REFUSED = {
    "hourly, endless": event("DTSTART:20250101T000000Z", "DURATION:PT5M", "RRULE:FREQ=HOURLY"),
    "every second, endless": event("DTSTART:20250101T000000Z", "RRULE:FREQ=SECONDLY"),
    "one over the limit": event("DTSTART:20250101T000000Z", f"RRULE:FREQ=HOURLY;COUNT={MAX_INSTANCES + 1}"),
    "eight times a day, zoned, UNTIL in local time": event(
        "DTSTART;TZID=Europe/Berlin:20250101T100000", "RRULE:FREQ=DAILY;BYHOUR=1,4,7,10,13,16,19,22;UNTIL=20300101"),
    "four days of minutes": event("DTSTART:20250101T000000Z", "RRULE:FREQ=MINUTELY;UNTIL=20250105T000000Z"),
    "a daily rule plus twelve RDATEs a day": event("DTSTART;VALUE=DATE:20250101", "RRULE:FREQ=DAILY", *(
        f"RDATE:{(date(2025, 1, 1) + timedelta(days=day)):%Y%m%d}T{hour:02}0000Z" for day in range(365)
        for hour in range(1, 24, 2))),
}


@pytest.mark.parametrize("name", ACCEPTED)
def test_rules_within_the_limit_are_stored(name):
    assert parse_calendar(ACCEPTED[name]).uid == "r"


@pytest.mark.parametrize("name", REFUSED)
def test_rules_beyond_the_limit_are_max_instances(name):
    with pytest.raises(Precondition) as raised:
        parse_calendar(REFUSED[name])
    assert (raised.value.element, raised.value.status) == ("max-instances", 403)
    assert f"more than {MAX_INSTANCES} times within 2 years" in raised.value.reason


def test_counting_stops_one_past_the_limit(monkeypatch):
    """However old or fast the rule, dateutil is walked MAX_INSTANCES + 1 instances at most."""
    walked = []
    iterate = dateutil.rrule.rrule._iter

    def counted(rule):
        for moment in iterate(rule):
            walked.append(moment)
            yield moment

    monkeypatch.setattr(dateutil.rrule.rrule, "_iter", counted)
    with pytest.raises(Precondition):
        check_instance_count(icalendar.Calendar.from_ical(event("DTSTART:19000101T000000Z", "RRULE:FREQ=SECONDLY")),
                             "VEVENT")
    assert MAX_INSTANCES <= len(walked) <= MAX_INSTANCES + 2  # (heapq.merge reads one ahead)
    walked.clear()
    check_instance_count(icalendar.Calendar.from_ical(ACCEPTED["daily standup since 1900"]), "VEVENT")
    assert walked == []  # at most one a day: judged without walking the rule


def test_copy_and_move_of_an_object_beyond_the_limit_are_refused(db):
    """An object stored before the limit existed (written here directly) cannot be copied or moved on."""
    source = write(db, lambda d: create_collection(d, "alice", CALENDAR, "old")).id
    target = write(db, lambda d: create_collection(d, "alice", CALENDAR, "new")).id
    write(db, lambda d: d.execute(
        "INSERT INTO dav_items (collection_id, name, uid, etag, component, raw, first_start, last_end, created_at, "
        "modified_at, seq) VALUES (?, 'hourly.ics', 'r', '\"e\"', 'VEVENT', ?, NULL, NULL, 0, 0, 1)",
        [source, REFUSED["hourly, endless"]]))
    for transfer in (copy_item, move_item):
        with pytest.raises(Precondition) as raised:
            write(db, lambda d: transfer(d, source, "hourly.ics", target, "hourly.ics"))
        assert raised.value.element == "max-instances"
    assert list_items(db, target) == [] and [i.name for i in list_items(db, source)] == ["hourly.ics"]


# --- over HTTP ---------------------------------------------------------------------------------------

CAL = "/dav/calendars/alice/calendar/"


def test_put_beyond_the_limit_is_403_max_instances_and_stores_nothing(dav):
    status, _, answer = dav.request("PUT", CAL + "hourly.ics", REFUSED["hourly, endless"], user="alice",
                                    headers={"Content-Type": "text/calendar"})
    assert status == 403 and error_element(answer) == "{urn:ietf:params:xml:ns:caldav}max-instances"
    assert f"PUT {CAL}hourly.ics -> 403: max-instances: this VEVENT repeats more than {MAX_INSTANCES} times" in dav.log()
    assert dav.request("GET", CAL + "hourly.ics", user="alice")[0] == 404
    status, _, _ = dav.request("PUT", CAL + "birthday.ics", ACCEPTED["yearly birthday since 1940"], user="alice")
    assert status == 201
    # Replacing an accepted object with one beyond the limit leaves the accepted one in place.
    status, _, _ = dav.request("PUT", CAL + "birthday.ics", REFUSED["hourly, endless"], user="alice")
    assert status == 403
    assert b"FREQ=YEARLY" in dav.request("GET", CAL + "birthday.ics", user="alice")[2]


def test_an_endless_daily_rule_is_put_and_copied(dav):
    status, _, _ = dav.request("PUT", CAL + "standup.ics", ACCEPTED["daily standup since 1900"].replace(
        b"UID:r", b"UID:standup"), user="alice")
    assert status == 201
    assert dav.request("MKCALENDAR", "/dav/calendars/alice/copies/", user="alice")[0] == 201
    status, _, _ = dav.request("COPY", CAL + "standup.ics", user="alice", headers={
        "Destination": f"http://127.0.0.1:{dav.port}/dav/calendars/alice/copies/standup.ics"})
    assert status == 201


def test_an_invitation_beyond_the_limit_is_refused_before_anyone_is_invited(dav):
    """The organizer's PUT fails with the precondition; no attendee delivery is even tried."""
    hourly = invitation("hourly-meeting", "mailto:bob@localhost", extra="RRULE:FREQ=HOURLY\r\n")
    status, _, answer = dav.request("PUT", CAL + "hourly-meeting.ics", hourly, user="alice")
    assert status == 403 and error_element(answer) == "{urn:ietf:params:xml:ns:caldav}max-instances"
    assert not any(b"hourly-meeting" in raw for raw in items(dav, "bob", "calendar") + items(dav, "bob", "inbox"))
    assert "not delivered" not in dav.log()
    # The same meeting weekly and endless reaches bob.
    weekly = invitation("weekly-meeting", "mailto:bob@localhost", extra="RRULE:FREQ=WEEKLY\r\n")
    assert dav.request("PUT", CAL + "weekly-meeting.ics", weekly, user="alice")[0] == 201
    assert any(b"weekly-meeting" in raw for raw in items(dav, "bob", "calendar"))


def test_max_instances_is_advertised_on_calendars(dav):
    status, _, answer = propfind(dav, CAL, "<C:max-instances/>")
    assert status == 207
    assert ET.fromstring(answer).findtext(".//{urn:ietf:params:xml:ns:caldav}max-instances") == str(MAX_INSTANCES)
