"""Real WebDAV clients against the files daemon: litmus's suites, rclone, a davfs2 mount and a running
sync client."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from tests.daemons import PASSWORDS, serving
from tests.sync_harness import Client
from tests.test_files_webdav import FilesDaemon
from tests.test_sync_server import SyncDaemon


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (Debian package {tool}; .ci/run installs it)")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    with serving(FilesDaemon(tmp_path_factory.mktemp("files-interop"), quota_mb=0), "alice") as daemon:
        assert daemon.exchange("MKCOL", "/files/alice/Docs/", user="alice")[0] == 201
        yield daemon


@pytest.mark.parametrize("suite", ["basic", "copymove", "props", "locks", "http"])
def test_litmus(files, suite, tmp_path):
    _need("litmus")
    result = subprocess.run(["litmus", f"http://127.0.0.1:{files.port}/files/alice/Docs/", "alice",
                             PASSWORDS["alice"]], env={**os.environ, "TESTS": suite}, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    print(result.stdout)
    assert result.returncode == 0 and " 0 failed" in result.stdout, result.stdout + result.stderr
    assert "WARNING" not in result.stdout


def test_litmus_at_the_top_of_a_users_tree_runs_again_and_its_folder_can_be_deleted(files, tmp_path):
    """litmus makes its `litmus/` collection in the URL it is given, deleting a leftover one first, and
    leaves it behind: at /files/USER/ that is a top-level folder, deleted to the user's trash."""
    _need("litmus")
    for _ in range(2):  # the second run's `begin` deletes the first run's litmus/ folder
        result = subprocess.run(["litmus", f"http://127.0.0.1:{files.port}/files/alice/", "alice",
                                 PASSWORDS["alice"]], env={**os.environ, "TESTS": "basic"}, cwd=tmp_path,
                                capture_output=True, text=True, timeout=300)
        print(result.stdout)
        assert result.returncode == 0 and " 0 failed" in result.stdout, result.stdout + result.stderr
    assert files.exchange("DELETE", "/files/alice/litmus/", user="alice")[0] == 204
    assert files.exchange("PROPFIND", "/files/alice/litmus/", user="alice", headers={"Depth": "0"})[0] == 404
    with files.db() as db:
        assert db.execute("SELECT COUNT(*) FROM folders WHERE name = 'litmus' AND deleted_at IS NOT NULL"
                          ).fetchone()[0] == 2


def _rclone(files, *args: str, vendor: str = "other", base: str = "/files/alice/") -> subprocess.CompletedProcess:
    obscured = subprocess.run(["rclone", "obscure", PASSWORDS["alice"]], capture_output=True, text=True,
                              check=True).stdout.strip()
    remote = (f":webdav,url='http://127.0.0.1:{files.port}{base}',vendor={vendor},user=alice,"
              f"pass='{obscured}':")
    argv = ["rclone", "--config", "/dev/null", *[a.replace("REMOTE:", remote) for a in args]]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300)


def test_rclone_copies_a_tree_up_and_back_byte_identical(files, tmp_path):
    _need("rclone")
    up = tmp_path / "up"
    (up / "a" / "b" / "c").mkdir(parents=True)
    (up / "empty.txt").write_bytes(b"")
    (up / "a" / "big.bin").write_bytes(os.urandom(20 * 1024 * 1024))
    (up / "a" / "b" / "c" / "deep.txt").write_text("deep\n")
    (up / "Ünïcødé ✓名前.txt").write_text("unicode\n")
    result = _rclone(files, "copy", str(up), "REMOTE:Docs/tree")
    assert result.returncode == 0, result.stderr
    listing = _rclone(files, "lsf", "-R", "REMOTE:Docs/tree")
    assert listing.returncode == 0, listing.stderr
    assert set(listing.stdout.split("\n")) >= {"a/", "a/big.bin", "a/b/c/deep.txt", "empty.txt",
                                               "Ünïcødé ✓名前.txt"}
    down = tmp_path / "down"
    result = _rclone(files, "copy", "REMOTE:Docs/tree", str(down))
    assert result.returncode == 0, result.stderr
    for path in up.rglob("*"):
        if path.is_file():
            assert (down / path.relative_to(up)).read_bytes() == path.read_bytes(), path


def test_rclone_as_an_owncloud_client_keeps_file_dates(files, tmp_path):
    """rclone's owncloud vendor sends each file's time in X-OC-Mtime with the upload; it comes back in
    listings and downloads."""
    _need("rclone")
    up = tmp_path / "up"
    up.mkdir()
    old = 1_000_000_000  # 2001-09-09 01:46:40 UTC
    (up / "old.txt").write_text("written long ago\n")
    os.utime(up / "old.txt", (old, old))
    result = _rclone(files, "copy", str(up), "REMOTE:Docs/dated", vendor="owncloud")
    assert result.returncode == 0, result.stderr
    listing = _rclone(files, "lsjson", "REMOTE:Docs/dated", vendor="owncloud")
    assert listing.returncode == 0, listing.stderr
    [entry] = json.loads(listing.stdout)
    assert datetime.fromisoformat(entry["ModTime"].replace("Z", "+00:00")).timestamp() == old, entry
    assert files.exchange("HEAD", "/files/alice/Docs/dated/old.txt", user="alice")[1]["last-modified"] == \
        "Sun, 09 Sep 2001 01:46:40 GMT"
    down = tmp_path / "down"
    assert _rclone(files, "copy", "REMOTE:Docs/dated", str(down), vendor="owncloud").returncode == 0
    assert int((down / "old.txt").stat().st_mtime) == old


@pytest.mark.parametrize("base", ["/remote.php/dav/files/alice/", "/remote.php/webdav/"])
def test_rclone_as_a_nextcloud_client_syncs_the_root_of_the_tree(files, tmp_path, base):
    """rclone's nextcloud vendor at the apps' addresses: files at the top of the tree (kept in "Root
    files", listed at the root), folders, dates and its OC-Checksum, up and back byte for byte."""
    _need("rclone")
    up = tmp_path / "up"
    (up / "Photos" / "2026").mkdir(parents=True)
    (up / "at the root.txt").write_text("top level\n")
    (up / "Photos" / "2026" / "img.jpg").write_bytes(os.urandom(3 * 1024 * 1024))
    os.utime(up / "at the root.txt", (1_500_000_000, 1_500_000_000))
    result = _rclone(files, "copy", str(up), "REMOTE:", vendor="nextcloud", base=base)
    assert result.returncode == 0, result.stderr
    listing = _rclone(files, "lsf", "-R", "REMOTE:", vendor="nextcloud", base=base)
    assert listing.returncode == 0, listing.stderr
    assert set(listing.stdout.split("\n")) >= {"at the root.txt", "Photos/", "Photos/2026/img.jpg"}
    assert files.exchange("GET", "/files/alice/at%20the%20root.txt", user="alice")[2] == b"top level\n"
    with files.db() as db:  # rclone sent OC-Checksum: verified, and kept
        assert db.execute("""SELECT c.checksum FROM files_checksums c JOIN entries e ON e.revision_id = c.revision_id
                             WHERE e.path = 'at the root.txt' AND e.deleted = 0""").fetchone()[0] == \
            "SHA1:" + hashlib.sha1(b"top level\n").hexdigest()
    down = tmp_path / "down"
    result = _rclone(files, "copy", "REMOTE:", str(down), vendor="nextcloud", base=base)
    assert result.returncode == 0, result.stderr
    for path in up.rglob("*"):
        if path.is_file():
            assert (down / path.relative_to(up)).read_bytes() == path.read_bytes(), path
    assert int((down / "at the root.txt").stat().st_mtime) == 1_500_000_000
    for name in ("at%20the%20root.txt", "Photos/"):
        assert files.exchange("DELETE", f"/files/alice/{name}", user="alice")[0] == 204


@contextmanager
def _davfs2_mount(files, user: str) -> Iterator[Path]:
    """/files/USER/ mounted with davfs2 (Debian's mount.davfs, as root, through /dev/fuse); unmounting
    at the end waits until davfs2 has uploaded everything in its cache."""
    _need("mount.davfs")
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        pytest.skip("mount.davfs needs root and /dev/fuse")
    work = Path(tempfile.mkdtemp(prefix="hearth-davfs2-"))  # not under pytest's 0700 tmp: davfs2 runs as davfs2
    try:
        work.chmod(0o755)
        cache = work / "cache"
        cache.mkdir()
        shutil.chown(cache, group="davfs2")
        cache.chmod(0o775)
        mountpoint = work / "mnt"
        mountpoint.mkdir()
        url = f"http://127.0.0.1:{files.port}/files/{user}/"
        secrets = work / "secrets"
        secrets.write_text(f'{url} {user} "{PASSWORDS[user]}"\n')
        secrets.chmod(0o600)
        config = work / "davfs2.conf"  # locks on (the default), no questions, nothing looked up elsewhere
        config.write_text(f"use_locks 1\nask_auth 0\nsecrets {secrets}\ncache_dir {cache}\n")
        env = {"PATH": os.environ["PATH"]}  # no proxy variables: straight to loopback
        mounted = subprocess.run(["mount.davfs", "-o", f"conf={config}", url, str(mountpoint)], env=env,
                                 capture_output=True, text=True, timeout=60)
        assert mounted.returncode == 0, mounted.stderr
        try:
            yield mountpoint
        finally:
            unmounted = subprocess.run(["umount", str(mountpoint)], capture_output=True, text=True, timeout=300)
            if unmounted.returncode != 0:
                subprocess.run(["umount", "-l", str(mountpoint)], timeout=60)
            assert unmounted.returncode == 0, unmounted.stderr
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _editor_save(path: Path, content: bytes) -> None:
    """Save as vim and most editors do: write `.name.swp` beside the file, then rename it over the file."""
    swap = path.with_name(f".{path.name}.swp")
    swap.write_bytes(content)
    os.rename(swap, path)


def test_editor_saves_through_a_davfs2_mount_reach_the_server(files):
    """davfs2 moves the (locked) swap file over the locked file, then PUTs the content with the file's own
    lock token: the destination's lock must survive the MOVE (RFC 4918 §7.5) or the file ends up empty.
    Driven by path, as an editor does (listing a directory through FUSE fails in some sandboxes)."""
    assert files.exchange("PUT", "/files/alice/Docs/existing.txt", b"from the server\n", user="alice")[0] in (201, 204)
    with _davfs2_mount(files, "alice") as mountpoint:
        docs = mountpoint / "Docs"
        fresh = docs / "fresh.txt"
        fresh.write_bytes(b"one\n")
        _editor_save(fresh, b"one\ntwo\n")
        with open(fresh, "ab") as appending:
            appending.write(b"three\n")
        _editor_save(fresh, fresh.read_bytes() + b"four\n")
        existing = docs / "existing.txt"
        _editor_save(existing, existing.read_bytes() + b"edited in the mount\n")
        with open(existing, "ab") as appending:
            appending.write(b"appended\n")
    assert files.exchange("GET", "/files/alice/Docs/fresh.txt", user="alice")[2] == b"one\ntwo\nthree\nfour\n"
    assert files.exchange("GET", "/files/alice/Docs/existing.txt", user="alice")[2] == \
        b"from the server\nedited in the mount\nappended\n"
    for swap in (".fresh.txt.swp", ".existing.txt.swp"):
        assert files.exchange("GET", f"/files/alice/Docs/{swap}", user="alice")[0] == 404


def test_webdav_and_a_running_sync_client_see_each_other(tmp_path):
    """One data dir, two daemons (sync and files), a long-running `hearth sync` client."""
    (tmp_path / "home").mkdir()
    sync = SyncDaemon(tmp_path / "home")
    sync_config = sync.config.read_text()
    with serving(sync, "alice"):
        webdav = FilesDaemon(tmp_path / "home", quota_mb=0)  # same home: same database and blobs
        webdav.config.write_text(sync_config + f'[files]\nlisten = "127.0.0.1:{webdav.port}"\n')
        webdav.start()
        try:
            client = Client(sync, tmp_path / "replica", folder="Docs").start()
            try:
                started = time.monotonic()
                assert webdav.exchange("PUT", "/files/alice/Docs/from-webdav.txt", b"over webdav",
                                       user="alice")[0] == 201
                client.wait_for(lambda: (client.root / "from-webdav.txt").exists(), timeout=2.0,
                                what="the WebDAV file in the sync client's folder")
                print(f"\nWebDAV -> sync client: {time.monotonic() - started:.2f} s")
                (client.root / "from-sync.txt").write_bytes(b"from the sync client")
                client.wait_for(lambda: webdav.exchange("GET", "/files/alice/Docs/from-sync.txt",
                                                        user="alice")[0] == 200,
                                timeout=10, what="the sync client's file over WebDAV")
                assert webdav.exchange("GET", "/files/alice/Docs/from-sync.txt", user="alice")[2] == \
                    b"from the sync client"
            finally:
                client.stop()
        finally:
            webdav.stop()
