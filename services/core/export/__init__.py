"""Everything a user has, taken out as ordinary files (`hearth export USER DIR`).

The layout of DIR:

    files/<folder>/<path>      every current file and directory of the folders the user owns
    calendars/<name>.ics       one iCalendar stream per calendar
    contacts/<name>.vcf        one vCard stream per address book
    shares.json                shares given and received (folders, calendars, address books)
    manifest.json              the user's registered email addresses, counts, sizes and the SHA-256
                               of every file above; written last, so an export without it is incomplete

Everything is read in one read transaction, so the export is one consistent
moment of the database even while daemons keep writing. DIR must be new or
empty, and nothing in it is ever overwritten (target.py). The same layout can
go into a zip archive written to a stream instead (`archive.export_zip`, what
the web UI's "Download my data" serves).
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import sqlite_utils

from ..addresses import registered_addresses
from ..errors import NotFound
from ..tree import BlobStore
from .dav import export_dav
from .files import export_files, total_file_bytes
from .shares import shares_of
from .target import ExportTarget, Target

MANIFEST_FORMAT = 1

# Given the bytes of file content about to be copied, returns what to call as they are.
Progress = Callable[[int], Callable[[int], None]]


def export_user(db: sqlite_utils.Database, store: BlobStore, user: str, root: Path, *,
                progress: Progress | None = None) -> dict:
    """Export `user` into `root`; returns the manifest.

    BadRequest if `root` is a file or not empty (nothing is written then),
    NotFound for an unknown user or a missing chunk, Conflict for a damaged chunk
    or a file that appeared in `root` meanwhile (what was written stays, with no manifest)."""
    return export_to(db, store, user, lambda: ExportTarget.create(root), progress=progress)


def export_to(db: sqlite_utils.Database, store: BlobStore, user: str, open_target: Callable[[], Target], *,
              progress: Progress | None = None) -> dict:
    """Export `user` into the target `open_target()` returns (called once the user is known to exist,
    so nothing is created for a mistyped name); returns the manifest, written last."""
    with snapshot(db):
        if db.execute("SELECT 1 FROM users WHERE name = ?", [user]).fetchone() is None:
            raise NotFound(f"no user named {user!r}")
        target = open_target()
        advance = progress(total_file_bytes(db, user)) if progress else (lambda n: None)
        files = export_files(db, store, user, target, advance)
        dav = export_dav(db, user, target)
        target.write("shares.json", [_json(shares_of(db, user))])
        email_addresses = registered_addresses(db, user)
    target.sync()
    manifest = {
        "format": MANIFEST_FORMAT,
        "user": user,
        "email_addresses": email_addresses,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "counts": {**asdict(files), **asdict(dav)},
        "total_bytes": sum(w.size for w in target.written),
        "files": [asdict(w) for w in target.written],
    }
    target.write("manifest.json", [_json(manifest)])
    target.sync()
    return manifest


@contextmanager
def snapshot(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One read transaction: in WAL mode every read inside sees the database as of the first one,
    while writers carry on (they wait for nobody; only checkpoints stop at this snapshot)."""
    db.conn.execute("BEGIN")
    try:
        yield db
    finally:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")  # nothing was written: ending the read is all this does


def _json(value) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
