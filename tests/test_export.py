"""`hearth export USER DIR` and complete account deletion, on a real database and blob store.

The data is made through the same storage functions the daemons use (the file
tree with its chunk store, the DAV store); the commands run as subprocesses.
"""
from __future__ import annotations

import hashlib
import io
import json
import random
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import vobject
from icalendar import Calendar

from services.core import accounts, addresses
from services.core.db import db_path, migrate, open_db, write
from services.core.export import export_user
from services.core.schema import MIGRATION_SETS
from services.core.tree import BlobStore, chunk_stream, collect_garbage, commit_file, create_folder, delete, mkdir, \
    share_folder
from services.core.tree.erase import chunks_of_user, erase_chunks
from services.dav import store as dav
from tests import seaweed
from tests.installation import clean_environ
from tests.stores import home_store, rot, wait_until_leases_passed

PASSWORD = "correct horse"
MTIME_NS = 1_700_000_000_123_456_789
TIMEZONE = ("BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n"
            "TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n"
            "END:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\nTZOFFSETFROM:+0100\r\n"
            "TZOFFSETTO:+0200\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n")


def event(uid: str, summary: str, *, tz: bool = False, extra: str = "") -> bytes:
    start = "DTSTART;TZID=Europe/Berlin:20260310T090000" if tz else "DTSTART:20260310T090000Z"
    text = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" + (TIMEZONE if tz else "")
            + f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n{start}\r\nDURATION:PT1H\r\n"
            + f"SUMMARY:{summary}\r\nEND:VEVENT\r\n{extra}END:VCALENDAR\r\n")
    return text.encode()


def card(uid: str, name: str) -> bytes:
    return f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{name}\r\nN:{name};;;;\r\nEND:VCARD\r\n".encode()


def store_file(db, store: BlobStore, folder: int, path: str, data: bytes, *, executable: bool = False,
               base: int | None = None):
    chunks = []
    for chunk in chunk_stream(io.BytesIO(data)):
        store.put(chunk.id, chunk.data)
        chunks.append((chunk.id, chunk.length))
    return write(db, lambda db: commit_file(db, folder, path, base, chunks, len(data), MTIME_NS, executable,
                                            "test", store=store))


def chunk_ids(data: bytes) -> set[str]:
    return {chunk.id for chunk in chunk_stream(io.BytesIO(data))}


class World:
    """alice with files, calendars, contacts and shares; bob, who shares with her and holds a file
    with the same bytes as one of hers (one chunk, stored once). In the blob store the home's
    hearth.toml names, as the commands and daemons on it do."""

    def __init__(self, home: Path):
        self.home = home
        self.db_path = db_path(home / "var")
        migrate(self.db_path, MIGRATION_SETS)
        self.db = open_db(self.db_path)
        self.store = home_store(home / "hearth.toml")
        rng = random.Random(6)
        self.big = rng.randbytes(3 * 1024 * 1024 + 12345)  # several chunks
        self.common = b"the same bytes in alice's and bob's folders\n" * 100
        self.alice_files = {
            ("Documents", "notes.txt"): b"second version\n",
            ("Documents", "sub/big.bin"): self.big,
            ("Documents", "run.sh"): b"#!/bin/sh\necho hi\n",
            ("Documents", "empty.txt"): b"",
            ("Documents", "common.txt"): self.common,
            ("Documents", "Grüße/ünïcode.txt"): "ü".encode() * 10,
            ("Photos", "cat.jpg"): rng.randbytes(40_000),
        }
        self.build()

    def build(self) -> None:
        db, store = self.db, self.store
        password_hash = accounts.hash_password(PASSWORD)
        for name in ("alice", "bob"):
            write(db, lambda db: accounts.create_user(db, name, password_hash))
        write(db, lambda db: accounts.create_app_password(db, "alice", "phone"))
        write(db, lambda db: addresses.add_address(db, "alice", "Alice@Example.org", "localhost"))
        folders = {name: write(db, lambda db: create_folder(db, "alice", name)).id
                   for name in ("Documents", "Photos", "Empty")}
        self.alice_folder_ids = set(folders.values())
        first = store_file(db, store, folders["Documents"], "notes.txt", b"first version\n")
        for (folder, path), data in self.alice_files.items():
            base = first.id if path == "notes.txt" else None
            store_file(db, store, folders[folder], path, data, executable=path == "run.sh", base=base)
        write(db, lambda db: mkdir(db, folders["Documents"], "empty dir", "test"))
        self.gone = store_file(db, store, folders["Documents"], "gone.txt", b"deleted before the export\n")
        write(db, lambda db: delete(db, folders["Documents"], "gone.txt", self.gone.id, "test"))
        write(db, lambda db: share_folder(db, "alice", folders["Photos"], "bob", "rw"))
        self.links = has_table(db, "share_links")
        if self.links:  # public share links, once the schema has them (services/files/links)
            from services.core.share_links import create_link
            self.link = write(db, lambda db: create_link(db, "alice", folders["Photos"], "cat.jpg",
                                                         label="for grandma"))

        bobs = write(db, lambda db: create_folder(db, "bob", "Music")).id
        self.bob_folder = bobs
        store_file(db, store, bobs, "copy.txt", self.common)
        self.bob_only = b"only bob has these bytes\n" * 50
        store_file(db, store, bobs, "own.txt", self.bob_only)
        write(db, lambda db: share_folder(db, "bob", bobs, "alice", "ro"))

        calendar = write(db, lambda db: dav.create_collection(db, "alice", dav.CALENDAR, "work",
                                                               displayname="Work, mostly"))
        contacts = write(db, lambda db: dav.create_collection(db, "alice", dav.ADDRESSBOOK, "contacts"))
        self.alice_collection_ids = {calendar.id, contacts.id}
        override = ("BEGIN:VEVENT\r\nUID:recurring@test\r\nDTSTAMP:20260101T000000Z\r\n"
                    "RECURRENCE-ID:20260317T080000Z\r\nDTSTART:20260317T100000Z\r\nDURATION:PT1H\r\n"
                    "SUMMARY:moved\r\nEND:VEVENT\r\n")
        items = {
            "a.ics": event("a@test", "standup", tz=True),
            "b.ics": event("b@test", "review", tz=True),
            "c.ics": event("c@test", "lunch"),
            "r.ics": event("recurring@test", "weekly", extra=override).replace(
                b"DURATION:PT1H\r\n", b"DURATION:PT1H\r\nRRULE:FREQ=WEEKLY;COUNT=4\r\n", 1),
        }
        for name, raw in items.items():
            write(db, lambda db: dav.put_item(db, calendar.id, name, raw))
        # An overwritten item leaves a kept revision behind (dav_revisions), which deletion must take too.
        write(db, lambda db: dav.put_item(db, calendar.id, "c.ics", event("c@test", "long lunch")))
        self.event_uids = {"a@test", "b@test", "c@test", "recurring@test"}
        for uid, name in (("card-1@test", "Carol Example"), ("card-2@test", "Dave Example")):
            write(db, lambda db: dav.put_item(db, contacts.id, f"{uid}.vcf", card(uid, name)))
        self.card_uids = {"card-1@test", "card-2@test"}
        write(db, lambda db: dav.share_collection(db, calendar.id, "bob", "read-write"))
        bob_book = write(db, lambda db: dav.create_collection(db, "bob", dav.ADDRESSBOOK, "friends"))
        write(db, lambda db: dav.put_item(db, bob_book.id, "x.vcf", card("bob-card@test", "Eve Example")))
        write(db, lambda db: dav.share_collection(db, bob_book.id, "alice", "read"))


def has_table(db, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name]).fetchone() is not None


@pytest.fixture
def world(tmp_path):
    (tmp_path / "hearth.toml").write_text(f'data_dir = "var"\n{seaweed.session_storage(tmp_path)}')
    built = World(tmp_path)
    yield built
    built.db.close()
    built.store.close()


def hearth(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = clean_environ()
    return subprocess.run([sys.executable, "-m", "services.cli", "--config", str(home / "hearth.toml"), *args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=home, env=env,
                          timeout=120)


def tree_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- export ---------------------------------------------------------------------------

def test_export_writes_every_file_calendar_card_and_share(world):
    out = world.home / "export"
    started = time.monotonic()
    result = hearth(world.home, "export", "alice", str(out))
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "exported alice" in result.stdout and "7 files in 3 folders" in result.stdout
    print(f"export of {len(world.big) >> 20} MiB and 11 items took {elapsed:.2f} s")

    for (folder, path), data in world.alice_files.items():
        exported = out / "files" / folder / path
        assert exported.read_bytes() == data, path
        assert exported.stat().st_mtime_ns == MTIME_NS
        assert bool(exported.stat().st_mode & stat.S_IXUSR) == (path == "run.sh"), path
    assert (out / "files" / "Documents" / "empty dir").is_dir()
    assert (out / "files" / "Empty").is_dir()
    assert not (out / "files" / "Documents" / "gone.txt").exists()  # deleted: in the trash, not exported
    assert not (out / "files" / "Music").exists()  # bob's, shared with alice: his to export

    calendar = Calendar.from_ical((out / "calendars" / "work.ics").read_bytes())
    assert calendar.name == "VCALENDAR" and str(calendar["X-WR-CALNAME"]) == "Work, mostly"
    events = calendar.walk("VEVENT")
    assert {str(e["UID"]) for e in events} == world.event_uids
    assert len(events) == 5  # the recurring event's override travels with it
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["Europe/Berlin"]  # once, not per event
    assert {str(e["SUMMARY"]) for e in events if e["UID"] == "c@test"} == {"long lunch"}  # the current one
    assert b"\r\nSUMMARY:standup\r\n" in (out / "calendars" / "work.ics").read_bytes()

    cards = list(vobject.readComponents((out / "contacts" / "contacts.vcf").read_text()))
    assert {c.uid.value for c in cards} == world.card_uids
    assert not (out / "contacts" / "friends.vcf").exists()  # bob's address book

    shares = json.loads((out / "shares.json").read_text())
    assert shares["folders"] == {"given": [{"folder": "Photos", "grantee": "bob", "mode": "rw"}],
                                 "received": [{"owner": "bob", "folder": "Music", "mode": "ro"}]}
    assert shares["collections"]["given"] == [
        {"kind": "calendar", "collection": "work", "grantee": "bob", "mode": "read-write"}]
    assert shares["collections"]["received"] == [
        {"kind": "addressbook", "owner": "bob", "collection": "friends", "mode": "read",
         "mounted_as": "friends_shared_by_bob"}]

    if world.links:
        assert shares["links"] == [{
            "url_start": f"/s/{world.link.token[:4]}…", "folder": "Photos", "path": "cat.jpg", "is_dir": False,
            "mode": "read", "label": "for grandma", "has_password": False, "expires_at": None, "downloads": 0,
            "created_at": world.link.created_at, "revoked_at": None}]

    manifest = json.loads((out / "manifest.json").read_text())
    on_disk = tree_of(out)
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == set(on_disk) - {"manifest.json"}
    for path, entry in listed.items():
        assert entry["size"] == len(on_disk[path]) and entry["sha256"] == hashlib.sha256(on_disk[path]).hexdigest()
    assert manifest["user"] == "alice" and manifest["exported_at"].startswith("20")
    assert manifest["email_addresses"] == ["alice@example.org"]  # registered ones: NAME@mail_domain goes without saying
    assert manifest["counts"] == {"folders": 3, "files": 7, "directories": 1, "bytes": sum(
        len(d) for d in world.alice_files.values()), "calendars": 1, "calendar_objects": 4,
        "address_books": 1, "cards": 2}
    assert manifest["total_bytes"] == sum(len(d) for p, d in on_disk.items() if p != "manifest.json")
    assert not [p for p in out.rglob("*export-tmp*")]


def test_export_refuses_a_non_empty_directory_and_changes_nothing(world):
    out = world.home / "occupied"
    out.mkdir()
    (out / "keep.txt").write_bytes(b"mine")
    (out / "files").mkdir()
    before = {p: (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else None) for p in out.rglob("*")}
    result = hearth(world.home, "export", "alice", str(out))
    assert result.returncode == 2
    assert result.stderr.strip() == f"hearth: {out} is not empty: export into a new or empty directory " \
                                    "(nothing was written)"
    assert {p: (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else None) for p in out.rglob("*")} == before

    a_file = world.home / "a-file"
    a_file.write_bytes(b"x")
    refused = hearth(world.home, "export", "alice", str(a_file))
    assert refused.returncode == 2 and "is not a directory" in refused.stderr and a_file.read_bytes() == b"x"

    unknown = hearth(world.home, "export", "nobody", str(world.home / "new"))
    assert unknown.returncode == 1 and unknown.stderr.strip() == "hearth: no user named 'nobody'"
    assert not (world.home / "new").exists()


def test_export_into_an_empty_directory_works(world):
    out = world.home / "empty-dir"
    out.mkdir()
    result = hearth(world.home, "export", "bob", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "files" / "Music" / "copy.txt").read_bytes() == world.common
    assert json.loads((out / "shares.json").read_text())["collections"]["received"][0]["collection"] == "work"


def test_export_reads_one_snapshot(world):
    """A file committed while the export runs is not in it, and the manifest agrees with the disk."""
    other = open_db(world.db_path)
    documents = other.execute("SELECT id FROM folders WHERE owner = 'alice' AND name = 'Documents'").fetchone()[0]

    def write_meanwhile(total: int):
        store_file(other, world.store, documents, "late.txt", b"committed during the export\n")
        return lambda n: None

    try:
        manifest = export_user(world.db, world.store, "alice", world.home / "snap", progress=write_meanwhile)
    finally:
        other.close()
    assert world.db.execute("SELECT count(*) FROM entries WHERE path = 'late.txt'").fetchone()[0] == 1
    assert not (world.home / "snap" / "files" / "Documents" / "late.txt").exists()
    assert manifest["counts"]["files"] == 7


def test_export_stops_at_a_damaged_chunk_with_its_name(world):
    big_chunk = sorted(chunk_ids(world.big))[0]
    rot(world.store, big_chunk, b"rotten")
    result = hearth(world.home, "export", "alice", str(world.home / "out"))
    assert result.returncode == 1
    assert result.stderr.strip() == (f"hearth: Documents/sub/big.bin: chunk {big_chunk} is damaged in the blob "
                                     "store (`hearth sync check --verify` lists what is damaged)")
    assert not (world.home / "out" / "manifest.json").exists()


# --- deletion -------------------------------------------------------------------------

def rows_mentioning(db, name: str, user_id: int, folder_ids: set[int], collection_ids: set[int]) -> list:
    """Every row of every table that names the user, or points at their id, folders or collections."""
    found = []
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                       "AND name NOT LIKE 'sqlite_%'")]
    assert {"users", "folders", "entries", "revisions", "revision_chunks", "dav_items", "dav_revisions"} <= set(tables)
    for table in tables:
        cursor = db.execute(f'SELECT * FROM "{table}"')
        columns = [c[0] for c in cursor.description]
        for row in cursor:
            for column, value in zip(columns, row):
                text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
                if isinstance(text, str) and name in text:
                    found.append((table, column, text[:80]))
                elif column == "user_id" and value == user_id:
                    found.append((table, column, value))
                elif column == "folder_id" and value in folder_ids:
                    found.append((table, column, value))
                elif column == "collection_id" and value in collection_ids:
                    found.append((table, column, value))
    return found


def test_user_del_leaves_no_row_and_no_blob_of_theirs(world):
    db, store = world.db, world.store
    alice_id = accounts.get_user(db, "alice")["id"]
    alice_chunks = set(chunks_of_user(db, "alice"))
    bob_chunks = set(chunks_of_user(db, "bob"))
    shared = alice_chunks & bob_chunks
    assert shared == chunk_ids(world.common) and len(alice_chunks) > 5
    # A lock alice holds in bob's shared folder, and an invitation by email she has not sent yet.
    bobs_folder = db.execute("SELECT id FROM folders WHERE owner = 'bob'").fetchone()[0]
    with db.conn:
        db.execute("INSERT INTO files_locks (token, folder_id, path, principal, scope, depth, owner, timeout, "
                   "expires_at) VALUES ('urn:uuid:1', ?, 'copy.txt', 'alice', 'exclusive', '0', '', 60, 9e9)",
                   [bobs_folder])
        db.execute("INSERT INTO dav_outgoing_mail (sender, recipient, method, message, created_at, next_attempt_at) "
                   "VALUES ('mailto:alice@localhost', 'mailto:ann@example.org', 'REQUEST', x'00', '', 0)")
        # A mass deletion she made in bob's folder (services/core/tree/deletion_runs.py).
        db.execute("INSERT INTO deletion_runs (folder_id, user, credential, device, started_at, last_at, files, "
                   "tracked, flagged_at) VALUES (?, 'alice', 0, 'phone', 0, 0, 11, 12, 0)", [bobs_folder])
    before = rows_mentioning(db, "alice", alice_id, world.alice_folder_ids, world.alice_collection_ids)
    assert {table for table, *_ in before} >= {"users", "app_passwords", "folders", "entries", "folder_shares",
                                               "dav_collections", "dav_items", "dav_shares", "dav_revisions",
                                               "files_locks", "dav_outgoing_mail", "deletion_runs",
                                               *(["share_links"] if world.links else [])}

    wait_until_leases_passed(store, alice_chunks)  # else the deletion spares them as uploads in flight
    result = hearth(world.home, "user", "del", "alice", "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"deleted user alice ({len(alice_chunks - shared)} stored chunks erased)"

    assert rows_mentioning(db, "alice", alice_id, world.alice_folder_ids, world.alice_collection_ids) == []
    assert store.has_many(alice_chunks) == shared  # hers are gone, the one bob also uses stays
    stored = set(store.stored())
    assert stored == bob_chunks
    # bob lost nothing: his files export byte for byte, and the store checks clean.
    out = world.home / "bob-export"
    assert hearth(world.home, "export", "bob", str(out)).returncode == 0
    assert (out / "files" / "Music" / "copy.txt").read_bytes() == world.common
    assert (out / "files" / "Music" / "own.txt").read_bytes() == world.bob_only
    assert json.loads((out / "shares.json").read_text())["collections"]["received"] == []
    check = hearth(world.home, "sync", "check", "--verify")
    assert check.returncode == 0, check.stdout + check.stderr


def test_api_deletion_leaves_the_chunks_to_the_regular_gc(world):
    """accounts.delete_user (what DELETE /api/v1/users/{name} runs) drops every row at once; the chunks,
    referenced by nothing, go at the sync daemon's next GC pass, and the shared one stays."""
    db, store = world.db, world.store
    alice_chunks = set(chunks_of_user(db, "alice"))
    shared = chunk_ids(world.common)
    write(db, lambda db: accounts.delete_user(db, "alice"))
    assert db.execute("SELECT count(*) FROM folders WHERE owner = 'alice'").fetchone()[0] == 0
    assert store.has_many(alice_chunks) == alice_chunks  # blobs only ever go after the commit
    write(db, lambda db: collect_garbage(db, store, grace_seconds=0, now=time.time() + 1))
    assert store.has_many(alice_chunks) == shared


def test_a_failed_deletion_keeps_rows_and_blobs(world):
    db, store = world.db, world.store
    alice_chunks = set(chunks_of_user(db, "alice"))

    def delete_then_fail(db):
        accounts.delete_user(db, "alice")
        raise RuntimeError("the disk filled up")

    with pytest.raises(RuntimeError):
        write(db, delete_then_fail)
    assert accounts.get_user(db, "alice") is not None
    assert set(chunks_of_user(db, "alice")) == alice_chunks and store.has_many(alice_chunks) == alice_chunks


def test_erasing_spares_a_chunk_put_again_since_the_deletion_began(world):
    """An upload in flight (another user's client re-putting the same bytes) keeps its lease."""
    db, store = world.db, world.store
    alice_chunks = sorted(chunks_of_user(db, "alice"))
    re_put = next(c for c in alice_chunks if c not in chunk_ids(world.common))
    data = store.get(re_put)
    wait_until_leases_passed(store, alice_chunks)
    started = time.time()
    write(db, lambda db: accounts.delete_user(db, "alice"))
    while time.time() < started + 0.02:  # past the coarse clock a file's mtime is taken from
        time.sleep(0.005)
    store.put(re_put, data)  # someone's client sends the same bytes again: its lease starts anew
    erased = write(db, lambda db: erase_chunks(db, store, alice_chunks, started))
    assert re_put not in erased and store.has_many([re_put]) == {re_put}
    assert set(erased) == set(alice_chunks) - chunk_ids(world.common) - {re_put}
