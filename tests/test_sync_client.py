"""The sync client end to end: real `hearth sync` processes against a real sync daemon on loopback.

One daemon for the module (users alice and bob); every test uses its own server folder
name so tests never see each other's files.
"""
from __future__ import annotations

import os
import random
import re
import shutil
import time
import unicodedata
from pathlib import Path
from types import SimpleNamespace

import pytest

from services.core.log import escape
from tests.daemons import serving
from tests.sync_harness import Client
from tests.test_api import free_port
from tests.test_sync_server import SyncDaemon, upload

CONFLICT_NAME = re.compile(r"^f \(conflict from B \d{4}-\d{2}-\d{2} \d{6}\)\.txt$")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serving(SyncDaemon(tmp_path_factory.mktemp("syncd")), "alice", "bob") as daemon:
        yield daemon


@pytest.fixture
def running():
    """Long-running clients started by a test; whatever is still running at the end is killed."""
    clients: list[Client] = []
    yield clients
    for client in clients:
        if client.process is not None:
            client.kill()


def start(running: list, client: Client, *extra: str) -> Client:
    """Client.start(), remembered so the fixture kills it whatever happens."""
    running.append(client)
    return client.start(*extra)


def folder_id(server: SyncDaemon, user: str, owner: str, name: str) -> int:
    status, listing = server.request("GET", "/sync/v1/folders", user=user)
    assert status == 200, listing
    ids = [f["id"] for f in listing if f["owner"] == owner and f["name"] == name]
    assert len(ids) == 1, listing
    return ids[0]


def server_files(server: SyncDaemon, user: str, fid: int) -> dict[str, dict]:
    """path -> latest change, for the live (not deleted) paths of folder `fid`."""
    latest, cursor = {}, 0
    while True:
        status, feed = server.request("GET", f"/sync/v1/folders/{fid}/changes?since={cursor}", user=user)
        assert status == 200, feed
        for change in feed["changes"]:
            latest[change["path"]] = change
        cursor = feed["cursor"]
        if not feed["more"]:
            break
    return {path: change for path, change in latest.items() if not change["deleted"]}


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


# 1 ---------------------------------------------------------------------------

def test_two_clients_converge_both_ways(server, tmp_path):
    a = Client(server, tmp_path / "A", device="A", folder="converge")
    b = Client(server, tmp_path / "B", device="B", folder="converge")
    write(a.root / "docs" / "a.txt", "alpha\n")
    write(a.root / "docs" / "deep" / "er" / "b.txt", "beta\n")
    write(a.root / "sub" / "deeper" / "keep.txt", "kept\n")
    write(a.root / "notes.txt", "notes v1\n")
    write(a.root / "delete_me.txt", "bye\n")
    script = write(a.root / "bin" / "run.sh", "#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    write(a.root / "empty.txt", b"")
    write(a.root / "café ünïcode.txt", "non-ascii name\n")
    big = random.Random(7).randbytes(3 * 1024 * 1024)
    write(a.root / "blob.bin", big)
    (a.root / "emptydir").mkdir()

    a.once()
    b.once()
    first = a.tree()
    assert b.tree() == first
    assert first["bin/run.sh"][3] is True and first["notes.txt"][3] is False
    assert first["empty.txt"][1] == b"" and first["blob.bin"][1] == big
    assert first["emptydir"] == ("dir",) and "café ünïcode.txt" in first

    # changes on B
    write(b.root / "notes.txt", "notes v2, edited on B\n")
    os.rename(b.root / "docs" / "a.txt", b.root / "sub" / "deeper" / "a.txt")
    (b.root / "delete_me.txt").unlink()
    (b.root / "emptydir").rmdir()
    (b.root / "newdir").mkdir()
    b.once()
    a.once()
    second = a.tree()
    assert b.tree() == second
    assert second["notes.txt"][1] == b"notes v2, edited on B\n"
    assert second["sub/deeper/a.txt"][1] == b"alpha\n" and "docs/a.txt" not in second
    assert "delete_me.txt" not in second and "emptydir" not in second and second["newdir"] == ("dir",)

    # changes on A
    edited = big[:1000] + b"EDITED ON A" + big[1011:]
    write(a.root / "blob.bin", edited)
    os.rename(a.root / "café ünïcode.txt", a.root / "newdir" / "café ünïcode.txt")
    (a.root / "bin" / "run.sh").unlink()
    (a.root / "bin").rmdir()
    (a.root / "another" / "dir").mkdir(parents=True)
    a.once()
    b.once()
    third = b.tree()
    assert a.tree() == third
    assert third["blob.bin"][1] == edited
    assert "newdir/café ünïcode.txt" in third and "café ünïcode.txt" not in third
    assert "bin/run.sh" not in third and "bin" not in third
    assert third["another/dir"] == ("dir",)


# 2 ---------------------------------------------------------------------------

def test_once_exit_status(server, tmp_path):
    nowhere = SimpleNamespace(port=free_port())  # nothing listens there
    lost = Client(nowhere, tmp_path / "lost", device="A", folder="exit-status")
    write(lost.root / "x.txt", "x")
    result = lost.once(check=False, timeout=90)
    assert result.returncode != 0
    assert "server unreachable" in result.stderr

    a = Client(server, tmp_path / "A", device="A", folder="exit-status")
    write(a.root / "shared.txt", "from alice")
    assert a.once().returncode == 0
    fid = folder_id(server, "alice", "alice", "exit-status")
    status, _ = server.request("POST", f"/sync/v1/folders/{fid}/shares", {"user": "bob", "mode": "ro"},
                               user="alice")
    assert status == 200
    bob = Client(server, tmp_path / "bob", user="bob", device="bobpc", folder="alice/exit-status")
    assert bob.once().returncode == 0
    write(bob.root / "local.txt", "bob's change")
    result = bob.once(check=False)
    assert result.returncode == 1
    assert "local.txt" in result.stderr and "read-only" in result.stderr


# 3 ---------------------------------------------------------------------------

def test_concurrent_edit_keeps_both_versions(server, tmp_path):
    a = Client(server, tmp_path / "A", device="A", folder="conflict")
    b = Client(server, tmp_path / "B", device="B", folder="conflict")
    write(a.root / "f.txt", "original\n")
    a.once()
    b.once()
    assert b.tree() == a.tree()

    write(a.root / "f.txt", "A's version\n")
    a.once()
    write(b.root / "f.txt", "B's version, made offline\n")
    b.once()
    a.once()

    for side in (a, b):
        names = sorted(os.listdir(side.root))
        copies = [n for n in names if CONFLICT_NAME.match(n)]
        assert len(copies) == 1 and sorted(set(names) - {".hearth"}) == sorted(["f.txt", copies[0]]), names
        assert (side.root / "f.txt").read_bytes() == b"A's version\n"
        assert (side.root / copies[0]).read_bytes() == b"B's version, made offline\n"
    assert a.tree() == b.tree()

    fid = folder_id(server, "alice", "alice", "conflict")
    status, feed = server.request("GET", f"/sync/v1/folders/{fid}/changes?since=0", user="alice")
    assert status == 200
    paths = {c["path"] for c in feed["changes"] if not c["deleted"]}
    assert "f.txt" in paths and [p for p in paths if CONFLICT_NAME.match(p)] == copies


# 4 ---------------------------------------------------------------------------

def test_delete_versus_edit_keeps_the_edit(server, tmp_path):
    a = Client(server, tmp_path / "A", device="A", folder="delete-vs-edit")
    b = Client(server, tmp_path / "B", device="B", folder="delete-vs-edit")
    write(a.root / "g.txt", "first\n")
    write(a.root / "other.txt", "unrelated\n")
    a.once()
    b.once()

    (a.root / "g.txt").unlink()
    write(b.root / "g.txt", "edited offline on B\n")
    a.once()
    b.once()
    a.once()
    for side in (a, b):
        assert (side.root / "g.txt").read_bytes() == b"edited offline on B\n"
    assert a.tree() == b.tree()
    fid = folder_id(server, "alice", "alice", "delete-vs-edit")
    live = server_files(server, "alice", fid)
    assert sorted(live) == ["g.txt", "other.txt"]


def test_a_file_replacing_a_directory_reaches_the_other_side(server, tmp_path):
    a = Client(server, tmp_path / "A", device="A", folder="file-for-dir")
    b = Client(server, tmp_path / "B", device="B", folder="file-for-dir")
    write(a.root / "d" / "x.txt", "in the old directory\n")
    write(a.root / "e" / "y.txt", "in the other directory\n")
    a.once()
    b.once()

    shutil.rmtree(a.root / "d")
    write(a.root / "d", "now a file\n")
    shutil.rmtree(a.root / "e")
    write(a.root / "e", "also a file\n")
    write(b.root / "e" / "new.txt", "written on B inside e, never synced\n")  # B's work must survive
    a.once()
    b.once()
    a.once()
    assert (b.root / "d").read_text() == "now a file\n"
    assert (b.root / "e").read_text() == "also a file\n"
    kept = [p for p in b.root.iterdir() if p.name.startswith("e (conflict from B ")]
    assert len(kept) == 1 and (kept[0] / "new.txt").read_text() == "written on B inside e, never synced\n"
    assert a.tree() == b.tree()

    (b.root / "d").unlink()  # and back: a directory where the file was
    write(b.root / "d" / "z.txt", "a directory again\n")
    b.once()
    a.once()
    assert (a.root / "d" / "z.txt").read_text() == "a directory again\n"
    assert a.tree() == b.tree()


def test_versions_restore_and_trash_from_the_cli(server, tmp_path):
    a = Client(server, tmp_path / "A", device="A", folder="history")
    b = Client(server, tmp_path / "B", device="B", folder="history")
    write(a.root / "f.txt", "first draft\n")
    a.once()
    write(a.root / "f.txt", "second draft, regretted\n")
    a.once()

    listed = a.hearth("sync", "versions", str(a.root), "f.txt", "--password-stdin")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert len(rows) == 2 and rows[0][-1] == "(current)" and all(row[3] == "A" for row in rows)
    restored = a.hearth("sync", "restore", str(a.root), "f.txt", "--password-stdin")
    assert restored.returncode == 0 and f"revision {rows[1][0]}" in restored.stdout, restored.stderr
    a.once()
    b.once()
    assert (a.root / "f.txt").read_text() == (b.root / "f.txt").read_text() == "first draft\n"

    (b.root / "f.txt").unlink()
    b.once()
    a.once()
    assert not (a.root / "f.txt").exists()
    trash = a.hearth("sync", "trash", str(a.root), "--password-stdin")
    assert trash.returncode == 0 and trash.stdout.splitlines()[1].endswith(" f.txt"), trash.stdout
    assert a.hearth("sync", "restore", str(a.root), "f.txt", "--password-stdin").returncode == 0
    a.once()
    assert (a.root / "f.txt").read_text() == "first draft\n"

    missing = a.hearth("sync", "restore", str(a.root), "f.txt", "--revision", "999999", "--password-stdin")
    assert missing.returncode == 1 and "has no revision 999999" in missing.stderr
    wrong = a.hearth("sync", "versions", str(tmp_path / "elsewhere"), "x", "--password-stdin")
    assert wrong.returncode == 2 and "not synced by hearth" in wrong.stderr


# 5 ---------------------------------------------------------------------------

def test_read_only_then_read_write_share(server, tmp_path):
    a = Client(server, tmp_path / "A", device="A", folder="shared-docs")
    write(a.root / "plan.txt", "alice's plan\n")
    write(a.root / "pics" / "p.bin", random.Random(5).randbytes(5000))
    a.once()
    fid = folder_id(server, "alice", "alice", "shared-docs")
    status, share = server.request("POST", f"/sync/v1/folders/{fid}/shares", {"user": "bob", "mode": "ro"},
                                   user="alice")
    assert status == 200 and share["mode"] == "ro"

    bob = Client(server, tmp_path / "bob", user="bob", device="bobpc", folder="alice/shared-docs")
    bob.once()
    assert bob.tree() == a.tree()

    write(bob.root / "bob.txt", "bob was here\n")
    chunks = upload(server, "alice", fid, b"bob was here\n")  # chunks exist; the commit is what is refused
    status, denied = server.request("POST", f"/sync/v1/folders/{fid}/commit", {
        "path": "bob.txt", "base_revision": None, "chunks": chunks, "size": 13, "mtime_ns": 1,
        "executable": False, "device": "bobpc"}, user="bob")
    assert status == 403 and "read-only" in denied["reason"]

    result = bob.once(check=False)
    assert result.returncode == 1
    assert "bob.txt" in result.stderr and "read-only" in result.stderr
    status = bob.status()
    assert status.returncode == 1
    assert "read-only" in status.stdout and "bob.txt" in status.stdout
    assert "bob.txt" not in server_files(server, "alice", fid)
    a.once()
    assert not (a.root / "bob.txt").exists()

    status, share = server.request("POST", f"/sync/v1/folders/{fid}/shares", {"user": "bob", "mode": "rw"},
                                   user="alice")
    assert status == 200 and share["mode"] == "rw"
    bob.once()
    a.once()
    assert (a.root / "bob.txt").read_bytes() == b"bob was here\n"
    assert a.tree() == bob.tree()
    assert bob.status().returncode == 0


# 6 ---------------------------------------------------------------------------

def test_mass_deletion_guard_holds_until_confirmed(server, tmp_path, running):
    a = Client(server, tmp_path / "A", device="A", folder="mass-delete")
    b = Client(server, tmp_path / "B", device="B", folder="mass-delete")
    names = [f"file{i:02d}.txt" for i in range(20)]
    for name in names:
        write(a.root / name, f"content of {name}\n")
    start(running, a)
    b.once()
    assert sorted(b.tree()) == names

    for name in names:
        (a.root / name).unlink()
    Client.wait_for(lambda: "hearth sync confirm-deletes" in a.status().stdout, timeout=20,
                    what="A to report the held-back deletes")
    time.sleep(2)  # give it every chance to send them anyway
    status = a.status()
    assert status.returncode == 1 and "hearth sync confirm-deletes" in status.stdout, status.stdout
    b.once()
    assert sorted(b.tree()) == names
    fid = folder_id(server, "alice", "alice", "mass-delete")
    assert sorted(server_files(server, "alice", fid)) == names

    assert a.stop() == 0
    a.once("--confirm-deletes")
    assert server_files(server, "alice", fid) == {}
    b.once()
    assert b.tree() == {}
    assert a.status().returncode == 0


# 7 ---------------------------------------------------------------------------

def test_moved_root_stops_syncing_and_deletes_nothing(server, tmp_path, running):
    a = Client(server, tmp_path / "A", device="A", folder="moved-root")
    names = [f"doc{i}.txt" for i in range(5)]
    for name in names:
        write(a.root / name, name)
    start(running, a, "--scan-interval", "1")
    fid = folder_id(server, "alice", "alice", "moved-root")
    assert sorted(server_files(server, "alice", fid)) == names

    os.rename(a.root, tmp_path / "A-moved-away")
    Client.wait_for(lambda: "unmounted, moved or replaced" in a.log(), timeout=20,
                    what="A to say the folder is gone")
    a.root.mkdir()  # an empty mount point where the folder was
    time.sleep(2)   # a few scans
    assert a.process.poll() is None, a.log()
    line = [l for l in a.log().splitlines() if "unmounted, moved or replaced" in l][0]
    assert str(a.root) in line
    assert sorted(server_files(server, "alice", fid)) == names
    assert sorted(os.listdir(tmp_path / "A-moved-away")) == sorted(names + [".hearth"])
    assert os.listdir(a.root) == []
    assert a.stop() == 0


# 8 ---------------------------------------------------------------------------

def test_live_sync_latency(server, tmp_path, running):
    a = Client(server, tmp_path / "A", device="A", folder="live")
    b = Client(server, tmp_path / "B", device="B", folder="live")
    write(a.root / "seed.txt", "seed\n")
    start(running, a)
    start(running, b)
    assert (b.root / "seed.txt").read_bytes() == b"seed\n"

    written = time.monotonic()
    write(a.root / "live.txt", "written on A\n")
    target = b.root / "live.txt"
    Client.wait_for(lambda: target.exists() and target.read_bytes() == b"written on A\n", timeout=5,
                    interval=0.01, what="live.txt on B")
    latency = time.monotonic() - written
    print(f"live sync A -> B: {latency * 1000:.0f} ms")

    deleted = time.monotonic()
    target.unlink()
    Client.wait_for(lambda: not (a.root / "live.txt").exists(), timeout=5, interval=0.01,
                    what="live.txt gone on A")
    print(f"live delete B -> A: {(time.monotonic() - deleted) * 1000:.0f} ms")
    assert (a.root / "seed.txt").read_bytes() == b"seed\n"
    assert a.stop() == 0 and b.stop() == 0


# 9 ---------------------------------------------------------------------------

def test_ignore_rules_and_symlinks(server, tmp_path):
    a = Client(server, tmp_path / "A", device="A", folder="ignored")
    b = Client(server, tmp_path / "B", device="B", folder="ignored")
    write(a.root / ".hearthignore", "*.log\n")
    write(a.root / "keep.txt", "keep me\n")
    ignored = ["x.log", "sub/y.log", ".x.swp", "x~", "x.tmp", ".DS_Store"]
    for name in ignored:
        write(a.root / name, f"ignored {name}\n")
    os.symlink("keep.txt", a.root / "link")
    a.once()
    b.once()

    for name in ignored:
        assert not os.path.lexists(b.root / name), name
    assert not os.path.lexists(b.root / "link")
    assert (b.root / "keep.txt").read_bytes() == b"keep me\n"
    fid = folder_id(server, "alice", "alice", "ignored")
    live = server_files(server, "alice", fid)
    assert not set(live) & set(ignored + ["link"]), sorted(live)
    assert "keep.txt" in live
    assert any("symlink" in line and "link" in line for line in a.log().splitlines()), a.log()

    write(a.root / ".hearthignore", "# logs are wanted now\n")  # travels to B like any file
    a.once()
    b.once()
    assert (b.root / "x.log").read_text() == "ignored x.log\n"
    assert (b.root / "sub" / "y.log").read_text() == "ignored sub/y.log\n"
    assert not os.path.lexists(b.root / ".x.swp")  # the built-in defaults still apply


# 10 --------------------------------------------------------------------------

def test_non_nfc_name_is_reported_not_uploaded(server, tmp_path):
    a = Client(server, tmp_path / "A", device="A", folder="nfc")
    nfd = unicodedata.normalize("NFD", "é.txt")
    assert nfd != "é.txt"
    write(a.root / nfd, "decomposed\n")
    write(a.root / "fine.txt", "fine\n")
    result = a.once(check=False)
    assert result.returncode == 1
    assert "NFC" in result.stderr and nfd in result.stderr
    fid = folder_id(server, "alice", "alice", "nfc")
    assert sorted(server_files(server, "alice", fid)) == ["fine.txt"]
    assert os.listdir(a.root).count(nfd) == 1  # not renamed behind the user's back


def test_names_the_server_refuses_are_reported_once_and_never_sent(server, tmp_path):
    """A TAB, a right-to-left override, a directory with DEL: each is one line saying why, nothing of it is
    sent, and the next cycle does not try again."""
    a = Client(server, tmp_path / "A", device="A", folder="refused names")
    refused = ["tab\there.txt", "invoice\u202etxt.exe"]
    for name in refused:
        write(a.root / name, "refused\n")
    write(a.root / "bad\x7fdir" / "inside.txt", "below a refused directory\n")
    write(a.root / "fine.txt", "fine\n")
    for _ in range(2):
        result = a.once(check=False)
        assert result.returncode == 1
        for name in refused + ["bad\x7fdir", "bad\x7fdir/inside.txt"]:
            logged = [line for line in result.stderr.splitlines()
                      if " WARNING " in line and f"{escape(name)}: " in line]  # logs show control characters as \xHH
            assert len(logged) == 1, result.stderr
        assert not any(char in result.stderr for char in "\t\x7f\u202e"), result.stderr  # not even on the terminal
        assert "which the server refuses" in result.stderr and "server refused" not in result.stderr
    fid = folder_id(server, "alice", "alice", "refused names")
    assert sorted(server_files(server, "alice", fid)) == ["fine.txt"]
    assert "/commit" not in "".join(line for line in server.log().splitlines() if " 400 " in line)


def test_names_differing_only_by_case_are_reported_never_merged(server, tmp_path):
    a = Client(server, tmp_path / "A", device="A", folder="case")
    b = Client(server, tmp_path / "B", device="B", folder="case")
    write(a.root / "Notes.txt", "capital\n")
    write(a.root / "notes.txt", "small\n")
    a.once()
    assert "Notes.txt and notes.txt differ only by case" in a.log()
    fid = folder_id(server, "alice", "alice", "case")
    assert sorted(server_files(server, "alice", fid)) == ["Notes.txt", "notes.txt"]

    write(b.root / "NOTES.txt", "B's own, before its first sync\n")  # as a case-insensitive disk would hold it
    result = b.once(check=False)
    assert result.returncode == 1 and "differing only in case" in result.stderr, result.stderr
    assert sorted(p.name for p in b.root.iterdir() if not p.name.startswith(".hearth")) == ["NOTES.txt"]
    assert (b.root / "NOTES.txt").read_text() == "B's own, before its first sync\n"


# 11 --------------------------------------------------------------------------

def test_server_restart_is_survived(server, tmp_path, running):
    a = Client(server, tmp_path / "A", device="A", folder="restart")
    b = Client(server, tmp_path / "B", device="B", folder="restart")
    write(a.root / "before.txt", "before\n")
    start(running, a)

    assert server.stop() == 0, server.log()
    try:
        write(a.root / "during.txt", "written while the server was down\n")
        Client.wait_for(lambda: "server unreachable" in a.log(), timeout=20, what="A to notice the outage")
        time.sleep(2)
    finally:
        server.start()  # same home, same port
    deadline = time.monotonic() + 30
    while True:
        b.once()
        if (b.root / "during.txt").exists() or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert (b.root / "during.txt").read_bytes() == b"written while the server was down\n"
    assert (b.root / "before.txt").read_bytes() == b"before\n"
    assert a.log().count("server unreachable") == 1, a.log()
    assert a.stop() == 0


# 12 --------------------------------------------------------------------------

def test_status_command(server, tmp_path):
    never = Client(server, tmp_path / "never", device="N", folder="status")
    result = never.status()
    assert result.returncode != 0
    assert "not synced by hearth" in result.stderr and str(never.root) in result.stderr

    a = Client(server, tmp_path / "A", device="A", folder="status")
    write(a.root / "s.txt", "status\n")
    a.once()
    result = a.status()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "in sync" in result.stdout and "not in sync" not in result.stdout
    assert "not running" in result.stdout
