"""An export as one zip archive written to a stream, entry by entry, as it is produced.

The archive holds the same layout as `hearth export` writes into a directory
(files/, calendars/, contacts/, shares.json, manifest.json last). The stream
needs only `write`: zipfile then records each entry's sizes and CRC after its
data (data descriptors), so nothing is ever seeked back to or held in memory
beyond one chunk. Zip64 is on for every file, so a file over 4 GiB needs no
second pass. A failed export leaves the archive without its central directory:
no zip reader takes it for a complete one.
"""
from __future__ import annotations

import hashlib
import stat
import time
import zipfile
from typing import BinaryIO, Iterable

import sqlite_utils

from ..tree import BlobStore
from . import Progress, export_to
from .target import Written, safe_parts

# Most of a household's bytes are photos and videos that deflate cannot shrink; the
# fastest level still packs text, calendars and contacts well and keeps the
# download limited by the network rather than the CPU.
COMPRESS_LEVEL = 1
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


class ZipTarget:
    """The export Target that appends entries to a zip archive on `stream`; `close()` finishes it."""

    def __init__(self, stream: BinaryIO):
        self.zip = zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL)
        self.written: list[Written] = []
        self._directories: set[str] = set()

    def directory(self, relative: str) -> str:
        """Add a directory entry (once), so an empty folder still appears when the archive is unpacked."""
        name = "/".join(safe_parts(relative)) + "/"
        if name not in self._directories:
            self._directories.add(name)
            self.zip.mkdir(name, 0o755)
        return name

    def write(self, relative: str, pieces: Iterable[bytes], *, mtime_ns: int | None = None,
              executable: bool = False) -> Written:
        info = zipfile.ZipInfo("/".join(safe_parts(relative)), _zip_time(mtime_ns))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
        digest, size = hashlib.sha256(), 0
        with self.zip.open(info, "w", force_zip64=True) as entry:
            for piece in pieces:
                entry.write(piece)
                digest.update(piece)
                size += len(piece)
        done = Written(relative, size, digest.hexdigest())
        self.written.append(done)
        return done

    def sync(self) -> None:
        """Nothing to make durable: the stream's reader keeps the archive."""

    def close(self) -> None:
        """Write the central directory: only now is the archive complete."""
        self.zip.close()

    def abandon(self) -> None:
        """Leave the archive unfinished for good. ZipFile writes its central directory when it is
        garbage-collected too, which would make a failed export look complete; without its
        stream it has nothing to write to."""
        self.zip.fp = None


def export_zip(db: sqlite_utils.Database, store: BlobStore, user: str, stream: BinaryIO, *,
               progress: Progress | None = None) -> dict:
    """Export `user` as a zip archive written to `stream`; returns the manifest.

    Raises as export_user does; then the archive is left unfinished (see the module's note)."""
    target = ZipTarget(stream)
    try:
        manifest = export_to(db, store, user, lambda: target, progress=progress)
    except BaseException:
        target.abandon()
        raise
    target.close()
    return manifest


def _zip_time(mtime_ns: int | None) -> tuple[int, int, int, int, int, int]:
    """A zip entry's local date and time (zip has no time zone; unzip tools read it as local time)."""
    seconds = time.time() if mtime_ns is None else mtime_ns / 1e9
    return max(_ZIP_EPOCH, time.localtime(seconds)[:6])
