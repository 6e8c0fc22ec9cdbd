"""Erasing a deleted account's files: its folders with every entry, revision and share, then its chunks.

Two steps, because blobs live outside the database. `delete_user_folders` runs
inside the account deletion's write transaction (accounts.USER_DATA_DELETERS),
so it commits or rolls back with the user row. Chunk files are deleted only
after that commit, by `erase_chunks`: were they deleted inside the
transaction, a rollback would bring back rows pointing at chunks that are gone.

`erase_chunks` is `collect_chunks` with the upload lease cut short to the
moment the deletion began: a chunk another user still references stays (the
reference check runs in its own write transaction, as for the regular GC), and
so does one re-put since then (an upload in flight). Callers that skip it (the
API's DELETE /api/v1/users/{name}) leave the chunks to the sync daemon's
regular GC, which removes them once their lease ran out; nothing references
them any more, so no reader can reach them meanwhile.
"""
from __future__ import annotations

import sqlite_utils

from .chunks import BlobStore
from .gc import collect_chunks
from .holders import forget_uploads_of

_OWNED_FOLDERS = "SELECT id FROM folders WHERE owner = ?"
_OWNED_ENTRIES = f"SELECT id FROM entries WHERE folder_id IN ({_OWNED_FOLDERS})"
_OWNED_REVISIONS = f"SELECT id FROM revisions WHERE entry_id IN ({_OWNED_ENTRIES})"


def chunks_of_user(db: sqlite_utils.Database, owner: str) -> list[str]:
    """Every chunk any revision (current, old or trashed) of the owner's folders refers to, and every
    chunk they uploaded (committed or not)."""
    return [row[0] for row in db.execute(
        f"""SELECT chunk_id FROM revision_chunks WHERE revision_id IN ({_OWNED_REVISIONS})
            UNION SELECT chunk_id FROM chunk_uploads WHERE uploader = ?""", [owner, owner])]


def delete_user_folders(db: sqlite_utils.Database, user: dict) -> None:
    """Drop the folders a deleted account owns (entries, revisions, chunk references, the shares it
    gave), the shares of others' folders it was given and the record of what it uploaded. Runs in
    delete_user's transaction."""
    name = user["name"]
    # Spelled out rather than left to ON DELETE CASCADE: it holds on a connection without foreign keys.
    db.execute(f"""DELETE FROM deletion_run_files WHERE run_id IN (SELECT id FROM deletion_runs
                   WHERE folder_id IN ({_OWNED_FOLDERS}) OR user = ?)""", [name, name])
    db.execute(f"DELETE FROM deletion_runs WHERE folder_id IN ({_OWNED_FOLDERS}) OR user = ?", [name, name])
    db.execute(f"DELETE FROM revision_chunks WHERE revision_id IN ({_OWNED_REVISIONS})", [name])
    db.execute(f"DELETE FROM revisions WHERE entry_id IN ({_OWNED_ENTRIES})", [name])
    db.execute(f"DELETE FROM entries WHERE folder_id IN ({_OWNED_FOLDERS})", [name])
    db.execute(f"DELETE FROM tree_dirs WHERE folder_id IN ({_OWNED_FOLDERS})", [name])
    db.execute("DELETE FROM tree_roots WHERE user = ?", [name])
    db.execute(f"DELETE FROM folder_shares WHERE folder_id IN ({_OWNED_FOLDERS}) OR grantee = ?", [name, name])
    db.execute("DELETE FROM folders WHERE owner = ?", [name])
    forget_uploads_of(db, name)


def erase_chunks(db: sqlite_utils.Database, store: BlobStore, candidates: list[str],
                 deletion_started: float) -> list[str]:
    """After the deletion committed: delete those of `candidates` nothing references any more and
    nobody re-put since `deletion_started` (a time.time()). Call inside write(); returns their ids."""
    return collect_chunks(db, store, candidates, deletion_started)
