"""Many commits and deletes in one request: POST /sync/v1/folders/{id}/commits.

A client that finished scanning has hundreds of small files to commit, or a
confirmed deletion of thousands to send; one round trip and one write
transaction for all of them beats one each (and a household's devices behind
one address never look like a flood). Each item runs inside its own SAVEPOINT,
so a stale or invalid item rolls back only itself and is reported in its
place, while the others are applied.
"""
from __future__ import annotations

import asyncio
from functools import partial
from typing import Literal

import sqlite_utils
from aiohttp import web
from pydantic import BaseModel, Field, model_validator

from services.core.errors import HTTPError
from services.core.http import read_json
from services.core.routing import Route, respond
from services.core.tree import BlobStore, MissingChunks, Revision, StaleRevision, delete
from services.core.tree.journal import stored_sizes_of
from services.core.tree.recent_chunks import StoredSizes

from .common import (FOLDER_ID, PREFIX, RECENT, STORE, RevisionOut, chunk_deletions, folder_for, quota_bytes,
                     write_folder)
from .journal import CommitIn, DeleteIn, commit_from, with_current

MAX_COMMITS = 1000


class CommitsIn(BaseModel):
    """Commits and deletes for one folder: at least one and at most 1000 items in all."""
    commits: list[CommitIn] = Field([], max_length=MAX_COMMITS, description="applied first, in order")
    deletes: list[DeleteIn] = Field([], max_length=MAX_COMMITS, description=(
        "paths to delete as POST .../delete would, applied after the commits, in order (a directory "
        "after what was below it)"))

    @model_validator(mode="after")
    def _one_to_max(self) -> "CommitsIn":
        count = len(self.commits) + len(self.deletes)
        if not 1 <= count <= MAX_COMMITS:
            raise ValueError(f"between 1 and {MAX_COMMITS} commits and deletes in all, not {count}")
        return self


class Committed(BaseModel):
    ok: Literal[True] = True
    revision: RevisionOut


class Rejected(BaseModel):
    ok: Literal[False] = False
    status: int = Field(description="what POST .../commit or .../delete would have answered: 409, 400, "
                                    "403, 507 or 404")
    error: str
    reason: str
    current: RevisionOut | None = Field(description="the path's current revision (a stale item, 409)")
    missing: list[str] = Field(description="chunks to upload first (400)")


class CommitsOut(BaseModel):
    results: list[Committed | Rejected] = Field(description="one per item: the commits, then the deletes, "
                                                             "each in request order")


def _rejected(db: sqlite_utils.Database, folder: int, error: HTTPError) -> Rejected:
    current = with_current(db, folder, error) if isinstance(error, StaleRevision) else None
    return Rejected(status=error.status, error=error.code, reason=error.reason,
                    current=RevisionOut.of(current) if current else None,
                    missing=error.missing if isinstance(error, MissingChunks) else [])


def _delete_from(db: sqlite_utils.Database, folder: int, item: DeleteIn) -> Revision:
    return delete(db, folder, item.path, item.base_revision, item.device, recursive=item.recursive)


def _apply_each(db: sqlite_utils.Database, user: str, folder: int, body: CommitsIn, store: BlobStore,
                quota: int | None, sizes: StoredSizes) -> list[Committed | Rejected]:
    results: list[Committed | Rejected] = []
    actions = [partial(commit_from, db, user, folder, item, store, quota, sizes) for item in body.commits]
    actions += [partial(_delete_from, db, folder, item) for item in body.deletes]
    for action in actions:
        db.execute("SAVEPOINT batch_item")
        try:
            revision = action()
        except HTTPError as error:
            db.execute("ROLLBACK TO batch_item")  # undo this item only; the transaction goes on
            db.execute("RELEASE batch_item")
            results.append(_rejected(db, folder, error))
            continue
        db.execute("RELEASE batch_item")
        results.append(Committed(revision=RevisionOut.of(revision)))
    return results


async def post_commits(request: web.Request) -> web.Response:
    user, folder = await folder_for(request, write=True)  # a read-only share fails the whole request
    body = await read_json(request, CommitsIn)
    store, quota = request.app[STORE], quota_bytes(request)
    # Every chunk's stored size in one call before the transaction: the writer never waits on the store.
    sizes = await asyncio.to_thread(stored_sizes_of, store, [item.chunks for item in body.commits],
                                    request.app[RECENT], await chunk_deletions(request))
    results = await write_folder(request, lambda db: _apply_each(db, user, folder, body, store, quota, sizes))
    return respond(CommitsOut(results=results))


ROUTES = (
    Route("POST", f"{PREFIX}/folders/{{id}}/commits", post_commits,
          "Several commits and deletes in one transaction; each succeeds or fails on its own, reported "
          "in order as POST .../commit or POST .../delete would have answered it", tag="journal",
          body=CommitsIn, response=CommitsOut, errors=(403, 404), path_params={"id": FOLDER_ID}),
)
