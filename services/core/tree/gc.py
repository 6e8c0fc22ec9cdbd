"""Retention and garbage collection: drop old versions, then chunks nothing refers to.

Why collect_garbage cannot lose a committed chunk or an in-flight upload:

* It runs inside the caller's write transaction (`write(db, ...)`), and
  `commit_file` checks chunk presence inside its own write transaction. SQLite
  has one writer, so for any chunk either the commit's reference is in the
  table before GC looks (GC keeps it), or GC deleted it before the commit
  checked (the commit fails with MissingChunks, a 400; the client re-uploads).
  A committed revision never points at a deleted chunk.
* A chunk uploaded but not yet committed has no reference; it is protected by
  its upload lease: the blob's write time, refreshed by every `put` (even of a
  chunk already stored). GC only deletes chunks written before now - grace and
  re-reads that time just before deleting. With a grace far longer than an
  upload takes (default a day), an upload's chunks survive until its commit.
  If a client's commit comes after the grace, the worst case is the 400 above.
* Every deletion is counted in the same transaction (holders.forget_chunk), so a
  daemon that remembers the chunks it put moments ago instead of asking the store
  again (recent_chunks.py) stops believing them once one was deleted: even a
  deletion decided just before a re-upload and carried out just after it.
"""
from __future__ import annotations

import time
from datetime import datetime
from typing import Iterable

import sqlite_utils

from .chunks import BlobStore
from .clock import stamp
from .holders import forget_chunk

DEFAULT_GRACE_SECONDS = 24 * 3600


def collect_garbage(db: sqlite_utils.Database, store: BlobStore,
                    grace_seconds: float = DEFAULT_GRACE_SECONDS, *, now: float | None = None,
                    limit: int | None = None) -> list[str]:
    """Delete unreferenced chunks last written before now - grace; returns their ids.

    Call inside write(); `limit` bounds the deletions per call.
    """
    cutoff = (time.time() if now is None else now) - grace_seconds
    deleted: list[str] = []
    for chunk in store.written_before(cutoff):
        if limit is not None and len(deleted) >= limit:
            break
        if _collect(db, store, chunk, cutoff):
            deleted.append(chunk)
    return deleted


def collect_chunks(db: sqlite_utils.Database, store: BlobStore, candidates: Iterable[str],
                   cutoff: float) -> list[str]:
    """Delete those of `candidates` that nothing references and that were last written before `cutoff`.

    Call inside write(). The sync daemon's scheduler lists candidates
    (`store.written_before`) outside the write lock and passes them here in
    small batches, so the lock is held for a bounded number of lookups however
    many referenced chunks there are; the checks here make that as safe as
    collect_garbage (see the module docstring).
    """
    return [chunk for chunk in candidates if _collect(db, store, chunk, cutoff)]


def _collect(db: sqlite_utils.Database, store: BlobStore, chunk: str, cutoff: float) -> bool:
    """Delete `chunk` if unreferenced and its lease ran out before `cutoff`; whether it was."""
    if db.execute("SELECT 1 FROM revision_chunks WHERE chunk_id = ? LIMIT 1", [chunk]).fetchone():
        return False
    written = store.written_at(chunk)
    if written is None or written >= cutoff:  # re-put since it was listed: leased again
        return False
    store.delete(chunk)
    forget_chunk(db, chunk)  # whoever uploaded it uploads it again to use it
    return True


def expire_versions(db: sqlite_utils.Database, older_than: datetime, *, limit: int | None = None) -> int:
    """Drop non-current revisions created before `older_than` (and their chunk references).

    A current revision (an entry's latest, including a delete marker) is never
    dropped. Returns how many revisions went; at most `limit` per call when given.
    Call inside write().
    """
    cursor = db.execute("""
        DELETE FROM revisions WHERE id IN (
            SELECT id FROM revisions WHERE created_at < ?
            AND id NOT IN (SELECT revision_id FROM entries WHERE revision_id IS NOT NULL)
            ORDER BY id LIMIT ?)""",
        [stamp(older_than), -1 if limit is None else limit])
    return cursor.rowcount
