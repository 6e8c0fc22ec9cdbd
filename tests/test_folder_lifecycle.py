"""Renaming, deleting and restoring whole folders, and creating one from two devices at once: the sync
API, WebDAV, `hearth folder` and running `hearth sync` clients, against real daemons sharing one database."""
from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from tests.daemons import serving
from tests.installation import clean_environ
from tests.sync_harness import REPO, Client
from tests.test_files_webdav import FilesDaemon
from tests.test_sync_server import SyncDaemon


@pytest.fixture(scope="module")
def daemons(tmp_path_factory):
    """A sync daemon and a files daemon on one data directory (as `hearth up` runs them)."""
    home = tmp_path_factory.mktemp("folders")
    files = FilesDaemon(tmp_path_factory.mktemp("files-config"))
    files.on_data_of(home)
    with serving(SyncDaemon(home), "alice", "bob") as sync:
        with serving(files) as dav:
            yield sync, dav


def create(sync, user: str, name: str) -> tuple[int, dict]:
    return sync.request("POST", "/sync/v1/folders", {"name": name}, user=user)


def names(sync, user: str) -> set[str]:
    return {f["name"] for f in sync.request("GET", "/sync/v1/folders", user=user)[1]}


def hearth(sync, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", "--config", str(sync.config), *args],
                          capture_output=True, text=True, cwd=REPO, env=clean_environ(), timeout=60)


def test_creating_an_existing_folder_joins_it_even_at_the_same_moment(daemons):
    sync, _ = daemons
    answers, start = [], threading.Barrier(8)

    def one():
        start.wait()
        answers.append(create(sync, "alice", "Together"))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(status for status, _ in answers) == [200] * 7 + [201]
    assert len({body["id"] for _, body in answers}) == 1


def test_sync_api_renames_deletes_and_restores_keeping_shares(daemons):
    sync, _ = daemons
    fid = create(sync, "alice", "Fotos")[1]["id"]
    other = create(sync, "alice", "Taken")[1]["id"]
    assert sync.request("POST", f"/sync/v1/folders/{fid}/shares", {"user": "bob", "mode": "rw"}, user="alice")[0] == 200
    assert sync.request("PATCH", f"/sync/v1/folders/{fid}", {"name": "Taken"}, user="alice")[0] == 409
    assert sync.request("PATCH", f"/sync/v1/folders/{fid}", {"name": "a/b"}, user="alice")[0] == 400
    assert sync.request("PATCH", f"/sync/v1/folders/{fid}", {"name": "X"}, user="bob")[0] == 403  # grantee
    status, renamed = sync.request("PATCH", f"/sync/v1/folders/{fid}", {"name": "Photos"}, user="alice")
    assert status == 200 and renamed["name"] == "Photos" and renamed["id"] == fid
    shared = [f for f in sync.request("GET", "/sync/v1/folders", user="bob")[1] if f["id"] == fid]
    assert [f["name"] for f in shared] == ["Photos"]  # the share followed the rename

    assert sync.request("DELETE", f"/sync/v1/folders/{fid}", user="bob")[0] == 403
    status, deleted = sync.request("DELETE", f"/sync/v1/folders/{fid}", user="alice")
    assert status == 200 and deleted["name"] == "Photos"
    assert "Photos" not in names(sync, "alice") and fid not in [f["id"] for f in sync.request(
        "GET", "/sync/v1/folders", user="bob")[1]]
    status, gone = sync.request("GET", f"/sync/v1/folders/{fid}/changes?since=0", user="bob")
    assert status == 410 and gone["error"] == "folder-deleted" and "alice deleted the folder 'Photos'" in gone["reason"]
    assert [f["id"] for f in sync.request("GET", "/sync/v1/deleted-folders", user="alice")[1]] == [fid]

    assert create(sync, "alice", "Photos")[0] == 201  # the name is free again
    status, taken = sync.request("POST", f"/sync/v1/deleted-folders/{fid}/restore", {}, user="alice")
    assert status == 409, taken
    status, back = sync.request("POST", f"/sync/v1/deleted-folders/{fid}/restore", {"name": "Photos 2"}, user="alice")
    assert status == 200 and back["name"] == "Photos 2"
    assert sync.request("GET", f"/sync/v1/folders/{fid}/changes?since=0", user="bob")[0] == 200  # share is back
    spec = sync.request("GET", "/sync/v1/openapi.json")[1]
    assert {"patch", "delete"} <= set(spec["paths"]["/sync/v1/folders/{id}"])
    assert "post" in spec["paths"]["/sync/v1/deleted-folders/{id}/restore"]
    assert other


def test_webdav_delete_restore_and_move_rename(daemons):
    sync, dav = daemons
    assert dav.exchange("MKCOL", "/files/alice/litmus/", user="alice")[0] == 201
    assert dav.exchange("PUT", "/files/alice/litmus/a.txt", b"kept", user="alice")[0] == 201
    assert dav.exchange("MKCOL", "/files/alice/Other/", user="alice")[0] == 201

    assert dav.exchange("MOVE", "/files/alice/litmus/", user="alice", headers={
        "Destination": "/files/alice/Other/", "Overwrite": "F"})[0] == 412
    assert dav.exchange("MOVE", "/files/alice/litmus/", user="alice", headers={
        "Destination": "/files/alice/Other/"})[0] == 409  # never merged into, never replaced
    assert dav.exchange("GET", "/files/alice/Other/a.txt", user="alice")[0] == 404
    assert dav.exchange("MOVE", "/files/alice/litmus/", user="alice", headers={
        "Destination": "/files/alice/l%C3%BCtmus/"})[0] == 201
    assert dav.exchange("GET", "/files/alice/l%C3%BCtmus/a.txt", user="alice")[2] == b"kept"
    assert dav.exchange("MOVE", "/files/alice/l%C3%BCtmus/", user="alice", headers={
        "Destination": "/files/alice/litmus/"})[0] == 201

    assert dav.exchange("DELETE", "/files/alice/litmus/", user="alice")[0] == 204
    assert dav.exchange("PROPFIND", "/files/alice/litmus/", user="alice", headers={"Depth": "0"})[0] == 404
    assert "litmus" not in names(sync, "alice")
    assert dav.exchange("MKCOL", "/files/alice/litmus/", user="alice")[0] == 201  # a run again starts afresh
    assert dav.exchange("DELETE", "/files/alice/litmus/", user="alice")[0] == 204
    restorable = [f for f in sync.request("GET", "/sync/v1/deleted-folders", user="alice")[1] if f["name"] == "litmus"]
    assert [f["files"] for f in restorable] == [0, 1]  # newest first
    status, _ = sync.request("POST", f"/sync/v1/deleted-folders/{restorable[1]['id']}/restore", {}, user="alice")
    assert status == 200
    assert dav.exchange("GET", "/files/alice/litmus/a.txt", user="alice")[2] == b"kept"


def test_hearth_folder_command(daemons):
    sync, dav = daemons
    assert create(sync, "bob", "Typo")[0] == 201
    assert dav.exchange("PUT", "/files/bob/Typo/n.txt", b"note", user="bob")[0] == 201
    assert create(sync, "bob", "Notes")[0] == 201
    refused = hearth(sync, "folder", "mv", "bob", "Typo", "Notes")
    assert refused.returncode == 1 and "already has a folder named 'Notes'" in refused.stderr
    assert hearth(sync, "folder", "rm", "bob", "Notes").returncode == 0
    moved = hearth(sync, "folder", "mv", "bob", "Typo", "Notes")
    assert moved.returncode == 0, moved.stderr
    removed = hearth(sync, "folder", "rm", "bob", "Notes")
    assert removed.returncode == 0 and "1 files" in removed.stdout and "hearth folder restore bob Notes" in removed.stdout
    listing = hearth(sync, "folder", "list", "bob").stdout
    assert listing.count("Notes") == 2 and "deleted" in listing
    restored = hearth(sync, "folder", "restore", "bob", "Notes")
    assert restored.returncode == 0, restored.stderr
    assert dav.exchange("GET", "/files/bob/Notes/n.txt", user="bob")[2] == b"note"
    assert hearth(sync, "folder", "rm", "bob", "Nothing").returncode == 1


def test_two_devices_started_at_once_on_a_new_folder_sync_together(daemons, tmp_path):
    sync, _ = daemons
    a, b = Client(sync, tmp_path / "a", device="A", folder="Fresh"), Client(sync, tmp_path / "b", device="B",
                                                                          folder="Fresh")
    processes = [subprocess.Popen(c.argv("--once"), stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  cwd=REPO, env=clean_environ()) for c in (a, b)]
    results = [p.communicate("alice password\n", timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], results
    (a.root / "hello.txt").write_text("from A")
    a.once()
    b.once()
    assert (b.root / "hello.txt").read_text() == "from A"


def test_a_running_client_follows_a_rename_and_stops_on_a_delete(daemons, tmp_path):
    sync, _ = daemons
    client = Client(sync, tmp_path / "docs", device="A", folder="Followed")
    (client.root / "mine.txt").write_text("mine")
    client.start("--scan-interval", "2")
    try:
        fid = next(f["id"] for f in sync.request("GET", "/sync/v1/folders", user="alice")[1] if f["name"] == "Followed")
        assert sync.request("PATCH", f"/sync/v1/folders/{fid}", {"name": "Renamed"}, user="alice")[0] == 200
        client.wait_for(lambda: "folder:       Renamed on" in client.status().stdout, timeout=40,
                        what="the client to learn the new name")
        (client.root / "after.txt").write_text("after the rename")
        client.wait_for(lambda: sync.request("GET", f"/sync/v1/folders/{fid}/versions?path=after.txt",
                                             user="alice")[0] == 200, what="a file written after the rename")

        assert sync.request("DELETE", f"/sync/v1/folders/{fid}", user="alice")[0] == 200
        line = client.wait_for(lambda: next((l for l in client.status().stdout.splitlines()
                                             if "was deleted" in l), None), timeout=40, what="the deleted state")
        assert line.startswith("state:        stopped: the server folder 'Renamed' was deleted")
        assert "every file here is kept" in line and "hearth folder restore" in line
        assert (client.root / "mine.txt").read_text() == "mine" and client.process.poll() is None

        assert sync.request("POST", f"/sync/v1/deleted-folders/{fid}/restore", {}, user="alice")[0] == 200
        (client.root / "back.txt").write_text("back again")
        client.wait_for(lambda: sync.request("GET", f"/sync/v1/folders/{fid}/versions?path=back.txt",
                                             user="alice")[0] == 200, timeout=60, what="syncing to resume")
    finally:
        client.stop()
    assert "is now called 'Renamed'" in client.log()


def test_upgrading_a_database_keeps_every_folder_entry_and_share(tmp_path):
    """The folders table is rebuilt (a UNIQUE constraint cannot be dropped in place): nothing that
    refers to a folder may be lost on the way, although foreign keys cascade."""
    from services.core.db import migrate, open_db
    from services.core.schema import MIGRATION_SETS, files

    path = tmp_path / "hearth.sqlite3"
    db = open_db(path)
    files.apply(db, stop_before="m002_deletable_folders")
    db.execute("INSERT INTO folders (id, owner, name, created_at, seq) VALUES (7, 'ann', 'Photos', 'then', 1)")
    db.execute("INSERT INTO folder_shares VALUES (7, 'bob', 'ro')")
    db.execute("INSERT INTO entries (folder_id, path, kind, seq) VALUES (7, 'a.jpg', 'file', 1)")
    db.close()
    migrate(path, MIGRATION_SETS)
    db = open_db(path)
    assert db.execute("SELECT id, name, seq, deleted_at FROM folders").fetchall() == [(7, "Photos", 1, None)]
    assert db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 1
    assert db.execute("SELECT * FROM folder_shares").fetchall() == [(7, "bob", "ro")]
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    db.execute("DELETE FROM folders WHERE id = 7")  # the references still point at the rebuilt table
    assert db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 0
    db.close()


def test_restoring_a_folder_counts_against_the_quota_again(daemons):
    """A deleted folder's files stop counting; bringing them back must not push the owner over the quota."""
    _, dav = daemons
    block = b"q" * (600 * 1024)  # two of these exceed the files daemon's 1 MiB quota
    for folder in ("Quota-old", "Quota-new"):
        assert dav.exchange("MKCOL", f"/files/alice/{folder}/", user="alice")[0] == 201
    assert dav.exchange("PUT", "/files/alice/Quota-old/a.bin", block, user="alice")[0] == 201
    assert dav.exchange("DELETE", "/files/alice/Quota-old/", user="alice")[0] == 204
    assert dav.exchange("PUT", "/files/alice/Quota-new/b.bin", block, user="alice")[0] == 201

    def restore():
        return subprocess.run([sys.executable, "-m", "services.cli", "--config", str(dav.config),
                               "folder", "restore", "alice", "Quota-old"],
                              capture_output=True, text=True, cwd=REPO, env=clean_environ(), timeout=60)

    refused = restore()
    assert refused.returncode == 1 and "over the quota" in refused.stderr, refused
    assert dav.exchange("PROPFIND", "/files/alice/Quota-old/", user="alice", headers={"Depth": "0"})[0] == 404
    assert dav.exchange("DELETE", "/files/alice/Quota-new/", user="alice")[0] == 204
    assert restore().returncode == 0
    assert dav.exchange("GET", "/files/alice/Quota-old/a.bin", user="alice")[2] == block
