"""The client's own state file: what it last synced, where its cursor is, who it is.

One SQLite file per synced folder (usually `<root>/.hearth/state.sqlite3`, which
the ignore rules always skip), opened with hearth's pragmas via
services.core.db.open_db and migrated with the client's own `Migrations("client")`
set — never the server's MIGRATION_SETS. Every write is one short transaction
(services.core.db.write); bulk puts are cut into batches so no transaction is long.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from sqlite_utils.migrations import Migrations

from services.core.db import migrate, open_db, write
from services.sync.client.scan import FileState

client_migrations = Migrations("client")
BATCH = 1000


@client_migrations()
def m001_files_and_meta(db):
    db.execute("""
        CREATE TABLE files (
            relpath TEXT PRIMARY KEY,
            kind TEXT NOT NULL DEFAULT 'file',
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            inode INTEGER NOT NULL,
            exec INTEGER NOT NULL DEFAULT 0,
            content_hash TEXT,
            server_revision TEXT,
            synced_seq INTEGER
        )""")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")


@client_migrations()
def m002_chunks_and_pending(db):
    """Each synced file's chunk list (the local source of chunks for downloads: a renamed
    or edited file is assembled from what is already on disk), and remote changes that
    could not be applied yet."""
    db.execute("ALTER TABLE files ADD COLUMN chunks TEXT NOT NULL DEFAULT '[]'")
    db.execute("""
        CREATE TABLE chunk_sources (
            chunk_id TEXT NOT NULL,
            relpath TEXT NOT NULL,
            offset INTEGER NOT NULL,
            length INTEGER NOT NULL,
            PRIMARY KEY (chunk_id, relpath, offset)
        ) WITHOUT ROWID""")
    db.execute("CREATE INDEX chunk_sources_path ON chunk_sources(relpath)")
    db.execute("CREATE TABLE remote_pending (relpath TEXT PRIMARY KEY, change TEXT NOT NULL)")


@dataclass(frozen=True)
class TrackedFile:
    """One row of `files`: the local state as of the last sync plus the server's view of it."""
    relpath: str
    size: int
    mtime_ns: int
    inode: int
    exec: bool = False
    content_hash: str | None = None
    server_revision: str | None = None
    synced_seq: int | None = None
    kind: str = "file"
    chunks: tuple[tuple[str, int], ...] = ()

    @property
    def file_state(self) -> FileState:
        return FileState(self.size, self.mtime_ns, self.inode, self.exec, self.content_hash)

    @property
    def revision(self) -> int | None:
        """The server revision id this row is synced to, as the API spells it."""
        return None if self.server_revision is None else int(self.server_revision)

    @classmethod
    def from_state(cls, relpath: str, state: FileState, server_revision: str | int | None = None,
                   synced_seq: int | None = None, chunks=()) -> "TrackedFile":
        return cls(relpath, state.size, state.mtime_ns, state.inode, state.mode_exec,
                   state.content_hash, None if server_revision is None else str(server_revision),
                   synced_seq, "file", tuple((cid, n) for cid, n in chunks))

    @classmethod
    def directory(cls, relpath: str, server_revision: int | None) -> "TrackedFile":
        return cls(relpath, 0, 0, 0, False, None, None if server_revision is None else str(server_revision),
                   None, "dir")


_COLUMNS = ("relpath", "kind", "size", "mtime_ns", "inode", "exec", "content_hash",
            "server_revision", "synced_seq", "chunks")


def _row_to_file(row) -> TrackedFile:
    values = dict(zip(_COLUMNS, row))
    values["exec"] = bool(values["exec"])
    values["chunks"] = tuple((cid, n) for cid, n in json.loads(values["chunks"] or "[]"))
    return TrackedFile(**values)


def _file_to_row(tracked: TrackedFile) -> tuple:
    values = asdict(tracked)
    values["exec"] = int(values["exec"])
    values["chunks"] = json.dumps([list(c) for c in tracked.chunks], separators=(",", ":"))
    return tuple(values[c] for c in _COLUMNS)


class ClientState:
    """The state file of one synced folder. Not shared between threads without care:
    the daemon should own one instance and call it from one writer path."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        migrate(self.path, [client_migrations])
        self.db = open_db(self.path, durable=False)  # the server is the truth; this is rebuilt by comparing

    def close(self) -> None:
        self.db.close()

    # files
    def get_file(self, relpath: str) -> TrackedFile | None:
        row = self.db.execute(f"SELECT {', '.join(_COLUMNS)} FROM files WHERE relpath = ?",
                              [relpath]).fetchone()
        return None if row is None else _row_to_file(row)

    def put_files(self, files: Iterable[TrackedFile]) -> None:
        """Insert or replace rows (and their chunk sources), BATCH rows per transaction."""
        sql = (f"INSERT OR REPLACE INTO files ({', '.join(_COLUMNS)}) "
               f"VALUES ({', '.join('?' * len(_COLUMNS))})")
        batch: list[TrackedFile] = []

        def flush(db):
            db.conn.executemany("DELETE FROM chunk_sources WHERE relpath = ?", [(f.relpath,) for f in batch])
            db.conn.executemany(sql, [_file_to_row(f) for f in batch])
            db.conn.executemany(
                "INSERT OR IGNORE INTO chunk_sources (chunk_id, relpath, offset, length) VALUES (?, ?, ?, ?)",
                [(cid, f.relpath, offset, length) for f in batch for cid, offset, length in _offsets(f.chunks)])

        for tracked in files:
            batch.append(tracked)
            if len(batch) >= BATCH:
                write(self.db, flush)
                batch = []
        if batch:
            write(self.db, flush)

    def put_file(self, tracked: TrackedFile) -> None:
        self.put_files([tracked])

    def delete_files(self, relpaths: Iterable[str]) -> None:
        paths = list(relpaths)
        for start in range(0, len(paths), BATCH):
            chunk = [(p,) for p in paths[start:start + BATCH]]
            write(self.db, lambda db: (db.conn.executemany("DELETE FROM files WHERE relpath = ?", chunk),
                                       db.conn.executemany("DELETE FROM chunk_sources WHERE relpath = ?", chunk)))

    def delete_file(self, relpath: str) -> None:
        self.delete_files([relpath])

    def iter_files(self) -> Iterator[TrackedFile]:
        """All rows in relpath order, paged so memory stays bounded on huge trees."""
        after = ""
        first = True
        while True:
            rows = self.db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM files WHERE ? OR relpath > ? "
                f"ORDER BY relpath LIMIT {BATCH}", [first, after]).fetchall()
            if not rows:
                return
            for row in rows:
                yield _row_to_file(row)
            after, first = rows[-1][0], False

    def file_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM files WHERE kind = 'file'").fetchone()[0]

    def file_states(self) -> dict[str, FileState]:
        """relpath -> FileState of tracked files: the `previous` argument of scan()."""
        rows = self.db.execute("SELECT relpath, size, mtime_ns, inode, exec, content_hash FROM files "
                               "WHERE kind = 'file'")
        return {r[0]: FileState(r[1], r[2], r[3], bool(r[4]), r[5]) for r in rows}

    def tracked_view(self) -> "TrackedView":
        """The tracked files as a read-only mapping that asks the database per key: a scan
        of a few watched paths does not load a 100,000-file tree into memory."""
        return TrackedView(self.db)

    def directories(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT relpath FROM files WHERE kind = 'dir'")}

    def sources(self, chunk: str) -> list[tuple[TrackedFile, int, int]]:
        """Synced local files that held `chunk`, as (row, offset, length): a download reads
        it from there (after checking the file is unchanged and the bytes hash right)."""
        rows = self.db.execute("SELECT relpath, offset, length FROM chunk_sources WHERE chunk_id = ? LIMIT 4",
                               [chunk]).fetchall()
        found = []
        for relpath, offset, length in rows:
            tracked = self.get_file(relpath)
            if tracked is not None:
                found.append((tracked, offset, length))
        return found

    # remote changes not applied yet (a local error): retried before new ones
    def pending_changes(self) -> list[dict]:
        return [json.loads(row[0]) for row in self.db.execute("SELECT change FROM remote_pending ORDER BY relpath")]

    def set_pending_change(self, relpath: str, change: dict | None) -> None:
        if change is None:
            write(self.db, lambda db: db.execute("DELETE FROM remote_pending WHERE relpath = ?", [relpath]))
        else:
            write(self.db, lambda db: db.execute("INSERT OR REPLACE INTO remote_pending (relpath, change) "
                                                 "VALUES (?, ?)", [relpath, json.dumps(change)]))

    def pending_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM remote_pending").fetchone()[0]

    # meta: cursor, device identity, last error
    def _get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return None if row is None else row[0]

    def _set(self, key: str, value: str | None) -> None:
        if value is None:
            write(self.db, lambda db: db.execute("DELETE FROM meta WHERE key = ?", [key]))
        else:
            write(self.db, lambda db: db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value]))

    @property
    def cursor(self) -> int | None:
        """The server journal sequence this folder is synced up to."""
        value = self._get("cursor")
        return None if value is None else int(value)

    def set_cursor(self, seq: int) -> None:
        self._set("cursor", str(seq))

    def device(self) -> tuple[str | None, str | None]:
        """(device_id, device_name)."""
        return self._get("device_id"), self._get("device_name")

    def set_device(self, device_id: str, device_name: str) -> None:
        def both(db):
            db.conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                [("device_id", device_id), ("device_name", device_name)])
        write(self.db, both)

    def get_meta(self, key: str) -> str | None:
        return self._get(key)

    def set_meta(self, key: str, value: str | None) -> None:
        self._set(key, value)

    @property
    def last_error(self) -> str | None:
        return self._get("last_error")

    def set_last_error(self, message: str | None) -> None:
        """Record the last sync error (None clears it)."""
        self._set("last_error", message)


def _offsets(chunks) -> Iterator[tuple[str, int, int]]:
    offset = 0
    for cid, length in chunks:
        yield cid, offset, length
        offset += length


class TrackedView(Mapping):
    """relpath -> FileState of the tracked files, read on demand (see ClientState.tracked_view)."""

    _SELECT = "SELECT relpath, size, mtime_ns, inode, exec, content_hash FROM files WHERE kind = 'file'"

    def __init__(self, db):
        self.db = db

    def __getitem__(self, relpath: str) -> FileState:
        row = self.db.execute(self._SELECT + " AND relpath = ?", [relpath]).fetchone()
        if row is None:
            raise KeyError(relpath)
        return FileState(row[1], row[2], row[3], bool(row[4]), row[5])

    def __iter__(self) -> Iterator[str]:
        return (row[0] for row in self.db.execute("SELECT relpath FROM files WHERE kind = 'file'").fetchall())

    def __len__(self) -> int:
        return self.db.execute("SELECT count(*) FROM files WHERE kind = 'file'").fetchone()[0]

    def under(self, scope: str) -> list[str]:
        """Tracked paths below directory `scope` ('/' sorts just before '0': one index range)."""
        return [row[0] for row in self.db.execute(
            "SELECT relpath FROM files WHERE kind = 'file' AND relpath >= ? AND relpath < ?",
            [scope + "/", scope + "0"])]
