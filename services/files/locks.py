"""Write locks (RFC 4918 §6, §9.10): stored in files_locks, so every files daemon sees the same ones.

A lock covers its path and, with depth infinity, everything below it. A write
to a covered path must submit the lock's token (in the If header) and come
from the user who took the lock. Expired locks are ignored at once and
deleted by the next write that looks at them.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Callable

import sqlite_utils

from services.core.errors import BadRequest
from services.core.numbers import whole_number

from .errors import Locked

DEFAULT_TIMEOUT = 3600
MAX_TIMEOUT = 7 * 86400  # "Infinite" is granted as a week: a lock whose client vanished must end


@dataclass(frozen=True)
class Lock:
    token: str
    folder_id: int
    path: str
    principal: str
    scope: str  # 'exclusive' | 'shared'
    depth: str  # '0' | 'infinity'
    owner: str  # the client's DAV:owner element, serialised ('' when none was given)
    timeout: int
    expires_at: float

    def covers(self, path: str) -> bool:
        if path == self.path:
            return True
        return self.depth == "infinity" and (self.path == "" or path.startswith(self.path + "/"))


def parse_timeout(header: str | None) -> int:
    """Seconds from a Timeout header (`Second-N, Infinite`): the first value we understand."""
    for item in (header or "").split(","):
        item = item.strip()
        if item.lower() == "infinite":
            return MAX_TIMEOUT
        seconds = whole_number(item[7:]) if item.lower().startswith("second-") else None
        if seconds is not None:
            return max(1, min(seconds, MAX_TIMEOUT))
    return DEFAULT_TIMEOUT


def _lock(row) -> Lock:
    return Lock(*row)


_SELECT = "SELECT token, folder_id, path, principal, scope, depth, owner, timeout, expires_at FROM files_locks"


def locks_of(db: sqlite_utils.Database, folder: int) -> list[Lock]:
    """The folder's unexpired locks."""
    return [_lock(r) for r in db.execute(f"{_SELECT} WHERE folder_id = ? AND expires_at > ?",
                                         [folder, time.time()])]


def covering(db: sqlite_utils.Database, folder: int, path: str, *, below: bool = False) -> list[Lock]:
    """Locks covering `path`; with `below`, also locks on anything under it (a delete or move takes those)."""
    found = []
    for lock in locks_of(db, folder):
        if lock.covers(path) or (below and (path == "" or lock.path.startswith(path + "/"))):
            found.append(lock)
    return found


def by_token(db: sqlite_utils.Database, token: str) -> Lock | None:
    row = db.execute(f"{_SELECT} WHERE token = ? AND expires_at > ?", [token, time.time()]).fetchone()
    return _lock(row) if row else None


def check_unlocked(db: sqlite_utils.Database, user: str, folder: int, path: str, submitted: set[str],
                   href: Callable[[Lock], str], *, below: bool = False) -> None:
    """Locked (423) unless every lock on the way was submitted by the user holding it."""
    for lock in covering(db, folder, path, below=below):
        if lock.token not in submitted or lock.principal != user:
            raise Locked(f"{path or 'the folder'} is locked; submit the lock token in an If header",
                         href(lock))


def create(db: sqlite_utils.Database, user: str, folder: int, path: str, scope: str, depth: str, owner: str,
           timeout: int, href: Callable[[Lock], str]) -> Lock:
    """A new lock, unless it conflicts: an exclusive lock with any other, a shared one with an exclusive one."""
    if scope not in ("exclusive", "shared") or depth not in ("0", "infinity"):
        raise BadRequest("lock scope must be exclusive or shared, depth 0 or infinity")
    db.execute("DELETE FROM files_locks WHERE expires_at <= ?", [time.time()])
    for other in covering(db, folder, path, below=depth == "infinity"):
        if scope == "exclusive" or other.scope == "exclusive":
            raise Locked(f"{path or 'the folder'} already has a conflicting lock", href(other),
                         element="no-conflicting-lock")
    token = f"urn:uuid:{uuid.uuid4()}"
    db.execute("""INSERT INTO files_locks (token, folder_id, path, principal, scope, depth, owner, timeout,
                  expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
               [token, folder, path, user, scope, depth, owner, timeout, time.time() + timeout])
    return by_token(db, token)


def refresh(db: sqlite_utils.Database, lock: Lock, timeout: int) -> Lock:
    db.execute("UPDATE files_locks SET timeout = ?, expires_at = ? WHERE token = ?",
               [timeout, time.time() + timeout, lock.token])
    return by_token(db, lock.token)


def remove(db: sqlite_utils.Database, token: str) -> None:
    db.execute("DELETE FROM files_locks WHERE token = ?", [token])


def drop_below(db: sqlite_utils.Database, folder: int, path: str, *, keep_own: bool = False) -> None:
    """Forget locks on `path` and below it: the resource is gone or moved (locks do not move with it).

    With `keep_own`, the lock of `path` itself stays: a MOVE or COPY replaced the resource there, and a
    lock belongs to its URL (RFC 4918 §7.5)."""
    below, args = ("substr(path, 1, ?) = ?", [len(path) + 1, path + "/"]) if path else ("path != ''", [])
    if not keep_own:
        below, args = f"(path = ? OR {below})", [path, *args]
    db.execute(f"DELETE FROM files_locks WHERE folder_id = ? AND {below}", [folder, *args])


def delete_locks_of(db: sqlite_utils.Database, user: dict) -> None:
    """A deleted account's locks in others' folders end with it (accounts.USER_DATA_DELETERS); those in
    its own folders go with the folders."""
    db.execute("DELETE FROM files_locks WHERE principal = ?", [user["name"]])
