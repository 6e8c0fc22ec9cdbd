"""A dead server restored from its bucket alone: real SeaweedFS, `hearth up`, real clients, kill -9.

The server keeps its chunks in the bucket ([storage] blobs = "s3", prefix
"home") and replicates its database there ([backup] replica = "s3": under
home/db, with home/server holding hearth.toml and the files it names). The
machine dies: every process killed with SIGKILL, the data directory, the
config and its secret deleted. A fresh directory, given only the bucket's
URL, its endpoint and the credentials, gets everything back.
"""
from __future__ import annotations

import shutil

import trustme

from tests.disaster import Client, Restored, hearth_in, kill_everything, populate, state_of, DENTIST
from tests.installation import OnePort, running
from tests.seaweed import ACCESS_KEY, SECRET_KEY


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
    home = tmp_path / "home"
    home.mkdir()
    (home / "smtp.secret").write_text("the mail password\n")
    h = OnePort(home, '[dav]\nsmtp_password_file = "smtp.secret"\n[backup]\nreplica = "s3"\nsync_interval = 0.5\n'
                + seaweed.storage_toml(bucket, "home"))
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
    shutil.rmtree(home)  # the machine is gone: data, config and secret

    fresh = tmp_path / "new-machine"
    fresh.mkdir()
    refused = hearth_in(fresh, "restore", "--from", f"s3://{bucket}/home")
    assert refused.returncode == 2 and "--endpoint URL" in refused.stderr, refused.stderr
    restore = hearth_in(fresh, "restore", "--from", f"s3://{bucket}/home", "--endpoint", seaweed.endpoint)
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert (fresh / "hearth.toml").read_text() == config
    assert (fresh / "smtp.secret").read_text() == "the mail password\n"
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
    fresh.mkdir()
    result = hearth_in(fresh, "restore", "--from", f"s3://{bucket}/nothing", "--endpoint", seaweed.endpoint)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"hearth: s3://{bucket}/nothing/ holds no hearth server (server/backup.json "
                                     "is missing): the config is uploaded there by the hearth_litestream service "
                                     "when [backup] replica is set (nothing was changed)")
    assert list(fresh.iterdir()) == []
