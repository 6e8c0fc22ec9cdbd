"""Many commits in one request: POST /sync/v1/folders/{id}/commits.

A client that finished scanning has hundreds of small files to commit; one
round trip and one write transaction for all of them beats one each. Each item
runs inside its own SAVEPOINT, so a stale or invalid item rolls back only
itself and is reported in its place, while the others are committed.
"""
from __future__ import annotations

from typing import Literal

import sqlite_utils
from aiohttp import web
from pydantic import BaseModel, Field

from services.core.errors import HTTPError
from services.core.http import read_json
from services.core.routing import Route, respond
from services.core.tree import BlobStore, MissingChunks, StaleRevision

from .common import FOLDER_ID, PREFIX, STORE, RevisionOut, folder_for, quota_bytes, write_folder
from .journal import CommitIn, commit_from, with_current

MAX_COMMITS = 1000


class CommitsIn(BaseModel):
    commits: list[CommitIn] = Field(min_length=1, max_length=MAX_COMMITS)


class Committed(BaseModel):
    ok: Literal[True] = True
    revision: RevisionOut


class Rejected(BaseModel):
    ok: Literal[False] = False
    status: int = Field(description="what POST .../commit would have answered: 409, 400, 507 or 404")
    error: str
    reason: str
    current: RevisionOut | None = Field(description="the path's current revision (a stale item, 409)")
    missing: list[str] = Field(description="chunks to upload first (400)")


class CommitsOut(BaseModel):
    results: list[Committed | Rejected] = Field(description="one per item, in request order")


def _rejected(db: sqlite_utils.Database, folder: int, error: HTTPError) -> Rejected:
    current = with_current(db, folder, error) if isinstance(error, StaleRevision) else None
    return Rejected(status=error.status, error=error.code, reason=error.reason,
                    current=RevisionOut.of(current) if current else None,
                    missing=error.missing if isinstance(error, MissingChunks) else [])


def _commit_each(db: sqlite_utils.Database, user: str, folder: int, items: list[CommitIn], store: BlobStore,
                 quota: int | None) -> list[Committed | Rejected]:
    results: list[Committed | Rejected] = []
    for item in items:
        db.execute("SAVEPOINT batch_item")
        try:
            revision = commit_from(db, user, folder, item, store, quota)
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
    results = await write_folder(request, lambda db: _commit_each(db, user, folder, body.commits, store, quota))
    return respond(CommitsOut(results=results))


ROUTES = (
    Route("POST", f"{PREFIX}/folders/{{id}}/commits", post_commits,
          "Several commits in one transaction; each succeeds or fails on its own, reported in order "
          "as POST .../commit would have answered it", tag="journal",
          body=CommitsIn, response=CommitsOut, errors=(403, 404), path_params={"id": FOLDER_ID}),
)
