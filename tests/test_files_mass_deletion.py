"""Mass deletions by WebDAV and Nextcloud clients (services/core/tree/deletion_runs.py): let through, recorded,
shown and undone in one step; with a real sync daemon and files daemon on one data directory."""
from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import xml.etree.ElementTree as ET
from urllib.parse import unquote

import pytest

from tests.daemons import serving
from tests.installation import clean_environ
from tests.sync_harness import REPO
from tests.test_files_webdav import FilesDaemon
from tests.test_sync_server import SyncDaemon

DAV = "/remote.php/dav/files/alice"
FILEID = (b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
          b'<d:prop><oc:fileid/></d:prop></d:propfind>')


@pytest.fixture(scope="module")
def daemons(tmp_path_factory):
    """A sync daemon and a files daemon on one data directory (as `hearth up` runs them)."""
    home = tmp_path_factory.mktemp("mass")
    files = FilesDaemon(tmp_path_factory.mktemp("mass-files"), quota_mb=10)
    files.on_data_of(home)
    with serving(SyncDaemon(home), "alice", "bob") as sync:
        with serving(files) as dav:
            yield sync, dav
    assert "unhandled error" not in dav.log()


def hearth(sync, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", "--config", str(sync.config), *args],
                          capture_output=True, text=True, cwd=REPO, env=clean_environ(), timeout=60)


def app_password(sync, label: str) -> dict:
    """Basic auth headers for a new app password of alice's, as a Nextcloud login makes one."""
    made = hearth(sync, "token", "add", "alice", "--label", label)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.splitlines()[0]
    return {"Authorization": "Basic " + base64.b64encode(f"alice:{secret}".encode()).decode()}


def fill(dav, folder: str, count: int) -> dict[str, str]:
    """`count` files of their own content in a new folder: {name: SHA-256}."""
    assert dav.exchange("MKCOL", f"{DAV}/{folder}", user="alice")[0] == 201
    digests = {}
    for n in range(count):
        data = f"{folder} photo {n} ".encode() * (n + 1)
        assert dav.exchange("PUT", f"{DAV}/{folder}/p{n:03d}.jpg", data, user="alice")[0] == 201
        digests[f"p{n:03d}.jpg"] = hashlib.sha256(data).hexdigest()
    return digests


def file_ids(dav, folder: str) -> dict[str, str]:
    """{file name: oc:fileid} of the folder's files."""
    status, _, body = dav.exchange("PROPFIND", f"{DAV}/{folder}/", FILEID, user="alice", headers={"Depth": "1"})
    assert status == 207
    found = {}
    for response in ET.fromstring(body).iter("{DAV:}response"):
        name = unquote(response.findtext("{DAV:}href")).removeprefix(f"{DAV}/{folder}/")
        if name and not name.endswith("/"):
            found[name] = response.findtext(".//{http://owncloud.org/ns}fileid")
    return found


def delete(dav, path: str, headers: dict | None = None, user: str | None = None) -> None:
    assert dav.exchange("DELETE", path, headers=headers, user=user)[0] == 204


def mass_deletions(sync, folder: int | None = None) -> list[dict]:
    status, found = sync.request("GET", "/sync/v1/mass-deletions" + (f"?folder={folder}" if folder else ""),
                                 user="alice")
    assert status == 200
    return found


def folder_id(sync, name: str) -> int:
    return next(f["id"] for f in sync.request("GET", "/sync/v1/folders", user="alice")[1] if f["name"] == name)


def test_a_nextcloud_client_deleting_most_of_a_folder_is_recorded_shown_and_undone(daemons):
    sync, dav = daemons
    phone = app_password(sync, "Pixel 7")
    digests = fill(dav, "Photos", 200)
    ids = file_ids(dav, "Photos")
    assert len(ids) == 200
    small = fill(dav, "Small", 12)
    for name in list(small)[:3]:  # a few files: ordinary housekeeping
        delete(dav, f"{DAV}/Small/{name}", phone)
    gone = sorted(digests)[:150]
    for name in gone:  # never refused, however many
        delete(dav, f"{DAV}/Photos/{name}", phone)
    assert dav.exchange("GET", f"{DAV}/Photos/{gone[0]}", user="alice")[0] == 404

    [run] = mass_deletions(sync)
    assert (run["folder"], run["user"], run["device"], run["files"], run["tracked"]) == (
        "Photos", "alice", "Pixel 7", 150, 200)
    assert run["summary"] == ("150 of 200 files deleted at once (more than 50%) from folder 'Photos' by alice "
                              "with Pixel 7")
    assert mass_deletions(sync, folder_id(sync, "Small")) == []
    warnings = [line for line in dav.log().splitlines() if "mass deletion" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0], warnings
    assert f"hearth trash undo alice {run['id']}" in warnings[0] and "Pixel 7" in warnings[0]
    listed = hearth(sync, "trash", "list", "alice")
    assert listed.returncode == 0 and "Photos" in listed.stdout and "150 of 200" in listed.stdout
    assert f"hearth trash undo alice {run['id']}" in listed.stdout

    # a file made again at one of the paths: the undo refuses, naming it, and changes nothing
    assert dav.exchange("PUT", f"{DAV}/Photos/{gone[7]}", b"a new photo", user="alice")[0] == 201
    refused = hearth(sync, "trash", "undo", "alice", str(run["id"]))
    assert refused.returncode == 1 and gone[7] in refused.stderr and "nothing was restored" in refused.stderr
    assert dav.exchange("GET", f"{DAV}/Photos/{gone[0]}", user="alice")[0] == 404
    assert dav.exchange("MOVE", f"{DAV}/Photos/{gone[7]}", user="alice",
                        headers={"Destination": f"{DAV}/Photos/new.jpg"})[0] == 201

    undone = hearth(sync, "trash", "undo", "alice", str(run["id"]))
    assert undone.returncode == 0, undone.stderr
    assert "restored 150 files" in undone.stdout
    for name in gone:
        status, _, body = dav.exchange("GET", f"{DAV}/Photos/{name}", user="alice")
        assert status == 200 and hashlib.sha256(body).hexdigest() == digests[name], name
    after = file_ids(dav, "Photos")
    assert {name: after[name] for name in ids} == ids  # every file, the same file ids
    assert dav.exchange("GET", f"{DAV}/Photos/new.jpg", user="alice")[2] == b"a new photo"
    status, again = sync.request("POST", f"/sync/v1/mass-deletions/{run['id']}/undo", user="alice")
    assert status == 409 and "undone already" in again["reason"]
    assert mass_deletions(sync)[0]["undone_at"] is not None


def test_the_api_undoes_a_spree_made_with_the_account_password(daemons):
    sync, dav = daemons
    digests = fill(dav, "Docs", 20)
    for name in sorted(digests)[:12]:
        delete(dav, f"/files/alice/Docs/{name}", user="alice")
    [run] = mass_deletions(sync, folder_id(sync, "Docs"))
    assert (run["files"], run["tracked"], run["device"]) == (12, 20, "the account password")
    assert sync.request("POST", f"/sync/v1/mass-deletions/{run['id']}/undo", user="bob")[0] == 404
    status, undone = sync.request("POST", f"/sync/v1/mass-deletions/{run['id']}/undo", user="alice")
    assert status == 200 and undone["undone_at"]
    for name, digest in digests.items():
        assert hashlib.sha256(dav.exchange("GET", f"{DAV}/Docs/{name}", user="alice")[2]).hexdigest() == digest


def test_a_file_restored_through_the_sync_api_keeps_its_file_id(daemons):
    sync, dav = daemons
    assert dav.exchange("MKCOL", f"{DAV}/Kept", user="alice")[0] == 201
    assert dav.exchange("PUT", f"{DAV}/Kept/a.txt", b"kept", user="alice")[0] == 201
    before = file_ids(dav, "Kept")["a.txt"]
    delete(dav, f"{DAV}/Kept/a.txt", user="alice")
    folder = folder_id(sync, "Kept")
    [item] = sync.request("GET", f"/sync/v1/folders/{folder}/trash", user="alice")[1]["items"]
    status, _ = sync.request("POST", f"/sync/v1/folders/{folder}/restore",
                             {"path": "a.txt", "revision_id": item["last"]["id"], "device": "laptop"}, user="alice")
    assert status == 200
    assert file_ids(dav, "Kept")["a.txt"] == before
