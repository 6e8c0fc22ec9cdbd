"""The store check: a real database and chunk store, then damage done to them on purpose."""
import argparse
import json
import sqlite3

import pytest

from services.core.db import db_path, migrate, open_db, write
from services.core.schema import MIGRATION_SETS
from services.core.tree import ChunkStore, chunk_id, commit_file, create_folder, delete
from services.sync.check import MAX_LINES, CheckReport, check_store, render, run_check
from tests import seaweed
from tests.stores import backend, home_store, rot


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A data directory whose blobs are local, or in a bucket when the session keeps blobs in S3 (the check
    runs in this process then, and takes the credentials from its environment)."""
    (tmp_path / "hearth.toml").write_text(f'data_dir = "var"\n{seaweed.session_storage(tmp_path)}')
    for name, value in seaweed.session_environ().items():
        monkeypatch.setenv(name, value)
    path = db_path(tmp_path / "var")
    migrate(path, MIGRATION_SETS)
    return tmp_path


@pytest.fixture
def db(home):
    db = open_db(db_path(home / "var"))
    yield db
    db.close()


@pytest.fixture
def store(home):
    store = home_store(home / "hearth.toml")
    yield store
    store.close()


def commit(db, store, folder, path, base, *blobs):
    chunks = []
    for data in blobs:
        store.put(chunk_id(data), data)
        chunks.append((chunk_id(data), len(data)))
    size = sum(n for _, n in chunks)
    return write(db, lambda d: commit_file(d, folder, path, base, chunks, size, 0, False, "pc", store=store))


@pytest.fixture
def filled(db, store):
    """Two folders, a file with two versions, a deleted file, and one orphan chunk."""
    docs = write(db, lambda d: create_folder(d, "alice", "Docs")).id
    write(db, lambda d: create_folder(d, "bob", "Music"))
    v1 = commit(db, store, docs, "a.txt", None, b"first", b"shared")
    commit(db, store, docs, "a.txt", v1.id, b"second", b"shared")
    gone = commit(db, store, docs, "b.txt", None, b"gone")
    write(db, lambda d: delete(d, docs, "b.txt", gone.id, "pc"))
    store.put(chunk_id(b"orphan"), b"orphan")
    return docs


def args(home, verify=False):
    return argparse.Namespace(config=str(home / "hearth.toml"), verify=verify)


def test_a_consistent_store(db, store, filled, home, capsys):
    report = check_store(db, store, verify_content=True)
    assert report.consistent and report.problems() == []
    assert (report.folders, report.entries, report.revisions) == (2, 2, 4)
    assert (report.chunks_referenced, report.chunks_stored, report.orphan_chunks) == (4, 5, 1)
    assert run_check(args(home, verify=True)) == 0
    assert capsys.readouterr().out == "consistent: 2 folders, 2 entries, 4 revisions, 4 chunks (1 orphaned)\n"


def test_a_removed_blob_is_missing(db, store, filled, home, capsys):
    cid = chunk_id(b"first")
    store.delete(cid)
    report = check_store(db, store)
    assert report.missing_chunks == [cid] and not report.consistent
    assert run_check(args(home)) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [f"missing chunk {cid} (referenced by a revision)", "INCONSISTENT: 1 problems"]


def test_corrupt_bytes_are_found_only_when_verifying(db, store, filled):
    cid = chunk_id(b"shared")
    rot(store, cid, b"sharec")
    assert check_store(db, store).consistent
    assert check_store(db, store, verify_content=True).corrupt_chunks == [cid]


def test_journal_damage_is_reported_by_kind(db, store, filled):
    def damage(d):
        d.execute("PRAGMA foreign_keys = OFF")
        first = d.execute("SELECT MIN(id) FROM revisions").fetchone()[0]
        d.execute("UPDATE revisions SET size = size + 1 WHERE id = ?", [first])
        d.execute("DELETE FROM revision_chunks WHERE revision_id = ? AND chunk_id = ?", [first, chunk_id(b"first")])
        d.execute("UPDATE entries SET revision_id = 9999 WHERE path = 'b.txt'")
        d.execute("UPDATE folders SET seq = 1 WHERE id = ?", [filled])

    db.execute("PRAGMA foreign_keys = OFF")  # outside a transaction, or SQLite ignores it
    write(db, damage)
    report = check_store(db, store)
    assert len(report.bad_sizes) == 1 and "revision" in report.bad_sizes[0]
    assert len(report.index_mismatches) == 1 and "lacks 1" in report.index_mismatches[0]
    assert len(report.dangling_entries) == 1 and "9999" in report.dangling_entries[0]
    assert len(report.stale_folder_seqs) == 1 and f"folder {filled}" in report.stale_folder_seqs[0]
    assert report.orphan_chunks == 2  # b"first" lost its only index row: unreferenced now


def test_the_check_writes_nothing(db, store, filled, home):
    store.delete(chunk_id(b"first"))
    if isinstance(backend(store), ChunkStore):  # an upload in progress on disk (an object store has none)
        leftover = backend(store).path(chunk_id(b"gone")).parent / ".unfinished.tmp"
        leftover.write_bytes(b"an upload in progress")

    def snapshot():
        # -shm is SQLite's shared-memory index: readers record their snapshot there, by design
        files = {p: p.read_bytes() for p in sorted((home / "var").rglob("*"))
                 if p.is_file() and not p.name.endswith("-shm")}
        return files, {cid: (store.get(cid), store.written_at(cid)) for cid in store.stored()}

    before = snapshot()
    assert run_check(args(home, verify=True)) == 1
    assert snapshot() == before


def test_the_report_is_capped():
    report = CheckReport(missing_chunks=[f"{n:064x}" for n in range(MAX_LINES + 7)])
    lines = render(report)
    assert len(lines) == MAX_LINES + 2
    assert lines[-2:] == ["... and 7 more", f"INCONSISTENT: {MAX_LINES + 7} problems"]


def test_no_database_is_a_clear_error(tmp_path):
    (tmp_path / "hearth.toml").write_text('data_dir = "var"\n')
    from services.core.errors import CommandError
    with pytest.raises(CommandError, match="no sync database"):
        run_check(argparse.Namespace(config=str(tmp_path / "hearth.toml"), verify=False))
    assert not (tmp_path / "var").exists()


def test_a_recorded_length_other_than_the_stored_chunk_is_reported(db, store, filled, home, capsys):
    # A row written before commits were checked against the store, or edited by hand: sizes still add
    # up, so only the stored chunk can tell.
    cid, real = chunk_id(b"gone"), len(b"gone")
    with sqlite3.connect(db_path(home / "var")) as raw:
        changed = raw.execute("UPDATE revisions SET chunks = ?, size = 1 WHERE path = 'b.txt' AND deleted = 0",
                              [json.dumps([[cid, 1]])]).rowcount
    assert changed == 1
    assert run_check(args(home, verify=True)) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[-1] == "INCONSISTENT: 1 problems"
    assert out[0].endswith(f": chunk {cid} is recorded as 1 bytes, but {real} are stored")
