"""A folder's journal: entries, every revision of them, and a sequence number per change.

Every function here runs inside the caller's write transaction (`write(db, fn)`
or `Database.write`) and raises domain errors; an error rolls the whole call
back, so a half-done rename or directory delete never becomes visible.

Each change takes the folder's next sequence number; the entry remembers the
sequence of its latest change, so `changes_since(cursor)` is "entries whose
seq > cursor", in seq order (a compacted feed: a client that was away sees each
path once, in its latest state).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable

import sqlite_utils

from ..errors import BadRequest, Conflict, NotFound
from . import stamps
from .chunks import BlobStore, check_chunk_id, is_chunk_id
from .clock import utcnow
from .folders import check_quota
from .holders import held
from .paths import creatable_path, normalize_path, parent_and_descendants_pattern
from .recent_chunks import RecentChunks, StoredSizes

MAX_MISSING_LISTED = 10


@dataclass(frozen=True)
class Revision:
    id: int
    path: str
    seq: int
    kind: str  # 'file' | 'dir'
    deleted: bool  # a delete marker: the path stopped existing at this revision
    size: int
    mtime_ns: int
    executable: bool
    chunks: tuple[tuple[str, int], ...]  # ordered (chunk id, length)
    device: str
    created_at: str | None = None  # None for change-feed items built from entries


class StaleRevision(Conflict):
    """The commit was based on a revision that is no longer current; `current` says which is."""

    def __init__(self, path: str, base: int | None, current: int | None):
        super().__init__(f"{path}: based on revision {base}, but the current revision is {current}")
        self.path, self.base, self.current = path, base, current


class MissingChunks(BadRequest):
    """The commit names chunks the store does not have; upload them and commit again."""

    def __init__(self, missing: Iterable[str]):
        self.missing = sorted(missing)
        listed = ", ".join(self.missing[:MAX_MISSING_LISTED])
        more = len(self.missing) - MAX_MISSING_LISTED
        super().__init__(f"{len(self.missing)} chunk(s) missing: {listed}" + (f" and {more} more" if more > 0 else ""))


def commit_file(db: sqlite_utils.Database, folder: int, path: str, base_revision: int | None,
                chunks: Iterable[tuple[str, int]], size: int, mtime_ns: int, executable: bool,
                device: str, *, store: BlobStore | None = None, quota: int | None = None,
                committer: str | None = None, stored_sizes: StoredSizes | None = None) -> Revision:
    """Make `path` these chunks, if it is still at `base_revision`.

    base_revision is None for a new file (also accepted, like the delete marker's
    id, when the path was deleted). With `store`, each chunk must be stored with
    exactly its declared length (their sum is `size`), and with `committer` (a
    user whose client sent the chunk list) be one that user holds (holders.py):
    one they do not hold counts as missing. Without `committer` the list comes
    from the server itself (bytes it just received, or an entry it copies).
    `stored_sizes`, read from `store` before the transaction (stored_sizes_of), saves
    the one writer a round trip to an object store per commit; a chunk missing from it
    counts as not stored (one it took from recent_chunks is confirmed in the transaction).
    Raises BadRequest (bad path, a name that paths.name_problem
    refuses, bad chunk list, a length other than the stored
    chunk's), MissingChunks (a BadRequest), StaleRevision (a Conflict with
    `.current`), Conflict (path or a parent is a directory/file in the way),
    QuotaExceeded (owner over `quota` bytes), NotFound (no folder).
    """
    path = creatable_path(path)
    chunk_list = _check_chunks(chunks, size)
    entry = _entry(db, folder, path)
    _check_base(entry, path, base_revision)
    if entry and not entry["deleted"] and entry["kind"] == "dir":
        raise Conflict(f"{path} is a directory")
    _check_parents(db, folder, path)
    if store is not None:
        _check_stored(db, store, chunk_list, committer, stored_sizes)
    old_size = entry["size"] if entry and not entry["deleted"] else 0
    check_quota(db, folder, old_size, size, quota)
    return _record(db, folder, path, entry, "file", False, size, mtime_ns, executable, chunk_list, device)


def mkdir(db: sqlite_utils.Database, folder: int, path: str, device: str) -> Revision:
    """Create a directory entry; an existing directory is returned as is. Conflict if a file is there."""
    path = creatable_path(path)
    entry = _entry(db, folder, path)
    if entry and not entry["deleted"]:
        if entry["kind"] == "dir":
            return _revision(db, entry["revision_id"])
        raise Conflict(f"{path} is a file")
    _check_parents(db, folder, path)
    return _record(db, folder, path, entry, "dir", False, 0, 0, False, [], device)


def delete(db: sqlite_utils.Database, folder: int, path: str, base_revision: int | None,
           device: str, *, recursive: bool = True) -> Revision:
    """Delete `path` (and, for a directory, everything below it), keeping old revisions as trash.

    Returns the delete marker. NotFound if the path does not exist, StaleRevision
    if it changed since `base_revision`, Conflict if `recursive` is false and the
    path is a directory with live entries below it (a client removing a directory
    it believes empty must not take files it has not seen yet with it).
    """
    path = normalize_path(path)
    entry = _entry(db, folder, path)
    if entry is None or entry["deleted"]:
        raise NotFound(f"no {path}")
    _check_base(entry, path, base_revision)
    if entry["kind"] == "dir":
        children = _descendants(db, folder, path)
        if children and not recursive:
            raise Conflict(f"{path} is not empty")
        for child in children:
            _record(db, folder, child["path"], child, child["kind"], True, 0, 0, False, [], device)
    return _record(db, folder, path, entry, entry["kind"], True, 0, 0, False, [], device)


def rename(db: sqlite_utils.Database, folder: int, src: str, dst: str, base_revision: int | None,
           device: str) -> Revision:
    """Move `src` to `dst` without re-uploading: the chunk lists move with the entries.

    Returns dst's new revision. NotFound (no src), StaleRevision (src changed),
    Conflict (something lives at dst), BadRequest (same path, or dst inside src).
    """
    src, dst = normalize_path(src), creatable_path(dst)
    if src == dst or dst.startswith(src + "/"):
        raise BadRequest(f"cannot move {src} to {dst}")
    entry = _entry(db, folder, src)
    if entry is None or entry["deleted"]:
        raise NotFound(f"no {src}")
    _check_base(entry, src, base_revision)
    _check_parents(db, folder, dst)
    moves = [(entry, dst)]
    if entry["kind"] == "dir":
        moves += [(child, dst + child["path"][len(src):]) for child in _descendants(db, folder, src)]
    targets = {}
    for old, new_path in moves:
        target = _entry(db, folder, new_path)
        if target and not target["deleted"]:
            raise Conflict(f"{new_path} already exists")
        targets[new_path] = target
    moved = None
    for old, new_path in moves:
        revision = _record(db, folder, new_path, targets[new_path], old["kind"], False, old["size"],
                           old["mtime_ns"], bool(old["executable"]), _chunks(old["chunks"]), device,
                           file_id=old["file_id"])
        moved = moved or revision
    for old, _ in reversed(moves):
        _record(db, folder, old["path"], old, old["kind"], True, 0, 0, False, [], device)
    if entry["kind"] == "dir":
        stamps.carry_directory_ids(db, folder, src, dst)
    return moved


def restore(db: sqlite_utils.Database, folder: int, path: str, revision_id: int, device: str,
            *, quota: int | None = None, file_id: int | None = None) -> Revision:
    """Make an old revision's content current again, as a new revision (nothing is overwritten).

    A deleted file comes back with the file id it had last, or with `file_id` (the one it had when the
    restored content was deleted, if another file has used the path since), unless that id is taken.

    NotFound (no such path, or the revision is not one of its versions),
    BadRequest (the revision is a delete marker or a directory), Conflict (a
    directory now lives at the path), QuotaExceeded.
    """
    path = normalize_path(path)
    entry = _entry(db, folder, path)
    if entry is None:
        raise NotFound(f"no {path}")
    row = db.execute("SELECT * FROM revisions WHERE id = ? AND entry_id = ?", [revision_id, entry["id"]])
    old = _dict(row)
    if old is None:
        raise NotFound(f"{path} has no revision {revision_id}")
    if old["deleted"] or old["kind"] != "file":
        raise BadRequest(f"revision {revision_id} of {path} has no content to restore")
    if not entry["deleted"] and entry["kind"] == "dir":
        raise Conflict(f"{path} is a directory")
    _check_parents(db, folder, path)
    check_quota(db, folder, 0 if entry["deleted"] else entry["size"], old["size"], quota)
    return _record(db, folder, path, entry, "file", False, old["size"], old["mtime_ns"],
                   bool(old["executable"]), _chunks(old["chunks"]), device,
                   file_id=_restored_id(db, entry, file_id))


def set_mtime(db: sqlite_utils.Database, folder: int, path: str, base_revision: int | None, mtime_ns: int,
              device: str) -> Revision:
    """Give `path` (a file or a directory entry) a new modification time, as a new revision with the same
    content: every sync client then sets the time on its copy, and downloads nothing. An unchanged time
    makes no revision. NotFound (no such path), StaleRevision (it changed since `base_revision`)."""
    path = normalize_path(path)
    entry = _entry(db, folder, path)
    if entry is None or entry["deleted"]:
        raise NotFound(f"no {path}")
    _check_base(entry, path, base_revision)
    if entry["mtime_ns"] == mtime_ns:
        return _revision(db, entry["revision_id"])
    return _record(db, folder, path, entry, entry["kind"], False, entry["size"], mtime_ns,
                   bool(entry["executable"]), _chunks(entry["chunks"]), device)


# --- internals -------------------------------------------------------------

def _record(db, folder: int, path: str, entry: dict | None, kind: str, deleted: bool, size: int,
            mtime_ns: int, executable: bool, chunk_list: list, device: str, *,
            file_id: int | None = None) -> Revision:
    """Write one revision and make it the entry's current state. A path that comes (back) into
    existence gets a new file id unless `file_id` carries one (a moved entry keeps its own)."""
    seq = _next_seq(db, folder)
    chunks_json = json.dumps(chunk_list, separators=(",", ":"))
    if entry is None:
        entry_id = db.execute("INSERT INTO entries (folder_id, path, kind, seq) VALUES (?, ?, ?, ?)",
                              [folder, path, kind, seq]).lastrowid
    else:
        entry_id = entry["id"]
    if file_id is None:
        file_id = entry["file_id"] if entry and not entry["deleted"] else stamps.allocate_file_id(db)
    revision_id = db.execute("""
        INSERT INTO revisions (entry_id, seq, path, kind, deleted, size, mtime_ns, executable,
                               chunks, device, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [entry_id, seq, path, kind, int(deleted), size, mtime_ns, int(executable), chunks_json,
         device, utcnow()]).lastrowid
    db.conn.executemany("INSERT OR IGNORE INTO revision_chunks (revision_id, chunk_id) VALUES (?, ?)",
                        [(revision_id, cid) for cid, _ in chunk_list])
    db.execute("""UPDATE entries SET kind = ?, revision_id = ?, deleted = ?, size = ?, mtime_ns = ?,
                  executable = ?, chunks = ?, device = ?, seq = ?, file_id = ? WHERE id = ?""",
               [kind, revision_id, int(deleted), size, mtime_ns, int(executable), chunks_json, device,
                seq, file_id, entry_id])
    stamps.touch(db, folder, path, kind == "dir", seq, _live_bytes(kind, deleted, size) - (
        _live_bytes(entry["kind"], entry["deleted"], entry["size"]) if entry else 0))
    return _revision(db, revision_id)


def _restored_id(db, entry: dict, wanted: int | None) -> int | None:
    """The file id a file brought back from the trash takes: the one it had (`wanted`, else the entry's
    last), as Nextcloud keeps it (the apps match files by oc:fileid, so a restored photo is the same photo
    to them, not a new one). None (a new id) when the file is live, as _record keeps a live file's id
    anyway, and when another live file holds the id now: a file renamed away takes its id along and leaves
    a delete marker at its old path, and an id names one thing only. (Directories are named by the ids of
    their stamps, never by an entry's, so only files can hold it: one lookup in entries_file_id.)"""
    wanted = entry["file_id"] if wanted is None else wanted
    if not entry["deleted"] or wanted is None:
        return None
    taken = db.execute("SELECT 1 FROM entries WHERE file_id = ? AND deleted = 0 LIMIT 1", [wanted]).fetchone()
    return None if taken else wanted


def _live_bytes(kind: str, deleted, size: int) -> int:
    """What an entry adds to the sizes of the directories above it."""
    return size if kind == "file" and not deleted else 0


def _next_seq(db, folder: int) -> int:
    row = db.execute("UPDATE folders SET seq = seq + 1 WHERE id = ? RETURNING seq", [folder]).fetchone()
    if row is None:
        raise NotFound(f"no folder {folder}")
    return row[0]


def _check_base(entry: dict | None, path: str, base: int | None) -> None:
    current = entry["revision_id"] if entry else None
    if base == current:
        return
    if base is None and entry is not None and entry["deleted"]:
        return  # recreating a deleted path loses nothing
    raise StaleRevision(path, base, current)


def _check_parents(db, folder: int, path: str) -> None:
    parts = path.split("/")
    for i in range(1, len(parts)):
        parent = _entry(db, folder, "/".join(parts[:i]))
        if parent and not parent["deleted"] and parent["kind"] == "file":
            raise Conflict(f"{parent['path']} is a file, not a directory")


def _check_chunks(chunks: Iterable, size: int) -> list[list]:
    if not isinstance(size, int) or size < 0:
        raise BadRequest("size must be a non-negative integer")
    result = []
    for item in chunks:
        try:
            cid, length = item
        except (TypeError, ValueError):
            raise BadRequest("each chunk is a (chunk id, length) pair") from None
        check_chunk_id(cid)
        if not isinstance(length, int) or length <= 0:
            raise BadRequest(f"chunk {cid} has an invalid length")
        result.append([cid, length])
    total = sum(length for _, length in result)
    if total != size:
        raise BadRequest(f"chunk lengths add up to {total}, not the declared size {size}")
    return result


def stored_sizes_of(store: BlobStore, chunk_lists: Iterable[Iterable], recent: RecentChunks | None = None,
                    deletions: int | None = None) -> StoredSizes:
    """The stored size of every well-formed chunk id the lists name that the store has, in one call
    (an object store asks for them in parallel): commit_file's `stored_sizes`. With `recent` (and the
    chunk deletion count read just before), chunks this process put lately are not asked about."""
    ids = {pair[0] for chunks in chunk_lists for pair in chunks
           if isinstance(pair, (list, tuple)) and pair and isinstance(pair[0], str) and is_chunk_id(pair[0])}
    if recent is not None and deletions is not None:
        return recent.stored_sizes(store, ids, deletions)
    return StoredSizes(store.sizes(ids) if ids else {})


def _check_stored(db, store: BlobStore, chunk_list: list[list], committer: str | None,
                  stored_sizes: StoredSizes | None) -> None:
    """MissingChunks for chunks the store lacks (or the committer does not hold); BadRequest for a
    declared length other than the stored chunk's: quotas, Content-Length and downloads rely on it."""
    ids = {cid for cid, _ in chunk_list}
    usable = ids if committer is None else held(db, committer, ids)
    if stored_sizes is None:
        stored = store.sizes(usable)
    else:
        stored = stored_sizes.confirmed(db, store, usable)
    missing = ids - stored.keys()
    if missing:
        raise MissingChunks(missing)
    for cid, length in chunk_list:
        if stored[cid] != length:
            raise BadRequest(f"chunk {cid} is {stored[cid]} bytes, not the {length} declared")


def _descendants(db, folder: int, path: str) -> list[dict]:
    return list(db.query("""SELECT * FROM entries WHERE folder_id = ? AND deleted = 0 AND path GLOB ?
                            ORDER BY path""", [folder, parent_and_descendants_pattern(path)]))


def _entry(db, folder: int, path: str) -> dict | None:
    return _dict(db.execute("SELECT * FROM entries WHERE folder_id = ? AND path = ?", [folder, path]))


def _revision(db, revision_id: int) -> Revision:
    return _to_revision(_dict(db.execute("SELECT * FROM revisions WHERE id = ?", [revision_id])))


def _dict(cursor) -> dict | None:
    row = cursor.fetchone()
    return None if row is None else dict(zip([c[0] for c in cursor.description], row))


def _chunks(text: str) -> list[list]:
    return json.loads(text)


def _to_revision(row: dict) -> Revision:
    return Revision(row["id"], row["path"], row["seq"], row["kind"], bool(row["deleted"]), row["size"],
                    row["mtime_ns"], bool(row["executable"]),
                    tuple((cid, n) for cid, n in json.loads(row["chunks"])), row["device"],
                    row["created_at"])


def _entry_revision(row: dict) -> Revision:
    return Revision(row["revision_id"], row["path"], row["seq"], row["kind"], bool(row["deleted"]),
                    row["size"], row["mtime_ns"], bool(row["executable"]),
                    tuple((cid, n) for cid, n in json.loads(row["chunks"])), row["device"])
