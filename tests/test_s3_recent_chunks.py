"""The sync daemon believes what it put moments ago instead of asking the bucket again, and never wrongly.

A real sync daemon with its chunks in a real SeaweedFS bucket, real SQLite: a commit of chunks the
daemon has just stored costs no HEAD per chunk (services/core/tree/recent_chunks.py), and a chunk
deleted by garbage collection or an account deletion between the upload and the commit is never
committed, even when the deletion was decided just before the upload and carried out just after it.
"""
from __future__ import annotations

import math
import threading
import time

import obstore
import pytest

from services.core.blobs import build_store
from services.core.config import load_config
from services.core.db import db_path, immediate, open_db
from services.core.tree import chunk_id
from services.core.tree.holders import forget_chunk
from tests.daemons import serving
from tests.test_s3_daemons import on_s3
from tests.test_sync_server import SyncDaemon, commit, folder, frame


@pytest.fixture(scope="module")
def s3_sync(tmp_path_factory, seaweed):
    daemon = SyncDaemon(tmp_path_factory.mktemp("s3recent"), extra="gc_interval = 0\n")
    on_s3(daemon, seaweed)
    with serving(daemon, "alice", "carol"):
        yield daemon


@pytest.fixture
def bucket_store(s3_sync):
    """The daemon's own bucket, as hearth's S3 store (the one garbage collection deletes through)."""
    config = load_config(s3_sync.config)
    store = build_store({"blobs": "s3", **{k: config.values["storage"][k] for k in
                                           ("s3_endpoint", "s3_bucket", "s3_region", "s3_prefix")}},
                        config, s3_sync.env)
    yield store
    store.close()


def send(sync: SyncDaemon, user: str, *blobs: bytes) -> None:
    status, body = sync.request("POST", "/sync/v1/chunks/batch", b"".join(frame(b) for b in blobs), user=user)
    assert status == 201, body


def downloaded(sync: SyncDaemon, user: str, fid: int, cid: str) -> bytes:
    status, body = sync.request("POST", f"/sync/v1/folders/{fid}/chunks/fetch", {"ids": [cid]}, user=user)
    assert status == 200, body
    return body[36:]


def referencing(sync: SyncDaemon, cid: str) -> int:
    db = open_db(db_path(sync.home / "var"))
    try:
        return db.execute("SELECT count(*) FROM revision_chunks WHERE chunk_id = ?", [cid]).fetchone()[0]
    finally:
        db.close()


def next_second(since: float) -> None:
    """S3 keeps write times in whole seconds (a lease is rounded up): wait for the next one."""
    while time.time() < math.floor(since) + 1.05:
        time.sleep(0.05)


def test_a_commit_of_chunks_the_daemon_just_stored_does_not_ask_the_bucket(s3_sync, seaweed, bucket_store):
    fid = folder(s3_sync, "alice", "fresh")
    data = b"stored a moment ago" * 1000
    cid = chunk_id(data)
    send(s3_sync, "alice", data)
    # Removed behind hearth's back: only a commit that asks the bucket (a HEAD) could notice.
    obstore.delete(seaweed.client(s3_sync.bucket), bucket_store.key(cid))
    status, body = commit(s3_sync, "alice", fid, "fresh.bin", [[cid, len(data)]])
    assert status == 200, body
    send(s3_sync, "alice", data)  # the bucket whole again for the checks after the module


def test_a_deletion_decided_before_an_upload_and_done_after_it_leaves_nothing_committed(s3_sync, bucket_store):
    fid = folder(s3_sync, "alice", "raced")
    data = b"an orphan of a failed upload, re-sent" * 1000
    cid = chunk_id(data)
    bucket_store.put(cid, data)  # unreferenced, as garbage collection finds it
    orphaned = bucket_store.written_at(cid)
    next_second(orphaned)
    db = open_db(db_path(s3_sync.home / "var"))
    try:
        answers: list = []
        with immediate(db):  # garbage collection's write transaction (gc._collect), step by step
            assert db.execute("SELECT 1 FROM revision_chunks WHERE chunk_id = ?", [cid]).fetchone() is None
            assert bucket_store.written_at(cid) == orphaned  # its lease ran out: to be deleted
            upload = threading.Thread(target=lambda: answers.append(send(s3_sync, "alice", data)))
            upload.start()  # alice sends the same bytes: the daemon puts them, then waits for the writer
            deadline = time.monotonic() + 8
            while bucket_store.written_at(cid) == orphaned and time.monotonic() < deadline:
                time.sleep(0.02)
            assert bucket_store.written_at(cid) != orphaned, "the daemon's put did not land"
            bucket_store.delete(cid)  # ... decided on the old lease, carried out after alice's put
            forget_chunk(db, cid)
        upload.join(timeout=30)
        assert answers == [None]
    finally:
        db.close()

    status, body = commit(s3_sync, "alice", fid, "raced.bin", [[cid, len(data)]])
    assert status == 400 and body["missing"] == [cid], body
    assert referencing(s3_sync, cid) == 0
    send(s3_sync, "alice", data)  # what the client does with a "missing" answer
    status, body = commit(s3_sync, "alice", fid, "raced.bin", [[cid, len(data)]])
    assert status == 200, body
    assert downloaded(s3_sync, "alice", fid, cid) == data


def test_an_account_deletion_between_upload_and_commit_leaves_nothing_committed(s3_sync):
    data = b"carol's bytes, which alice has too" * 1000
    cid = chunk_id(data)
    carols = folder(s3_sync, "carol", "carols")
    send(s3_sync, "carol", data)
    assert commit(s3_sync, "carol", carols, "hers.bin", [[cid, len(data)]])[0] == 200
    alices = folder(s3_sync, "alice", "alices")
    send(s3_sync, "alice", data)  # stored once: alice's put renews the lease carol's deletion ends
    next_second(time.time())
    deleted = s3_sync.hearth("user", "del", "carol", "--yes")
    assert deleted.returncode == 0 and "(1 stored chunks erased)" in deleted.stdout, deleted.stdout + deleted.stderr

    status, body = commit(s3_sync, "alice", alices, "mine.bin", [[cid, len(data)]])
    assert status == 400 and body["missing"] == [cid], body
    send(s3_sync, "alice", data)
    status, body = commit(s3_sync, "alice", alices, "mine.bin", [[cid, len(data)]])
    assert status == 200, body
    assert downloaded(s3_sync, "alice", alices, cid) == data
