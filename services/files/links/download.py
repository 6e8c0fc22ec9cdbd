"""A file of the tree sent to a browser: chunks read ahead from the store in order (read_ahead.py), with one byte range.

Range requests let a phone resume a large download; the ETag is derived from
the file's content (its chunk list), so it names no internal id and a resumed
download (If-Range) never splices two different versions together.
"""
from __future__ import annotations

import json
import logging
from typing import Awaitable, Callable

import blake3
from aiohttp import hdrs, web

from services.core.errors import HTTPError, NotFound
from services.core.tree import BlobStore
from services.core.tree.read_ahead import chunks_in_order
from services.core.user_content import SANDBOX

from .tree_view import Item

log = logging.getLogger("files")


class RangeNotSatisfiable(HTTPError):
    status, code = 416, "range-not-satisfiable"


def content_etag(item: Item) -> str:
    digest = blake3.blake3(json.dumps(item.chunks, separators=(",", ":")).encode()).hexdigest()
    return f'"{digest[:32]}"'


def byte_range(request: web.Request, item: Item, etag: str) -> tuple[int, int] | None:
    """(start, end exclusive) when the request asks for one satisfiable range, None for the whole file."""
    if hdrs.RANGE not in request.headers:
        return None
    if_range = request.headers.get(hdrs.IF_RANGE)
    if if_range is not None and if_range.strip() != etag:
        return None  # the file changed since the client's first part: send it all again
    unsatisfiable = RangeNotSatisfiable(f"the file is {item.size} bytes",
                                        headers={"Content-Range": f"bytes */{item.size}"})
    try:
        wanted = request.http_range
    except ValueError:  # malformed, or several ranges (not supported)
        raise unsatisfiable from None
    start, stop = wanted.start, wanted.stop
    if start is None and stop is None:
        return None
    if start < 0:  # a suffix ("bytes=-N"): aiohttp gives slice(-N, None)
        start = max(0, item.size + start)
    if stop is None or stop > item.size:
        stop = item.size
    if start >= item.size or start >= stop:
        raise unsatisfiable
    return start, stop


async def send_file(request: web.Request, item: Item, store: BlobStore, *, disposition: str,
                    on_download: Callable[[], Awaitable[None]]) -> web.StreamResponse:
    """Stream `item`'s bytes (or the requested range) with validators; 304 when the client has it.

    `on_download` runs once a download starts from the first byte: the later parts of a
    resumed download, HEAD and 304 answers are not new downloads.
    """
    etag = content_etag(item)
    headers = {hdrs.ETAG: etag, hdrs.ACCEPT_RANGES: "bytes", hdrs.CONTENT_DISPOSITION: disposition,
               hdrs.CONTENT_TYPE: "application/octet-stream", **SANDBOX}
    if request.headers.get(hdrs.IF_NONE_MATCH, "").strip() in (etag, "*"):
        return web.Response(status=304, headers={hdrs.ETAG: etag})
    wanted = byte_range(request, item, etag)
    start, stop = wanted or (0, item.size)
    response = web.StreamResponse(status=206 if wanted else 200, headers=headers)
    if wanted:
        response.headers[hdrs.CONTENT_RANGE] = f"bytes {start}-{stop - 1}/{item.size}"
    response.content_length = stop - start
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    if start == 0:
        await on_download()
    wanted, offset = [], 0  # (id, length, first byte wanted, byte after the last) of each chunk sent
    for cid, length in item.chunks:
        if offset + length > start and offset < stop:
            wanted.append((cid, length, max(0, start - offset), min(length, stop - offset)))
        offset += length
        if offset >= stop:
            break
    reading = chunks_in_order(store, [(cid, length) for cid, length, _, _ in wanted])
    try:
        for cid, length, begin, end in wanted:
            try:
                data = await anext(reading)
                if len(data) != length:
                    raise OSError(f"chunk {cid} is {len(data)} bytes, not the {length} the journal says")
            except (NotFound, OSError) as error:
                log.error("%s: chunk %s unreadable mid-download (%s); connection closed", request.path, cid, error)
                if request.transport is not None:
                    request.transport.close()
                return response
            await response.write(memoryview(data)[begin:end])  # a view, not a copy of up to 4 MiB
    finally:
        await reading.aclose()
    await response.write_eof()
    return response

