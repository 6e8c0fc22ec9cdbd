"""Calendars and address books: create, find, describe, delete, share.

Functions run inside the caller's write (or read) transaction and raise
HTTPError subclasses; they never commit.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from services.core.errors import BadRequest, Conflict, Forbidden, NotFound
from services.core.tree.clock import utcnow

from .changes import sync_token
from .names import check_collection_name
from .personal import forget_personal_properties
from .revisions import keep_collection_items

CALENDAR, ADDRESSBOOK = "calendar", "addressbook"
COMPONENTS = {CALENDAR: ("VEVENT", "VTODO", "VJOURNAL"), ADDRESSBOOK: ("VCARD",)}
PROPERTIES = ("displayname", "description", "color", "timezone")  # what PROPPATCH may change
SHARE_MODES = ("read", "read-write")
DEFAULTS = ((CALENDAR, "calendar", "Calendar"), (ADDRESSBOOK, "contacts", "Contacts"))
# RFC 6638 schedule inbox and outbox: calendar collections under these reserved names (services/dav/scheduling).
SCHEDULING = ("inbox", "outbox")


@dataclass(frozen=True)
class Collection:
    id: int
    owner: str
    kind: str  # 'calendar' | 'addressbook'
    name: str  # URL segment in the owner's home
    displayname: str | None
    description: str | None
    color: str | None
    timezone: str | None  # a VCALENDAR with one VTIMEZONE (RFC 4791 §5.2.2), as the client sent it
    components: tuple[str, ...]
    created_at: str
    seq: int
    access: str = "owner"  # 'owner' | 'read' | 'read-write', as seen by whoever asked

    @property
    def ctag(self) -> str:
        """CalendarServer getctag: changes whenever an item does."""
        return str(self.seq)

    @property
    def sync_token(self) -> str:
        return sync_token(self.id, self.seq)


def create_collection(db: sqlite_utils.Database, owner: str, kind: str, name: str, *,
                      displayname: str | None = None, description: str | None = None,
                      color: str | None = None, timezone: str | None = None,
                      components: tuple[str, ...] | None = None, scheduling: bool = False) -> Collection:
    """A new empty collection. BadRequest (kind, name or components), Conflict (name taken or reserved).

    A calendar created without a component set supports all of them (RFC 4791 §5.2.3).
    `scheduling`: this is the schedule inbox or outbox itself, whose names nobody else may take."""
    if kind not in COMPONENTS:
        raise BadRequest(f"unknown collection kind {kind!r}")
    check_collection_name(name)
    if kind == CALENDAR and name in SCHEDULING and not scheduling:
        raise Conflict(f"{name!r} is reserved for the schedule {name}")
    components = tuple(c.upper() for c in components) if components else COMPONENTS[kind]
    unsupported = set(components) - set(COMPONENTS[kind])
    if unsupported:
        raise BadRequest(f"a {kind} cannot hold {', '.join(sorted(unsupported))}")
    if find_collection(db, owner, kind, name) is not None:
        raise Conflict(f"{owner} already has a {kind} named {name!r}")
    cursor = db.execute("""
        INSERT INTO dav_collections (owner, kind, name, displayname, description, color, timezone,
                                     components, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [owner, kind, name, displayname, description, color, timezone, ",".join(components), utcnow()])
    return get_collection(db, cursor.lastrowid)


def ensure_defaults(db: sqlite_utils.Database, owner: str) -> list[Collection]:
    """Give a user with no calendar a "calendar", with no address book a "contacts"; returns those created.

    Run at every login: it only acts while the user has none of a kind, so a
    user who renamed theirs keeps the name, and one who deleted all their
    calendars gets a fresh one (clients cannot work without a collection)."""
    created = []
    for kind, name, displayname in DEFAULTS:
        if db.execute("SELECT 1 FROM dav_collections WHERE owner = ? AND kind = ? AND name NOT IN (?, ?) LIMIT 1",
                      [owner, kind, *SCHEDULING]).fetchone():
            continue
        if find_collection(db, owner, kind, name) is None:
            created.append(create_collection(db, owner, kind, name, displayname=displayname))
    return created


def get_collection(db: sqlite_utils.Database, collection_id: int) -> Collection:
    """The collection with this id; NotFound."""
    row = _row(db.execute("SELECT * FROM dav_collections WHERE id = ?", [collection_id]))
    if row is None:
        raise NotFound(f"no collection {collection_id}")
    return _collection(row)


def collection_by_name(db: sqlite_utils.Database, owner: str, kind: str, name: str) -> Collection:
    """The owner's collection at this URL segment; NotFound."""
    found = find_collection(db, owner, kind, name)
    if found is None:
        raise NotFound(f"{owner} has no {kind} named {name!r}")
    return found


def list_collections(db: sqlite_utils.Database, user: str, kind: str | None = None) -> list[Collection]:
    """The user's own collections, then those shared with them (with the access they were given)."""
    kinds = [kind] if kind else list(COMPONENTS)
    marks = ",".join("?" * len(kinds))
    own = db.query(f"SELECT * FROM dav_collections WHERE owner = ? AND kind IN ({marks}) ORDER BY kind, name",
                   [user, *kinds])
    shared = db.query(f"""
        SELECT c.*, s.mode FROM dav_collections c JOIN dav_shares s ON s.collection_id = c.id
        WHERE s.grantee = ? AND c.kind IN ({marks}) ORDER BY c.kind, c.owner, c.name""", [user, *kinds])
    return [_collection(r) for r in own] + [_collection(r, r.pop("mode")) for r in shared]


def update_properties(db: sqlite_utils.Database, collection_id: int, changes: dict) -> Collection:
    """Set (or, with None, remove) displayname, description, color, timezone.

    BadRequest for any other key: the component set is fixed at creation
    (RFC 4791 §5.2.3 makes it protected). Does not touch the sync sequence:
    tokens track members, not properties."""
    unknown = set(changes) - set(PROPERTIES)
    if unknown:
        raise BadRequest(f"cannot change {', '.join(sorted(unknown))}")
    get_collection(db, collection_id)
    for key, value in changes.items():
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"{key} must be text")
        db.execute(f"UPDATE dav_collections SET {key} = ? WHERE id = ?", [value, collection_id])
    return get_collection(db, collection_id)


def delete_collection(db: sqlite_utils.Database, collection_id: int) -> None:
    """Delete the collection with its items, change log and shares; NotFound.

    Its items are kept as revisions first (restore.py can bring them back,
    recreating the collection). Forbidden for the schedule inbox and outbox."""
    collection = get_collection(db, collection_id)
    if collection.kind == CALENDAR and collection.name in SCHEDULING:
        raise Forbidden("the schedule inbox and outbox cannot be deleted")
    keep_collection_items(db, collection_id)
    if db.execute("DELETE FROM dav_collections WHERE id = ?", [collection_id]).rowcount == 0:
        raise NotFound(f"no collection {collection_id}")


def share_collection(db: sqlite_utils.Database, collection_id: int, grantee: str, mode: str) -> None:
    """Grant (or change) `grantee`'s access: 'read' or 'read-write'. BadRequest for the owner or a bad mode."""
    if mode not in SHARE_MODES:
        raise BadRequest(f"share mode must be one of {', '.join(SHARE_MODES)}")
    collection = get_collection(db, collection_id)
    if collection.owner == grantee:
        raise BadRequest("the owner already has full access")
    if collection.kind == CALENDAR and collection.name in SCHEDULING:
        raise BadRequest("the schedule inbox and outbox cannot be shared")
    db.execute("""INSERT INTO dav_shares (collection_id, grantee, mode) VALUES (?, ?, ?)
                  ON CONFLICT (collection_id, grantee) DO UPDATE SET mode = excluded.mode""",
               [collection_id, grantee, mode])


def revoke_share(db: sqlite_utils.Database, collection_id: int, grantee: str) -> None:
    """Take `grantee`'s access away, with their own names and colours for it; NotFound if they had none."""
    if db.execute("DELETE FROM dav_shares WHERE collection_id = ? AND grantee = ?",
                  [collection_id, grantee]).rowcount == 0:
        raise NotFound(f"collection {collection_id} is not shared with {grantee}")
    forget_personal_properties(db, grantee, collection_id)


def shares_of(db: sqlite_utils.Database, collection_id: int) -> dict[str, str]:
    """grantee -> mode."""
    return {r["grantee"]: r["mode"] for r in db.query(
        "SELECT grantee, mode FROM dav_shares WHERE collection_id = ? ORDER BY grantee", [collection_id])}


def find_collection(db: sqlite_utils.Database, owner: str, kind: str, name: str) -> Collection | None:
    """The owner's collection at this URL segment, or None."""
    row = _row(db.execute("SELECT * FROM dav_collections WHERE owner = ? AND kind = ? AND name = ?",
                          [owner, kind, name]))
    return None if row is None else _collection(row)


def _row(cursor) -> dict | None:
    row = cursor.fetchone()
    return None if row is None else dict(zip([c[0] for c in cursor.description], row))


def _collection(row: dict, access: str = "owner") -> Collection:
    return Collection(row["id"], row["owner"], row["kind"], row["name"], row["displayname"],
                      row["description"], row["color"], row["timezone"],
                      tuple(row["components"].split(",")), row["created_at"], row["seq"], access)
