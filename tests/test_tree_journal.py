"""The folder journal: commits, conflicts, versions, sharing, quota, change feed, GC."""
import os
from datetime import datetime, timedelta, timezone

import pytest

from services.core.db import write
from services.core.errors import BadRequest, Conflict, Forbidden, NotFound
from services.core.tree import (ChunkStore, MissingChunks, QuotaExceeded, StaleRevision, changes_since,
                                chunk_id, collect_chunks, collect_garbage, commit_file, create_folder, delete,
                                expire_versions, folder_access, list_folders, mkdir, normalize_path,
                                rename, restore, share_folder, trash, usage, versions)


@pytest.fixture
def store(tmp_path):
    return ChunkStore(tmp_path / "blobs")


@pytest.fixture
def folder(db):
    return write(db, lambda d: create_folder(d, "alice", "Documents")).id


def upload(store, *blobs):
    chunks = []
    for data in blobs:
        cid = chunk_id(data)
        store.put(cid, data)
        chunks.append((cid, len(data)))
    return chunks


def commit(db, store, folder, path, base, *blobs, quota=None, device="laptop"):
    chunks = upload(store, *blobs)
    size = sum(n for _, n in chunks)
    return write(db, lambda d: commit_file(d, folder, path, base, chunks, size, 123, False, device,
                                           store=store, quota=quota))


def test_commit_new_file_then_update_on_current_base(db, store, folder):
    first = commit(db, store, folder, "notes/todo.txt", None, b"one", b"two")
    assert (first.path, first.size, first.kind, first.deleted) == ("notes/todo.txt", 6, "file", False)
    assert [n for _, n in first.chunks] == [3, 3]
    second = commit(db, store, folder, "notes/todo.txt", first.id, b"three")
    assert second.id != first.id and second.seq > first.seq
    assert [v.id for v in versions(db, folder, "notes/todo.txt")] == [second.id, first.id]


def test_stale_base_is_a_conflict_naming_the_current_revision_and_changes_nothing(db, store, folder):
    first = commit(db, store, folder, "a.txt", None, b"v1")
    second = commit(db, store, folder, "a.txt", first.id, b"v2")
    for base in (first.id, None):
        with pytest.raises(StaleRevision) as caught:
            commit(db, store, folder, "a.txt", base, b"v3")
        assert isinstance(caught.value, Conflict) and caught.value.status == 409
        assert caught.value.current == second.id and str(second.id) in str(caught.value)
    assert [v.id for v in versions(db, folder, "a.txt")] == [second.id, first.id]


def test_missing_chunks_are_listed_and_nothing_is_committed(db, store, folder):
    ids = [chunk_id(bytes([i])) for i in range(12)]
    with pytest.raises(MissingChunks) as caught:
        write(db, lambda d: commit_file(d, folder, "x", None, [(i, 1) for i in ids], 12, 0, False, "pc",
                                        store=store))
    assert isinstance(caught.value, BadRequest)
    assert len(caught.value.missing) == 12 and "and 2 more" in str(caught.value)
    assert changes_since(db, folder, 0)[0] == []


@pytest.mark.parametrize("bad", ["", "/etc/passwd", "a/../b", "..", "a//b", "a/", "./a", "a\x00b", "a\\b"])
def test_paths_are_confined(db, store, folder, bad):
    with pytest.raises(BadRequest):
        commit(db, store, folder, bad, None, b"x")
    with pytest.raises(BadRequest):
        normalize_path(bad)


def test_paths_are_nfc_normalised(db, store, folder):
    rev = commit(db, store, folder, "cafe\u0301.txt", None, b"x")
    assert rev.path == "caf\u00e9.txt"
    with pytest.raises(StaleRevision):
        commit(db, store, folder, "caf\u00e9.txt", None, b"y")


def test_bad_chunk_lists_are_rejected(db, store, folder):
    (cid, _), = upload(store, b"abc")
    for chunks, size in (([(cid, 3)], 4), ([(cid, 0)], 0), ([("nothex", 3)], 3), ([cid], 3)):
        with pytest.raises(BadRequest):
            write(db, lambda d: commit_file(d, folder, "f", None, chunks, size, 0, False, "pc", store=store))


def test_access_modes_and_listing(db, folder):
    assert folder_access(db, "alice", folder) == "owner"
    with pytest.raises(NotFound):
        folder_access(db, "bob", folder)
    with pytest.raises(Forbidden):
        write(db, lambda d: share_folder(d, "bob", folder, "bob", "rw"))
    write(db, lambda d: share_folder(d, "alice", folder, "bob", "ro"))
    assert folder_access(db, "bob", folder) == "ro"
    with pytest.raises(Forbidden):
        folder_access(db, "bob", folder, write=True)
    write(db, lambda d: share_folder(d, "alice", folder, "bob", "rw"))
    assert folder_access(db, "bob", folder, write=True) == "rw"
    own = write(db, lambda d: create_folder(d, "bob", "Photos"))
    assert [(f.name, f.owner, f.access) for f in list_folders(db, "bob")] == [
        ("Photos", "bob", "owner"), ("Documents", "alice", "rw")]
    with pytest.raises(BadRequest):
        write(db, lambda d: share_folder(d, "alice", folder, "carol", "admin"))
    write(db, lambda d: share_folder(d, "alice", folder, "bob", None))
    with pytest.raises(NotFound):
        folder_access(db, "bob", folder)
    with pytest.raises(NotFound):
        folder_access(db, "alice", own.id + 100)
    with pytest.raises(Conflict):
        write(db, lambda d: create_folder(d, "alice", "Documents"))


def test_rename_moves_chunks_without_upload_and_keeps_the_source_as_trash(db, store, folder):
    rev = commit(db, store, folder, "a.txt", None, b"content")
    moved = write(db, lambda d: rename(d, folder, "a.txt", "dir/b.txt", rev.id, "phone"))
    assert moved.path == "dir/b.txt" and moved.chunks == rev.chunks and moved.size == rev.size
    assert [m.path for m, _ in trash(db, folder)] == ["a.txt"]
    with pytest.raises(NotFound):
        write(db, lambda d: rename(d, folder, "a.txt", "c.txt", None, "phone"))
    other = commit(db, store, folder, "c.txt", None, b"c")
    with pytest.raises(Conflict):
        write(db, lambda d: rename(d, folder, "c.txt", "dir/b.txt", other.id, "phone"))
    with pytest.raises(StaleRevision):
        write(db, lambda d: rename(d, folder, "c.txt", "d.txt", rev.id, "phone"))


def test_rename_and_delete_of_a_directory_carry_its_contents(db, store, folder):
    d = write(db, lambda x: mkdir(x, folder, "src", "pc"))
    assert write(db, lambda x: mkdir(x, folder, "src", "pc")).id == d.id
    inner = commit(db, store, folder, "src/sub/f.txt", None, b"f")
    commit(db, store, folder, "srcx.txt", None, b"not inside")
    write(db, lambda x: rename(x, folder, "src", "dst", d.id, "pc"))
    changes, _, _ = changes_since(db, folder, 0)
    live = {c.path: c for c in changes if not c.deleted}
    assert set(live) == {"dst", "dst/sub/f.txt", "srcx.txt"}
    assert live["dst/sub/f.txt"].chunks == inner.chunks
    write(db, lambda x: delete(x, folder, "dst", live["dst"].id, "pc"))
    changes, _, _ = changes_since(db, folder, 0)
    assert {c.path for c in changes if not c.deleted} == {"srcx.txt"}
    with pytest.raises(Conflict):
        commit(db, store, folder, "srcx.txt/child", None, b"x")
    with pytest.raises(Conflict):
        write(db, lambda x: mkdir(x, folder, "srcx.txt", "pc"))


def test_delete_then_restore(db, store, folder):
    v1 = commit(db, store, folder, "doc.txt", None, b"first")
    v2 = commit(db, store, folder, "doc.txt", v1.id, b"second")
    with pytest.raises(StaleRevision):
        write(db, lambda d: delete(d, folder, "doc.txt", v1.id, "pc"))
    marker = write(db, lambda d: delete(d, folder, "doc.txt", v2.id, "pc"))
    assert marker.deleted and marker.chunks == ()
    assert [(m.id, last.id) for m, last in trash(db, folder)] == [(marker.id, v2.id)]
    with pytest.raises(NotFound):
        write(db, lambda d: delete(d, folder, "doc.txt", marker.id, "pc"))
    with pytest.raises(BadRequest):
        write(db, lambda d: restore(d, folder, "doc.txt", marker.id, "pc"))
    with pytest.raises(NotFound):
        write(db, lambda d: restore(d, folder, "nope.txt", v1.id, "pc"))
    back = write(db, lambda d: restore(d, folder, "doc.txt", v1.id, "pc"))
    assert back.id not in (v1.id, v2.id) and back.chunks == v1.chunks and not back.deleted
    assert trash(db, folder) == []
    assert [v.id for v in versions(db, folder, "doc.txt")] == [back.id, marker.id, v2.id, v1.id]


def test_recreate_after_delete_accepts_no_base(db, store, folder):
    v1 = commit(db, store, folder, "x", None, b"1")
    write(db, lambda d: delete(d, folder, "x", v1.id, "pc"))
    assert not commit(db, store, folder, "x", None, b"2").deleted


def test_changes_since_pages_in_monotonic_sequence(db, store, folder):
    revs = [commit(db, store, folder, f"f{i}", None, bytes([i])) for i in range(5)]
    seqs = [r.seq for r in revs]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    page, cursor, more = changes_since(db, folder, 0, limit=2)
    assert [c.path for c in page] == ["f0", "f1"] and more
    page, cursor, more = changes_since(db, folder, cursor, limit=2)
    assert [c.path for c in page] == ["f2", "f3"] and more
    page, cursor, more = changes_since(db, folder, cursor, limit=2)
    assert [c.path for c in page] == ["f4"] and not more
    assert changes_since(db, folder, cursor) == ([], cursor, False)
    commit(db, store, folder, "f1", revs[1].id, b"new")
    page, newer, _ = changes_since(db, folder, cursor)
    assert [c.path for c in page] == ["f1"] and newer > cursor and page[0].size == 3
    with pytest.raises(BadRequest):
        changes_since(db, folder, -1)
    with pytest.raises(NotFound):
        changes_since(db, folder + 99, 0)


def test_quota_counts_current_files_of_the_owner(db, store, folder):
    v1 = commit(db, store, folder, "a", None, b"x" * 60, quota=100)
    with pytest.raises(QuotaExceeded) as caught:
        commit(db, store, folder, "b", None, b"y" * 50, quota=100)
    assert caught.value.status == 507 and caught.value.code == "insufficient-storage"
    commit(db, store, folder, "a", v1.id, b"z" * 90, quota=100)  # replacing counts the difference
    assert usage(db, "alice") == 90 and usage(db, "bob") == 0


def test_gc_keeps_referenced_and_fresh_chunks_and_deletes_old_unreferenced(db, store, folder):
    kept = commit(db, store, folder, "kept", None, b"referenced")
    (old_cid, _), (fresh_cid, _) = upload(store, b"orphan-old", b"in-flight")
    for cid in (old_cid, kept.chunks[0][0]):
        os.utime(store.path(cid), (1000, 1000))
    deleted = write(db, lambda d: collect_garbage(d, store, 3600))
    assert deleted == [old_cid]
    assert store.has_many([old_cid, fresh_cid, kept.chunks[0][0]]) == {fresh_cid, kept.chunks[0][0]}


def test_gc_spares_a_chunk_re_put_after_it_was_listed(db, store, folder):
    (cid, _), = upload(store, b"raced")
    os.utime(store.path(cid), (1000, 1000))
    original = store.written_before

    def listing_then_reupload(cutoff):
        for found in original(cutoff):
            store.put(cid, b"raced")  # an upload lands between listing and deleting
            yield found

    store.written_before = listing_then_reupload
    assert write(db, lambda d: collect_garbage(d, store, 3600)) == []
    assert store.has_many([cid]) == {cid}


def test_expire_versions_drops_old_non_current_revisions_then_gc_frees_their_chunks(db, store, folder):
    v1 = commit(db, store, folder, "a", None, b"old content")
    v2 = commit(db, store, folder, "a", v1.id, b"new content")
    gone = commit(db, store, folder, "b", None, b"deleted content")
    marker = write(db, lambda d: delete(d, folder, "b", gone.id, "pc"))
    assert write(db, lambda d: expire_versions(d, datetime.now(timezone.utc) - timedelta(days=1))) == 0
    assert write(db, lambda d: expire_versions(d, datetime.now(timezone.utc) + timedelta(days=1))) == 2
    assert [v.id for v in versions(db, folder, "a")] == [v2.id]
    assert [v.id for v in versions(db, folder, "b")] == [marker.id]
    assert [(m.id, last) for m, last in trash(db, folder)] == [(marker.id, None)]
    deleted = write(db, lambda d: collect_garbage(d, store, -1))  # grace in the past: all old
    assert set(deleted) == {v1.chunks[0][0], gone.chunks[0][0]}
    assert store.get(v2.chunks[0][0]) == b"new content"


def test_unknown_folder_is_not_found(db, store):
    with pytest.raises(NotFound):
        commit(db, store, 999, "a", None, b"x")


def test_non_recursive_delete_refuses_a_directory_with_live_entries(db, store, folder):
    write(db, lambda d: mkdir(d, folder, "dir", "pc"))
    child = commit(db, store, folder, "dir/a.txt", None, b"inside")
    directory = versions(db, folder, "dir")[0]
    with pytest.raises(Conflict, match="dir is not empty"):
        write(db, lambda d: delete(d, folder, "dir", directory.id, "pc", recursive=False))
    assert not versions(db, folder, "dir")[0].deleted and not versions(db, folder, "dir/a.txt")[0].deleted
    write(db, lambda d: delete(d, folder, "dir/a.txt", child.id, "pc"))
    marker = write(db, lambda d: delete(d, folder, "dir", directory.id, "pc", recursive=False))
    assert marker.deleted and marker.path == "dir"


def test_expire_versions_in_batches_and_collect_chunks_from_a_listing(db, store, folder):
    v = commit(db, store, folder, "a", None, b"v0")
    old = [v]
    for n in range(1, 4):
        v = commit(db, store, folder, "a", v.id, f"v{n}".encode())
        old.append(v)
    later = datetime.now(timezone.utc) + timedelta(days=1)
    assert write(db, lambda d: expire_versions(d, later, limit=2)) == 2
    assert write(db, lambda d: expire_versions(d, later, limit=2)) == 1
    assert write(db, lambda d: expire_versions(d, later, limit=2)) == 0
    assert [r.id for r in versions(db, folder, "a")] == [v.id]
    ids = [r.chunks[0][0] for r in old]
    for cid in ids:
        os.utime(store.path(cid), (1000, 1000))
    assert set(write(db, lambda d: collect_chunks(d, store, ids, 2000))) == set(ids[:3])  # v3 is current
    assert store.has_many(ids) == {ids[3]}
