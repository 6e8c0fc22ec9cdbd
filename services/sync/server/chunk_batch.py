"""Many chunks per request: POST /sync/v1/chunks/batch up, POST /sync/v1/folders/{id}/chunks/fetch down.

Small files make small chunks, and one request per chunk spends more time on
round trips than on bytes. Both directions use the frames of services.sync.frames,
back to back, read and written one at a time, so a request never holds more than
one chunk (or a 4 MiB run of small ones) in memory however large the batch is. An upload batch is made durable
with one file-system flush before it is answered (ChunkStore.stage/publish).
"""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from pydantic import BaseModel, Field

from services.core.auth import require_user
from services.core.errors import BadRequest, NotFound, PayloadTooLarge
from services.core.http import DATABASE, read_json
from services.core.routing import Route, respond
from services.core.tree import BlobStore
from services.core.tree.chunks import check_chunk_id
from services.core.tree.read_ahead import chunks_in_order
from services.core.tree.holders import record_uploads

from services.sync.frames import HEADER, frame_header, parse_header

from .chunks import CHUNK_ID, MAX_CHUNK_BYTES, OCTETS, referenced_lengths
from .common import FOLDER_ID, PREFIX, RECENT, STORE, chunk_deletions, folder_for

log = logging.getLogger("sync")

MAX_BATCH_BYTES = 64 * 1024 * 1024
STAGE_BYTES = 4 * 1024 * 1024  # frames verified and written per worker-thread hop
MAX_FETCH_IDS = 1000
MAX_IDS_NAMED = 5


class BatchOut(BaseModel):
    stored: int = Field(description="frames stored (each chunk verified against its id)")
    bytes: int = Field(description="chunk data bytes in those frames (frame heads not counted)")


class FetchIn(BaseModel):
    ids: list[str] = Field(min_length=1, max_length=MAX_FETCH_IDS, description=(
        "chunk ids referenced by this folder; duplicates are served once, in first-seen order"),
        json_schema_extra={"items": CHUNK_ID})


async def _read_head(content, number: int, used: int) -> tuple[str, int] | None:
    """The next frame's (chunk id, length), or None where the body ends between frames."""
    try:
        head = await content.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            return None
        raise BadRequest(f"frame {number}: truncated head ({len(error.partial)} of "
                         f"{HEADER.size} bytes)") from None
    cid, length = parse_header(head)
    if not 1 <= length <= MAX_CHUNK_BYTES:
        raise BadRequest(f"frame {number}: length {length} is outside 1..{MAX_CHUNK_BYTES}")
    if used + HEADER.size + length > MAX_BATCH_BYTES:
        raise PayloadTooLarge(f"a batch is at most {MAX_BATCH_BYTES} bytes")
    return cid, length


async def _read_frame(content, number: int, length: int) -> bytes:
    try:
        return await content.readexactly(length)
    except asyncio.IncompleteReadError as error:
        raise BadRequest(f"frame {number}: truncated data ({len(error.partial)} of {length} bytes)") from None


def _stage_all(store: BlobStore, frames: list[tuple[int, str, bytes]], staged: list) -> None:
    """Verify and stage a run of frames in one worker-thread hop (small chunks come in hundreds)."""
    for number, cid, data in frames:
        try:
            staged.append(store.stage(cid, data))  # verifies BLAKE3(data) == cid
        except BadRequest as error:
            raise BadRequest(f"frame {number}: {error.reason}") from None


async def post_batch(request: web.Request) -> web.Response:
    identity = await require_user(request)  # chunks are shared by every folder, like PUT /chunks/{cid}
    if request.content_length is not None and request.content_length > MAX_BATCH_BYTES:
        raise PayloadTooLarge(f"a batch is at most {MAX_BATCH_BYTES} bytes")
    store, stored, used, data_bytes = request.app[STORE], 0, 0, 0
    deletions = await chunk_deletions(request)  # before any put: see recent_chunks.py
    staged: list = []
    received: dict[str, int] = {}
    frames: list[tuple[int, str, bytes]] = []
    held = 0
    try:
        while (head := await _read_head(request.content, stored + 1, used)) is not None:
            cid, length = head
            frames.append((stored + 1, cid, await _read_frame(request.content, stored + 1, length)))
            received[cid] = length
            held += length
            stored, used, data_bytes = stored + 1, used + HEADER.size + length, data_bytes + length
            if held >= STAGE_BYTES:
                await asyncio.to_thread(_stage_all, store, frames, staged)
                frames, held = [], 0
        await asyncio.to_thread(_stage_all, store, frames, staged)
        await asyncio.to_thread(store.publish, staged)  # one flush for the whole batch
    except BaseException:
        await asyncio.to_thread(store.discard, staged)
        raise
    if received:  # only once the bytes are durable: the user then holds them (holders.py)
        await request.app[DATABASE].write(lambda db: record_uploads(db, identity.user, received))
        request.app[RECENT].remember(received, deletions)
    return respond(BatchOut(stored=stored, bytes=data_bytes), status=201)


def _naming(ids: list[str]) -> str:
    more = len(ids) - MAX_IDS_NAMED
    return ", ".join(ids[:MAX_IDS_NAMED]) + (f" and {more} more" if more > 0 else "")


async def _checked_chunks(request: web.Request, folder: int) -> list[tuple[str, int]]:
    """The (id, length) of each chunk to send, deduplicated, after making sure every one may and can be sent."""
    body = await read_json(request, FetchIn)
    ids = list(dict.fromkeys(check_chunk_id(cid) for cid in body.ids))
    lengths = await request.app[DATABASE].read(lambda db: referenced_lengths(db, folder, ids))
    absent = [cid for cid in ids if cid not in lengths]
    if absent:
        raise NotFound(f"no chunk {_naming(absent)} in folder {folder}")
    deletions = await chunk_deletions(request)
    present = await asyncio.to_thread(request.app[RECENT].present, request.app[STORE], ids, deletions)
    lost = [cid for cid in ids if cid not in present]
    if lost:
        log.error("folder %d references chunks missing from the store: %s", folder, _naming(lost))
        raise NotFound(f"chunk {_naming(lost)} is missing from the server's store")
    return [(cid, lengths[cid]) for cid in ids]


async def post_fetch(request: web.Request) -> web.StreamResponse:
    _, folder = await folder_for(request)
    chunks = await _checked_chunks(request, folder)
    store = request.app[STORE]
    response = web.StreamResponse(headers={"Content-Type": OCTETS, "Cache-Control": "private, no-store"})
    await response.prepare(request)
    reading = chunks_in_order(store, chunks)
    try:
        for cid, _ in chunks:
            try:
                data = await anext(reading)
            except (NotFound, OSError) as error:
                return _abort(request, response, cid, error)
            await response.write(frame_header(cid, len(data)))
            await response.write(data)
    finally:
        await reading.aclose()
    await response.write_eof()
    return response


def _abort(request: web.Request, response: web.StreamResponse, cid: str, error: Exception) -> web.StreamResponse:
    """A chunk vanished after the checks (a disk error, or expired and collected meanwhile).

    The status line is already sent, so no error response is possible; closing
    the connection without the final chunk of the chunked encoding makes the
    client see a cut-off body instead of a clean end with frames missing.
    """
    log.error("POST %s: chunk %s unreadable mid-stream (%s); connection closed", request.path, cid, error)
    if request.transport is not None:
        request.transport.close()
    return response


ROUTES = (
    Route("POST", f"{PREFIX}/chunks/batch", post_batch,
          "Upload many chunks in one body of frames (32-byte BLAKE3 digest, 4-byte big-endian length, "
          "data), at most 64 MiB; each is verified against its digest", tag="chunks",
          raw_body=OCTETS, response=BatchOut, status=201, errors=(400, 413)),
    Route("POST", f"{PREFIX}/folders/{{id}}/chunks/fetch", post_fetch,
          "Download many chunks this folder references, streamed as frames in the order asked "
          "(404 naming any it does not reference, before any byte is sent)", tag="chunks",
          body=FetchIn, raw_response=OCTETS, errors=(404,), path_params={"id": FOLDER_ID}),
)
