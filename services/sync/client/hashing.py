"""The one place that decides which whole-file hash the client uses.

BLAKE3 when the `blake3` package is installed, else hashlib's BLAKE2b (32-byte
digest). The name is stored next to every digest so a mixed fleet never compares
digests of different algorithms.
"""
from __future__ import annotations

import hashlib
import os
from typing import Callable

try:
    import blake3 as _blake3
except ImportError:  # pragma: no cover - depends on the environment
    _blake3 = None

HASH_NAME = "blake3" if _blake3 is not None else "blake2b-256"
READ_SIZE = 1 << 20


def new_hasher():
    """A fresh incremental hasher with `update()` and `hexdigest()`."""
    if _blake3 is not None:
        return _blake3.blake3()
    return hashlib.blake2b(digest_size=32)


def hash_bytes(data: bytes) -> str:
    hasher = new_hasher()
    hasher.update(data)
    return hasher.hexdigest()


def hash_fd(fd: int, on_chunk: Callable[[], None] | None = None) -> str:
    """Stream an open file descriptor from its current position; `on_chunk` runs after
    each read (the scanner's tests use it to race a writer against the hash)."""
    hasher = new_hasher()
    while True:
        block = os.read(fd, READ_SIZE)
        if not block:
            return hasher.hexdigest()
        hasher.update(block)
        if on_chunk is not None:
            on_chunk()
