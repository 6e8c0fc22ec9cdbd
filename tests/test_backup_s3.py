"""A dead server restored from a bucket alone: real SeaweedFS, `hearth up`, real clients, kill -9.

The first server keeps its chunks in the bucket ([storage] blobs = "s3", prefix
"home") and replicates its database there ([backup] replica = "s3": under
home/db, with home/server holding hearth.toml and the files it names). The
second keeps its chunks on local disk and is backed up with `hearth backup --to
s3://BUCKET/PREFIX`. Each machine dies: every process killed with SIGKILL, the
data directory, the config and its secret deleted. A fresh directory, given
only the bucket's URL, its endpoint and the credentials, gets everything back.
"""
from __future__ import annotations

import json
import shutil

import obstore
import pytest
import trustme

from tests import seaweed as seaweed_module
from tests.disaster import (DENTIST, SECRET, Client, Restored, assert_consistent, hearth_in, home, kill_everything,
                            kill_when, populate, restore_into, start_backup, state_of, write_many)
from tests.installation import running
from tests.seaweed import ACCESS_KEY, SECRET_KEY

local_blobs = pytest.mark.skipif(seaweed_module.SESSION is not None,
                                 reason="a server with local blobs by design; the session keeps every home in S3")


def _blob_files(var) -> list:
    return [path for path in (var / "blobs").rglob("*") if path.is_file()] if (var / "blobs").exists() else []


def _status_when(h, wanted: str):
    """`hearth backup status` once its output says `wanted` (the replica catches up on its own)."""
    return h.wait_for(lambda: (lambda r: r if wanted in r.stdout else None)(h.hearth("backup", "status")),
                      timeout=60, what=f"backup status to say {wanted!r}")


def _credentials(monkeypatch, tmp_path) -> None:
    """The key the admin puts in the supervisor's environment, and a CA bundle for other AWS tools, which
    Litestream 0.5 cannot take: hearth must run it without."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "ca.pem"))


def test_a_dead_server_comes_back_whole_from_its_bucket(tmp_path, seaweed, monkeypatch):
    _credentials(monkeypatch, tmp_path)
    bucket = seaweed.create_bucket()
    h = home(tmp_path, '[backup]\nreplica = "s3"\nsync_interval = 0.5\n' + seaweed.storage_toml(bucket, "home"),
             secret=True)
    with running(h) as up:
        assert "litestream: ready" in up.stdout
        tokens = populate(h)
        # Replication stopped: the status says how far behind, never "up to date".
        h.ok("service", "litestream", "stop")
        Client(h.port, "alice", tokens["alice"]).ok(
            "PUT", "/dav/calendars/alice/calendar/later.ics", DENTIST.replace(b"dentist", b"later"),
            {"Content-Type": "text/calendar"})
        stopped = h.hearth("backup", "status")
        assert stopped.returncode == 4, stopped.stdout + stopped.stderr
        assert f"replica s3://{bucket}/home/db: transaction " in stopped.stdout
        assert "behind: at most the last " in stopped.stdout and "up to date" not in stopped.stdout
        h.ok("service", "litestream", "start")
        status = _status_when(h, "up to date: the replica has every change")
        assert status.returncode == 0, status.stdout + status.stderr
        before = state_of(h, tokens, tmp_path / "before")
        kill_everything(h.var)
    assert _blob_files(h.var) == []
    assert seaweed.keys(bucket, "home/server/") == ["home/server/backup.json", "home/server/files/0",
                                                    "home/server/hearth.toml"]
    config = h.config.read_text()
    shutil.rmtree(h.root)  # the machine is gone: data, config and secret

    fresh = tmp_path / "new-machine"
    refused = restore_into(fresh, "--from", f"s3://{bucket}/home")
    assert refused.returncode == 2 and "--endpoint URL" in refused.stderr, refused.stderr
    restore = restore_into(fresh, "--from", f"s3://{bucket}/home", "--endpoint", seaweed.endpoint)
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert (fresh / "hearth.toml").read_text() == config
    assert (fresh / "smtp.secret").read_text() == SECRET
    assert f"restored {fresh / 'smtp.secret'}" in restore.stdout and "(0 bytes)" in restore.stdout  # chunks in place
    again = Restored(fresh, h.port)
    with running(again):
        after = state_of(again, tokens, tmp_path / "after")
    assert _blob_files(again.var) == []
    assert before["trash"] and before["versions"] and before["links"]
    assert before["alice"]["counts"]["calendar_objects"] == 2  # the one written while replication was stopped
    assert before["app passwords"] == {"alice": 200, "bob": 200} and before["wrong password"] == 401
    assert after == before

    again_refused = hearth_in(fresh, "restore", "--from", f"s3://{bucket}/home", "--endpoint", seaweed.endpoint)
    assert again_refused.returncode == 1 and "is not empty" in again_refused.stderr


def test_a_bucket_without_a_server_is_one_clear_line(tmp_path, seaweed, monkeypatch):
    _credentials(monkeypatch, tmp_path)
    bucket = seaweed.create_bucket()
    fresh = tmp_path / "new-machine"
    result = restore_into(fresh, "--from", f"s3://{bucket}/nothing", "--endpoint", seaweed.endpoint)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"hearth: s3://{bucket}/nothing/ holds no hearth server (server/backup.json "
                                     "is missing): the config is uploaded there by the hearth_litestream service "
                                     "when [backup] replica is set, and a backup by `hearth backup --to s3://…` "
                                     "(nothing was changed)")
    assert list(fresh.iterdir()) == []


def _manifest(seaweed, bucket: str, prefix: str) -> dict:
    return json.loads(bytes(obstore.get(seaweed.client(bucket), f"{prefix}/backup.json").bytes()))


@local_blobs
def test_a_server_with_local_blobs_comes_back_whole_from_its_backup_in_a_bucket(tmp_path, seaweed, monkeypatch):
    _credentials(monkeypatch, tmp_path)
    bucket = seaweed.create_bucket()
    h = home(tmp_path, secret=True)
    url = f"s3://{bucket}/nightly"
    with running(h):
        tokens = populate(h)
        before = state_of(h, tokens, tmp_path / "before")
        no_endpoint = h.hearth("backup", "--to", url)
        assert no_endpoint.returncode == 2 and "--endpoint URL" in no_endpoint.stderr, no_endpoint.stderr
        backup = h.hearth("backup", "--to", url, "--endpoint", seaweed.endpoint)
        assert backup.returncode == 0, backup.stderr
        assert f"backed up to {url}/: 3 users, 2 app passwords" in backup.stdout
        again = h.hearth("backup", "--to", url, "--endpoint", seaweed.endpoint, "--verify")
        assert again.returncode == 0, again.stderr
        manifest = _manifest(seaweed, bucket, "nightly")
        assert manifest["copied"] == {"chunks": 0, "bytes": 0, "already_there": manifest["chunks"], "repaired": 0}
        kill_everything(h.var)
    snapshot = manifest["snapshot"]
    assert seaweed.keys(bucket, f"nightly/{snapshot}/") == [f"nightly/{snapshot}/{name}" for name in
                                                           ("files/0", "hearth.sqlite3", "hearth.toml")]
    assert seaweed.keys(bucket, "nightly/snapshots/") == seaweed.keys(bucket, f"nightly/{snapshot}/")  # one snapshot
    assert len(seaweed.keys(bucket, "nightly/chunks/")) == manifest["chunks"] > 3
    config = h.config.read_text()
    shutil.rmtree(h.root)  # the machine is gone: data, config and secret

    fresh = tmp_path / "new-machine"
    restore = restore_into(fresh, "--from", url, "--endpoint", seaweed.endpoint)
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert (fresh / "hearth.toml").read_text() == config
    assert (fresh / "smtp.secret").read_text() == SECRET
    assert f"restored 3 users and {manifest['chunks']} chunks" in restore.stdout
    again = Restored(fresh, h.port)
    with running(again):
        after = state_of(again, tokens, tmp_path / "after")
    assert len(_blob_files(again.var)) == manifest["chunks"]  # back on local disk
    assert before["trash"] and before["versions"] and before["links"]
    assert before["app passwords"] == {"alice": 200, "bob": 200} and before["wrong password"] == 401
    assert after == before


@local_blobs
def test_a_backup_to_a_bucket_killed_midway_resumes_and_only_the_finished_one_restores(tmp_path, seaweed,
                                                                                      monkeypatch):
    _credentials(monkeypatch, tmp_path)
    bucket = seaweed.create_bucket()
    h = home(tmp_path)
    with running(h):
        write_many(h, "Many", 800)
    to = ("--to", f"s3://{bucket}/b", "--endpoint", seaweed.endpoint)
    copied = lambda: seaweed.keys(bucket, "b/chunks/")  # noqa: E731
    kill_when(start_backup(h, *to), copied)
    assert seaweed.keys(bucket, "b/backup.json") == []
    first = len(copied())
    assert 0 < first < 800
    refused = restore_into(tmp_path / "elsewhere", "--from", f"s3://{bucket}/b", "--endpoint", seaweed.endpoint)
    assert refused.returncode == 1 and "holds no hearth server" in refused.stderr, refused.stderr
    assert list((tmp_path / "elsewhere").iterdir()) == []

    resumed = h.hearth("backup", *to)
    assert resumed.returncode == 0, resumed.stderr
    manifest = _manifest(seaweed, bucket, "b")
    assert manifest["copied"]["already_there"] >= first
    assert manifest["copied"]["chunks"] == manifest["chunks"] - manifest["copied"]["already_there"]

    restored = restore_into(tmp_path / "elsewhere", "--from", f"s3://{bucket}/b", "--endpoint", seaweed.endpoint)
    assert restored.returncode == 0, restored.stderr
    assert_consistent(tmp_path / "elsewhere")

    # A chunk that rotted in the bucket is named, and nothing is restored; --verify copies it again.
    rotten = copied()[0]
    client = seaweed.client(bucket)
    obstore.put(client, rotten, b"bit rot" + bytes(obstore.get(client, rotten).bytes())[7:])
    damaged = restore_into(tmp_path / "third", "--from", f"s3://{bucket}/b", "--endpoint", seaweed.endpoint)
    assert damaged.returncode == 1 and f"chunk {rotten.rpartition('/')[2]} does not match" in damaged.stderr
    assert list((tmp_path / "third").iterdir()) == []
    repaired = h.hearth("backup", *to, "--verify")
    assert repaired.returncode == 0 and ", 1 of them damaged and copied again)" in repaired.stdout, repaired.stderr


@local_blobs
def test_a_bucket_backup_refuses_the_servers_own_chunks_and_foreign_objects(tmp_path, seaweed, monkeypatch):
    _credentials(monkeypatch, tmp_path)
    bucket = seaweed.create_bucket()
    h = home(tmp_path, seaweed.storage_toml(bucket, "live"))
    h.ok("init")
    own = h.hearth("backup", "--to", f"s3://{bucket}/live")
    assert own.returncode == 2
    assert own.stderr.strip() == (f"hearth: s3://{bucket}/live/chunks/ is where this server keeps its chunks: back "
                                  "up into another prefix or bucket (nothing was written)")
    obstore.put(seaweed.client(bucket), "photos/cat.jpg", b"a cat")
    foreign = h.hearth("backup", "--to", f"s3://{bucket}/photos")
    assert foreign.returncode == 2 and "holds other objects (cat.jpg, …) and no hearth backup" in foreign.stderr
    assert seaweed.keys(bucket, "photos/") == ["photos/cat.jpg"]
    obstore.put(seaweed.client(bucket), "home/server/backup.json", b"{}")  # a replicating server's bucket home
    replica = h.hearth("backup", "--to", f"s3://{bucket}/home")
    assert replica.returncode == 2 and "holds other objects (server/, …)" in replica.stderr, replica.stderr
