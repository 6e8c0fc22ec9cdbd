"""What a share link shows of a folder's journal: one live entry, or a directory's direct children."""
from __future__ import annotations

import json
from dataclasses import dataclass

import sqlite_utils

from services.core.tree.paths import parent_and_descendants_pattern

MAX_LISTED = 5000  # a public page is not the place for a 100k-file folder


@dataclass(frozen=True)
class Item:
    path: str  # folder-relative
    kind: str  # 'file' | 'dir'
    size: int
    revision_id: int
    mtime_ns: int
    chunks: tuple[tuple[str, int], ...]

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def _item(row: dict) -> Item:
    return Item(row["path"], row["kind"], row["size"], row["revision_id"], row["mtime_ns"],
                tuple((cid, n) for cid, n in json.loads(row["chunks"])))


def live_entry(db: sqlite_utils.Database, folder_id: int, path: str) -> Item | None:
    """The current file or directory at `path`, or None (never existed, or deleted)."""
    row = next(iter(db.query("SELECT * FROM entries WHERE folder_id = ? AND path = ? AND deleted = 0",
                             [folder_id, path])), None)
    return _item(row) if row else None


def children(db: sqlite_utils.Database, folder_id: int, path: str) -> list[Item]:
    """The live entries directly inside `path` ('' is the folder's top), directories first, by name."""
    if path:
        rows = db.query("""SELECT * FROM entries WHERE folder_id = ? AND deleted = 0 AND path GLOB ?
                           AND instr(substr(path, ?), '/') = 0 LIMIT ?""",
                        [folder_id, parent_and_descendants_pattern(path), len(path) + 2, MAX_LISTED])
    else:
        rows = db.query("""SELECT * FROM entries WHERE folder_id = ? AND deleted = 0 AND instr(path, '/') = 0
                           LIMIT ?""", [folder_id, MAX_LISTED])
    return sorted((_item(row) for row in rows), key=lambda item: (item.kind != "dir", item.name.casefold()))


def taken(db: sqlite_utils.Database, folder_id: int, path: str) -> bool:
    """Whether something live (file or directory) already has this path."""
    return db.execute("SELECT 1 FROM entries WHERE folder_id = ? AND path = ? AND deleted = 0",
                      [folder_id, path]).fetchone() is not None
