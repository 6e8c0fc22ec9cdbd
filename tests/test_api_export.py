"""GET /api/v1/me/export over real HTTP: the API daemon as its own process streams a user's export as a zip.

The data is test_export's World (alice's files, calendars, contacts and shares;
bob's, some shared with her), made with the storage functions the daemons use.
The zip must hold exactly what `hearth export` writes into a directory.
"""
from __future__ import annotations

import base64
import http.client
import io
import json
import stat
import zipfile

import pytest
from icalendar import Calendar

from services.core import accounts, sessions
from services.core.db import write
from services.core.tree import create_folder
from tests.daemons import LoopbackDaemon
from tests.test_export import PASSWORD, World, hearth, store_file, tree_of

EXPORT = "/api/v1/me/export"


class ApiDaemon(LoopbackDaemon):
    module, section = "services.api", "api"

    def healthy(self) -> bool:
        return self.exchange("GET", "/healthz")[0] == 200


def basic(user: str, password: str = PASSWORD) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("api-export")
    daemon = ApiDaemon(home)
    built = World(home)  # the same var/ the daemon serves
    built.daemon = daemon.start()
    yield built
    built.db.close()
    assert daemon.stop() == 0, daemon.log()


def export_of(world: World, headers: dict, path: str = EXPORT) -> tuple[dict, zipfile.ZipFile]:
    status, response_headers, body = world.daemon.exchange("GET", path, headers=headers, timeout=60)
    assert status == 200, body[:500]
    return response_headers, zipfile.ZipFile(io.BytesIO(body))


def test_export_needs_credentials(world):
    assert world.daemon.exchange("GET", EXPORT)[0] == 401
    assert world.daemon.exchange("GET", EXPORT, headers=basic("alice", "not her password"))[0] == 401


def test_the_zip_holds_exactly_what_hearth_export_writes(world, tmp_path):
    headers, archive = export_of(world, basic("alice"))
    assert headers["content-type"] == "application/zip"
    assert headers["content-disposition"].startswith('attachment; filename="hearth-export-alice-')
    assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers  # streamed as made
    assert headers["cache-control"] == "no-store"
    assert (headers["content-security-policy"], headers["x-content-type-options"]) == ("sandbox", "nosniff")
    assert archive.testzip() is None  # every entry's CRC checks out

    out = tmp_path / "export"
    result = hearth(world.home, "export", "alice", str(out))
    assert result.returncode == 0, result.stderr
    on_disk = {path: data for path, data in tree_of(out).items() if path != "manifest.json"}
    in_zip = {info.filename: archive.read(info) for info in archive.infolist()
              if not info.is_dir() and info.filename != "manifest.json"}
    assert in_zip == on_disk
    for (folder, path), data in world.alice_files.items():
        assert in_zip[f"files/{folder}/{path}"] == data

    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["user"] == "alice"
    assert manifest["counts"] == json.loads((out / "manifest.json").read_text())["counts"]
    assert {f["path"]: f["sha256"] for f in manifest["files"]} == \
        {f["path"]: f["sha256"] for f in json.loads((out / "manifest.json").read_text())["files"]}
    assert archive.namelist()[-1] == "manifest.json"  # written last, as in the directory

    directories = {info.filename for info in archive.infolist() if info.is_dir()}
    assert {"files/Documents/empty dir/", "files/Empty/"} <= directories  # empty ones survive unpacking
    modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
    assert modes["files/Documents/run.sh"] & stat.S_IXUSR and not modes["files/Documents/notes.txt"] & stat.S_IXUSR
    calendar = Calendar.from_ical(in_zip["calendars/work.ics"])
    assert {str(e["UID"]) for e in calendar.walk("VEVENT")} == world.event_uids


def test_a_user_gets_only_their_own_data(world):
    _, alices = export_of(world, basic("alice"), EXPORT + "?user=bob")  # no way to name someone else
    _, bobs = export_of(world, basic("bob"))
    assert json.loads(alices.read("manifest.json"))["user"] == "alice"
    assert not any(name.startswith("files/Music") for name in alices.namelist())  # bob's, shared with her
    bob_files = {name for name in bobs.namelist() if name.startswith("files/")}
    assert bob_files == {"files/Music/", "files/Music/copy.txt", "files/Music/own.txt"}
    assert bobs.read("files/Music/own.txt") == world.bob_only
    assert "calendars/work.ics" not in bobs.namelist()  # shared with him read-write, still alice's


def test_the_web_session_cookie_is_enough_for_a_download(world):
    status, headers, body = world.daemon.exchange(
        "POST", "/api/v1/session", json.dumps({"user": "alice", "password": PASSWORD}),
        headers={"Content-Type": "application/json"})
    assert status == 201, body
    cookie = headers["set-cookie"].split(";", 1)[0]
    assert cookie.startswith(f"{sessions.COOKIE_NAME}=")
    # A plain link click: GET with the cookie, no CSRF token (nothing changes on a download).
    _, archive = export_of(world, {"Cookie": cookie})
    assert json.loads(archive.read("manifest.json"))["user"] == "alice"


def test_an_export_that_fails_half_way_never_looks_complete(world):
    """A missing chunk after the first file: the connection is cut, no valid zip arrives, the log says why."""
    db, store = world.db, world.store
    write(db, lambda db: accounts.create_user(db, "dora", accounts.hash_password(PASSWORD)))
    folder = write(db, lambda db: create_folder(db, "dora", "Papers")).id
    store_file(db, store, folder, "a-first.txt", b"this one is fine\n" * 40_000)
    store_file(db, store, folder, "b-broken.txt", b"this one loses its chunk\n")
    (chunk_id, _), = json.loads(db.execute("SELECT chunks FROM entries WHERE path = 'b-broken.txt'").fetchone()[0])
    store.delete(chunk_id)

    try:
        status, _, body = world.daemon.exchange("GET", EXPORT, headers=basic("dora"), timeout=60)
    except (http.client.IncompleteRead, http.client.RemoteDisconnected, ConnectionError):
        pass  # cut before or during the body: the client knows it is not whole
    else:
        assert status == 200
        with pytest.raises(zipfile.BadZipFile):
            zipfile.ZipFile(io.BytesIO(body))
    assert "export of dora failed" in world.daemon.log()
    assert f"chunk {chunk_id} is missing" in world.daemon.log()
