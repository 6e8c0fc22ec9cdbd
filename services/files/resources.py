"""What lives at a path of a folder, read straight from the journal's entries.

A directory exists when it has an entry or, for trees a sync client committed
file by file, when live entries lie below it (an implied directory). Storage
only: no HTTP.
"""
from __future__ import annotations

import json
import mimetypes
from dataclasses import dataclass

import sqlite_utils

from services.core.tree.paths import parent_and_descendants_pattern

_COLUMNS = """e.path, e.kind, e.revision_id, e.size, e.mtime_ns, e.chunks, e.seq,
              r.created_at AS modified_at,
              (SELECT MIN(created_at) FROM revisions WHERE entry_id = e.id) AS created_at"""


@dataclass(frozen=True)
class Resource:
    path: str  # folder-relative; "" is the folder itself
    kind: str  # 'file' | 'dir'
    revision_id: int | None  # None for the folder itself and implied directories
    size: int
    mtime_ns: int
    chunks: tuple[tuple[str, int], ...]
    modified_at: str | None  # journal timestamps (UTC text), None where there is no entry
    created_at: str | None

    @property
    def is_collection(self) -> bool:
        return self.kind == "dir"

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]

    @property
    def etag(self) -> str | None:
        """Strong, revision-based: any change to the path makes a new revision, hence a new ETag."""
        if self.revision_id is None:
            return None
        return f'"{"d" if self.is_collection else ""}{self.revision_id}"'


def _resource(row: dict) -> Resource:
    return Resource(row["path"], row["kind"], row["revision_id"], row["size"], row["mtime_ns"],
                    tuple((cid, n) for cid, n in json.loads(row["chunks"])), row["modified_at"],
                    row["created_at"])


def folder_root(created_at: str) -> Resource:
    return Resource("", "dir", None, 0, 0, (), None, created_at)


def implied_dir(path: str) -> Resource:
    return Resource(path, "dir", None, 0, 0, (), None, None)


def lookup(db: sqlite_utils.Database, folder: int, path: str) -> Resource | None:
    """The live resource at `path` ("" is not asked here), or None."""
    cursor = db.execute(f"""SELECT {_COLUMNS} FROM entries e JOIN revisions r ON r.id = e.revision_id
                            WHERE e.folder_id = ? AND e.path = ? AND e.deleted = 0""", [folder, path])
    row = cursor.fetchone()
    if row is not None:
        return _resource(dict(zip([c[0] for c in cursor.description], row)))
    below = db.execute("SELECT 1 FROM entries WHERE folder_id = ? AND deleted = 0 AND path GLOB ? LIMIT 1",
                       [folder, parent_and_descendants_pattern(path)]).fetchone()
    return implied_dir(path) if below else None


def descendants(db: sqlite_utils.Database, folder: int, path: str) -> list[Resource]:
    """Every live entry below `path` ("" for the whole folder), in path order."""
    if path:
        where, args = "AND e.path GLOB ?", [parent_and_descendants_pattern(path)]
    else:
        where, args = "", []
    cursor = db.execute(f"""SELECT {_COLUMNS} FROM entries e JOIN revisions r ON r.id = e.revision_id
                            WHERE e.folder_id = ? AND e.deleted = 0 {where} ORDER BY e.path""",
                        [folder, *args])
    columns = [c[0] for c in cursor.description]
    return [_resource(dict(zip(columns, row))) for row in cursor]


def children(db: sqlite_utils.Database, folder: int, path: str) -> list[Resource]:
    """The direct members of the directory `path`, implied directories included, by name."""
    prefix = f"{path}/" if path else ""
    members: dict[str, Resource] = {}
    for item in descendants(db, folder, path):
        rest = item.path[len(prefix):]
        name, _, deeper = rest.partition("/")
        if not deeper:
            members[name] = item
        elif name not in members:
            members[name] = implied_dir(prefix + name)
    return [members[name] for name in sorted(members)]


def content_type(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"
