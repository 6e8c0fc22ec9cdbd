"""Public share links (/s/<token>) over real HTTP against the files daemon as its own process:
passwords, expiry, modes, revocation, the download counter, path confinement, pages that name nobody."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from http.cookies import SimpleCookie

import pytest
from urllib3 import encode_multipart_formdata

from services.core.db import migrate, open_db, write
from services.core.schema import MIGRATION_SETS
from services.core.tree import BlobStore, chunk_stream, commit_file, create_folder, mkdir
from tests.daemons import LoopbackDaemon, serving

OWNER = b"alice"
FAILURES_ALLOWED, FAILURE_WINDOW = 3, 2
BIG = os.urandom(3 * 1024 * 1024 + 12345)  # several content-defined chunks


class LinksDaemon(LoopbackDaemon):
    module, section = "services.files", "files"

    def __init__(self, home):
        super().__init__(home)
        with open(self.config, "a") as config:
            config.write(f"[auth]\nmax_failures = {FAILURES_ALLOWED}\nfailure_window = {FAILURE_WINDOW}\n")
        self.db_path = home / "var" / "db" / "hearth.sqlite3"

    def healthy(self) -> bool:
        return self.exchange("GET", "/healthz")[0] == 200

    def db(self):
        migrate(self.db_path, MIGRATION_SETS)
        return open_db(self.db_path)

    def public(self, method: str, path: str, body=None, headers=None) -> tuple[int, dict, bytes]:
        """A request as an anonymous visitor; every public answer must keep the owner's name to itself."""
        status, headers, data = self.exchange(method, path, body, headers=headers)
        assert OWNER not in data.lower(), (path, data[:500])
        assert "alice" not in json.dumps(headers).lower(), headers
        return status, headers, data

    def link(self, folder: int, path: str = "", **options) -> dict:
        status, _, data = self.exchange("POST", "/files/api/v1/links", json.dumps(
            {"folder": folder, "path": path, **options}), user="alice", headers={"Content-Type": "application/json"})
        assert status == 201, data
        return json.loads(data)

    def upload(self, url: str, files: dict[str, bytes], cookie: str | None = None) -> tuple[int, dict, bytes]:
        body, content_type = encode_multipart_formdata(
            [("note", "hello")] + [("file", (name, data)) for name, data in files.items()])
        headers = {"Content-Type": content_type, **({"Cookie": cookie} if cookie else {})}
        return self.public("POST", url, body, headers)

    def content(self, folder: int, path: str) -> bytes | None:
        with self.db() as db:
            row = db.execute("SELECT chunks FROM entries WHERE folder_id = ? AND path = ? AND deleted = 0",
                             [folder, path]).fetchone()
        return None if row is None else b"".join(self.store.get(cid) for cid, _ in json.loads(row[0]))

    def paths(self, folder: int) -> set[str]:
        with self.db() as db:
            return {r[0] for r in db.execute("SELECT path FROM entries WHERE folder_id = ? AND deleted = 0",
                                             [folder])}


def put_file(db, store: BlobStore, folder: int, path: str, data: bytes) -> None:
    chunks = []
    for chunk in chunk_stream(io.BytesIO(data)):
        store.put(chunk.id, chunk.data)
        chunks.append((chunk.id, chunk.length))
    write(db, lambda db: commit_file(db, folder, path, None, chunks, len(data), 0, False, "test", store=store))


@pytest.fixture(scope="module")
def links(tmp_path_factory):
    daemon = LinksDaemon(tmp_path_factory.mktemp("links"))
    with serving(daemon, "alice", "bob"):
        yield daemon
    assert "unhandled error" not in daemon.log()
    assert "Traceback" not in daemon.log(), daemon.log()


@pytest.fixture(scope="module")
def tree(links):
    """alice's folder 'docs': a/secret.txt above the shared a/b, a/b/inside.txt, a/b/sub/deep.txt, big.bin,
    and bob's folder 'bobs'."""
    with links.db() as db:
        docs = write(db, lambda db: create_folder(db, "alice", "docs")).id
        bobs = write(db, lambda db: create_folder(db, "bob", "bobs")).id
        for path in ("a", "a/b", "a/b/sub"):
            write(db, lambda db: mkdir(db, docs, path, "test"))
        for path, data in {"a/secret.txt": b"TOP SECRET above the share", "a/b/inside.txt": b"inside the share",
                           "a/b/sub/deep.txt": b"deep inside", "report.txt": b"0123456789abcdefghij",
                           "<img src=x onerror=alert(1)> & \"quoted\".txt": b"escaped"}.items():
            put_file(db, links.store, docs, path, data)
        put_file(db, links.store, docs, "big.bin", BIG)
    return {"docs": docs, "bobs": bobs}


def test_file_link_page_download_range_and_counter(links, tree):
    link = links.link(tree["docs"], "report.txt", label="For the accountant")
    status, headers, page = links.public("GET", link["url"])
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"report.txt" in page and b"20 bytes" in page and b"For the accountant" in page
    assert f'href="{link["url"]}/download"'.encode() in page
    assert headers["referrer-policy"] == "no-referrer" and "default-src 'none'" in headers["content-security-policy"]

    status, headers, data = links.public("GET", link["url"] + "/download")
    assert status == 200 and data == b"0123456789abcdefghij"
    assert headers["content-disposition"] == "attachment; filename=\"report.txt\"; filename*=UTF-8''report.txt"
    assert headers["accept-ranges"] == "bytes"
    assert (headers["content-security-policy"], headers["x-content-type-options"]) == ("sandbox", "nosniff")
    status, headers, data = links.public("GET", link["url"] + "/download", headers={"Range": "bytes=5-9"})
    assert (status, data, headers["content-range"]) == (206, b"56789", "bytes 5-9/20")
    status, _, data = links.public("GET", link["url"] + "/download", headers={"Range": "bytes=-3"})
    assert (status, data) == (206, b"hij")
    status, headers, _ = links.public("GET", link["url"] + "/download", headers={"Range": "bytes=20-"})
    assert status == 416 and headers["content-range"] == "bytes */20"
    status, _, _ = links.public("GET", link["url"] + "/download",
                                headers={"If-None-Match": headers.get("etag", "") or links.public(
                                    "GET", link["url"] + "/download")[1]["etag"]})
    assert status == 304

    # Counted: the full download and the second full one fetched for its ETag; not the later ranges.
    listed = {item["id"]: item for item in json.loads(links.exchange("GET", "/files/api/v1/links", user="alice")[2])}
    assert listed[link["id"]]["downloads"] == 2
    # A file link has no folder pages.
    assert links.public("GET", link["url"] + "/browse/x")[0] == 404
    assert links.public("GET", link["url"] + "/download/report.txt")[0] == 404


def test_big_file_comes_back_whole_and_in_ranges_across_chunks(links, tree):
    link = links.link(tree["docs"], "big.bin")
    status, _, data = links.public("GET", link["url"] + "/download")
    assert status == 200 and data == BIG
    start, end = 1024 * 1024 - 100, 2 * 1024 * 1024 + 100  # spans at least one chunk boundary
    status, _, data = links.public("GET", link["url"] + "/download", headers={"Range": f"bytes={start}-{end}"})
    assert status == 206 and data == BIG[start:end + 1]


def test_names_are_escaped_in_pages(links, tree):
    link = links.link(tree["docs"])
    status, _, page = links.public("GET", link["url"])
    assert status == 200 and b"report.txt" in page
    assert b"<img" not in page and b"&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quoted&quot;.txt" in page
    encoded = "%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%20%26%20%22quoted%22.txt"
    assert f'href="{link["url"]}/download/{encoded}"'.encode() in page
    status, headers, data = links.public("GET", f'{link["url"]}/download/{encoded}')
    assert (status, data) == (200, b"escaped")
    assert f"filename*=UTF-8''{encoded}" in headers["content-disposition"]


def test_password_is_required_and_remembered_for_that_link_only(links, tree):
    link = links.link(tree["docs"], "report.txt", password="open sesame")
    other = links.link(tree["docs"], "big.bin", password="another one")
    status, _, page = links.public("GET", link["url"])
    assert status == 403 and b'type="password"' in page and b"report.txt" not in page
    status, _, data = links.public("GET", link["url"] + "/download")
    assert status == 403 and b"0123456789" not in data

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, headers, page = links.public("POST", link["url"] + "/unlock", "password=wrong+guess", form)
    assert status == 403 and b"not right" in page and "set-cookie" not in headers
    status, headers, _ = links.public("POST", link["url"] + "/unlock", "password=open+sesame", form)
    assert status == 303 and headers["location"] == link["url"]
    cookie = SimpleCookie(headers["set-cookie"])["hearth_link"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == link["url"]
    jar = {"Cookie": f"hearth_link={cookie.value}"}
    status, _, data = links.public("GET", link["url"] + "/download", headers=jar)
    assert (status, data) == (200, b"0123456789abcdefghij")
    assert links.public("GET", other["url"] + "/download", headers=jar)[0] == 403  # not a key to other links
    forged = {"Cookie": f"hearth_link={cookie.value.split('.')[0]}.{'0' * 64}"}
    assert links.public("GET", link["url"] + "/download", headers=forged)[0] == 403


def test_wrong_passwords_are_rate_limited_per_address(links, tree):
    link = links.link(tree["docs"], "report.txt", password="right password")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    time.sleep(FAILURE_WINDOW)  # failures of other tests age out
    statuses = [links.public("POST", link["url"] + "/unlock", "password=guess", form)[0]
                for _ in range(FAILURES_ALLOWED + 1)]
    assert statuses == [403] * FAILURES_ALLOWED + [429]
    status, headers, _ = links.public("POST", link["url"] + "/unlock", "password=right+password", form)
    assert status == 429 and 1 <= int(headers["retry-after"]) <= FAILURE_WINDOW  # even the right one waits
    time.sleep(FAILURE_WINDOW + 0.2)
    assert links.public("POST", link["url"] + "/unlock", "password=right+password", form)[0] == 303


def test_expired_link_is_gone(links, tree):
    link = links.link(tree["docs"], "a/b", expires="1d", mode="read-write")
    assert links.public("GET", link["url"])[0] == 200
    with links.db() as db:
        write(db, lambda db: db.execute("UPDATE share_links SET expires_at = '2001-01-01T00:00:00Z' WHERE id = ?",
                                        [link["id"]]))
    before = links.paths(tree["docs"])
    for method, path in (("GET", ""), ("GET", "/download/inside.txt"), ("GET", "/browse/sub")):
        status, headers, page = links.public(method, link["url"] + path)
        assert status == 410 and headers["content-type"].startswith("text/html") and b"expired" in page
        assert b"inside" not in page
    assert links.upload(link["url"] + "/upload", {"late.txt": b"too late"})[0] == 410
    assert links.paths(tree["docs"]) == before
    listed = json.loads(links.exchange("GET", "/files/api/v1/links", user="alice")[2])
    assert [item["expired"] for item in listed if item["id"] == link["id"]] == [True]


def test_upload_only_accepts_files_and_shows_nothing(links, tree):
    link = links.link(tree["docs"], "a/b", mode="upload-only")
    status, _, page = links.public("GET", link["url"])
    assert status == 200 and b'type="file"' in page
    assert b"inside.txt" not in page and b"sub" not in page.replace(b"submit", b"")
    status, _, page = links.upload(link["url"] + "/upload", {"photo.jpg": b"first photo", "inside.txt": b"dropped"})
    assert status == 201 and b"photo.jpg" in page and b"inside.txt" in page
    assert b"inside (2).txt" not in page  # the clash is not revealed to the visitor
    assert links.content(tree["docs"], "a/b/photo.jpg") == b"first photo"
    assert links.content(tree["docs"], "a/b/inside (2).txt") == b"dropped"
    assert links.content(tree["docs"], "a/b/inside.txt") == b"inside the share"  # never overwritten
    links.upload(link["url"] + "/upload", {"photo.jpg": b"second photo"})
    assert links.content(tree["docs"], "a/b/photo (2).jpg") == b"second photo"
    assert links.content(tree["docs"], "a/b/photo.jpg") == b"first photo"

    for path in ("/browse/sub", "/download/inside.txt", "/download/photo.jpg"):
        status, _, data = links.public("GET", link["url"] + path)
        assert status == 403 and b"inside the share" not in data and b"first photo" not in data
    assert links.upload(link["url"] + "/upload/sub", {"x.txt": b"x"})[0] == 403


def test_read_only_refuses_uploads(links, tree):
    link = links.link(tree["docs"], "a/b")
    before = links.paths(tree["docs"])
    for url in (link["url"] + "/upload", link["url"] + "/upload/sub"):
        status, _, page = links.upload(url, {"intruder.txt": b"nope"})
        assert status == 403
    assert links.paths(tree["docs"]) == before
    file_link = links.link(tree["docs"], "report.txt")
    assert links.upload(file_link["url"] + "/upload", {"x.txt": b"x"})[0] == 403


def test_read_write_lists_downloads_and_adds_new_files(links, tree):
    link = links.link(tree["docs"], "a/b", mode="read-write")
    status, _, page = links.public("GET", link["url"])
    assert status == 200 and b"inside.txt" in page and b'type="file"' in page
    status, _, page = links.public("GET", link["url"] + "/browse/sub")
    assert status == 200 and b"deep.txt" in page and b"inside.txt" not in page
    status, _, page = links.upload(link["url"] + "/upload/sub", {"deep.txt": b"another deep", "big.bin": BIG})
    assert status == 201 and b"deep (2).txt" in page and b"big.bin" in page
    assert links.content(tree["docs"], "a/b/sub/deep.txt") == b"deep inside"
    assert links.content(tree["docs"], "a/b/sub/deep (2).txt") == b"another deep"
    status, _, data = links.public("GET", link["url"] + "/download/sub/big.bin")
    assert status == 200 and data == BIG
    bad, _, _ = links.upload(link["url"] + "/upload", {"..": b"x"})
    assert bad == 400


@pytest.mark.parametrize("name", ["invoice\u202etxt.exe", "a\u2068b.txt", "tab\there.txt", "c1\x85.txt",
                                  "x" * 256])
def test_uploads_refuse_the_names_the_journal_refuses(links, tree, name):
    link = links.link(tree["docs"], "a/b", mode="read-write")
    status, _, page = links.upload(link["url"] + "/upload", {name: b"named"})
    assert status == 400, page
    assert not any(path.startswith("a/b/") and name in path for path in links.paths(tree["docs"]))


def test_revocation_is_immediate(links, tree):
    link = links.link(tree["docs"], "report.txt")
    assert links.public("GET", link["url"] + "/download")[0] == 200
    assert links.exchange("DELETE", f"/files/api/v1/links/{link['id']}", user="bob")[0] == 404  # not bob's
    assert links.exchange("DELETE", f"/files/api/v1/links/{link['id']}", user="alice")[0] == 204
    status, _, page = links.public("GET", link["url"] + "/download")
    assert status == 410 and b"revoked" in page and b"0123456789" not in page
    assert links.public("GET", link["url"])[0] == 410
    assert links.exchange("DELETE", f"/files/api/v1/links/{link['id']}", user="alice")[0] == 404
    assert link["id"] not in [item["id"] for item in
                              json.loads(links.exchange("GET", "/files/api/v1/links", user="alice")[2])]


def test_unknown_token_is_404(links):
    status, headers, page = links.public("GET", "/s/" + "x" * 32)
    assert status == 404 and headers["content-type"].startswith("text/html")


def test_share_of_a_b_cannot_reach_above_it(links, tree):
    link = links.link(tree["docs"], "a/b", mode="read-write")
    token = link["url"].rsplit("/", 1)[-1]
    with links.db() as db:  # a folder named like the token, beside the share
        write(db, lambda db: mkdir(db, tree["docs"], f"a/{token}", "test"))
        put_file(db, links.store, tree["docs"], f"a/{token}/secret2.txt", b"TOP SECRET beside the share")
    base = link["url"]
    ok, _, data = links.public("GET", base + "/download/inside.txt")
    assert (ok, data) == (200, b"inside the share")  # the control: the same requests do reach inside
    tricks = [
        "/download/../secret.txt", "/download/sub/../../secret.txt", "/download/%2e%2e/secret.txt",
        "/download/%2E%2E%2Fsecret.txt", "/download/..%2Fsecret.txt", "/download/..%2fsecret.txt",
        "/download/..%5Csecret.txt", "/download/..\\secret.txt", "/download/%252e%252e%252fsecret.txt",
        "/download/%252e%252e/secret.txt", "/download/%2Fa%2Fsecret.txt", "/download//a/secret.txt",
        "/download/%00/../secret.txt", "/download/inside.txt%00", "/download/./../secret.txt",
        f"/download/../{token}/secret2.txt", f"/download/{token}/secret2.txt", f"/download/%2e%2e%2f{token}%2fsecret2.txt",
        f"/browse/../{token}", f"/browse/{token}", "/browse/..", "/browse/%2e%2e", "/browse/..%2F..",
        "/browse/%2E%2E%5C", "/browse/sub/../..", "/../secret.txt", "/%2e%2e/secret.txt",
        f"/../{token}/secret2.txt", "/browse/%2e%2e%2f%2e%2e",
    ]
    for trick in tricks:
        status, _, data = links.public("GET", base + trick)
        assert status >= 400 or b"secret" not in data.lower(), (trick, status, data[:300])
        assert b"TOP SECRET" not in data, trick
    for trick in ("/upload/..", "/upload/%2e%2e", "/upload/..%2F", f"/upload/../{token}"):
        links.upload(base + trick, {"escaped.txt": b"should not land above"})
    assert not any(path.endswith("escaped.txt") for path in links.paths(tree["docs"]))


def test_links_api_checks_ownership_and_input(links, tree):
    def post(body, user="alice"):
        return links.exchange("POST", "/files/api/v1/links", json.dumps(body), user=user,
                              headers={"Content-Type": "application/json"})
    assert post({"folder": tree["bobs"]})[0] == 404  # not alice's folder
    assert post({"folder": tree["docs"], "path": "nothing/here"})[0] == 404
    assert post({"folder": tree["docs"], "path": "report.txt", "mode": "upload-only"})[0] == 400
    assert post({"folder": tree["docs"], "path": "../a"})[0] == 400
    assert post({"folder": tree["docs"], "expires": "yesterday"})[0] == 400
    assert post({"folder": tree["docs"], "expires": "2001-01-01"})[0] == 400
    assert post({"folder": tree["docs"], "password": "short"})[0] == 400
    assert links.exchange("GET", "/files/api/v1/links")[0] == 401
    made = json.loads(post({"folder": tree["bobs"]}, user="bob")[2])
    assert made["url"].startswith("/s/") and len(made["url"]) > 30
    mine = json.loads(links.exchange("GET", "/files/api/v1/links", user="alice")[2])
    assert made["id"] not in [item["id"] for item in mine]


def test_cli_add_list_revoke(links, tree):
    def hearth(*args, stdin=""):
        return subprocess.run([sys.executable, "-m", "services.cli", "--config", str(links.config), "link", *args],
                              input=stdin, capture_output=True, text=True, env=links.env, cwd=links.home, timeout=60)

    made = hearth("add", "alice", "docs/a/b", "--mode", "upload-only", "--expires", "7d", "--label", "Drop box",
                  "--password-stdin", stdin="cli password\n")
    assert made.returncode == 0, made.stderr
    url = made.stdout.strip()
    assert url.startswith("/s/") and "upload-only" in made.stderr and "password" in made.stderr
    status, _, page = links.public("GET", url)
    assert status == 403 and b'type="password"' in page
    listed = hearth("list", "alice")
    shown = url[:7] + "…"  # only the start: the server keeps no copy of the token
    assert listed.returncode == 0 and url not in listed.stdout and shown in listed.stdout
    assert "Drop box" in listed.stdout
    link_id = next(line.split()[0] for line in listed.stdout.splitlines() if shown in line)
    assert hearth("revoke", "bob", link_id).returncode == 1
    assert hearth("revoke", "alice", link_id).returncode == 0
    assert links.public("GET", url)[0] == 410
    assert shown not in hearth("list", "alice").stdout
    assert hearth("add", "alice", "nofolder/x").returncode == 1
    assert hearth("add", "alice", "docs/report.txt", "--expires", "someday").returncode == 2


def test_the_front_door_sends_share_links_to_the_files_daemon(tmp_path):
    from services.core.config import load_config
    from services.front.routes import RouteTable

    (tmp_path / "hearth.toml").write_text('data_dir = "var"\n')
    routes = RouteTable.from_config(load_config(tmp_path / "hearth.toml", environ={}))
    route = routes.match("h", "/s/" + "t" * 32 + "/download")
    assert route.kind == "proxy" and route.upstream.label == "files"
    assert route.upstream_path("/s/x/download/a%2Fb", "/s/x/download/a%2Fb") == "/s/x/download/a%2Fb"



def test_folders_a_sync_client_committed_file_by_file_are_listed(links, tree):
    """Sync commits files without an entry for every directory above them: the link still shows them."""
    with links.db() as db:
        put_file(db, links.store, tree["docs"], "photos/2024/june/beach.jpg", b"sand")
    link = links.link(tree["docs"], "photos")
    status, _, page = links.public("GET", link["url"])
    assert status == 200 and b"2024" in page
    status, _, page = links.public("GET", link["url"] + "/browse/2024/june")
    assert status == 200 and b"beach.jpg" in page
    status, _, data = links.public("GET", link["url"] + "/download/2024/june/beach.jpg")
    assert status == 200 and data == b"sand"


def test_a_token_is_kept_only_as_a_hash_and_shown_only_when_created(links, tree):
    made = links.link(tree["docs"], "report.txt")
    token = made["url"].removeprefix("/s/")
    assert len(token) >= 32 and made["shown_url"] == f"/s/{token[:4]}…"
    assert links.public("GET", made["url"])[0] == 200
    assert links.public("GET", made["url"] + "/download")[0] == 200
    listed = links.exchange("GET", "/files/api/v1/links", user="alice")[2]
    assert token[4:].encode() not in listed
    mine = next(item for item in json.loads(listed) if item["id"] == made["id"])
    assert mine["url"] is None and mine["shown_url"] == made["shown_url"] and mine["downloads"] == 1
    with links.db() as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for stored in links.db_path.parent.iterdir():  # the database, its WAL and anything beside them
        assert token[4:].encode() not in stored.read_bytes(), stored


def test_plaintext_tokens_of_an_older_version_are_hashed_in_place_and_keep_working(tmp_path):
    from services.core.schema import links as link_migrations
    from services.core.share_links import open_link

    path = tmp_path / "db" / "hearth.sqlite3"
    path.parent.mkdir()
    db = open_db(path)
    for migrations in MIGRATION_SETS:
        migrations.apply(db, stop_before="m002_hashed_tokens")
    folder = write(db, lambda db: create_folder(db, "alice", "docs")).id
    old_token = "OldPlainToken_" + "x" * 18
    write(db, lambda db: db.execute(
        "INSERT INTO share_links (token, owner, folder_id, path, is_dir, mode, created_at) "
        "VALUES (?, 'alice', ?, '', 1, 'read', '2025-01-01T00:00:00Z')", [old_token, folder]))
    db.close()
    assert old_token.encode() in b"".join(p.read_bytes() for p in path.parent.iterdir())

    migrate(path, MIGRATION_SETS)
    db = open_db(path)
    assert "m002_hashed_tokens" in {m.name for m in link_migrations.applied(db)}
    link = open_link(db, old_token)
    assert link.owner == "alice" and link.shown_url == "/s/OldP…"
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    assert old_token[4:].encode() not in b"".join(p.read_bytes() for p in path.parent.iterdir())
