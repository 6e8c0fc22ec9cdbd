"""The mass-deletion guard: refuse to propagate deletes that look like an accident.

An unmounted disk, a renamed sync folder or a wiped directory looks, to a naive
scanner, like "the user deleted everything". The client gathers every pending
deletion of the folder (PendingDeletions) and calls deletion_guard() on the
whole set before sending any; a non-None reason means: hold them, tell the user,
and proceed only when they confirm (see hold.py). How many deletions are too
many is services/core/mass_deletion's judgement, the one the server applies to
the deletes WebDAV and Nextcloud clients send.
"""
from __future__ import annotations

import os
import time

from services.core.mass_deletion import MAX_DELETE_SHARE, MIN_DELETES, too_many_deleted
from services.sync.client.ignore import STATE_DIR
from services.sync.client.scan import ScanResult


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
    if too_many_deleted(deleted, tracked_count, max_share, min_deletes):
        return f"{deleted} of {tracked_count} tracked files deleted here at once (more than {max_share:.0%})"
    return None


QUICK_SETTLE = 0.25    # seconds of quiet before a few deletions (at most MIN_DELETES) are sent ...
DEFAULT_SETTLE = 3.0   # ... and before more are: long enough that a spree arriving in pieces is seen whole


class PendingDeletions:
    """Tracked files and directories found missing here and not yet deleted on the server.

    Kept across cycles, so the guard judges every pending deletion of the folder together
    however the watcher cut a spree into batches. The set is sent only once no deletion has
    been added to it for a settle window: a few files wait a moment, more wait `settle`
    seconds. A set above the guard's limit is held at once, whatever the window.
    """

    def __init__(self, settle: float = DEFAULT_SETTLE, quick: float = QUICK_SETTLE):
        self.settle, self.quick = settle, min(quick, settle)
        self.files: set[str] = set()
        self.dirs: set[str] = set()
        self.grew_at = 0.0

    def __bool__(self) -> bool:
        return bool(self.files or self.dirs)

    def update(self, result: ScanResult, hints: set[str] | None, gone_dirs: list[str]) -> None:
        """Take in a scan: a full one (`hints` None) says what is missing now; a hinted one adds
        what it found missing and drops what it found present again."""
        missing = set(result.deleted) - set(result.dirs)  # a file replaced by a directory is no deletion
        if hints is None:
            grew = bool(missing - self.files) or bool(set(gone_dirs) - self.dirs)
            self.files, self.dirs = missing, set(gone_dirs)
        else:
            present = {*result.changed, *result.touched, *result.unchanged, *result.unstable}
            grew = bool(missing - self.files) or bool(set(gone_dirs) - self.dirs)
            self.files = (self.files - present) | missing
            self.dirs = (self.dirs - result.dirs) | set(gone_dirs)
        if grew:
            self.grew_at = time.monotonic()

    def discard(self, relpaths) -> None:
        self.files.difference_update(relpaths)
        self.dirs.difference_update(relpaths)

    def clear(self) -> None:
        self.files.clear()
        self.dirs.clear()

    def settle_in(self) -> float:
        """Seconds until the set may be sent (0: now)."""
        if not self:
            return 0.0
        window = self.quick if len(self.files) <= MIN_DELETES else self.settle
        return max(0.0, self.grew_at + window - time.monotonic())
