"""Deletions that WebDAV and Nextcloud clients send, grouped into runs: a mass deletion is noticed, shown
and undone in one step.

hearth's own client holds a deletion spree back before sending it (services/sync/client/guard.py). The
Nextcloud apps and other WebDAV clients send each DELETE at once, and a refused DELETE makes them retry
forever, so the server lets every one through (the files go to the trash as always) and watches instead:
the files one account deletes in one folder with one credential (an app password is one device), each
deletion within WINDOW seconds of the one before, form a run. A run that crosses the mass-deletion
judgement (services/core/mass_deletion, the client's numbers) is flagged: the caller logs it once, its
users see it (`hearth trash list`, GET /sync/v1/mass-deletions, the web UI's trash), and `undo_run`
brings back exactly its files, each as it was when deleted, with its file id.

Cost on the DELETE path, inside the DELETE's own transaction: the files it deleted (an index range of
the folder's latest changes), the open run (one indexed lookup), one insert or update of the run and one
insert per deleted file. Counting the folder's files happens once, when a run starts; so does dropping
the records of runs that ended without being a mass deletion.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import sqlite_utils

from ..errors import Conflict, NotFound
from ..mass_deletion import describe, too_many_deleted
from .folders import folder_access
from .journal import restore

WINDOW = 60.0  # seconds between two deletions of one run: a sync sends its deletes back to back
ACCOUNT_PASSWORD = 0  # the credential of requests made with the account's own password
ACCOUNT_PASSWORD_LABEL = "the account password"
UNDO_DEVICE = "undo of a mass deletion"  # the journal's device name for the files an undo brings back
MAX_PATHS_LISTED = 5


@dataclass(frozen=True)
class DeletionRun:
    id: int
    folder_id: int
    folder: str  # the folder's name
    owner: str  # the folder's owner
    user: str  # who deleted
    device: str  # the app password's label, or ACCOUNT_PASSWORD_LABEL
    started_at: float  # unix seconds
    last_at: float
    files: int  # files deleted in the run
    tracked: int  # files the folder held when the run began
    flagged_at: float | None  # when it became a mass deletion
    undone_at: float | None

    @property
    def summary(self) -> str:
        """One line: '150 of 200 files deleted at once (more than 50%) from folder 'Photos' by alice with Pixel 7'."""
        return f"{describe(self.files, self.tracked)} from folder {self.folder!r} by {self.user} with {self.device}"


def folder_seq(db: sqlite_utils.Database, folder: int) -> int:
    """The folder's latest change: pass it to note_deletions after deleting, to say which changes were yours."""
    return db.execute("SELECT seq FROM folders WHERE id = ?", [folder]).fetchone()[0]


def note_deletions(db: sqlite_utils.Database, folder: int, user: str, credential: int | None, since_seq: int,
                   now: float | None = None) -> DeletionRun | None:
    """Add the files of `folder` deleted after change `since_seq` to the run of `user` with `credential`
    (an app password's id; None for the account's password). Returns the run when these deletions made it
    a mass deletion, once, so the caller can say so; None otherwise."""
    deleted = db.execute("""SELECT id, revision_id, file_id FROM entries WHERE folder_id = ? AND seq > ?
                            AND deleted = 1 AND kind = 'file'""", [folder, since_seq]).fetchall()
    if not deleted:
        return None
    now = time.time() if now is None else now
    credential = ACCOUNT_PASSWORD if credential is None else credential
    run = db.execute("""SELECT id, files, tracked, flagged_at FROM deletion_runs WHERE folder_id = ? AND user = ?
                        AND credential = ? AND last_at >= ? ORDER BY last_at DESC LIMIT 1""",
                     [folder, user, credential, now - WINDOW]).fetchone()
    if run is None:
        # Runs that ended without being a mass deletion are of no more use: their records go now.
        db.execute("DELETE FROM deletion_runs WHERE flagged_at IS NULL AND last_at < ?", [now - WINDOW])
        live = db.execute("SELECT COUNT(*) FROM entries WHERE folder_id = ? AND deleted = 0 AND kind = 'file'",
                          [folder]).fetchone()[0]
        run_id, files, tracked, flagged = db.execute(
            """INSERT INTO deletion_runs (folder_id, user, credential, device, started_at, last_at, files, tracked)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id, files, tracked, flagged_at""",
            [folder, user, credential, _device(db, credential), now, now, len(deleted), live + len(deleted)]).fetchone()
    else:
        run_id, files, tracked, flagged = db.execute(
            """UPDATE deletion_runs SET files = files + ?, last_at = ? WHERE id = ?
               RETURNING id, files, tracked, flagged_at""", [len(deleted), now, run[0]]).fetchone()
    db.conn.executemany("INSERT INTO deletion_run_files (run_id, entry_id, marker_id, file_id) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT DO UPDATE SET marker_id = excluded.marker_id, file_id = excluded.file_id",
                        [(run_id, *row) for row in deleted])
    if flagged is not None or not too_many_deleted(files, tracked):
        return None
    db.execute("UPDATE deletion_runs SET flagged_at = ? WHERE id = ?", [now, run_id])
    return _run(db, run_id)


def mass_deletions(db: sqlite_utils.Database, user: str, folder: int | None = None) -> list[DeletionRun]:
    """The flagged runs `user` made or that hit a folder they own, newest first; only `folder`'s when given."""
    rows = db.execute(f"""{_SELECT} WHERE r.flagged_at IS NOT NULL AND (r.user = ? OR f.owner = ?)
                          {'AND r.folder_id = ?' if folder is not None else ''} ORDER BY r.id DESC""",
                      [user, user, *([folder] if folder is not None else [])]).fetchall()
    return [DeletionRun(*row) for row in rows]


def undo_run(db: sqlite_utils.Database, user: str, run_id: int, *, quota: int | None = None) -> DeletionRun:
    """Bring back every file of a flagged run as it was when deleted (its file id too), all or none.

    NotFound unless `user` made the run or owns its folder; the errors of folder_access (they must
    still be able to write there); Conflict, changing nothing, when the run was undone already, when a
    file lives at any of its paths again (nothing is ever overwritten) or when one has no content left;
    QuotaExceeded.
    """
    run = next((r for r in mass_deletions(db, user) if r.id == run_id), None)
    if run is None:
        raise NotFound(f"no mass deletion {run_id} of yours")
    folder_access(db, user, run.folder_id, write=True)
    if run.undone_at is not None:
        raise Conflict(f"mass deletion {run_id} was undone already")
    files = db.execute("""SELECT e.path, e.deleted, f.file_id,
                                 (SELECT MAX(id) FROM revisions WHERE entry_id = e.id AND id < f.marker_id
                                  AND deleted = 0 AND kind = 'file') AS content
                          FROM deletion_run_files f JOIN entries e ON e.id = f.entry_id
                          WHERE f.run_id = ? ORDER BY e.path""", [run_id]).fetchall()
    taken = [path for path, deleted, _, _ in files if not deleted]
    if taken:
        raise Conflict(f"{len(taken)} of the {len(files)} files exist again ({_listed(taken)}); nothing was "
                       "restored: move them away, then undo again")
    expired = [path for path, _, _, content in files if content is None]
    if expired:
        raise Conflict(f"{len(expired)} of the {len(files)} files have no content left (retention purged it: "
                       f"{_listed(expired)}); nothing was restored")
    for path, _, file_id, content in files:
        # What the run deleted, even if the path was used and emptied again since: nothing live is replaced.
        restore(db, run.folder_id, path, content, UNDO_DEVICE, quota=quota, file_id=file_id)
    db.execute("UPDATE deletion_runs SET undone_at = ? WHERE id = ?", [time.time(), run_id])
    return _run(db, run_id)


_SELECT = """SELECT r.id, r.folder_id, f.name, f.owner, r.user, r.device, r.started_at, r.last_at, r.files,
                    r.tracked, r.flagged_at, r.undone_at
             FROM deletion_runs r JOIN folders f ON f.id = r.folder_id"""


def _run(db: sqlite_utils.Database, run_id: int) -> DeletionRun:
    return DeletionRun(*db.execute(f"{_SELECT} WHERE r.id = ?", [run_id]).fetchone())


def _device(db: sqlite_utils.Database, credential: int) -> str:
    row = db.execute("SELECT label FROM app_passwords WHERE id = ?", [credential]).fetchone()
    return row[0] if row else ACCOUNT_PASSWORD_LABEL


def _listed(paths: list[str]) -> str:
    more = len(paths) - MAX_PATHS_LISTED
    return ", ".join(paths[:MAX_PATHS_LISTED]) + (f" and {more} more" if more > 0 else "")
