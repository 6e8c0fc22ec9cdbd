"""The thumbnails the Nextcloud apps show in a folder listing and a photo grid.

Three addresses, all answered from core.preview_cache (drawn once per content and size):
- `GET /index.php/core/preview?fileId=ID&x=&y=&a=1&mode=cover&forceIcon=0`: Android
  (ThumbnailsCacheManager, getPreviewEndpoint) and iOS (NextcloudKit downloadPreview, which adds
  `mimeFallback=0&etag=…` and sends `If-None-Match` with the ETag of the thumbnail it kept);
- `GET /index.php/core/preview.png?file=/PATH&x=&y=&a=1`: the same by path (older apps, Talk);
- `GET /index.php/apps/files/api/v1/thumbnail/X/Y/PATH`: Android's small thumbnails of a file.

Only the files a user can read (their own folders and those shared with them) have thumbnails for
them: another user's file id answers 404, exactly as an id that names nothing. A file that is no
picture hearth draws is 404 too, which the apps show as the file type's icon; nc:has-preview tells
them beforehand (ncprops). `forceIcon` and `mimeFallback` ask the server for an icon instead: hearth
has none to give, so they change nothing. Once a day the thumbnails of files deleted or replaced since
(an erased account's included) are removed (`prune`).
"""
from __future__ import annotations

import asyncio
import json
import logging

import sqlite_utils
from aiohttp import web

from services.core.auth import require_user
from services.core.errors import BadRequest
from services.core.http import CONFIG, DATABASE
from services.core.periodic import periodic_context
from services.core.preview_cache import PREVIEWS, open_previews, preview_limits
from services.core.previews import NoPreview, PreviewSize, can_preview, media_type, parse_size
from services.core.tree import content_digest, list_folders
from services.core.user_content import SANDBOX

from .context import STORE, etag_listed, resource_at
from .namespace import decode_segments, locate
from .resources import Resource, file_by_id

THUMBNAIL_PREFIX = "/index.php/apps/files/api/v1/thumbnail/"
CACHE_CONTROL = "private, max-age=86400"  # as Nextcloud: the ETag changes with the content anyway
PRUNE_INTERVAL = 24 * 3600
log = logging.getLogger("files")


def _file_id(value: str | None) -> int:
    if not value or not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise BadRequest("fileId must be a file's id (oc:fileid), a whole number")
    return int(value)


def readable_by_id(db: sqlite_utils.Database, user: str, file_id: int) -> Resource | None:
    """The file with that id if `user` can read it (their folder or one shared with them), else None."""
    found = file_by_id(db, file_id)
    if found is None or found[0] not in {folder.id for folder in list_folders(db, user)}:
        return None
    return found[1]


def readable_at(db: sqlite_utils.Database, user: str, segments: list[str]) -> Resource | None:
    """What lives at that path of the user's tree (as /remote.php/dav/files/USER/ names it), or None."""
    if not segments:
        return None
    return resource_at(db, locate(db, user, [user, *segments]))


async def by_file_id(request: web.Request) -> web.StreamResponse:
    identity = await require_user(request)
    size = parse_size(request.query)
    file_id = _file_id(request.query.get("fileId"))
    resource = await request.config_dict[DATABASE].read(lambda db: readable_by_id(db, identity.user, file_id))
    return await _answer(request, resource, size, f"no file with id {file_id} that you can read")


async def by_path(request: web.Request) -> web.StreamResponse:
    identity = await require_user(request)
    size = parse_size(request.query)
    path = request.query.get("file", "")
    segments = [part for part in path.split("/") if part]
    if not segments or any(part in (".", "..") or "\\" in part or "\x00" in part for part in segments):
        raise BadRequest("file must be a path in your files, such as /Photos/beach.jpg")
    resource = await request.config_dict[DATABASE].read(lambda db: readable_at(db, identity.user, segments))
    return await _answer(request, resource, size, f"nothing at {path[:200]!r}")


async def thumbnail(request: web.Request) -> web.StreamResponse:
    """Android's /apps/files/api/v1/thumbnail/X/Y/PATH: the box in the URL, the picture kept whole."""
    identity = await require_user(request)
    raw = request.raw_path.split("?", 1)[0][len(THUMBNAIL_PREFIX):]
    x, _, rest = raw.partition("/")
    y, _, path = rest.partition("/")
    size = parse_size({"x": x, "y": y, "a": "1"})
    segments = decode_segments(path.strip("/"))
    resource = await request.config_dict[DATABASE].read(lambda db: readable_at(db, identity.user, segments))
    return await _answer(request, resource, size, "nothing at that path")


async def _answer(request: web.Request, resource: Resource | None, size: PreviewSize,
                  missing: str) -> web.StreamResponse:
    if resource is None or resource.is_collection:
        raise NoPreview(missing)
    if not can_preview(resource.name):
        raise NoPreview(f"{resource.name!r} is not a picture hearth draws thumbnails of")
    previews = request.config_dict[PREVIEWS]
    etag = previews.etag_of(resource.chunks, size)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, **SANDBOX}
    if etag_listed(request.headers.get("If-None-Match", ""), etag):
        return web.Response(status=304, headers=headers)
    data = await previews.thumbnail(resource.chunks, size)
    return web.Response(body=data, content_type=media_type(data), headers=headers)


def current_contents(db: sqlite_utils.Database) -> set[str]:
    """The content digest of every current file that may have thumbnails: what prune keeps."""
    return {content_digest(json.loads(chunks)) for path, chunks in
            db.execute("SELECT path, chunks FROM entries WHERE deleted = 0 AND kind = 'file'")
            if can_preview(path)}


async def prune(app: web.Application) -> None:
    """Remove the thumbnails of deleted and replaced files (and of erased accounts' files)."""
    live = await app[DATABASE].read(current_contents)
    gone = await asyncio.to_thread(app[PREVIEWS].prune, live)
    if gone:
        log.info("thumbnails of %d contents no current file has removed", gone)


async def _previews_context(app: web.Application):
    app[PREVIEWS] = open_previews(app[CONFIG], app[STORE])
    yield
    await asyncio.to_thread(app[PREVIEWS].close)


def add_routes(app: web.Application) -> None:
    preview_limits(app[CONFIG])  # a wrong limit stops the daemon at start (exit 2), not at the first photo
    app.cleanup_ctx.append(_previews_context)
    app.cleanup_ctx.append(periodic_context(PRUNE_INTERVAL, prune, log, "thumbnail pruning"))
    app.router.add_get("/index.php/core/preview", by_file_id)
    app.router.add_get("/index.php/core/preview.png", by_path)
    app.router.add_get(THUMBNAIL_PREFIX + "{tail:.+}", thumbnail)
