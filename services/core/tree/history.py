"""Reading a folder's journal: the change feed, a path's versions, the trash."""
from __future__ import annotations

import sqlite_utils

from ..errors import BadRequest, NotFound
from .journal import Revision, _dict, _entry, _entry_revision, _revision, _to_revision
from .paths import normalize_path


def versions(db: sqlite_utils.Database, folder: int, path: str) -> list[Revision]:
    """Every kept revision of `path`, newest first (delete markers included). NotFound if never seen."""
    path = normalize_path(path)
    entry = _entry(db, folder, path)
    if entry is None:
        raise NotFound(f"no {path}")
    rows = db.query("SELECT * FROM revisions WHERE entry_id = ? ORDER BY id DESC", [entry["id"]])
    return [_to_revision(r) for r in rows]


def trash(db: sqlite_utils.Database, folder: int) -> list[tuple[Revision, Revision | None]]:
    """Deleted files as (delete marker, last content revision or None if expired), newest deletion first."""
    items = []
    for entry in db.query("""SELECT * FROM entries WHERE folder_id = ? AND deleted = 1 AND kind = 'file'
                             ORDER BY seq DESC""", [folder]):
        marker = _revision(db, entry["revision_id"])
        last = _dict(db.execute("""SELECT * FROM revisions WHERE entry_id = ? AND deleted = 0
                                   ORDER BY id DESC LIMIT 1""", [entry["id"]]))
        items.append((marker, _to_revision(last) if last else None))
    return items


def changes_since(db: sqlite_utils.Database, folder: int, cursor: int,
                  limit: int = 1000) -> tuple[list[Revision], int, bool]:
    """Entries changed after sequence `cursor`, oldest change first, at most `limit`.

    Returns (changes, next_cursor, more): pass next_cursor back to continue; more
    says another page is waiting. BadRequest for a negative cursor or a limit
    outside 1..10000; NotFound for an unknown folder.
    """
    if not isinstance(cursor, int) or cursor < 0:
        raise BadRequest("cursor must be a non-negative integer")
    if not 1 <= limit <= 10_000:
        raise BadRequest("limit must be between 1 and 10000")
    if db.execute("SELECT 1 FROM folders WHERE id = ?", [folder]).fetchone() is None:
        raise NotFound(f"no folder {folder}")
    rows = list(db.query("SELECT * FROM entries WHERE folder_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                         [folder, cursor, limit + 1]))
    more = len(rows) > limit
    changes = [_entry_revision(r) for r in rows[:limit]]
    return changes, (changes[-1].seq if changes else cursor), more
