"""Compress an archive without ever leaving a half-written one in its place.

The compressed copy is written to a hidden temp name in the same directory,
fsynced, given the original's mode, owner and mtime, renamed into place, and
only then is the uncompressed archive removed.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import os
import shutil
from pathlib import Path
from typing import BinaryIO, Callable

import zstandard

_CHUNK = 1 << 20


def _zstd(src: BinaryIO, dst: BinaryIO) -> None:
    zstandard.ZstdCompressor(level=3).copy_stream(src, dst)


def _wrap(opener: Callable[[BinaryIO], BinaryIO]) -> Callable[[BinaryIO, BinaryIO], None]:
    def copy(src: BinaryIO, dst: BinaryIO) -> None:
        with opener(dst) as out:
            shutil.copyfileobj(src, out, _CHUNK)
    return copy


# Archive suffix -> function copying an uncompressed stream into a compressed one.
CODECS: dict[str, Callable[[BinaryIO, BinaryIO], None]] = {
    ".gz": _wrap(lambda f: gzip.GzipFile(filename="", mode="wb", fileobj=f, compresslevel=6)),
    ".bz2": _wrap(lambda f: bz2.BZ2File(f, "wb")),
    ".xz": _wrap(lambda f: lzma.LZMAFile(f, "wb")),
    ".zst": _zstd,
}


def temp_name(target: Path) -> Path:
    """Where the compressed copy of `target` is written before the rename."""
    return target.with_name(f".{target.name}.tmp-{os.getpid()}")


def compress_archive(archive: Path, suffix: str) -> Path:
    """Replace `archive` by `archive<suffix>`, keeping its mode, owner and mtime."""
    target = archive.with_name(archive.name + suffix)
    tmp = temp_name(target)
    st = os.stat(archive)
    try:
        with open(archive, "rb") as src, open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as dst:
            CODECS[suffix](src, dst)
            dst.flush()
            if os.geteuid() == 0:
                os.fchown(dst.fileno(), st.st_uid, st.st_gid)
            os.fchmod(dst.fileno(), st.st_mode & 0o7777)
            os.fsync(dst.fileno())
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(archive.parent)
    archive.unlink()
    fsync_dir(archive.parent)
    return target


def fsync_dir(directory: Path) -> None:
    """Make renames and unlinks in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
