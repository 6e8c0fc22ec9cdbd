"""Chunks this process stored moments ago, so a commit or a download need not ask the store about them.

An object store answers "is chunk X there, and how big is it" with a round trip (a HEAD per chunk).
A commit names chunks its client uploaded a moment before, most often through this very process, and
the user's other devices fetch them moments later: remembering the (id, size) of each chunk this
process put spares those round trips, which on a busy object store cost as much as the uploads.

Why a remembered chunk is really stored. Chunks leave the store only through garbage collection and
account deletion (gc._collect), which delete the object inside a write transaction that also counts
the deletion (holders.forget_chunk bumps chunk_deletions.count). Each entry keeps the count read
before its put began, and is believed only while the count is the same, read inside the transaction
that relies on it (`StoredSizes.confirmed`):

* a deletion committed before that first read deleted the object before the put wrote it again;
* one committed between that read and the relying transaction changed the count: the entry is not
  believed, and the store is asked as before;
* one committed after the relying transaction: SQLite has one writer, so the deletion's transaction
  began after the commit's and sees its reference, and a referenced chunk is never deleted.

A deletion decided from a HEAD taken just before the put, deleting the object just after it (the
race the upload lease alone cannot close), is the second case. Entries are also forgotten after
MAX_AGE and beyond LIMIT, which bounds memory and leaves anything done to the bucket from outside
hearth visible within minutes, as before.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import sqlite_utils

from .chunks import BlobStore
from .holders import deletion_count

LIMIT = 100_000          # entries (about 200 bytes each)
MAX_AGE = 600.0          # seconds an entry is believed, at most


@dataclass
class StoredSizes:
    """Chunk sizes read before a commit's transaction: `sizes` by id, of which `remembered` came from
    RecentChunks (believed while the deletion count is still `deletions`) and the rest from the store."""

    sizes: dict[str, int] = field(default_factory=dict)
    remembered: frozenset[str] = frozenset()
    deletions: int | None = None

    def confirmed(self, db: sqlite_utils.Database, store: BlobStore, ids: Iterable[str]) -> dict[str, int]:
        """Inside the relying write transaction: the stored size of each of `ids` known to be stored,
        asking the store after all about remembered chunks if any chunk was deleted meanwhile."""
        wanted = set(ids)
        found = {cid: self.sizes[cid] for cid in wanted if cid in self.sizes}
        doubtful = wanted & self.remembered
        if doubtful and deletion_count(db) != self.deletions:
            for cid in doubtful:
                found.pop(cid, None)
            found.update(store.sizes(doubtful))
        return found


class RecentChunks:
    """What this process put lately: id -> (size, deletion count before the put, when). Thread-safe."""

    def __init__(self, limit: int = LIMIT, max_age: float = MAX_AGE):
        self.limit, self.max_age = limit, max_age
        self._entries: OrderedDict[str, tuple[int, int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, sizes: Mapping[str, int], deletions: int) -> None:
        """These chunks were put (durably) by a put that began when the deletion count was `deletions`."""
        now = time.monotonic()
        with self._lock:
            for cid, size in sizes.items():
                self._entries.pop(cid, None)
                self._entries[cid] = (size, deletions, now)
            while len(self._entries) > self.limit:
                self._entries.popitem(last=False)

    def sizes(self, ids: Iterable[str], deletions: int) -> dict[str, int]:
        """Those of `ids` put recently with no chunk deleted since (the count is still `deletions`)."""
        oldest = time.monotonic() - self.max_age
        found: dict[str, int] = {}
        with self._lock:
            for cid in ids:
                entry = self._entries.get(cid)
                if entry is not None and entry[1] == deletions and entry[2] >= oldest:
                    found[cid] = entry[0]
        return found

    def stored_sizes(self, store: BlobStore, ids: Iterable[str], deletions: int) -> StoredSizes:
        """The size of each of `ids` that is stored: from memory where it vouches, the rest from `store`
        (in one call: an object store asks in parallel)."""
        ids = set(ids)
        known = self.sizes(ids, deletions)
        asked = store.sizes(ids - known.keys()) if ids - known.keys() else {}
        return StoredSizes({**asked, **known}, frozenset(known), deletions)

    def present(self, store: BlobStore, ids: Iterable[str], deletions: int) -> set[str]:
        """Those of `ids` that are stored, asking `store` only about those not remembered."""
        ids = set(ids)
        known = self.sizes(ids, deletions).keys()
        return set(known) | (store.has_many(ids - known) if ids - known else set())
