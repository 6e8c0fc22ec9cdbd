"""The sync daemon as clients meet it: a real process on a TCP port, real HTTP, real chunks."""
from __future__ import annotations

import base64
import io
import json
import random
import re
import socket
import subprocess
import sys
import threading
import time

import pytest
from openapi_spec_validator import validate

from services.core.db import db_path, open_db, write
from services.core.tree import ChunkStore, chunk_id, chunk_stream
from tests.daemons import PASSWORDS, LoopbackDaemon, serving
from tests.stores import backend


class SyncDaemon(LoopbackDaemon):
    module, section = "services.sync", "sync"

    def healthy(self) -> bool:
        return self.request("GET", "/healthz")[0] == 200

    def request(self, method: str, path: str, body=None, user: str | None = None,
                timeout: float = 10) -> tuple[int, object]:
        """(status, the JSON body decoded, or the raw bytes); a dict or list body is sent as JSON."""
        headers = {}
        if isinstance(body, (bytes, bytearray)):
            headers["Content-Type"] = "application/octet-stream"
        elif body is not None:
            body = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        status, answer_headers, data = self.exchange(method, path, body, user=user, headers=headers,
                                                     timeout=timeout)
        if answer_headers.get("content-type", "").startswith("application/json"):
            return status, json.loads(data)
        return status, data


@pytest.fixture(scope="module")
def sync(tmp_path_factory):
    with serving(SyncDaemon(tmp_path_factory.mktemp("sync")), "alice", "bob") as daemon:
        yield daemon


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
    assert {key: none[key] for key in ("changes", "cursor", "more")} == {"changes": [], "cursor": feed["cursor"], "more": False}
    assert none["folder"]["id"] == fid and none["folder"]["name"] == feed["folder"]["name"]
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
    assert not sync.store.has_many([chunk_id(b"other bytes")])

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
            "/sync/v1/folders/{id}/changes", "/sync/v1/chunks/batch", "/sync/v1/folders/{id}/chunks/fetch",
            "/sync/v1/folders/{id}/commits", "/sync/v1/folders/{id}/trash", "/sync/v1/usage"} <= set(spec["paths"])
    batch = spec["paths"]["/sync/v1/chunks/batch"]["post"]
    assert "application/octet-stream" in batch["requestBody"]["content"] and "413" in batch["responses"]
    fetch = spec["paths"]["/sync/v1/folders/{id}/chunks/fetch"]["post"]
    assert "application/octet-stream" in fetch["responses"]["200"]["content"]
    from services.sync.app import ROUTES
    assert sum(len(ops) for ops in spec["paths"].values()) == len(ROUTES)
    wait = next(p for p in spec["paths"]["/sync/v1/folders/{id}/changes"]["get"]["parameters"] if p["name"] == "wait")
    assert wait["in"] == "query"


def frame(data: bytes, cid: str | None = None) -> bytes:
    """One batch frame: 32-byte digest, 4-byte big-endian length, the data."""
    return bytes.fromhex(cid or chunk_id(data)) + len(data).to_bytes(4, "big") + data


def unframe(body: bytes) -> list[tuple[str, bytes]]:
    frames, at = [], 0
    while at < len(body):
        length = int.from_bytes(body[at + 32:at + 36], "big")
        frames.append((body[at:at + 32].hex(), body[at + 36:at + 36 + length]))
        at += 36 + length
    assert at == len(body)
    return frames


def test_batch_upload_then_fetch_in_order(sync):
    fid = folder(sync, "alice", "Batch")
    blobs = [b"small one", random.Random(2).randbytes(300_000), b"small two"]
    status, body = sync.request("POST", "/sync/v1/chunks/batch", b"".join(frame(b) for b in blobs), user="alice")
    assert status == 201 and body == {"stored": 3, "bytes": sum(len(b) for b in blobs)}
    ids = [chunk_id(b) for b in blobs]
    status, have = sync.request("POST", f"/sync/v1/folders/{fid}/chunks/have", {"ids": ids}, user="alice")
    assert have["missing"] == []
    status, revision = commit(sync, "alice", fid, "joined.bin", [[c, len(b)] for c, b in zip(ids, blobs)])
    assert status == 200, revision

    asked = [ids[2], ids[0], ids[2], ids[1], ids[0]]
    status, body = sync.request("POST", f"/sync/v1/folders/{fid}/chunks/fetch", {"ids": asked}, user="alice")
    assert status == 200 and unframe(body) == [(ids[2], blobs[2]), (ids[0], blobs[0]), (ids[1], blobs[1])]
    assert sync.request("POST", "/sync/v1/chunks/batch", b"", user="alice") == (201, {"stored": 0, "bytes": 0})
    assert sync.request("POST", "/sync/v1/chunks/batch", frame(b"x"))[0] == 401


def test_batch_upload_rejects_bad_frames(sync):
    good, wrong = b"a good chunk", b"claims to be another"
    status, body = sync.request("POST", "/sync/v1/chunks/batch",
                                frame(good) + frame(wrong, chunk_id(b"something else")), user="alice")
    assert status == 400 and body["reason"].startswith("frame 2: ") and "does not match" in body["reason"]
    # A refused batch gives alice none of its chunks, not even its good frames. Local disk keeps nothing
    # of it; an object store may keep what it had already written, unreferenced, for the GC to remove
    # when its lease runs out, as after any upload that breaks off.
    fid = folder(sync, "alice", "Refused")
    refused = [chunk_id(good), chunk_id(wrong), chunk_id(b"something else")]
    status, body = sync.request("POST", f"/sync/v1/folders/{fid}/chunks/have", {"ids": refused}, user="alice")
    assert status == 200 and body["have"] == [], body
    assert commit(sync, "alice", fid, "good.txt", [[chunk_id(good), len(good)]])[0] == 400
    if isinstance(backend(sync.store), ChunkStore):
        assert not sync.store.has_many(refused)
        assert not list(backend(sync.store).root.rglob(".*.tmp"))

    cut = frame(b"cut short")[:-3]
    status, body = sync.request("POST", "/sync/v1/chunks/batch", cut, user="alice")
    assert status == 400 and "truncated data (6 of 9 bytes)" in body["reason"]
    assert not sync.store.has_many([chunk_id(b"cut short")])
    status, body = sync.request("POST", "/sync/v1/chunks/batch", frame(good)[:20], user="alice")
    assert status == 400 and "truncated head" in body["reason"]
    zero = bytes.fromhex(chunk_id(b"")) + (0).to_bytes(4, "big")
    status, body = sync.request("POST", "/sync/v1/chunks/batch", zero, user="alice")
    assert status == 400 and "length 0" in body["reason"]
    huge = bytes.fromhex(chunk_id(good)) + (8 * 1024 * 1024 + 1).to_bytes(4, "big")
    assert sync.request("POST", "/sync/v1/chunks/batch", huge, user="alice")[0] == 400


def test_batch_upload_over_64_mib_is_refused_from_its_content_length(sync):
    token = base64.b64encode(f"alice:{PASSWORDS['alice']}".encode()).decode()
    with socket.create_connection(("127.0.0.1", sync.port), timeout=10) as conn:
        conn.sendall(f"POST /sync/v1/chunks/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n"
                     f"Content-Type: application/octet-stream\r\nContent-Length: {64 * 1024 * 1024 + 1}\r\n"
                     "\r\n".encode())
        assert conn.recv(4096).startswith(b"HTTP/1.1 413 ")


def test_fetch_only_chunks_this_folder_references(sync):
    mine, theirs = folder(sync, "alice", "Fetch mine"), folder(sync, "bob", "Fetch theirs")
    status, bobs = commit(sync, "bob", theirs, "secret.txt", upload(sync, "bob", theirs, b"bob's secret"))
    status, own = commit(sync, "alice", mine, "own.txt", upload(sync, "alice", mine, b"alice's own"))
    secret, own_id = bobs["chunks"][0][0], own["chunks"][0][0]
    status, body = sync.request("POST", f"/sync/v1/folders/{mine}/chunks/fetch", {"ids": [own_id, secret]},
                                user="alice")
    assert status == 404 and secret in body["reason"] and own_id not in body["reason"]
    assert sync.request("POST", f"/sync/v1/folders/{theirs}/chunks/fetch", {"ids": [secret]},
                        user="alice")[0] == 404
    assert sync.request("POST", f"/sync/v1/folders/{mine}/chunks/fetch", {"ids": []}, user="alice")[0] == 400
    assert sync.request("POST", f"/sync/v1/folders/{mine}/chunks/fetch", {"ids": ["nope"]}, user="alice")[0] == 400
    too_many = {"ids": [own_id] * 1001}
    assert sync.request("POST", f"/sync/v1/folders/{mine}/chunks/fetch", too_many, user="alice")[0] == 400


def commit_item(path, chunks, base=None, device="laptop"):
    return {"path": path, "base_revision": base, "chunks": chunks, "size": sum(n for _, n in chunks),
            "mtime_ns": 1, "executable": False, "device": device}


def test_batch_commit_reports_each_item(sync):
    fid = folder(sync, "alice", "Many")
    a1 = upload(sync, "alice", fid, b"a version one")
    status, first = commit(sync, "alice", fid, "a.txt", a1)
    status, second = commit(sync, "alice", fid, "a.txt", upload(sync, "alice", fid, b"a version two"),
                            base=first["id"])
    never = chunk_id(b"never uploaded")
    status, feed = sync.request("GET", f"/sync/v1/folders/{fid}/changes?since=0", user="alice")
    status, body = sync.request("POST", f"/sync/v1/folders/{fid}/commits", {"commits": [
        commit_item("b.txt", upload(sync, "alice", fid, b"new file b")),
        commit_item("a.txt", a1, base=first["id"], device="phone"),
        commit_item("c.txt", [[never, 14]]),
        commit_item("../escape", a1),
        commit_item("b.txt/under-a-file", a1),
    ]}, user="alice")
    assert status == 200, body
    done, stale, missing, bad, under = body["results"]
    assert done["ok"] is True and done["revision"]["path"] == "b.txt" and set(done) == {"ok", "revision"}
    assert stale == {"ok": False, "status": 409, "error": "conflict", "reason": stale["reason"],
                     "current": second, "missing": []}
    assert missing["ok"] is False and missing["status"] == 400 and missing["missing"] == [never]
    assert bad["status"] == 400 and bad["current"] is None and "segment" in bad["reason"]
    assert under["status"] == 409 and "b.txt is a file" in under["reason"]  # sees item 1 committed
    status, changes = sync.request("GET", f"/sync/v1/folders/{fid}/changes?since={feed['cursor']}", user="alice")
    assert [c["path"] for c in changes["changes"]] == ["b.txt"]  # only the good item changed anything

    assert sync.request("POST", f"/sync/v1/folders/{fid}/commits", {"commits": []}, user="alice")[0] == 400
    status, body = sync.request("POST", f"/sync/v1/folders/{fid}/commits", {"commits": [{"path": "x"}]},
                                user="alice")
    assert status == 400 and body["reason"].startswith("commits.0.")


def test_batch_deletes_check_each_base_revision(sync):
    fid = folder(sync, "alice", "Many deletes")
    chunks = upload(sync, "alice", fid, b"to be deleted")
    revisions = {name: commit(sync, "alice", fid, name, chunks)[1] for name in ("x.txt", "y.txt", "d/z.txt")}
    status, directory = sync.request("POST", f"/sync/v1/folders/{fid}/mkdir", {"path": "d", "device": "pc"},
                                     user="alice")
    status, edited = commit(sync, "alice", fid, "y.txt", upload(sync, "alice", fid, b"edited elsewhere"),
                            base=revisions["y.txt"]["id"])
    status, feed = sync.request("GET", f"/sync/v1/folders/{fid}/changes?since=0", user="alice")

    def gone(path, base):
        return {"path": path, "base_revision": base, "device": "laptop", "recursive": False}

    status, body = sync.request("POST", f"/sync/v1/folders/{fid}/commits", {
        "commits": [commit_item("new.txt", chunks)],
        "deletes": [gone("x.txt", revisions["x.txt"]["id"]), gone("y.txt", revisions["y.txt"]["id"]),
                    gone("never.txt", None), gone("d", directory["id"]), gone("new.txt", None)],
    }, user="alice")
    assert status == 200, body
    created, done, stale, absent, not_empty, after_commit = body["results"]  # commits first, then deletes
    assert created["ok"] and done["ok"] and done["revision"]["deleted"]
    assert after_commit["status"] == 409 and after_commit["current"] == created["revision"]  # sees the commit
    assert stale["status"] == 409 and stale["current"] == edited
    assert absent["status"] == 404
    assert not_empty["status"] == 409 and "not empty" in not_empty["reason"]
    status, changes = sync.request("GET", f"/sync/v1/folders/{fid}/changes?since={feed['cursor']}", user="alice")
    assert {c["path"]: c["deleted"] for c in changes["changes"]} == {"x.txt": True, "new.txt": False}

    assert sync.request("POST", f"/sync/v1/folders/{fid}/commits", {"deletes": []}, user="alice")[0] == 400
    too_many = {"commits": [commit_item("a", chunks)] * 500, "deletes": [gone("a", None)] * 501}
    status, body = sync.request("POST", f"/sync/v1/folders/{fid}/commits", too_many, user="alice")
    assert status == 400 and "1000" in body["reason"], body


def test_a_chunk_is_served_as_sandboxed_bytes(sync):
    fid = folder(sync, "alice", "Sandboxed")
    [[cid, _]] = upload(sync, "alice", fid, b"<script>alert(document.cookie)</script>")
    commit(sync, "alice", fid, "page.html", [[cid, 39]])
    status, headers, data = sync.exchange("GET", f"/sync/v1/folders/{fid}/chunks/{cid}", user="alice")
    assert status == 200 and data.startswith(b"<script>")
    assert headers["content-type"] == "application/octet-stream"
    assert (headers["content-security-policy"], headers["x-content-type-options"]) == ("sandbox", "nosniff")


def test_commits_refuse_names_with_control_or_bidi_characters_or_over_255_bytes(sync):
    fid = folder(sync, "alice", "Names")
    chunks = upload(sync, "alice", fid, b"named")
    refused = ["tab\there.txt", "line\rend.txt", "del\x7f.txt", "c1\x85.txt", "invoice\u202etxt.exe",
               "iso\u2067late.txt", "d\u202a/inside.txt", "é" * 128]
    status, body = sync.request("POST", f"/sync/v1/folders/{fid}/commits", {"commits": [
        commit_item(path, chunks) for path in refused + ["é" * 127 + "x"]]}, user="alice")
    assert status == 200, body
    *bad, fine = body["results"]
    assert [(item["status"], "choose another name" in item["reason"]) for item in bad] == [(400, True)] * len(bad)
    assert fine["ok"] is True
    status, body = sync.request("POST", f"/sync/v1/folders/{fid}/mkdir", {"path": "dir\u202e", "device": "x"},
                                user="alice")
    assert status == 400 and "bidirectional" in body["reason"], body
    status, body = sync.request("POST", "/sync/v1/folders", {"name": "new\tfolder"}, user="alice")
    assert status == 400 and "control character" in body["reason"], body


def test_read_only_share_fetches_but_cannot_batch_commit(sync):
    fid = folder(sync, "alice", "Read only batch")
    chunks = upload(sync, "alice", fid, b"shared for reading")
    status, revision = commit(sync, "alice", fid, "r.txt", chunks)
    assert sync.request("POST", f"/sync/v1/folders/{fid}/shares", {"user": "bob", "mode": "ro"}, user="alice")[0] == 200
    status, body = sync.request("POST", f"/sync/v1/folders/{fid}/chunks/fetch", {"ids": [chunks[0][0]]}, user="bob")
    assert status == 200 and unframe(body) == [(chunks[0][0], b"shared for reading")]
    status, body = sync.request("POST", f"/sync/v1/folders/{fid}/commits",
                                {"commits": [commit_item("r.txt", chunks, base=revision["id"])]}, user="bob")
    assert status == 403 and body["error"] == "forbidden"
    status, history = sync.request("GET", f"/sync/v1/folders/{fid}/versions?path=r.txt", user="alice")
    assert [v["id"] for v in history["versions"]] == [revision["id"]]


def test_non_recursive_delete_of_a_non_empty_directory_is_a_conflict(sync):
    fid = folder(sync, "alice", "Dirs")
    status, d = sync.request("POST", f"/sync/v1/folders/{fid}/mkdir", {"path": "d", "device": "pc"}, user="alice")
    status, inner = commit(sync, "alice", fid, "d/inner.txt", upload(sync, "alice", fid, b"inner"))
    status, before = sync.request("GET", f"/sync/v1/folders/{fid}/changes?since=0", user="alice")
    status, body = sync.request("POST", f"/sync/v1/folders/{fid}/delete", {
        "path": "d", "base_revision": d["id"], "device": "pc", "recursive": False}, user="alice")
    assert status == 409 and body["reason"] == "d is not empty"
    assert sync.request("GET", f"/sync/v1/folders/{fid}/changes?since=0", user="alice")[1] == before

    status, _ = sync.request("POST", f"/sync/v1/folders/{fid}/delete", {
        "path": "d/inner.txt", "base_revision": inner["id"], "device": "pc"}, user="alice")
    status, marker = sync.request("POST", f"/sync/v1/folders/{fid}/delete", {
        "path": "d", "base_revision": d["id"], "device": "pc", "recursive": False}, user="alice")
    assert status == 200 and marker["deleted"] is True


def test_trash_and_usage(sync):
    fid = folder(sync, "bob", "Bin")
    status, usage_before = sync.request("GET", "/sync/v1/usage", user="bob")
    status, kept = commit(sync, "bob", fid, "kept.txt", upload(sync, "bob", fid, b"12345"))
    status, gone = commit(sync, "bob", fid, "gone.txt", upload(sync, "bob", fid, b"1234567"))
    status, marker = sync.request("POST", f"/sync/v1/folders/{fid}/delete", {
        "path": "gone.txt", "base_revision": gone["id"], "device": "pc"}, user="bob")
    status, body = sync.request("GET", f"/sync/v1/folders/{fid}/trash", user="bob")
    assert status == 200 and body == {"items": [{"deleted": marker, "last": gone}]}
    assert sync.request("GET", f"/sync/v1/folders/{fid}/trash", user="alice")[0] == 404
    status, usage = sync.request("GET", "/sync/v1/usage", user="bob")
    assert status == 200 and usage == {"user": "bob", "used_bytes": usage_before["used_bytes"] + 5,
                                       "quota_bytes": None}
    assert sync.request("GET", "/sync/v1/usage")[0] == 401


def test_scheduled_retention_and_gc_in_a_real_daemon(tmp_path):
    """The daemon's own schedule drops an expired version and deletes a chunk whose upload lease ran out,
    and keeps chunks that are referenced, or unreferenced but younger than the grace. Leases are write times
    the store keeps (a file's mtime, an object's LastModified), which no test can backdate on every backend:
    the orphan ages for real, over a short grace."""
    grace = 12  # long enough that the second half, all within one grace, holds on a busy machine
    aging = f"gc_interval = 1\ngc_grace = {grace}\nkeep_versions_days = 1\n"
    with serving(SyncDaemon(tmp_path, extra=aging), "alice") as daemon:
        store = daemon.store
        fid = folder(daemon, "alice", "Aging")
        status, kept_long = commit(daemon, "alice", fid, "g.txt", upload(daemon, "alice", fid, b"kept for long"))
        orphan = b"uploaded, never committed"
        assert daemon.request("PUT", f"/sync/v1/chunks/{chunk_id(orphan)}", orphan, user="alice")[0] == 201
        deadline = time.monotonic() + grace + 30
        while store.has_many([chunk_id(orphan)]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not store.has_many([chunk_id(orphan)]), daemon.log()
        referenced = kept_long["chunks"][0][0]
        assert store.has_many([referenced]) == {referenced}  # past the grace too, but referenced

        # Within the grace from here on: the old version's chunk once it expires, and a fresh upload.
        status, old = commit(daemon, "alice", fid, "f.txt", upload(daemon, "alice", fid, b"old version"))
        status, new = commit(daemon, "alice", fid, "f.txt", upload(daemon, "alice", fid, b"new version"),
                             base=old["id"])
        fresh = b"uploaded just now"
        assert daemon.request("PUT", f"/sync/v1/chunks/{chunk_id(fresh)}", fresh, user="alice")[0] == 201
        db = open_db(db_path(tmp_path / "var"))
        write(db, lambda d: d.execute("UPDATE revisions SET created_at = '2000-01-01T00:00:00.000000Z'"))
        db.close()
        while len(versions(daemon, fid, "f.txt")) > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert versions(daemon, fid, "f.txt") == [new["id"]]  # the old version expired
        kept = [referenced, new["chunks"][0][0], old["chunks"][0][0], chunk_id(fresh)]
        assert store.has_many(kept) == set(kept)
    passes = re.findall(r"retention: dropped (\d+) old revisions, deleted (\d+) unreferenced chunks", daemon.log())
    assert [sum(int(p[0]) for p in passes), sum(int(p[1]) for p in passes)] == [1, 1]


def versions(daemon: SyncDaemon, fid: int, path: str) -> list[int]:
    status, history = daemon.request("GET", f"/sync/v1/folders/{fid}/versions?path={path}", user="alice")
    assert status == 200, history
    return [v["id"] for v in history["versions"]]


def test_batch_commit_applies_the_quota_per_item(tmp_path):
    with serving(SyncDaemon(tmp_path, extra="quota_mb = 1\n"), "alice") as daemon:
        fid = folder(daemon, "alice", "Full")
        blobs = [random.Random(n).randbytes(600_000) for n in range(2)] + [b"small"]
        items = [commit_item(f"f{n}", upload(daemon, "alice", fid, data)) for n, data in enumerate(blobs)]
        status, body = daemon.request("POST", f"/sync/v1/folders/{fid}/commits", {"commits": items}, user="alice")
        assert status == 200, body
        assert [r["ok"] for r in body["results"]] == [True, False, True]
        assert body["results"][1]["status"] == 507 and body["results"][1]["error"] == "insufficient-storage"
        status, usage = daemon.request("GET", "/sync/v1/usage", user="alice")
        assert usage == {"user": "alice", "used_bytes": 600_005, "quota_bytes": 1024 * 1024}


def test_a_negative_retention_setting_stops_the_daemon_at_start(tmp_path):
    daemon = SyncDaemon(tmp_path, extra="gc_grace = -1\n")
    result = subprocess.run([sys.executable, "-m", "services.sync", "--config", str(daemon.config)],
                            capture_output=True, text=True, env=daemon.env, timeout=60)
    assert result.returncode == 2 and "[sync] gc_grace: expected 0 or more, got -1" in result.stderr
