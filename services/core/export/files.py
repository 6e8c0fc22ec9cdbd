"""A user's folders as plain files: `files/<folder>/<path>`, assembled from their chunks.

Only current entries are exported (not kept versions, not the trash): the
export is what the user sees. Each chunk is checked against its id while it is
copied, so a damaged blob stops the export with its name instead of turning up
later as a silently broken file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Iterator

import sqlite_utils

from ..errors import Conflict, NotFound
from ..tree import BlobStore, chunk_id
from .target import Target, disk_name


@dataclass
class FileCounts:
    folders: int = 0
    files: int = 0
    directories: int = 0
    bytes: int = 0


def total_file_bytes(db: sqlite_utils.Database, owner: str) -> int:
    """Bytes of the owner's current files: the length of the progress bar."""
    return db.execute("""SELECT COALESCE(SUM(e.size), 0) FROM entries e JOIN folders f ON f.id = e.folder_id
                         WHERE f.owner = ? AND f.deleted_at IS NULL AND e.deleted = 0 AND e.kind = 'file'""",
                      [owner]).fetchone()[0]


def export_files(db: sqlite_utils.Database, store: BlobStore, owner: str, target: Target,
                 advance: Callable[[int], None]) -> FileCounts:
    """Write every current file and directory of every folder `owner` owns (not those in the trash); `advance(n)` per n bytes."""
    counts = FileCounts()
    for folder in list(db.query("SELECT id, name FROM folders WHERE owner = ? AND deleted_at IS NULL ORDER BY name", [owner])):
        counts.folders += 1
        base = f"files/{disk_name(folder['name'])}"
        target.directory(base)
        entries = db.query("""SELECT path, kind, size, mtime_ns, executable, chunks FROM entries
                              WHERE folder_id = ? AND deleted = 0 ORDER BY path""", [folder["id"]])
        for entry in entries:
            relative = f"{base}/{entry['path']}"
            if entry["kind"] == "dir":
                target.directory(relative)
                counts.directories += 1
                continue
            chunks = json.loads(entry["chunks"])
            where = f"{folder['name']}/{entry['path']}"
            target.write(relative, _content(store, chunks, where, advance),
                         mtime_ns=entry["mtime_ns"] or None, executable=bool(entry["executable"]))
            counts.files += 1
            counts.bytes += entry["size"]
    return counts


def _content(store: BlobStore, chunks: list, where: str, advance: Callable[[int], None]) -> Iterator[bytes]:
    for cid, length in chunks:
        try:
            data = store.get(cid)
        except NotFound:
            raise NotFound(f"{where}: chunk {cid} is missing from the blob store "
                           "(`hearth sync check` lists what is damaged)") from None
        if len(data) != length or chunk_id(data) != cid:
            raise Conflict(f"{where}: chunk {cid} is damaged in the blob store "
                           "(`hearth sync check --verify` lists what is damaged)")
        advance(length)
        yield data
