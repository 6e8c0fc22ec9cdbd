"""Paths inside a synced folder: NFC, '/'-separated, relative, confined; and the names a new entry may have.

Every surface that creates entries (sync commits, WebDAV, share-link uploads)
does so through the journal, which refuses a name `name_problem` objects to: the
same names are refused everywhere, with the same reason. Paths that already
exist are only normalised, so an older entry with such a name can still be read,
renamed or deleted.
"""
from __future__ import annotations

import re
import unicodedata

from ..errors import BadRequest

MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255  # one segment, UTF-8: what ext4, APFS, NTFS and ZFS hold
# C0 controls, DEL and C1 controls break terminals, logs and line-based tools; bidirectional overrides and
# isolates make a name display as another one ("invoice\u202etxt.exe" shows as "invoiceexe.txt").
_REFUSED_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


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


def name_problem(path: str) -> str | None:
    """Why an entry may not be created at the normalised `path`, or None: a segment with a control character
    or a bidirectional override or isolate, or one over MAX_NAME_BYTES."""
    for segment in path.split("/"):
        if found := _REFUSED_CHARACTERS.search(segment):
            kind = "a bidirectional override or isolate" if found.group() >= "\u202a" else "a control character"
            return f"the name {segment!r} contains {kind} (U+{ord(found.group()):04X})"
        if (size := len(segment.encode("utf-8"))) > MAX_NAME_BYTES:
            return f"the name {segment[:40]!r}... has {size} bytes; a name may have at most {MAX_NAME_BYTES}"
    return None


def creatable_path(path: str) -> str:
    """normalize_path for a path an entry is created at (or given content at): BadRequest when
    `name_problem` refuses its name."""
    path = normalize_path(path)
    if problem := name_problem(path):
        raise BadRequest(f"{problem}; choose another name")
    return path


def parent_and_descendants_pattern(path: str) -> str:
    """A GLOB pattern matching everything below `path` (GLOB is case-sensitive, unlike LIKE)."""
    escaped = "".join(f"[{c}]" if c in "*?[" else c for c in path)
    return escaped + "/*"
