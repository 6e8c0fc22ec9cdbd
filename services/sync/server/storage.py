"""What a user keeps: a folder's trash (GET .../trash) and the bytes they use (GET /sync/v1/usage)."""
from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from services.core.auth import require_user
from services.core.http import DATABASE
from services.core.routing import Route, respond
from services.core.tree import trash, usage

from .common import FOLDER_ID, PREFIX, RevisionOut, folder_for, quota_bytes


class TrashItem(BaseModel):
    deleted: RevisionOut = Field(description="the delete marker")
    last: RevisionOut | None = Field(description="the last revision with content (restore it with "
                                                 "POST .../restore); null once expired")


class TrashOut(BaseModel):
    items: list[TrashItem] = Field(description="deleted files, newest deletion first")


class UsageOut(BaseModel):
    user: str
    used_bytes: int = Field(description="current files of the folders the user owns (versions and trash not counted)")
    quota_bytes: int | None = Field(description="null: no quota")


async def get_trash(request: web.Request) -> web.Response:
    _, folder = await folder_for(request)
    found = await request.app[DATABASE].read(lambda db: trash(db, folder))
    return respond(TrashOut(items=[TrashItem(deleted=RevisionOut.of(marker),
                                             last=RevisionOut.of(last) if last else None)
                                   for marker, last in found]))


async def get_usage(request: web.Request) -> web.Response:
    identity = await require_user(request)
    used = await request.app[DATABASE].read(lambda db: usage(db, identity.user))
    return respond(UsageOut(user=identity.user, used_bytes=used, quota_bytes=quota_bytes(request)))


ROUTES = (
    Route("GET", f"{PREFIX}/folders/{{id}}/trash", get_trash,
          "Deleted files of a folder with their last content revision", tag="journal",
          response=TrashOut, errors=(404,), path_params={"id": FOLDER_ID}),
    Route("GET", f"{PREFIX}/usage", get_usage, "Bytes the user stores and their quota", tag="folders",
          response=UsageOut),
)
