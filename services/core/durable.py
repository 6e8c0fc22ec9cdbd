"""Making writes durable: fsync a directory's entries, or a whole file system at once.

Data safety rule: a new name never becomes visible before the bytes behind it
are on disk. One file: write, fsync, rename, fsync the directory. Many small
files: write them all, sync the file system once (syncfs(2)), rename them all,
sync once more: two flushes for the group instead of two per file.
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

_syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)  # Linux; elsewhere os.sync()


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_filesystem(path: Path) -> None:
    """Everything written on `path`'s file system is on disk when this returns."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        if _syncfs is None or _syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)
