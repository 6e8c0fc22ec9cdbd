"""Thunderbird's CalDAV provider (comm-central calendar/providers/caldav) replayed request by request.

Each request is the one Thunderbird builds, with its bodies, headers and User-Agent; each answer is read
the way Thunderbird reads it:
- account setup (CalDavDetector): PROPFIND on /.well-known/caldav (the redirect followed with the same
  request), the home set, and its Depth: 1 members that are calendars;
- discovery (checkDavResourceType, checkServerCaps, findPrincipalNS, checkPrincipalsNameSpace): a PROPFIND
  on the calendar, OPTIONS on its parent (the home set) for `calendar-auto-schedule` in the DAV header,
  then a PROPFIND on the principal for the home set, the addresses and the inbox and outbox; "you" is the
  first mailto: address of calendar-user-address-set;
- sync (CalDavWebDavSyncHandler, CalDavMultigetSyncHandler): sync-collection asking for getcontenttype and
  getetag, then calendar-multiget of what changed; the inbox is polled the same way;
- with server-side scheduling Thunderbird only PUTs the event (If-None-Match: * when new, If-Match after),
  with ATTENDEEs and no SCHEDULE-AGENT, and the server delivers; free-busy is a POST to the outbox
  (CalDavFreeBusyRequest).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

import icalendar
import pytest

from tests.dav_harness import dav_daemon, event_of, partstats

D, C = "{DAV:}", "{urn:ietf:params:xml:ns:caldav}"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0"
XML_HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'
TEXT_XML = "text/xml; charset=utf-8"
NAMESPACES = {"D": "DAV:", "C": "urn:ietf:params:xml:ns:caldav", "CS": "http://calendarserver.org/ns/",
              "A": "http://apple.com/ns/ical/"}


@pytest.fixture(scope="module")
def dav(tmp_path_factory):
    for daemon in dav_daemon(tmp_path_factory, "alice", "bob"):
        # bob as alice's address book knows him: his own address, registered on his hearth account
        assert daemon.hearth("user", "email", "bob", "add", "bob@example.org").returncode == 0
        yield daemon


def thunderbird(dav, user: str, method: str, path: str, body: str | bytes | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes]:
    return dav.request(method, path, body, user=user, headers={"User-Agent": USER_AGENT, **(headers or {})})


def propfind_all(dav, user: str, path: str, props: list[str], depth: str = "0") -> dict[str, dict[str, ET.Element]]:
    """CalDavPropfindRequest (its body and Depth; a redirect is followed with the same request, as its
    channel does): each response's 200 properties by D:/C:/CS:/A: name, by href."""
    used = sorted({p.split(":")[0] for p in props} | {"D"})
    xmlns = " ".join(f'xmlns:{prefix}="{NAMESPACES[prefix]}"' for prefix in used)
    body = XML_HEADER + f"<D:propfind {xmlns}><D:prop>" + "".join(f"<{p}/>" for p in props) + "</D:prop></D:propfind>"
    status, headers, answer = thunderbird(dav, user, "PROPFIND", path, body,
                                          {"Depth": depth, "Content-Type": TEXT_XML})
    if status in (301, 302, 307, 308):
        return propfind_all(dav, user, headers["location"], props, depth)
    assert status == 207, answer
    found = {}
    for response in ET.fromstring(answer).findall(f"{D}response"):
        named = found[response.findtext(f"{D}href")] = {}
        for propstat in response.findall(f"{D}propstat"):
            if " 200 " in propstat.findtext(f"{D}status"):
                for prop in propstat.find(f"{D}prop"):
                    prefix = next(p for p, uri in NAMESPACES.items() if prop.tag.startswith("{" + uri + "}"))
                    named[f"{prefix}:{prop.tag.split('}')[1]}"] = prop
    return found


def propfind(dav, user: str, path: str, props: list[str]) -> dict[str, ET.Element]:
    """The first response's properties of a Depth: 0 CalDavPropfindRequest (its `firstProps`)."""
    return next(iter(propfind_all(dav, user, path, props).values()))


def hrefs(prop: ET.Element) -> list[str]:
    return [h.text.strip() for h in prop.findall(f"{D}href")]


def detect_calendars(dav, user: str) -> dict[str, dict[str, ET.Element]]:
    """CalDavDetector, given only the server's address: .well-known/caldav, then the home set (from there
    or from the current-user-principal), whose Depth: 1 members with a calendar resourcetype are offered."""
    found = propfind(dav, user, "/.well-known/caldav", ["D:resourcetype", "D:owner", "D:displayname",
                                                        "D:current-user-principal", "D:current-user-privilege-set",
                                                        "A:calendar-color", "C:calendar-home-set"])
    assert found["D:resourcetype"].find(f"{C}calendar") is None
    if "C:calendar-home-set" not in found:
        principal = hrefs(found["D:current-user-principal"])[0]
        found = propfind(dav, user, principal, ["C:calendar-home-set"])
    [home] = hrefs(found["C:calendar-home-set"])
    members = propfind_all(dav, user, home, ["D:resourcetype", "D:displayname", "D:current-user-privilege-set",
                                             "A:calendar-color"], depth="1")
    return {href: props for href, props in members.items()
            if props["D:resourcetype"].find(f"{C}calendar") is not None}


def writable(props: dict[str, ET.Element]) -> bool:
    """Thunderbird's read-only test on current-user-privilege-set."""
    privileges = {p[0].tag for p in props["D:current-user-privilege-set"].findall(f"{D}privilege")}
    return bool(privileges & {f"{D}write", f"{D}write-content", f"{D}write-properties", f"{D}all"})


def discover(dav, user: str, calendar: str) -> dict:
    """checkDavResourceType -> checkServerCaps -> findPrincipalNS -> checkPrincipalsNameSpace, as the
    provider decides from each answer: what it ends up knowing about the calendar and its user."""
    props = propfind(dav, user, calendar, ["D:resourcetype", "D:owner", "D:current-user-principal",
                                           "D:current-user-privilege-set", "D:supported-report-set",
                                           "C:supported-calendar-component-set", "CS:getctag"])
    assert props["D:resourcetype"].find(f"{C}calendar") is not None
    assert writable(props)
    reports = {r.tag for r in props["D:supported-report-set"].iter() if r.tag != f"{D}supported-report"}
    components = {c.get("name") for c in props["C:supported-calendar-component-set"]}
    assert {"VEVENT", "VTODO"} <= components
    assert props["CS:getctag"].text
    principal = hrefs(props["D:current-user-principal"])[0]

    home = calendar.rstrip("/").rpartition("/")[0] + "/"  # setCalHomeSet(true): the parent
    status, headers, _ = thunderbird(dav, user, "OPTIONS", home)
    assert 200 <= status < 300, status
    features = headers["dav"].split(",")[1:]  # the first is the version
    auto_schedule = "calendar-auto-schedule" in {f.strip() for f in features}

    box = propfind(dav, user, principal, ["C:calendar-home-set", "C:calendar-user-address-set",
                                           "C:schedule-inbox-URL", "C:schedule-outbox-URL"])
    homes = hrefs(box["C:calendar-home-set"])
    assert len(homes) == 1 or home in homes, homes  # else it does not trust the addresses
    address = next(a for a in hrefs(box["C:calendar-user-address-set"]) if a.lower().startswith("mailto:"))
    return {"sync": f"{D}sync-collection" in reports, "auto_schedule": auto_schedule, "address": address,
            "inbox": hrefs(box["C:schedule-inbox-URL"])[0], "outbox": hrefs(box["C:schedule-outbox-URL"])[0],
            "principal": principal}


def webdav_sync(dav, user: str, collection: str, token: str | None = None) -> tuple[str, dict[str, str]]:
    """CalDavWebDavSyncHandler.doWebDAVSync: (new token, {href: etag} to fetch); fails on any response
    element Thunderbird would count as an unhandled error (it then disables the calendar)."""
    sync_token = f"<sync-token>{token}</sync-token>" if token else "<sync-token/>"
    body = (XML_HEADER + '<sync-collection xmlns="DAV:">' + sync_token + "<sync-level>1</sync-level>"
            "<prop><getcontenttype/><getetag/></prop></sync-collection>")
    status, _, answer = thunderbird(dav, user, "REPORT", collection, body, {"Depth": "1", "Content-Type": TEXT_XML})
    assert status == 207, answer
    root = ET.fromstring(answer)
    changed = {}
    for response in root.findall(f"{D}response"):
        href = response.findtext(f"{D}href")
        status_line = response.findtext(f"{D}status") or ""
        kind = response.findtext(f".//{D}getcontenttype") or ""
        etag = response.findtext(f".//{D}getetag")
        if not kind and href.endswith(".ics"):
            kind = "text/calendar"
        if " 404" in status_line:
            continue  # deleted
        if kind.startswith("text/calendar") and etag:
            changed[href] = etag
        elif href.endswith("/") and (" 200" in status_line or not status_line):
            continue
        else:
            raise AssertionError(f"Thunderbird would count this as an unhandled error: {ET.tostring(response)}")
    return root.findtext(f"{D}sync-token"), changed


def multiget(dav, user: str, collection: str, paths) -> dict[str, bytes]:
    """CalDavMultigetSyncHandler.doMultiGet: calendar-data of each href, by href."""
    body = (XML_HEADER + '<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            "<D:prop><D:getetag/><C:calendar-data/></D:prop>" + "".join(f"<D:href>{p}</D:href>" for p in paths)
            + "</C:calendar-multiget>")
    status, _, answer = thunderbird(dav, user, "REPORT", collection, body, {"Depth": "1", "Content-Type": TEXT_XML})
    assert status == 207, answer
    return {r.findtext(f"{D}href"): r.findtext(f".//{C}calendar-data").encode()
            for r in ET.fromstring(answer).findall(f"{D}response")}


def thunderbird_event(uid: str, organizer: str, attendees: dict[str, str], summary: str = "Dinner",
                      start: str = "20250612T190000", sequence: int = 0) -> bytes:
    """An event as Thunderbird's ics-serializer writes it: its PRODID, a VTIMEZONE, X-MOZ- properties,
    RSVP'd attendees without SCHEDULE-AGENT."""
    lines = [f"ATTENDEE;RSVP=TRUE;PARTSTAT={partstat};ROLE=REQ-PARTICIPANT;CUTYPE=INDIVIDUAL:{address}"
             for address, partstat in attendees.items()]
    return ("BEGIN:VCALENDAR\r\nPRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN\r\nVERSION:2.0\r\n"
            "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
            "TZNAME:CEST\r\nDTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n"
            "BEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\nDTSTART:19701025T030000\r\n"
            "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
            f"BEGIN:VEVENT\r\nCREATED:20250601T080000Z\r\nLAST-MODIFIED:20250601T080000Z\r\n"
            f"DTSTAMP:20250601T080000Z\r\nUID:{uid}\r\nSUMMARY:{summary}\r\n"
            f"ORGANIZER;RSVP=TRUE;PARTSTAT=ACCEPTED;ROLE=CHAIR:{organizer}\r\n" + "".join(l + "\r\n" for l in lines)
            + f"DTSTART;TZID=Europe/Berlin:{start}\r\nDTEND;TZID=Europe/Berlin:20250612T210000\r\n"
            f"SEQUENCE:{sequence}\r\nX-MOZ-GENERATION:{sequence + 1}\r\nTRANSP:OPAQUE\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n").encode()


def test_account_setup_from_the_servers_address_offers_the_users_calendars(dav):
    calendars = detect_calendars(dav, "alice")
    assert list(calendars) == ["/dav/calendars/alice/calendar/"]  # not the inbox and outbox
    assert all(writable(props) for props in calendars.values())


def test_discovery_finds_server_side_scheduling_the_users_address_and_the_mailboxes(dav):
    found = discover(dav, "alice", "/dav/calendars/alice/calendar/")
    assert found == {"sync": True, "auto_schedule": True, "address": "mailto:alice@localhost",
                     "inbox": "/dav/calendars/alice/inbox/", "outbox": "/dav/calendars/alice/outbox/",
                     "principal": "/dav/principals/alice/"}
    token, changed = webdav_sync(dav, "alice", "/dav/calendars/alice/calendar/")
    assert token and changed == {}
    assert webdav_sync(dav, "alice", found["inbox"])[0]  # pollInbox: the same sync on the inbox


def test_an_invitation_from_thunderbird_reaches_the_attendee_who_accepts_from_thunderbird(dav):
    alice = discover(dav, "alice", "/dav/calendars/alice/calendar/")
    bob = discover(dav, "bob", "/dav/calendars/bob/calendar/")
    assert bob["address"] == "mailto:bob@example.org"  # the first mailto: Thunderbird takes as him
    alice_cal, bob_cal = "/dav/calendars/alice/calendar/", "/dav/calendars/bob/calendar/"
    alice_token, _ = webdav_sync(dav, "alice", alice_cal)
    bob_token, _ = webdav_sync(dav, "bob", bob_cal)
    inbox_token, _ = webdav_sync(dav, "bob", bob["inbox"])

    # doAdoptItem: PUT UID.ics with If-None-Match: *, then getUpdatedItem (a multiget of that href).
    uid = "3c9f0d4e-7a51-4b8e-9d2a-tb-invite"
    raw = thunderbird_event(uid, alice["address"], {bob["address"]: "NEEDS-ACTION"})
    href = f"{alice_cal}{uid}.ics"
    status, headers, _ = thunderbird(dav, "alice", "PUT", href, raw,
                                     {"If-None-Match": "*", "Content-Type": "text/calendar; charset=utf-8"})
    assert status == 201
    stored = multiget(dav, "alice", alice_cal, [href])[href]
    assert event_of(stored)["ATTENDEE"].params.get("SCHEDULE-STATUS") == "1.2"  # delivered

    # Bob's Thunderbird: the event in his calendar and the REQUEST in his inbox.
    bob_token, changed = webdav_sync(dav, "bob", bob_cal, bob_token)
    [(bob_href, bob_etag)] = changed.items()
    copy = multiget(dav, "bob", bob_cal, [bob_href])[bob_href]
    assert str(event_of(copy)["UID"]) == uid and partstats(copy) == {bob["address"]: "NEEDS-ACTION"}
    inbox_token, in_inbox = webdav_sync(dav, "bob", bob["inbox"], inbox_token)
    [inbox_href] = in_inbox
    request = multiget(dav, "bob", bob["inbox"], [inbox_href])[inbox_href]
    assert str(icalendar.Calendar.from_ical(request)["METHOD"]) == "REQUEST"

    # Bob accepts: doModifyItem PUTs his copy with If-Match, then the inbox item is deleted.
    accepted = copy.replace(b"PARTSTAT=NEEDS-ACTION", b"PARTSTAT=ACCEPTED")
    status, _, _ = thunderbird(dav, "bob", "PUT", bob_href, accepted,
                               {"If-Match": bob_etag, "Content-Type": "text/calendar; charset=utf-8"})
    assert status == 204
    assert thunderbird(dav, "bob", "DELETE", inbox_href)[0] == 204

    # Alice's next sync brings the reply into her copy.
    alice_token, changed = webdav_sync(dav, "alice", alice_cal, alice_token)
    assert list(changed) == [href]
    organizer_copy = multiget(dav, "alice", alice_cal, [href])[href]
    assert partstats(organizer_copy) == {bob["address"]: "ACCEPTED"}

    # Alice moves it (doModifyItem: If-Match, SEQUENCE and X-MOZ-GENERATION up): bob's copy follows.
    moved = thunderbird_event(uid, alice["address"], {bob["address"]: "ACCEPTED"}, start="20250612T200000",
                              sequence=1)
    status, _, _ = thunderbird(dav, "alice", "PUT", href, moved,
                               {"If-Match": changed[href], "Content-Type": "text/calendar; charset=utf-8"})
    assert status == 204
    bob_token, changed = webdav_sync(dav, "bob", bob_cal, bob_token)
    assert list(changed) == [bob_href]
    copy = multiget(dav, "bob", bob_cal, [bob_href])[bob_href]
    assert event_of(copy)["DTSTART"].dt.hour == 20

    # Alice deletes it (doDeleteItem: DELETE with If-Match): bob's copy is cancelled, with a CANCEL in his inbox.
    alice_token, changed = webdav_sync(dav, "alice", alice_cal, alice_token)
    assert thunderbird(dav, "alice", "DELETE", href, headers={"If-Match": changed[href]})[0] == 204
    bob_token, changed = webdav_sync(dav, "bob", bob_cal, bob_token)
    assert str(event_of(multiget(dav, "bob", bob_cal, [bob_href])[bob_href])["STATUS"]) == "CANCELLED"
    inbox_token, in_inbox = webdav_sync(dav, "bob", bob["inbox"], inbox_token)
    methods = [str(icalendar.Calendar.from_ical(raw)["METHOD"])
               for raw in multiget(dav, "bob", bob["inbox"], list(in_inbox)).values()]
    assert "CANCEL" in methods, methods


def test_free_busy_of_a_member_through_the_outbox(dav):
    alice = discover(dav, "alice", "/dav/calendars/alice/calendar/")
    uid = "tb-busy-bob"
    raw = thunderbird_event(uid, "mailto:bob@localhost", {}, summary="Busy", start="20250701T100000")
    raw = raw.replace(b"DTEND;TZID=Europe/Berlin:20250612T210000", b"DTEND;TZID=Europe/Berlin:20250701T110000")
    assert thunderbird(dav, "bob", "PUT", f"/dav/calendars/bob/calendar/{uid}.ics", raw,
                       {"If-None-Match": "*", "Content-Type": "text/calendar; charset=utf-8"})[0] == 201
    query = ("BEGIN:VCALENDAR\r\nPRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN\r\nVERSION:2.0\r\n"
             "METHOD:REQUEST\r\nBEGIN:VFREEBUSY\r\nUID:5e0b7d8a-tb-freebusy\r\nDTSTAMP:20250601T080000Z\r\n"
             "DTSTART:20250630T220000Z\r\nDTEND:20250702T220000Z\r\n"
             f"ORGANIZER:{alice['address']}\r\n"
             "ATTENDEE;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT;CUTYPE=INDIVIDUAL:mailto:bob@localhost\r\n"
             "END:VFREEBUSY\r\nEND:VCALENDAR\r\n")
    status, _, answer = thunderbird(dav, "alice", "POST", alice["outbox"], query,
                                    {"Originator": alice["address"], "Recipient": "mailto:bob@localhost",
                                     "Content-Type": "text/calendar; charset=utf-8"})
    assert status == 200, answer
    # FreeBusyResponse reads response > recipient > href, request-status and calendar-data by local name.
    response = ET.fromstring(answer).find(f"{C}response")
    assert response.findtext(f"{C}recipient/{D}href") == "mailto:bob@localhost"
    assert response.findtext(f"{C}request-status").startswith("2")
    freebusy = response.findtext(f"{C}calendar-data").replace("\r\n ", "").splitlines()
    busy = [line for line in freebusy if line.startswith("FREEBUSY")]
    assert any(line.endswith(":20250701T080000Z/20250701T090000Z") and "FBTYPE=BUSY" in line.upper()
               for line in busy), busy
