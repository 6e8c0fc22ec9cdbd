"""Apple Calendar (iOS and macOS) against a real DAV daemon, request by request, with the bodies and headers
Apple's clients send (as CalendarServer's load-test request data and caldavtester scripts record them):
discovery of principal, home and calendars; sharing a calendar from the owner's Mac and what the sharee's
iPhone sees; and an invitation between two household members, accepted, rescheduled and cancelled."""
from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import icalendar

from tests.dav_harness import propfind

# bob's calendar address as alice's iPhone writes it from her contacts. Switch to his own address
# (bob@example.org) once users have extra email addresses.
BOB = "mailto:bob@localhost"
ALICE = "mailto:alice@localhost"

IPHONE = "iOS/17.4 (21E219) dataaccessd/1.0"
MAC = "macOS/14.4 (23E214) CalendarAgent/988"

D, C, CS, A = "{DAV:}", "{urn:ietf:params:xml:ns:caldav}", "{http://calendarserver.org/ns/}", \
    "{http://apple.com/ns/ical/}"
NAMESPACES = ('xmlns:A="DAV:" xmlns:B="urn:ietf:params:xml:ns:caldav" xmlns:C="http://calendarserver.org/ns/" '
              'xmlns:D="http://apple.com/ns/ical/" xmlns:E="http://me.com/_namespace/"')


def apple(dav, agent: str, method: str, path: str, body: bytes | str | None = None, user: str = "alice",
          **headers: str) -> tuple[int, dict, bytes]:
    """One request as an Apple client sends it: its User-Agent, XML bodies typed text/xml."""
    sent = {"User-Agent": agent, **{name.replace("_", "-"): value for name, value in headers.items()}}
    if body is not None:
        sent.setdefault("Content-Type", "text/calendar; charset=utf-8" if method == "PUT"
                        else "text/xml; charset=utf-8")
    return dav.request(method, path, body, user=user, headers=sent)


def responses(body: bytes) -> dict[str, ET.Element]:
    """href -> DAV:response of a multistatus."""
    return {r.findtext(f"{D}href"): r for r in ET.fromstring(body).findall(f"{D}response")}


# --- the household invitation, as Apple Calendar sends it ----------------------------------------------

PARIS = ("BEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\nBEGIN:DAYLIGHT\r\nDTSTART:19810329T020000\r\n"
         "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nTZNAME:CEST\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
         "END:DAYLIGHT\r\nBEGIN:STANDARD\r\nDTSTART:19961027T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n"
         "TZNAME:CET\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n")


def apple_event(uid: str, *, start: str = "20260310T190000", end: str = "20260310T213000", sequence: int = 0,
                bob_partstat: str = "NEEDS-ACTION", status: str = "") -> bytes:
    """An event as Calendar on iOS 17 / macOS 14 writes it: a VTIMEZONE, the organizer as an ACCEPTED CHAIR
    attendee, EMAIL and CN parameters quoted, X-APPLE properties, an alarm with its own UID, no
    SCHEDULE-AGENT (the server schedules)."""
    lines = [
        "BEGIN:VCALENDAR", "CALSCALE:GREGORIAN", "PRODID:-//Apple Inc.//iPhone OS 17.4//EN", "VERSION:2.0",
        PARIS.rstrip("\r\n"), "BEGIN:VEVENT",
        f'ATTENDEE;CN="Alice";CUTYPE=INDIVIDUAL;EMAIL="{ALICE[7:]}";PARTSTAT=ACCEPTED;ROLE=CHAIR:{ALICE}',
        f'ATTENDEE;CN="Bob";CUTYPE=INDIVIDUAL;EMAIL="{BOB[7:]}";PARTSTAT={bob_partstat};ROLE=REQ-PARTICIPANT;'
        f'RSVP=TRUE:{BOB}',
        "CREATED:20260301T090000Z", f"DTEND;TZID=Europe/Paris:{end}", "DTSTAMP:20260301T090012Z",
        f"DTSTART;TZID=Europe/Paris:{start}", "LAST-MODIFIED:20260301T090012Z", "LOCATION:Chez Janou",
        f'ORGANIZER;CN="Alice";EMAIL="{ALICE[7:]}":{ALICE}', f"SEQUENCE:{sequence}",
        *([f"STATUS:{status}"] if status else []), "SUMMARY:Dinner with the Martins", "TRANSP:OPAQUE",
        f"UID:{uid}", "URL;VALUE=URI:", "X-APPLE-CREATOR-IDENTITY:com.apple.mobilecal",
        "X-APPLE-CREATOR-TEAM-IDENTITY:0000000000", "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC",
        "BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:Reminder", "TRIGGER:-PT30M",
        "UID:2F1B7E0C-5A0B-4B7E-9A43-0C3B1D2A7F11", "X-WR-ALARMUID:2F1B7E0C-5A0B-4B7E-9A43-0C3B1D2A7F11",
        "END:VALARM", "END:VEVENT", "END:VCALENDAR"]
    return ("\r\n".join(lines) + "\r\n").encode()


def vevent(raw: bytes) -> icalendar.Component:
    return icalendar.Calendar.from_ical(raw).walk("VEVENT")[0]


def partstat(raw: bytes, address: str) -> str:
    return next(str(a.params["PARTSTAT"]) for a in vevent(raw)["ATTENDEE"] if str(a).lower() == address)


def answered(raw: bytes, address: str, value: str) -> bytes:
    """The attendee's copy with their PARTSTAT changed, re-serialised as a client does."""
    calendar = icalendar.Calendar.from_ical(raw)
    for attendee in calendar.walk("VEVENT")[0]["ATTENDEE"]:
        if str(attendee).lower() == address:
            attendee.params["PARTSTAT"] = value
    return calendar.to_ical()


GETETAG_CTYPE = f'<?xml version="1.0" encoding="UTF-8"?><A:propfind {NAMESPACES}><A:prop><A:getcontenttype/>' \
                '<A:getetag/></A:prop></A:propfind>'
MULTIGET = ('<?xml version="1.0" encoding="UTF-8"?><B:calendar-multiget xmlns:A="DAV:" '
            'xmlns:B="urn:ietf:params:xml:ns:caldav"><A:prop><A:getetag/><B:calendar-data/><B:schedule-tag/>'
            '</A:prop>{hrefs}</B:calendar-multiget>')


def fetch_all(dav, agent: str, user: str, collection: str) -> dict[str, tuple[str, str | None, bytes]]:
    """What Apple's poll does for a collection: PROPFIND Depth 1 for ETags, then a calendar-multiget of the
    hrefs with calendar-data and schedule-tag. href -> (etag, schedule-tag, calendar data)."""
    status, _, body = apple(dav, agent, "PROPFIND", collection, GETETAG_CTYPE, user=user, Depth="1")
    assert status == 207, body
    hrefs = [h for h in responses(body) if h != collection]
    if not hrefs:
        return {}
    status, _, body = apple(dav, agent, "REPORT", collection, MULTIGET.format(
        hrefs="".join(f"<A:href>{h}</A:href>" for h in hrefs)), user=user, Depth="1")
    assert status == 207, body
    found = {}
    for href, response in responses(body).items():
        assert response.findtext(f"{D}propstat/{D}status").split()[1] == "200", ET.tostring(response)
        found[href] = (response.findtext(f".//{D}getetag"), response.findtext(f".//{C}schedule-tag"),
                       response.findtext(f".//{C}calendar-data").encode())
    return found


def test_household_invitation_accepted_rescheduled_and_cancelled_as_apple_calendar_sends_it(dav):
    uid = str(uuid.uuid4()).upper()
    event_href = f"/dav/calendars/alice/calendar/{uid}.ics"

    # alice's iPhone creates the event with bob as attendee: a PUT of a new resource, If-None-Match: *.
    status, headers, body = apple(dav, IPHONE, "PUT", event_href, apple_event(uid), If_None_Match="*")
    assert status == 201, body
    assert "schedule-tag" in headers

    # bob's Mac polls his inbox and his calendar: the invitation is in both.
    inbox = fetch_all(dav, MAC, "bob", "/dav/calendars/bob/inbox/")
    assert len(inbox) == 1
    (_, _, request), = inbox.values()
    assert icalendar.Calendar.from_ical(request)["METHOD"] == "REQUEST"
    assert str(vevent(request)["UID"]) == uid
    calendar = {href: found for href, found in fetch_all(dav, MAC, "bob", "/dav/calendars/bob/calendar/").items()
                if str(vevent(found[2])["UID"]) == uid}
    assert len(calendar) == 1
    (bob_href, (etag, schedule_tag, copy)), = calendar.items()
    assert schedule_tag and partstat(copy, BOB) == "NEEDS-ACTION"
    assert str(vevent(copy)["SUMMARY"]) == "Dinner with the Martins"
    assert vevent(copy)["X-APPLE-TRAVEL-ADVISORY-BEHAVIOR"] == "AUTOMATIC"

    # bob accepts: his client rewrites his copy with PARTSTAT=ACCEPTED and sends it with If-Schedule-Tag-Match,
    # then deletes the request from his inbox.
    accepted = answered(copy, BOB, "ACCEPTED")
    status, headers, body = apple(dav, MAC, "PUT", bob_href, accepted, user="bob",
                                  If_Schedule_Tag_Match=schedule_tag)
    assert status == 204, body
    (inbox_href,) = inbox
    assert apple(dav, MAC, "DELETE", inbox_href, user="bob")[0] == 204

    # alice's iPhone sees ACCEPTED in her copy, and bob's reply in her inbox.
    ours = fetch_all(dav, IPHONE, "alice", "/dav/calendars/alice/calendar/")[event_href]
    assert partstat(ours[2], BOB) == "ACCEPTED"
    replies = fetch_all(dav, IPHONE, "alice", "/dav/calendars/alice/inbox/")
    assert [icalendar.Calendar.from_ical(r[2])["METHOD"] for r in replies.values()] == ["REPLY"]

    # alice moves the dinner an hour later: her client sends SEQUENCE:1 and puts bob back to NEEDS-ACTION,
    # with If-Match on her ETag.
    moved = apple_event(uid, start="20260310T200000", end="20260310T223000", sequence=1)
    status, _, body = apple(dav, IPHONE, "PUT", event_href, moved, If_Match=ours[0])
    assert status == 204, body
    (_, schedule_tag, copy), = [f for f in fetch_all(dav, MAC, "bob", "/dav/calendars/bob/calendar/").values()
                                if str(vevent(f[2])["UID"]) == uid]
    assert vevent(copy)["DTSTART"].dt.hour == 20 and partstat(copy, BOB) == "NEEDS-ACTION"
    inbox = fetch_all(dav, MAC, "bob", "/dav/calendars/bob/inbox/")
    assert [icalendar.Calendar.from_ical(r[2])["METHOD"] for r in inbox.values()] == ["REQUEST"]

    # bob accepts the new time.
    status, _, body = apple(dav, MAC, "PUT", bob_href, answered(copy, BOB, "ACCEPTED"),
                            user="bob", If_Schedule_Tag_Match=schedule_tag)
    assert status == 204, body
    ours = fetch_all(dav, IPHONE, "alice", "/dav/calendars/alice/calendar/")[event_href]
    assert partstat(ours[2], BOB) == "ACCEPTED" and vevent(ours[2])["DTSTART"].dt.hour == 20

    # alice deletes the event: bob's copy is cancelled and a CANCEL waits in his inbox.
    assert apple(dav, IPHONE, "DELETE", event_href, If_Match=ours[0])[0] == 204
    (_, _, copy), = [f for f in fetch_all(dav, MAC, "bob", "/dav/calendars/bob/calendar/").values()
                     if str(vevent(f[2])["UID"]) == uid]
    assert str(vevent(copy)["STATUS"]) == "CANCELLED"
    inbox = fetch_all(dav, MAC, "bob", "/dav/calendars/bob/inbox/")
    assert sorted(str(icalendar.Calendar.from_ical(r[2])["METHOD"]) for r in inbox.values()) == ["CANCEL"]
    # bob's Mac removes the cancelled event; nothing goes back to alice, whose event is gone.
    assert apple(dav, MAC, "DELETE", bob_href, user="bob")[0] == 204
    assert apple(dav, IPHONE, "GET", event_href)[0] == 404
