"""When deletions count as a mass deletion: one judgement for every place that watches for one.

hearth's sync client holds such a spree back before sending it (services/sync/client/guard.py); the
server records one that a WebDAV or Nextcloud client sent, since those clients send deletes straight
away (services/core/tree/deletion_runs.py). Both ask the same question with the same numbers, so a
household meets one rule whichever app deleted the files.
"""
from __future__ import annotations

MAX_DELETE_SHARE = 0.5   # more than half the folder's files ...
MIN_DELETES = 10         # ... and more than this many: emptying a folder of a few files is ordinary housekeeping


def too_many_deleted(deleted: int, tracked: int, max_share: float = MAX_DELETE_SHARE,
                     min_deletes: int = MIN_DELETES) -> bool:
    """True when `deleted` of a folder's `tracked` files at once is a mass deletion. A folder emptied of more
    than `min_deletes` files is one too (all of them is more than any share)."""
    return tracked > 0 and deleted > min_deletes and deleted / tracked > max_share


def describe(deleted: int, tracked: int, max_share: float = MAX_DELETE_SHARE) -> str:
    """The words a user reads for it: '150 of 200 files deleted at once (more than 50%)'."""
    return f"{deleted} of {tracked} files deleted at once (more than {max_share:.0%})"
