"""Principal searches as attendee autocompletion sends them: RFC 3744's principal-property-search and
principal-search-property-set (Thunderbird, DAVx⁵), Apple's calendarserver-principal-search (Calendar on
macOS and iOS). The bodies have the shapes of CalendarServer's own conformance scripts (caldavtester's
CalDAV/aclreports), with this household's names in them."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.dav_harness import dav_daemon, propfind

D, C, CS = "{DAV:}", "{urn:ietf:params:xml:ns:caldav}", "{http://calendarserver.org/ns/}"
XML = {"Content-Type": "text/xml; charset=utf-8"}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    for daemon in dav_daemon(tmp_path_factory):
        assert daemon.hearth("user", "email", "bob", "add", "bob@example.org").returncode == 0
        assert daemon.hearth("user", "email", "carol", "add", "carol.b@mail.example").returncode == 0
        yield daemon


def report(dav, path: str, body: str, user: str | None = "alice", depth: str | None = "0"):
    headers = dict(XML, **({"Depth": depth} if depth is not None else {}))
    return dav.request("REPORT", path, body, user=user, headers=headers)


def found(body: bytes) -> dict[str, ET.Element]:
    """href -> the 200 DAV:prop of each principal in a multistatus (the 507 response has none)."""
    answers = {}
    for response in ET.fromstring(body).findall(f"{D}response"):
        ok = [p.find(f"{D}prop") for p in response.findall(f"{D}propstat")
              if p.findtext(f"{D}status").split()[1] == "200"]
        answers[response.findtext(f"{D}href")] = ok[0] if ok else None
    return answers


def property_search(*searches: tuple[str, str, str], test: str = "anyof", props: str = "<D:displayname/>",
                    extra: str = "<D:apply-to-principal-collection-set/>") -> str:
    criteria = "".join(f'<D:property-search><D:prop>{prop}</D:prop><D:match match-type="{kind}">{text}</D:match>'
                       f'</D:property-search>' for prop, kind, text in searches)
    return (f'<?xml version="1.0" encoding="utf-8" ?><D:principal-property-search xmlns:D="DAV:" '
            f'xmlns:c="http://calendarserver.org/ns/" xmlns:cd="urn:ietf:params:xml:ns:caldav" test="{test}" '
            f'type="INDIVIDUAL">{extra}{criteria}<D:prop>{props}</D:prop></D:principal-property-search>')


def test_search_by_part_of_a_name_or_an_email_finds_only_those_members(home):
    # caldavtester aclreports/12.xml: displayname on the principal collection, no apply-to.
    body = ('<?xml version="1.0" encoding="utf-8" ?><D:principal-property-search xmlns:D="DAV:" type="INDIVIDUAL">'
            '<D:property-search><D:prop><D:displayname/></D:prop><D:match> ali</D:match></D:property-search>'
            '<D:prop><D:displayname/></D:prop></D:principal-property-search>')
    status, _, answer = report(home, "/dav/principals/", body)
    assert status == 207
    hits = found(answer)
    assert list(hits) == ["/dav/principals/alice/"]
    assert [child.tag for child in hits["/dav/principals/alice/"]] == [f"{D}displayname"]  # only what was asked

    # By part of a registered email address, on /dav/ with apply-to-principal-collection-set.
    status, _, answer = report(home, "/dav/", property_search(
        ("<c:email-address-set/>", "contains", "EXAMPLE.org"),
        props="<D:displayname/><c:email-address-set/><cd:calendar-user-address-set/><c:first-name/>"))
    hits = found(answer)
    assert list(hits) == ["/dav/principals/bob/"]
    bob = hits["/dav/principals/bob/"]
    assert [e.text for e in bob.iter(f"{CS}email-address")] == ["bob@example.org", "bob@localhost"]
    assert [h.text for h in bob.iter(f"{D}href")] == ["mailto:bob@example.org", "mailto:bob@localhost",
                                                       "/dav/principals/bob/"]
    assert bob.find(f"{CS}first-name") is None  # asked, not had: in the 404 propstat

    # anyof and allof, starts-with on an address, and the calendar user type everyone has.
    both = (("<D:displayname/>", "starts-with", "car"), ("<cd:calendar-user-address-set/>", "starts-with", "bob@"))
    assert sorted(found(report(home, "/dav/", property_search(*both))[2])) == [
        "/dav/principals/bob/", "/dav/principals/carol/"]
    assert found(report(home, "/dav/", property_search(*both, test="allof"))[2]) == {}
    everyone = property_search(("<cd:calendar-user-type/>", "equals", "individual"))
    assert sorted(found(report(home, "/dav/principals/", everyone)[2])) == [
        "/dav/principals/alice/", "/dav/principals/bob/", "/dav/principals/carol/"]
    # caldavtester 33.xml: an exact calendar user address.
    exact = property_search(("<cd:calendar-user-address-set/>", "equals", "mailto:carol.b@mail.example"),
                            props="<D:displayname/>", extra="<D:apply-to-principal-collection-set/>"
                                                             "<c:limit><c:nresults>5</c:nresults></c:limit>")
    assert list(found(report(home, "/dav/calendars/alice/calendar/", exact)[2])) == ["/dav/principals/carol/"]
    # caldavtester 13.xml: no DAV:prop, so the hrefs alone, each with a status.
    status, _, answer = report(home, "/dav/principals/", body.replace("<D:prop><D:displayname/></D:prop></D:principal",
                                                                      "</D:principal"))
    assert status == 207
    assert [(r.findtext(f"{D}href"), r.findtext(f"{D}status")) for r in ET.fromstring(answer)] == [
        ("/dav/principals/alice/", "HTTP/1.1 200 OK")]
    # Without apply-to, a calendar collection holds no principals.
    unscoped = property_search(("<D:displayname/>", "contains", "a"), extra="")
    assert found(report(home, "/dav/calendars/alice/calendar/", unscoped)[2]) == {}


def test_a_limit_cuts_the_answer_short_and_says_so(home):
    body = property_search(("<D:displayname/>", "contains", "o"), extra="<D:apply-to-principal-collection-set/>"
                                                                        "<c:limit><c:nresults>1</c:nresults></c:limit>")
    status, _, answer = report(home, "/dav/", body)
    responses = ET.fromstring(answer).findall(f"{D}response")
    assert [r.findtext(f"{D}href") for r in responses] == ["/dav/principals/bob/", "/dav/"]
    assert responses[1].findtext(f"{D}status") == "HTTP/1.1 507 Insufficient Storage"


def test_calendarserver_principal_search_as_apple_calendar_sends_it(home):
    def search(*tokens: str, context: str = "attendee", limit: int = 50) -> dict:
        body = ('<?xml version="1.0" encoding="UTF-8"?><C:calendarserver-principal-search '
                f'xmlns:C="http://calendarserver.org/ns/" context="{context}">'
                + "".join(f"<C:search-token>{t}</C:search-token>" for t in tokens)
                + f'<C:limit><C:nresults>{limit}</C:nresults></C:limit><A:prop xmlns:A="DAV:">'
                  '<C:email-address-set/><C:last-name/><A:principal-URL/><A:displayname/><C:record-type/>'
                  '<C:first-name/><B:calendar-user-type xmlns:B="urn:ietf:params:xml:ns:caldav"/>'
                  '<B:calendar-user-address-set xmlns:B="urn:ietf:params:xml:ns:caldav"/></A:prop>'
                  '</C:calendarserver-principal-search>')
        status, _, answer = report(home, "/dav/principals/", body, depth=None)
        assert status == 207
        missing.update(p.tag for stat in ET.fromstring(answer).iterfind(f"{D}response/{D}propstat")
                       if stat.findtext(f"{D}status").split()[1] == "404" for p in stat.iterfind(f"{D}prop/*"))
        return found(answer)

    missing: set[str] = set()
    hits = search("Bo")
    # hearth knows a member's user name only: no first and last name to return (a split would be a guess).
    assert {f"{CS}first-name", f"{CS}last-name"} <= missing
    assert list(hits) == ["/dav/principals/bob/"]
    assert hits["/dav/principals/bob/"].findtext(f"{C}calendar-user-type") == "INDIVIDUAL"
    assert hits["/dav/principals/bob/"].findtext(f"{D}principal-URL/{D}href") == "/dav/principals/bob/"
    assert list(search("carol", "mail.example")) == ["/dav/principals/carol/"]  # every token must match
    assert search("carol", "example.org") == {}
    assert search("bob", context="location") == {}  # rooms: there are none
    assert len(search("o", limit=1)) == 2  # one member, and the 507 saying more matched


def test_searchable_properties_and_where_the_reports_are_advertised(home):
    status, _, answer = report(home, "/dav/principals/", '<?xml version="1.0" encoding="utf-8" ?>'
                                                         '<D:principal-search-property-set xmlns:D="DAV:"/>')
    assert status == 200
    offered = [p.find(f"{D}prop")[0].tag for p in ET.fromstring(answer).findall(f"{D}principal-search-property")]
    assert offered == [f"{D}displayname", f"{CS}email-address-set", f"{C}calendar-user-address-set",
                       f"{C}calendar-user-type"]
    for path in ("/dav/", "/dav/principals/", "/dav/principals/bob/"):
        status, _, answer = propfind(home, path, "<D:supported-report-set/><D:principal-collection-set/>")
        root = ET.fromstring(answer)
        reports = {r[0].tag for r in root.iter(f"{D}report")}
        assert {f"{D}principal-property-search", f"{D}principal-search-property-set",
                f"{CS}calendarserver-principal-search"} <= reports, path
        assert root.findtext(f".//{D}principal-collection-set/{D}href") == "/dav/principals/"


def test_nobody_outside_learns_anything_and_bad_requests_are_refused(home):
    body = property_search(("<D:displayname/>", "contains", "b"))
    status, _, answer = report(home, "/dav/principals/", body, user=None)
    assert status == 401 and b"bob" not in answer
    assert report(home, "/dav/principals/", body, depth="1")[0] == 400  # RFC 3744 §9.4: Depth 0
    assert report(home, "/dav/", property_search(("<D:displayname/>", "contains", "b"), test="bogus"))[0] == 400
    assert report(home, "/dav/", property_search(("<D:displayname/>", "sounds-like", "b")))[0] == 400


def test_python_caldavs_principals_lists_members_with_the_properties_it_writes_beside_its_prop(home):
    """python-caldav 3.6 `principals()`: no DAV:property-search when no name is given, and the properties
    it wants written beside an empty DAV:prop (caldav/collection.py); still only household members."""
    everyone = ('<?xml version="1.0" encoding="utf-8"?><D:principal-property-search xmlns:D="DAV:" '
                'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop/><C:calendar-home-set/><D:displayname/>'
                '</D:principal-property-search>')
    status, _, answer = report(home, "/dav/", everyone)
    assert status == 207, answer
    members = found(answer)
    assert set(members) == {f"/dav/principals/{name}/" for name in ("alice", "bob", "carol")}
    assert members["/dav/principals/bob/"].findtext(f"{C}calendar-home-set/{D}href") == "/dav/calendars/bob/"
    named = everyone.replace("<D:prop/>", '<D:property-search><D:prop><D:displayname/></D:prop>'
                                          '<D:match>bob</D:match></D:property-search><D:prop/>')
    assert list(found(report(home, "/dav/", named)[2])) == ["/dav/principals/bob/"]


def test_depth_1_on_the_principal_collection_lists_the_members_to_a_member_only(home):
    """What a search finds, a listing shows: each member's principal with the properties asked for."""
    status, _, answer = propfind(home, "/dav/principals/", "<D:displayname/><C:calendar-user-address-set/>",
                                 depth="1", user="bob")
    assert status == 207
    listed = found(answer)
    assert list(listed) == ["/dav/principals/", "/dav/principals/alice/", "/dav/principals/bob/",
                            "/dav/principals/carol/"]
    assert listed["/dav/principals/carol/"].findtext(f"{D}displayname") == "carol"
    assert [h.text for h in listed["/dav/principals/carol/"].iter(f"{D}href")] == [
        "mailto:carol.b@mail.example", "mailto:carol@localhost", "/dav/principals/carol/"]
    status, _, answer = home.request("PROPFIND", "/dav/principals/", headers={"Depth": "1"})
    assert status == 401 and b"carol" not in answer
