"""Renaming, deleting and restoring whole folders (the owner's): PATCH/DELETE /sync/v1/folders/{id},
GET /sync/v1/deleted-folders, POST /sync/v1/deleted-folders/{id}/restore.

Every change wakes the folder's long polls, so running devices learn of it at
once: a rename arrives as the folder's new name in the change feed's answers,
a delete as 410 Gone (code folder-deleted) from every folder route.
"""
from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from services.core.auth import require_user
from services.core.http import DATABASE, read_json
from services.core.routing import Route, int_param, respond
from services.core.tree import DeletedFolder, delete_folder, deleted_folders, rename_folder, restore_folder

from .common import FEED, FOLDER_ID, PREFIX, quota_bytes
from .folders import FolderOut


class FolderRename(BaseModel):
    name: str = Field(min_length=1, max_length=255, description="the new name; 409 if you have a folder by it")


class FolderRestore(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=255,
                             description="restore under this name instead (when the old one is taken again)")


class DeletedFolderOut(BaseModel):
    id: int
    name: str
    deleted_at: str
    files: int = Field(description="files it held when deleted (they are restored with it)")
    size: int = Field(description="their bytes")

    @classmethod
    def of(cls, folder: DeletedFolder) -> "DeletedFolderOut":
        return cls(id=folder.id, name=folder.name, deleted_at=folder.deleted_at, files=folder.files,
                   size=folder.size)


async def _change(request: web.Request, fn):
    """Run `fn(db, user, folder id)` in one write transaction, then wake the folder's long polls."""
    identity = await require_user(request)
    folder = int_param(request, "id")
    result = await request.app[DATABASE].write(lambda db: fn(db, identity.user, folder))
    request.app[FEED].notify(folder)
    return result


async def patch_folder(request: web.Request) -> web.Response:
    body = await read_json(request, FolderRename)
    folder = await _change(request, lambda db, user, folder: rename_folder(db, user, folder, body.name))
    return respond(FolderOut.of(folder))


async def delete_folder_route(request: web.Request) -> web.Response:
    deleted = await _change(request, delete_folder)
    return respond(DeletedFolderOut.of(deleted))


async def get_deleted_folders(request: web.Request) -> web.Response:
    identity = await require_user(request)
    found = await request.app[DATABASE].read(lambda db: deleted_folders(db, identity.user))
    return respond([DeletedFolderOut.of(f) for f in found])


async def post_restore_folder(request: web.Request) -> web.Response:
    body = await read_json(request, FolderRestore) if request.can_read_body else FolderRestore()
    quota = quota_bytes(request)
    folder = await _change(request, lambda db, user, folder: restore_folder(db, user, folder, body.name, quota=quota))
    return respond(FolderOut.of(folder))


ROUTES = (
    Route("PATCH", f"{PREFIX}/folders/{{id}}", patch_folder,
          "Rename a folder (owner only); shares, links and every device's sync carry on under the new name. "
          "409 if you already have a folder by that name: folders are never merged", tag="folders",
          body=FolderRename, response=FolderOut, errors=(403, 404, 409, 410), path_params={"id": FOLDER_ID}),
    Route("DELETE", f"{PREFIX}/folders/{{id}}", delete_folder_route,
          "Delete a folder to your trash (owner only): its shares end, devices stop syncing it and keep their "
          "copies; restorable until [sync] keep_versions_days runs out", tag="folders",
          response=DeletedFolderOut, errors=(403, 404, 410), path_params={"id": FOLDER_ID}),
    Route("GET", f"{PREFIX}/deleted-folders", get_deleted_folders, "Your deleted folders, newest first",
          tag="folders", response=DeletedFolderOut, many=True),
    Route("POST", f"{PREFIX}/deleted-folders/{{id}}/restore", post_restore_folder,
          "Restore a deleted folder as it was (files, shares, links), under its name or a new one "
          "(409 if that name is taken)", tag="folders", body=FolderRestore, response=FolderOut,
          errors=(403, 404, 409, 507), path_params={"id": FOLDER_ID}),
)
