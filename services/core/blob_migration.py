"""Moving the chunk store to another backend while the daemons keep serving (`hearth storage migrate`).

How it works, and why it cannot lose a chunk:

* The migration is one row in the shared database (table blob_migration: source and target as their
  [storage] keys, state "copying" or "done", progress counts). Every store a daemon or command opens
  (`open_blob_store`) is a MigratingStore that looks at that row before each use: it reads it again
  whenever SQLite's `PRAGMA data_version` on its own connection says another connection (of any
  process) committed since the last read, and only then. So a daemon learns that a migration started,
  and that it ended, at its next chunk operation, without a restart or a signal, however many
  instances run, and a chunk operation costs one pragma, not a query and two JSON decodes.
* While the row says "copying", new chunks go to the TARGET only, and reads try the target first, then
  the source. The copier (services.core.storage_commands) lists the source after the row was committed
  and copies what the target lacks, each chunk's BLAKE3 checked (backup.blob_copy.copy_chunks). A write
  that began before the row appeared is covered by re-reading the row after the write: if the place
  for new chunks changed meanwhile, the chunk is copied there too. So every chunk is either in the
  source when it is listed, or written to the target: after one full pass the target holds everything.
* Garbage collection deletes nothing while a migration copies: the lease of every chunk runs until the
  migration ends (written_at is infinity, written_before lists nothing). A chunk deleted from the source
  after being copied, or from the target while the copier puts it, cannot happen.
* When the copy is complete, the row becomes "done" first, then hearth.toml's [storage] is rewritten
  (temp file, fsync, rename: comments and the other keys kept). A daemon started before the switch still
  has the old config: the "done" row sends its writes to the new store and its reads there first, with
  the old store as a fallback, until it restarts. One started after reads its config and needs no row.
  A kill -9 at any point is resumed by running the command again: the row says where it was.
* The old store's chunks stay until `hearth storage remove-old` removes them (services.core.blob_removal),
  each once the new store holds it whole; nothing reads them once every daemon restarted, and a daemon
  that has not finds everything in the new store first, so the removal need not wait for restarts.
* Credentials: a daemon writes to the target with its own environment. Moving to S3, the daemons need
  AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (in the environment of `hearth up`) before it starts;
  one without them answers 503 to whatever needs a chunk while it runs (StoreUnavailable: reading the
  source alone could miss a chunk another daemon already wrote to the target). Nothing is lost.
"""
from __future__ import annotations

import json
import math
import sqlite3
import threading
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator, Mapping

from .db import BUSY_TIMEOUT_MS, db_path
from .errors import CommandError, NotFound, StoreUnavailable
from .tree.chunks import BlobStore

Settings = Mapping[str, str]


@dataclass(frozen=True)
class Migration:
    """The blob_migration row: where chunks come from and go to, and how far the copy got."""

    source: dict
    target: dict
    state: str  # "copying" | "done"
    chunks_total: int = 0
    chunks_done: int = 0

    @classmethod
    def of(cls, row) -> "Migration | None":
        if row is None:
            return None
        source, target, state, total, done = row
        return cls(json.loads(source), json.loads(target), state, total, done)


MIGRATION_COLUMNS = "source, target, state, chunks_total, chunks_done"


def read_migration(db) -> Migration | None:
    """The migration recorded in `db` (an sqlite3 connection or sqlite_utils Database), or None."""
    try:
        row = db.execute(f"SELECT {MIGRATION_COLUMNS} FROM blob_migration WHERE id = 1").fetchone()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):  # a database the migration that makes the table has not reached
            return None
        raise
    return Migration.of(row)


def copy_progress(data_dir: Path) -> str | None:
    """"N of M chunks copied" while a migration copies (for `hearth status`), else None."""
    path = db_path(data_dir)
    if not path.exists():
        return None
    with closing(sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000)) as db:
        migration = read_migration(db)
    if migration is None or migration.state != "copying":
        return None
    return (f"{migration.chunks_done} of {migration.chunks_total} chunks copied by the last run "
            f"(`hearth storage migrate --to {migration.target['blobs']}` resumes it if it stopped)")


def key_of(settings: Settings) -> str:
    return json.dumps(dict(settings), sort_keys=True)


@dataclass(frozen=True)
class Route:
    """Where chunks go now (`write`), where they are looked for, in order (`reads`), and whether a copy runs."""

    write: BlobStore
    reads: tuple[BlobStore, ...]
    moving: bool


class MigratingStore(BlobStore):
    """The configured store (`home`), or, while the database records a migration from it, the pair of
    stores the module docstring describes. `build` makes the store other settings name."""

    def __init__(self, home: BlobStore, settings: Settings, data_dir: Path,
                 build: Callable[[Settings], BlobStore]):
        self.home, self.home_key = home, key_of(settings)
        self._db_file = db_path(data_dir)
        self._build = build
        self._stores: dict[str, BlobStore] = {self.home_key: home}
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._read_at: int | None = None  # the data_version at which `_row` was read
        self._row: Migration | None = None

    @property
    def read_ahead(self) -> int:  # the backend's: an object store's reads are round trips worth overlapping
        return max(store.read_ahead for store in list(self._stores.values()))

    @property
    def read_ahead_bytes(self) -> int:
        return max(store.read_ahead_bytes for store in list(self._stores.values()))

    # --- which store, now -------------------------------------------------------------------------

    def _migration(self) -> Migration | None:
        with self._lock:
            if self._db is None:
                if not self._db_file.exists():  # nothing migrated yet; never create the database here
                    return None
                self._db = sqlite3.connect(str(self._db_file), timeout=BUSY_TIMEOUT_MS / 1000,
                                           isolation_level=None, check_same_thread=False)
            # Changes only when another connection committed: this one never writes.
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            if version != self._read_at:
                self._row, self._read_at = read_migration(self._db), version
            return self._row

    def _store(self, settings: dict) -> BlobStore:
        key = key_of(settings)
        with self._lock:
            if key not in self._stores:
                try:
                    self._stores[key] = self._build(settings)
                except CommandError as error:  # e.g. no credentials for the target in this daemon's env
                    raise StoreUnavailable(f"storage migration to {settings['blobs']}: {error}") from None
            return self._stores[key]

    def route(self) -> Route:
        migration = self._migration()
        if migration is None:
            return Route(self.home, (self.home,), False)
        moving = migration.state == "copying"
        if key_of(migration.source) == self.home_key:
            target = self._store(migration.target)
            return Route(target, (target, self.home), moving)
        if moving and key_of(migration.target) == self.home_key:
            return Route(self.home, (self.home, self._store(migration.source)), True)
        return Route(self.home, (self.home,), False)

    def _written(self, route: Route, id: str, now: BlobStore | None = None) -> None:
        """After a write to `route.write`: if new chunks go elsewhere now (`now`, or the route's as read
        after the write: a migration started or ended meanwhile), the chunk is copied there too, so the
        copier's listing cannot have missed it."""
        now = now or self.route().write
        if now is not route.write:
            now.put(id, route.write.get(id))

    # --- BlobStore --------------------------------------------------------------------------------

    def put(self, id: str, data: bytes) -> None:
        route = self.route()
        route.write.put(id, data)
        self._written(route, id)

    def stage(self, id: str, data: bytes) -> object:
        route = self.route()
        return route, id, route.write.stage(id, data)

    def publish(self, staged: list) -> None:
        for store, items in _by_store(staged).items():
            store.publish([inner for _, _, inner in items])
        now = self.route().write if staged else None  # read once, after every write of the batch
        for route, id, _ in staged:
            self._written(route, id, now)

    def discard(self, staged: list) -> None:
        for store, items in _by_store(staged).items():
            store.discard([inner for _, _, inner in items])

    def get(self, id: str) -> bytes:
        for store in self.route().reads:
            try:
                return store.get(id)
            except NotFound:
                continue
        raise NotFound(f"no chunk {id}")

    def open(self, id: str) -> BinaryIO:
        for store in self.route().reads:
            try:
                return store.open(id)
            except NotFound:
                continue
        raise NotFound(f"no chunk {id}")

    def has_many(self, ids: Iterable[str]) -> set[str]:
        wanted, found = set(ids), set()
        for store in self.route().reads:
            if wanted - found:
                found |= store.has_many(wanted - found)
        return found

    def sizes(self, ids: Iterable[str]) -> dict[str, int]:
        wanted, found = set(ids), {}
        for store in self.route().reads:
            if wanted - found.keys():
                found.update(store.sizes(wanted - found.keys()))
        return found

    def delete(self, id: str) -> None:
        route = self.route()
        if route.moving:  # see written_at: garbage collection never gets here while chunks move
            return
        for store in route.reads:
            store.delete(id)

    def written_before(self, cutoff: float) -> Iterator[str]:
        route = self.route()
        return iter(()) if route.moving else route.write.written_before(cutoff)

    def written_at(self, id: str) -> float | None:
        route = self.route()
        times = [at for store in route.reads if (at := store.written_at(id)) is not None]
        if not times:
            return None
        return math.inf if route.moving else max(times)  # a moving chunk is leased until the move ends

    def stored(self) -> Iterator[str]:
        seen: set[str] = set()
        for store in self.route().reads:
            for id in store.stored():
                if id not in seen:
                    seen.add(id)
                    yield id

    def free_bytes(self) -> int | None:
        return self.route().write.free_bytes()

    def check(self) -> None:
        for store in self.route().reads:
            store.check()

    def describe(self) -> str:
        route = self.route()
        if len(route.reads) == 1:
            return route.write.describe()
        state = "migrating" if route.moving else "migrated"
        return f"{route.write.describe()} ({state}; old chunks read from {route.reads[1].describe()})"

    def close(self) -> None:
        with self._lock:
            for store in self._stores.values():
                store.close()
            if self._db is not None:
                self._db.close()
                self._db, self._read_at = None, None


def _by_store(staged: list) -> dict[BlobStore, list]:
    groups: dict[BlobStore, list] = {}
    for item in staged:
        groups.setdefault(item[0].write, []).append(item)
    return groups
