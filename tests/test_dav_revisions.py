"""Kept revisions of DAV items: recorded by the store, expired by retention, restored by store, API and CLI."""
from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from services.core.db import Database, db_path, open_db, write
from services.core.errors import Conflict, NotFound
from services.dav.errors import PreconditionFailed
from services.dav.retention import sweep
from services.dav.store import (ADDRESSBOOK, CALENDAR, changes_since, collection_by_name, create_collection,
                                delete_collection, delete_item, expire_revisions, get_item, list_revisions,
                                move_item, put_item, restore_revision)
from services.dav.store.collections import find_collection
from tests.daemons import serving
from tests.dav_harness import EVENT, VCARD, DavDaemon, propfind

AGED = "2000-01-01T00:00:00.000000Z"


def event(uid: str, summary: str = "Dentist") -> bytes:
    return (EVENT % uid.encode()).replace(b"SUMMARY:Dentist", b"SUMMARY:" + summary.encode())


def collection(db, name: str, kind: str = CALENDAR, owner: str = "alice", **kw):
    return write(db, lambda d: create_collection(d, owner, kind, name, **kw))


def put(db, collection_id: int, name: str, raw: bytes):
    return write(db, lambda d: put_item(d, collection_id, name, raw))


def kept(db, owner: str = "alice") -> list[tuple]:
    """(reason, collection, item, bytes) of every kept revision, newest first."""
    rows = db.execute("SELECT reason, collection_name, name, raw FROM dav_revisions WHERE owner = ? "
                      "ORDER BY id DESC", [owner]).fetchall()
    return [tuple(row) for row in rows]


# --- recording ---------------------------------------------------------------

def test_an_overwrite_keeps_the_old_bytes_and_an_identical_put_keeps_nothing(db):
    work = collection(db, "work")
    put(db, work.id, "a.ics", event("a"))
    assert kept(db) == []  # a new item replaces nothing
    put(db, work.id, "a.ics", event("a", "Dentist (moved)"))
    assert kept(db) == [("overwritten", "work", "a.ics", event("a"))]
    put(db, work.id, "a.ics", event("a", "Dentist (moved)"))  # the same bytes again: nothing replaced
    assert len(kept(db)) == 1
    [revision] = list_revisions(db, "alice")
    assert (revision.summary, revision.uid, revision.component, revision.size) == (
        "Dentist", "a", "VEVENT", len(event("a")))


def test_a_delete_keeps_the_item_and_a_failed_one_keeps_nothing(db):
    work = collection(db, "work")
    put(db, work.id, "a.ics", event("a"))
    with pytest.raises(PreconditionFailed):
        write(db, lambda d: delete_item(d, work.id, "a.ics", if_match='"not-the-etag"'))
    assert kept(db) == []  # the transaction rolled back the revision with the delete
    write(db, lambda d: delete_item(d, work.id, "a.ics"))
    assert kept(db) == [("deleted", "work", "a.ics", event("a"))]


def test_deleting_a_collection_keeps_every_item_and_restore_recreates_it(db):
    work = collection(db, "work", displayname="Work stuff")
    put(db, work.id, "a.ics", event("a"))
    put(db, work.id, "b.ics", event("b", "Lunch"))
    write(db, lambda d: delete_collection(d, work.id))
    assert sorted(kept(db)) == [("collection-deleted", "work", "a.ics", event("a")),
                                ("collection-deleted", "work", "b.ics", event("b", "Lunch"))]
    assert find_collection(db, "alice", CALENDAR, "work") is None

    by_item = {r.name: r for r in list_revisions(db, "alice")}
    first = write(db, lambda d: restore_revision(d, "alice", by_item["b.ics"].id))
    assert first.collection_recreated and first.outcome == "created" and first.item.name == "b.ics"
    again = collection_by_name(db, "alice", CALENDAR, "work")
    assert again.id != work.id and again.displayname == "Work stuff"
    assert get_item(db, again.id, "b.ics").raw == event("b", "Lunch")
    assert changes_since(db, again.id, None).changed == ["b.ics"]

    token = again.sync_token
    second = write(db, lambda d: restore_revision(d, "alice", by_item["a.ics"].id))
    assert not second.collection_recreated and second.collection.id == again.id  # into the same new one
    assert changes_since(db, again.id, token).changed == ["a.ics"]  # a sync client sees the restore


def test_moving_over_an_item_keeps_the_destination_not_the_source(db):
    home, away = collection(db, "home"), collection(db, "away")
    put(db, home.id, "a.ics", event("a", "New"))
    put(db, away.id, "a.ics", event("a", "Old"))
    put(db, home.id, "free.ics", event("free"))
    write(db, lambda d: move_item(d, home.id, "a.ics", away.id, "a.ics"))
    write(db, lambda d: move_item(d, home.id, "free.ics", away.id, "free.ics"))  # replaces nothing
    write(db, lambda d: move_item(d, away.id, "free.ics", away.id, "renamed.ics"))  # a rename: nothing lost
    assert kept(db) == [("overwritten", "away", "a.ics", event("a", "Old"))]


def test_address_book_revisions_carry_the_contacts_name(db):
    contacts = collection(db, "contacts", ADDRESSBOOK)
    put(db, contacts.id, "carol.vcf", VCARD)
    write(db, lambda d: delete_item(d, contacts.id, "carol.vcf"))
    [revision] = list_revisions(db, "alice", deleted=True)
    assert (revision.kind, revision.summary, revision.component) == (ADDRESSBOOK, "Carol", "VCARD")


def test_listing_filters_by_collection_and_deleted_and_by_owner(db):
    work, home = collection(db, "work"), collection(db, "home")
    bobs = collection(db, "work", owner="bob")
    put(db, work.id, "a.ics", event("a"))
    put(db, work.id, "a.ics", event("a", "Changed"))
    put(db, home.id, "h.ics", event("h"))
    write(db, lambda d: delete_item(d, home.id, "h.ics"))
    put(db, bobs.id, "b.ics", event("b"))
    write(db, lambda d: delete_item(d, bobs.id, "b.ics"))

    def names(**kw):
        return [(r.collection_name, r.name, r.reason) for r in list_revisions(db, "alice", **kw)]

    assert names() == [("home", "h.ics", "deleted"), ("work", "a.ics", "overwritten")]
    assert names(collection="work") == [("work", "a.ics", "overwritten")]
    assert names(deleted=True) == [("home", "h.ics", "deleted")]
    assert names(limit=1) == [("home", "h.ics", "deleted")]
    assert [r.name for r in list_revisions(db, "bob")] == ["b.ics"]


# --- restore -----------------------------------------------------------------

def test_restore_under_a_new_name_when_another_object_took_the_old_one(db):
    work = collection(db, "work")
    put(db, work.id, "a.ics", event("first"))
    write(db, lambda d: delete_item(d, work.id, "a.ics"))
    put(db, work.id, "a.ics", event("second", "Someone else"))
    [revision] = list_revisions(db, "alice")
    restored = write(db, lambda d: restore_revision(d, "alice", revision.id))
    assert restored.outcome == "created" and restored.item.name == f"a-restored-{revision.id}.ics"
    assert get_item(db, work.id, "a.ics").raw == event("second", "Someone else")  # untouched
    assert get_item(db, work.id, restored.item.name).raw == event("first")


def test_restoring_an_old_version_replaces_the_current_one_and_keeps_it(db):
    work = collection(db, "work")
    put(db, work.id, "a.ics", event("a", "One"))
    put(db, work.id, "a.ics", event("a", "Two"))
    [old] = list_revisions(db, "alice")
    restored = write(db, lambda d: restore_revision(d, "alice", old.id))
    assert (restored.outcome, restored.item.name) == ("replaced", "a.ics")
    assert get_item(db, work.id, "a.ics").raw == event("a", "One")
    assert kept(db)[0] == ("overwritten", "work", "a.ics", event("a", "Two"))  # the restore can be undone
    count = len(kept(db))
    again = write(db, lambda d: restore_revision(d, "alice", old.id))
    assert again.outcome == "unchanged" and len(kept(db)) == count


def test_a_revision_is_only_its_owners_and_a_refused_restore_changes_nothing(db):
    work = collection(db, "work")
    put(db, work.id, "a.ics", event("a"))
    write(db, lambda d: delete_collection(d, work.id))
    [revision] = list_revisions(db, "alice")
    with pytest.raises(NotFound):
        write(db, lambda d: restore_revision(d, "bob", revision.id))
    with pytest.raises(NotFound):
        write(db, lambda d: restore_revision(d, "alice", revision.id + 1000))
    tasks = collection(db, "work", components=("VTODO",))  # the name now holds a task list
    with pytest.raises(Conflict, match="supported-calendar-component"):
        write(db, lambda d: restore_revision(d, "alice", revision.id))
    assert changes_since(db, tasks.id, None).changed == [] and len(kept(db)) == 1


# --- retention ---------------------------------------------------------------

def test_retention_drops_only_revisions_older_than_the_cutoff(db, tmp_path):
    work = collection(db, "work")
    for n in range(3):
        put(db, work.id, "a.ics", event("a", f"Version {n}"))
    old, young = [r.id for r in list_revisions(db, "alice")][::-1]
    write(db, lambda d: d.execute("UPDATE dav_revisions SET replaced_at = ? WHERE id = ?", [AGED, old]))
    assert write(db, lambda d: expire_revisions(d, datetime(1999, 1, 1, tzinfo=timezone.utc))) == 0

    async def sweep_with(keep_days: int) -> int:
        database = Database(db_path(tmp_path))
        try:
            return await sweep(database, keep_days)
        finally:
            database.close()

    assert asyncio.run(sweep_with(0)) == 0  # 0: keep forever
    assert asyncio.run(sweep_with(30)) == 1
    assert [r.id for r in list_revisions(db, "alice")] == [young]
    cutoff = datetime.now(timezone.utc) + timedelta(seconds=1)
    assert write(db, lambda d: expire_revisions(d, cutoff, limit=5)) == 1


# --- over HTTP and from the CLI, against a real daemon ------------------------

def api(dav, method: str, path: str, user: str | None = "alice"):
    status, _, body = dav.request(method, "/dav/api/v1" + path, user=user)
    return status, json.loads(body) if body else None


def hearth(dav, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", "--config", str(dav.config), "dav", *args],
                          capture_output=True, text=True, env=dav.env, timeout=60)


def sync_token(dav, path: str) -> str:
    status, _, body = propfind(dav, path, "<D:sync-token/>")
    assert status == 207, body
    return re.search(rb"<D:sync-token>([^<]+)</D:sync-token>", body).group(1).decode()


def sync_changes(dav, path: str, token: str) -> bytes:
    body = (f'<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:"><D:sync-token>{token}</D:sync-token>'
            f'<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>')
    status, _, answer = dav.request("REPORT", path, body, user="alice", headers={"Content-Type": "application/xml"})
    assert status == 207, answer
    return answer


def test_http_put_put_delete_then_list_and_restore(dav):
    item = "/dav/calendars/alice/calendar/kept-http.ics"
    for raw in (event("kept-http"), event("kept-http", "Dentist (moved)")):
        assert dav.request("PUT", item, raw, user="alice")[0] in (201, 204)
    assert dav.request("DELETE", item, user="alice")[0] == 204

    status, listed = api(dav, "GET", "/revisions?collection=calendar")
    assert status == 200
    mine = [r for r in listed if r["item"] == "kept-http.ics"]
    assert [(r["reason"], r["summary"], r["home"]) for r in mine] == [
        ("deleted", "Dentist (moved)", "calendars"), ("overwritten", "Dentist", "calendars")]
    deleted, overwritten = mine
    status, only_deleted = api(dav, "GET", "/revisions?deleted=1")
    assert deleted["id"] in [r["id"] for r in only_deleted]
    assert overwritten["id"] not in [r["id"] for r in only_deleted]
    assert api(dav, "GET", "/revisions?deleted=maybe")[0] == 400

    status, bobs = api(dav, "GET", "/revisions", user="bob")
    assert status == 200 and deleted["id"] not in [r["id"] for r in bobs]
    status, error = api(dav, "POST", f"/revisions/{deleted['id']}/restore", user="bob")
    assert status == 404 and error["error"] == "not-found"
    assert api(dav, "POST", f"/revisions/{deleted['id']}/restore", user=None)[0] == 401
    assert dav.request("GET", item, user="alice")[0] == 404  # bob's attempts changed nothing

    token = sync_token(dav, "/dav/calendars/alice/calendar/")
    status, restored = api(dav, "POST", f"/revisions/{deleted['id']}/restore")
    assert status == 200, restored
    assert restored["href"] == item and restored["outcome"] == "created" and not restored["collection_recreated"]
    status, headers, body = dav.request("GET", item, user="alice")
    assert status == 200 and body == event("kept-http", "Dentist (moved)") and headers["etag"] == restored["etag"]
    assert b"kept-http.ics" in sync_changes(dav, "/dav/calendars/alice/calendar/", token)

    status, error = api(dav, "POST", "/revisions/nine/restore")
    assert status == 400 and "expected an integer" in error["reason"]


def test_cli_lists_and_restores_and_refuses_a_bad_id_changing_nothing(dav):
    collection_path = "/dav/calendars/alice/cli-work/"
    assert dav.request("MKCALENDAR", collection_path, user="alice")[0] == 201
    assert dav.request("PUT", collection_path + "cli.ics", event("cli", "Board meeting"), user="alice")[0] == 201
    assert dav.request("DELETE", collection_path, user="alice")[0] == 204

    listing = hearth(dav, "revisions", "alice", "--collection", "cli-work")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["ID", "WHEN", "(UTC)", "WHY", "ITEM", "SUMMARY"] and len(lines) == 2
    revision_id = lines[1].split()[0]
    assert "collection-deleted" in lines[1] and "calendars/cli-work/cli.ics" in lines[1]
    assert "Board meeting" in lines[1]

    before = hearth(dav, "revisions", "alice").stdout
    for bad, code, message in ((["restore", "alice", "999999"], 1, "hearth: alice has no kept revision 999999"),
                               (["restore", "nobody", revision_id], 1, "hearth: no user named 'nobody'"),
                               (["restore", "alice", "x"], 2, "invalid int value")):
        result = hearth(dav, *bad)
        assert result.returncode == code and message in result.stderr and result.stdout == "", result
    assert hearth(dav, "revisions", "alice").stdout == before  # nothing changed
    assert propfind(dav, collection_path, "<D:displayname/>")[0] == 404  # still deleted

    restored = hearth(dav, "restore", "alice", revision_id)
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.strip() == (f"restored revision {revision_id} to {collection_path}cli.ics; "
                                       "calendar 'cli-work' was created again")
    status, _, body = dav.request("GET", collection_path + "cli.ics", user="alice")
    assert status == 200 and body == event("cli", "Board meeting")
    again = hearth(dav, "restore", "alice", revision_id)
    assert again.returncode == 0 and "nothing changed" in again.stdout


def test_the_daemon_drops_expired_revisions_on_its_schedule(tmp_path):
    with serving(DavDaemon(tmp_path, "gc_interval = 1\nkeep_revisions_days = 1\n"), "alice") as daemon:
        item = "/dav/calendars/alice/calendar/aging.ics"
        for raw in (event("aging"), event("aging", "Later"), event("aging", "Latest")):
            assert daemon.request("PUT", item, raw, user="alice")[0] in (201, 204)
        status, listed = api(daemon, "GET", "/revisions")
        assert status == 200 and len(listed) == 2
        db = open_db(db_path(tmp_path / "var"))
        write(db, lambda d: d.execute("UPDATE dav_revisions SET replaced_at = ? WHERE id = ?",
                                      [AGED, listed[1]["id"]]))
        db.close()
        deadline = time.monotonic() + 20
        while len(api(daemon, "GET", "/revisions")[1]) > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [r["id"] for r in api(daemon, "GET", "/revisions")[1]] == [listed[0]["id"]], daemon.log()
        assert "retention: dropped 1 expired item revisions" in daemon.log()


def test_a_negative_retention_setting_stops_the_daemon_at_start(tmp_path):
    daemon = DavDaemon(tmp_path, "keep_revisions_days = -1\n")
    result = subprocess.run([sys.executable, "-m", "services.dav", "--config", str(daemon.config)],
                            capture_output=True, text=True, env=daemon.env, timeout=60)
    assert result.returncode == 2 and "[dav] keep_revisions_days: expected 0 or more, got -1" in result.stderr
