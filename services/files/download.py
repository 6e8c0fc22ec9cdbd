"""GET and HEAD: a file's bytes streamed chunk by chunk from the store, with Range and conditions.

One byte range is served as 206; several ranges are answered with the whole
file (RFC 9110 lets a server ignore Range), which every client handles.
"""
from __future__ import annotations

import html
from email.utils import format_datetime

import sqlite_utils
from aiohttp import web

from services.core.errors import BadRequest, RangeNotSatisfiable
from services.core.tree.read_ahead import chunks_in_order
from services.core.user_content import SANDBOX, user_content_headers

from .context import STORE, call_of, check_http_conditions, check_if, existing, modified
from .propfind import members_of
from .resources import Resource

READ_PIECE = 1024 * 1024


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive for a single satisfiable range, None to send everything."""
    if not header or not header.strip().lower().startswith("bytes="):
        return None
    specs = [s.strip() for s in header.strip()[6:].split(",") if s.strip()]
    if len(specs) != 1:
        return None
    first, sep, last = specs[0].partition("-")
    if not sep:
        raise BadRequest(f"malformed Range: {header[:100]!r}")
    try:
        if first == "":
            length = int(last)
            if length <= 0:
                raise RangeNotSatisfiable(size)
            return max(0, size - length), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        raise BadRequest(f"malformed Range: {header[:100]!r}") from None
    if start > end or start >= size:
        raise RangeNotSatisfiable(size)
    return start, min(end, size - 1)


def content_headers(resource: Resource) -> dict[str, str]:
    """Validators, and what keeps the file's content from running as this origin (core.user_content)."""
    return {"ETag": resource.etag or "", "Last-Modified": format_datetime(modified(resource), usegmt=True),
            "Accept-Ranges": "bytes", **user_content_headers(resource.name)}


async def get(request: web.Request) -> web.StreamResponse:
    call = await call_of(request)
    head = request.method == "HEAD"

    def find(db: sqlite_utils.Database):
        location = call.locate(db)
        resource = existing(db, location)
        check_if(db, call, location, resource)
        members = members_of(db, location, resource) if resource.is_collection else []
        return location, resource, members

    location, resource, members = await call.database.read(find)
    if resource.is_collection:
        return _index(location, members)
    headers = content_headers(resource)
    if not check_http_conditions(request, resource, safe=True):
        return web.Response(status=304, headers={k: headers[k] for k in ("ETag", "Last-Modified")})
    size, wanted = resource.size, None
    if_range = request.headers.get("If-Range")
    if if_range is None or if_range.strip() == resource.etag:
        wanted = byte_range(request.headers.get("Range"), size) if size else None
    first, last = wanted if wanted else (0, size - 1)
    response = web.StreamResponse(status=206 if wanted else 200, headers=headers)
    if wanted:
        response.headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    response.content_length = last - first + 1 if size else 0
    await response.prepare(request)
    if not head and size:
        await send_bytes(request.config_dict[STORE], response, resource, first, last)
    await response.write_eof()
    return response


async def send_bytes(store, response: web.StreamResponse, resource: Resource, first: int, last: int) -> None:
    """Bytes [first, last] of the resource, its chunks read ahead of the writes (read_ahead.py)."""
    wanted, offset = [], 0
    for cid, length in resource.chunks:
        start, end = offset, offset + length - 1
        offset += length
        if not (end < first or start > last):
            wanted.append((cid, start, end))
    reading = chunks_in_order(store, [(cid, end - start + 1) for cid, start, end in wanted])
    try:
        for _, start, end in wanted:
            data = await anext(reading)  # a view of the range, not a copy of up to 4 MiB
            await response.write(memoryview(data)[max(first, start) - start:min(last, end) - start + 1])
    finally:
        await reading.aclose()


def _index(location, members) -> web.Response:
    """A collection asked for with GET: a plain HTML list of its members, for a browser."""
    title = html.escape(location.href(True))
    items = "".join(f'<li><a href="{html.escape(loc.href(res.is_collection))}">'
                    f'{html.escape(loc.top if loc.is_folder else res.name)}{"/" if res.is_collection else ""}</a></li>'
                    for loc, res in members)
    body = f"<!doctype html><meta charset=utf-8><title>{title}</title><h1>{title}</h1><ul>{items}</ul>\n"
    # Names are escaped, and the page is sandboxed as user content is: it needs no script. (No body to HEAD.)
    return web.Response(text=body, content_type="text/html", charset="utf-8", headers=SANDBOX)

