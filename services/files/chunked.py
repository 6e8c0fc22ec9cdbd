"""Chunked upload at /remote.php/dav/uploads/USER/ID/, as the Nextcloud apps send big files.

One handler for both variants the clients speak:
- the desktop client 3.7: MKCOL without Destination, chunks `00000000`,
  `00000001`… (8 digits from 0), a final `MOVE …/.file` whose `If` header
  names the destination's ETag when it replaces a file;
- chunking v2 (Android, iOS, newer desktops): MKCOL with Destination, chunks
  numbered from 1 sent with Destination and OC-Total-Length, a final MOVE with
  Destination, OC-Total-Length, X-OC-Mtime and If-Match.

Chunks are kept as files (upload_parts) until the MOVE, which streams them in
numeric order through the same path as a PUT (upload.write_file: the
content-defined chunker into the chunk store, the OC-Checksum and conditions
checked, the journal committed last), so memory stays flat whatever the size.
PROPFIND of the upload folder lists the chunks received, so an interrupted
upload resumes with what is missing; DELETE aborts it. The quota counts the
file once, at the MOVE; meanwhile the chunks a user holds may not exceed their
free quota (507).
"""
from __future__ import annotations

import asyncio
import logging
from email.utils import formatdate
from urllib.parse import quote

from aiohttp import web

from services.core.auth import require_user
from services.core.errors import BadRequest, Forbidden, MethodNotAllowed, NotFound
from services.core.http import CONFIG, DATABASE
from services.core.multistatus import DAV, MultistatusWriter, element, xml_bytes_response
from services.core.periodic import periodic_context
from services.core.tree import QuotaExceeded, quota_bytes, usage

from . import upload_parts
from .context import Call
from .ifheader import parse_if
from .namespace import destination_segments
from .upload import write_file
from .upload_parts import UploadFolders
from .xmlio import dav

PREFIX = "/remote.php/dav/uploads/"
ASSEMBLE = ".file"  # the name a client MOVEs to assemble the chunks
ALLOW = "OPTIONS, MKCOL, PROPFIND, PUT, MOVE, DELETE"
EXPIRY_INTERVAL = 3600  # seconds between passes removing abandoned upload folders
WRITER = MultistatusWriter({DAV: "d"})
PIECE = 1024 * 1024
log = logging.getLogger("files")


async def _folders(request: web.Request) -> tuple[str, UploadFolders]:
    """The caller and their upload folders; Forbidden for another user's."""
    identity = await require_user(request)
    owner = request.match_info["user"]
    if owner != identity.user:
        raise Forbidden(f"{identity.user} cannot reach another user's uploads at {PREFIX}{owner}/")
    return identity.user, UploadFolders(request.config_dict[CONFIG].data_path("uploads", identity.user))


def _href(user: str, upload_id: str, name: str | None = None) -> str:
    return f"{PREFIX}{quote(user, safe='')}/{upload_id}/" + (name or "")  # ids and names are URL-safe already


async def folder(request: web.Request) -> web.StreamResponse:
    """/remote.php/dav/uploads/USER/ID: MKCOL, PROPFIND, DELETE."""
    user, folders = await _folders(request)
    upload_id = upload_parts.check_id(request.match_info["id"])
    if request.method == "MKCOL":
        await asyncio.to_thread(upload_parts.expire, folders.root.parent, None, user)
        if not await asyncio.to_thread(folders.create, upload_id):
            raise MethodNotAllowed(f"upload {upload_id} exists", headers={"Allow": ALLOW})
        return web.Response(status=201)
    if request.method == "PROPFIND":
        return await _listing(request, user, folders, upload_id)
    if request.method == "DELETE":
        if not await asyncio.to_thread(folders.remove, upload_id):
            raise NotFound(f"no upload {upload_id}")
        return web.Response(status=204)
    if request.method == "OPTIONS":
        return web.Response(headers={"DAV": "1", "Allow": ALLOW})
    raise MethodNotAllowed(f"{request.method} is not served on an upload folder", headers={"Allow": ALLOW})


async def _listing(request: web.Request, user: str, folders: UploadFolders, upload_id: str) -> web.StreamResponse:
    depth = request.headers.get("Depth", "1").strip()
    parts = await asyncio.to_thread(folders.parts, upload_id)
    own = [WRITER.property_xml(dav("resourcetype"), [element(dav("collection"))])]
    responses = [WRITER.response_xml(_href(user, upload_id), {200: own})]
    if depth != "0":
        for part in parts:
            responses.append(WRITER.response_xml(_href(user, upload_id, part.name), {200: [
                WRITER.property_xml(dav("resourcetype")),
                WRITER.property_xml(dav("getcontentlength"), str(part.size)),
                WRITER.property_xml(dav("getlastmodified"), formatdate(part.mtime, usegmt=True))]}))
    return xml_bytes_response(WRITER.multistatus_xml(responses))


async def member(request: web.Request) -> web.StreamResponse:
    """/remote.php/dav/uploads/USER/ID/NAME: PUT or DELETE of a chunk, MOVE of `.file`."""
    user, folders = await _folders(request)
    upload_id, name = upload_parts.check_id(request.match_info["id"]), request.match_info["name"]
    if name == ASSEMBLE:
        if request.method != "MOVE":
            raise MethodNotAllowed(f"{ASSEMBLE} is only MOVEd to assemble the upload", headers={"Allow": "MOVE"})
        return await _assemble(request, user, folders, upload_id)
    upload_parts.check_part(name)
    if request.method == "PUT":
        return await _receive_part(request, user, folders, upload_id, name)
    if request.method == "DELETE":
        if not await asyncio.to_thread(folders.remove_part, upload_id, name):
            raise NotFound(f"no chunk {name} in upload {upload_id}")
        return web.Response(status=204)
    raise MethodNotAllowed(f"{request.method} is not served on a chunk", headers={"Allow": "PUT, DELETE"})


async def _receive_part(request: web.Request, user: str, folders: UploadFolders, upload_id: str,
                        name: str) -> web.StreamResponse:
    quota = quota_bytes(request.config_dict[CONFIG])
    allowed = None
    if quota is not None:
        used = await request.config_dict[DATABASE].read(lambda db: usage(db, user))
        allowed = quota - used - await asyncio.to_thread(folders.held_bytes, (upload_id, name))
        if request.content_length is not None and request.content_length > allowed:
            raise QuotaExceeded(f"{user} would go over their quota with this chunk")
    writer = await asyncio.to_thread(folders.part_writer, upload_id, name)
    try:
        async for data in request.content.iter_chunked(PIECE):
            if allowed is not None and writer.size + len(data) > allowed:
                raise QuotaExceeded(f"{user} would go over their quota with this chunk")
            await asyncio.to_thread(writer.write, data)
        if request.content_length is not None and writer.size != request.content_length:
            raise BadRequest(f"chunk has {writer.size} bytes, Content-Length said {request.content_length}")
        await asyncio.to_thread(writer.finish)
    except BaseException:
        await asyncio.to_thread(writer.abandon)
        raise
    return web.Response(status=201)


def _total_length(request: web.Request) -> int | None:
    value = request.headers.get("OC-Total-Length")
    if value is None:
        return None
    if not value.strip().isdigit():
        raise BadRequest(f"OC-Total-Length must be a number of bytes, not {value[:40]!r}")
    return int(value)


async def _assemble(request: web.Request, user: str, folders: UploadFolders, upload_id: str) -> web.StreamResponse:
    parts = await asyncio.to_thread(folders.parts, upload_id)
    size = sum(part.size for part in parts)
    announced = _total_length(request)
    if announced is not None and announced != size:
        raise BadRequest(f"the chunks hold {size} bytes, OC-Total-Length says {announced}: "
                         "send the missing chunks (PROPFIND lists those received)")
    mount, segments = destination_segments(request.headers.get("Destination"), user)
    header = request.headers.get("If")
    call = Call(request, user, mount, segments, parse_if(header) if header else None)
    response = await write_file(call, lambda: folders.reader(upload_id, parts), size)
    await asyncio.to_thread(folders.remove, upload_id)
    return response


async def _expire_pass(app: web.Application) -> None:
    removed = await asyncio.to_thread(upload_parts.expire, app[CONFIG].data_path("uploads"))
    if removed:
        log.info("uploads: removed %d upload folders untouched for 24 h", removed)


def add_routes(app: web.Application) -> None:
    app.router.add_route("*", PREFIX + "{user}/{id}", folder)
    app.router.add_route("*", PREFIX + "{user}/{id}/", folder)
    app.router.add_route("*", PREFIX + "{user}/{id}/{name}", member)
    app.cleanup_ctx.append(periodic_context(EXPIRY_INTERVAL, _expire_pass, log, "upload expiry"))
