"""The file tree as the Nextcloud apps reach it: /remote.php/dav/files/USER/ and /remote.php/webdav/ on a
real files daemon (loopback, real SQLite), the same tree as /files/USER/ and the sync API."""
from __future__ import annotations

import hashlib
import re
import zlib

import pytest

from tests.daemons import serving
from tests.test_files_webdav import FilesDaemon
from tests.test_sync_server import SyncDaemon

DAV = "/remote.php/dav/files/alice"
WEBDAV = "/remote.php/webdav"
PROPFIND_NC = (b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/><d:getetag/>'
               b'<d:getcontentlength/></d:prop></d:propfind>')


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    with serving(FilesDaemon(tmp_path_factory.mktemp("files"), quota_mb=64), "alice", "bob") as daemon:
        assert daemon.exchange("MKCOL", f"{DAV}/Docs/", user="alice")[0] == 201
        yield daemon
    assert "unhandled error" not in daemon.log()


@pytest.fixture(scope="module")
def sync(files, tmp_path_factory):
    """The sync daemon on the files daemon's data: the one journal both serve."""
    daemon = SyncDaemon(tmp_path_factory.mktemp("sync"))
    daemon.config.write_text(daemon.config.read_text().replace('data_dir = "var"',
                                                               f'data_dir = "{files.home / "var"}"'))
    with serving(daemon) as running:
        yield running


def hrefs(body: bytes) -> list[str]:
    return re.findall(r"<D:href>([^<]*)</D:href>", body.decode())


def propfind(files, path: str, depth: str = "1") -> list[str]:
    status, headers, body = files.exchange("PROPFIND", path, PROPFIND_NC, user="alice", headers={"Depth": depth})
    assert status == 207, body
    return hrefs(body)


def test_both_nextcloud_prefixes_serve_the_tree_with_hrefs_in_the_prefix_asked_with(files):
    assert files.exchange("PUT", f"{DAV}/Docs/a%20b.txt", b"one", user="alice")[0] == 201
    assert files.exchange("GET", "/files/alice/Docs/a%20b.txt", user="alice")[2] == b"one"
    assert files.exchange("GET", f"{WEBDAV}/Docs/a%20b.txt", user="alice")[2] == b"one"
    assert propfind(files, f"{DAV}/Docs/") == [f"{DAV}/Docs/", f"{DAV}/Docs/a%20b.txt"]
    assert propfind(files, f"{WEBDAV}/Docs/") == [f"{WEBDAV}/Docs/", f"{WEBDAV}/Docs/a%20b.txt"]
    assert propfind(files, f"{WEBDAV}/", "0") == [f"{WEBDAV}/"]
    assert propfind(files, f"{DAV}//")[:2] == [f"{DAV}/", f"{DAV}/Docs/"]  # the desktop's double slash
    # MOVE and COPY: Destination as a bare path (desktop) or a full URL (Android, iOS), under either prefix
    assert files.exchange("MOVE", f"{DAV}/Docs/a%20b.txt", user="alice",
                          headers={"Destination": f"{DAV}/Docs/b.txt"})[0] == 201
    assert files.exchange("COPY", f"{WEBDAV}/Docs/b.txt", user="alice",
                          headers={"Destination": f"http://phone.example{DAV}/Docs/c.txt"})[0] == 201
    assert files.exchange("MOVE", f"{DAV}/Docs/c.txt", user="alice",
                          headers={"Destination": f"https://x.example{WEBDAV}/Docs/d.txt"})[0] == 201
    assert propfind(files, f"{DAV}/Docs/")[1:] == [f"{DAV}/Docs/b.txt", f"{DAV}/Docs/d.txt"]
    assert files.exchange("DELETE", f"{WEBDAV}/Docs/d.txt", user="alice")[0] == 204
    assert files.exchange("GET", "/files/alice/Docs/d.txt", user="alice")[0] == 404
    assert files.exchange("PROPFIND", "/remote.php/dav/files/bob/", PROPFIND_NC, user="alice",
                          headers={"Depth": "0"})[0] == 403


def test_a_file_put_at_the_root_is_stored_listed_and_synced(files, sync):
    status, headers, _ = files.exchange("PUT", f"{DAV}/photo.jpg", b"jpeg bytes", user="alice",
                                        headers={"X-OC-Mtime": "1700000000"})
    assert status == 201 and headers["x-oc-mtime"] == "accepted"
    assert files.exchange("GET", "/files/alice/photo.jpg", user="alice")[2] == b"jpeg bytes"
    listed = propfind(files, "/files/alice/")
    assert "/files/alice/photo.jpg" in listed and "/files/alice/Docs/" in listed
    assert not any("Root" in href for href in listed)  # its folder is not listed, its members are
    assert f"{WEBDAV}/photo.jpg" in propfind(files, f"{WEBDAV}/")
    # The same file, as `hearth sync` sees it: in the user's folder "Root files"
    status, folders = sync.request("GET", "/sync/v1/folders", user="alice")
    root_files = next(f for f in folders if f["name"] == "Root files")
    status, changes = sync.request("GET", f"/sync/v1/folders/{root_files['id']}/changes?since=0", user="alice")
    assert status == 200 and [c["path"] for c in changes["changes"]] == ["photo.jpg"]
    # A folder keeps its own name: a PUT onto it is refused, and MKCOL at the root still makes folders
    assert files.exchange("PUT", f"{DAV}/Docs", b"x", user="alice")[0] == 405
    assert files.exchange("MKCOL", f"{DAV}/photo.jpg", user="alice")[0] == 405
    assert files.exchange("MKCOL", f"{WEBDAV}/Camera/", user="alice")[0] == 201
    # Root-level files move like any other
    assert files.exchange("MOVE", f"{DAV}/photo.jpg", user="alice",
                          headers={"Destination": f"{DAV}/Camera/photo.jpg"})[0] == 201
    assert files.exchange("MOVE", f"{DAV}/Camera/photo.jpg", user="alice",
                          headers={"Destination": f"{DAV}/renamed.jpg"})[0] == 201
    assert files.exchange("GET", "/files/alice/renamed.jpg", user="alice")[2] == b"jpeg bytes"
    assert files.exchange("DELETE", "/files/alice/renamed.jpg", user="alice")[0] == 204
    assert "/files/alice/renamed.jpg" not in propfind(files, "/files/alice/")


@pytest.mark.parametrize("kind, digest", [
    ("SHA1", lambda b: hashlib.sha1(b).hexdigest()), ("MD5", lambda b: hashlib.md5(b).hexdigest()),
    ("Adler32", lambda b: f"{zlib.adler32(b):08x}")])
def test_oc_checksum_is_verified_and_the_answer_names_etag_and_file_id(files, kind, digest):
    data = b"checked content " * 1000
    path = f"{DAV}/Docs/sum-{kind}.bin"
    status, _, body = files.exchange("PUT", path, data, user="alice",
                                     headers={"OC-Checksum": f"{kind}:{digest(b'other bytes')}"})
    assert status == 400 and b"OC-Checksum" in body
    assert files.exchange("GET", path, user="alice")[0] == 404
    status, headers, _ = files.exchange("PUT", path, data, user="alice",
                                        headers={"OC-Checksum": f"{kind}:{digest(data)}"})
    assert status == 201 and headers["etag"] == headers["oc-etag"] and headers["oc-fileid"]
    assert files.exchange("GET", path, user="alice")[1]["etag"] == headers["etag"]


def test_a_stale_if_match_is_412_and_overwrites_nothing(files):
    path = f"{DAV}/Docs/edited.txt"
    old = files.exchange("PUT", path, b"first", user="alice")[1]["etag"]
    assert files.exchange("PUT", path, b"second", user="alice", headers={"If-Match": old})[0] == 204
    assert files.exchange("PUT", path, b"stale edit", user="alice", headers={"If-Match": old})[0] == 412
    assert files.exchange("GET", path, user="alice")[2] == b"second"
