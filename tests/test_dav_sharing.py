"""Sharing calendars and address books between users: privileges on every method, the CLI, the JSON API,
CalendarServer's CS:share, and shared collections in the grantee's home; COPY and MOVE across them."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

from tests.dav_harness import EVENT, VCARD, propfind

ALICE_WORK = "/dav/calendars/alice/work/"
MOUNT = "/dav/calendars/bob/work_shared_by_alice/"


def hearth(dav, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", "--config", str(dav.config), *args],
                          capture_output=True, text=True, env=dav.env, timeout=60)


def mkcalendar(dav, user: str, path: str) -> None:
    assert dav.request("MKCALENDAR", path, user=user)[0] == 201


def home_listing(dav, user: str, home: str = "calendars") -> dict[str, tuple[str, set[str]]]:
    """href -> (displayname, the user's privileges) for each collection in the user's home."""
    status, _, body = propfind(dav, f"/dav/{home}/{user}/", "<D:displayname/><D:current-user-privilege-set/>",
                               depth="1", user=user)
    assert status == 207
    return {r.findtext("{DAV:}href"): (r.findtext(".//{DAV:}displayname"),
                                       {p.tag[6:] for p in r.findall(".//{DAV:}privilege/*")})
            for r in ET.fromstring(body).findall("{DAV:}response")}


def test_privileges_follow_the_share_from_none_to_read_to_read_write_to_revoked(dav):
    mkcalendar(dav, "alice", ALICE_WORK)
    assert dav.request("PUT", ALICE_WORK + "meeting.ics", EVENT % b"share-1", user="alice")[0] == 201

    # Not shared: nothing of it is visible to bob, and a missing name looks the same as an existing one.
    for method, path in (("GET", ALICE_WORK + "meeting.ics"), ("PROPFIND", ALICE_WORK),
                         ("PUT", ALICE_WORK + "new.ics"), ("DELETE", ALICE_WORK + "meeting.ics"),
                         ("GET", "/dav/calendars/alice/no-such/x.ics"), ("PROPFIND", "/dav/calendars/alice/")):
        status, _, body = dav.request(method, path, EVENT % b"bob-1" if method == "PUT" else None, user="bob",
                                      headers={"Depth": "0"})
        assert status == 403 and b"need-privileges" in body, (method, path, status, body)
    assert dav.request("GET", MOUNT + "meeting.ics", user="bob")[0] == 404
    assert MOUNT not in home_listing(dav, "bob")

    # Read: listed in bob's home, readable at both URLs, not writable.
    result = hearth(dav, "share", "add", "calendars/alice/work", "bob")
    assert result.returncode == 0, result.stderr
    assert MOUNT in result.stdout
    listing = home_listing(dav, "bob")
    assert listing[MOUNT][0] == "work (alice)"  # no displayname set: its name, and whose it is
    assert listing[MOUNT][1] == {"read", "read-current-user-privilege-set"}
    for url in (MOUNT, ALICE_WORK):
        status, _, body = dav.request("GET", url + "meeting.ics", user="bob")
        assert status == 200 and body == EVENT % b"share-1"
    status, _, body = dav.request("PUT", MOUNT + "bob.ics", EVENT % b"bob-1", user="bob")
    assert status == 403 and b"write-content" in body
    assert dav.request("DELETE", MOUNT + "meeting.ics", user="bob")[0] == 403
    patch = ('<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>Mine</D:displayname></D:prop>'
             '</D:set></D:propertyupdate>')
    # His own name for it is his alone (CalendarServer's per-user properties); alice's stays.
    assert dav.request("PROPPATCH", MOUNT, patch, user="bob")[0] == 207
    assert home_listing(dav, "bob")[MOUNT][0] == "Mine"
    assert home_listing(dav, "alice")[ALICE_WORK][0] != "Mine"
    assert dav.request("GET", ALICE_WORK + "bob.ics", user="alice")[0] == 404
    assert dav.request("GET", ALICE_WORK + "meeting.ics", user="alice")[0] == 200

    # The caldav library finds it as any calendar of bob's.
    calendars = {c.url.path: c for c in dav.client("bob").principal().calendars()}
    assert MOUNT in calendars
    assert calendars[MOUNT].get_display_name() == "Mine"  # the name bob gave it above

    # Read-write: bob adds and deletes; alice sees it.
    result = hearth(dav, "share", "add", "calendars/alice/work", "bob", "--mode", "read-write")
    assert result.returncode == 0, result.stderr
    assert dav.request("PUT", MOUNT + "bob.ics", EVENT % b"bob-1", user="bob")[0] == 201
    assert dav.request("GET", ALICE_WORK + "bob.ics", user="alice")[2] == EVENT % b"bob-1"
    assert dav.request("DELETE", ALICE_WORK + "bob.ics", user="bob")[0] == 204
    timezone = ('<D:propertyupdate xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>'
                '<D:displayname>Ours</D:displayname><C:calendar-timezone>x</C:calendar-timezone></D:prop></D:set>'
                '</D:propertyupdate>')
    status, _, body = dav.request("PROPPATCH", MOUNT, timezone, user="bob")  # the rest stays the owner's
    assert status == 207 and b"403" in body and home_listing(dav, "bob")[MOUNT][0] == "Mine"
    assert "write-content" in home_listing(dav, "bob")[MOUNT][1]

    # Revoked: gone from bob's home, and 403 again.
    result = hearth(dav, "share", "list", "alice")
    assert "calendars/alice/work" in result.stdout and "read-write" in result.stdout
    result = hearth(dav, "share", "remove", "calendars/alice/work", "bob")
    assert result.returncode == 0, result.stderr
    assert MOUNT not in home_listing(dav, "bob")
    assert dav.request("GET", ALICE_WORK + "meeting.ics", user="bob")[0] == 403
    assert dav.request("GET", MOUNT + "meeting.ics", user="bob")[0] == 404


def test_cli_refuses_bad_requests_and_changes_nothing(dav):
    for args, words in ((("calendars/alice/nope", "bob"), "no calendar"),
                        (("calendars/alice/calendar", "nobody"), "no user"),
                        (("calendars/alice/calendar", "alice"), "owner"),
                        (("alice/calendar", "bob"), "calendars/OWNER/NAME")):
        result = hearth(dav, "share", "add", *args)
        assert result.returncode != 0 and words in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
    result = hearth(dav, "share", "remove", "calendars/alice/calendar", "carol")
    assert result.returncode != 0 and "not shared" in result.stderr
    assert "calendar_shared_by_alice/" not in "".join(home_listing(dav, "bob"))


def test_json_api_shares_an_address_book_and_the_grantee_leaves_it(dav):
    status, _, body = dav.request("PUT", "/dav/api/v1/shares/addressbooks/contacts/carol", json.dumps({"mode": "read"}),
                                  user="alice", headers={"Content-Type": "application/json"})
    assert status == 200, body
    share = json.loads(body)
    assert share == {"home": "addressbooks", "owner": "alice", "collection": "contacts", "user": "carol",
                     "mode": "read", "href": "/dav/addressbooks/carol/contacts_shared_by_alice/"}
    assert dav.request("PUT", "/dav/addressbooks/alice/contacts/c.vcf", VCARD, user="alice")[0] == 201
    assert dav.request("GET", share["href"] + "c.vcf", user="carol")[2] == VCARD
    shares = json.loads(dav.request("GET", "/dav/api/v1/shares", user="carol")[2])
    assert [s["collection"] for s in shares] == ["contacts"]

    for mode, status in (({"mode": "admin"}, 400), ({}, 400)):
        assert dav.request("PUT", "/dav/api/v1/shares/addressbooks/contacts/carol", json.dumps(mode),
                           user="alice", headers={"Content-Type": "application/json"})[0] == status
    assert dav.request("PUT", "/dav/api/v1/shares/addressbooks/contacts/nobody", '{"mode": "read"}',
                       user="alice", headers={"Content-Type": "application/json"})[0] == 404
    assert dav.request("PUT", "/dav/api/v1/shares/addressbooks/contacts/bob", '{"mode": "read"}')[0] == 401
    assert dav.request("GET", "/dav/api/v1/openapi.json")[0] == 200

    # carol deletes the shared address book from her home: she leaves the share, alice's data stays.
    assert dav.request("DELETE", share["href"], user="carol")[0] == 204
    assert dav.request("GET", share["href"] + "c.vcf", user="carol")[0] == 404
    assert dav.request("GET", "/dav/addressbooks/alice/contacts/c.vcf", user="alice")[2] == VCARD
    assert json.loads(dav.request("GET", "/dav/api/v1/shares", user="alice")[2]) == []
    assert dav.request("DELETE", "/dav/api/v1/shares/addressbooks/contacts/carol", user="alice")[0] == 404


CS_SHARE = ('<CS:share xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/"><CS:set>'
            '<D:href>{href}</D:href><CS:common-name>Bob</CS:common-name>{mode}</CS:set></CS:share>')
CS_REMOVE = ('<CS:share xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/"><CS:remove>'
             '<D:href>{href}</D:href></CS:remove></CS:share>')
SHARE_RESOURCE = ('<D:share-resource xmlns:D="DAV:"><D:sharee><D:href>{href}</D:href>'
                  '<D:share-access><D:{access}/></D:share-access></D:sharee></D:share-resource>')


def test_calendarserver_and_webdav_sharing_requests(dav):
    mkcalendar(dav, "alice", "/dav/calendars/alice/family/")
    family = "/dav/calendars/bob/family_shared_by_alice/"
    status, _, body = dav.request("POST", "/dav/calendars/alice/family/", CS_SHARE.format(
        href="/dav/principals/bob/", mode="<CS:read-write/>"), user="alice",
        headers={"Content-Type": "application/xml"})
    assert status == 200, body
    assert "write-content" in home_listing(dav, "bob")[family][1]
    status, _, body = propfind(dav, "/dav/calendars/alice/family/", "<CS:allowed-sharing-modes/>")
    assert b"can-be-shared" in body

    # Only the owner shares; a sharee cannot pass it on.
    status, _, body = dav.request("POST", family, CS_SHARE.format(href="/dav/principals/carol/", mode=""),
                                  user="bob")
    assert status == 403 and b"need-privileges" in body
    # A sharee that is not a user: nothing of the request is applied.
    status, _, body = dav.request("POST", "/dav/calendars/alice/family/", SHARE_RESOURCE.format(
        href="mailto:carol@localhost", access="read"), user="alice")
    assert status == 200
    bad = CS_SHARE.format(href="/dav/principals/nobody/", mode="").replace(
        "</CS:share>", "<CS:remove><D:href>/dav/principals/bob/</D:href></CS:remove></CS:share>")
    status, _, body = dav.request("POST", "/dav/calendars/alice/family/", bad, user="alice")
    assert status == 207 and b"/dav/principals/nobody/" in body and b"424" in body
    assert family in home_listing(dav, "bob")
    assert "/dav/calendars/carol/family_shared_by_alice/" in home_listing(dav, "carol")

    assert dav.request("POST", "/dav/calendars/alice/family/", CS_REMOVE.format(href="/dav/principals/bob/"),
                       user="alice")[0] == 200
    assert dav.request("POST", "/dav/calendars/alice/family/", SHARE_RESOURCE.format(
        href="/dav/principals/carol/", access="no-access"), user="alice")[0] == 200
    assert family not in home_listing(dav, "bob")
    assert "/dav/calendars/carol/family_shared_by_alice/" not in home_listing(dav, "carol")
    assert dav.request("POST", "/dav/calendars/alice/family/", "<x/>", user="alice")[0] == 403


def test_copy_and_move_respect_privileges_and_overwrite(dav):
    mkcalendar(dav, "alice", "/dav/calendars/alice/trips/")
    mkcalendar(dav, "alice", "/dav/calendars/alice/archive/")
    src = "/dav/calendars/alice/trips/rome.ics"
    assert dav.request("PUT", src, EVENT % b"rome", user="alice")[0] == 201
    status, headers, _ = dav.request("COPY", src, user="alice",
                                     headers={"Destination": "http://example.invalid/dav/calendars/alice/archive/rome.ics"})
    assert status == 201 and headers["location"] == "/dav/calendars/alice/archive/rome.ics"
    # Same UID twice in one calendar is refused; Overwrite: F keeps the destination.
    status, _, body = dav.request("COPY", src, user="alice",
                                  headers={"Destination": "/dav/calendars/alice/trips/rome2.ics"})
    assert status == 403 and b"no-uid-conflict" in body
    assert dav.request("MOVE", src, user="alice", headers={
        "Destination": "/dav/calendars/alice/archive/rome.ics", "Overwrite": "F"})[0] == 412
    assert dav.request("GET", src, user="alice")[0] == 200
    assert dav.request("MOVE", src, user="alice", headers={"Destination": "/dav/calendars/alice/trips/roma.ics"})[0] == 201
    assert dav.request("GET", src, user="alice")[0] == 404
    assert dav.request("GET", "/dav/calendars/alice/trips/roma.ics", user="alice")[2] == EVENT % b"rome"
    assert dav.request("COPY", "/dav/calendars/alice/trips/", user="alice",
                       headers={"Destination": "/dav/calendars/alice/trips2/"})[0] == 403
    assert dav.request("COPY", "/dav/calendars/alice/trips/roma.ics", user="alice",
                       headers={"Destination": "/dav/addressbooks/alice/contacts/roma.vcf"})[0] == 403
    assert dav.request("MOVE", "/dav/calendars/alice/trips/roma.ics", user="alice")[0] == 400

    # bob, reading alice's trips, may copy out of it into his own calendar but not move anything out of it.
    assert hearth(dav, "share", "add", "calendars/alice/trips", "bob").returncode == 0
    mount = "/dav/calendars/bob/trips_shared_by_alice/roma.ics"
    status, _, body = dav.request("MOVE", mount, user="bob",
                                  headers={"Destination": "/dav/calendars/bob/calendar/roma.ics"})
    assert status == 403 and b"need-privileges" in body
    assert dav.request("COPY", mount, user="bob",
                       headers={"Destination": "/dav/calendars/bob/calendar/roma.ics"})[0] == 201
    assert dav.request("COPY", "/dav/calendars/bob/calendar/roma.ics", user="bob",
                       headers={"Destination": "/dav/calendars/alice/trips/bob.ics"})[0] == 403
    assert dav.request("GET", "/dav/calendars/alice/trips/roma.ics", user="alice")[0] == 200


def test_deleting_an_account_drops_its_collections_the_shares_it_was_given_and_its_revisions(db):
    from services.core.accounts import create_user, delete_user
    from services.core.addresses import add_address
    from services.core.db import write
    from services.dav.store import collection_by_name, create_collection, put_item
    from services.dav.store.sharing import grant, grants

    def setup(db):
        for name in ("alice", "bob"):
            create_user(db, name, "not a real hash")
        family = create_collection(db, "alice", "calendar", "family")
        create_collection(db, "bob", "calendar", "calendar")
        put_item(db, family.id, "a.ics", EVENT % b"a")
        put_item(db, family.id, "a.ics", (EVENT % b"a").replace(b"Dentist", b"Doctor"))  # keeps a revision
        grant(db, "alice", "calendar", "family", "bob", "read")
        add_address(db, "alice", "ally.smith@example.org", "localhost")
        # alice's (under her default and her registered address), and not alice's
        for sender in ("mailto:Alice@localhost", "mailto:ally.smith@example.org", "mailto:alice_x@localhost"):
            db.execute("INSERT INTO dav_outgoing_mail (sender, recipient, method, message, created_at, "
                       "next_attempt_at) VALUES (?, 'mailto:ann@example.org', 'REQUEST', x'00', '', 0)", [sender])

    write(db, setup)
    write(db, lambda db: delete_user(db, "bob"))
    assert grants(db) == []
    assert db.execute("SELECT count(*) FROM dav_collections WHERE owner = 'bob'").fetchone()[0] == 0
    assert collection_by_name(db, "alice", "calendar", "family").seq == 2
    assert db.execute("SELECT count(*) FROM dav_revisions").fetchone()[0] == 1
    write(db, lambda db: delete_user(db, "alice"))
    assert db.execute("SELECT count(*) FROM dav_collections").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM dav_items").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM dav_revisions").fetchone()[0] == 0
    assert [r[0] for r in db.execute("SELECT sender FROM dav_outgoing_mail")] == ["mailto:alice_x@localhost"]
