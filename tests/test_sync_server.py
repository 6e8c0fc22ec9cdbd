"""The sync daemon as clients meet it: a real process on a TCP port, real HTTP, real chunks."""
from __future__ import annotations

import base64
import http.client
import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from services.core.tree import chunk_id, chunk_stream
from tests.test_api import free_port

PASSWORDS = {"alice": "alice password", "bob": "bob password"}


class SyncDaemon:
    def __init__(self, home: Path):
        self.home = home
        self.port = free_port()
        self.config = home / "hearth.toml"
        self.config.write_text(f'data_dir = "var"\n[sync]\nlisten = "127.0.0.1:{self.port}"\n')
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}

    def add_user(self, name: str) -> None:
        result = subprocess.run([sys.executable, "-m", "services.cli", "--config", str(self.config), "user", "add",
                                 name, "--password-stdin"], input=PASSWORDS[name] + "\n", capture_output=True,
                                text=True, env=self.env, timeout=60)
        assert result.returncode == 0, result.stderr

    def start(self) -> "SyncDaemon":
        self.stderr = open(self.home / "sync.stderr", "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "services.sync", "--config", str(self.config)],
                                        cwd=self.home, env=self.env, stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"sync daemon not healthy in time: {self.log()}")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=15)
        self.stderr.close()
        return code

    def log(self) -> str:
        return (self.home / "sync.stderr").read_text(errors="replace")

    def request(self, method: str, path: str, body=None, user: str | None = None,
                timeout: float = 10) -> tuple[int, object]:
        headers = {}
        if user:
            token = base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        if isinstance(body, (bytes, bytearray)):
            headers["Content-Type"] = "application/octet-stream"
        elif body is not None:
            body = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if response.getheader("Content-Type", "").startswith("application/json"):
            return response.status, json.loads(data)
        return response.status, data


@pytest.fixture(scope="module")
def sync(tmp_path_factory):
    daemon = SyncDaemon(tmp_path_factory.mktemp("sync"))
    daemon.add_user("alice")
    daemon.add_user("bob")
    daemon.start()
    yield daemon
    assert daemon.stop() == 0, daemon.log()


def folder(sync: SyncDaemon, user: str, name: str) -> int:
    status, body = sync.request("POST", "/sync/v1/folders", {"name": name}, user=user)
    assert status == 201, body
    return body["id"]


def upload(sync: SyncDaemon, user: str, fid: int, data: bytes) -> list[list]:
    chunks = list(chunk_stream(io.BytesIO(data)))
    ids = [c.id for c in chunks]
    status, body = sync.request("POST", f"/sync/v1/folders/{fid}/chunks/have", {"ids": ids}, user=user)
    assert status == 200, body
    for c in chunks:
        if c.id in body["missing"]:
            status, put = sync.request("PUT", f"/sync/v1/chunks/{c.id}", c.data, user=user)
            assert status == 201, put
    return [[c.id, c.length] for c in chunks]


def commit(sync, user, fid, path, chunks, base=None, device="laptop"):
    return sync.request("POST", f"/sync/v1/folders/{fid}/commit", {
        "path": path, "base_revision": base, "chunks": chunks, "size": sum(n for _, n in chunks),
        "mtime_ns": 1_700_000_000_000_000_000, "executable": False, "device": device}, user=user)


def test_upload_commit_conflict_changes_and_download(sync, tmp_path):
    fid = folder(sync, "alice", "Documents")
    status, listing = sync.request("GET", "/sync/v1/folders", user="alice")
    assert status == 200 and [f["name"] for f in listing] == ["Documents"] and listing[0]["access"] == "owner"

    data = random.Random(1).randbytes(3 * 1024 * 1024 + 12345)  # several content-defined chunks
    (tmp_path / "report.bin").write_bytes(data)
    with open(tmp_path / "report.bin", "rb") as f:
        cut = list(chunk_stream(f))
    assert len(cut) >= 2
    ids = [c.id for c in cut]
    status, have = sync.request("POST", f"/sync/v1/folders/{fid}/chunks/have", {"ids": ids}, user="alice")
    assert status == 200 and have == {"have": [], "missing": ids}
    status, put = sync.request("PUT", f"/sync/v1/chunks/{cut[0].id}", cut[0].data, user="alice")
    assert status == 201 and put == {"id": cut[0].id, "size": cut[0].length}
    status, have = sync.request("POST", f"/sync/v1/folders/{fid}/chunks/have", {"ids": ids}, user="alice")
    assert have == {"have": [cut[0].id], "missing": ids[1:]}

    chunks = [[c.id, c.length] for c in cut]
    status, body = commit(sync, "alice", fid, "docs/report.bin", chunks)
    assert status == 400 and body["missing"] == sorted(ids[1:])  # not uploaded yet: nothing committed
    chunks = upload(sync, "alice", fid, data)
    status, first = commit(sync, "alice", fid, "docs/report.bin", chunks)
    assert status == 200, first
    assert first["size"] == len(data) and first["chunks"] == chunks and first["device"] == "laptop"

    edited = data[:100] + b"EDIT" + data[104:]
    status, second = commit(sync, "alice", fid, "docs/report.bin", upload(sync, "alice", fid, edited),
                            base=first["id"])
    assert status == 200 and second["id"] != first["id"]
    status, stale = commit(sync, "alice", fid, "docs/report.bin", chunks, base=first["id"], device="phone")
    assert status == 409 and stale["error"] == "conflict" and stale["current"]["id"] == second["id"]
    assert "revision" in stale["reason"]

    status, feed = sync.request("GET", f"/sync/v1/folders/{fid}/changes?since=0", user="alice")
    assert status == 200 and [c["path"] for c in feed["changes"]] == ["docs/report.bin"]
    assert feed["more"] is False and feed["cursor"] == second["seq"]
    status, none = sync.request("GET", f"/sync/v1/folders/{fid}/changes?since={feed['cursor']}", user="alice")
    assert none == {"changes": [], "cursor": feed["cursor"], "more": False}
    status, page = sync.request("GET", f"/sync/v1/folders/{fid}/changes?since=0&limit=0", user="alice")
    assert status == 400

    content = b"".join(sync.request("GET", f"/sync/v1/folders/{fid}/chunks/{cid}", user="alice")[1]
                       for cid, _ in second["chunks"])
    assert content == edited


def test_long_poll_wakes_on_a_commit_from_another_client(sync):
    fid = folder(sync, "alice", "Photos")
    chunks = upload(sync, "alice", fid, b"first photo")
    status, _ = commit(sync, "alice", fid, "a.jpg", chunks)
    status, feed = sync.request("GET", f"/sync/v1/folders/{fid}/changes?since=0", user="alice")
    cursor = feed["cursor"]

    started = time.monotonic()
    status, timed_out = sync.request("GET", f"/sync/v1/folders/{fid}/changes?since={cursor}&wait=0.3", user="alice")
    assert timed_out["changes"] == [] and 0.25 < time.monotonic() - started < 5

    result = {}

    def poll():
        result["answer"] = sync.request("GET", f"/sync/v1/folders/{fid}/changes?since={cursor}&wait=30",
                                        user="alice", timeout=40)
        result["at"] = time.monotonic()

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.5)  # the poll is waiting
    assert poller.is_alive()
    chunks = upload(sync, "alice", fid, b"second photo")
    committed_at = time.monotonic()
    status, revision = commit(sync, "alice", fid, "b.jpg", chunks, device="phone")
    assert status == 200
    poller.join(timeout=10)
    latency = result["at"] - committed_at
    print(f"long poll woke {latency * 1000:.1f} ms after the commit request was sent")
    status, answer = result["answer"]
    assert status == 200 and [c["path"] for c in answer["changes"]] == ["b.jpg"]
    assert answer["changes"][0]["device"] == "phone" and latency < 2


def test_rename_delete_versions_restore(sync):
    fid = folder(sync, "alice", "Music")
    status, d = sync.request("POST", f"/sync/v1/folders/{fid}/mkdir", {"path": "album", "device": "laptop"},
                             user="alice")
    assert status == 200 and d["kind"] == "dir"
    chunks = upload(sync, "alice", fid, b"a song" * 1000)
    status, song = commit(sync, "alice", fid, "album/song.mp3", chunks)
    status, moved = sync.request("POST", f"/sync/v1/folders/{fid}/rename", {
        "src": "album/song.mp3", "dst": "album/track01.mp3", "base_revision": song["id"], "device": "laptop"},
        user="alice")
    assert status == 200 and moved["path"] == "album/track01.mp3" and moved["chunks"] == chunks  # no re-upload
    status, stale = sync.request("POST", f"/sync/v1/folders/{fid}/rename", {
        "src": "album/track01.mp3", "dst": "x.mp3", "base_revision": song["id"], "device": "laptop"}, user="alice")
    assert status == 409 and stale["current"]["id"] == moved["id"]

    status, marker = sync.request("POST", f"/sync/v1/folders/{fid}/delete", {
        "path": "album/track01.mp3", "base_revision": moved["id"], "device": "laptop"}, user="alice")
    assert status == 200 and marker["deleted"] is True
    status, history = sync.request("GET", f"/sync/v1/folders/{fid}/versions?path=album/track01.mp3", user="alice")
    assert status == 200 and [v["id"] for v in history["versions"]] == [marker["id"], moved["id"]]
    status, restored = sync.request("POST", f"/sync/v1/folders/{fid}/restore", {
        "path": "album/track01.mp3", "revision_id": moved["id"], "device": "laptop"}, user="alice")
    assert status == 200 and restored["deleted"] is False and restored["chunks"] == chunks
    status, feed = sync.request("GET", f"/sync/v1/folders/{fid}/changes?since=0", user="alice")
    live = {c["path"]: c["deleted"] for c in feed["changes"]}
    assert live == {"album": False, "album/song.mp3": True, "album/track01.mp3": False}
    assert sync.request("GET", f"/sync/v1/folders/{fid}/versions?path=nope", user="alice")[0] == 404


def test_sharing_read_only_then_read_write(sync):
    fid = folder(sync, "alice", "Shared")
    chunks = upload(sync, "alice", fid, b"alice's notes")
    status, note = commit(sync, "alice", fid, "notes.txt", chunks)
    base = f"/sync/v1/folders/{fid}"

    assert sync.request("GET", f"{base}/changes", user="bob")[0] == 404
    assert sync.request("GET", f"{base}/chunks/{chunks[0][0]}", user="bob")[0] == 404
    assert commit(sync, "bob", fid, "bob.txt", chunks)[0] == 404
    assert sync.request("POST", f"{base}/shares", {"user": "alice", "mode": "ro"}, user="bob")[0] == 404
    assert all(f["id"] != fid for f in sync.request("GET", "/sync/v1/folders", user="bob")[1])

    status, share = sync.request("POST", f"{base}/shares", {"user": "bob", "mode": "ro"}, user="alice")
    assert status == 200 and share == {"folder": fid, "user": "bob", "mode": "ro"}
    status, listing = sync.request("GET", "/sync/v1/folders", user="bob")
    assert [(f["id"], f["owner"], f["access"]) for f in listing] == [(fid, "alice", "ro")]
    assert sync.request("GET", f"{base}/chunks/{chunks[0][0]}", user="bob") == (200, b"alice's notes")
    status, denied = commit(sync, "bob", fid, "bob.txt", chunks)
    assert status == 403 and denied["error"] == "forbidden"
    assert sync.request("POST", f"{base}/shares", {"user": "bob", "mode": "rw"}, user="bob")[0] == 403
    assert sync.request("POST", f"{base}/shares", {"user": "carol", "mode": "rw"}, user="alice")[0] == 404

    assert sync.request("POST", f"{base}/shares", {"user": "bob", "mode": "rw"}, user="alice")[0] == 200
    status, revision = commit(sync, "bob", fid, "notes.txt", chunks, base=note["id"], device="bob-pc")
    assert status == 200 and revision["device"] == "bob-pc"

    assert sync.request("POST", f"{base}/shares", {"user": "bob", "mode": None}, user="alice")[0] == 200
    assert sync.request("GET", f"{base}/changes", user="bob")[0] == 404


def test_chunk_uploads_are_checked(sync):
    data = b"honest bytes"
    status, body = sync.request("PUT", f"/sync/v1/chunks/{chunk_id(b'other bytes')}", data, user="alice")
    assert status == 400 and body["error"] == "bad-request"
    fid = folder(sync, "alice", "Checks")
    status, have = sync.request("POST", f"/sync/v1/folders/{fid}/chunks/have",
                                {"ids": [chunk_id(b"other bytes")]}, user="alice")
    assert have["missing"] == [chunk_id(b"other bytes")]  # nothing stored
    assert not list((sync.home / "var" / "blobs").rglob(chunk_id(b"other bytes")))

    assert sync.request("PUT", "/sync/v1/chunks/not-an-id", data, user="alice")[0] == 400
    big = b"x" * (8 * 1024 * 1024 + 1)
    assert sync.request("PUT", f"/sync/v1/chunks/{chunk_id(big)}", big, user="alice")[0] == 413
    assert sync.request("PUT", f"/sync/v1/chunks/{chunk_id(data)}", data)[0] == 401
    status, body = sync.request("POST", f"/sync/v1/folders/{fid}/chunks/have", {"ids": ["nope"]}, user="alice")
    assert status == 400


def test_openapi_document_covers_every_route(sync):
    status, spec = sync.request("GET", "/sync/v1/openapi.json")
    assert status == 200
    validate(spec)
    assert {"/sync/v1/folders", "/sync/v1/folders/{id}/commit", "/sync/v1/chunks/{cid}",
            "/sync/v1/folders/{id}/changes"} <= set(spec["paths"])
    from services.sync.app import ROUTES
    assert sum(len(ops) for ops in spec["paths"].values()) == len(ROUTES)
    wait = next(p for p in spec["paths"]["/sync/v1/folders/{id}/changes"]["get"]["parameters"] if p["name"] == "wait")
    assert wait["in"] == "query"
