"""MKCOL and DELETE, through the journal: sync clients see them, deleted files go to the trash (a
deleted top-level folder goes to its owner's trash of folders, see top_folders). Each DELETE's files
join the device's run of deletions in the folder, and a run that empties most of it is recorded as a
mass deletion, undone in one step (services/core/tree/deletion_runs.py)."""
from __future__ import annotations

import logging

import sqlite_utils
from aiohttp import web

from services.core.errors import Conflict, MethodNotAllowed, UnsupportedMediaType
from services.core.tree import create_folder, delete, mkdir
from services.core.tree.deletion_runs import DeletionRun, folder_seq, note_deletions
from services.core.tree.stamps import dav_id_of

from . import locks
from .context import DEVICE, Call, call_of, check_http_conditions, check_if, check_locks, existing, writable
from .namespace import Location
from .properties import drop_properties
from .resources import descendants, lookup
from .top_folders import delete_top_folder

log = logging.getLogger("files")


async def mkcol(request: web.Request) -> web.StreamResponse:
    call = await call_of(request)
    if await request.content.read(1):
        raise UnsupportedMediaType("MKCOL with a body is not supported")

    def make(db: sqlite_utils.Database) -> str:
        location = call.locate(db)
        if location.is_root or location.is_folder and location.folder is not None:
            raise MethodNotAllowed(f"{location.href(True)} already exists")
        if location.folder is None:  # a new top-level name: a new folder of the user's own
            if location.in_root_files:
                raise Conflict(f"no collection {location.parent_path} to create {location.path} in")
            return dav_id_of(db, create_folder(db, call.user, location.top).id, "")
        folder = writable(db, call, location)
        if lookup(db, folder, location.path) is not None:
            raise MethodNotAllowed(f"{location.path} already exists")
        parent = location.parent_path
        if parent and ((above := lookup(db, folder, parent)) is None or not above.is_collection):
            raise Conflict(f"no collection {parent} to create {location.path} in")
        check_if(db, call, location, None)
        check_locks(db, call, location)
        drop_properties(db, folder, location.path)
        mkdir(db, folder, location.path, DEVICE)
        return dav_id_of(db, folder, location.path)

    # The new directory's oc:id: the Nextcloud desktop records it without asking again.
    return web.Response(status=201, headers={"OC-FileId": await call.database.write(make)})


# A PUT carrying it (with the value 1) has the folders above its file made first (Nextcloud 32).
AUTO_MKCOL = "X-NC-WebDAV-Auto-Mkcol"


def make_parents(db: sqlite_utils.Database, call: Call, location: Location) -> Location:
    """The folders above `location` that are missing, made as MKCOLs of each would make them
    (X-NC-WebDAV-Auto-Mkcol: 1 on a PUT, which the iOS app's uploads send instead of MKCOLs): a missing
    top-level name becomes a folder of the caller's own, then each directory down to the parent.
    Returns the location resolved again. A file where a directory should be stays a Conflict (mkdir's),
    and nothing is made on a read-only share (writable's)."""
    if location.in_root_files and "/" in location.path:  # a deep path under a name that is no folder
        first = location.path.partition("/")[0]
        if location.folder is None or lookup(db, location.folder.id, first) is None:
            create_folder(db, call.user, first)
            location = call.locate(db)
    if location.folder is None or not location.parent_path:
        return location
    folder = writable(db, call, location)
    parts = location.parent_path.split("/")
    for depth in range(1, len(parts) + 1):
        path = "/".join(parts[:depth])
        if lookup(db, folder, path) is None:
            check_locks(db, call, location.at(path))
            drop_properties(db, folder, path)
            mkdir(db, folder, path, DEVICE)
    return location


def remove_tree(db: sqlite_utils.Database, folder: int, path: str, *, keep_own_lock: bool = False) -> None:
    """Delete what is at `path` (everything below a collection), with its properties and locks (but for
    the lock of `path` itself with `keep_own_lock`: see copymove). An implied directory has no entry of
    its own: its members are deleted one by one."""
    revision = current_revision(db, folder, path)
    if revision is not None:
        delete(db, folder, path, revision, DEVICE)
    else:
        for member in descendants(db, folder, path):
            still = current_revision(db, folder, member.path)  # None once deleted with a directory above it
            if still is not None:
                delete(db, folder, member.path, still, DEVICE)
    drop_properties(db, folder, path)
    locks.drop_below(db, folder, path, keep_own=keep_own_lock)


def current_revision(db: sqlite_utils.Database, folder: int, path: str) -> int | None:
    """The revision of the live entry at `path`, None when there is none (nor for an implied directory)."""
    row = db.execute("SELECT revision_id FROM entries WHERE folder_id = ? AND path = ? AND deleted = 0",
                     [folder, path]).fetchone()
    return row[0] if row else None


async def delete_resource(request: web.Request) -> web.StreamResponse:
    call = await call_of(request)

    def remove(db: sqlite_utils.Database) -> DeletionRun | None:
        location = call.locate(db)
        resource = existing(db, location)
        if location.path == "":
            delete_top_folder(db, call, location, resource)
            return None
        folder = writable(db, call, location)
        check_if(db, call, location, resource)
        check_http_conditions(request, resource, safe=False)
        check_locks(db, call, location, below=True)
        before = folder_seq(db, folder)
        remove_tree(db, folder, location.path)
        return note_deletions(db, folder, call.user, call.credential, before)

    # Never refused for being many: the client has its own prompt, and a refused DELETE makes it retry forever.
    flagged = await call.database.write(remove)
    if flagged is not None:
        log.warning("mass deletion %d: %s; every file is in the trash, undo with: hearth trash undo %s %d",
                    flagged.id, flagged.summary, flagged.user, flagged.id)
    return web.Response(status=204)
