"""A folder's journal over HTTP: commit, delete, rename, mkdir, restore, versions, and the change feed."""
from __future__ import annotations

import asyncio

from aiohttp import web
from pydantic import BaseModel, Field

from services.core.errors import BadRequest
from services.core.http import DATABASE, read_json
from services.core.routing import Route, int_param, int_query, number_query, respond
from services.core.tree import (BlobStore, MissingChunks, Revision, StaleRevision, changes_since,
                                commit_file, delete, folder_view, mkdir, rename, restore, versions)
from services.core.tree.journal import stored_sizes_of
from services.core.tree.recent_chunks import StoredSizes

from .common import (FEED, FOLDER_ID, PREFIX, RECENT, STORE, RevisionOut, chunk_deletions, folder_for, quota_bytes,
                     write_folder)
from .folders import FolderOut

MAX_WAIT = 60.0
OTHER_WRITERS_CHECK = 5.0  # seconds; a backstop: other processes' writes wake polls through feed.py's watcher
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000


class CommitIn(BaseModel):
    path: str
    base_revision: int | None = Field(description="the revision the client's copy is based on; null for a new file")
    chunks: list[tuple[str, int]] = Field(description="ordered [chunk id, length] pairs")
    size: int
    mtime_ns: int = 0
    executable: bool = False
    device: str = Field(max_length=200)


class DeleteIn(BaseModel):
    path: str
    base_revision: int | None
    device: str = Field(max_length=200)
    recursive: bool = Field(True, description="false: delete a directory only if nothing live is left "
                                              "below it (409 '<path> is not empty' otherwise)")


class RenameIn(BaseModel):
    src: str
    dst: str
    base_revision: int | None
    device: str = Field(max_length=200)


class MkdirIn(BaseModel):
    path: str
    device: str = Field(max_length=200)


class RestoreIn(BaseModel):
    path: str
    revision_id: int
    device: str = Field(max_length=200)


class ChangesOut(BaseModel):
    changes: list[RevisionOut] = Field(description="each changed path once, in its latest state, oldest change first")
    cursor: int = Field(description="pass as `since` to continue")
    more: bool = Field(description="another page is waiting (ask again at once)")
    folder: FolderOut = Field(description="the folder as it is now: a device learns a rename from its name")


class VersionsOut(BaseModel):
    path: str
    versions: list[RevisionOut] = Field(description="newest first; delete markers included")


class StaleOut(BaseModel):
    error: str
    reason: str
    current: RevisionOut | None = Field(description="the path's current revision")


def _stale(error: StaleRevision, current) -> web.Response:
    return respond(StaleOut(error="conflict", reason=error.reason,
                            current=RevisionOut.of(current) if current else None), status=409)


def with_current(db, folder: int, error: StaleRevision) -> Revision | None:
    """The revision that made the request stale, read in the same transaction."""
    if error.current is None:
        return None
    return next((r for r in versions(db, folder, error.path) if r.id == error.current), None)


async def _journal_write(request: web.Request, fn) -> web.Response:
    """Run `fn(db, folder)`; a StaleRevision becomes a 409 that carries the current revision."""
    folder = int_param(request, "id")

    def run(db):
        try:
            return fn(db, folder), None
        except StaleRevision as error:
            error.current_revision = with_current(db, folder, error)
            raise

    try:
        revision, _ = await write_folder(request, run)
    except StaleRevision as error:
        return _stale(error, getattr(error, "current_revision", None))
    except MissingChunks as error:
        return web.json_response({"error": error.code, "reason": error.reason, "missing": error.missing},
                                 status=400)
    return respond(RevisionOut.of(revision))


def commit_from(db, user: str, folder: int, body: CommitIn, store: BlobStore, quota: int | None,
                stored_sizes: StoredSizes) -> Revision:
    """One commit as POST .../commit and each item of POST .../commits make it: `user` may name only
    chunks they hold, with their stored lengths (`stored_sizes`, read before the transaction)."""
    return commit_file(db, folder, body.path, body.base_revision, body.chunks, body.size, body.mtime_ns,
                       body.executable, body.device, store=store, quota=quota, committer=user,
                       stored_sizes=stored_sizes)


async def post_commit(request: web.Request) -> web.Response:
    user, _ = await folder_for(request, write=True)
    body = await read_json(request, CommitIn)
    store, quota = request.app[STORE], quota_bytes(request)
    sizes = await asyncio.to_thread(stored_sizes_of, store, [body.chunks], request.app[RECENT],
                                    await chunk_deletions(request))
    return await _journal_write(request, lambda db, folder: commit_from(db, user, folder, body, store, quota,
                                                                        sizes))


async def post_delete(request: web.Request) -> web.Response:
    await folder_for(request, write=True)
    body = await read_json(request, DeleteIn)
    return await _journal_write(request, lambda db, folder: delete(
        db, folder, body.path, body.base_revision, body.device, recursive=body.recursive))


async def post_rename(request: web.Request) -> web.Response:
    await folder_for(request, write=True)
    body = await read_json(request, RenameIn)
    return await _journal_write(request, lambda db, folder: rename(
        db, folder, body.src, body.dst, body.base_revision, body.device))


async def post_mkdir(request: web.Request) -> web.Response:
    await folder_for(request, write=True)
    body = await read_json(request, MkdirIn)
    return await _journal_write(request, lambda db, folder: mkdir(db, folder, body.path, body.device))


async def post_restore(request: web.Request) -> web.Response:
    await folder_for(request, write=True)
    body = await read_json(request, RestoreIn)
    quota = quota_bytes(request)
    return await _journal_write(request, lambda db, folder: restore(
        db, folder, body.path, body.revision_id, body.device, quota=quota))


async def get_changes(request: web.Request) -> web.Response:
    user, folder = await folder_for(request)
    since = int_query(request, "since", 0)
    limit = int_query(request, "limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
    wait = number_query(request, "wait", 0.0, minimum=0.0, maximum=MAX_WAIT)  # never nan or inf
    feed, database = request.app[FEED], request.app[DATABASE]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    named = None
    while True:
        event = feed.event(folder)  # before reading: a commit in between still wakes us

        def read(db):  # a folder deleted meanwhile answers 410 here, a renamed one ends the wait
            return folder_view(db, user, folder), *changes_since(db, folder, since, limit)

        view, changes, cursor, more = await database.read(read)
        remaining = deadline - loop.time()
        if changes or remaining <= 0 or feed.closed or (named is not None and view.name != named):
            break
        named = view.name
        try:
            # Other processes' commits (the files daemons, another sync instance) wake us through the
            # feed's data_version watcher; reading again every OTHER_WRITERS_CHECK is only a backstop.
            await asyncio.wait_for(event.wait(), min(remaining, OTHER_WRITERS_CHECK))
        except TimeoutError:
            pass
    return respond(ChangesOut(changes=[RevisionOut.of(c) for c in changes], cursor=cursor, more=more,
                              folder=FolderOut.of(view)))


async def get_versions(request: web.Request) -> web.Response:
    _, folder = await folder_for(request)
    path = request.query.get("path")
    if not path:
        raise BadRequest("path: required")
    found = await request.app[DATABASE].read(lambda db: versions(db, folder, path))
    return respond(VersionsOut(path=found[0].path if found else path, versions=[RevisionOut.of(r) for r in found]))


def _route(method, name, handler, summary, **kwargs) -> Route:
    return Route(method, f"{PREFIX}/folders/{{id}}/{name}", handler, summary, tag="journal",
                 path_params={"id": FOLDER_ID}, **kwargs)


WRITE_ERRORS = (403, 404, 409, 507)

ROUTES = (
    _route("POST", "commit", post_commit, "Make a path these chunks, if it is still at base_revision "
           "(409 with the current revision if not; 400 with `missing` for chunks you have not uploaded and "
           "cannot read in a folder; 400 for a length other than the stored chunk's)",
           body=CommitIn, response=RevisionOut, errors=WRITE_ERRORS),
    _route("POST", "delete", post_delete, "Delete a path (a directory with everything below it, "
           "unless `recursive` is false)",
           body=DeleteIn, response=RevisionOut, errors=(403, 404, 409)),
    _route("POST", "rename", post_rename, "Move a path without re-uploading its content",
           body=RenameIn, response=RevisionOut, errors=(403, 404, 409)),
    _route("POST", "mkdir", post_mkdir, "Create a directory (an existing one is returned as is)",
           body=MkdirIn, response=RevisionOut, errors=(403, 404, 409)),
    _route("POST", "restore", post_restore, "Make an old revision current again, as a new revision",
           body=RestoreIn, response=RevisionOut, errors=(403, 404, 409, 507)),
    _route("GET", "changes", get_changes, "The change feed: paths changed after `since`; with `wait`, "
           "a long poll that returns as soon as the folder changes or is renamed; 410 once it is deleted",
           response=ChangesOut, errors=(404, 410),
           query_params={
               "since": {"type": "integer", "minimum": 0, "description": "cursor from the last answer (0: everything)"},
               "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "description": "page size (default 1000)"},
               "wait": {"type": "number", "minimum": 0, "maximum": MAX_WAIT,
                        "description": "seconds to wait for a change when there is none yet (at most 60)"},
           }),
    _route("GET", "versions", get_versions, "Every kept revision of a path, newest first",
           response=VersionsOut, errors=(404,),
           query_params={"path": {"type": "string", "description": "the path, relative to the folder"}}),
)
