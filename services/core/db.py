"""SQLite the way hearth uses it: WAL, a busy timeout, named migrations, one writer.

Commands (short-lived processes) use `open_db()` and `write()` directly. Daemons
wrap the file in `Database`, which runs reads on a small thread pool and sends
every write through one dedicated thread inside `BEGIN IMMEDIATE`, so the event
loop never blocks and writers never trip over each other ("database is locked"
is something our users must never see).
"""
from __future__ import annotations

import asyncio
import fcntl
import queue
import sqlite3
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import sqlite_utils
from sqlite_utils.migrations import Migrations

from .private import create_private_file, private_dir

T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000
DB_NAME = "hearth.sqlite3"


def db_path(data_dir: Path) -> Path:
    return data_dir / "db" / DB_NAME


def open_db(path: Path, *, durable: bool = True) -> sqlite_utils.Database:
    """A connection with hearth's pragmas; autocommit, transactions are explicit.

    `durable` (synchronous = FULL): a committed transaction survives a power cut,
    not only a crash: a sync client told "revision 42 committed" must never meet
    a server that forgot it. A cache that can be rebuilt (the sync client's own
    state) passes False (NORMAL: consistent after a power cut, maybe older)."""
    private_dir(path.parent)
    create_private_file(path)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
    conn.execute("PRAGMA foreign_keys = ON")
    return sqlite_utils.Database(conn)


@contextmanager
def immediate(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """A write transaction that takes the write lock up front (no upgrade deadlocks)."""
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")


def write(db: sqlite_utils.Database, fn: Callable[[sqlite_utils.Database], T]) -> T:
    """Run `fn` in one short write transaction."""
    with immediate(db):
        return fn(db)


def migrate(path: Path, migration_sets: Iterable[Migrations]) -> None:
    """Apply pending named migrations; safe when several processes start at once."""
    private_dir(path.parent)
    lock_path = Path(str(path) + ".migrate.lock")
    create_private_file(lock_path)
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        db = open_db(path)
        try:
            for migrations in migration_sets:
                migrations.apply(db)
        finally:
            db.close()


class Database:
    """One database file for one daemon: concurrent reads, a single writer thread."""

    def __init__(self, path: Path, readers: int = 4):
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite_utils.Database] = []
        self._lock = threading.Lock()
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="db-read")
        self._writes: queue.Queue = queue.Queue()
        self._writer = threading.Thread(target=self._write_loop, name="db-write", daemon=True)
        self._writer.start()

    def _connection(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = open_db(self.path)
            with self._lock:
                self._connections.append(db)
        return db

    def _write_loop(self) -> None:
        while True:
            job = self._writes.get()
            if job is None:
                return
            fn, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(write(self._connection(), fn))
            except BaseException as error:  # handed to the awaiting coroutine
                future.set_exception(error)

    async def read(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(self._connection()))

    async def write(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        future: Future = Future()
        self._writes.put((fn, future))
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        self._writes.put(None)
        self._writer.join(timeout=10)
        self._readers.shutdown(wait=True)
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
