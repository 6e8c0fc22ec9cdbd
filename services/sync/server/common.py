"""What the sync routes share: the chunk store, the change feed (feed.py), access checks, models."""
from __future__ import annotations

from typing import Any, Callable, TypeVar

import sqlite_utils
from aiohttp import web
from pydantic import BaseModel

from services.core.auth import require_user
from services.core.http import BLOB_STORE, CONFIG, DATABASE
from services.core.routing import int_param
from services.core.tree import Revision, folder_access
from services.core.tree import quota_bytes as tree_quota_bytes
from services.core.tree.holders import deletion_count
from services.core.tree.recent_chunks import RecentChunks

from .feed import ChangeFeed

T = TypeVar("T")

STORE = BLOB_STORE  # opened by services.core.blobs.blob_store_context

PREFIX = "/sync/v1"
FOLDER_ID = {"type": "integer", "description": "the folder's id"}


FEED = web.AppKey("change_feed", ChangeFeed)
RECENT = web.AppKey("recent_chunks", RecentChunks)  # what this process put lately: no HEAD to commit them


async def chunk_deletions(request: web.Request) -> int:
    """The chunk deletion count now: read before a put or a store lookup that RECENT may spare."""
    return await request.config_dict[DATABASE].read(deletion_count)


def quota_bytes(request: web.Request) -> int | None:
    return tree_quota_bytes(request.config_dict[CONFIG])


async def folder_for(request: web.Request, *, write: bool = False) -> tuple[str, int]:
    """(user, folder id) after checking the user may read (or write) the folder in the path."""
    identity = await require_user(request)
    folder = int_param(request, "id")
    await request.config_dict[DATABASE].read(
        lambda db: folder_access(db, identity.user, folder, write=write))
    return identity.user, folder


async def write_folder(request: web.Request, fn: Callable[[sqlite_utils.Database], T]) -> T:
    """Run a journal change for the folder in the path (write access checked in the same
    transaction), then wake its long polls."""
    identity = await require_user(request)
    folder = int_param(request, "id")

    def run(db: sqlite_utils.Database) -> T:
        folder_access(db, identity.user, folder, write=True)
        return fn(db)

    result = await request.config_dict[DATABASE].write(run)
    request.config_dict[FEED].notify(folder)
    return result


class RevisionOut(BaseModel):
    id: int
    path: str
    seq: int
    kind: str
    deleted: bool
    size: int
    mtime_ns: int
    executable: bool
    chunks: list[tuple[str, int]]
    device: str
    created_at: str | None = None

    @classmethod
    def of(cls, revision: Revision) -> "RevisionOut":
        return cls(id=revision.id, path=revision.path, seq=revision.seq, kind=revision.kind,
                   deleted=revision.deleted, size=revision.size, mtime_ns=revision.mtime_ns,
                   executable=revision.executable, chunks=[tuple(c) for c in revision.chunks],
                   device=revision.device, created_at=revision.created_at)


def model_dump(value: Any) -> Any:
    return value.model_dump(mode="json")
