"""The real Nextcloud command-line client (`nextcloudcmd` 3.7, Debian nextcloud-desktop-cmd) syncing a
tree with `hearth up`: a first sync of 2,000 small files and a 200 MiB chunked upload (pulled again by a
`hearth sync` client), a re-sync with nothing changed, changes made on either side, a conflict, a
read-only share, and a big upload killed midway then resumed; every byte checked with SHA-256 through
`/files/USER/` and every request read from the front's access log.

The tests run in order on one installation and one local folder: each starts from the state the one
before left (the client's journal lives in the local folder, as it does on a laptop).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.installation import ADMIN_PASSWORD, Installation
from tests.nextcloudcmd import (FOLDERS, SMALL_FILES, client_requests, hearth_for_nextcloudcmd, local_files,
                                nextcloudcmd, write_small_tree)

PASSWORDS = {"alice": "alice's long password", "bob": "bob's long password"}
BIG = 200 * 1024 * 1024


@pytest.fixture(scope="module")
def hearth(tmp_path_factory):
    with hearth_for_nextcloudcmd(tmp_path_factory, "nextcloudcmd-sync") as installation:
        yield installation


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("laptop")


def sync(hearth: Installation, local: Path, user: str = "admin", password: str = ADMIN_PASSWORD) -> float:
    """One `nextcloudcmd` run (asserted to succeed); its wall time in seconds."""
    result, elapsed = nextcloudcmd(local, hearth.url, user, password, local.parent / "nextcloudcmd.log")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return elapsed


def request(hearth: Installation, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None, user: str = "admin") -> tuple[int, bytes]:
    auth = base64.b64encode(f"{user}:{PASSWORDS.get(user, ADMIN_PASSWORD)}".encode()).decode()
    req = urllib.request.Request(hearth.url + urllib.request.quote(path), data=body, method=method,
                                 headers={"Authorization": f"Basic {auth}", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def server_bytes(hearth: Installation, path: str) -> bytes | None:
    """The file's content through /files/admin/, or None when it is not there."""
    status, body = request(hearth, "GET", f"/files/admin/{path}")
    assert status in (200, 404), (path, status, body[:200])
    return body if status == 200 else None


def requests_since(hearth: Installation, before: int) -> list[tuple[str, str, int]]:
    """The client's requests after the first `before`, once the run's root listing is logged."""
    return hearth.wait_for(lambda: [r for r in client_requests(hearth)[before:] if r[0] == "PROPFIND"]
                           and client_requests(hearth)[before:], what="the run's PROPFIND in the log")


def test_first_sync_uploads_2000_files_a_root_file_and_200_mib_whole(hearth, local):
    write_small_tree(local)
    (local / "Docs" / "big.bin").write_bytes(os.urandom(BIG))
    (local / "readme.txt").write_text("at the root\n")
    expected = local_files(local)

    elapsed = sync(hearth, local)
    print(f"first sync: {elapsed:.1f} s for {len(expected)} files")

    assert {path: hashlib.sha256(server_bytes(hearth, path) or b"").hexdigest() for path in expected} == expected
    requests = client_requests(hearth)
    assert any(method == "MOVE" and target.startswith("/remote.php/dav/uploads/admin/")
               for method, target, _ in requests), "the 200 MiB file did not go up in chunks"
    status, listing = request(hearth, "GET", "/sync/v1/folders")
    assert status == 200
    for folder in FOLDERS + ["Root files"]:
        assert f'"{folder}"'.encode() in listing, listing[:500]


@pytest.fixture(scope="module")
def pulled(tmp_path_factory) -> Path:
    """Where a `hearth sync` client keeps the folder Docs."""
    path = tmp_path_factory.mktemp("other-laptop") / "Docs"
    path.mkdir()
    return path


def hearth_sync(hearth: Installation, pulled: Path) -> None:
    result = hearth.hearth("sync", str(pulled), "--server", hearth.url, "--user", "admin", "--password-stdin",
                           "--folder", "Docs", "--once", input=ADMIN_PASSWORD + "\n", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_hearth_sync_client_pulls_the_same_bytes(hearth, local, pulled):
    """The one journal: what nextcloudcmd uploaded is what `hearth sync` gets (Docs holds the 200 MiB file)."""
    started = time.monotonic()
    hearth_sync(hearth, pulled)
    print(f"hearth sync --once of Docs: {time.monotonic() - started:.1f} s")
    theirs = {path: digest for path, digest in local_files(pulled).items() if not path.startswith(".hearth")}
    assert theirs == local_files(local / "Docs")


def test_a_resync_with_nothing_changed_only_discovers(hearth, local):
    sync(hearth, local)  # the folders the first sync made have no etag in the journal yet: listed once
    before = len(client_requests(hearth))
    elapsed = sync(hearth, local)
    requests = requests_since(hearth, before)
    print(f"no-change re-sync: {elapsed:.2f} s, requests {requests}")
    assert not [r for r in requests if r[0] not in ("GET", "PROPFIND") or
                (r[0] == "GET" and r[1].startswith("/remote.php/"))], requests
    assert [r for r in requests if r[0] == "PROPFIND"] == [("PROPFIND", "/remote.php/dav/files/admin/", 207)]


def test_local_edit_rename_move_and_delete_reach_the_server(hearth, local):
    edited = local / "Docs" / "sub0" / "file0000.txt"
    edited.write_bytes(b"edited on the laptop, longer than before\n")
    os.utime(edited, (1_600_000_000, 1_600_000_000))  # changed, and not "still being written"
    (local / "Photos" / "sub1" / "file0001.txt").rename(local / "Photos" / "sub1" / "renamed.txt")
    (local / "Music" / "sub2" / "file0002.txt").rename(local / "Notes" / "moved.txt")
    (local / "Notes" / "sub0" / "file0003.txt").unlink()

    sync(hearth, local)

    assert server_bytes(hearth, "Docs/sub0/file0000.txt") == b"edited on the laptop, longer than before\n"
    assert server_bytes(hearth, "Photos/sub1/renamed.txt") == b"file 1\n" * 2
    assert server_bytes(hearth, "Photos/sub1/file0001.txt") is None
    assert server_bytes(hearth, "Notes/moved.txt") == b"file 2\n" * 3
    assert server_bytes(hearth, "Music/sub2/file0002.txt") is None
    assert server_bytes(hearth, "Notes/sub0/file0003.txt") is None

    before = len(client_requests(hearth))
    sync(hearth, local)
    assert not [r for r in requests_since(hearth, before) if r[0] != "PROPFIND" and r[1].startswith("/remote.php/")]


def test_server_put_move_delete_and_a_folder_rename_reach_the_laptop(hearth, local):
    assert request(hearth, "PUT", "/files/admin/Docs/from-server.txt", b"made on the server\n")[0] == 201
    assert request(hearth, "MOVE", "/files/admin/Photos/sub2/file0005.txt",
                   headers={"Destination": "/files/admin/Docs/moved-on-server.txt"})[0] == 201
    assert request(hearth, "DELETE", "/files/admin/Photos/sub0/file0009.txt")[0] == 204
    assert request(hearth, "MOVE", "/files/admin/Music/", headers={"Destination": "/files/admin/Songs/"})[0] == 201

    sync(hearth, local)

    assert (local / "Docs" / "from-server.txt").read_bytes() == b"made on the server\n"
    assert (local / "Docs" / "moved-on-server.txt").read_bytes() == b"file 5\n" * 6
    assert not (local / "Photos" / "sub2" / "file0005.txt").exists()
    assert not (local / "Photos" / "sub0" / "file0009.txt").exists()
    assert not (local / "Music").exists()
    assert (local / "Songs" / "sub0" / "file0006.txt").read_bytes() == b"file 6\n" * 7
    assert len(list((local / "Songs").rglob("*.txt"))) == SMALL_FILES // len(FOLDERS) - 1  # one moved out


def test_the_same_file_edited_on_both_sides_keeps_both(hearth, local):
    assert request(hearth, "PUT", "/files/admin/Notes/sub1/file0007.txt", b"server edit\n")[0] == 204
    mine = local / "Notes" / "sub1" / "file0007.txt"
    mine.write_bytes(b"laptop edit, not the same length\n")
    os.utime(mine, (1_600_000_000, 1_600_000_000))  # changed, and not "still being written"

    sync(hearth, local)

    contents = {p.read_bytes() for p in (local / "Notes" / "sub1").glob("file0007*")}
    server = {server_bytes(hearth, "Notes/sub1/file0007.txt")}
    assert {b"server edit\n", b"laptop edit, not the same length\n"} <= contents | server, contents
    assert server == {b"server edit\n"} or server == {b"laptop edit, not the same length\n"}


def test_the_same_file_edited_through_hearth_sync_and_nextcloudcmd_keeps_both(hearth, local, pulled):
    hearth_sync(hearth, pulled)  # up to date with the changes above
    theirs = pulled / "sub2" / "file0008.txt"
    theirs.write_bytes(b"edited with hearth sync\n")
    mine = local / "Docs" / "sub2" / "file0008.txt"
    mine.write_bytes(b"edited under nextcloudcmd, another length\n")
    os.utime(mine, (1_600_000_000, 1_600_000_000))
    hearth_sync(hearth, pulled)

    sync(hearth, local)
    hearth_sync(hearth, pulled)

    everywhere = {p.read_bytes() for p in (local / "Docs" / "sub2").glob("file0008*")} | \
        {p.read_bytes() for p in (pulled / "sub2").glob("file0008*")} | {server_bytes(hearth, "Docs/sub2/file0008.txt")}
    assert {b"edited with hearth sync\n", b"edited under nextcloudcmd, another length\n"} <= everywhere, everywhere
    assert server_bytes(hearth, "Docs/sub2/file0008.txt") == mine.read_bytes()  # both clients agree on the file
    assert (pulled / "sub2" / "file0008.txt").read_bytes() == mine.read_bytes()


def test_a_read_only_share_syncs_down_and_a_local_edit_is_never_uploaded(hearth, tmp_path):
    for user in PASSWORDS:
        hearth.hearth("user", "add", user, "--password-stdin", input=PASSWORDS[user] + "\n", check=True)
    status, body = request(hearth, "POST", "/sync/v1/folders", b'{"name": "Family"}',
                           {"Content-Type": "application/json"}, user="bob")
    assert status == 201, body
    folder = json.loads(body)["id"]
    assert request(hearth, "PUT", "/files/bob/Family/recipe.txt", b"bob's recipe\n", user="bob")[0] == 201
    assert request(hearth, "POST", f"/sync/v1/folders/{folder}/shares", b'{"user": "alice", "mode": "ro"}',
                   {"Content-Type": "application/json"}, user="bob")[0] == 200
    laptop = tmp_path / "alice"
    laptop.mkdir()

    sync(hearth, laptop, "alice", PASSWORDS["alice"])
    [copy] = laptop.rglob("recipe.txt")
    assert copy.read_bytes() == b"bob's recipe\n"
    copy.chmod(0o644)  # the client made it read-only: a user can still force an edit
    copy.write_bytes(b"alice's edit, which bob did not allow\n")
    os.utime(copy, (1_600_000_000, 1_600_000_000))
    before = len(client_requests(hearth))
    sync(hearth, laptop, "alice", PASSWORDS["alice"])

    assert request(hearth, "GET", "/files/bob/Family/recipe.txt", user="bob") == (200, b"bob's recipe\n")
    assert copy.read_bytes() == b"bob's recipe\n"  # the client put bob's back and kept the edit aside:
    assert [p.read_bytes() for p in copy.parent.glob("recipe (conflicted copy*")] == [
        b"alice's edit, which bob did not allow\n"]
    assert not [r for r in requests_since(hearth, before) if r[0] in ("PUT", "MOVE", "DELETE", "MKCOL")]


def chunk_puts(hearth: Installation, since: int) -> list[str]:
    """The chunks the client sent after its first `since` requests (the killed request logs 499: not sent)."""
    return [target for method, target, status in client_requests(hearth)[since:]
            if method == "PUT" and target.startswith("/remote.php/dav/uploads/") and status == 201]


def test_a_big_upload_killed_midway_arrives_whole_on_the_next_run(hearth, local, capsys):
    data = os.urandom(BIG)
    (local / "Docs" / "second-big.bin").write_bytes(data)
    uploads = hearth.var / "uploads" / "admin"
    before = len(client_requests(hearth))
    client = subprocess.Popen(["nextcloudcmd", "--non-interactive", "-u", "admin", "-p", ADMIN_PASSWORD,
                               str(local), hearth.url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:  # killed once the server holds a finished chunk of it (upload_parts: a part being received is ".part-…")
        finished = hearth.wait_for(lambda: [p for p in uploads.glob("*/*") if not p.name.startswith(".part-")],
                                   timeout=120, what="a chunk of the big file on the server")
    finally:
        client.send_signal(signal.SIGKILL)
        client.wait()
    assert server_bytes(hearth, "Docs/second-big.bin") is None
    kept = {f"/remote.php/dav/uploads/admin/{p.parent.name}/{p.name}" for p in finished}
    first = chunk_puts(hearth, before)

    resumed = len(client_requests(hearth))
    sync(hearth, local)

    assert hashlib.sha256(server_bytes(hearth, "Docs/second-big.bin") or b"").digest() == hashlib.sha256(data).digest()
    second = chunk_puts(hearth, resumed)
    with capsys.disabled():
        print(f"\ninterrupted upload: {len(first)} chunk PUTs before the kill ({len(kept)} finished), "
              f"{len(second)} after: {second}")
    upload_folder = next(iter(kept)).rpartition("/")[0]
    assert second and all(target.startswith(upload_folder + "/") for target in second)  # the same upload,
    assert not kept & set(second)  # without the chunks the server already had
    assert not list(uploads.glob("*/*")), "the finished upload left its chunks behind"
