"""Thumbnails kept on disk: drawn once per file content and size, then read back by any daemon.

A thumbnail is stored as `<data_dir>/previews/ab/<content>/<size>`: `content` a digest of the file's
chunk list (chunk ids name their bytes, so this names the content), `size` a digest of the box asked
for. An edited file gets new thumbnails, a renamed or moved one keeps its own, and everything drawn
from one content goes with one directory. A file that has none (not a picture, unreadable, over the
pixel limit) leaves a note of why (NO_PREVIEW): the next request answers 404 with the same reason
without reading the file again.

Files are written to a temp name and renamed (a reader never sees half a thumbnail), 0600 in 0700
directories like all data at rest. They are not fsynced: a cache lost in a crash is drawn again. The
cache stays under `[files] preview_cache_mb`: when it grows past it, the thumbnails used least
recently (a hit refreshes the file's mtime) are removed. `prune` removes the thumbnails of contents
no current file has any more (deleted or edited files, erased accounts): the files daemon runs it
daily (services/files/previews.py).

Drawing runs on a small thread pool of its own (`workers` threads), so a folder of 500 photos opened
on a phone keeps at most that many cores busy and never blocks the event loop; cache hits do not wait
behind it.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Iterator

from aiohttp import web

from .config import Config
from .periodic import non_negative
from .private import FILE_MODE, private_dir
from .previews import NoPreview, PreviewSize, render
from .tree import BlobStore, content_digest

RENDER_VERSION = "1"  # part of every key: a change to how thumbnails are drawn makes new ones
SWEEP_SHARE = 10  # sweep after writing a tenth of the budget ...
KEEP_SHARE = 0.8  # ... down to 80% of it, so a full cache is not swept on every write
NO_PREVIEW = b"\0"  # starts what is kept for a file without a thumbnail, then why (no JPEG or PNG starts so)
STALE_SOURCE_SECONDS = 3600  # a source file this old in tmp/ belongs to no drawing still running
BYTES_PER_PIXEL = 8  # 16-bit RGBA, uncompressed: no picture in the formats drawn needs more


class Previews:
    """The thumbnails of one data directory's files: `await thumbnail(etag, chunks, size)`."""

    def __init__(self, root: Path, store: BlobStore, *, max_pixels: int, cache_bytes: int, workers: int = 2):
        self.root = root
        self.store = store
        self.max_pixels = max_pixels
        self.cache_bytes = cache_bytes
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="preview")
        self._written = 0
        self._sweeping = threading.Lock()
        self._scratch = root / "tmp"
        private_dir(self._scratch)
        # Sources a stopped daemon left behind; another daemon sharing the cache may be drawing from the
        # newer ones, and no drawing takes an hour.
        for stale in os.scandir(self._scratch):
            try:
                if stale.stat().st_mtime < time.time() - STALE_SOURCE_SECONDS:
                    os.unlink(stale.path)
            except FileNotFoundError:  # finished meanwhile
                pass

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def path_of(self, chunks: Iterable[tuple[str, int]], size: PreviewSize) -> Path:
        """Where the thumbnail of that content at that size is (or will be) kept."""
        content = content_digest(chunks)
        return self.root / content[:2] / content / self._size_key(content, size)

    def etag_of(self, chunks: Iterable[tuple[str, int]], size: PreviewSize) -> str:
        """The thumbnail's own ETag, known before it is drawn: If-None-Match is answered without drawing."""
        return f'"{self._size_key(content_digest(chunks), size)[:32]}"'

    def _size_key(self, content: str, size: PreviewSize) -> str:
        # The pixel limit is part of the key: raising it lets a picture refused before be drawn.
        text = f"{RENDER_VERSION}\0{content}\0{size.token}\0{self.max_pixels}"
        return hashlib.sha256(text.encode()).hexdigest()

    async def thumbnail(self, chunks: Iterable[tuple[str, int]], size: PreviewSize) -> bytes:
        """The thumbnail's bytes (JPEG or PNG) of the file made of `chunks`. NoPreview when it has none."""
        chunks = tuple(chunks)
        path = self.path_of(chunks, size)
        cached = await asyncio.to_thread(_read_cached, path)
        if cached is not None:
            return cached
        if sum(length for _, length in chunks) > self.max_pixels * BYTES_PER_PIXEL:
            # more bytes than any picture within the pixel limit has: not assembled on disk to find out
            raise NoPreview("the file is larger than any picture a thumbnail is drawn from "
                            "([files] preview_max_megapixels)")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._make, path, chunks, size)

    def _make(self, path: Path, chunks: tuple[tuple[str, int], ...], size: PreviewSize) -> bytes:
        cached = _read_cached(path)  # drawn by another request while this one waited for a worker
        if cached is not None:
            return cached
        source = self._scratch / secrets.token_hex(8)
        try:
            with os.fdopen(_private_file(source), "wb") as out:
                for chunk_id, _length in chunks:
                    out.write(self.store.get(chunk_id))
            try:
                thumbnail = render(source, size, self.max_pixels)
            except NoPreview as refused:
                self._store(path, NO_PREVIEW + refused.reason.encode())
                raise
        finally:
            source.unlink(missing_ok=True)
        self._store(path, thumbnail)
        return thumbnail

    def _store(self, path: Path, data: bytes) -> None:
        private_dir(path.parent)
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        with os.fdopen(_private_file(temp), "wb") as out:
            out.write(data)
        os.replace(temp, path)
        self._written += len(data)
        if self.cache_bytes and self._written * SWEEP_SHARE > self.cache_bytes:
            self._sweep()

    def _sweep(self) -> None:
        """Remove the least recently used thumbnails until the cache holds KEEP_SHARE of its budget."""
        if not self._sweeping.acquire(blocking=False):
            return
        try:
            self._written = 0
            files = []
            for entry in self._kept():
                try:
                    stat = entry.stat()
                    files.append((stat.st_mtime, stat.st_size, entry.path))
                except FileNotFoundError:  # swept by another daemon sharing the cache
                    pass
            total = sum(size for _, size, _ in files)
            for _, size, name in sorted(files):
                if total <= self.cache_bytes * KEEP_SHARE:
                    break
                Path(name).unlink(missing_ok=True)
                total -= size
        finally:
            self._sweeping.release()

    def _contents(self) -> Iterator[os.DirEntry]:
        """The directory of each content with thumbnails."""
        for shard in os.scandir(self.root):
            if shard.is_dir() and shard.path != str(self._scratch):
                yield from (content for content in os.scandir(shard.path) if content.is_dir())

    def _kept(self) -> Iterator[os.DirEntry]:
        """Every thumbnail (and note of none) kept, temp files aside."""
        for content in self._contents():
            try:
                yield from (entry for entry in os.scandir(content.path) if not entry.name.startswith("."))
            except FileNotFoundError:  # pruned meanwhile
                continue

    def prune(self, live: set[str]) -> int:
        """Remove the thumbnails of every content not in `live` (content_digest of the current files);
        returns how many contents went. A file written meanwhile only has its thumbnail drawn again."""
        gone = 0
        for content in self._contents():
            if content.name not in live:
                shutil.rmtree(content.path, ignore_errors=True)
                gone += 1
        return gone


def _private_file(path: Path) -> int:
    """A new file only this user can read (0600 whatever the umask), open for writing."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)


def _read_cached(path: Path) -> bytes | None:
    """The kept thumbnail, its use recorded for the sweep; None if there is none; NoPreview if the
    file was found to have none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if data.startswith(NO_PREVIEW):
        raise NoPreview(data[len(NO_PREVIEW):].decode(errors="replace"))
    try:
        os.utime(path)
    except FileNotFoundError:  # swept meanwhile: the bytes read are still good
        pass
    return data


PREVIEWS = web.AppKey("previews", Previews)


def preview_limits(config: Config) -> dict[str, int]:
    """`[files]` preview_max_megapixels and preview_cache_mb; ConfigError (exit 2 at start) if negative."""
    return non_negative(config, "files", ("preview_max_megapixels", "preview_cache_mb"))


def open_previews(config: Config, store: BlobStore) -> Previews:
    """The data directory's thumbnails, with the limits of `[files]`: what every daemon serving them uses."""
    limits = preview_limits(config)
    return Previews(config.data_path("previews"), store, max_pixels=limits["preview_max_megapixels"] * 1_000_000,
                    cache_bytes=limits["preview_cache_mb"] * 1024 * 1024, workers=min(2, os.cpu_count() or 1))
