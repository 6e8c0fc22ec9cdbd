"""The mass-deletion guard: refuse to propagate deletes that look like an accident.

An unmounted disk, a renamed sync folder or a wiped directory looks, to a naive
scanner, like "the user deleted everything". The daemon calls deletion_guard()
before sending deletes; a non-None reason means: stop, tell the user, and only
proceed with an explicit override flag.
"""
from __future__ import annotations

import os

from services.sync.client.ignore import STATE_DIR
from services.sync.client.scan import ScanResult

MAX_DELETE_SHARE = 0.5   # refuse when more than half the tracked files would go ...
MIN_DELETES = 10         # ... and that is more than this many files


def deletion_guard(root: str | os.PathLike, scan_result: ScanResult, tracked_count: int,
                   max_share: float = MAX_DELETE_SHARE, min_deletes: int = MIN_DELETES) -> str | None:
    """None when the deletes in `scan_result` may be sent, else the reason to refuse."""
    root = os.fspath(root)
    if not os.path.lexists(root):
        return f"sync folder {root} is missing; was it moved, renamed or unmounted?"
    if os.path.islink(root) or not os.path.isdir(root):
        return f"sync folder {root} is not a directory"
    if any(path == "" for path, _ in scan_result.errors):
        return f"sync folder {root} cannot be read"
    if tracked_count > min_deletes:  # emptying a folder of a few files is ordinary housekeeping
        try:
            with os.scandir(root) as entries:
                names = [e.name for e in entries if e.name != STATE_DIR]
        except OSError as error:
            return f"sync folder {root} cannot be read: {error.strerror or error}"
        if not names:
            return (f"sync folder {root} is empty but {tracked_count} files are tracked; "
                    "is the disk mounted?")
    deleted = len(scan_result.deleted)
    if tracked_count and deleted > min_deletes and deleted / tracked_count > max_share:
        return (f"{deleted} of {tracked_count} tracked files would be deleted at once "
                f"(limit {max_share:.0%}); confirm to proceed")
    return None
