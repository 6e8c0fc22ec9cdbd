"""After a finished storage migration: the chunks removed from the store they were moved out of.

A chunk leaves the old store only once the new store holds it with the right
BLAKE3, read back from there; one the new store lacks or holds damaged is put
there again first, from the old store's copy (checked too). The old store is
listed at the start and emptied in that order, so a run that was killed is
resumed by running it again: what is left is what it had not reached.
Nothing writes to the old store any more: the migration row says "done", so
every daemon, even one started before the switch, writes to the new one.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from .errors import NotFound
from .tree import BlobStore, ChunkStore
from .tree.chunks import chunk_id

BATCH = 256  # chunks checked in the new store with one has_many


@dataclass
class RemovalReport:
    removed: int = 0
    removed_bytes: int = 0
    copied_again: int = 0                             # missing from, or damaged in, the new store
    damaged: list[str] = field(default_factory=list)  # damaged in the old store and not whole in the new: kept


def remove_old_chunks(old: BlobStore, new: BlobStore,
                      progress: Callable[[int], Callable[[int], None]] = lambda total: (lambda n: None)
                      ) -> RemovalReport:
    """Delete every chunk of `old` once `new` holds it whole; `progress(total)` gives a step function."""
    ids = list(old.stored())
    step = progress(len(ids))
    report = RemovalReport()
    for start in range(0, len(ids), BATCH):
        batch = ids[start:start + BATCH]
        present = new.has_many(batch)
        for id in batch:
            size = _ensure_whole(id, old, new, id in present, report)
            if size is not None:
                old.delete(id)
                report.removed += 1
                report.removed_bytes += size
            step(1)
    if isinstance(old, ChunkStore):
        _remove_empty_directories(old)
    return report


def _ensure_whole(id: str, old: BlobStore, new: BlobStore, present: bool, report: RemovalReport) -> int | None:
    """The chunk's size once `new` holds it whole (copied from `old` when it did not), or None when it cannot."""
    if present:
        try:
            data = new.get(id)
        except NotFound:  # removed meanwhile by garbage collection: the old copy goes back first
            data = b""
        if chunk_id(data) == id:
            return len(data)
    try:
        data = old.get(id)
    except NotFound:
        return None
    if chunk_id(data) != id:
        report.damaged.append(id)
        return None
    new.put(id, data)
    report.copied_again += 1
    return len(data)


def _remove_empty_directories(store: ChunkStore) -> None:
    """The ab/cd directories a local store leaves behind once its chunks are gone (the root stays)."""
    for directory, _, _ in os.walk(store.root, topdown=False):
        if directory != str(store.root):
            try:
                os.rmdir(directory)
            except OSError:  # not empty: a chunk kept, or a temp file of a write
                pass
