"""Old revisions of calendar objects and vCards: kept on overwrite and delete, listed, expired.

put_item, delete_item, delete_collection and move_item call `keep_item` /
`keep_collection_items` inside their own transaction, just before the bytes
go, so every path that changes an item (HTTP, scheduling deliveries, the CLI)
leaves the old revision behind. Each call is one INSERT … SELECT: the bytes
move inside SQLite, never through Python. A revision copies its collection's
owner, kind and name, so it outlives the collection (restore.py recreates it).
Bringing one back is restore.py's job; retention (`expire_revisions`) drops
them after [dav] keep_revisions_days.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlite_utils
from icalendar.parser import Contentlines

from services.core.errors import NotFound
from services.core.tree.clock import stamp, utcnow

OVERWRITTEN, DELETED, COLLECTION_DELETED = "overwritten", "deleted", "collection-deleted"
SUMMARY_SCAN = 64 * 1024  # bytes of an object searched for its SUMMARY or FN in listings

_KEEP = """
    INSERT INTO dav_revisions (owner, kind, collection_id, collection_name, collection_displayname, name,
                               uid, etag, component, raw, reason, replaced_at)
    SELECT c.owner, c.kind, c.id, c.name, c.displayname, i.name, i.uid, i.etag, i.component, i.raw, ?, ?
    FROM dav_items i JOIN dav_collections c ON c.id = i.collection_id
    WHERE i.collection_id = ?"""
_COLUMNS = ("id, owner, kind, collection_id, collection_name, collection_displayname, name, uid, etag, "
            "component, reason, replaced_at, length(raw) AS size")


@dataclass(frozen=True)
class Revision:
    id: int
    owner: str  # the collection's owner, whoever made the change
    kind: str  # 'calendar' | 'addressbook'
    collection_id: int  # may name a collection that no longer exists
    collection_name: str
    collection_displayname: str | None
    name: str  # the item's name in its collection
    uid: str
    etag: str
    component: str
    reason: str  # OVERWRITTEN | DELETED | COLLECTION_DELETED
    replaced_at: str  # when it stopped being current (UTC, services.core.tree.clock format)
    size: int
    summary: str = ""  # SUMMARY of a calendar object, FN of a vCard; listings only
    raw: bytes | None = None  # get_revision only


def keep_item(db: sqlite_utils.Database, collection_id: int, name: str, reason: str) -> None:
    """Keep item `name` as it is now (nothing if there is none), before it is overwritten or deleted."""
    db.execute(_KEEP + " AND i.name = ?", [reason, utcnow(), collection_id, name])


def keep_collection_items(db: sqlite_utils.Database, collection_id: int) -> int:
    """Keep every item of a collection that is about to be deleted; returns how many."""
    return db.execute(_KEEP, [COLLECTION_DELETED, utcnow(), collection_id]).rowcount


def list_revisions(db: sqlite_utils.Database, owner: str, *, collection: str | None = None,
                   deleted: bool = False, limit: int | None = None) -> list[Revision]:
    """The owner's kept revisions, newest first, each with its summary.

    `collection` keeps those of the collection with that name (calendar or
    address book); `deleted` keeps those that were deleted, alone or with
    their collection, and leaves out overwritten ones."""
    where, params = ["owner = ?"], [owner]
    if collection is not None:
        where.append("collection_name = ?")
        params.append(collection)
    if deleted:
        where.append("reason != ?")
        params.append(OVERWRITTEN)
    sql = (f"SELECT {_COLUMNS}, substr(raw, 1, {SUMMARY_SCAN}) AS head FROM dav_revisions "
           f"WHERE {' AND '.join(where)} ORDER BY id DESC")
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    revisions = []
    for row in db.query(sql, params):
        head = row.pop("head")
        revisions.append(Revision(**row, summary=summary_of(head)))
    return revisions


def get_revision(db: sqlite_utils.Database, owner: str, revision_id: int) -> Revision:
    """One of the owner's revisions with its bytes; NotFound (also for someone else's: no hint it exists)."""
    rows = list(db.query(f"SELECT {_COLUMNS}, raw FROM dav_revisions WHERE id = ? AND owner = ?",
                         [revision_id, owner]))
    if not rows:
        raise NotFound(f"{owner} has no kept revision {revision_id}")
    row = rows[0]
    return Revision(**row, summary=summary_of(row["raw"][:SUMMARY_SCAN]))


def expire_revisions(db: sqlite_utils.Database, older_than: datetime, *, limit: int | None = None) -> int:
    """Drop revisions replaced before `older_than`, oldest first, at most `limit`; returns how many."""
    if limit is None:
        return db.execute("DELETE FROM dav_revisions WHERE replaced_at < ?", [stamp(older_than)]).rowcount
    return db.execute("""DELETE FROM dav_revisions WHERE id IN (
                             SELECT id FROM dav_revisions WHERE replaced_at < ? ORDER BY replaced_at LIMIT ?)""",
                      [stamp(older_than), limit]).rowcount


def delete_revisions_of(db: sqlite_utils.Database, user: dict) -> None:
    """Forget every revision a user owns: their account is being deleted (accounts.USER_DATA_DELETERS)."""
    db.execute("DELETE FROM dav_revisions WHERE owner = ?", [user["name"]])


def summary_of(raw: bytes) -> str:
    """The first SUMMARY (calendar object) or FN (vCard) value, unfolded and unescaped; "" if none.

    A content-line scan, not a full parse: listings show hundreds of these,
    and a summary is a hint, so unreadable data gives "" rather than an error."""
    for line in Contentlines.from_ical(raw.decode("utf-8", errors="replace")):
        if not line[:8].upper().startswith(("SUMMARY", "FN")):
            continue
        try:
            name, _, value = line.parts()
        except ValueError:  # a line icalendar cannot split; the next may do
            continue
        if name.upper() in ("SUMMARY", "FN"):
            return str(value).strip()
    return ""
