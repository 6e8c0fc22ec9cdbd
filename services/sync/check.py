"""`hearth sync check [--verify]`: is the sync store consistent? Reads only.

Compares the journal (folders, entries, revisions, revision_chunks) with
itself and with the chunk store. Unreferenced chunks are counted but are not a
problem: uploads not committed yet and chunks of expired versions are garbage
collection's business. Safe while the daemon runs: the database is read in one
snapshot, and a chunk found missing is only reported if it is still
referenced afterwards (a version may have expired and its chunk been collected
meanwhile).
"""
from __future__ import annotations

import argparse
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import blake3
import sqlite_utils

from services.core.errors import CommandError, NotFound
from services.core.blobs import open_blob_store, store_problem
from services.core.tree import BlobStore

MAX_LINES = 50
HASH_PIECE = 1024 * 1024


@dataclass
class CheckReport:
    """What `check_store` found: problems by kind (all empty when consistent), then counts."""

    missing_chunks: list[str] = field(default_factory=list)   # referenced, absent from the store
    corrupt_chunks: list[str] = field(default_factory=list)   # bytes don't hash to the id (verify_content)
    dangling_entries: list[str] = field(default_factory=list)  # entry's revision_id names no revision
    bad_sizes: list[str] = field(default_factory=list)         # chunk lengths don't add up to size
    bad_lengths: list[str] = field(default_factory=list)       # a recorded chunk length isn't the stored one
    index_mismatches: list[str] = field(default_factory=list)  # revision_chunks disagrees with revisions.chunks
    stale_folder_seqs: list[str] = field(default_factory=list)  # a folder's seq below one of its entries'
    folders: int = 0
    entries: int = 0
    revisions: int = 0
    chunks_referenced: int = 0
    chunks_stored: int = 0
    orphan_chunks: int = 0

    def problems(self) -> list[str]:
        """One line per problem."""
        return ([f"missing chunk {cid} (referenced by a revision)" for cid in self.missing_chunks]
                + [f"corrupt chunk {cid} (its bytes hash to something else)" for cid in self.corrupt_chunks]
                + self.dangling_entries + self.bad_sizes + self.bad_lengths + self.index_mismatches
                + self.stale_folder_seqs)

    @property
    def consistent(self) -> bool:
        return not self.problems()


def check_store(db: sqlite_utils.Database, store: BlobStore, verify_content: bool = False) -> CheckReport:
    """Check the journal against itself and the chunk store; writes nothing."""
    report = CheckReport()
    db.execute("BEGIN")  # one snapshot for every query below
    try:
        _count(db, report)
        report.dangling_entries = list(_dangling_entries(db))
        lengths = _check_revisions(db, report)
        report.stale_folder_seqs = list(_stale_folder_seqs(db))
        referenced_missing = list(_missing_chunks(db, store, report, lengths))
    finally:
        db.execute("ROLLBACK")
    report.missing_chunks = [cid for cid in referenced_missing if _is_referenced(db, cid)]
    _check_stored(db, store, report, verify_content)
    return report


def _count(db: sqlite_utils.Database, report: CheckReport) -> None:
    one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
    report.folders = one("SELECT COUNT(*) FROM folders")
    report.entries = one("SELECT COUNT(*) FROM entries")
    report.revisions = one("SELECT COUNT(*) FROM revisions")


def _dangling_entries(db: sqlite_utils.Database) -> Iterator[str]:
    for entry_id, folder, path, revision_id in db.execute("""
            SELECT e.id, e.folder_id, e.path, e.revision_id FROM entries e
            LEFT JOIN revisions r ON r.id = e.revision_id WHERE r.id IS NULL ORDER BY e.id"""):
        yield f"entry {entry_id} ({path!r} in folder {folder}) points at revision {revision_id}, which does not exist"


def _check_revisions(db: sqlite_utils.Database, report: CheckReport) -> dict[str, dict[int, int]]:
    """Sizes against chunk lengths, and the revision_chunks index against each revision's list.
    Returns the lengths recorded for each chunk: {chunk id: {length: the first revision saying so}}."""
    lengths: dict[str, dict[int, int]] = {}
    for revision_id, size, chunks_json in db.execute("SELECT id, size, chunks FROM revisions ORDER BY id"):
        chunks = json.loads(chunks_json)
        for cid, length in chunks:
            lengths.setdefault(cid, {}).setdefault(length, revision_id)
        total = sum(length for _, length in chunks)
        if total != size:
            report.bad_sizes.append(f"revision {revision_id}: chunk lengths add up to {total}, not its size {size}")
        listed = {cid for cid, _ in chunks}
        indexed = {row[0] for row in db.execute(
            "SELECT chunk_id FROM revision_chunks WHERE revision_id = ?", [revision_id])}
        if listed != indexed:
            report.index_mismatches.append(
                f"revision {revision_id}: revision_chunks has {len(indexed - listed)} chunk(s) not in its list "
                f"and lacks {len(listed - indexed)} of it")
    for (revision_id,) in db.execute("""SELECT DISTINCT revision_id FROM revision_chunks
                                        WHERE revision_id NOT IN (SELECT id FROM revisions)"""):
        report.index_mismatches.append(f"revision_chunks rows for revision {revision_id}, which does not exist")
    return lengths


def _stale_folder_seqs(db: sqlite_utils.Database) -> Iterator[str]:
    for folder, seq, highest in db.execute("""
            SELECT f.id, f.seq, MAX(e.seq) FROM folders f JOIN entries e ON e.folder_id = f.id
            GROUP BY f.id HAVING MAX(e.seq) > f.seq ORDER BY f.id"""):
        yield f"folder {folder}: seq {seq} is below its entries' highest seq {highest}"


def _missing_chunks(db: sqlite_utils.Database, store: BlobStore, report: CheckReport,
                    lengths: dict[str, dict[int, int]]) -> Iterator[str]:
    """Referenced chunks absent from the store; on the way, recorded lengths that are not the stored
    chunk's (a download would send the wrong Content-Length, a quota would count the wrong bytes)."""
    for (cid,) in db.execute("SELECT DISTINCT chunk_id FROM revision_chunks ORDER BY chunk_id"):
        report.chunks_referenced += 1
        stored = store.sizes([cid]).get(cid)
        if stored is None:
            yield cid
            continue
        for length, revision_id in sorted(lengths.get(cid, {}).items()):
            if length != stored:
                report.bad_lengths.append(f"revision {revision_id}: chunk {cid} is recorded as {length} bytes, "
                                          f"but {stored} are stored")


def _is_referenced(db: sqlite_utils.Database, cid: str) -> bool:
    return db.execute("SELECT 1 FROM revision_chunks WHERE chunk_id = ? LIMIT 1", [cid]).fetchone() is not None


def _check_stored(db: sqlite_utils.Database, store: BlobStore, report: CheckReport, verify_content: bool) -> None:
    for cid in store.stored():
        report.chunks_stored += 1
        if not _is_referenced(db, cid):
            report.orphan_chunks += 1
        if verify_content and not _hashes_to(store, cid):
            report.corrupt_chunks.append(cid)
    report.corrupt_chunks.sort()


def _hashes_to(store: BlobStore, cid: str) -> bool:
    hasher = blake3.blake3()
    try:
        with store.open(cid) as f:
            while piece := f.read(HASH_PIECE):
                hasher.update(piece)
    except NotFound:  # collected since it was listed: nothing to verify
        return True
    except OSError:  # unreadable bytes are as bad as wrong ones
        return False
    return hasher.hexdigest() == cid


def _open_read_only(path: Path) -> sqlite_utils.Database:
    if not path.exists():
        raise CommandError(f"no sync database at {path}: has the sync daemon ever run with this config?")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    return sqlite_utils.Database(conn)


def render(report: CheckReport) -> list[str]:
    """The human report: problems (at most MAX_LINES, then a count), then one summary line."""
    problems = report.problems()
    lines = problems[:MAX_LINES]
    if len(problems) > MAX_LINES:
        lines.append(f"... and {len(problems) - MAX_LINES} more")
    if problems:
        lines.append(f"INCONSISTENT: {len(problems)} problems")
    else:
        lines.append(f"consistent: {report.folders} folders, {report.entries} entries, {report.revisions} "
                     f"revisions, {report.chunks_referenced} chunks ({report.orphan_chunks} orphaned)")
    return lines


def run_check(args: argparse.Namespace) -> int:
    """`hearth sync check`: print the report; 0 if consistent, 1 otherwise."""
    from services.core.config import load_config
    from services.core.db import db_path

    config = load_config(args.config)
    blobs = config.data_path("blobs")
    db = _open_read_only(db_path(config.data_dir))
    store = None
    try:
        if config.storage.blobs == "local" and not blobs.is_dir():  # the daemon makes it at its first start
            raise CommandError(f"no chunk store at {blobs}")
        store = open_blob_store(config)
        problem = store_problem(store)
        if problem:
            raise CommandError(problem)
        report = check_store(db, store, verify_content=bool(args.verify))
    finally:
        db.close()
        if store is not None:
            store.close()
    for line in render(report):
        print(line)
    return 0 if report.consistent else 1
