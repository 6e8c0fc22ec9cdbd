"""Content-defined chunking and the content-addressed chunk store."""
import io
import os

import pytest

from services.core.errors import BadRequest, NotFound
from services.core.tree.chunks import MAX_SIZE, MIN_SIZE, ChunkStore, chunk_id, chunk_stream


@pytest.fixture(scope="module")
def big():
    return os.urandom(100 * 1024 * 1024)


def test_chunks_cover_the_stream_in_order_within_bounds_and_are_deterministic(big):
    data = big[: 20 * 1024 * 1024]
    chunks = list(chunk_stream(io.BytesIO(data)))
    assert b"".join(c.data for c in chunks) == data
    offset = 0
    for c in chunks:
        assert c.offset == offset and c.length == len(c.data) and c.id == chunk_id(c.data)
        offset += c.length
    assert all(MIN_SIZE <= c.length <= MAX_SIZE for c in chunks[:-1])
    assert [c.id for c in chunk_stream(io.BytesIO(data))] == [c.id for c in chunks]


def test_inserting_one_byte_in_100_mib_changes_at_most_three_chunks(big):
    before = [c.id for c in chunk_stream(io.BytesIO(big))]
    middle = len(big) // 2
    edited = big[:middle] + b"\x42" + big[middle:]
    after = [c.id for c in chunk_stream(io.BytesIO(edited))]
    assert 50 < len(before) < 150  # ~1 MiB average
    assert len(set(after) - set(before)) <= 3
    assert len(set(before) - set(after)) <= 3


def test_empty_stream_has_no_chunks():
    assert list(chunk_stream(io.BytesIO(b""))) == []


def test_put_get_has_many_delete(tmp_path):
    store = ChunkStore(tmp_path / "blobs")
    data = b"hello chunk"
    cid = chunk_id(data)
    store.put(cid, data)
    store.put(cid, data)  # idempotent
    assert (tmp_path / "blobs" / cid[:2] / cid[2:4] / cid).read_bytes() == data
    assert store.get(cid) == data
    with store.open(cid) as f:
        assert f.read() == data
    other = chunk_id(b"other")
    assert store.has_many([cid, other]) == {cid}
    store.delete(cid)
    store.delete(cid)
    assert store.has_many([cid]) == set()
    with pytest.raises(NotFound):
        store.get(cid)


def test_put_with_a_wrong_hash_changes_nothing(tmp_path):
    store = ChunkStore(tmp_path / "blobs")
    cid = chunk_id(b"right")
    with pytest.raises(BadRequest):
        store.put(cid, b"wrong")
    assert store.has_many([cid]) == set()
    assert [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("bad", ["../../etc/passwd", "AB" * 32, "a" * 63, "", "a" * 64 + "/x"])
def test_malformed_ids_are_rejected_before_touching_the_disk(tmp_path, bad):
    store = ChunkStore(tmp_path / "blobs")
    for call in (lambda: store.get(bad), lambda: store.put(bad, b"x"), lambda: store.delete(bad),
                 lambda: store.has_many([bad])):
        with pytest.raises(BadRequest):
            call()


def test_re_put_refreshes_the_upload_lease(tmp_path):
    store = ChunkStore(tmp_path / "blobs")
    cid = chunk_id(b"lease")
    store.put(cid, b"lease")
    os.utime(store.path(cid), (1000, 1000))
    assert list(store.written_before(2000)) == [cid]
    store.put(cid, b"lease")
    assert list(store.written_before(2000)) == []
    assert store.written_at(cid) > 2000


def test_stored_lists_every_chunk_and_leaves_unfinished_uploads_alone(tmp_path):
    store = ChunkStore(tmp_path / "blobs")
    ids = sorted(chunk_id(data) for data in (b"one", b"two", b"three"))
    for data in (b"one", b"two", b"three"):
        store.put(chunk_id(data), data)
    leftover = store.path(ids[0]).parent / f".{ids[0]}.abcd.tmp"
    leftover.write_bytes(b"half")
    os.utime(leftover, (1000, 1000))
    assert sorted(store.stored()) == ids
    assert leftover.exists()  # a check must change nothing; only GC's written_before clears these
