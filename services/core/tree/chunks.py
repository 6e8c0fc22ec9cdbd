"""Content-defined chunks and the content-addressed store that keeps them.

Files are cut with FastCDC (pyfastcdc's streaming chunker, so memory stays
bounded by a few times MAX_SIZE however big the file) and each chunk is named by
the hex BLAKE3 digest of its bytes. The sizes: MIN_SIZE 256 KiB, AVG_SIZE 1 MiB,
MAX_SIZE 4 MiB. pyfastcdc's real mean is about AVG_SIZE + MIN_SIZE (cut-point
skipping), i.e. ~1.25 MiB: close to the design's "~1 MiB" while keeping the
per-chunk overhead (one row, one file, one request) small. An edit changes the
chunk it lands in and, at most, its neighbour; the rest keep their ids.

NEVER change these constants for existing data: other sizes give other chunk
ids, and dedup between old and new uploads would be lost (nothing breaks, but
everything is stored twice).
"""
from __future__ import annotations

import abc
import hashlib
import io
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import blake3
from pyfastcdc import FastCDC

from ..durable import fsync_directory, sync_filesystem
from ..errors import BadRequest, NotFound
from ..private import FILE_MODE, private_dir

MIN_SIZE = 256 * 1024
AVG_SIZE = 1024 * 1024
MAX_SIZE = 4 * 1024 * 1024

_CHUNK_ID = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Chunk:
    id: str
    offset: int
    length: int
    data: bytes


def chunk_id(data: bytes | memoryview) -> str:
    return blake3.blake3(data).hexdigest()


def content_digest(chunks: Iterable[tuple[str, int]]) -> str:
    """Names a file's content: a digest of its chunk list, whose ids name their bytes. Files with the
    same bytes have the same digest, whatever their name or place (ETags, thumbnails)."""
    listing = "\n".join(f"{chunk} {length}" for chunk, length in chunks)
    return hashlib.sha256(listing.encode()).hexdigest()


def chunk_stream(fileobj: BinaryIO) -> Iterator[Chunk]:
    """Cut a binary stream into content-defined chunks, reading it once, in order.

    pyfastcdc's stream chunker keeps a buffer of about 2 * MAX_SIZE and yields
    views into it, so each chunk's bytes are copied out before the next read.
    A stream of at most MIN_SIZE bytes is one chunk (FastCDC never cuts before
    MIN_SIZE), which spares small files the chunker's setup.
    """
    head = fileobj.read(MIN_SIZE + 1)
    if len(head) <= MIN_SIZE:
        if head:
            yield Chunk(chunk_id(head), 0, len(head), head)
        return
    fileobj = _Prefixed(head, fileobj)
    for piece in FastCDC(AVG_SIZE, min_size=MIN_SIZE, max_size=MAX_SIZE).cut_stream(fileobj):
        data = bytes(piece.data)
        yield Chunk(chunk_id(data), piece.offset, piece.length, data)


class _Prefixed(io.RawIOBase):
    """`head` (already read) followed by the rest of `stream`, as one readable stream."""

    def __init__(self, head: bytes, stream: BinaryIO):
        self.head, self.stream = memoryview(head), stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.stream.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def check_chunk_id(value: str) -> str:
    """A chunk id is 64 lowercase hex characters; anything else is a BadRequest."""
    if not isinstance(value, str) or not _CHUNK_ID.fullmatch(value):
        raise BadRequest(f"not a chunk id: {str(value)[:80]!r}")
    return value


def is_chunk_id(value: str) -> bool:
    return bool(_CHUNK_ID.fullmatch(value))


def verified(id: str, data: bytes) -> str:
    """`id`, if it is a chunk id and BLAKE3(data); else BadRequest (nothing is stored)."""
    check_chunk_id(id)
    actual = chunk_id(data)
    if actual != id:
        raise BadRequest(f"chunk {id} does not match its content (BLAKE3 is {actual})")
    return id


class BlobStore(abc.ABC):
    """Where chunk bytes live, addressed by their BLAKE3 id.

    Implementations: `ChunkStore` (a local directory) and `S3Store` (an
    S3-compatible bucket); `services.core.blobs.open_blob_store` picks one by
    config. A chunk's "last written" time is its upload lease: garbage
    collection leaves chunks written or re-put within its grace period alone.
    A store that cannot be reached raises StoreUnavailable (503) from any method.
    """

    read_ahead = 1  # chunks a download keeps in flight (read_ahead.chunks_in_order): more where reads are round trips
    read_ahead_bytes = 16 * 1024 * 1024  # and at most this many bytes of them, however many that is

    @abc.abstractmethod
    def put(self, id: str, data: bytes) -> None:
        """Store `data` under `id`, durably; idempotent (re-putting refreshes the lease).

        Raises BadRequest if `id` is malformed or is not BLAKE3(data); then nothing changes.
        """

    def stage(self, id: str, data: bytes) -> object:
        """Like put, but durable and visible only after publish([...]) of what it returns:
        a batch of many small chunks then costs one flush instead of one per chunk.
        Raises BadRequest like put. The default simply puts."""
        self.put(id, data)
        return None

    def publish(self, staged: list) -> None:
        """Make staged chunks durable, then visible."""

    def discard(self, staged: list) -> None:
        """Drop staged chunks that will not be published (the request failed)."""

    @abc.abstractmethod
    def get(self, id: str) -> bytes:
        """The chunk's bytes. Raises BadRequest (malformed id), NotFound (absent)."""

    @abc.abstractmethod
    def open(self, id: str) -> BinaryIO:
        """A readable binary file for the chunk. Raises BadRequest, NotFound."""

    @abc.abstractmethod
    def has_many(self, ids: Iterable[str]) -> set[str]:
        """The subset of `ids` present in the store. Raises BadRequest (malformed id)."""

    @abc.abstractmethod
    def sizes(self, ids: Iterable[str]) -> dict[str, int]:
        """The length in bytes of each of `ids` present in the store (absent ones are left out).
        Raises BadRequest (malformed id)."""

    @abc.abstractmethod
    def delete(self, id: str) -> None:
        """Remove the chunk; absent is fine. Raises BadRequest (malformed id)."""

    @abc.abstractmethod
    def written_before(self, cutoff: float) -> Iterator[str]:
        """Ids of chunks last written (put) before `cutoff` (a Unix time). Raises only StoreUnavailable."""

    @abc.abstractmethod
    def written_at(self, id: str) -> float | None:
        """When the chunk was last put (Unix time), None if absent. Raises BadRequest."""

    @abc.abstractmethod
    def stored(self) -> Iterator[str]:
        """Ids of every stored chunk. Only reads (a store check must change nothing). Raises only
        StoreUnavailable."""

    def free_bytes(self) -> int | None:
        """Room left for more chunks, or None when the store does not say (an object store grows)."""
        return None

    def check(self) -> None:
        """Raise StoreUnavailable, with one line saying why, if the store cannot be used now."""

    def describe(self) -> str:
        """Where the chunks are, for `hearth status` (never a credential)."""
        return self.__class__.__name__

    def close(self) -> None:
        """Let go of connections and worker threads."""


class ChunkStore(BlobStore):
    """Chunks as files `<blobs_dir>/ab/cd/<id>`, written temp + fsync + rename."""

    def __init__(self, blobs_dir: Path):
        self.root = private_dir(Path(blobs_dir))

    def path(self, id: str) -> Path:
        check_chunk_id(id)
        return self.root / id[:2] / id[2:4] / id

    def put(self, id: str, data: bytes) -> None:
        staged = self._write(id, data, sync=True)
        if staged is None:
            return
        tmp, target, created = staged
        os.replace(tmp, target)
        fsync_directory(target.parent)
        if created:
            fsync_directory(target.parent.parent)
            fsync_directory(self.root)

    def stage(self, id: str, data: bytes) -> object:
        return self._write(id, data, sync=False)

    def publish(self, staged: list) -> None:
        items = [item for item in staged if item is not None]
        if not items:
            return
        sync_filesystem(self.root)  # the bytes first ...
        for tmp, target, _ in items:
            os.replace(tmp, target)
        sync_filesystem(self.root)  # ... then the names

    def discard(self, staged: list) -> None:
        for item in staged:
            if item is not None:
                item[0].unlink(missing_ok=True)

    def _write(self, id: str, data: bytes, sync: bool) -> tuple[Path, Path, bool] | None:
        """Verify and write `data` to a temp file beside its final name: (temp, target,
        directory created), or None when the chunk is already stored (its lease refreshed)."""
        target = self.path(verified(id, data))
        if target.exists():
            os.utime(target)  # refresh the upload lease; the bytes are the same by definition
            return None
        created = not target.parent.exists()
        if created:
            private_dir(target.parent)
        tmp = target.parent / f".{id}.{secrets.token_hex(4)}.tmp"
        try:
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE), "wb") as out:
                out.write(data)
                if sync:
                    out.flush()
                    os.fsync(out.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp, target, created

    def get(self, id: str) -> bytes:
        with self.open(id) as f:
            return f.read()

    def open(self, id: str) -> BinaryIO:
        try:
            return open(self.path(id), "rb")
        except FileNotFoundError:
            raise NotFound(f"no chunk {id}") from None

    def has_many(self, ids: Iterable[str]) -> set[str]:
        return {id for id in ids if self.path(id).exists()}

    def sizes(self, ids: Iterable[str]) -> dict[str, int]:
        found = {}
        for id in ids:
            try:
                found[id] = self.path(id).stat().st_size
            except FileNotFoundError:
                continue
        return found

    def delete(self, id: str) -> None:
        self.path(id).unlink(missing_ok=True)

    def written_at(self, id: str) -> float | None:
        try:
            return self.path(id).stat().st_mtime
        except FileNotFoundError:
            return None

    def written_before(self, cutoff: float) -> Iterator[str]:
        for entry in self._files():
            try:
                mtime = entry.stat().st_mtime
            except FileNotFoundError:
                continue
            if mtime >= cutoff:
                continue
            if _CHUNK_ID.fullmatch(entry.name):
                yield entry.name
            elif entry.name.endswith(".tmp"):  # left by a crash mid-put
                Path(entry.path).unlink(missing_ok=True)

    def stored(self) -> Iterator[str]:
        return (entry.name for entry in self._files() if _CHUNK_ID.fullmatch(entry.name))

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    def describe(self) -> str:
        return f"local {self.root}"

    def _files(self) -> Iterator[os.DirEntry]:
        for top in sorted(self.root.iterdir()):
            if not top.is_dir():
                continue
            for sub in sorted(top.iterdir()):
                yield from os.scandir(sub)
