"""The change feed: what wakes a long poll when its folder changes, in this process or another.

A write through this daemon wakes the folder's long polls at once (`notify`).
Writes by other processes (a second sync instance, the files daemons' WebDAV
commits, a restore from the CLI) are seen through SQLite itself: while any
poll waits, a watcher asks its own connection for `PRAGMA data_version` every
WATCH_INTERVAL, which changes whenever another connection has committed (a read
of the WAL index in shared memory, no disk access). Only then does it read the
waited folders' rows, `(seq, name, deleted_at)`, and wakes the folders whose
row moved: an unrelated write (a failed login counted, a calendar edit) costs
one small query, not a journal read per waiting poll.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from pathlib import Path

log = logging.getLogger("sync.feed")

WATCH_INTERVAL = 0.02  # seconds between data_version checks while a poll waits: the cross-process wake latency
LINGER = 5.0  # seconds the watcher keeps running after the last poll ended


class ChangeFeed:
    """Wakes long polls: one asyncio.Event per folder, set (and replaced) after each change to it."""

    def __init__(self, database_path: Path | None = None) -> None:
        self._events: dict[int, asyncio.Event] = {}
        self.closed = False  # shutting down: long polls answer at once
        self._database_path = database_path
        self._watcher: asyncio.Task | None = None

    def event(self, folder: int) -> asyncio.Event:
        """The event the next change to `folder` sets; take it before reading the journal."""
        event = self._events.get(folder)
        if event is None:
            event = self._events[folder] = asyncio.Event()
            if self._database_path is not None and (self._watcher is None or self._watcher.done()):
                self._watcher = asyncio.create_task(self._watch(self._database_path))
        return event

    def notify(self, folder: int) -> None:
        event = self._events.pop(folder, None)
        if event is not None:
            event.set()

    async def close(self) -> None:
        self.closed = True
        for event in self._events.values():
            event.set()
        self._events.clear()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher

    async def _watch(self, path: Path) -> None:
        """While polls wait: wake the folders other processes changed (see the module's docstring).

        A folder first waited for since the last read of the rows is woken by any change: it may have
        changed between its poll's read of the journal and the watcher's read. The watcher outlives
        its last poll by LINGER, so the poll that a wake sends back to waiting finds it still running.
        """
        connection = await asyncio.to_thread(_open_watcher, path)
        version, seen, idle = None, {}, 0.0
        try:
            while not self.closed and idle < LINGER:
                now = await asyncio.to_thread(_data_version, connection)
                if now != version and self._events:
                    version = now
                    rows = await asyncio.to_thread(_folder_rows, connection, list(self._events))
                    for folder in list(self._events):
                        if folder not in seen or rows.get(folder) != seen[folder]:
                            self.notify(folder)
                    seen = rows
                idle = 0.0 if self._events else idle + WATCH_INTERVAL
                await asyncio.sleep(WATCH_INTERVAL)
        except sqlite3.Error:  # the waits' own periodic re-read still answers them
            log.exception("change feed watcher stopped")
        finally:
            await asyncio.to_thread(connection.close)


def _open_watcher(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA busy_timeout = 10000")
    return connection


def _data_version(connection: sqlite3.Connection) -> int:
    return connection.execute("PRAGMA data_version").fetchone()[0]


def _folder_rows(connection: sqlite3.Connection, folders: list[int]) -> dict[int, tuple]:
    """Each folder's (seq, name, deleted_at); a folder erased meanwhile is absent."""
    if not folders:
        return {}
    marks = ",".join("?" * len(folders))
    rows = connection.execute(f"SELECT id, seq, name, deleted_at FROM folders WHERE id IN ({marks})", folders)
    return {row[0]: row[1:] for row in rows}
