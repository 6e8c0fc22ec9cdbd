"""Folders and shares: GET/POST /sync/v1/folders, POST /sync/v1/folders/{id}/shares."""
from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from services.core.auth import require_user
from services.core.http import DATABASE, read_json
from services.core.routing import Route, int_param, respond
from services.core.errors import NotFound
from services.core.tree import Folder, folder_access, list_folders, open_or_create_folder, share_folder

from .common import FOLDER_ID, PREFIX


class FolderOut(BaseModel):
    id: int
    owner: str
    name: str
    created_at: str
    seq: int = Field(description="the folder's latest change sequence number (a change-feed cursor)")
    access: Literal["owner", "rw", "ro"]

    @classmethod
    def of(cls, folder: Folder) -> "FolderOut":
        return cls(id=folder.id, owner=folder.owner, name=folder.name, created_at=folder.created_at,
                   seq=folder.seq, access=folder.access)


class NewFolder(BaseModel):
    name: str = Field(min_length=1, max_length=255)


class ShareIn(BaseModel):
    user: str = Field(min_length=1)
    mode: Literal["ro", "rw"] | None = Field(description="'ro', 'rw', or null to revoke")


class ShareOut(BaseModel):
    folder: int
    user: str
    mode: Literal["ro", "rw"] | None


async def get_folders(request: web.Request) -> web.Response:
    identity = await require_user(request)
    folders = await request.app[DATABASE].read(lambda db: list_folders(db, identity.user))
    return respond([FolderOut.of(f) for f in folders])


async def post_folder(request: web.Request) -> web.Response:
    """Create-or-open: devices started at once on a new folder all get the same one."""
    identity = await require_user(request)
    body = await read_json(request, NewFolder)
    folder, created = await request.app[DATABASE].write(
        lambda db: open_or_create_folder(db, identity.user, body.name))
    return respond(FolderOut.of(folder), status=201 if created else 200)


async def post_share(request: web.Request) -> web.Response:
    identity = await require_user(request)
    folder = int_param(request, "id")
    body = await read_json(request, ShareIn)

    def share(db):
        folder_access(db, identity.user, folder)  # NotFound for folders the user cannot see
        if db.execute("SELECT 1 FROM users WHERE name = ?", [body.user]).fetchone() is None:
            raise NotFound(f"no user {body.user!r}")
        share_folder(db, identity.user, folder, body.user, body.mode)  # Forbidden unless the owner

    await request.app[DATABASE].write(share)
    return respond(ShareOut(folder=folder, user=body.user, mode=body.mode))


ROUTES = (
    Route("GET", f"{PREFIX}/folders", get_folders, "Folders the user owns or that are shared with them",
          tag="folders", response=FolderOut, many=True),
    Route("POST", f"{PREFIX}/folders", post_folder, "Create a folder, or open the one of yours by that name "
          "(201 when created, 200 with the existing folder: devices can start in any order)", tag="folders",
          body=NewFolder, response=FolderOut, status=201),
    Route("POST", f"{PREFIX}/folders/{{id}}/shares", post_share,
          "Share a folder read-only or read-write with a user, or revoke (owner only)", tag="folders",
          body=ShareIn, response=ShareOut, errors=(403, 404), path_params={"id": FOLDER_ID}),
)
