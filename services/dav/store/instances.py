"""The stored instances of events (services/dav/instancerows.py): replaced with the item, read by queries.

A set of rows belongs to the bytes it was computed from: it carries their
ETag, and a reader trusts it only while the item still has that ETag. Rows
go with their item (foreign keys: deleted with it, renamed by a MOVE with it).
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from ..instancerows import InstanceRows

Row = tuple[int, int, int]  # start, end, flags


@dataclass(frozen=True)
class StoredInstances:
    covered_from: int | None
    covered_until: int | None
    rows: list[Row]  # those asked for: around the range of the query


def replace_instances(db: sqlite_utils.Database, collection_id: int, name: str, etag: str,
                      found: InstanceRows | None) -> None:
    """The item's stored instances become `found`, computed from the bytes with ETag `etag` (None: none)."""
    db.execute("DELETE FROM dav_instance_sets WHERE collection_id = ? AND name = ?", [collection_id, name])
    if found is None:
        return
    db.execute("INSERT INTO dav_instance_sets (collection_id, name, etag, covered_from, covered_until, years_from) "
               "VALUES (?, ?, ?, ?, ?, ?)",
               [collection_id, name, etag, found.covered_from, found.covered_until, found.years_from])
    db.conn.executemany("INSERT INTO dav_instances (collection_id, name, start, end, flags) VALUES (?, ?, ?, ?, ?)",
                        [(collection_id, name, *row) for row in found.rows])


@dataclass(frozen=True)
class Unindexed:
    """An event whose stored instances are missing, of other bytes, or of other years."""

    collection_id: int
    name: str
    etag: str
    raw: bytes
    first_start: int | None
    last_end: int | None


def unindexed_events(db: sqlite_utils.Database, years_from: int, limit: int) -> list[Unindexed]:
    """Up to `limit` events whose stored instances are not those of their bytes over the years from
    `years_from`."""
    rows = db.execute("""
        SELECT i.collection_id, i.name, i.etag, i.raw, i.first_start, i.last_end FROM dav_items i
        LEFT JOIN dav_instance_sets s ON s.collection_id = i.collection_id AND s.name = i.name
        WHERE i.component = 'VEVENT' AND (s.name IS NULL OR s.etag != i.etag OR s.years_from != ?)
        LIMIT ?""", [years_from, limit])
    return [Unindexed(*row) for row in rows]


def set_instances_if_unchanged(db: sqlite_utils.Database, event: Unindexed, found: InstanceRows) -> bool:
    """`found` becomes the event's stored instances if its bytes are still those it was computed from."""
    row = db.execute("SELECT etag FROM dav_items WHERE collection_id = ? AND name = ?",
                     [event.collection_id, event.name]).fetchone()
    if row is None or row[0] != event.etag:
        return False  # changed or deleted meanwhile: its PUT wrote its own
    replace_instances(db, event.collection_id, event.name, event.etag, found)
    return True


def stored_instances(db: sqlite_utils.Database, collection_id: int, etags: dict[str, str],
                     starts_before: int | None, ends_after: int | None) -> dict[str, StoredInstances]:
    """For the items named in `etags` whose rows were computed from the bytes with that ETag: their covered
    span and the rows that start before `starts_before` and end at or after `ends_after` (None: any)."""
    found: dict[str, StoredInstances] = {}
    names = list(etags)
    around = "".join(condition for condition, bound in (("AND i.start < ? ", starts_before),
                                                        ("AND i.end >= ? ", ends_after)) if bound is not None)
    bounds = [bound for bound in (starts_before, ends_after) if bound is not None]
    for first in range(0, len(names), 500):  # far below SQLite's bound-parameter limit
        batch = names[first:first + 500]
        rows = db.execute(
            "SELECT s.name, s.etag, s.covered_from, s.covered_until, i.start, i.end, i.flags "
            "FROM dav_instance_sets s LEFT JOIN dav_instances i "
            f"ON i.collection_id = s.collection_id AND i.name = s.name {around}"
            f"WHERE s.collection_id = ? AND s.name IN ({','.join('?' * len(batch))})",
            [*bounds, collection_id, *batch])
        for name, etag, covered_from, covered_until, start, end, flags in rows:
            if etag != etags[name]:
                continue  # computed for other bytes: not to be trusted
            entry = found.setdefault(name, StoredInstances(covered_from, covered_until, []))
            if start is not None:
                entry.rows.append((start, end, flags))
    return found
