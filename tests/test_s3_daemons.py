"""The daemons and commands with [storage] blobs = "s3" against a real SeaweedFS gateway.

Sync clients, WebDAV, share links, `hearth sync check --verify` and account
deletion work as on local blobs; `var/blobs` stays empty and the bucket holds
exactly the chunks the journal references. /healthz and `hearth status` say
when the store cannot be reached.
"""
from __future__ import annotations

import base64
import http.client
import io
import json
import math
import os
import re
import sqlite3
import time

import pytest

from services.core.blobs import open_blob_store, status_line
from services.core.config import load_config
from services.core.db import db_path, immediate, open_db
from services.core.tree import chunk_stream
from services.core.tree.holders import forget_chunk
from tests.daemons import PASSWORDS, serving
from tests.test_daemon import wait_for
from tests.sync_harness import Client
from tests.test_share_links import LinksDaemon
from tests.test_sync_server import SyncDaemon

BIG = os.urandom(3 * 1024 * 1024 + 4321)  # several content-defined chunks


def on_s3(daemon, seaweed) -> None:
    """The daemon's chunks in its home's bucket (already so when the whole session runs on S3)."""
    daemon.bucket = seaweed.bucket_for(daemon.home)
    if "[storage]" not in daemon.config.read_text():
        with open(daemon.config, "a") as config:
            config.write(seaweed.storage_toml(daemon.bucket))
    daemon.env.update(seaweed.environ())


def local_blob_files(home) -> list:
    blobs = home / "var" / "blobs"
    return [path for path in blobs.rglob("*") if path.is_file()] if blobs.exists() else []


def referenced_chunks(home) -> set[str]:
    with sqlite3.connect(home / "var" / "db" / "hearth.sqlite3") as db:
        return {row[0] for row in db.execute("SELECT DISTINCT chunk_id FROM revision_chunks")}


def bucket_chunks(seaweed, bucket: str) -> set[str]:
    return {key.rpartition("/")[2] for key in seaweed.keys(bucket, "chunks/")}


@pytest.fixture(scope="module")
def s3_sync(tmp_path_factory, seaweed):
    daemon = SyncDaemon(tmp_path_factory.mktemp("s3sync"), extra="gc_interval = 0\n")
    on_s3(daemon, seaweed)
    with serving(daemon, "alice", "bob"):
        yield daemon


def test_sync_clients_round_trip_through_the_bucket_and_check_verifies_it(s3_sync, seaweed, tmp_path):
    a = Client(s3_sync, tmp_path / "a", device="A")
    (a.root / "notes.txt").write_text("hello from A")
    (a.root / "big.bin").write_bytes(BIG)
    (a.root / "sub").mkdir()
    (a.root / "sub" / "same.bin").write_bytes(BIG)  # dedup: the same chunks, stored once
    a.once()
    b = Client(s3_sync, tmp_path / "b", device="B")
    b.once()
    assert b.tree() == a.tree()

    assert local_blob_files(s3_sync.home) == []
    stored = bucket_chunks(seaweed, s3_sync.bucket)
    expected = {c.id for data in (b"hello from A", BIG) for c in chunk_stream(io.BytesIO(data))}
    assert expected <= stored == referenced_chunks(s3_sync.home)

    check = s3_sync.hearth("sync", "check", "--verify")
    assert check.returncode == 0, check.stdout + check.stderr
    status, body = s3_sync.request("GET", "/healthz")
    assert status == 200, body


def test_deleting_an_account_erases_its_chunks_from_the_bucket(s3_sync, seaweed, tmp_path):
    mine = os.urandom(300 * 1024)
    bob = Client(s3_sync, tmp_path / "bob", user="bob", device="phone", folder="Bobs")
    (bob.root / "secret.bin").write_bytes(mine)
    bob.once()
    ids = {c.id for c in chunk_stream(io.BytesIO(mine))}
    assert ids <= bucket_chunks(seaweed, s3_sync.bucket)
    # S3 keeps write times in whole seconds and the store rounds a lease up, so a chunk put in the
    # very second the deletion starts counts as "re-put since" and is left to GC: start in the next one.
    uploaded = time.time()
    while time.time() < math.floor(uploaded) + 1.05:
        time.sleep(0.05)
    deleted = s3_sync.hearth("user", "del", "bob", "--yes")
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert not ids & bucket_chunks(seaweed, s3_sync.bucket)
    assert bucket_chunks(seaweed, s3_sync.bucket) == referenced_chunks(s3_sync.home)


@pytest.fixture(scope="module")
def s3_files(tmp_path_factory, seaweed):
    daemon = LinksDaemon(tmp_path_factory.mktemp("s3files"))
    on_s3(daemon, seaweed)
    with serving(daemon, "alice"):
        yield daemon


def test_webdav_and_a_share_link_read_what_webdav_wrote_into_the_bucket(s3_files, seaweed):
    assert s3_files.exchange("MKCOL", "/files/alice/Docs", user="alice")[0] == 201
    assert s3_files.exchange("PUT", "/files/alice/Docs/big.bin", BIG, user="alice")[0] in (201, 204)
    status, _, data = s3_files.exchange("GET", "/files/alice/Docs/big.bin", user="alice")
    assert status == 200 and data == BIG
    status, headers, data = s3_files.exchange("GET", "/files/alice/Docs/big.bin", user="alice",
                                              headers={"Range": "bytes=2000000-2000099"})
    assert status == 206 and data == BIG[2000000:2000100]

    folder = sqlite3.connect(s3_files.db_path).execute("SELECT id FROM folders WHERE name = 'Docs'").fetchone()[0]
    link = s3_files.link(folder, "big.bin")
    status, _, data = s3_files.public("GET", link["url"] + "/download")
    assert status == 200 and data == BIG

    assert local_blob_files(s3_files.home) == []
    assert bucket_chunks(seaweed, s3_files.bucket) == referenced_chunks(s3_files.home)
    assert {c.id for c in chunk_stream(io.BytesIO(BIG))} <= bucket_chunks(seaweed, s3_files.bucket)


def test_a_webdav_put_asks_the_bucket_nothing_back_about_the_chunks_it_wrote(s3_files, seaweed):
    """One request per chunk, the PUT: the commit trusts what the upload just published instead of a HEAD
    per chunk from inside the write transaction (a 300 MiB file: 300 round trips holding the writer)."""
    s3_files.exchange("MKCOL", "/files/alice/Uploads", user="alice")
    data = os.urandom(3 * 1024 * 1024 + 999)
    chunks = {c.id for c in chunk_stream(io.BytesIO(data))}
    before = seaweed.requests(s3_files.bucket)
    assert s3_files.exchange("PUT", "/files/alice/Uploads/new.bin", data, user="alice")[0] == 201
    asked = seaweed.requests(s3_files.bucket) - before
    assert {method for method, _ in asked} == {"PUT"}, asked  # no HEAD (counted as GET) nor GET
    assert asked["PUT", "200"] >= len(chunks), asked  # more only if a PUT was retried
    status, _, back = s3_files.exchange("GET", "/files/alice/Uploads/new.bin", user="alice")
    assert status == 200 and back == data
    assert chunks <= bucket_chunks(seaweed, s3_files.bucket)


def test_a_new_version_and_the_trash_keep_their_chunks_in_the_bucket(s3_files, seaweed):
    s3_files.exchange("MKCOL", "/files/alice/Notes", user="alice")
    for text in (b"first draft", b"second draft"):
        assert s3_files.exchange("PUT", "/files/alice/Notes/n.txt", text, user="alice")[0] in (201, 204)
    assert s3_files.exchange("DELETE", "/files/alice/Notes/n.txt", user="alice")[0] == 204
    kept = {c.id for text in (b"first draft", b"second draft") for c in chunk_stream(io.BytesIO(text))}
    assert kept <= referenced_chunks(s3_files.home) and kept <= bucket_chunks(seaweed, s3_files.bucket)
    check = s3_files.hearth("sync", "check", "--verify")
    assert check.returncode == 0, check.stdout + check.stderr


def test_quota_available_is_not_the_local_disk_with_an_object_store(s3_files):
    s3_files.exchange("MKCOL", "/files/alice/Docs", user="alice")
    body = '<?xml version="1.0"?><propfind xmlns="DAV:"><prop><quota-available-bytes/><quota-used-bytes/>' \
           '</prop></propfind>'
    status, _, data = s3_files.exchange("PROPFIND", "/files/alice/Docs", body, user="alice",
                                        headers={"Depth": "0", "Content-Type": "application/xml"})
    assert status == 207
    text = data.decode()
    assert re.search(r"<[^>]*quota-used-bytes>\d+<", text)
    # No quota and no disk to speak of: the property is left out (404 in its propstat), never a guess.
    assert not re.search(r"<[^>]*quota-available-bytes>\d+<", text), text


async def test_healthz_reports_a_missing_bucket_in_one_line(aiohttp_client, seaweed, tmp_path, monkeypatch):
    from services.files.app import create_app

    (tmp_path / "hearth.toml").write_text('data_dir = "var"\n' + seaweed.storage_toml("no-such-bucket"))
    for name, value in seaweed.environ().items():
        monkeypatch.setenv(name, value)
    client = await aiohttp_client(create_app(load_config(tmp_path / "hearth.toml", environ={})))
    response = await client.get("/healthz")
    assert response.status == 503
    body = await response.json()
    assert body == {"error": "store-unavailable",
                    "reason": f"S3 bucket 'no-such-bucket' does not exist at {seaweed.endpoint}"}


def test_status_line_names_the_store_and_its_state(seaweed, tmp_path, monkeypatch):
    bucket = seaweed.create_bucket()
    for name, value in seaweed.environ().items():
        monkeypatch.setenv(name, value)
    (tmp_path / "hearth.toml").write_text('data_dir = "var"\n' + seaweed.storage_toml(bucket, "p"))
    assert status_line(load_config(tmp_path / "hearth.toml", environ={})) == \
        f"blobs: s3://{bucket}/p/ at {seaweed.endpoint}: ok"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    line = status_line(load_config(tmp_path / "hearth.toml", environ={}))
    assert line.startswith(f"blobs: s3://{bucket}/p/ at {seaweed.endpoint}: S3 at") and "refused" in line
    assert "not-the-secret" not in line
    (tmp_path / "hearth.toml").write_text('data_dir = "var"\n')
    assert status_line(load_config(tmp_path / "hearth.toml", environ={})) is None


def test_hearth_export_reads_the_files_from_the_bucket(s3_files, tmp_path):
    s3_files.exchange("MKCOL", "/files/alice/Docs", user="alice")
    assert s3_files.exchange("PUT", "/files/alice/Docs/exported.bin", BIG, user="alice")[0] in (201, 204)
    result = s3_files.hearth("export", "alice", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "files" / "Docs" / "exported.bin").read_bytes() == BIG
    assert local_blob_files(s3_files.home) == []


def test_the_nextcloud_apps_see_no_disk_limit_with_an_object_store(seaweed, tmp_path):
    from tests.test_web_session import ApiDaemon

    api = ApiDaemon(tmp_path)
    on_s3(api, seaweed)
    with serving(api, "alice"):
        status, _, body = api.exchange("GET", "/ocs/v2.php/cloud/user?format=json", user="alice",
                                       headers={"OCS-APIRequest": "true"})
        assert status == 200, body
        quota = json.loads(body)["ocs"]["data"]["quota"]
        assert (quota["free"], quota["quota"]) == (-3, -3)  # Nextcloud's "unlimited", not this machine's disk
        status, _, body = api.exchange("GET", "/api/v1/me/export", user="alice", timeout=30)
        assert status == 200 and body[:2] == b"PK", body[:300]


def test_hearth_up_hands_the_credentials_to_the_daemons_and_status_names_the_store(seaweed, tmp_path,
                                                                                    monkeypatch):
    from tests import seaweed as harness
    from tests.installation import ADMIN_PASSWORD, OnePort, running

    for name, value in seaweed.environ().items():  # the environment `hearth up` is started from
        monkeypatch.setenv(name, value)
    bucket = seaweed.bucket_for(tmp_path)
    installation = OnePort(tmp_path, "" if harness.SESSION else seaweed.storage_toml(bucket))
    auth = {"Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()}
    with running(installation):
        connection = http.client.HTTPConnection("127.0.0.1", installation.port, timeout=30)
        for method, path, body in (("MKCOL", "/files/admin/Docs", None), ("PUT", "/files/admin/Docs/b.bin", BIG)):
            connection.request(method, path, body=body, headers=auth)
            response = connection.getresponse()
            assert response.status == 201, response.read()[:300]
            response.read()
        connection.close()
        status = installation.hearth("status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"blobs: s3://{bucket}/ at {seaweed.endpoint}: ok" in status.stdout
    assert {c.id for c in chunk_stream(io.BytesIO(BIG))} <= bucket_chunks(seaweed, bucket)
    assert local_blob_files(tmp_path) == []


def test_a_chunk_deleted_while_a_webdav_put_waits_to_commit_is_not_committed(s3_files, seaweed):
    """The PUT's commit believes the chunks it just published only while no chunk was deleted since the
    upload began: a deletion decided on an old lease and carried out after the re-put (garbage
    collection's steps, taken here while the test holds the write lock) makes it ask the bucket, and the
    client is told to send the file again rather than given a file whose bytes are gone."""
    s3_files.exchange("MKCOL", "/files/alice/Raced", user="alice")
    data = os.urandom(9 * 1024 * 1024)
    ids = [c.id for c in chunk_stream(io.BytesIO(data))]
    first = ids[0]
    token = base64.b64encode(f"alice:{PASSWORDS['alice']}".encode()).decode()
    connection = http.client.HTTPConnection("127.0.0.1", s3_files.port, timeout=60)
    store = open_blob_store(load_config(s3_files.config), {**os.environ, **s3_files.env})
    db = open_db(db_path(s3_files.home / "var"))
    try:
        before = seaweed.requests(s3_files.bucket)["PUT", "200"]
        connection.putrequest("PUT", "/files/alice/Raced/big.bin")
        connection.putheader("Authorization", f"Basic {token}")
        connection.putheader("Content-Length", str(len(data)))
        connection.endheaders()
        connection.send(data[:8 * 1024 * 1024])
        wait_for(lambda: seaweed.requests(s3_files.bucket)["PUT", "200"] > before, 30, "the upload to begin")
        with immediate(db):  # the PUT's commit now waits for this writer
            connection.send(data[8 * 1024 * 1024:])
            wait_for(lambda: store.has_many(ids) == set(ids), 30, "every chunk published")  # the commit is next
            store.delete(first)  # decided on an old lease, carried out after the PUT's put
            forget_chunk(db, first)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
        db.close()
        store.close()
    assert response.status == 503 and response.getheader("Retry-After"), (response.status, body)
    assert s3_files.exchange("GET", "/files/alice/Raced/big.bin", user="alice")[0] == 404
    assert first not in referenced_chunks(s3_files.home)
    assert s3_files.exchange("PUT", "/files/alice/Raced/big.bin", data, user="alice", timeout=60)[0] == 201
    status, _, back = s3_files.exchange("GET", "/files/alice/Raced/big.bin", user="alice", timeout=60)
    assert status == 200 and back == data
