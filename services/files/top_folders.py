"""DELETE and MOVE of a top-level folder (/files/USER/NAME/): the folder goes to its owner's trash, or
takes a new name. Both are the sync folder's own delete and rename (services/core/tree/lifecycle), so
devices follow and nothing is lost: a deleted folder is restored from the sync tools or the web UI."""
from __future__ import annotations

import sqlite_utils

from services.core.errors import Conflict, Forbidden, PreconditionFailed
from services.core.tree import delete_folder, rename_folder

from . import locks
from .context import Call, check_http_conditions, check_if, check_locks
from .namespace import Location
from .resources import Resource


def _check_conditions(db: sqlite_utils.Database, call: Call, location: Location, resource: Resource) -> None:
    check_if(db, call, location, resource)
    check_http_conditions(call.request, resource, safe=False)
    check_locks(db, call, location, below=True)


def delete_top_folder(db: sqlite_utils.Database, call: Call, location: Location, resource: Resource) -> None:
    """Move the folder to the owner's trash (Forbidden for a folder shared with the caller)."""
    _check_conditions(db, call, location, resource)
    delete_folder(db, call.user, location.folder.id)
    locks.drop_below(db, location.folder.id, "")


def rename_top_folder(db: sqlite_utils.Database, call: Call, src: Location, resource: Resource, dst: Location,
                      overwrite: bool) -> bool:
    """MOVE /files/USER/OLD/ to /files/USER/NEW/: a rename. An existing NEW is never merged into or
    replaced: 412 with Overwrite: F (RFC 4918 §9.9.3), 409 otherwise. Returns False (nothing replaced)."""
    if dst.folder is not None:
        if dst.folder.id == src.folder.id:
            raise Forbidden("the destination is the source")
        if not overwrite:
            raise PreconditionFailed(f"{dst.top!r} exists and Overwrite is F")
        raise Conflict(f"a folder named {dst.top!r} exists; folders are renamed, never merged or replaced")
    _check_conditions(db, call, src, resource)
    rename_folder(db, call.user, src.folder.id, dst.top)
    return False


def is_folder_rename(src: Location, dst: Location) -> bool:
    """Whether a MOVE names a folder and a new top-level name for it."""
    return src.folder is not None and src.path == "" and dst.top is not None and dst.path == ""
