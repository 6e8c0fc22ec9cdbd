"""Calendar objects and vCards in a collection: put, get, delete, list, and time-range candidates.

Each item keeps the client's bytes exactly as sent, with a strong ETag (a hash
of those bytes), its UID and component type, and the UTC bounds the time-range
index uses. Every change goes through the collection's change log
(changes.record_change), so sync tokens see it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable

import sqlite_utils

from services.core.errors import NotFound
from services.core.tree.clock import utcnow

from ..errors import CALDAV, Precondition, namespace_of
from ..ical import parse_calendar
from ..instancerows import InstanceRows, instance_rows
from ..vcard import parse_vcard
from .changes import record_change
from .collections import CALENDAR, Collection, get_collection
from .conditions import check_conditions
from .instances import replace_instances
from .names import check_name
from .revisions import DELETED, OVERWRITTEN, keep_item

MAX_RESOURCE_SIZE = 4 * 1024 * 1024  # advertised as CALDAV/CARDDAV:max-resource-size
# The Schedule-Tag (scheduling/tags.py) is read with the item: clients ask for it next to the ETag.
COLUMNS = ("collection_id, name, uid, etag, component, first_start, last_end, created_at, "
           "modified_at, seq, length(raw) AS size, (SELECT tag FROM dav_schedule_tags t "
           "WHERE t.collection_id = dav_items.collection_id AND t.name = dav_items.name) AS schedule_tag")


@dataclass(frozen=True)
class Item:
    collection_id: int
    name: str
    uid: str
    etag: str  # strong, quoted, ready for the ETag header
    component: str  # 'VEVENT' | 'VTODO' | 'VJOURNAL' | 'VCARD'
    first_start: int | None  # UTC epoch seconds, None = unbounded
    last_end: int | None
    created_at: str
    modified_at: str
    seq: int  # the collection sequence number of its last change
    size: int
    schedule_tag: str | None  # RFC 6638 §3.2.10, only on scheduling object resources
    raw: bytes | None = None  # None where a listing did not ask for content


@dataclass(frozen=True)
class Parsed:
    uid: str
    component: str
    first_start: int | None
    last_end: int | None
    instances: InstanceRows | None = None  # an event's precomputed instances, None when it has none


def etag_of(raw: bytes) -> str:
    return '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'


def put_item(db: sqlite_utils.Database, collection_id: int, name: str, raw: bytes, *,
             if_match: str | None = None, if_none_match: bool = False,
             max_size: int = MAX_RESOURCE_SIZE) -> tuple[Item, bool]:
    """Store `raw` as item `name`; returns (item, created).

    Checked in this order, and nothing changes when one fails: NotFound (no
    collection), BadRequest (name), PreconditionFailed (If-Match/If-None-Match),
    Precondition max-resource-size, valid-calendar-data /
    valid-calendar-object-resource / valid-address-data,
    supported-calendar-component, no-uid-conflict (the UID lives at another
    name, or the PUT would replace an item that has a different UID)."""
    collection = get_collection(db, collection_id)
    check_name(name, "item name")
    current = find_item(db, collection_id, name)
    check_conditions(name, current.etag if current else None, if_match, if_none_match)
    raw = bytes(raw)
    namespace = namespace_of(collection.kind)
    if len(raw) > max_size:
        raise Precondition(namespace, "max-resource-size", f"{len(raw)} bytes; the limit is {max_size}")
    parsed = parse_item(collection, raw)
    _check_uid(db, collection, name, parsed.uid, current)
    etag = etag_of(raw)
    if current is not None and current.etag == etag:
        return get_item(db, collection_id, name), False  # same bytes again: no change for sync clients to fetch
    if current is not None:
        keep_item(db, collection_id, name, OVERWRITTEN)
    seq = record_change(db, collection_id, name, deleted=False)
    now = utcnow()
    db.execute("""
        INSERT INTO dav_items (collection_id, name, uid, etag, component, raw, first_start, last_end,
                               created_at, modified_at, seq)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (collection_id, name) DO UPDATE SET uid = excluded.uid, etag = excluded.etag,
            component = excluded.component, raw = excluded.raw, first_start = excluded.first_start,
            last_end = excluded.last_end, modified_at = excluded.modified_at, seq = excluded.seq""",
        [collection_id, name, parsed.uid, etag, parsed.component, raw, parsed.first_start,
         parsed.last_end, now, now, seq])
    replace_instances(db, collection_id, name, etag, parsed.instances)
    return get_item(db, collection_id, name), current is None


def parse_item(collection: Collection, raw: bytes) -> Parsed:
    """Validate `raw` for this collection's kind and component set; Precondition otherwise."""
    if collection.kind == CALENDAR:
        obj = parse_calendar(raw)
        if obj.component not in collection.components:
            raise Precondition(CALDAV, "supported-calendar-component",
                               f"this calendar holds {', '.join(collection.components)}, not {obj.component}")
        rows = instance_rows(raw, obj.first_start, obj.last_end, parsed=obj.calendar) \
            if obj.component == "VEVENT" else None
        return Parsed(obj.uid, obj.component, obj.first_start, obj.last_end, rows)
    return Parsed(parse_vcard(raw).uid, "VCARD", None, None)


def get_item(db: sqlite_utils.Database, collection_id: int, name: str) -> Item:
    """The item with its bytes; NotFound."""
    item = find_item(db, collection_id, name, with_raw=True)
    if item is None:
        raise NotFound(f"no item {name!r} in collection {collection_id}")
    return item


def get_items(db: sqlite_utils.Database, collection_id: int, names: Iterable[str]) -> dict[str, Item]:
    """Those of `names` that exist, with their bytes (multiget); missing names are simply absent."""
    names = list(dict.fromkeys(names))
    found: dict[str, Item] = {}
    for start in range(0, len(names), 500):  # stay far below SQLite's bound-parameter limit
        batch = names[start:start + 500]
        rows = db.query(f"SELECT {COLUMNS}, raw FROM dav_items WHERE collection_id = ? AND name IN "
                        f"({','.join('?' * len(batch))})", [collection_id, *batch])
        found.update((row["name"], Item(**row)) for row in rows)
    return found


def list_items(db: sqlite_utils.Database, collection_id: int, *, with_raw: bool = False) -> list[Item]:
    """Every item of the collection by name; content only if asked (PROPFIND needs ETags, not bodies)."""
    raw = ", raw" if with_raw else ""
    return [Item(**row) for row in db.query(
        f"SELECT {COLUMNS}{raw} FROM dav_items WHERE collection_id = ? ORDER BY name", [collection_id])]


def items_in_range(db: sqlite_utils.Database, collection_id: int, start: int | None, end: int | None,
                   *, with_raw: bool = True) -> list[Item]:
    """Candidates for a time-range query [start, end] (UTC epoch seconds, None = open).

    A superset: every item whose indexed bounds touch the range, including the
    unbounded ones; the exact CalDAV filter runs on these afterwards."""
    select = f"SELECT {COLUMNS}{', raw' if with_raw else ''} FROM dav_items WHERE collection_id = ?"
    before_end, params = "", []
    if end is not None:
        before_end = " AND (first_start <= ? OR first_start IS NULL)"
        params = [end]
    if start is None:
        sql, args = select + before_end, [collection_id, *params]
    else:
        # Two index range scans, not one OR: SQLite cannot range-scan "last_end >= ? OR
        # last_end IS NULL", and would read the whole collection instead.
        sql = (f"{select} AND last_end >= ?{before_end} UNION ALL "
               f"{select} AND last_end IS NULL{before_end}")
        args = [collection_id, start, *params, collection_id, *params]
    return sorted((Item(**row) for row in db.query(sql, args)), key=lambda item: item.name)


def delete_item(db: sqlite_utils.Database, collection_id: int, name: str, *,
                if_match: str | None = None, keep_revision: bool = True) -> Item:
    """Delete the item, leaving a tombstone for sync; returns what was deleted. NotFound, PreconditionFailed.

    The deleted bytes are kept as a revision unless `keep_revision` is false
    (a MOVE's source: its bytes live on at the destination)."""
    item = get_item(db, collection_id, name)
    check_conditions(name, item.etag, if_match, False)
    if keep_revision:
        keep_item(db, collection_id, name, DELETED)
    db.execute("DELETE FROM dav_items WHERE collection_id = ? AND name = ?", [collection_id, name])
    record_change(db, collection_id, name, deleted=True)
    return item


def _check_uid(db, collection: Collection, name: str, uid: str, current: Item | None) -> None:
    namespace = namespace_of(collection.kind)
    if current is not None and current.uid != uid:
        raise Precondition(namespace, "no-uid-conflict",
                           f"{name} holds UID {current.uid!r}; a PUT cannot change it", href=name)
    row = db.execute("SELECT name FROM dav_items WHERE collection_id = ? AND uid = ? AND name != ?",
                     [collection.id, uid, name]).fetchone()
    if row is not None:
        raise Precondition(namespace, "no-uid-conflict", f"UID {uid!r} is already used by {row[0]}",
                           href=row[0])


def find_item(db: sqlite_utils.Database, collection_id: int, name: str, *,
              with_raw: bool = False) -> Item | None:
    """The item, or None when there is none by that name."""
    rows = list(db.query(f"SELECT {COLUMNS}{', raw' if with_raw else ''} FROM dav_items "
                         "WHERE collection_id = ? AND name = ?", [collection_id, name]))
    return Item(**rows[0]) if rows else None


