"""The stored instances of events (services/dav/instancerows.py): replaced with the item, read by queries.

A set of rows belongs to the bytes it was computed from: it carries their
ETag, and a reader trusts it only while the item still has that ETag. Rows
go with their item (foreign keys: deleted with it, renamed by a MOVE with it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import sqlite_utils

Row = tuple[int, int, int]  # start, end, flags


@dataclass(frozen=True)
class StoredInstances:
    covered_from: int | None
    covered_until: int | None
    rows: list[Row]  # those asked for: around the range of the query


def replace_instances(db: sqlite_utils.Database, collection_id: int, name: str, etag: str,
                      covered: tuple[int | None, int | None] | None, rows: Iterable[Row] = ()) -> None:
    """The item's rows become `rows`, covering `covered` (None: the item has no rows)."""
    db.execute("DELETE FROM dav_instance_sets WHERE collection_id = ? AND name = ?", [collection_id, name])
    if covered is None:
        return
    db.execute("INSERT INTO dav_instance_sets (collection_id, name, etag, covered_from, covered_until) "
               "VALUES (?, ?, ?, ?, ?)", [collection_id, name, etag, *covered])
    db.conn.executemany("INSERT INTO dav_instances (collection_id, name, start, end, flags) VALUES (?, ?, ?, ?, ?)",
                   [(collection_id, name, *row) for row in rows])


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
