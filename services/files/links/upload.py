"""Anonymous uploads through a share link: each form file streamed into chunks, then committed as a new file.

The body is never held in memory or written anywhere but the chunk store: the
event loop hands each piece of the part to a worker thread through a bounded
queue, and the thread cuts the stream with FastCDC (`chunk_stream`, as the
sync client does) and stages each chunk. The commit then adds a new file to
the journal (so every sync client sees it); an existing name is never
replaced: the upload gets the first free `name (2).ext`, `name (3).ext`, ...
"""
from __future__ import annotations

import asyncio
import queue
import time
from dataclasses import dataclass

import sqlite_utils
from aiohttp import BodyPartReader, web

from services.core.errors import BadRequest, Conflict
from services.core.http import DATABASE
from services.core.tree import BlobStore, Revision, chunk_stream, commit_file, creatable_path

from services.core.share_links import Link
from .tree_view import live_entry, taken

PIECES_IN_FLIGHT = 16  # ~1 MiB of request body between the event loop and the chunker
MAX_CLASH_NUMBER = 1000


@dataclass(frozen=True)
class Stored:
    """One uploaded file: the name the uploader gave and the path it was committed at."""

    name: str
    revision: Revision


class _PieceStream:
    """A blocking, readable file over pieces another thread puts in a queue (b'' ends it)."""

    def __init__(self) -> None:
        self.pieces: queue.Queue[bytes] = queue.Queue(maxsize=PIECES_IN_FLIGHT)
        self.buffer = bytearray()
        self.ended = False
        self.abandoned = False  # the reader stopped (it failed): feeding must not block forever

    def feed(self, piece: bytes) -> None:
        while not self.abandoned:
            try:
                self.pieces.put(piece, timeout=0.2)
                return
            except queue.Full:
                continue

    def read(self, size: int = -1) -> bytes:
        while not self.ended and (size < 0 or len(self.buffer) < size):
            piece = self.pieces.get()
            if not piece:
                self.ended = True
            self.buffer += piece
        size = len(self.buffer) if size < 0 else size
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data


def upload_name(filename: str | None) -> str:
    """The file name to store: the last component of what the browser sent, checked like a path segment."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name:
        raise BadRequest("each uploaded file needs a file name")
    return creatable_path(name)  # the journal's rules: no '.', '..', control characters, bidi overrides, long names


def free_path(db: sqlite_utils.Database, folder_id: int, directory: str, name: str) -> str:
    """`directory/name`, or the first `name (N).ext` nobody uses yet."""
    stem, dot, ext = name.rpartition(".")
    if not stem:  # '.bashrc' or 'README': no extension to keep
        stem, dot, ext = name, "", ""
    for number in range(1, MAX_CLASH_NUMBER + 1):
        candidate = name if number == 1 else f"{stem} ({number}){dot}{ext}"
        path = f"{directory}/{candidate}" if directory else candidate
        if not taken(db, folder_id, path):
            return path
    raise Conflict(f"too many files named like {name!r} already")


def _chunk_into_store(stream: _PieceStream, store: BlobStore, staged: list) -> tuple[list[tuple[str, int]], int]:
    chunks, size = [], 0
    try:
        for chunk in chunk_stream(stream):
            staged.append(store.stage(chunk.id, chunk.data))
            chunks.append((chunk.id, chunk.length))
            size += chunk.length
    finally:
        stream.abandoned = True
    return chunks, size


async def _store_part(part: BodyPartReader, store: BlobStore, staged: list) -> tuple[list[tuple[str, int]], int]:
    """Feed the part to the chunker thread as it arrives; returns its (chunk list, size)."""
    stream = _PieceStream()
    chunker = asyncio.ensure_future(asyncio.to_thread(_chunk_into_store, stream, store, staged))
    try:
        while piece := await part.read_chunk(64 * 1024):
            await asyncio.to_thread(stream.feed, piece)
    except BaseException:  # the client went away: let the chunker finish before its chunks are discarded
        await asyncio.to_thread(stream.feed, b"")
        await asyncio.gather(chunker, return_exceptions=True)
        raise
    await asyncio.to_thread(stream.feed, b"")
    return await chunker


async def receive(request: web.Request, link: Link, directory: str, store: BlobStore, *,
                  quota: int | None) -> list[Stored]:
    """Store every file of the multipart form and commit them under `directory` in one transaction.

    BadRequest for a form without files or a file without a name; QuotaExceeded
    (507) when the owner's quota would be exceeded, and then nothing is committed.
    """
    if not request.content_type.startswith("multipart/form-data"):
        raise BadRequest("upload with a multipart/form-data form")
    reader = await request.multipart()
    received: list[tuple[str, list[tuple[str, int]], int]] = []
    staged: list = []
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.filename is None:
                continue  # other form fields carry nothing we use
            name = upload_name(part.filename)
            chunks, size = await _store_part(part, store, staged)
            received.append((name, chunks, size))
        await asyncio.to_thread(store.publish, staged)
    except BaseException:
        await asyncio.to_thread(store.discard, staged)
        raise
    if not received:
        raise BadRequest("the form has no file")
    return await request.config_dict[DATABASE].write(
        lambda db: _commit_all(db, link, directory, received, store, quota))


def _commit_all(db: sqlite_utils.Database, link: Link, directory: str,
                received: list[tuple[str, list[tuple[str, int]], int]], store: BlobStore,
                quota: int | None) -> list[Stored]:
    target = live_entry(db, link.folder_id, directory) if directory else None
    if directory and (target is None or target.kind != "dir"):
        raise Conflict("the folder was moved or deleted meanwhile")
    mtime_ns = time.time_ns()
    stored = []
    for name, chunks, size in received:
        path = free_path(db, link.folder_id, directory, name)
        revision = commit_file(db, link.folder_id, path, None, chunks, size, mtime_ns, False,
                               f"share link {link.id}", store=store, quota=quota)
        stored.append(Stored(name, revision))
    return stored

