"""Synced folders, who may use them, and how much the owner stores."""
from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from ..errors import BadRequest, Conflict, Forbidden, HTTPError, NotFound
from . import stamps
from .clock import utcnow
from .paths import name_problem

ACCESS_MODES = ("ro", "rw")

ROOT_FILES = "Root files"  # the user's folder whose members the WebDAV and Nextcloud views list at the top


class FolderDeleted(HTTPError):
    """410 Gone: the folder is in its owner's trash; its shares grant nothing until it is restored."""

    status, code = 410, "folder-deleted"


class QuotaExceeded(HTTPError):
    """The folder owner's quota would be exceeded: 507 Insufficient Storage (RFC 4918 §11.5)."""

    status, code = 507, "insufficient-storage"


@dataclass(frozen=True)
class Folder:
    id: int
    owner: str
    name: str
    created_at: str
    seq: int
    access: str  # 'owner' | 'rw' | 'ro', as seen by whoever asked


def _folder(row, access: str) -> Folder:
    return Folder(row["id"], row["owner"], row["name"], row["created_at"], row["seq"], access)


def check_folder_name(name: str | None) -> str:
    """The name stripped; BadRequest for a blank name, one with '/', or one paths.name_problem refuses."""
    name = (name or "").strip()
    if not name or "/" in name:
        raise BadRequest(f"invalid folder name: {name!r}")
    if problem := name_problem(name):
        raise BadRequest(f"invalid folder name: {problem}")
    return name


def create_folder(db: sqlite_utils.Database, owner: str, name: str) -> Folder:
    """A new empty folder. BadRequest for an invalid name; Conflict if the owner has one by that name."""
    folder, created = open_or_create_folder(db, owner, name)
    if not created:
        raise Conflict(f"{owner} already has a folder named {folder.name!r}")
    return folder


def open_or_create_folder(db: sqlite_utils.Database, owner: str, name: str) -> tuple[Folder, bool]:
    """The owner's live folder by that name, made if there is none: (folder, created).

    Create-or-open in one statement of the caller's write transaction, so devices
    started at the same moment on a new folder all join the one folder.
    BadRequest for an invalid name (see check_folder_name).
    """
    name = check_folder_name(name)
    inserted = db.execute("""INSERT INTO folders (owner, name, created_at) VALUES (?, ?, ?)
                             ON CONFLICT (owner, name) WHERE deleted_at IS NULL DO NOTHING RETURNING id""",
                          [owner, name, utcnow()]).fetchone()
    if inserted is not None:
        stamps.start_folder(db, inserted[0], owner)
        return _folder(_row(db, inserted[0]), "owner"), True
    existing = db.execute("SELECT id FROM folders WHERE owner = ? AND name = ? AND deleted_at IS NULL",
                          [owner, name]).fetchone()
    return _folder(_row(db, existing[0]), "owner"), False


def _row(db: sqlite_utils.Database, folder_id: int):
    cursor = db.execute("SELECT * FROM folders WHERE id = ?", [folder_id])
    columns = [c[0] for c in cursor.description]
    row = cursor.fetchone()
    if row is None:
        raise NotFound(f"no folder {folder_id}")
    return dict(zip(columns, row))


def list_folders(db: sqlite_utils.Database, user: str) -> list[Folder]:
    """The user's own folders and those shared with them, with the access they have (not deleted ones)."""
    own = db.query("SELECT * FROM folders WHERE owner = ? AND deleted_at IS NULL ORDER BY name, id", [user])
    shared = db.query("""
        SELECT f.*, s.mode FROM folders f JOIN folder_shares s ON s.folder_id = f.id
        WHERE s.grantee = ? AND f.deleted_at IS NULL ORDER BY f.owner, f.name, f.id""", [user])
    return [_folder(r, "owner") for r in own] + [_folder(r, r["mode"]) for r in shared]


def share_folder(db: sqlite_utils.Database, owner: str, folder_id: int, grantee: str,
                 mode: str | None) -> None:
    """Grant `grantee` 'ro' or 'rw' access (replacing any earlier grant); mode None revokes.

    NotFound if there is no such folder, Forbidden unless `owner` owns it,
    BadRequest for an unknown mode or sharing with oneself.
    """
    row = _row(db, folder_id)
    if row["owner"] != owner:
        raise Forbidden("only the owner can share a folder")
    if row["deleted_at"] is not None:
        raise FolderDeleted(deleted_reason(row))
    if grantee == owner:
        raise BadRequest("cannot share a folder with its owner")
    if mode is None:
        db.execute("DELETE FROM folder_shares WHERE folder_id = ? AND grantee = ?", [folder_id, grantee])
        return
    if mode not in ACCESS_MODES:
        raise BadRequest(f"share mode must be 'ro' or 'rw', not {mode!r}")
    stamps.ensure_root(db, grantee)
    db.execute("""INSERT INTO folder_shares (folder_id, grantee, mode) VALUES (?, ?, ?)
                  ON CONFLICT (folder_id, grantee) DO UPDATE SET mode = excluded.mode""",
               [folder_id, grantee, mode])


def folder_access(db: sqlite_utils.Database, user: str, folder_id: int, *, write: bool = False) -> str:
    """'owner', 'rw' or 'ro'. NotFound if no such folder or the user cannot see it
    (so folder ids don't leak), FolderDeleted (410) if it is in the owner's trash (told to the
    owner and to those it was shared with), Forbidden if `write` is asked for on a read-only share."""
    try:
        row = _row(db, folder_id)
    except NotFound:
        raise NotFound(f"no folder {folder_id}") from None
    share = None if row["owner"] == user else db.execute(
        "SELECT mode FROM folder_shares WHERE folder_id = ? AND grantee = ?", [folder_id, user]).fetchone()
    if row["owner"] != user and share is None:
        raise NotFound(f"no folder {folder_id}")
    if row["deleted_at"] is not None:
        raise FolderDeleted(deleted_reason(row))
    if share is None:
        return "owner"
    if write and share[0] != "rw":
        raise Forbidden("this folder is shared read-only with you")
    return share[0]


def folder_view(db: sqlite_utils.Database, user: str, folder_id: int) -> Folder:
    """The folder as `user` sees it (its current name, their access); the errors of folder_access."""
    access = folder_access(db, user, folder_id)
    return _folder(_row(db, folder_id), access)


def deleted_reason(row: dict) -> str:
    """Why a deleted folder cannot be used, in one line for whoever had it."""
    return (f"{row['owner']} deleted the folder {row['name']!r} on {row['deleted_at'][:16].replace('T', ' ')} UTC; "
            f"its shares ended; it can be restored from {row['owner']}'s deleted folders")


def folder_owner(db: sqlite_utils.Database, folder_id: int) -> str:
    return _row(db, folder_id)["owner"]


def usage(db: sqlite_utils.Database, user: str) -> int:
    """Bytes of the current (not deleted) files in folders the user owns.

    Kept versions and trash (deleted folders included) are not counted; dedup is not subtracted (a file
    stored twice counts twice), so the number is what the user sees in listings.
    """
    return db.execute("""
        SELECT COALESCE(SUM(e.size), 0) FROM entries e JOIN folders f ON f.id = e.folder_id
        WHERE f.owner = ? AND f.deleted_at IS NULL AND e.deleted = 0 AND e.kind = 'file'""", [user]).fetchone()[0]


def check_quota(db: sqlite_utils.Database, folder_id: int, old_size: int, new_size: int,
                quota: int | None) -> None:
    """QuotaExceeded if replacing `old_size` bytes by `new_size` would push the owner over `quota`."""
    if quota is None or new_size <= old_size:
        return
    owner = folder_owner(db, folder_id)
    after = usage(db, owner) - old_size + new_size
    if after > quota:
        raise QuotaExceeded(f"{owner} would use {after} bytes, over the quota of {quota}")


def quota_bytes(config) -> int | None:
    """The per-user quota in bytes, `[sync] quota_mb`, which sync, WebDAV and share-link uploads all
    enforce; None when there is none (0 or less)."""
    mb = config.values["sync"]["quota_mb"]
    return mb * 1024 * 1024 if mb and mb > 0 else None
