"""The DAV REPORTs over real HTTP: calendar-query (caldav's search, with and without expand),
multigets, addressbook-query, free-busy-query and sync-collection, against a running daemon."""
from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import pytest

from tests.dav_harness import EVENT

C = 'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"'
CR = 'xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav"'
NS = {"D": "DAV:", "C": "urn:ietf:params:xml:ns:caldav", "CR": "urn:ietf:params:xml:ns:carddav"}
XML = {"Content-Type": "application/xml; charset=utf-8"}


def ics(*lines: str) -> str:
    return "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//hearth tests//EN", *lines,
                        "END:VCALENDAR", ""])


def vevent(uid: str, *lines: str) -> list[str]:
    return ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20250101T000000Z", *lines, "END:VEVENT"]


SINGLE = ics(*vevent("single", "DTSTART:20250301T100000Z", "DTEND:20250301T110000Z", "SUMMARY:Dentist"))
ALL_DAY = ics(*vevent("allday", "DTSTART;VALUE=DATE:20250305", "DTEND;VALUE=DATE:20250306", "SUMMARY:Holiday"))
FLOATING = ics(*vevent("floating", "DTSTART:20250307T100000", "DTEND:20250307T110000", "SUMMARY:Local"))
WEEKLY = ics(
    *vevent("weekly", "DTSTART;TZID=Europe/Paris:20250303T090000", "DTEND;TZID=Europe/Paris:20250303T093000",
            "RRULE:FREQ=WEEKLY;COUNT=5", "EXDATE;TZID=Europe/Paris:20250317T090000", "SUMMARY:Standup"),
    *vevent("weekly", "RECURRENCE-ID;TZID=Europe/Paris:20250310T090000",
            "DTSTART;TZID=Europe/Paris:20250310T110000", "DTEND;TZID=Europe/Paris:20250310T113000",
            "SUMMARY:Standup moved"))


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def report(dav, path: str, body: str, user: str = "alice", depth: str = "1"):
    return dav.request("REPORT", path, body, user=user, headers={**XML, "Depth": depth})


def responses(body: bytes) -> dict[str, ET.Element]:
    """href -> DAV:response of a multistatus."""
    root = ET.fromstring(body)
    return {r.findtext("D:href", namespaces=NS): r for r in root.findall("D:response", NS)}


def status_of(response: ET.Element) -> str:
    return response.findtext("D:status", namespaces=NS) or ""


def error_element(body: bytes) -> str:
    return ET.fromstring(body)[0].tag


@pytest.fixture(scope="module")
def search_calendar(dav):
    calendar = dav.client("alice").principal().make_calendar(name="Search", cal_id="search")
    for text in (SINGLE, ALL_DAY, FLOATING, WEEKLY):
        calendar.save_event(text)
    return calendar


def uids_of(found) -> list[str]:
    return sorted(str(obj.icalendar_component["UID"]) for obj in found)


@pytest.mark.parametrize("start, end, expected", [
    (utc(2025, 3, 1), utc(2025, 3, 8), ["allday", "floating", "single", "weekly"]),
    (utc(2025, 3, 5, 12), utc(2025, 3, 5, 13), ["allday"]),
    (utc(2025, 3, 7, 10), utc(2025, 3, 7, 10, 30), ["floating"]),  # floating read in UTC: no calendar zone
    (utc(2025, 3, 10, 10), utc(2025, 3, 10, 10, 30), ["weekly"]),  # the overridden instance, 11:00 Paris
    (utc(2025, 3, 10, 8), utc(2025, 3, 10, 8, 30), []),  # where it used to be
    (utc(2025, 3, 17, 8), utc(2025, 3, 17, 8, 30), []),  # EXDATE
    (utc(2025, 3, 31, 7), utc(2025, 3, 31, 7, 30), ["weekly"]),  # summer time: 09:00 Paris = 07:00 UTC
    (utc(2025, 4, 7), utc(2025, 5, 1), []),  # COUNT=5 is over
])
def test_search_by_time_range(search_calendar, start, end, expected):
    assert uids_of(search_calendar.search(start=start, end=end, event=True)) == expected


def test_search_with_expand(dav, search_calendar):
    found = search_calendar.search(start=utc(2025, 3, 1), end=utc(2025, 4, 1), event=True, expand=True)
    weekly = [obj for obj in found if str(obj.icalendar_component["UID"]) == "weekly"]
    starts = sorted(obj.icalendar_component["DTSTART"].dt for obj in weekly)
    assert starts == [utc(2025, 3, 3, 8), utc(2025, 3, 10, 10), utc(2025, 3, 24, 8), utc(2025, 3, 31, 7)]
    for obj in weekly:
        assert "RECURRENCE-ID" in obj.icalendar_component and "RRULE" not in obj.icalendar_component

    # the server's own expansion, read raw: instances in UTC, no rules, no VTIMEZONE
    body = (f'<C:calendar-query {C}><D:prop><C:calendar-data><C:expand start="20250301T000000Z" '
            f'end="20250401T000000Z"/></C:calendar-data></D:prop><C:filter><C:comp-filter name="VCALENDAR">'
            f'<C:comp-filter name="VEVENT"><C:time-range start="20250301T000000Z" end="20250401T000000Z"/>'
            f'</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>')
    status, _, answer = report(dav, search_calendar.url.path, body)
    assert status == 207
    data = {href.rsplit("/", 1)[-1]: r.findtext(".//C:calendar-data", namespaces=NS)
            for href, r in responses(answer).items()}
    weekly_text = next(text for text in data.values() if "UID:weekly" in text)
    assert weekly_text.count("BEGIN:VEVENT") == 4 and "RRULE" not in weekly_text and "TZID" not in weekly_text
    assert "RECURRENCE-ID:20250310T080000Z" in weekly_text and "DTSTART:20250310T100000Z" in weekly_text
    assert "DTSTART:20250301T100000Z" in next(text for text in data.values() if "UID:single" in text)


def test_plain_query_returns_stored_bytes(dav, search_calendar):
    body = (f'<C:calendar-query {C}><D:prop><D:getetag/><C:calendar-data/></D:prop><C:filter>'
            f'<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range start="20250301T000000Z"'
            f' end="20250302T000000Z"/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>')
    status, _, answer = report(dav, search_calendar.url.path, body)
    (href, response), = responses(answer).items()
    _, _, stored = dav.request("GET", href, user="alice")
    assert response.findtext(".//C:calendar-data", namespaces=NS).encode() == stored
    assert response.findtext(".//D:getetag", namespaces=NS).startswith('"')


def test_partial_retrieval_and_floating_in_the_request_timezone(dav, search_calendar):
    paris = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\n"
             "BEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
             "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\n"
             "TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n"
             "END:VTIMEZONE\r\nEND:VCALENDAR\r\n")
    body = (f'<C:calendar-query {C}><D:prop><C:calendar-data><C:comp name="VCALENDAR"><C:comp name="VEVENT">'
            f'<C:prop name="SUMMARY"/></C:comp></C:comp></C:calendar-data></D:prop><C:filter>'
            f'<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range start="20250307T090000Z"'
            f' end="20250307T093000Z"/></C:comp-filter></C:comp-filter></C:filter>'
            f'<C:timezone><![CDATA[{paris}]]></C:timezone></C:calendar-query>')
    status, _, answer = report(dav, search_calendar.url.path, body)
    found = responses(answer)
    assert status == 207 and len(found) == 1  # 10:00 floating, in Paris, is 09:00 UTC
    data = next(iter(found.values())).findtext(".//C:calendar-data", namespaces=NS)
    assert "SUMMARY:Local" in data and "DTSTART" not in data and "UID" not in data


TODOS = {
    "due-in-march": ("DUE:20250315T120000Z",),
    "due-in-april": ("DUE:20250415T120000Z",),
    "starts-in-march": ("DTSTART:20250310T090000Z", "DURATION:PT2H"),
    "done-in-march": ("DTSTART:20250311T090000Z", "COMPLETED:20250312T090000Z", "STATUS:COMPLETED"),
}


def test_todos_by_time_range(dav):
    tasks = dav.client("alice").principal().make_calendar(name="Tasks", cal_id="tasks",
                                                           supported_calendar_component_set=["VTODO"])
    for uid, lines in TODOS.items():
        tasks.save_todo(ics("BEGIN:VTODO", f"UID:{uid}", "DTSTAMP:20250101T000000Z", f"SUMMARY:{uid}",
                            *lines, "END:VTODO"))
    march = dict(start=utc(2025, 3, 1), end=utc(2025, 4, 1), todo=True)
    assert uids_of(tasks.search(**march, include_completed=True)) == ["done-in-march", "due-in-march",
                                                                      "starts-in-march"]
    assert uids_of(tasks.search(**march)) == ["due-in-march", "starts-in-march"]  # caldav filters COMPLETED out
    assert uids_of(tasks.search(start=utc(2025, 4, 1), end=utc(2025, 5, 1), todo=True)) == ["due-in-april"]


def test_multiget_with_missing_encoded_and_absolute_hrefs(dav):
    path = "/dav/calendars/alice/calendar/"
    for name in ("a b.ics", "plain.ics"):
        status, _, _ = dav.request("PUT", path + name.replace(" ", "%20"), EVENT % name.encode(),
                                   user="alice", headers={"Content-Type": "text/calendar"})
        assert status in (201, 204)
    hrefs = [path + "a%20b.ics", f"http://127.0.0.1:{dav.port}{path}plain.ics", path + "missing.ics",
             "/dav/calendars/bob/calendar/plain.ics"]
    body = (f'<C:calendar-multiget {C}><D:prop><D:getetag/><C:calendar-data/></D:prop>'
            + "".join(f"<D:href>{h}</D:href>" for h in hrefs) + "</C:calendar-multiget>")
    status, _, answer = report(dav, path, body)
    found = responses(answer)
    assert status == 207 and len(found) == 4
    assert "UID:a b" in found[path + "a%20b.ics"].findtext(".//C:calendar-data", namespaces=NS)
    assert "UID:plain" in found[path + "plain.ics"].findtext(".//C:calendar-data", namespaces=NS)
    assert "404" in status_of(found[path + "missing.ics"])
    assert "404" in status_of(found["/dav/calendars/bob/calendar/plain.ics"])


CARDS = {
    "joanna": "FN:Joanna Smith\r\nN:Smith;Joanna;;;\r\nEMAIL;TYPE=work:jo@example.org\r\nTEL;TYPE=cell:+1 555 0100",
    "elodie": "FN:Élodie Martin\r\nN:Martin;Élodie;;;\r\nEMAIL:elodie@example.fr\r\nTEL:+33 1 23 45 67 89",
    "bob": "FN:Bob Jones\r\nN:Jones;Bob;;;\r\nEMAIL:bob@example.org\r\nNICKNAME:Bobby",
}


@pytest.fixture(scope="module")
def contacts(dav):
    path = "/dav/addressbooks/alice/contacts/"
    for uid, lines in CARDS.items():
        card = f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\n{lines}\r\nEND:VCARD\r\n"
        status, _, _ = dav.request("PUT", f"{path}{uid}.vcf", card.encode(), user="alice",
                                   headers={"Content-Type": "text/vcard"})
        assert status == 201
    return path


def card_query(dav, path, filters: str, test: str = "anyof", extra: str = "", prop: str = "<D:getetag/>"):
    body = (f'<CR:addressbook-query {CR}><D:prop>{prop}</D:prop><CR:filter test="{test}">{filters}</CR:filter>'
            f'{extra}</CR:addressbook-query>')
    status, _, answer = report(dav, path, body)
    return status, answer


def matched(dav, path, filters: str, **kwargs) -> list[str]:
    status, answer = card_query(dav, path, filters, **kwargs)
    assert status == 207, answer
    return sorted(href.rsplit("/", 1)[-1].removesuffix(".vcf") for href, r in responses(answer).items()
                  if "507" not in status_of(r))


def text_match(prop: str, text: str, match_type: str = "contains", collation: str = "i;unicode-casemap",
               negate: str = "no") -> str:
    return (f'<CR:prop-filter name="{prop}"><CR:text-match match-type="{match_type}" collation="{collation}" '
            f'negate-condition="{negate}">{text}</CR:text-match></CR:prop-filter>')


@pytest.mark.parametrize("filters, expected", [
    (text_match("FN", "smith"), ["joanna"]),
    (text_match("FN", "JONES", "equals"), []),
    (text_match("FN", "bob jones", "equals"), ["bob"]),
    (text_match("FN", "élo", "starts-with"), ["elodie"]),
    (text_match("FN", "ÉLODIE MARTIN", "equals"), ["elodie"]),  # unicode-casemap folds É
    (text_match("FN", "élodie martin", "equals"), ["elodie"]),
    (text_match("FN", "élodie martin", "equals", "i;ascii-casemap"), []),  # ascii-casemap does not
    (text_match("FN", "Élodie martin", "equals", "i;ascii-casemap"), ["elodie"]),
    (text_match("FN", "bob", "starts-with", "i;octet"), []),
    (text_match("FN", "Bob", "starts-with", "i;octet"), ["bob"]),
    (text_match("EMAIL", "example.org", "ends-with"), ["bob", "joanna"]),
    (text_match("EMAIL", "example.org", "ends-with", negate="yes"), ["elodie"]),
    (text_match("TEL", "+33", "starts-with"), ["elodie"]),
    (text_match("TEL", "0100", "ends-with"), ["joanna"]),
    (text_match("NICKNAME", "bobby", "equals"), ["bob"]),
    ('<CR:prop-filter name="NICKNAME"><CR:is-not-defined/></CR:prop-filter>', ["elodie", "joanna"]),
    ('<CR:prop-filter name="EMAIL"><CR:param-filter name="TYPE"><CR:text-match match-type="equals">work'
     '</CR:text-match></CR:param-filter></CR:prop-filter>', ["joanna"]),
    (text_match("FN", "smith") + text_match("EMAIL", ".fr", "ends-with"), ["elodie", "joanna"]),
])
def test_addressbook_query(dav, contacts, filters, expected):
    assert matched(dav, contacts, filters) == expected


def test_addressbook_query_allof_limit_and_address_data(dav, contacts):
    both = text_match("FN", "o") + text_match("EMAIL", ".org", "ends-with")
    assert matched(dav, contacts, both, test="allof") == ["bob", "joanna"]
    status, answer = card_query(dav, contacts, text_match("FN", "o"),
                                extra="<CR:limit><CR:nresults>1</CR:nresults></CR:limit>")
    found = responses(answer)
    assert len(found) == 2 and "507" in status_of(found[contacts])  # one card and "there is more"
    status, answer = card_query(dav, contacts, text_match("UID", "bob", "equals"),
                                prop='<CR:address-data><CR:prop name="EMAIL"/></CR:address-data>')
    data = next(iter(responses(answer).values())).findtext(".//CR:address-data", namespaces=NS)
    assert data == "BEGIN:VCARD\r\nVERSION:3.0\r\nEMAIL:bob@example.org\r\nEND:VCARD\r\n"
    status, answer = card_query(dav, contacts, text_match("FN", "x", collation="i;klingon"))
    assert status == 403 and error_element(answer).endswith("supported-collation")


def test_addressbook_multiget(dav, contacts):
    body = (f'<CR:addressbook-multiget {CR}><D:prop><D:getetag/><CR:address-data/></D:prop>'
            f'<D:href>{contacts}bob.vcf</D:href><D:href>{contacts}nobody.vcf</D:href></CR:addressbook-multiget>')
    status, _, answer = report(dav, contacts, body)
    found = responses(answer)
    assert "FN:Bob Jones" in found[contacts + "bob.vcf"].findtext(".//CR:address-data", namespaces=NS)
    assert "404" in status_of(found[contacts + "nobody.vcf"])


def test_free_busy_query(dav, search_calendar):
    body = (f'<C:free-busy-query {C}><C:time-range start="20250301T000000Z" end="20250311T000000Z"/>'
            f'</C:free-busy-query>')
    status, headers, answer = report(dav, search_calendar.url.path, body)
    text = answer.decode()
    assert status == 200 and headers["content-type"].startswith("text/calendar")
    assert "BEGIN:VFREEBUSY" in text
    periods = re.findall(r"FREEBUSY;FBTYPE=BUSY(?:;VALUE=PERIOD)?:(\S+)", text)
    assert periods == ["20250301T100000Z/20250301T110000Z", "20250303T080000Z/20250303T083000Z",
                       "20250305T000000Z/20250306T000000Z", "20250307T100000Z/20250307T110000Z",
                       "20250310T100000Z/20250310T103000Z"]


def sync(dav, path: str, token: str = "", props: str = "<D:getetag/>", limit: int | None = None,
         user: str = "alice"):
    limit_xml = f"<D:limit><D:nresults>{limit}</D:nresults></D:limit>" if limit else ""
    body = (f'<D:sync-collection {C}><D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>'
            f'{limit_xml}<D:prop>{props}</D:prop></D:sync-collection>')
    return dav.request("REPORT", path, body, user=user, headers={**XML, "Depth": "0"})


def token_of(body: bytes) -> str:
    return ET.fromstring(body).findtext("D:sync-token", namespaces=NS)


def test_sync_collection_among_a_thousand_items(dav):
    path = "/dav/calendars/alice/many/"
    assert dav.request("MKCALENDAR", path, user="alice")[0] == 201
    started = time.monotonic()
    for n in range(1000):
        status, _, _ = dav.request("PUT", f"{path}e{n}.ics", EVENT % f"e{n}".encode(), user="alice",
                                   headers={"Content-Type": "text/calendar"})
        assert status == 201
    put_seconds = time.monotonic() - started

    started = time.monotonic()
    status, _, body = sync(dav, path)
    initial_ms = (time.monotonic() - started) * 1000
    assert status == 207 and len(responses(body)) == 1000
    token = token_of(body)

    dav.request("PUT", f"{path}e500.ics", (EVENT % b"e500").replace(b"Dentist", b"Doctor"), user="alice",
                headers={"Content-Type": "text/calendar"})
    started = time.monotonic()
    status, _, body = sync(dav, path, token, props="<D:getetag/><C:calendar-data/>")
    incremental_ms = (time.monotonic() - started) * 1000
    (href, response), = responses(body).items()
    assert href == f"{path}e500.ics" and "SUMMARY:Doctor" in response.findtext(".//C:calendar-data",
                                                                                  namespaces=NS)
    token = token_of(body)

    assert dav.request("DELETE", f"{path}e7.ics", user="alice")[0] == 204
    status, _, body = sync(dav, path, token)
    (href, response), = responses(body).items()
    assert href == f"{path}e7.ics" and "404" in status_of(response) and response.find("D:propstat", NS) is None
    status, _, body = sync(dav, path, token_of(body))
    assert status == 207 and responses(body) == {}

    status, _, body = sync(dav, path, "http://hearth/ns/sync/999999-1")
    assert status == 403 and error_element(body) == "{DAV:}valid-sync-token"
    status, _, body = sync(dav, path, "bogus")
    assert status == 403 and error_element(body) == "{DAV:}valid-sync-token"
    print(f"\n1000 PUTs {put_seconds:.1f}s, initial sync {initial_ms:.0f} ms, incremental {incremental_ms:.1f} ms")


def test_sync_collection_pages_with_a_limit(dav):
    path = "/dav/calendars/alice/paged/"
    assert dav.request("MKCALENDAR", path, user="alice")[0] == 201
    for n in range(25):
        dav.request("PUT", f"{path}p{n}.ics", EVENT % f"p{n}".encode(), user="alice",
                    headers={"Content-Type": "text/calendar"})
    seen, token, pages = set(), "", 0
    while True:
        status, _, body = sync(dav, path, token, limit=10)
        found = responses(body)
        truncated = path in found
        seen |= {href for href in found if href != path}
        token, pages = token_of(body), pages + 1
        if not truncated:
            break
        assert "507" in status_of(found[path])
    assert pages == 3 and len(seen) == 25


def test_caldav_objects_by_sync_token(dav):
    calendar = dav.client("alice").principal().make_calendar(name="Synced", cal_id="synced")
    for n in range(5):
        calendar.save_event((EVENT % f"s{n}".encode()).decode())
    first = calendar.objects_by_sync_token(load_objects=False)
    assert len(list(first)) == 5
    calendar.save_event((EVENT % b"s5").decode())
    later = calendar.objects_by_sync_token(sync_token=first.sync_token, load_objects=True)
    (obj,) = list(later)
    assert "UID:s5" in obj.data


@pytest.mark.parametrize("filters, element", [
    ('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VFOO"/></C:comp-filter>', "supported-filter"),
    ('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range start="20250302T000000Z" '
     'end="20250301T000000Z"/></C:comp-filter></C:comp-filter>', "valid-filter"),
    ('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range start="20250301T000000"/>'
     '</C:comp-filter></C:comp-filter>', "valid-filter"),
    ('<C:comp-filter name="VEVENT"/>', "valid-filter"),
    ('<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:prop-filter name="SUMMARY">'
     '<C:text-match collation="i;klingon">x</C:text-match></C:prop-filter></C:comp-filter></C:comp-filter>',
     "supported-collation"),
])
def test_bad_calendar_filters(dav, filters, element):
    body = f'<C:calendar-query {C}><D:prop><D:getetag/></D:prop><C:filter>{filters}</C:filter></C:calendar-query>'
    status, _, answer = report(dav, "/dav/calendars/alice/calendar/", body)
    assert status == 403 and error_element(answer) == "{urn:ietf:params:xml:ns:caldav}" + element


def test_unsupported_reports_and_access(dav):
    query = (f'<C:calendar-query {C}><D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR"/>'
             f'</C:filter></C:calendar-query>')
    status, _, answer = report(dav, "/dav/calendars/alice/calendar/", query.replace("calendar-query", "foo-query"))
    assert status == 403 and error_element(answer) == "{DAV:}supported-report"
    status, _, answer = report(dav, "/dav/addressbooks/alice/contacts/", query)
    assert status == 403 and error_element(answer) == "{DAV:}supported-report"
    status, _, answer = sync(dav, "/dav/calendars/alice/calendar/a%20b.ics")
    assert status == 403 and error_element(answer) == "{DAV:}supported-report"
    status, _, answer = report(dav, "/dav/calendars/alice/calendar/", query, user="bob")
    assert status == 403 and error_element(answer) == "{DAV:}need-privileges"
    status, _, answer = sync(dav, "/dav/calendars/alice/calendar/", user="bob")
    assert status == 403 and error_element(answer) == "{DAV:}need-privileges"
    assert report(dav, "/dav/calendars/alice/calendar/", "")[0] == 400
    assert dav.request("REPORT", "/dav/calendars/alice/calendar/", query.replace('<D:prop>', '<D:prop>x<'),
                       user="alice")[0] == 400
    status, _, body = report(dav, "/dav/calendars/alice/calendar/", query)  # no range: every object
    assert status == 207
