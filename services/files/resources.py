"""What lives at a path of a folder, read straight from the journal's entries.

A directory exists when it has an entry or, for trees a sync client committed
file by file, when live entries lie below it (an implied directory). Storage
only: no HTTP.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import sqlite_utils

from services.core.schema import ENTRY_PARENT
from services.core.tree.paths import parent_and_descendants_pattern

# In Resource's field order: a row becomes a Resource without naming its columns.
_COLUMNS = """e.path, e.kind, e.revision_id, e.size, e.mtime_ns, e.chunks, r.created_at AS modified_at,
              (SELECT created_at FROM revisions WHERE entry_id = e.id ORDER BY id LIMIT 1) AS created_at"""


@dataclass(frozen=True)
class Resource:
    path: str  # folder-relative; "" is the folder itself
    kind: str  # 'file' | 'dir'
    revision_id: int | None  # None for the folder itself and implied directories
    size: int
    mtime_ns: int
    chunks_json: str  # the journal's chunk list, parsed only when the content is read (a listing never does)
    modified_at: str | None  # journal timestamps (UTC text), None where there is no entry
    created_at: str | None

    @property
    def is_collection(self) -> bool:
        return self.kind == "dir"

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]

    @property
    def chunks(self) -> tuple[tuple[str, int], ...]:
        """(chunk id, length) in file order."""
        return tuple((cid, length) for cid, length in json.loads(self.chunks_json))

    @property
    def etag(self) -> str | None:
        """Strong, revision-based: any change to the path makes a new revision, hence a new ETag."""
        if self.revision_id is None:
            return None
        return f'"{"d" if self.is_collection else ""}{self.revision_id}"'


def folder_root(created_at: str) -> Resource:
    return Resource("", "dir", None, 0, 0, "[]", None, created_at)


def implied_dir(path: str) -> Resource:
    return Resource(path, "dir", None, 0, 0, "[]", None, None)


def lookup(db: sqlite_utils.Database, folder: int, path: str) -> Resource | None:
    """The live resource at `path` ("" is not asked here), or None."""
    row = db.execute(f"""SELECT {_COLUMNS} FROM entries e JOIN revisions r ON r.id = e.revision_id
                         WHERE e.folder_id = ? AND e.path = ? AND e.deleted = 0""", [folder, path]).fetchone()
    if row is not None:
        return Resource(*row)
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
    return [Resource(*row) for row in cursor]


def children(db: sqlite_utils.Database, folder: int, path: str) -> list[Resource]:
    """The direct members of the directory `path`, implied directories included, by name.

    Reads only the members, never what lies deeper, through the files_entries_parent index: the live
    entries whose parent is `path`, and the names of the subdirectories holding live entries (one
    index seek per subdirectory, skipping its whole subtree), of which those without an entry of
    their own are implied directories."""
    prefix = f"{path}/" if path else ""
    cursor = db.execute(f"""SELECT {_COLUMNS} FROM entries e JOIN revisions r ON r.id = e.revision_id
                            WHERE e.id IN (SELECT id FROM entries WHERE folder_id = ? AND deleted = 0
                                           AND {ENTRY_PARENT} = ?)""", [folder, prefix])
    members = {item.name: item for item in (Resource(*row) for row in cursor)}
    for name in _subdirectory_names(db, folder, prefix):
        if name not in members:
            members[name] = implied_dir(prefix + name)
    return [members[name] for name in sorted(members)]


def _subdirectory_names(db: sqlite_utils.Database, folder: int, prefix: str) -> list[str]:
    """Names of the directories right below `prefix` that hold live entries, by a skip scan of the
    parent index: the first parent below the prefix ('a/x/y/' for prefix 'a/') names x; the next
    seek starts at 'a/x0', the first string after every 'a/x/...', and so on."""
    within = f"AND {ENTRY_PARENT} < :end" if prefix else ""  # the top has no end: every path is below it
    rows = db.execute(f"""
        WITH RECURSIVE below(parent) AS (
            SELECT (SELECT {ENTRY_PARENT} FROM entries WHERE folder_id = :folder AND deleted = 0
                    AND {ENTRY_PARENT} > :prefix {within} ORDER BY {ENTRY_PARENT} LIMIT 1)
            UNION ALL
            SELECT (SELECT {ENTRY_PARENT} FROM entries WHERE folder_id = :folder AND deleted = 0
                    AND {ENTRY_PARENT} >= substr(below.parent, 1, :n + instr(substr(below.parent, :n + 1), '/') - 1)
                                          || '0' {within}
                    ORDER BY {ENTRY_PARENT} LIMIT 1)
            FROM below WHERE below.parent IS NOT NULL)
        SELECT substr(parent, :n + 1, instr(substr(parent, :n + 1), '/') - 1) FROM below
        WHERE parent IS NOT NULL""",
        {"folder": folder, "prefix": prefix, "end": prefix[:-1] + "0", "n": len(prefix)})
    return [name for name, in rows]
