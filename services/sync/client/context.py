"""What a sync cycle works with (the Context) and what it reports.

Server-authoritative. A row in the state file says "at the last sync, the local
file with this size/mtime/inode was server revision R". Pulling applies the
server's changes since the cursor; pushing scans the disk and commits each
change against the revision it was based on. When both sides changed a file,
the local version is moved aside as a conflict copy (which the push then
uploads as a new file) and the server's version takes the name: both survive.
Pull runs first so a conflict is seen as one, not as a 409 on upload.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from services.sync.client.guard import DEFAULT_SETTLE, PendingDeletions
from services.sync.client.ignore import STATE_DIR, IgnoreRules
from services.sync.client.remote import Remote
from services.sync.client.state import ClientState

log = logging.getLogger("hearth.sync")
STATE_FILE = "state.sqlite3"


class FolderGone(Exception):
    """The synced directory (or its .hearth state) is not the one the client started
    with: unmounted, moved or replaced. Nothing is synced until it is back."""


@dataclass
class Report:
    """What a cycle did and what it left."""
    uploaded: int = 0
    downloaded: int = 0
    deleted_remote: int = 0
    deleted_local: int = 0
    other: int = 0            # mkdir, rename, adopt, conflict moves, metadata
    sent_chunks: int = 0      # chunks uploaded (the server lacked them)
    sent_bytes: int = 0
    fetched_chunks: int = 0   # chunks that came over the network
    reused_chunks: int = 0    # chunks found on the local disk instead
    pending: int = 0          # work that must be retried (unstable files, failed writes, 409s)
    settle_in: float = 0.0    # deletions wait this many seconds more for a spree to settle
    problems: list[str] = field(default_factory=list)  # reported, not retried until something changes

    def add(self, other: "Report") -> None:
        """Sum the counters of `other` into this one (problems and pending are the latest)."""
        for name in ("uploaded", "downloaded", "deleted_remote", "deleted_local", "other", "sent_chunks",
                     "sent_bytes", "fetched_chunks", "reused_chunks"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.pending, self.problems = other.pending, other.problems

    def summary(self) -> str:
        return (f"{self.uploaded} uploaded ({self.sent_chunks} chunks, {self.sent_bytes} bytes sent), "
                f"{self.downloaded} downloaded ({self.fetched_chunks} chunks fetched, {self.reused_chunks} "
                f"found locally), {self.deleted_remote} deleted on the server, {self.deleted_local} deleted "
                f"here, {self.other} other")

    @property
    def transferred(self) -> bool:
        """Files moved or deleted (not only directories or bookkeeping)."""
        return bool(self.uploaded or self.downloaded or self.deleted_remote or self.deleted_local)

    @property
    def changed(self) -> bool:
        return bool(self.uploaded or self.downloaded or self.deleted_remote or self.deleted_local or self.other)


class Context:
    """What pull and push share: the folder on disk, its state, the server, who we are."""

    def __init__(self, root: Path, state: ClientState, remote: Remote, folder: int, device: str,
                 confirm_deletes: bool = False, settle: float = DEFAULT_SETTLE):
        self.root = root
        self.state = state
        self.remote = remote
        self.folder = folder
        self.device = device
        self.confirm_deletes = confirm_deletes
        self.deletions = PendingDeletions(settle)
        self.ignore = IgnoreRules.load(root)
        self.identity = self._identity()
        self.reported: set[str] = set()   # problems already logged (each is logged once)
        self.blocked: dict[str, tuple] = {}  # relpath -> metadata refused by the server (403/507)

    def _identity(self) -> tuple[int, int]:
        st = os.stat(self.root / STATE_DIR / STATE_FILE)
        return st.st_dev, st.st_ino

    def check_root(self) -> None:
        """FolderGone unless the directory still holds the state file we opened."""
        try:
            same = self._identity() == self.identity
        except OSError:
            same = False
        if not same:
            raise FolderGone(f"{self.root} no longer holds this client's state ({STATE_DIR}/{STATE_FILE}): "
                             "was it unmounted, moved or replaced? Nothing is synced until it is back.")

    def path(self, relpath: str) -> Path:
        return self.root / relpath

    def problem(self, report: Report, message: str) -> None:
        report.problems.append(message)
        if message not in self.reported:
            self.reported.add(message)
            log.warning("%s", message)

    def reload_ignore(self) -> bool:
        """Re-read .hearthignore; True if the rules changed."""
        rules = IgnoreRules.load(self.root)
        changed = rules.user_lines != self.ignore.user_lines
        self.ignore = rules
        return changed
