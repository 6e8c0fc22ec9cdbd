"""A consistent copy of the live database, taken while the daemons keep writing.

SQLite's online backup API copies every page inside one read transaction: in
WAL mode that transaction sees one committed state and blocks no writer. The
copy is then switched out of WAL mode, so it is one self-contained file, and
checked with `PRAGMA integrity_check` before anything calls it a backup.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

from ..db import BUSY_TIMEOUT_MS
from ..errors import CommandError
from ..private import create_private_file

HASH_PIECE = 1 << 20


def copy_database(source: Path, target: Path) -> None:
    """Write a consistent, checked, single-file copy of the database `source` to the new file `target`."""
    if not source.exists():
        raise CommandError(f"no database at {source}: nothing to back up (has `hearth init` run here?)")
    create_private_file(target)
    live = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    copy = sqlite3.connect(str(target), isolation_level=None)
    try:
        live.backup(copy)  # all pages in one step: one read transaction, one consistent state
        copy.execute("PRAGMA journal_mode = DELETE")
        check_database(copy, target)
        copy.close()
        with open(target, "rb+") as out:
            os.fsync(out.fileno())
    finally:
        live.close()
        copy.close()


def check_database(conn: sqlite3.Connection, path: Path) -> None:
    """CommandError unless SQLite finds the database whole."""
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
    if problems != ["ok"]:
        raise CommandError(f"{path}: the database is damaged: {problems[0]}")


def referenced_chunks(path: Path) -> set[str]:
    """Every chunk a revision of the database at `path` names: current files, kept versions and the trash."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT DISTINCT chunk_id FROM revision_chunks")}
    finally:
        conn.close()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while piece := source.read(HASH_PIECE):
            digest.update(piece)
    return digest.hexdigest()
