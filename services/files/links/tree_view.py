"""What a share link shows of a folder's journal: one live entry, or a directory's direct children."""
from __future__ import annotations

import sqlite_utils

from .. import resources
from ..resources import Resource, lookup

MAX_LISTED = 5000  # a public page is not the place for a 100k-file folder


# What a link shows is what WebDAV shows: the same resources, implied directories included.
Item = Resource


def live_entry(db: sqlite_utils.Database, folder_id: int, path: str) -> Item | None:
    """The current file or directory at `path`, or None (never existed, or deleted)."""
    return lookup(db, folder_id, path)


def children(db: sqlite_utils.Database, folder_id: int, path: str) -> list[Item]:
    """What is directly inside `path` ('' is the folder's top), directories first, by name; at most
    MAX_LISTED of them."""
    members = resources.children(db, folder_id, path)[:MAX_LISTED]
    return sorted(members, key=lambda item: (item.kind != "dir", item.name.casefold()))


def taken(db: sqlite_utils.Database, folder_id: int, path: str) -> bool:
    """Whether something live (file or directory) already has this path."""
    return db.execute("SELECT 1 FROM entries WHERE folder_id = ? AND path = ? AND deleted = 0",
                      [folder_id, path]).fetchone() is not None
