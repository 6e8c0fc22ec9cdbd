"""Who may name a chunk in a commit: whoever sent its bytes, or can already read it in a folder.

Chunks are stored once for everyone (dedup), and a commit names them by id. Were
an id enough, anyone who learnt one (from a log line, or by chunking a file they
guess someone has) could commit it into their own folder and download content
that was never shared with them. So a user holds a chunk when they uploaded its
bytes themselves (recorded in chunk_uploads by every path that receives bytes:
the sync chunk uploads, WebDAV PUT) or when a revision of a folder they own or
share references it (they can download it there already). Commits and the
"which chunks do you have" question both see only what the user holds: to
anyone else a stored chunk is simply missing, and uploading the bytes makes it
theirs (stored once all the same).
"""
from __future__ import annotations

from typing import Iterable

import sqlite_utils

QUERY_IDS = 500  # ids per IN (...) list, well under SQLite's bound-parameter limit


def record_uploads(db: sqlite_utils.Database, uploader: str, ids: Iterable[str]) -> None:
    """`uploader` sent the bytes of these chunks (already verified against their ids)."""
    db.conn.executemany("INSERT OR IGNORE INTO chunk_uploads (uploader, chunk_id) VALUES (?, ?)",
                        [(uploader, cid) for cid in dict.fromkeys(ids)])


def held(db: sqlite_utils.Database, user: str, ids: Iterable[str]) -> set[str]:
    """Those of `ids` `user` may commit: uploaded by them, or referenced by any revision (current,
    old or trashed, all of which they can read) of a folder they own or that is shared with them (while the folder is not deleted: a deleted folder's
    shares grant nothing)."""
    ids = list(dict.fromkeys(ids))
    found: set[str] = set()
    for start in range(0, len(ids), QUERY_IDS):
        batch = ids[start:start + QUERY_IDS]
        marks = ", ".join("?" * len(batch))
        found.update(row[0] for row in db.execute(f"""
            SELECT chunk_id FROM chunk_uploads WHERE uploader = ? AND chunk_id IN ({marks})
            UNION
            SELECT rc.chunk_id FROM revision_chunks rc JOIN revisions r ON r.id = rc.revision_id
            JOIN entries e ON e.id = r.entry_id
            WHERE rc.chunk_id IN ({marks}) AND e.folder_id IN (
                SELECT id FROM folders WHERE owner = ? UNION SELECT s.folder_id FROM folder_shares s
                JOIN folders f ON f.id = s.folder_id WHERE s.grantee = ? AND f.deleted_at IS NULL)""",
            [user, *batch, *batch, user, user]))
    return found


def forget_uploads_of(db: sqlite_utils.Database, uploader: str) -> None:
    """A deleted account's upload records go with it."""
    db.execute("DELETE FROM chunk_uploads WHERE uploader = ?", [uploader])


def forget_chunk(db: sqlite_utils.Database, chunk: str) -> None:
    """The chunk left the store (garbage collection, account deletion): nobody holds it by upload any
    more, and the deletion is counted (recent_chunks.py: what a process put before it is asked again)."""
    db.execute("DELETE FROM chunk_uploads WHERE chunk_id = ?", [chunk])
    db.execute("UPDATE chunk_deletions SET count = count + 1 WHERE id = 1")


def deletion_count(db: sqlite_utils.Database) -> int:
    """How many chunks have left the store so far (forget_chunk)."""
    return db.execute("SELECT count FROM chunk_deletions WHERE id = 1").fetchone()[0]
