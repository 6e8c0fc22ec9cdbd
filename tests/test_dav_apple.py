"""Apple Calendar (iOS and macOS) against a real DAV daemon, request by request, with the bodies and headers
Apple's clients send (as CalendarServer's load-test request data and caldavtester scripts record them):
discovery of principal, home and calendars; sharing a calendar from the owner's Mac and what the sharee's
iPhone sees; and an invitation between two household members, accepted, rescheduled and cancelled."""
from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import icalendar
import pytest


# bob's calendar address as alice's iPhone writes it from her contacts: his own, registered on his account.
BOB = "mailto:bob@example.org"
ALICE = "mailto:alice@localhost"


@pytest.fixture(scope="module", autouse=True)
def bobs_own_address(dav):
    assert dav.hearth("user", "email", "bob", "add", BOB[7:]).returncode == 0


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
    (inbox_href, (_, _, request)), = inbox.items()
    status, headers, fetched = apple(dav, MAC, "GET", inbox_href, user="bob")
    assert status == 200 and fetched == request and headers["content-type"].startswith("text/calendar")
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


# --- discovery: what Calendar asks of the principal, the home and the calendars -------------------------

PRINCIPAL_PROPS = {  # macOS 10.11+ and iOS (CalendarServer's load-test request data), the union of both
    IPHONE: ("C:allowed-calendar-component-set B:calendar-home-set B:calendar-user-address-set "
             "A:current-user-principal A:displayname C:dropbox-home-URL C:email-address-set C:notification-URL "
             "A:principal-collection-set A:principal-URL A:resource-id B:schedule-inbox-URL B:schedule-outbox-URL "
             "A:supported-report-set"),
    MAC: ("B:calendar-home-set B:calendar-user-address-set A:current-user-principal A:displayname "
          "C:dropbox-home-URL C:email-address-set C:notification-URL A:principal-collection-set A:principal-URL "
          "A:resource-id B:schedule-inbox-URL B:schedule-outbox-URL A:supported-report-set"),
}
HOME_PROPS = {
    IPHONE: ("A:add-member C:allowed-sharing-modes E:bulk-requests D:calendar-color B:calendar-description "
             "B:calendar-free-busy-set D:calendar-order B:calendar-timezone A:current-user-privilege-set "
             "A:displayname C:getctag C:me-card A:owner C:publish-url C:push-transports C:pushkey "
             "A:quota-available-bytes A:quota-used-bytes D:refreshrate A:resource-id A:resourcetype "
             "B:schedule-calendar-transp B:schedule-default-calendar-URL C:source C:subscribed-strip-alarms "
             "C:subscribed-strip-attachments C:subscribed-strip-todos B:supported-calendar-component-set "
             "A:supported-report-set A:sync-token C:xmpp-server C:xmpp-uri"),
    MAC: ("A:add-member C:allowed-sharing-modes D:autoprovisioned E:bulk-requests B:calendar-alarm "
          "D:calendar-color B:calendar-description B:calendar-free-busy-set D:calendar-order B:calendar-timezone "
          "A:current-user-privilege-set B:default-alarm-vevent-date B:default-alarm-vevent-datetime A:displayname "
          "C:getctag C:invite D:language-code D:location-code A:owner C:pre-publish-url C:publish-url "
          "C:push-transports C:pushkey A:quota-available-bytes A:quota-used-bytes D:refreshrate A:resource-id "
          "A:resourcetype B:schedule-calendar-transp B:schedule-default-calendar-URL C:source "
          "C:subscribed-strip-alarms C:subscribed-strip-attachments C:subscribed-strip-todos "
          "B:supported-calendar-component-set B:supported-calendar-component-sets A:supported-report-set "
          "A:sync-token B:managed-attachments-server-URL"),
}
EXPAND_PROXIES = """<?xml version="1.0" encoding="UTF-8"?>
<A:expand-property xmlns:A="DAV:">
  <A:property name="calendar-proxy-read-for" namespace="http://calendarserver.org/ns/">
    <A:property name="calendar-user-address-set" namespace="urn:ietf:params:xml:ns:caldav"/>
    <A:property name="email-address-set" namespace="http://calendarserver.org/ns/"/>
    <A:property name="displayname" namespace="DAV:"/>
  </A:property>
  <A:property name="calendar-proxy-write-for" namespace="http://calendarserver.org/ns/">
    <A:property name="calendar-user-address-set" namespace="urn:ietf:params:xml:ns:caldav"/>
    <A:property name="email-address-set" namespace="http://calendarserver.org/ns/"/>
    <A:property name="displayname" namespace="DAV:"/>
  </A:property>
</A:expand-property>"""
INITIAL = ('<?xml version="1.0" encoding="UTF-8"?><A:propfind xmlns:A="DAV:"><A:prop><A:current-user-principal/>'
           '<A:principal-URL/><A:resourcetype/></A:prop></A:propfind>')
PREFIX_URI = {"A": "DAV:", "B": "urn:ietf:params:xml:ns:caldav", "C": "http://calendarserver.org/ns/",
              "D": "http://apple.com/ns/ical/", "E": "http://me.com/_namespace/"}


def apple_propfind(dav, agent: str, path: str, props: str, user: str = "alice", depth: str = "0"):
    """A PROPFIND with Apple's property list; checks every property is answered once, 200 or 404, in the
    namespace it was asked in. Returns href -> {clark name: property element} of the 200 ones."""
    asked = [f"{{{PREFIX_URI[p.split(':')[0]]}}}{p.split(':')[1]}" for p in props.split()]
    body = (f'<?xml version="1.0" encoding="UTF-8"?><A:propfind {NAMESPACES}><A:prop>'
            + "".join(f"<{p}/>" for p in props.split()) + "</A:prop></A:propfind>")
    status, _, answer = apple(dav, agent, "PROPFIND", path, body, user=user, Depth=depth)
    assert status == 207, answer
    found = {}
    for href, response in responses(answer).items():
        by_status = {}
        for propstat in response.findall(f"{D}propstat"):
            code = propstat.findtext(f"{D}status").split()[1]
            for prop in propstat.find(f"{D}prop"):
                assert prop.tag not in by_status, (href, prop.tag)
                by_status[prop.tag] = (code, prop)
        assert sorted(by_status) == sorted(asked), (href, set(asked) ^ set(by_status))
        assert {code for code, _ in by_status.values()} <= {"200", "404"}, (href, by_status)
        found[href] = {name: prop for name, (code, prop) in by_status.items() if code == "200"}
    return found


def test_discovery_answers_every_property_apple_asks_for(dav):
    for agent in (IPHONE, MAC):
        # Account setup: the well-known address leads to the DAV root, which names the user's principal.
        status, headers, _ = apple(dav, agent, "PROPFIND", "/.well-known/caldav", INITIAL, Depth="0")
        assert status == 301 and headers["location"].endswith("/dav/")
        root = apple_propfind(dav, agent, "/dav/", "A:current-user-principal A:principal-URL A:resourcetype")["/dav/"]
        assert root[f"{D}current-user-principal"].findtext(f"{D}href") == "/dav/principals/alice/"
        status, headers, _ = apple(dav, agent, "OPTIONS", "/dav/principals/alice/")
        assert {"calendar-access", "calendar-auto-schedule", "calendarserver-sharing"} <= \
            {word.strip() for word in headers["dav"].split(",")}
        principal = apple_propfind(dav, agent, "/dav/principals/alice/",
                                   PRINCIPAL_PROPS[agent])["/dav/principals/alice/"]
        assert principal[f"{C}calendar-home-set"].findtext(f"{D}href") == "/dav/calendars/alice/"
        notifications = principal[f"{CS}notification-URL"].findtext(f"{D}href")
        assert notifications == "/dav/notifications/alice/"

        listing = apple_propfind(dav, agent, "/dav/calendars/alice/", HOME_PROPS[agent], depth="1")
        calendar = listing["/dav/calendars/alice/calendar/"]
        assert [m.tag for m in calendar[f"{CS}allowed-sharing-modes"]] == [f"{CS}can-be-shared"]
        assert {t.tag for t in calendar[f"{D}resourcetype"]} == {f"{D}collection", f"{C}calendar"}
        for mailbox in ("inbox", "outbox"):  # the scheduling mailboxes cannot be shared, and do not say so
            assert f"{CS}allowed-sharing-modes" not in listing[f"/dav/calendars/alice/{mailbox}/"]

        # At every start the Mac asks which principals the user is a delegate of: nobody's, hearth has no
        # delegation (CalendarServer's calendar-proxy groups), so both are there and empty.
        status, _, body = apple(dav, agent, "REPORT", "/dav/principals/alice/", EXPAND_PROXIES)
        assert status == 207, body
        found = responses(body)["/dav/principals/alice/"]
        assert found.findtext(f"{D}propstat/{D}status").split()[1] == "200"
        assert [(p.tag, len(p)) for p in found.find(f"{D}propstat/{D}prop")] == [
            (f"{CS}calendar-proxy-read-for", 0), (f"{CS}calendar-proxy-write-for", 0)]

        # The notification collection: a collection of notifications, holding none (shares need no answer).
        status, _, body = apple(dav, agent, "PROPFIND", notifications, GETETAG_CTYPE.replace(
            "<A:getcontenttype/>", "<C:notificationtype/>"), Depth="1")
        assert status == 207 and list(responses(body)) == [notifications]
        found = apple_propfind(dav, agent, notifications, "A:resourcetype A:sync-token")[notifications]
        assert {t.tag for t in found[f"{D}resourcetype"]} == {f"{D}collection", f"{CS}notification"}
        sync = ('<?xml version="1.0" encoding="UTF-8"?><A:sync-collection xmlns:A="DAV:"><A:sync-token>'
                f'{found[f"{D}sync-token"].text}</A:sync-token><A:sync-level>1</A:sync-level><A:prop><A:getetag/>'
                '</A:prop></A:sync-collection>')
        status, _, body = apple(dav, agent, "REPORT", notifications, sync)
        assert status == 207 and responses(body) == {}
        assert apple(dav, agent, "PROPFIND", notifications, GETETAG_CTYPE, user="bob", Depth="0")[0] == 403
        assert apple(dav, agent, "PUT", notifications + "x.xml", b"<x/>")[0] in (403, 404)


# --- sharing a calendar from the owner's Mac -----------------------------------------------------------

def share_request(*changes: str) -> str:
    return ('<?xml version="1.0" encoding="utf-8" ?><CS:share xmlns:D="DAV:" '
            'xmlns:CS="http://calendarserver.org/ns/">' + "".join(changes) + "</CS:share>")


def share_set(href: str, access: str, summary: str = "Family") -> str:
    return f"<CS:set><D:href>{href}</D:href><CS:summary>{summary}</CS:summary><CS:{access}/></CS:set>"


def share_remove(href: str) -> str:
    return f"<CS:remove><D:href>{href}</D:href></CS:remove>"


def invite_reply(hosturl: str, answer: str, user: str = "bob") -> str:
    return ("<?xml version='1.0' encoding='UTF-8'?><invite-reply xmlns='http://calendarserver.org/ns/'>"
            f"<href xmlns='DAV:'>mailto:{user}@localhost</href><{answer}/><hosturl><href xmlns='DAV:'>{hosturl}"
            "</href></hosturl><in-reply-to>hearth-share</in-reply-to><summary>Family</summary></invite-reply>")


def invitees(prop: ET.Element) -> dict[str, tuple[str, str]]:
    """CS:invite -> sharee href -> (status, access)."""
    return {user.findtext(f"{D}href"): (next(c.tag for c in user if c.tag.startswith(f"{CS}invite-")),
                                        user.find(f"{CS}access")[0].tag) for user in prop.findall(f"{CS}user")}


PERSONAL_PATCH = ('<?xml version="1.0" encoding="UTF-8"?><A:propertyupdate xmlns:A="DAV:" '
                  'xmlns:D="http://apple.com/ns/ical/"><A:set><A:prop><A:displayname>{name}</A:displayname>'
                  '<D:calendar-color symbolic-color="custom">{color}</D:calendar-color>'
                  '<D:calendar-order>{order}</D:calendar-order></A:prop></A:set></A:propertyupdate>')
FAMILY, MOUNT = "/dav/calendars/alice/family/", "/dav/calendars/bob/family_shared_by_alice/"
SHARE_PROPS = "A:resourcetype C:invite C:shared-url C:allowed-sharing-modes A:current-user-privilege-set"


def test_expand_property_describes_the_resources_an_href_property_names(dav):
    body = ('<A:expand-property xmlns:A="DAV:"><A:property name="calendar-home-set" '
            'namespace="urn:ietf:params:xml:ns:caldav"><A:property name="displayname"/><A:property name="nope"/>'
            '</A:property><A:property name="displayname"/><A:property name="missing"/></A:expand-property>')
    for principal, home_status in (("alice", "200"), ("bob", "403")):  # bob's home is not alice's to read
        status, _, answer = apple(dav, MAC, "REPORT", f"/dav/principals/{principal}/", body)
        assert status == 207, answer
        (response,) = responses(answer).values()
        by_status = {ps.findtext(f"{D}status").split()[1]: ps.find(f"{D}prop")
                     for ps in response.findall(f"{D}propstat")}
        assert by_status["200"].findtext(f"{D}displayname") == principal
        assert [p.tag for p in by_status["404"]] == [f"{D}missing"]
        home = by_status["200"].find(f"{C}calendar-home-set/{D}response")
        assert home.findtext(f"{D}href") == f"/dav/calendars/{principal}/"
        if home_status == "200":
            assert home.findtext(f"{D}propstat/{D}prop/{D}displayname") == "alice"
            assert home.find(f"{D}propstat/{D}prop/{D}nope") is not None  # in the home's 404 propstat
        else:
            assert home.findtext(f"{D}status").split()[1] == "403"


def test_owner_shares_from_the_mac_and_the_sharee_sees_accepts_and_leaves(dav):
    assert apple(dav, MAC, "MKCALENDAR", FAMILY)[0] == 201
    status, _, body = apple(dav, MAC, "POST", FAMILY, share_request(share_set(BOB, "read-write")))
    assert status == 200, body

    # The owner's Mac: shared-owner, and bob in the invite, accepted (hearth's shares take effect at once).
    mine = apple_propfind(dav, MAC, FAMILY, SHARE_PROPS)[FAMILY]
    assert f"{CS}shared-owner" in {t.tag for t in mine[f"{D}resourcetype"]}
    assert invitees(mine[f"{CS}invite"]) == {BOB: (f"{CS}invite-accepted", f"{CS}read-write")}
    assert f"{CS}shared-url" not in mine

    # bob's iPhone: the calendar is in his home, marked shared, pointing at alice's, with alice as organizer.
    listing = apple_propfind(dav, IPHONE, "/dav/calendars/bob/", SHARE_PROPS + " A:displayname", user="bob",
                             depth="1")
    theirs = listing[MOUNT]
    assert f"{CS}shared" in {t.tag for t in theirs[f"{D}resourcetype"]}
    assert theirs[f"{CS}shared-url"].findtext(f"{D}href") == FAMILY
    assert theirs[f"{CS}invite"].findtext(f"{CS}organizer/{D}href") == "/dav/principals/alice/"
    assert invitees(theirs[f"{CS}invite"]) == {BOB: (f"{CS}invite-accepted", f"{CS}read-write")}
    assert f"{CS}allowed-sharing-modes" not in theirs  # a sharee cannot pass it on
    assert "write-content" in {p.tag[6:] for p in theirs[f"{D}current-user-privilege-set"].iter()}
    # He colours it, renames it and puts it first in his list, as iOS sends it; that is his alone, and a
    # read-only sharee may do it too. alice orders her own list the same way; her colour stays hers.
    status, _, body = apple(dav, IPHONE, "PROPPATCH", MOUNT, PERSONAL_PATCH.format(
        name="Martins &amp; co", color="#FF2968FF", order="0"), user="bob")
    assert status == 207 and all(s.text.split()[1] == "200" for s in ET.fromstring(body).iter(f"{D}status")), body
    status, _, body = apple(dav, MAC, "PROPPATCH", FAMILY, '<?xml version="1.0" encoding="UTF-8"?><A:propertyupdate '
                            'xmlns:A="DAV:"><A:set><A:prop><D:calendar-order xmlns:D="http://apple.com/ns/ical/">3'
                            '</D:calendar-order></A:prop></A:set></A:propertyupdate>')
    assert status == 207 and b"200 OK" in body, body
    seen = {who: apple_propfind(dav, MAC, path, "A:displayname D:calendar-color D:calendar-order", user=who)[path]
            for who, path in (("bob", MOUNT), ("alice", FAMILY))}
    assert {name.split("}")[1]: prop.text for name, prop in seen["bob"].items()} == {
        "displayname": "Martins & co", "calendar-color": "#FF2968FF", "calendar-order": "0"}
    assert {name.split("}")[1]: prop.text for name, prop in seen["alice"].items()} == {"calendar-order": "3"}

    # Nothing waits in his notification collection: there is nothing to accept.
    status, _, body = apple(dav, IPHONE, "PROPFIND", "/dav/notifications/bob/", GETETAG_CTYPE, user="bob", Depth="1")
    assert list(responses(body)) == ["/dav/notifications/bob/"]

    # Were his client to answer an invitation anyway (as after a CalendarServer notification), accepting
    # says where the calendar is, by the owner's URL without its slash, as caldavtester sends it.
    status, _, body = apple(dav, IPHONE, "POST", "/dav/calendars/bob/", invite_reply(FAMILY.rstrip("/"),
                            "invite-accepted"), user="bob")
    assert status == 200, body
    assert ET.fromstring(body).tag == f"{CS}shared-as" and ET.fromstring(body).findtext(f"{D}href") == MOUNT
    status, _, body = apple(dav, IPHONE, "POST", "/dav/calendars/bob/", invite_reply(
        "/dav/calendars/alice/calendar/", "invite-accepted"), user="bob")
    assert status == 403 and b"need-privileges" in body  # not shared with him

    # alice lowers bob to read-only; carol's address is added.
    status, _, body = apple(dav, MAC, "POST", FAMILY, share_request(
        share_set(BOB, "read"), share_set("mailto:carol@localhost", "read")))
    assert status == 200, body
    mine = apple_propfind(dav, MAC, FAMILY, SHARE_PROPS)[FAMILY]
    assert invitees(mine[f"{CS}invite"]) == {BOB: (f"{CS}invite-accepted", f"{CS}read"),
                                             "mailto:carol@localhost": (f"{CS}invite-accepted", f"{CS}read")}

    # Someone outside the household: refused by name, with the reason, and nothing of the request applied.
    status, _, body = apple(dav, MAC, "POST", FAMILY, share_request(
        share_remove("mailto:carol@localhost"), share_set("mailto:martin@example.org", "read-write")))
    assert status == 207, body
    answer = responses(body)
    assert answer["mailto:martin@example.org"].findtext(f"{D}status").split()[1] == "403"
    assert "not a member of this household" in answer["mailto:martin@example.org"].findtext(f"{D}responsedescription")
    assert answer["mailto:carol@localhost"].findtext(f"{D}status").split()[1] == "424"
    assert "mailto:carol@localhost" in invitees(apple_propfind(dav, MAC, FAMILY, SHARE_PROPS)[FAMILY][f"{CS}invite"])

    # carol declines from her client: she leaves the share.
    status, _, body = apple(dav, IPHONE, "POST", "/dav/calendars/carol/", invite_reply(FAMILY, "invite-declined",
                            "carol"), user="carol")
    assert status == 200, body
    assert "/dav/calendars/carol/family_shared_by_alice/" not in apple_propfind(
        dav, IPHONE, "/dav/calendars/carol/", "A:resourcetype", user="carol", depth="1")
    assert "mailto:carol@localhost" not in invitees(apple_propfind(dav, MAC, FAMILY, SHARE_PROPS)[FAMILY][
        f"{CS}invite"])
    # Shared again, she deletes it from her calendars on her Mac instead: the same.
    assert apple(dav, MAC, "POST", FAMILY, share_request(share_set("mailto:carol@localhost", "read")))[0] == 200
    assert apple(dav, MAC, "DELETE", "/dav/calendars/carol/family_shared_by_alice/", user="carol")[0] == 204
    assert "mailto:carol@localhost" not in invitees(apple_propfind(dav, MAC, FAMILY, SHARE_PROPS)[FAMILY][
        f"{CS}invite"])

    # alice stops sharing with bob: the calendar is hers alone again, and leaves bob's home.
    status, _, body = apple(dav, MAC, "POST", FAMILY, share_request(share_remove(BOB)))
    assert status == 200, body
    mine = apple_propfind(dav, MAC, FAMILY, SHARE_PROPS)[FAMILY]
    assert f"{CS}invite" not in mine and f"{CS}shared-owner" not in {t.tag for t in mine[f"{D}resourcetype"]}
    assert MOUNT not in apple_propfind(dav, IPHONE, "/dav/calendars/bob/", "A:resourcetype", user="bob", depth="1")
