"""PUT: the body is cut into chunks while it is read, and committed to the journal only when complete.

The chunker (services.core.tree chunk_stream, FastCDC) runs on a worker thread
and pulls the body from the event loop piece by piece, so memory stays at a few
chunks whatever the file's size. Chunks are staged in the store and published
with one flush; the journal commit comes last, so an upload that breaks off, or
goes over the quota, leaves no trace a user can see (staged chunks are
discarded; a published one nobody references goes at the next garbage collection).
"""
from __future__ import annotations

import asyncio
import io
import time
from typing import Callable

import sqlite_utils
from aiohttp import web

from services.core.errors import BadRequest, Conflict, MethodNotAllowed, ServiceUnavailable
from services.core.tree import (BlobStore, MissingChunks, QuotaExceeded, Revision, chunk_stream, commit_file,
                                creatable_path, usage)
from services.core.tree.holders import deletion_count, record_uploads
from services.core.tree.recent_chunks import StoredSizes
from services.core.tree.stamps import dav_id_of

from .checksums import Digesting, Expected
from .checksums import keep as keep_checksum
from .checksums import expected as expected_checksum
from .collections import AUTO_MKCOL, make_parents
from .context import DEVICE, STORE, Call, call_of, check_http_conditions, check_if, check_locks, resource_at, writable
from .creation import header_ctime_ns
from .creation import keep as keep_creation_time
from .mtimes import ACCEPTED, header_mtime_ns
from .namespace import Location, placed
from .ncprops import written_file_headers
from .properties import drop_properties
from .resources import Resource, content_etag, lookup


class _BodyFromLoop(io.RawIOBase):
    """The request body as a blocking stream for the worker thread: each read is run on the event loop."""

    def __init__(self, content, loop: asyncio.AbstractEventLoop):
        self.content, self.loop = content, loop

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = asyncio.run_coroutine_threadsafe(self.content.read(len(buffer)), self.loop).result()
        buffer[:len(data)] = data
        return len(data)


def receive(body: io.RawIOBase, store: BlobStore, allowed: int | None, owner: str,
            checksum: Expected | None = None) -> tuple[list, int]:
    """Chunk, verify and stage the whole body: ([(chunk id, length)], size). Staged chunks are discarded
    when anything fails (the quota, the client's OC-Checksum), published (durable, then visible) when the
    body is complete and checks out."""
    staged, chunks, size = [], [], 0
    try:
        for chunk in chunk_stream(io.BufferedReader(Digesting(body, checksum) if checksum else body, 1024 * 1024)):
            size += chunk.length
            if allowed is not None and size > allowed:
                raise QuotaExceeded(f"{owner} would go over their quota with this upload")
            staged.append(store.stage(chunk.id, chunk.data))
            chunks.append((chunk.id, chunk.length))
        if checksum is not None:
            checksum.check()
        store.publish(staged)
    except BaseException:
        store.discard(staged)
        raise
    return chunks, size


def _check_target(db: sqlite_utils.Database, call: Call, location: Location) -> Resource | None:
    folder = writable(db, call, location)
    if location.path == "":
        raise MethodNotAllowed("a folder is a collection: PUT files inside it")
    creatable_path(location.path)  # a refused name is refused before the body is read, not after
    current = resource_at(db, location)
    if current is not None and current.is_collection:
        raise MethodNotAllowed(f"{location.path} is a collection")
    parent = location.parent_path
    if parent:
        above = lookup(db, folder, parent)
        if above is None or not above.is_collection:
            raise Conflict(f"no collection {parent} to put {location.path} in")
    check_if(db, call, location, current)
    check_http_conditions(call.request, current, safe=False)
    check_locks(db, call, location)
    return current


async def put(request: web.Request) -> web.StreamResponse:
    call = await call_of(request)
    if request.headers.get("Content-Range"):
        raise BadRequest("Content-Range on PUT is not supported: send the whole file")
    return await write_file(call, lambda: _BodyFromLoop(request.content, asyncio.get_running_loop()),
                            request.content_length)


async def write_file(call: Call, open_body: Callable[[], io.RawIOBase], length: int | None) -> web.StreamResponse:
    """Store a file at the call's location (PUT, and a chunked upload's final MOVE): the request's
    conditions checked before `open_body()` is read, its X-OC-Mtime and OC-Checksum honoured, the
    quota checked against the final size only. `length`: the size announced, if any."""
    request = call.request
    store, quota = request.config_dict[STORE], call.quota()
    client_mtime = header_mtime_ns(request)  # checked before the body is read
    client_ctime = header_ctime_ns(request)
    checksum = expected_checksum(request)

    make_missing_parents = request.headers.get(AUTO_MKCOL, "").strip() == "1"

    def before(db: sqlite_utils.Database):
        location = call.locate(db)
        if make_missing_parents:
            location = make_parents(db, call, location)
        location = placed(db, location)
        current = _check_target(db, call, location)
        allowed = None
        if quota is not None:
            allowed = quota - usage(db, location.folder.owner) + (current.size if current else 0)
            if length is not None and length > allowed:
                raise QuotaExceeded(f"{location.folder.owner} would go over their quota with this upload")
        # Read before any chunk is published: what the commit may believe about them (recent_chunks.py).
        return location, current, allowed, deletion_count(db)

    location, current, allowed, deletions = await call.database.write(before)
    chunks, size = await asyncio.to_thread(receive, open_body(), store, allowed, location.folder.owner, checksum)
    if length is not None and size != length:
        raise BadRequest(f"body has {size} bytes, {length} were announced")

    def commit(db: sqlite_utils.Database):
        folder = location.folder.id
        _check_target(db, call, location)  # again, inside the transaction
        # Based on what was there when the upload began: a change made meanwhile is a 409, not overwritten.
        base = current.revision_id if current else None
        if current is None:
            drop_properties(db, folder, location.path)  # a new resource starts without properties
        record_uploads(db, call.user, [cid for cid, _ in chunks])  # they sent the bytes: theirs to commit
        # The chunks were published just now, each verified against its id: believed stored with these lengths
        # unless a chunk was deleted since `before` (then the store is asked). That spares the one writer a round
        # trip to an object store per chunk (a HEAD each) while it holds the write transaction.
        published = StoredSizes(dict(chunks), frozenset(cid for cid, _ in chunks), deletions)
        try:
            revision = commit_file(db, folder, location.path, base, chunks, size, client_mtime or time.time_ns(),
                                   False, DEVICE, store=store, quota=quota, stored_sizes=published)
        except MissingChunks as missing:  # deleted meanwhile (garbage collection, an account's deletion)
            raise ServiceUnavailable(f"{len(missing.missing)} chunk(s) of this upload left the store while it "
                                     "was written: send the file again", headers={"Retry-After": "1"}) from None
        if checksum is not None:
            keep_checksum(db, revision.id, checksum)
        if client_ctime is not None:
            keep_creation_time(db, folder, location.path, client_ctime)
        return revision, dav_id_of(db, folder, location.path)

    revision, oc_file_id = await call.database.write(commit)
    return web.Response(status=204 if current else 201,
                        headers={**written_headers(revision, oc_file_id, client_mtime is not None),
                                 **written_file_headers(location)})


def written_headers(revision: Revision, oc_file_id: str, mtime_set: bool) -> dict[str, str]:
    """What a Nextcloud client needs in the answer to a write: the new ETag (as OC-ETag too: the desktop
    reads that first), the file's id, and whether its X-OC-Mtime was kept."""
    etag = content_etag(revision.chunks)
    return {"ETag": etag, "OC-ETag": etag, "OC-FileId": oc_file_id, **(ACCEPTED if mtime_set else {})}
