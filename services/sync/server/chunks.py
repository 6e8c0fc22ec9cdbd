"""Chunks: which ones the server has, uploading them, and reading them back.

Chunks are content-addressed and stored once for every folder (dedup), so
uploading is open to any user, and records that they sent those bytes. A chunk
id alone never gives access to content: reading one back goes through a folder
the user can read (GET /sync/v1/folders/{id}/chunks/{cid}) and only if a
revision of that folder references the chunk; `have` answers only for chunks
the user holds (services/core/tree/holders.py), the same ones a commit may
name, so it tells nobody what others have stored.
"""
from __future__ import annotations

import asyncio
import json

from aiohttp import web
from pydantic import BaseModel, Field

from services.core.auth import require_user
from services.core.errors import BadRequest, NotFound, PayloadTooLarge
from services.core.http import DATABASE, read_json
from services.core.routing import Route, respond
from services.core.tree.chunks import check_chunk_id
from services.core.tree.holders import held, record_uploads
from services.core.user_content import SANDBOX

from .common import FOLDER_ID, PREFIX, RECENT, STORE, chunk_deletions, folder_for

MAX_CHUNK_BYTES = 8 * 1024 * 1024
MAX_HAVE_IDS = 10_000
QUERY_IDS = 500  # ids per IN (...) list, well under SQLite's bound-parameter limit
CHUNK_ID = {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "hex BLAKE3 of the chunk's bytes"}
OCTETS = "application/octet-stream"


class HaveIn(BaseModel):
    ids: list[str] = Field(max_length=MAX_HAVE_IDS)


class HaveOut(BaseModel):
    have: list[str]
    missing: list[str]


class ChunkOut(BaseModel):
    id: str
    size: int


async def post_have(request: web.Request) -> web.Response:
    user, _ = await folder_for(request, write=True)  # asked before uploading into this folder
    body = await read_json(request, HaveIn)
    ids = list(dict.fromkeys(body.ids))
    for cid in ids:
        check_chunk_id(cid)
    mine = await request.app[DATABASE].read(lambda db: held(db, user, ids))
    present = await asyncio.to_thread(request.app[STORE].has_many, mine)
    return respond(HaveOut(have=[c for c in ids if c in present], missing=[c for c in ids if c not in present]))


async def put_chunk(request: web.Request) -> web.Response:
    identity = await require_user(request)
    cid = check_chunk_id(request.match_info["cid"])
    if request.content_length is not None and request.content_length > MAX_CHUNK_BYTES:
        raise PayloadTooLarge(f"a chunk is at most {MAX_CHUNK_BYTES} bytes")
    data = bytearray()
    async for piece in request.content.iter_chunked(256 * 1024):
        data += piece
        if len(data) > MAX_CHUNK_BYTES:
            raise PayloadTooLarge(f"a chunk is at most {MAX_CHUNK_BYTES} bytes")
    if not data:
        raise BadRequest("empty chunk")
    deletions = await chunk_deletions(request)  # before the put: see recent_chunks.py
    await asyncio.to_thread(request.app[STORE].put, cid, bytes(data))  # BadRequest if not BLAKE3(data)
    await request.app[DATABASE].write(lambda db: record_uploads(db, identity.user, [cid]))
    request.app[RECENT].remember({cid: len(data)}, deletions)
    return respond(ChunkOut(id=cid, size=len(data)), status=201)


def _referencing(db, folder: int, ids: list[str]) -> dict[str, int]:
    """A revision of `folder` referencing each of `ids` that one references: chunk id -> revision id."""
    found: dict[str, int] = {}
    for start in range(0, len(ids), QUERY_IDS):
        batch = ids[start:start + QUERY_IDS]
        found.update(db.execute(f"""
            SELECT rc.chunk_id, min(r.id) FROM revision_chunks rc JOIN revisions r ON r.id = rc.revision_id
            JOIN entries e ON e.id = r.entry_id
            WHERE e.folder_id = ? AND rc.chunk_id IN ({", ".join("?" * len(batch))})
            GROUP BY rc.chunk_id""", [folder, *batch]).fetchall())
    return found


def unreferenced(db, folder: int, ids: list[str]) -> list[str]:
    """Those of `ids` that no revision of `folder` references (in the order given)."""
    found = _referencing(db, folder, ids)
    return [cid for cid in ids if cid not in found]


def referenced_lengths(db, folder: int, ids: list[str]) -> dict[str, int]:
    """The length of each of `ids` that a revision of `folder` references, read from that revision's chunk
    list (a download reads ahead by bytes: read_ahead.py); ids no revision there references are absent."""
    revision_of = _referencing(db, folder, ids)
    revisions = sorted(set(revision_of.values()))
    lengths: dict[str, int] = {}
    for start in range(0, len(revisions), QUERY_IDS):
        batch = revisions[start:start + QUERY_IDS]
        for (chunks,) in db.execute(f"SELECT chunks FROM revisions WHERE id IN ({', '.join('?' * len(batch))})",
                                    batch):
            lengths.update((cid, length) for cid, length in json.loads(chunks) if cid in revision_of)
    return lengths


async def get_chunk(request: web.Request) -> web.StreamResponse:
    _, folder = await folder_for(request)
    cid = check_chunk_id(request.match_info["cid"])
    if await request.app[DATABASE].read(lambda db: unreferenced(db, folder, [cid])):
        raise NotFound(f"no chunk {cid} in folder {folder}")
    data = await asyncio.to_thread(request.app[STORE].get, cid)
    return web.Response(body=data, content_type=OCTETS,
                        headers={"Cache-Control": "private, max-age=31536000, immutable", **SANDBOX})


ROUTES = (
    Route("POST", f"{PREFIX}/folders/{{id}}/chunks/have", post_have,
          "Which of these chunks the server already has for you: ones you uploaded or can read in "
          "a folder (ask before uploading; only those may be committed)", tag="chunks",
          body=HaveIn, response=HaveOut, errors=(403, 404), path_params={"id": FOLDER_ID}),
    Route("PUT", f"{PREFIX}/chunks/{{cid}}", put_chunk,
          "Upload a chunk (at most 8 MiB); the id must be the BLAKE3 of the body", tag="chunks",
          raw_body=OCTETS, response=ChunkOut, status=201, errors=(400, 413), path_params={"cid": CHUNK_ID}),
    Route("GET", f"{PREFIX}/folders/{{id}}/chunks/{{cid}}", get_chunk,
          "A chunk's bytes, if a revision in this folder references it", tag="chunks",
          raw_response=OCTETS, errors=(400, 404), path_params={"id": FOLDER_ID, "cid": CHUNK_ID}),
)
