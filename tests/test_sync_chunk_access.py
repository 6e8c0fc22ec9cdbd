"""A chunk id is not a key: commits name only chunks their user holds, with the stored lengths.

A real sync daemon (and, for WebDAV uploads, a files daemon on the same data) on loopback, real
SQLite, real chunks: alice stores content, bob tries to reach it by its chunk ids.
"""
from __future__ import annotations

import random
import sqlite3
import subprocess
import sys

import pytest

from services.core.tree import chunk_id
from tests.daemons import LoopbackDaemon, serving
from tests.test_sync_server import SyncDaemon, commit, commit_item, folder, upload


class FilesBeside(LoopbackDaemon):
    """The files (WebDAV) daemon on the sync daemon's data directory and config file."""

    module, section = "services.files", "files"

    def __init__(self, sync: SyncDaemon):
        self.home, self.config, self.env = sync.home, sync.config, sync.env
        from tests.installation import free_port
        self.port = free_port()
        with open(self.config, "a") as config:
            config.write(f'[files]\nlisten = "127.0.0.1:{self.port}"\n')
        self.log_path = self.home / "files.stderr"

    def healthy(self) -> bool:
        return self.exchange("GET", "/healthz")[0] == 200


@pytest.fixture(scope="module")
def sync(tmp_path_factory):
    with serving(SyncDaemon(tmp_path_factory.mktemp("chunk-access")), "alice", "bob") as daemon:
        yield daemon
    assert "unhandled error" not in daemon.log()


def changes(sync: SyncDaemon, user: str, fid: int) -> list[str]:
    status, feed = sync.request("GET", f"/sync/v1/folders/{fid}/changes?since=0", user=user)
    assert status == 200, feed
    return [c["path"] for c in feed["changes"]]


def have(sync: SyncDaemon, user: str, fid: int, ids: list[str]) -> dict:
    status, body = sync.request("POST", f"/sync/v1/folders/{fid}/chunks/have", {"ids": ids}, user=user)
    assert status == 200, body
    return body


def uploads(sync: SyncDaemon) -> set[tuple[str, str]]:
    with sqlite3.connect(sync.home / "var" / "db" / "hearth.sqlite3") as db:
        return set(db.execute("SELECT uploader, chunk_id FROM chunk_uploads"))


def test_another_users_chunk_id_commits_nothing_and_have_does_not_tell(sync):
    secret = b"alice's diary, never shared"
    diary = folder(sync, "alice", "Diary")
    assert commit(sync, "alice", diary, "diary.txt", upload(sync, "alice", diary, secret))[0] == 200
    cid = chunk_id(secret)

    loot = folder(sync, "bob", "Loot")
    assert have(sync, "bob", loot, [cid]) == {"have": [], "missing": [cid]}  # no oracle
    assert have(sync, "alice", diary, [cid]) == {"have": [cid], "missing": []}
    status, refused = commit(sync, "bob", loot, "stolen.txt", [[cid, len(secret)]])
    assert status == 400 and refused["missing"] == [cid] and "missing" in refused["reason"]
    status, batch = sync.request("POST", f"/sync/v1/folders/{loot}/commits",
                                 {"commits": [commit_item("stolen.txt", [[cid, len(secret)]])]}, user="bob")
    assert status == 200 and batch["results"][0]["status"] == 400 and batch["results"][0]["missing"] == [cid]
    assert changes(sync, "bob", loot) == []  # nothing changed
    assert sync.request("GET", f"/sync/v1/folders/{loot}/chunks/{cid}", user="bob")[0] == 404
    assert ("bob", cid) not in uploads(sync)


def test_uploading_the_same_bytes_makes_the_chunk_yours_stored_once(sync):
    photo = random.Random(6).randbytes(300_000)
    album = folder(sync, "alice", "Album")
    chunks = upload(sync, "alice", album, photo)
    assert commit(sync, "alice", album, "photo.jpg", chunks)[0] == 200

    mine = folder(sync, "bob", "Camera")
    ids = [cid for cid, _ in chunks]
    assert have(sync, "bob", mine, ids)["have"] == []
    assert upload(sync, "bob", mine, photo) == chunks  # bob sends the bytes: accepted
    assert have(sync, "bob", mine, ids) == {"have": ids, "missing": []}
    status, revision = commit(sync, "bob", mine, "same photo.jpg", chunks)
    assert status == 200, revision
    assert b"".join(sync.request("GET", f"/sync/v1/folders/{mine}/chunks/{cid}", user="bob")[1]
                    for cid in ids) == photo
    stored = [cid for cid in sync.store.stored() if cid in ids]
    assert sorted(stored) == sorted(ids)  # dedup: one copy for both users
    assert {("alice", cid) for cid in ids} | {("bob", cid) for cid in ids} <= uploads(sync)

    # The batch upload proves possession too.
    song = b"bob's own song, sent in a batch"
    frame = bytes.fromhex(chunk_id(song)) + len(song).to_bytes(4, "big") + song
    assert sync.request("POST", "/sync/v1/chunks/batch", frame, user="bob")[0] == 201
    assert commit(sync, "bob", mine, "song.ogg", [[chunk_id(song), len(song)]])[0] == 200


def test_a_folder_shared_with_you_lends_you_its_chunks(sync):
    plan = b"the holiday plan alice shares"
    trip = folder(sync, "alice", "Trip")
    chunks = upload(sync, "alice", trip, plan)
    assert commit(sync, "alice", trip, "plan.txt", chunks)[0] == 200
    copy = folder(sync, "bob", "Copies")
    assert commit(sync, "bob", copy, "plan.txt", chunks)[0] == 400  # not shared yet

    assert sync.request("POST", f"/sync/v1/folders/{trip}/shares", {"user": "bob", "mode": "ro"},
                        user="alice")[0] == 200
    assert have(sync, "bob", copy, [chunks[0][0]])["have"] == [chunks[0][0]]
    status, revision = commit(sync, "bob", copy, "plan.txt", chunks)
    assert status == 200, revision
    assert sync.request("GET", f"/sync/v1/folders/{copy}/chunks/{chunks[0][0]}", user="bob") == (200, plan)


def test_declared_lengths_must_be_the_stored_ones(sync):
    big = random.Random(7).randbytes(2 * 1024 * 1024)  # one 2 MiB chunk
    cid = chunk_id(big)
    fid = folder(sync, "alice", "Lengths")
    assert sync.request("PUT", f"/sync/v1/chunks/{cid}", big, user="alice")[0] == 201
    status, usage_before = sync.request("GET", "/sync/v1/usage", user="alice")

    for declared in (1, len(big) - 1, len(big) + 1):
        status, refused = commit(sync, "alice", fid, "big.bin", [[cid, declared]])
        assert status == 400 and refused["reason"] == f"chunk {cid} is {len(big)} bytes, not the {declared} declared"
    status, batch = sync.request("POST", f"/sync/v1/folders/{fid}/commits",
                                 {"commits": [commit_item("big.bin", [[cid, 4]])]}, user="alice")
    rejected = batch["results"][0]
    assert status == 200 and rejected["status"] == 400 and "not the 4 declared" in rejected["reason"]
    item = commit_item("big.bin", [[cid, len(big)]])
    status, body = sync.request("POST", f"/sync/v1/folders/{fid}/commit", {**item, "size": 4}, user="alice")
    assert status == 400 and "not the declared size 4" in body["reason"]
    assert changes(sync, "alice", fid) == []
    assert sync.request("GET", "/sync/v1/usage", user="alice")[1] == usage_before

    status, revision = commit(sync, "alice", fid, "big.bin", [[cid, len(big)]])
    assert status == 200 and revision["size"] == len(big)


def test_webdav_uploads_count_as_yours_and_a_deleted_account_leaves_no_record(sync):
    with serving(FilesBeside(sync)) as files:
        assert files.exchange("MKCOL", "/files/bob/Scans/", user="bob")[0] == 201
        scan = b"a scan bob put over WebDAV"
        assert files.exchange("PUT", "/files/bob/Scans/scan.pdf", scan, user="bob")[0] == 201
    assert ("bob", chunk_id(scan)) in uploads(sync)

    result = subprocess.run([sys.executable, "-m", "services.cli", "--config", str(sync.config), "user", "del",
                             "bob", "--yes"], capture_output=True, text=True, env=sync.env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert {who for who, _ in uploads(sync)} == {"alice"}
