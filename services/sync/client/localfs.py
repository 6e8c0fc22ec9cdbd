"""Writing users' files safely: atomic replace and conflict-copy names.

Data safety rule: a user's file is never written in place. New content goes to a
temp file in the same directory (named so the ignore rules skip it), is verified,
fsynced, given its mode and mtime, renamed over the target, and the directory is
fsynced. Any failure removes the temp file and leaves the target untouched.
"""
from __future__ import annotations

import ctypes
import errno
import os
import re
import secrets
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Iterable

from services.core.durable import fsync_directory
from services.sync.client.hashing import new_hasher

TEMP_PREFIX = ".hearth-tmp-"
NAME_MAX_BYTES = 255


class HashMismatch(ValueError):
    """The written bytes do not hash to what the server promised; nothing was replaced."""

    def __init__(self, path: Path, expected: str, actual: str):
        super().__init__(f"{path}: content hash {actual} does not match expected {expected}")
        self.path, self.expected, self.actual = path, expected, actual


def temp_path_for(target: Path) -> Path:
    """A temp name beside `target` that the built-in ignore rules skip."""
    name = f"{TEMP_PREFIX}{secrets.token_hex(4)}-{target.name}"
    while len(name.encode()) > NAME_MAX_BYTES:
        name = name[:-1]
    return target.with_name(name)


def write_file_atomically(path: str | os.PathLike, chunks: Iterable[bytes], expected_hash: str | None = None,
                          mtime_ns: int | None = None, executable: bool = False) -> str:
    """Replace `path` with the concatenated `chunks`; return the content hash.

    The temp file is created with mode 0o666 so the process umask decides the rw
    bits; `executable` adds x wherever r is set (0o644 -> 0o755). Raises
    HashMismatch (or whatever the chunk iterator raised) with the target untouched.
    """
    target = Path(path)
    temp = temp_path_for(target)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        try:
            hasher = new_hasher()
            for chunk in chunks:
                hasher.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            digest = hasher.hexdigest()
            if expected_hash is not None and digest != expected_hash:
                raise HashMismatch(target, expected_hash, digest)
            os.fsync(fd)
            mode = os.fstat(fd).st_mode & 0o777
            if executable:
                mode |= (mode & 0o444) >> 2
            else:
                mode &= ~0o111
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        if mtime_ns is not None:
            os.utime(temp, ns=(mtime_ns, mtime_ns))
        os.replace(temp, target)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    fsync_directory(target.parent)
    return digest


_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)  # Linux (glibc 2.28+); elsewhere link + unlink
if _renameat2 is not None:
    _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
_AT_FDCWD, _RENAME_NOREPLACE = -100, 1


def rename_noreplace(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Rename, but never over an existing `target` (FileExistsError instead): one atomic
    renameat2(RENAME_NOREPLACE) where the kernel has it, else link + unlink (files only)."""
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code == errno.EEXIST:
            raise FileExistsError(code, os.strerror(code), os.fspath(target))
        if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # else the file system can't: fall back
            raise OSError(code, os.strerror(code), os.fspath(target))
    os.link(source, target)
    os.unlink(source)


_UNSAFE_DEVICE_CHARS = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|()]+')


def sanitize_device_name(device: str) -> str:
    """A device name that is safe inside a filename on Linux, macOS and Windows."""
    name = unicodedata.normalize("NFC", device)
    name = _UNSAFE_DEVICE_CHARS.sub("_", name)
    name = " ".join(name.split()).strip(" .")[:40].strip(" .")
    return name or "unknown device"


def split_extension(name: str) -> tuple[str, str]:
    """Split off the LAST suffix only: 'archive.tar.gz' -> ('archive.tar', '.gz').

    Dotfiles with no further dot ('.bashrc') and names with no dot or a trailing
    dot have no extension. One rule, predictable, and what Dropbox does.
    """
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or not ext or stem == ".":
        return name, ""
    return stem, "." + ext


def conflict_name(path: str | os.PathLike, device: str, when: datetime, counter: int = 1) -> str:
    """`dir/name (conflict from DEVICE YYYY-MM-DD HHMMSS).ext` beside `path`.

    `when` is used as given (the daemon passes local time). counter > 1 appends
    ' N' inside the stem: 'a (conflict from x 2026-01-02 030405) 2.txt'.
    """
    original = Path(path)
    stem, ext = split_extension(original.name)
    tag = f" (conflict from {sanitize_device_name(device)} {when:%Y-%m-%d %H%M%S})"
    if counter > 1:
        tag += f" {counter}"
    while len((stem + tag + ext).encode()) > NAME_MAX_BYTES and stem:
        stem = stem[:-1]
    return str(original.with_name(stem + tag + ext))


def unique_conflict_name(path: str | os.PathLike, device: str, when: datetime) -> str:
    """conflict_name() that never names an existing file (appends ' 2', ' 3', ...).

    The caller still creates the copy with O_EXCL/rename-no-replace semantics;
    this only picks a free name."""
    counter = 1
    while True:
        candidate = conflict_name(path, device, when, counter)
        if not os.path.lexists(candidate):
            return candidate
        counter += 1
