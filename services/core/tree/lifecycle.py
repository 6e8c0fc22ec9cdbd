"""Renaming a folder, deleting it to the trash, restoring it, and purging it once retention runs out.

A folder's id is what devices and shares hold on to; its name is a label. So a
rename changes one row: shares, share links, locks and every device's cursor
stay valid. A delete is just as small and just as reversible: the folder is
marked deleted and leaves every listing; its journal is untouched (nothing is
sent to devices as file deletions, so no device wipes its copy), its files stop
counting against the quota, and its shares grant nothing. Restoring clears the
mark and everything is as it was, shares included. The sync daemon purges
folders deleted longer than `[sync] keep_versions_days` ago.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from ..errors import Conflict, Forbidden, NotFound
from .clock import stamp, utcnow
from .folders import (Folder, FolderDeleted, QuotaExceeded, _folder, _row, check_folder_name, deleted_reason,
                      usage)


@dataclass(frozen=True)
class DeletedFolder:
    id: int
    name: str
    deleted_at: str
    files: int  # live files when it was deleted
    size: int   # their bytes


def _owned(db: sqlite_utils.Database, owner: str, folder_id: int) -> dict:
    """The folder's row once `owner` is its owner: NotFound for folders they cannot see, Forbidden for a
    folder shared with them (only the owner renames or deletes a folder)."""
    try:
        row = _row(db, folder_id)
    except NotFound:
        raise NotFound(f"no folder {folder_id}") from None
    if row["owner"] != owner:
        shared = db.execute("SELECT 1 FROM folder_shares WHERE folder_id = ? AND grantee = ?",
                            [folder_id, owner]).fetchone()
        if shared is None:
            raise NotFound(f"no folder {folder_id}")
        raise Forbidden(f"only {row['owner']} can rename, delete or restore the folder {row['name']!r}")
    return row


def _check_free(db: sqlite_utils.Database, owner: str, name: str) -> None:
    if db.execute("SELECT 1 FROM folders WHERE owner = ? AND name = ? AND deleted_at IS NULL",
                  [owner, name]).fetchone():
        raise Conflict(f"{owner} already has a folder named {name!r}; folders are never merged")


def folder_by_name(db: sqlite_utils.Database, owner: str, name: str, *, deleted: bool = False) -> int:
    """The id of the owner's live folder by that name, or with `deleted` their most recently deleted one."""
    row = db.execute(f"""SELECT id FROM folders WHERE owner = ? AND name = ? AND deleted_at IS
                         {'NOT NULL ORDER BY deleted_at DESC' if deleted else 'NULL'} LIMIT 1""",
                     [owner, name]).fetchone()
    if row is None:
        raise NotFound(f"{owner} has no {'deleted ' if deleted else ''}folder named {name!r}")
    return row[0]


def rename_folder(db: sqlite_utils.Database, owner: str, folder_id: int, new_name: str) -> Folder:
    """Give a live folder a new name. Conflict if the owner has a live folder by that name (never a
    merge), BadRequest for an invalid name, FolderDeleted for a folder in the trash."""
    row = _owned(db, owner, folder_id)
    _live(row)
    new_name = check_folder_name(new_name)
    if new_name != row["name"]:
        _check_free(db, owner, new_name)
        db.execute("UPDATE folders SET name = ? WHERE id = ?", [new_name, folder_id])
    return _folder(_row(db, folder_id), "owner")


def delete_folder(db: sqlite_utils.Database, owner: str, folder_id: int) -> DeletedFolder:
    """Move a live folder to the owner's trash."""
    row = _owned(db, owner, folder_id)
    _live(row)
    db.execute("UPDATE folders SET deleted_at = ? WHERE id = ?", [utcnow(), folder_id])
    return _deleted(db, _row(db, folder_id))


def restore_folder(db: sqlite_utils.Database, owner: str, folder_id: int, name: str | None = None, *,
                   quota: int | None = None) -> Folder:
    """Bring a deleted folder back as it was (files, shares, links), under its name or `name`.
    Conflict if that name is taken by a live folder; NotFound if the folder is not deleted;
    QuotaExceeded if its files would push the owner over `quota` (they stopped counting when it was deleted)."""
    row = _owned(db, owner, folder_id)
    if row["deleted_at"] is None:
        raise NotFound(f"the folder {row['name']!r} is not deleted")
    name = check_folder_name(name) if name else row["name"]
    _check_free(db, owner, name)
    if quota is not None:
        size = db.execute("SELECT COALESCE(SUM(size), 0) FROM entries WHERE folder_id = ? AND deleted = 0 "
                          "AND kind = 'file'", [folder_id]).fetchone()[0]
        after = usage(db, owner) + size
        if after > quota:
            raise QuotaExceeded(f"restoring {row['name']!r} would make {owner} use {after} bytes, "
                                f"over the quota of {quota}; free some space first")
    db.execute("UPDATE folders SET deleted_at = NULL, name = ? WHERE id = ?", [name, folder_id])
    return _folder(_row(db, folder_id), "owner")


def deleted_folders(db: sqlite_utils.Database, owner: str) -> list[DeletedFolder]:
    """The owner's folders in the trash, most recently deleted first."""
    rows = db.query("SELECT * FROM folders WHERE owner = ? AND deleted_at IS NOT NULL ORDER BY deleted_at DESC",
                    [owner])
    return [_deleted(db, row) for row in rows]


def purge_deleted_folders(db: sqlite_utils.Database, deleted_before: datetime, *, limit: int = 1) -> int:
    """Erase folders deleted before `deleted_before` with everything they hold (their chunks become garbage
    for collect_chunks); at most `limit` per call, since a folder can hold many entries. Call inside write()."""
    ids = [row[0] for row in db.execute(
        "SELECT id FROM folders WHERE deleted_at IS NOT NULL AND deleted_at < ? ORDER BY deleted_at LIMIT ?",
        [stamp(deleted_before), limit]).fetchall()]
    for folder_id in ids:
        db.execute("DELETE FROM folders WHERE id = ?", [folder_id])  # entries, revisions, shares cascade
    return len(ids)


def _live(row: dict) -> None:
    if row["deleted_at"] is not None:
        raise FolderDeleted(deleted_reason(row))


def _deleted(db: sqlite_utils.Database, row: dict) -> DeletedFolder:
    files, size = db.execute("""SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries
                                WHERE folder_id = ? AND deleted = 0 AND kind = 'file'""", [row["id"]]).fetchone()
    return DeletedFolder(row["id"], row["name"], row["deleted_at"], files, size)
