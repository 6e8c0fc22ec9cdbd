"""The WebDAV file daemon over raw HTTP: a real `python -m services.files` on loopback, real SQLite."""
from __future__ import annotations

import os
import socket
import sqlite3
import time
from urllib.parse import unquote

import pytest

from tests.daemons import PASSWORDS, LoopbackDaemon, serving

PROPFIND_ALL = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
QUOTA_PROPS = (b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:quota-used-bytes/>'
               b'<D:quota-available-bytes/></D:prop></D:propfind>')
LOCKINFO = (b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
            b'<D:locktype><D:write/></D:locktype><D:owner>tests</D:owner></D:lockinfo>')


class FilesDaemon(LoopbackDaemon):
    module, section = "services.files", "files"

    def __init__(self, home, extra: str = "", quota_mb: int = 1):
        super().__init__(home, extra)
        with open(self.config, "a") as config:
            config.write(f"[sync]\nquota_mb = {quota_mb}\n")  # the one per-user quota, shared with sync

    def healthy(self) -> bool:
        return self.exchange("GET", "/healthz")[0] == 200

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.home / "var" / "db" / "hearth.sqlite3")


def share_with_alice(daemon) -> None:
    """bob shares his folder Shared with alice read-only and Open read-write (as `hearth share` would)."""
    with daemon.db() as db:
        ids = dict(db.execute("SELECT name, id FROM folders WHERE owner = 'bob'").fetchall())
        db.execute("INSERT INTO folder_shares VALUES (?, 'alice', 'ro')", [ids["Shared"]])
        db.execute("INSERT INTO folder_shares VALUES (?, 'alice', 'rw')", [ids["Open"]])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    with serving(FilesDaemon(tmp_path_factory.mktemp("files")), "alice", "bob") as daemon:
        assert daemon.exchange("MKCOL", "/files/alice/Docs/", user="alice")[0] == 201
        assert daemon.exchange("MKCOL", "/files/bob/Shared/", user="bob")[0] == 201
        assert daemon.exchange("MKCOL", "/files/bob/Open/", user="bob")[0] == 201
        share_with_alice(daemon)
        yield daemon
    assert "unhandled error" not in daemon.log()


def test_options_says_class_1_and_2(files):
    status, headers, _ = files.exchange("OPTIONS", "/files/alice/Docs/", user="alice")
    assert status == 200 and headers["dav"] == "1, 2" and "LOCK" in headers["allow"]


def test_put_get_range_and_conditions(files):
    data = os.urandom(3 * 1024 * 1024 // 10)
    status, headers, _ = files.exchange("PUT", "/files/alice/Docs/a.bin", data, user="alice")
    assert status == 201
    etag = headers["etag"]
    status, headers, body = files.exchange("GET", "/files/alice/Docs/a.bin", user="alice")
    assert (status, body, headers["etag"]) == (200, data, etag)
    status, headers, body = files.exchange("GET", "/files/alice/Docs/a.bin", user="alice",
                                           headers={"Range": "bytes=10-19"})
    assert (status, body, headers["content-range"]) == (206, data[10:20], f"bytes 10-19/{len(data)}")
    assert files.exchange("GET", "/files/alice/Docs/a.bin", user="alice",
                          headers={"Range": "bytes=-5"})[2] == data[-5:]
    assert files.exchange("GET", "/files/alice/Docs/a.bin", user="alice",
                          headers={"Range": f"bytes={len(data)}-"})[0] == 416
    assert files.exchange("GET", "/files/alice/Docs/a.bin", user="alice", headers={"If-None-Match": etag})[0] == 304
    assert files.exchange("PUT", "/files/alice/Docs/a.bin", b"x", user="alice", headers={"If-Match": '"999999"'})[0] == 412
    assert files.exchange("PUT", "/files/alice/Docs/a.bin", b"x", user="alice", headers={"If-None-Match": "*"})[0] == 412
    status, headers, _ = files.exchange("PUT", "/files/alice/Docs/a.bin", b"new", user="alice",
                                        headers={"If-Match": etag})
    assert status == 204 and headers["etag"] != etag
    assert files.exchange("GET", "/files/alice/Docs/a.bin", user="alice")[2] == b"new"


def test_propfind_depths_and_properties(files):
    files.exchange("PUT", "/files/alice/Docs/notes.txt", b"hello", user="alice")
    status, _, body = files.exchange("PROPFIND", "/files/alice/Docs/", PROPFIND_ALL, user="alice",
                                     headers={"Depth": "1"})
    assert status == 207
    assert b"<d:href>/files/alice/Docs/notes.txt</d:href>" in body
    assert b"<d:getcontentlength>5</d:getcontentlength>" in body and b"text/plain" in body
    status, _, body = files.exchange("PROPFIND", "/files/alice/Docs/", PROPFIND_ALL, user="alice",
                                     headers={"Depth": "infinity"})
    assert status == 403 and b"propfind-finite-depth" in body
    status, _, body = files.exchange("PROPFIND", "/files/alice/", QUOTA_PROPS, user="alice", headers={"Depth": "0"})
    assert status == 207 and b"quota-used-bytes>" in body and b"quota-available-bytes>" in body


@pytest.mark.parametrize("name, content_type, attachment", [
    ("page.html", "text/html", True), ("drawing.svg", "image/svg+xml", True), ("feed.rss", "application/x-rss+xml", True),
    ("code.js", "text/plain", False), ("photo.jpg", "image/jpeg", False), ("notes.txt", "text/plain", False)])
def test_user_content_is_sandboxed_and_active_types_are_attachments(files, name, content_type, attachment):
    """However a browser reaches a file (core.user_content), its bytes never run as this origin."""
    files.exchange("PUT", f"/files/alice/Docs/{name}", b"<script>parent.stolen = document.cookie</script>",
                   user="alice")
    for method in ("GET", "HEAD"):
        status, headers, _ = files.exchange(method, f"/files/alice/Docs/{name}", user="alice")
        assert status == 200 and headers["content-type"] == content_type
        assert (headers["content-security-policy"], headers["x-content-type-options"]) == ("sandbox", "nosniff")
        assert headers.get("content-disposition", "").startswith("attachment;") == attachment
    _, headers, _ = files.exchange("GET", "/files/alice/Docs/", user="alice")  # the listing, names escaped
    assert headers["content-security-policy"] == "sandbox"


def test_shared_folders_appear_with_their_owner_and_ro_refuses_writes(files):
    _, _, body = files.exchange("PROPFIND", "/files/alice/", PROPFIND_ALL, user="alice", headers={"Depth": "1"})
    assert b"/files/alice/Shared%20%28bob%29/" in body and b"/files/alice/Open%20%28bob%29/" in body
    assert files.exchange("PUT", "/files/alice/Shared%20(bob)/x.txt", b"no", user="alice")[0] == 403
    assert files.exchange("MKCOL", "/files/alice/Shared%20(bob)/d/", user="alice")[0] == 403
    assert files.exchange("PUT", "/files/alice/Open%20(bob)/x.txt", b"yes", user="alice")[0] == 201
    assert files.exchange("GET", "/files/bob/Open/x.txt", user="bob")[2] == b"yes"
    assert files.exchange("GET", "/files/bob/Open/x.txt", user="alice")[0] == 403  # not through bob's tree


def test_locked_resource_needs_its_token(files):
    files.exchange("PUT", "/files/alice/Docs/locked.txt", b"v1", user="alice")
    status, headers, _ = files.exchange("LOCK", "/files/alice/Docs/locked.txt", LOCKINFO, user="alice",
                                        headers={"Timeout": "Second-60"})
    assert status == 200
    token = headers["lock-token"]
    status, _, body = files.exchange("PUT", "/files/alice/Docs/locked.txt", b"v2", user="alice")
    assert status == 423 and b"lock-token-submitted" in body
    assert files.exchange("DELETE", "/files/alice/Docs/locked.txt", user="alice")[0] == 423
    assert files.exchange("PUT", "/files/alice/Docs/locked.txt", b"v2", user="alice",
                          headers={"If": f"({token})"})[0] == 204
    assert files.exchange("UNLOCK", "/files/alice/Docs/locked.txt", user="alice", headers={"Lock-Token": token})[0] == 204
    assert files.exchange("PUT", "/files/alice/Docs/locked.txt", b"v3", user="alice")[0] == 204


def test_quota_exceeded_stores_nothing(files):
    big = os.urandom(2 * 1024 * 1024)
    status, _, _ = files.exchange("PUT", "/files/alice/Docs/big.bin", big, user="alice")
    assert status == 507
    assert files.exchange("GET", "/files/alice/Docs/big.bin", user="alice")[0] == 404
    with files.db() as db:
        assert db.execute("SELECT COUNT(*) FROM entries WHERE path = 'big.bin'").fetchone()[0] == 0


@pytest.mark.parametrize("path", ["/files/alice/Docs/../../bob/Open/x.txt", "/files/alice/Docs/%2e%2e/x",
                                  "/files/alice/Docs/a%2Fb", "/files/alice/Docs/a%5Cb", "/files/alice/Docs/a%00"])
def test_path_tricks_are_refused(files, path):
    status, _, _ = files.exchange("PUT", path, b"x", user="alice")
    assert status in (400, 404), status
    with files.db() as db:
        assert db.execute("SELECT COUNT(*) FROM entries WHERE path LIKE '%x' AND path != 'x.txt'").fetchone()[0] == 0


REFUSED_NAMES = {"tab": "a%09b.txt", "cr": "a%0Db.txt", "del": "a%7Fb.txt", "c1": "a%C2%85b.txt",
                 "rlo": "invoice%E2%80%AEtxt.exe", "isolate": "a%E2%81%A6b.txt", "256 bytes": "x" * 256}


@pytest.mark.parametrize("name", REFUSED_NAMES.values(), ids=REFUSED_NAMES.keys())
def test_names_with_control_or_bidi_characters_or_over_255_bytes_are_refused(files, name):
    """Each way of making a name answers 400 with the reason, and nothing is stored."""
    url = "/files/alice/Docs/" + name
    files.exchange("PUT", "/files/alice/Docs/plain.txt", b"plain", user="alice")
    for method, headers in [("PUT", {}), ("MKCOL", {}), ("LOCK", {"Timeout": "Second-60"})]:
        status, _, body = files.exchange(method, url, LOCKINFO if method == "LOCK" else b"", user="alice",
                                         headers=headers)
        assert status == 400 and b"choose another name" in body, (method, status, body)
    for method in ("MOVE", "COPY"):
        status, _, body = files.exchange(method, "/files/alice/Docs/plain.txt", user="alice",
                                         headers={"Destination": url})
        assert status == 400 and b"choose another name" in body, (method, status, body)
    status, _, body = files.exchange("MKCOL", "/files/alice/" + name + "/", user="alice")  # a new folder
    assert status == 400 and b"invalid folder name" in body
    with files.db() as db:
        assert db.execute("SELECT COUNT(*) FROM entries WHERE path = ?", [unquote(name)]).fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM folders WHERE name = ?", [unquote(name)]).fetchone()[0] == 0
    assert files.exchange("PUT", "/files/alice/Docs/" + "y" * 255, b"at the limit", user="alice")[0] in (201, 204)


def test_interrupted_upload_leaves_nothing(files):
    with socket.create_connection(("127.0.0.1", files.port)) as raw:
        token = __import__("base64").b64encode(f"alice:{PASSWORDS['alice']}".encode()).decode()
        raw.sendall(b"PUT /files/alice/Docs/cut.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n"
                    b"Authorization: Basic " + token.encode() + b"\r\n\r\n" + b"y" * 100000)
        time.sleep(0.3)
    time.sleep(0.5)
    assert files.exchange("GET", "/files/alice/Docs/cut.bin", user="alice")[0] == 404


def test_mkcol_delete_copy_move(files):
    assert files.exchange("MKCOL", "/files/alice/Docs/dir/", user="alice")[0] == 201
    assert files.exchange("MKCOL", "/files/alice/Docs/dir/", user="alice")[0] == 405
    assert files.exchange("MKCOL", "/files/alice/Docs/no/such/", user="alice")[0] == 409
    assert files.exchange("PUT", "/files/alice/Docs/no/such.txt", b"x", user="alice")[0] == 409
    files.exchange("PUT", "/files/alice/Docs/dir/f.txt", b"content", user="alice")
    dest = {"Destination": "http://elsewhere/files/alice/Docs/copy/"}
    assert files.exchange("COPY", "/files/alice/Docs/dir/", user="alice", headers=dest)[0] == 201
    assert files.exchange("GET", "/files/alice/Docs/copy/f.txt", user="alice")[2] == b"content"
    assert files.exchange("COPY", "/files/alice/Docs/dir/", user="alice",
                          headers={**dest, "Overwrite": "F"})[0] == 412
    moved = {"Destination": "/files/alice/Docs/moved/"}
    assert files.exchange("MOVE", "/files/alice/Docs/dir/", user="alice", headers=moved)[0] == 201
    assert files.exchange("GET", "/files/alice/Docs/dir/f.txt", user="alice")[0] == 404
    assert files.exchange("GET", "/files/alice/Docs/moved/f.txt", user="alice")[2] == b"content"
    assert files.exchange("DELETE", "/files/alice/Docs/moved/", user="alice")[0] == 204
    with files.db() as db:  # through the journal: the file is in the trash, not gone
        assert db.execute("SELECT deleted FROM entries WHERE path = 'moved/f.txt'").fetchone()[0] == 1


def test_dead_properties_are_kept(files):
    files.exchange("PUT", "/files/alice/Docs/p.txt", b"p", user="alice")
    body = (b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop>'
            b'<Z:colour>blue</Z:colour></D:prop></D:set></D:propertyupdate>')
    assert files.exchange("PROPPATCH", "/files/alice/Docs/p.txt", body, user="alice")[0] == 207
    ask = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:z"><D:prop><Z:colour/></D:prop></D:propfind>'
    _, _, found = files.exchange("PROPFIND", "/files/alice/Docs/p.txt", ask, user="alice", headers={"Depth": "0"})
    assert b">blue</" in found


def test_move_over_a_locked_destination_keeps_its_lock_for_the_save_that_follows(files):
    """davfs2's editor save, as its access log shows it: `.name.swp` (locked, still empty) is moved over
    the locked `name` with both tokens, then `name`'s lock is refreshed and the content PUT and UNLOCKed
    with name's token. The lock belongs to the URL and stays (RFC 4918 §7.5), so the content arrives."""
    base = "/files/alice/Docs/"
    url = f"http://127.0.0.1:{files.port}{base}"
    assert files.exchange("PUT", base + "saved.txt", b"old\n", user="alice")[0] == 201
    tokens = {}
    for name in ("saved.txt", ".saved.txt.swp"):
        status, headers, _ = files.exchange("LOCK", base + name, LOCKINFO, user="alice",
                                            headers={"Timeout": "Second-600"})
        assert status in (200, 201)
        tokens[name] = headers["lock-token"]
    assert files.exchange("MOVE", base + ".saved.txt.swp", user="alice",
                          headers={"Destination": url + "saved.txt", "Overwrite": "T"})[0] == 423
    both = f"<{url}saved.txt> ({tokens['saved.txt']}) <{url}.saved.txt.swp> ({tokens['.saved.txt.swp']})"
    assert files.exchange("MOVE", base + ".saved.txt.swp", user="alice",
                          headers={"Destination": url + "saved.txt", "Overwrite": "T", "If": both})[0] == 204
    assert files.exchange("PUT", base + "saved.txt", b"someone else\n", user="alice")[0] == 423
    own = {"If": f"({tokens['saved.txt']})"}
    assert files.exchange("LOCK", base + "saved.txt", user="alice", headers={**own, "Timeout": "Second-600"})[0] == 200
    assert files.exchange("PUT", base + "saved.txt", b"old\nnew line\n", user="alice",
                          headers={"If": f"<{url}saved.txt> ({tokens['saved.txt']})"})[0] == 204
    assert files.exchange("UNLOCK", base + "saved.txt", user="alice",
                          headers={"Lock-Token": tokens["saved.txt"]})[0] == 204
    assert files.exchange("GET", base + "saved.txt", user="alice")[2] == b"old\nnew line\n"
    # The source's lock ended with the source: its name is free for the next save.
    assert files.exchange("PUT", base + ".saved.txt.swp", b"next", user="alice")[0] == 201


LASTMODIFIED = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getlastmodified/></D:prop></D:propfind>'


def _journal_mtime_ns(files, path: str) -> int:
    """The time the journal holds, which sync clients give their copies."""
    with files.db() as db:
        return db.execute("SELECT mtime_ns FROM entries WHERE path = ? AND deleted = 0", [path]).fetchone()[0]


def test_put_keeps_the_time_the_client_sends_in_x_oc_mtime(files):
    status, headers, _ = files.exchange("PUT", "/files/alice/Docs/dated.txt", b"from 2000", user="alice",
                                        headers={"X-OC-Mtime": "946684800"})
    assert status == 201 and headers["x-oc-mtime"] == "accepted"
    _, _, body = files.exchange("PROPFIND", "/files/alice/Docs/dated.txt", LASTMODIFIED, user="alice",
                                headers={"Depth": "0"})
    assert b"<d:getlastmodified>Sat, 01 Jan 2000 00:00:00 GMT</d:getlastmodified>" in body
    assert files.exchange("GET", "/files/alice/Docs/dated.txt", user="alice")[1]["last-modified"] == \
        "Sat, 01 Jan 2000 00:00:00 GMT"
    assert _journal_mtime_ns(files, "dated.txt") == 946684800 * 10**9
    files.exchange("PUT", "/files/alice/Docs/dated.txt", b"fraction", user="alice",
                   headers={"X-OC-Mtime": "1700000000.25"})
    assert _journal_mtime_ns(files, "dated.txt") == 1700000000_250000000
    status, headers, _ = files.exchange("PUT", "/files/alice/Docs/dated.txt", b"now", user="alice")
    assert status == 204 and "x-oc-mtime" not in headers and _journal_mtime_ns(files, "dated.txt") > 1700000001 * 10**9


@pytest.mark.parametrize("value", ["yesterday", "-5", "0", "1e9", "nan", "0x10", "99999999999", ""])
def test_nonsense_x_oc_mtime_is_refused_and_stores_nothing(files, value):
    status, _, body = files.exchange("PUT", "/files/alice/Docs/undated.txt", b"x", user="alice",
                                     headers={"X-OC-Mtime": value})
    assert status == 400 and b"X-OC-Mtime" in body
    assert files.exchange("GET", "/files/alice/Docs/undated.txt", user="alice")[0] == 404


def _proppatch(files, path: str, props: str, action: str = "set") -> bytes:
    body = (f'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:W="urn:schemas-microsoft-com:"'
            f' xmlns:Z="urn:z"><D:{action}><D:prop>{props}</D:prop></D:{action}></D:propertyupdate>')
    status, _, answer = files.exchange("PROPPATCH", path, body, user="alice")
    assert status == 207, answer
    return answer


def test_proppatch_of_getlastmodified_sets_the_files_time(files):
    path = "/files/alice/Docs/touched.txt"
    files.exchange("PUT", path, b"same content", user="alice")
    answer = _proppatch(files, path, "<D:getlastmodified>Mon, 02 Jan 2006 15:04:05 GMT</D:getlastmodified>")
    assert b"200 OK" in answer and b"403" not in answer
    _, _, body = files.exchange("PROPFIND", path, LASTMODIFIED, user="alice", headers={"Depth": "0"})
    assert b"Mon, 02 Jan 2006 15:04:05 GMT" in body
    assert _journal_mtime_ns(files, "touched.txt") == 1136214245 * 10**9
    assert files.exchange("GET", path, user="alice")[2] == b"same content"
    _proppatch(files, path, "<W:Win32LastModifiedTime>Tue, 03 Jan 2006 00:00:00 GMT</W:Win32LastModifiedTime>")
    assert _journal_mtime_ns(files, "touched.txt") == 1136246400 * 10**9

    answer = _proppatch(files, path, "<D:getlastmodified>not a date</D:getlastmodified><Z:colour>red</Z:colour>")
    assert b"409 Conflict" in answer and b"424 Failed Dependency" in answer and b"200 OK" not in answer
    answer = _proppatch(files, path, "<D:getlastmodified/>", action="remove")
    assert b"403 Forbidden" in answer
    answer = _proppatch(files, path, "<D:getetag>\"1\"</D:getetag>")
    assert b"403 Forbidden" in answer
    assert _journal_mtime_ns(files, "touched.txt") == 1136246400 * 10**9  # nothing changed by the refusals
