"""What lives at a path of a folder, read straight from the journal's entries.

A directory exists when it has an entry or, for trees a sync client committed
file by file, when live entries lie below it (an implied directory). Storage
only: no HTTP.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import sqlite_utils

from services.core.schema import ENTRY_PARENT
from services.core.tree import Folder, content_digest, list_folders
from services.core.tree.paths import parent_and_descendants_pattern
from services.core.tree.stamps import folder_stamp, root_file_id, root_tag, sizes_of_folders

# In Resource's field order: a row becomes a Resource without naming its columns. A directory's ETag
# and size come from its stamp (services/core/tree/stamps.py), so they follow every change below it.
_COLUMNS = """e.path, e.kind, e.revision_id, e.size, e.mtime_ns, e.chunks, r.created_at AS modified_at,
              (SELECT created_at FROM revisions WHERE entry_id = e.id ORDER BY id LIMIT 1) AS created_at,
              'd' || s.folder_id || '.' || s.seq AS tree_tag, COALESCE(s.size, e.size) AS tree_size,
              COALESCE(s.file_id, e.file_id) AS file_id"""
_ENTRIES = """entries e JOIN revisions r ON r.id = e.revision_id
              LEFT JOIN tree_dirs s ON e.kind = 'dir' AND s.folder_id = e.folder_id AND s.path = e.path"""


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
    tree_tag: str | None = None  # a directory's: changes with anything below it
    tree_size: int = 0  # a file's size; a directory's, the bytes of the current files below it
    file_id: int | None = None  # stable across renames and moves within the folder (stamps.py)

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
        """Strong. A file's names its content (content_etag); a directory's is its stamp: any change
        below it makes a new one."""
        if self.tree_tag is not None:
            return f'"{self.tree_tag}"'
        if self.revision_id is None:
            return None
        return f'"d{self.revision_id}"' if self.is_collection else content_etag(self.chunks)


def content_etag(chunks: Iterable[tuple[str, int]]) -> str:
    """A file's ETag: a digest of its chunk list, whose ids name their bytes. Any change to the content
    changes it; a rename or move keeps it, as the Nextcloud clients assume (they keep the ETag they had
    across their own MOVE, and download again a file whose ETag differs)."""
    return f'"{content_digest(chunks)[:32]}"'


def folder_root(db: sqlite_utils.Database, folder: Folder) -> Resource:
    """The folder itself, as the top directory of its tree."""
    return implied_dir(db, folder.id, "", folder.created_at)


def implied_dir(db: sqlite_utils.Database, folder: int, path: str, created_at: str | None = None) -> Resource:
    """A directory without an entry of its own (the folder itself, or one a sync client made by committing
    files below it): its stamp gives its ETag, size and file id."""
    stamp = folder_stamp(db, folder, path)
    if stamp is None:
        return Resource(path, "dir", None, 0, 0, "[]", None, created_at)
    seq, size, file_id = stamp
    return Resource(path, "dir", None, 0, 0, "[]", None, created_at, f"d{folder}.{seq}", size, file_id)


def user_root(db: sqlite_utils.Database, user: str) -> Resource:
    """The top of a user's tree: their folders and those shared with them."""
    folders = list_folders(db, user)
    return Resource("", "dir", None, 0, 0, "[]", None, None, root_tag(folders),
                    sizes_of_folders(db, (f.id for f in folders)), root_file_id(db, user))


def lookup(db: sqlite_utils.Database, folder: int, path: str) -> Resource | None:
    """The live resource at `path` ("" is not asked here), or None."""
    row = db.execute(f"""SELECT {_COLUMNS} FROM {_ENTRIES}
                         WHERE e.folder_id = ? AND e.path = ? AND e.deleted = 0""", [folder, path]).fetchone()
    if row is not None:
        return Resource(*row)
    below = db.execute("SELECT 1 FROM entries WHERE folder_id = ? AND deleted = 0 AND path GLOB ? LIMIT 1",
                       [folder, parent_and_descendants_pattern(path)]).fetchone()
    return implied_dir(db, folder, path) if below else None


def file_by_id(db: sqlite_utils.Database, file_id: int) -> tuple[int, Resource] | None:
    """(folder id, the live file) whose file id (oc:fileid) is `file_id`, or None. Who may read it is
    the caller's to check."""
    row = db.execute(f"""SELECT e.folder_id, {_COLUMNS} FROM {_ENTRIES}
                         WHERE e.file_id = ? AND e.deleted = 0 AND e.kind = 'file'""", [file_id]).fetchone()
    return None if row is None else (row[0], Resource(*row[1:]))


def descendants(db: sqlite_utils.Database, folder: int, path: str) -> list[Resource]:
    """Every live entry below `path` ("" for the whole folder), in path order."""
    if path:
        where, args = "AND e.path GLOB ?", [parent_and_descendants_pattern(path)]
    else:
        where, args = "", []
    cursor = db.execute(f"""SELECT {_COLUMNS} FROM {_ENTRIES}
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
    cursor = db.execute(f"""SELECT {_COLUMNS} FROM {_ENTRIES}
                            WHERE e.id IN (SELECT id FROM entries WHERE folder_id = ? AND deleted = 0
                                           AND {ENTRY_PARENT} = ?)""", [folder, prefix])
    members = {item.name: item for item in (Resource(*row) for row in cursor)}
    for name in _subdirectory_names(db, folder, prefix):
        if name not in members:
            members[name] = implied_dir(db, folder, prefix + name)
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
