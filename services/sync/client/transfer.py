"""Blocking file work of a transfer: cutting a local file into chunks, reading a chunk
back, and assembling a downloaded file that survives a kill -9.

Runs in worker threads (asyncio.to_thread); nothing here touches the network.
"""
from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from services.core.tree.chunks import chunk_id, chunk_stream
from services.sync.client.hashing import new_hasher
from services.core.durable import fsync_directory
from services.sync.client.localfs import NAME_MAX_BYTES, TEMP_PREFIX, rename_noreplace
from services.sync.client.scan import FileState, state_from_stat

KEEP_IN_MEMORY = 1 << 20  # a file up to this size keeps its bytes from the read that cut it


class Unstable(Exception):
    """The file changed while it was being read; try again later."""


@dataclass
class Prepared:
    """A local file cut into chunks, as it was while read (never uploaded if it moved)."""
    relpath: str
    path: Path
    state: FileState
    chunks: list[tuple[str, int]]
    data: dict[str, bytes] = field(default_factory=dict)  # small files only

    @property
    def size(self) -> int:
        return self.state.size


def _open_regular(path: Path) -> tuple[int, os.stat_result]:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    return fd, st


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_ino, b.st_size, b.st_mtime_ns)


def prepare(root: Path, relpath: str) -> Prepared:
    """Cut `relpath` into chunks in one read, hashing the whole content on the way.

    Raises Unstable if the file was written to or replaced during the read,
    FileNotFoundError if it went away."""
    path = root / relpath
    fd, before = _open_regular(path)
    hasher = new_hasher()
    chunks, data = [], {}
    try:
        with os.fdopen(os.dup(fd), "rb", buffering=0) as stream:
            for chunk in chunk_stream(stream):
                hasher.update(chunk.data)
                chunks.append((chunk.id, chunk.length))
                if before.st_size <= KEEP_IN_MEMORY:
                    data[chunk.id] = chunk.data
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if not _same(before, after) or not _same(before, os.lstat(path)):
        raise Unstable(relpath)
    if sum(n for _, n in chunks) != before.st_size:
        raise Unstable(relpath)
    return Prepared(relpath, path, state_from_stat(before, hasher.hexdigest()), chunks, data)


def read_chunk(path: Path, offset: int, length: int, expected: str,
               expect_state: FileState | None = None) -> bytes | None:
    """The bytes at `offset` if they hash to `expected` (and the file still has
    `expect_state`'s metadata, when given); None otherwise."""
    try:
        fd, st = _open_regular(path)
    except OSError:
        return None
    try:
        if expect_state is not None and (st.st_size, st.st_mtime_ns, st.st_ino) != (
                expect_state.size, expect_state.mtime_ns, expect_state.inode):
            return None
        data = os.pread(fd, length, offset)
    finally:
        os.close(fd)
    return data if len(data) == length and chunk_id(data) == expected else None


def partial_path(target: Path, revision: int) -> Path:
    """The temp file a download of `revision` assembles into: named by the revision, so a
    restarted client finds it and keeps what was already verified."""
    name = f"{TEMP_PREFIX}r{revision}-{target.name}"
    while len(name.encode()) > NAME_MAX_BYTES:
        name = name[:-1]
    return target.with_name(name)


class Assembly:
    """A download being written to its partial file, chunk by chunk, in order."""

    def __init__(self, target: Path, revision: int, chunks: Iterable[tuple[str, int]],
                 on_write: Callable[[int], None] | None = None):
        self.on_write = on_write
        self.target = target
        self.temp = partial_path(target, revision)
        self.chunks = list(chunks)
        self.hasher = new_hasher()
        self.offsets = []
        offset = 0
        for _, length in self.chunks:
            self.offsets.append(offset)
            offset += length
        self.size = offset
        self.done = 0  # chunks verified and written
        self.resumed = 0  # chunks found already written by an earlier, interrupted run
        self.fd: int | None = None

    def open(self) -> int:
        """Open (or resume) the partial file; returns how many chunks it already holds."""
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.temp, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        for cid, length in self.chunks:
            data = os.pread(self.fd, length, self.offsets[self.done])
            if len(data) != length or chunk_id(data) != cid:
                break
            self.hasher.update(data)
            self.done += 1
        os.ftruncate(self.fd, self.offsets[self.done] if self.done < len(self.chunks) else self.size)
        return self.done

    def next_chunk(self) -> str | None:
        return self.chunks[self.done][0] if self.done < len(self.chunks) else None

    def earlier(self, cid: str) -> bytes | None:
        """The chunk's bytes if this file already holds it (a chunk repeated within a file)."""
        for index in range(self.done):
            if self.chunks[index][0] == cid:
                return os.pread(self.fd, self.chunks[index][1], self.offsets[index])
        return None

    def write(self, data: bytes) -> None:
        cid, length = self.chunks[self.done]
        if len(data) != length or chunk_id(data) != cid:
            raise ValueError(f"chunk {cid} does not match its content")
        view = memoryview(data)
        offset = self.offsets[self.done]
        while view:
            written = os.pwrite(self.fd, view, offset)
            view, offset = view[written:], offset + written
        self.hasher.update(data)
        self.done += 1
        if self.on_write is not None:
            self.on_write(length)

    def seal(self, executable: bool, sync: bool = True) -> None:
        """Every chunk is written: set the mode, fsync (unless the caller syncs a whole
        group at once with sync_filesystem) and close."""
        assert self.done == len(self.chunks)
        mode = os.fstat(self.fd).st_mode & 0o777
        mode = (mode | (mode & 0o444) >> 2) if executable else (mode & ~0o111)
        os.fchmod(self.fd, mode)
        if sync:
            os.fsync(self.fd)
        self.close()

    def finish(self, mtime_ns: int, replace: os.stat_result | None, sync: bool = True) -> tuple[os.stat_result, str]:
        """Give the sealed file its mtime and move it into place.

        `replace` is the local file's stat when the decision to replace it was made
        (None: the target must not exist). If the target changed since, nothing is
        replaced and FileExistsError is raised: the next cycle decides again."""
        os.utime(self.temp, ns=(mtime_ns, mtime_ns))
        place(self.temp, self.target, replace)
        if sync:
            fsync_directory(self.target.parent)
        return os.lstat(self.target), self.hasher.hexdigest()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def place(temp: Path, target: Path, replace: os.stat_result | None) -> None:
    """Rename `temp` to `target`: over it only if it is still the file seen as `replace`,
    and never over a file that appeared meanwhile (link + unlink is a rename that
    refuses to overwrite)."""
    if replace is None:
        rename_noreplace(temp, target)  # FileExistsError if someone created it meanwhile
        return
    try:
        now = os.lstat(target)
    except FileNotFoundError:
        raise FileExistsError(errno.EEXIST, "changed while downloading", str(target)) from None
    if not _same(now, replace):
        raise FileExistsError(errno.EEXIST, "changed while downloading", str(target))
    os.replace(temp, target)


def move_aside(path: Path, conflict: Path) -> None:
    """Rename `path` (a file or a directory) to the conflict copy's name, never overwriting anything there."""
    rename_noreplace(path, conflict)
