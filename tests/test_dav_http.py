"""The CalDAV/CardDAV daemon as clients meet it: a real process on a TCP port, the caldav library, raw HTTP."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.dav_harness import EVENT, RECURRING, VCARD, propfind


def test_caldav_client_discovers_creates_saves_fetches_and_deletes(dav):
    client = dav.client("alice")
    principal = client.principal()
    assert str(principal.url).endswith("/dav/principals/alice/")
    assert str(principal.calendar_home_set.url).endswith("/dav/calendars/alice/")
    assert [c.url.path for c in principal.calendars()] == ["/dav/calendars/alice/calendar/"]

    work = principal.make_calendar(name="Work", cal_id="work")
    assert work.url.path == "/dav/calendars/alice/work/"
    assert work.get_display_name() == "Work"
    assert sorted(c.url.path for c in principal.calendars()) == [
        "/dav/calendars/alice/calendar/", "/dav/calendars/alice/work/"]

    single = work.save_event((EVENT % b"dentist-1").decode())
    recurring = work.save_event(RECURRING.decode())
    for saved in (single, recurring):
        status, headers, body = dav.request("GET", saved.url.path, user="alice")
        assert status == 200 and body == saved.wire_data  # the bytes the client PUT, unchanged
        assert headers["content-type"].startswith("text/calendar") and headers["etag"].startswith('"')

    assert "Standup (moved)" in recurring.data and "RECURRENCE-ID" in work.event_by_url(recurring.url).data
    status, _, body = propfind(dav, "/dav/calendars/alice/work/", "<D:getetag/><CS:getctag/>", depth="1")
    assert status == 207 and body.count(b"<D:response>") == 3 and b"getctag" in body

    single.delete()
    assert dav.request("GET", single.url.path, user="alice")[0] == 404
    assert dav.request("GET", recurring.url.path, user="alice")[0] == 200


def test_principal_and_collection_properties(dav):
    status, _, body = propfind(dav, "/dav/principals/alice/",
                               "<D:displayname/><C:calendar-home-set/><C:calendar-user-address-set/><D:foo/>")
    assert status == 207
    assert b"<D:href>/dav/calendars/alice/</D:href>" in body and b"mailto:alice@localhost" in body
    assert b"404 Not Found" in body and b"<D:foo" in body
    status, _, body = dav.request("PROPFIND", "/dav/calendars/alice/calendar/", user="alice",
                                  headers={"Depth": "0"})  # no body: allprop
    assert status == 207 and b"<C:calendar/>" in body and b"sync-token" not in body
    status, _, body = dav.request("PROPFIND", "/dav/addressbooks/alice/", user="alice", headers={"Depth": "1"})
    assert status == 207 and b"/dav/addressbooks/alice/contacts/" in body and b"addressbook" in body


def test_proppatch_and_mkcol_addressbook(dav):
    patch = ('<D:propertyupdate xmlns:D="DAV:" xmlns:A="http://apple.com/ns/ical/"><D:set><D:prop>'
             '<D:displayname>Home</D:displayname><A:calendar-color>#ff0000</A:calendar-color>'
             '</D:prop></D:set></D:propertyupdate>')
    status, _, body = dav.request("PROPPATCH", "/dav/calendars/alice/calendar/", patch, user="alice")
    assert status == 207 and b"200 OK" in body
    status, _, body = propfind(dav, "/dav/calendars/alice/calendar/", "<D:displayname/>")
    assert b"Home" in body
    bad = patch.replace("D:displayname", "D:getetag")
    status, _, body = dav.request("PROPPATCH", "/dav/calendars/alice/calendar/", bad, user="alice")
    assert status == 207 and b"403 Forbidden" in body and b"424 Failed Dependency" in body

    mkcol = ('<D:mkcol xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav"><D:set><D:prop>'
             '<D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype>'
             '<D:displayname>Friends</D:displayname></D:prop></D:set></D:mkcol>')
    assert dav.request("MKCOL", "/dav/addressbooks/alice/friends/", mkcol, user="alice")[0] == 201
    assert dav.request("MKCOL", "/dav/addressbooks/alice/friends/", mkcol, user="alice")[0] == 405
    status, headers, _ = dav.request("PUT", "/dav/addressbooks/alice/friends/carol.vcf", VCARD, user="alice",
                                     headers={"Content-Type": "text/vcard"})
    assert status == 201
    status, got, body = dav.request("GET", "/dav/addressbooks/alice/friends/carol.vcf", user="alice")
    assert body == VCARD and got["etag"] == headers["etag"] and got["content-type"].startswith("text/vcard")
    assert dav.request("DELETE", "/dav/addressbooks/alice/friends/", user="alice")[0] == 204
    tasks = ('<D:mkcol xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>'
             '<D:resourcetype><D:collection/><C:calendar/></D:resourcetype>'
             '<C:supported-calendar-component-set><C:comp name="VTODO"/></C:supported-calendar-component-set>'
             '</D:prop></D:set></D:mkcol>')
    assert dav.request("MKCOL", "/dav/addressbooks/alice/tasks/", tasks, user="alice")[0] == 403
    assert dav.request("MKCOL", "/dav/calendars/alice/tasks/", tasks, user="alice")[0] == 201
    status, _, body = dav.request("PUT", "/dav/calendars/alice/tasks/e.ics", EVENT % b"task-1", user="alice")
    assert status == 403 and b"supported-calendar-component" in body
    assert propfind(dav, "/dav/addressbooks/alice/friends/", "<D:displayname/>")[0] == 404


def test_depth_infinity_is_refused(dav):
    status, _, body = propfind(dav, "/dav/calendars/alice/", "<D:displayname/>", depth="infinity")
    assert status == 403 and b"propfind-finite-depth" in body


def test_put_conditions_and_etags(dav):
    path = "/dav/calendars/alice/calendar/cond.ics"
    status, headers, _ = dav.request("PUT", path, EVENT % b"cond-1", user="alice", headers={"If-None-Match": "*"})
    assert status == 201
    etag = headers["etag"]
    assert dav.request("PUT", path, EVENT % b"cond-1", user="alice", headers={"If-None-Match": "*"})[0] == 412
    assert dav.request("PUT", path, EVENT % b"cond-1", user="alice", headers={"If-Match": '"stale"'})[0] == 412
    changed = (EVENT % b"cond-1").replace(b"Dentist", b"Doctor")
    status, headers, _ = dav.request("PUT", path, changed, user="alice", headers={"If-Match": etag})
    assert status == 204 and headers["etag"] != etag
    status, headers, body = dav.request("HEAD", path, user="alice")
    assert status == 200 and body == b"" and headers["content-length"] == str(len(changed))
    assert dav.request("DELETE", path, user="alice", headers={"If-Match": etag})[0] == 412
    assert dav.request("DELETE", path, user="alice")[0] == 204


def test_bad_calendar_data_is_refused_and_nothing_stored(dav):
    collection = "/dav/calendars/alice/calendar/"
    status, _, body = dav.request("PUT", collection + "broken.ics", b"BEGIN:VCALENDAR\r\nthis is not\r\n",
                                  user="alice")
    assert status in (400, 403) and b"valid-calendar-data" in body
    status, _, body = dav.request("PUT", collection + "card.ics", VCARD, user="alice")
    assert status in (400, 403) and b"valid-calendar-data" in body
    status, _, _ = dav.request("PUT", collection + "weekly.ics", RECURRING, user="alice")
    assert status == 201 and dav.request("GET", collection + "weekly.ics", user="alice")[2] == RECURRING
    for name in ("broken.ics", "card.ics"):
        assert dav.request("GET", collection + name, user="alice")[0] == 404

    assert dav.request("PUT", collection + "first.ics", EVENT % b"dup-1", user="alice")[0] == 201
    status, _, body = dav.request("PUT", collection + "second.ics", EVENT % b"dup-1", user="alice")
    assert status == 403 and b"no-uid-conflict" in body
    assert b"<D:href>/dav/calendars/alice/calendar/first.ics</D:href>" in body
    assert dav.request("GET", collection + "second.ics", user="alice")[0] == 404


def test_oversize_put_is_refused(dav):
    big = (EVENT % b"big-1").replace(b"SUMMARY:Dentist", b"SUMMARY:" + b"x" * (4 * 1024 * 1024 + 10))
    status, _, body = dav.request("PUT", "/dav/calendars/alice/calendar/big.ics", big, user="alice")
    assert status in (403, 413) and (status == 413 or b"max-resource-size" in body)
    assert dav.request("GET", "/dav/calendars/alice/calendar/big.ics", user="alice")[0] == 404


EXTERNAL_ENTITY = ('<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                   '<D:propfind xmlns:D="DAV:"><D:prop><D:displayname>&xxe;</D:displayname></D:prop></D:propfind>')
BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + "".join(f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10))
                  + ']><D:propfind xmlns:D="DAV:"><D:prop><D:displayname>&lol9;</D:displayname></D:prop></D:propfind>')


@pytest.mark.parametrize("body", [EXTERNAL_ENTITY, BILLION_LAUGHS], ids=["external-entity", "billion-laughs"])
def test_hostile_xml_is_refused(dav, body):
    status, _, _ = dav.request("PROPFIND", "/dav/calendars/alice/", body, user="alice", headers={"Depth": "0"})
    assert status == 400
    status, _, _ = dav.request("PROPPATCH", "/dav/calendars/alice/calendar/", body, user="alice")
    assert status == 400
    assert propfind(dav, "/dav/calendars/alice/", "<D:displayname/>")[0] == 207


def test_other_users_collections_need_privileges(dav):
    propfind(dav, "/dav/", "<D:current-user-principal/>", user="bob")  # bob's first login
    for method, path in (("PROPFIND", "/dav/calendars/alice/calendar/"), ("GET", "/dav/calendars/alice/calendar/x.ics"),
                         ("PUT", "/dav/calendars/alice/calendar/x.ics"), ("DELETE", "/dav/calendars/alice/calendar/"),
                         ("MKCALENDAR", "/dav/calendars/alice/bobs/")):
        status, _, body = dav.request(method, path, EVENT % b"bob-1" if method == "PUT" else None, user="bob")
        assert status == 403 and b"need-privileges" in body, (method, body)
    assert propfind(dav, "/dav/calendars/bob/calendar/", "<D:displayname/>", user="bob")[0] == 207


def test_options_and_authentication(dav):
    status, headers, _ = dav.request("OPTIONS", "/dav/")
    assert status == 200
    assert "calendar-access" in headers["dav"] and "addressbook" in headers["dav"]
    assert "extended-mkcol" in headers["dav"] and "PROPFIND" in headers["allow"]
    status, headers, _ = dav.request("PROPFIND", "/dav/", headers={"Depth": "0"})
    assert status == 401 and headers["www-authenticate"].startswith("Basic")
    status, headers, _ = dav.request("GET", "/.well-known/caldav")
    assert status == 301 and headers["location"] == "/dav/"


def test_bad_input_changes_nothing_and_the_server_keeps_serving(dav):
    """Every refusal leaves the collection's sync token as it was: nothing was stored, nothing logged."""
    calendar, book = "/dav/calendars/alice/calendar/", "/dav/addressbooks/alice/contacts/"
    assert dav.request("PUT", calendar + "kept.ics", EVENT % b"kept-1", user="alice")[0] == 201

    def tokens() -> tuple[bytes, bytes]:
        return tuple(propfind(dav, path, "<D:sync-token/>")[2] for path in (calendar, book))

    before = tokens()
    big = (EVENT % b"big-2").replace(b"SUMMARY:Dentist", b"SUMMARY:" + b"x" * (4 * 1024 * 1024 + 10))
    refusals = [
        ("PUT", calendar + "broken.ics", b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n", (400, 403)),
        ("PUT", calendar + "card.ics", VCARD, (403,)),
        ("PUT", calendar + "dup.ics", EVENT % b"kept-1", (403,)),
        ("PUT", calendar + "kept.ics", EVENT % b"other-uid", (403,)),
        ("PUT", calendar + "big.ics", big, (403, 413)),
        ("PUT", book + "event.vcf", EVENT % b"ev-1", (400, 403)),
        ("PUT", book + "broken.vcf", b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:No end\r\n", (400, 403)),
        ("PUT", calendar + "..%2Fescape.ics", EVENT % b"esc-1", (400, 404)),
        ("REPORT", calendar, EXTERNAL_ENTITY, (400,)),
        ("REPORT", calendar, BILLION_LAUGHS, (400,)),
        ("PROPPATCH", calendar, BILLION_LAUGHS, (400,)),
        ("MKCALENDAR", "/dav/calendars/alice/evil/", EXTERNAL_ENTITY, (400,)),
    ]
    for method, path, body, statuses in refusals:
        status, _, answer = dav.request(method, path, body, user="alice", headers={"Depth": "1"})
        assert status in statuses, (method, path, status, answer[:300])
    assert tokens() == before
    assert dav.request("GET", calendar + "kept.ics", user="alice")[2] == EVENT % b"kept-1"
    assert propfind(dav, "/dav/calendars/alice/evil/", "<D:displayname/>")[0] == 404
    assert dav.request("GET", "/healthz")[0] == 200
    assert "unhandled error" not in dav.log()


# RFC 4918 §9.1's live properties and the dead ones a client set; what the other RFCs keep out of allprop.
ALLPROP_NAMES = {"{DAV:}current-user-principal", "{DAV:}resourcetype", "{DAV:}displayname", "{DAV:}getetag", "{DAV:}getcontenttype",
                 "{DAV:}getcontentlength", "{http://apple.com/ns/ical/}calendar-color",
                 "{http://apple.com/ns/ical/}calendar-order"}


def allprop(dav, path: str, user: str, depth: str = "0", body: str | None = None) -> dict[str, set[str]]:
    """href -> the names of the properties an allprop PROPFIND returned."""
    status, _, answer = dav.request("PROPFIND", path, body, user=user, headers={"Depth": depth})
    assert status == 207, answer
    return {r.findtext("{DAV:}href"): {p.tag for p in r.iterfind("{DAV:}propstat/{DAV:}prop/*")}
            for r in ET.fromstring(answer).iter("{DAV:}response")}


def test_allprop_lists_rfc_4918_properties_and_dead_ones_not_computed_ones(dav):
    shared = "/dav/calendars/alice/allprop/"
    assert dav.request("MKCALENDAR", shared, user="alice")[0] == 201
    patch = ('<D:propertyupdate xmlns:D="DAV:" xmlns:A="http://apple.com/ns/ical/" '
             'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop><D:displayname>Family</D:displayname>'
             '<A:calendar-color>#ff0000</A:calendar-color><C:calendar-description>Us</C:calendar-description>'
             '</D:prop></D:set></D:propertyupdate>')
    assert dav.request("PROPPATCH", shared, patch, user="alice")[0] == 207
    share = ('<CS:share xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/"><CS:set>'
             '<D:href>/dav/principals/bob/</D:href><CS:read-write/></CS:set></CS:share>')
    assert dav.request("POST", shared, share, user="alice", headers={"Content-Type": "application/xml"})[0] == 200
    assert dav.request("PUT", shared + "e.ics", EVENT % b"allprop-1", user="alice")[0] == 201

    everywhere = {**allprop(dav, "/dav/", "alice"), **allprop(dav, "/dav/principals/", "alice"),
                  **allprop(dav, "/dav/principals/alice/", "alice"), **allprop(dav, "/dav/calendars/bob/", "bob", "1"),
                  **allprop(dav, shared, "alice", "1"), **allprop(dav, "/dav/notifications/alice/", "alice")}
    assert everywhere[shared] == {"{DAV:}current-user-principal", "{DAV:}resourcetype", "{DAV:}displayname",
                                  "{http://apple.com/ns/ical/}calendar-color"}
    assert everywhere[shared + "e.ics"] == {"{DAV:}resourcetype", "{DAV:}getetag", "{DAV:}getcontenttype",
                                            "{DAV:}getcontentlength"}
    assert everywhere["/dav/calendars/bob/allprop_shared_by_alice/"] == everywhere[shared]
    assert set().union(*everywhere.values()) <= ALLPROP_NAMES
    # A PROPFIND for the principal that followed /.well-known/caldav's 301 arrives without its body (requests
    # drops it): the root's allprop still names the user's principal.
    assert "{DAV:}current-user-principal" in everywhere["/dav/"]
    # An empty propfind element with allprop is the same; DAV:include adds what a client names.
    included = ('<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/"><D:allprop/><D:include>'
                '<CS:invite/><D:sync-token/><D:no-such/></D:include></D:propfind>')
    status, _, answer = dav.request("PROPFIND", shared, included, user="alice", headers={"Depth": "0"})
    found = ET.fromstring(answer)
    assert {p.tag for p in found.iterfind(".//{DAV:}propstat/{DAV:}prop/*")} == everywhere[shared] | {
        "{http://calendarserver.org/ns/}invite", "{DAV:}sync-token", "{DAV:}no-such"}
    statuses = {p.tag: propstat.findtext("{DAV:}status").split()[1] for propstat in found.iter("{DAV:}propstat")
                for p in propstat.iterfind("{DAV:}prop/*")}
    assert statuses["{DAV:}no-such"] == "404" and statuses["{http://calendarserver.org/ns/}invite"] == "200"
    # propname still names every property.
    status, _, answer = dav.request("PROPFIND", shared, '<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>',
                                    user="alice", headers={"Depth": "0"})
    assert b"invite" in answer and b"supported-calendar-component-set" in answer and b"sync-token" in answer
