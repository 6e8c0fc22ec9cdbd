"""What a directory knows about everything below it, kept current by every journal change: a change
stamp (the folder sequence number of the latest change below it, for ETags that change when anything
below changes), the bytes of the current files below it (a folder's size), and a file id.

A file id is a number that names a file or directory for as long as it exists, whatever it is renamed
to: Nextcloud-protocol clients (oc:fileid) recognise a rename by it. Files keep theirs in their entry;
directories, implied ones included, in their stamp row; the user's root in tree_roots. Ids come from one
counter and never name anything else, so an id a device remembers can never name something new (a
file restored from the trash takes its own back: journal._restored_id).

journal._record calls `touch` for each change: one row per ancestor of the changed path (the folder
itself, '', included), in the same transaction. A write costs O(depth) indexed updates, never a scan of
siblings or of the subtree, and reading a directory's stamp or size is one primary-key lookup.
"""
from __future__ import annotations

import hashlib
import secrets
import string
from typing import Iterable

import sqlite_utils

from .paths import parent_and_descendants_pattern

INSTANCE_ALPHABET = string.ascii_lowercase + string.digits


def new_instance_id() -> str:
    """'oc' and ten lowercase letters or digits: the shape Nextcloud gives an installation's id."""
    return "oc" + "".join(secrets.choice(INSTANCE_ALPHABET) for _ in range(10))


def instance_id(db: sqlite_utils.Database) -> str:
    """This installation's id, made once by the schema migration and never changed."""
    return db.execute("SELECT value FROM tree_meta WHERE name = 'instance_id'").fetchone()[0]


def dav_file_id(file_id: int, instance: str) -> str:
    """oc:id: the file id zero-padded to eight digits, then the installation's id."""
    return f"{file_id:08d}{instance}"


def dav_id_of(db: sqlite_utils.Database, folder: int, path: str) -> str | None:
    """oc:id of what lives at `path` ('' the folder itself), as OC-FileId headers carry it; None if nothing."""
    row = db.execute("""SELECT file_id FROM entries WHERE folder_id = ? AND path = ? AND deleted = 0 AND kind = 'file'
                        UNION ALL SELECT file_id FROM tree_dirs WHERE folder_id = ? AND path = ?""",
                     [folder, path, folder, path]).fetchone()
    return None if row is None else dav_file_id(row[0], instance_id(db))


def allocate_file_id(db: sqlite_utils.Database) -> int:
    return db.execute("UPDATE tree_meta SET value = value + 1 WHERE name = 'last_file_id' RETURNING value"
                      ).fetchone()[0]


def ancestors(path: str) -> list[str]:
    """The directories holding `path`, the folder itself ('') first: 'a/b/c' -> ['', 'a', 'a/b']."""
    parts = path.split("/")
    return [""] + ["/".join(parts[:i]) for i in range(1, len(parts))]


def touch(db: sqlite_utils.Database, folder: int, path: str, is_dir: bool, seq: int, size_delta: int) -> None:
    """Record change `seq` at `path` in the stamps of its ancestors (and its own, for a directory), and
    add `size_delta` bytes to their sizes. Directories met for the first time get a file id."""
    dirs = ancestors(path) + ([path] if is_dir else [])
    marks = ", ".join("?" * len(dirs))
    known = {p for p, in db.execute(f"SELECT path FROM tree_dirs WHERE folder_id = ? AND path IN ({marks})",
                                    [folder, *dirs])}
    db.execute(f"UPDATE tree_dirs SET seq = ?, size = size + ? WHERE folder_id = ? AND path IN ({marks})",
               [seq, size_delta, folder, *dirs])
    db.conn.executemany("INSERT INTO tree_dirs (folder_id, path, seq, size, file_id) VALUES (?, ?, ?, ?, ?)",
                        [(folder, p, seq, size_delta, allocate_file_id(db)) for p in dirs if p not in known])


def carry_directory_ids(db: sqlite_utils.Database, folder: int, src: str, dst: str) -> None:
    """After a directory moved from `src` to `dst`: its directories keep their file ids at the new
    paths, and the old paths get new ones (an id names one thing only)."""
    rows = db.execute("SELECT path, file_id FROM tree_dirs WHERE folder_id = ? AND (path = ? OR path GLOB ?)",
                      [folder, src, parent_and_descendants_pattern(src)]).fetchall()
    for path, file_id in rows:
        db.execute("UPDATE tree_dirs SET file_id = ? WHERE folder_id = ? AND path = ?",
                   [file_id, folder, dst + path[len(src):]])
        db.execute("UPDATE tree_dirs SET file_id = ? WHERE folder_id = ? AND path = ?",
                   [allocate_file_id(db), folder, path])


def start_folder(db: sqlite_utils.Database, folder: int, owner: str) -> None:
    """A new folder's own stamp (empty, with its file id), and its owner's root id if they had none."""
    db.execute("INSERT INTO tree_dirs (folder_id, path, seq, size, file_id) VALUES (?, '', 0, 0, ?)",
               [folder, allocate_file_id(db)])
    ensure_root(db, owner)


def ensure_root(db: sqlite_utils.Database, user: str) -> None:
    """Give the user's root (the tree of their folders and those shared with them) a file id."""
    if db.execute("SELECT 1 FROM tree_roots WHERE user = ?", [user]).fetchone() is None:
        db.execute("INSERT INTO tree_roots (user, file_id) VALUES (?, ?)", [user, allocate_file_id(db)])


def root_file_id(db: sqlite_utils.Database, user: str) -> int | None:
    row = db.execute("SELECT file_id FROM tree_roots WHERE user = ?", [user]).fetchone()
    return row[0] if row else None


def root_tag(folders: Iterable) -> str:
    """The ETag text of a user's root: it changes when any folder they see changes (its sequence number),
    appears, goes, is renamed, or changes access; read from the folder list, so a write costs nothing
    more for it."""
    digest = hashlib.sha256()
    for f in sorted(folders, key=lambda f: f.id):
        digest.update(f"{f.id}\x00{f.name}\x00{f.owner}\x00{f.access}\x00{f.seq}\x01".encode())
    return "r" + digest.hexdigest()[:24]


def folder_stamp(db: sqlite_utils.Database, folder: int, path: str) -> tuple[int, int, int] | None:
    """(seq, size, file id) of a directory ('' the folder itself), None if nothing was ever below it."""
    return db.execute("SELECT seq, size, file_id FROM tree_dirs WHERE folder_id = ? AND path = ?",
                      [folder, path]).fetchone()


def sizes_of_folders(db: sqlite_utils.Database, folders: Iterable[int]) -> int:
    ids = list(folders)
    if not ids:
        return 0
    return db.execute(f"SELECT COALESCE(SUM(size), 0) FROM tree_dirs WHERE path = '' AND folder_id IN "
                      f"({', '.join('?' * len(ids))})", ids).fetchone()[0]
