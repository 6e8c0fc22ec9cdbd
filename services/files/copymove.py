"""COPY and MOVE (RFC 4918 §9.8, §9.9) inside and between the folders a user can write.

MOVE within a folder is the journal's rename: entries keep their chunk lists,
nothing is uploaded again. COPY, and MOVE between folders, commit the same
chunk lists under the new paths: no byte is copied. Folders themselves (the
top level of a tree) are not copied; a MOVE to a new top-level name renames one
(top_folders).

Locks belong to URLs. A source's locks never travel with it (a MOVE ends them
with the source); a lock on the destination must be submitted (423 otherwise,
§9.9.4), and then keeps covering the destination, now holding what was copied
or moved there: "if there is an existing lock at the destination, the server
MUST add the moved resource to the destination lock scope" (RFC 4918 §7.5).
Apache mod_dav, lighttpd and Go's x/net/webdav keep it too, and clients rely on
it: davfs2 saves an editor's `.name.swp` with a MOVE over the locked `name`,
then refreshes that lock and PUTs the content with its token.
"""
from __future__ import annotations

import sqlite_utils
from aiohttp import web

from services.core.errors import BadRequest, Conflict, Forbidden, PreconditionFailed
from services.core.tree import commit_file, mkdir, rename

from . import locks
from .checksums import carry as carry_checksum
from .collections import current_revision, remove_tree
from .context import DEVICE, Call, call_of, check_http_conditions, check_if, check_locks, existing, writable
from .namespace import Location, placed
from .properties import copy_properties, drop_properties
from .resources import Resource, descendants, lookup
from .top_folders import is_folder_rename, rename_top_folder


def _overwrite(request: web.Request) -> bool:
    value = request.headers.get("Overwrite", "T").strip().upper()
    if value not in ("T", "F"):
        raise BadRequest("Overwrite must be T or F")
    return value == "T"


def _depth(request: web.Request, resource: Resource, move: bool) -> str:
    value = request.headers.get("Depth", "infinity").strip().lower()
    if not resource.is_collection:
        return "0"
    if value == "infinity" or (value == "0" and not move):
        return value
    raise BadRequest(f"Depth {value} is not allowed for {'MOVE' if move else 'COPY'} of a collection")


def _copy(db: sqlite_utils.Database, src: Location, resource: Resource, dst: Location, depth: str,
          quota: int | None) -> None:
    """Commit the source's entries under the destination, reusing their chunks."""
    items = [resource] + (descendants(db, src.folder.id, src.path) if depth == "infinity" else [])
    for item in items:
        path = dst.path + item.path[len(src.path):]
        if item.is_collection:
            mkdir(db, dst.folder.id, path, DEVICE)
        else:
            commit_file(db, dst.folder.id, path, None, item.chunks, item.size, item.mtime_ns, False, DEVICE,
                        quota=quota)
    copy_properties(db, src.folder.id, src.path, dst.folder.id, dst.path)


def _file_revisions(db: sqlite_utils.Database, location: Location, resource: Resource) -> dict[str, int]:
    """The current revision of each file at or below `location`, by its path relative to it."""
    items = [resource] + (descendants(db, location.folder.id, location.path) if resource.is_collection else [])
    return {item.path[len(location.path):]: item.revision_id for item in items
            if not item.is_collection and item.revision_id is not None}


def _carry_checksums(db: sqlite_utils.Database, sources: dict[str, int], dst: Location) -> None:
    """Each file copied or moved to `dst` holds its source's chunks: it keeps the OC-Checksum they came with."""
    for relative, source_revision in sources.items():
        copied = current_revision(db, dst.folder.id, dst.path + relative)
        if copied is not None:
            carry_checksum(db, source_revision, copied)


def _transfer(call: Call, move: bool):
    request = call.request
    overwrite = _overwrite(request)
    quota = call.quota()

    def run(db: sqlite_utils.Database) -> bool:
        src = call.locate(db)
        resource = existing(db, src)
        dst = call.destination(db)
        if move and is_folder_rename(src, dst):
            _depth(request, resource, move)
            return rename_top_folder(db, call, src, resource, dst, overwrite)
        dst = placed(db, dst)
        if src.folder is None or src.path == "" or dst.path == "":
            raise Forbidden("folders themselves are not copied, nor moved into another folder; a MOVE to a new "
                            "name at the top renames one")
        depth = _depth(request, resource, move)
        if dst.folder is None:
            raise Conflict(f"no folder {dst.top!r} to put the copy in")
        if src.folder.id == dst.folder.id and (dst.path == src.path or dst.path.startswith(src.path + "/")):
            raise Forbidden("the destination is the source or lies inside it")
        writable(db, call, dst)
        if move:
            writable(db, call, src)
        check_if(db, call, src, resource)
        check_http_conditions(request, resource, safe=False)
        if move:
            check_locks(db, call, src, below=True)
        check_locks(db, call, dst, below=True)
        parent = dst.parent_path
        if parent and ((above := lookup(db, dst.folder.id, parent)) is None or not above.is_collection):
            raise Conflict(f"no collection {parent} to put {dst.path} in")
        replaced = lookup(db, dst.folder.id, dst.path)
        if replaced is not None:
            if not overwrite:
                raise PreconditionFailed(f"{dst.path} exists and Overwrite is F")
            remove_tree(db, dst.folder.id, dst.path, keep_own_lock=True)
        moved_files = _file_revisions(db, src, resource)
        if move and src.folder.id == dst.folder.id and resource.revision_id is not None:
            rename(db, src.folder.id, src.path, dst.path, resource.revision_id, DEVICE)
            copy_properties(db, src.folder.id, src.path, dst.folder.id, dst.path)
        else:
            _copy(db, src, resource, dst, depth, quota)
            if move:
                remove_tree(db, src.folder.id, src.path)
        _carry_checksums(db, moved_files, dst)
        if move:
            locks.drop_below(db, src.folder.id, src.path)
            drop_properties(db, src.folder.id, src.path)
        return replaced is not None

    return run


async def copy(request: web.Request) -> web.StreamResponse:
    call = await call_of(request)
    replaced = await call.database.write(_transfer(call, move=False))
    return web.Response(status=204 if replaced else 201)


async def move(request: web.Request) -> web.StreamResponse:
    call = await call_of(request)
    replaced = await call.database.write(_transfer(call, move=True))
    return web.Response(status=204 if replaced else 201)
