"""Paths inside a synced folder: NFC, '/'-separated, relative, confined."""
from __future__ import annotations

import unicodedata

from ..errors import BadRequest

MAX_PATH_BYTES = 4096


def normalize_path(path: str) -> str:
    """The canonical form of a folder-relative path, or BadRequest saying why not.

    Rejected: empty, absolute ('/x'), NUL, backslashes, empty segments ('a//b',
    trailing '/'), '.' and '..' segments, and paths over MAX_PATH_BYTES.
    """
    if not isinstance(path, str) or not path:
        raise BadRequest("empty path")
    path = unicodedata.normalize("NFC", path)
    if "\x00" in path:
        raise BadRequest("path contains NUL")
    if "\\" in path:
        raise BadRequest(f"path contains a backslash: {path!r}")
    if path.startswith("/"):
        raise BadRequest(f"path must be relative: {path!r}")
    if len(path.encode("utf-8")) > MAX_PATH_BYTES:
        raise BadRequest("path too long")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise BadRequest(f"path has an empty, '.' or '..' segment: {path!r}")
    return path


def parent_and_descendants_pattern(path: str) -> str:
    """A GLOB pattern matching everything below `path` (GLOB is case-sensitive, unlike LIKE)."""
    escaped = "".join(f"[{c}]" if c in "*?[" else c for c in path)
    return escaped + "/*"
