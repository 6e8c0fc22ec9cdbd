"""The Nextcloud apps' OCS share API against a real API daemon, with the files daemon (the public
/s/ pages) and the sync daemon (a user's folders) on the same data directory."""
from __future__ import annotations

import json
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree as ET

import pytest

from services.core.db import migrate, open_db, write
from services.core.schema import MIGRATION_SETS
from services.core.tree import ROOT_FILES, create_folder, mkdir
from tests.daemons import serving
from tests.test_files_webdav import FilesDaemon
from tests.test_share_links import put_file
from tests.test_sync_server import SyncDaemon
from tests.test_web_session import ApiDaemon

SHARES = "/ocs/v2.php/apps/files_sharing/api/v1/shares"
PHOTO = b"\xff\xd8\xff\xe0 a photo the app dropped at the root"
FORM = {"OCS-APIRequest": "true", "Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def daemons(tmp_path_factory):
    api = ApiDaemon(tmp_path_factory.mktemp("nextcloud-shares"))
    with serving(api, "alice", "bob", "carol"):
        db_path = api.home / "var" / "db" / "hearth.sqlite3"
        migrate(db_path, MIGRATION_SETS)
        with open_db(db_path) as db:
            docs = write(db, lambda db: create_folder(db, "alice", "Docs")).id
            write(db, lambda db: mkdir(db, docs, "inbox", "test"))
            root_files = write(db, lambda db: create_folder(db, "alice", ROOT_FILES)).id
            put_file(db, api.store, root_files, "photo.jpg", PHOTO)
        files = FilesDaemon(tmp_path_factory.mktemp("nextcloud-shares-files")).on_data_of(api.home)
        sync = SyncDaemon(tmp_path_factory.mktemp("nextcloud-shares-sync")).on_data_of(api.home)
        with serving(files), serving(sync):
            yield api, files, sync
    assert "unhandled error" not in api.log()


def ocs(api: ApiDaemon, method: str, path: str, form: dict | None = None, user: str = "alice",
        json_format: bool = True) -> tuple[int, dict]:
    """(HTTP status, the ocs document) of one call, in JSON or as the Android app reads it (XML)."""
    if json_format:
        path += ("&" if "?" in path else "?") + "format=json"
    status, headers, body = api.exchange(method, path, urlencode(form) if form is not None else None, user=user,
                                         headers=FORM if form is not None else {"OCS-APIRequest": "true"})
    if json_format:
        assert headers["content-type"].startswith("application/json"), body
        return status, json.loads(body)["ocs"]
    assert headers["content-type"].startswith("text/xml") and body.startswith(b'<?xml version="1.0"?>'), body
    root = ET.fromstring(body)
    meta = {child.tag: child.text for child in root.find("meta")}
    meta["statuscode"] = int(meta["statuscode"])
    data = root.find("data")
    if data.find("element") is not None or not len(data):  # a list of shares
        return status, {"meta": meta, "data": [{field.tag: field.text for field in element}
                                               for element in data.findall("element")]}
    return status, {"meta": meta, "data": {field.tag: field.text for field in data}}  # the share just made


def test_public_link_with_password_and_expiry_lifecycle(daemons):
    api, files, _ = daemons
    status, document = ocs(api, "POST", SHARES, {"path": "/Docs/inbox", "shareType": "3", "password": "s3cret pass",
                                                 "expireDate": "2099-12-31", "permissions": "1"})
    assert status == 200 and document["meta"]["statuscode"] == 200, document
    share = document["data"]
    assert share["share_type"] == 3 and share["permissions"] == 1 and share["item_type"] == "folder"
    assert share["path"] == "/Docs/inbox" and share["uid_owner"] == "alice" and share["file_target"] == "/inbox"
    assert share["expiration"] == "2099-12-31 00:00:00" and share["token"]
    assert share["mimetype"] == "httpd/unix-directory" and share["has_preview"] is False
    assert share["url"].endswith("/s/" + share["token"]) and isinstance(share["file_source"], int)
    # the link opens anonymously, behind its password
    status, _, page = files.exchange("GET", urlsplit(share["url"]).path)
    assert status == 403 and b"password" in page.lower() and b"inbox" not in page
    # listed (v1 and XML, as Android asks) without its token, which hearth does not keep
    status, listing = ocs(api, "GET", SHARES.replace("v2.php", "v1.php") + "?path=/Docs/inbox&reshares=true",
                          json_format=False)
    assert status == 200 and listing["meta"]["statuscode"] == 100
    assert [(s["id"], s["share_type"], s["token"], s["path"]) for s in listing["data"]] == \
        [(share["id"], "3", None, "/Docs/inbox")]
    status, listing = ocs(api, "GET", SHARES + "?path=/Docs&subfiles=true")
    assert [s["id"] for s in listing["data"]] == [share["id"]]
    status, listing = ocs(api, "GET", SHARES + "?path=/Docs")
    assert listing["data"] == []
    # update: upload-only, a later expiry, no password
    status, changed = ocs(api, "PUT", f"{SHARES}/{share['id']}", {"permissions": "4", "expireDate": "2098-01-02",
                                                                  "password": ""})
    assert status == 200, changed
    assert (changed["data"]["permissions"], changed["data"]["expiration"]) == (4, "2098-01-02 00:00:00")
    assert "password" not in changed["data"]
    status, got = ocs(api, "GET", f"{SHARES}/{share['id']}")
    assert status == 200 and [s["permissions"] for s in got["data"]] == [4]
    status, _, page = files.exchange("GET", urlsplit(share["url"]).path)
    assert status == 200 and b"upload" in page.lower()  # the password is gone: the drop page shows
    status, deleted = ocs(api, "DELETE", f"{SHARES}/{share['id']}")
    assert status == 200 and deleted["meta"]["statuscode"] == 200
    assert files.exchange("GET", urlsplit(share["url"]).path)[0] == 410
    status, gone = ocs(api, "GET", f"{SHARES}/{share['id']}")
    assert status == 404 and gone["meta"]["statuscode"] == 404


def test_link_to_a_root_level_file(daemons):
    api, files, _ = daemons
    status, document = ocs(api, "POST", SHARES, {"path": "/photo.jpg", "shareType": "3"}, json_format=False)
    assert status == 200 and document["meta"]["statuscode"] == 200, document
    made = document["data"]
    assert (made["path"], made["item_type"], made["mimetype"], made["share_type"], made["permissions"]) == \
        ("/photo.jpg", "file", "image/jpeg", "3", "1")
    assert made["url"].endswith("/s/" + made["token"]) and made["expiration"] is None
    status, _, data = files.exchange("GET", f"/s/{made['token']}/download")
    assert (status, data) == (200, PHOTO)
    status, listed = ocs(api, "GET", SHARES + "?path=/photo.jpg")
    assert [(s["id"], s["path"], s["token"], s["url"]) for s in listed["data"]] == [(made["id"], "/photo.jpg", "", "")]
    assert listed["data"][0]["has_preview"] is True  # a picture: the apps show its thumbnail
    status, _ = ocs(api, "DELETE", f"{SHARES}/{made['id']}")
    assert status == 200


def test_the_user_picker_finds_only_an_exact_name(daemons):
    api, _, _ = daemons
    sharees = SHARES.replace("/shares", "/sharees")
    status, found = ocs(api, "GET", sharees + "?search=bob&itemType=folder")
    assert status == 200 and found["data"]["exact"]["users"] == [
        {"label": "bob", "value": {"shareType": 0, "shareWith": "bob"}}]
    assert found["data"]["users"] == [] and found["data"]["groups"] == []
    for partial in ("bo", "alice", ""):  # no listing of the household's accounts, not oneself
        assert ocs(api, "GET", sharees + f"?search={partial}")[1]["data"]["exact"]["users"] == []


def test_user_share_of_a_top_level_folder_read_only(daemons):
    api, _, sync = daemons
    status, document = ocs(api, "POST", SHARES, {"path": "/Docs", "shareType": "0", "shareWith": "bob",
                                                 "permissions": "1"}, json_format=False)
    assert status == 200 and document["meta"]["statuscode"] == 200, document
    status, folders = sync.request("GET", "/sync/v1/folders", user="bob")
    assert status == 200
    assert [(f["name"], f["owner"], f["access"]) for f in folders if f["owner"] == "alice"] == [("Docs", "alice", "ro")]
    status, mine = ocs(api, "GET", SHARES + "?shared_with_me=true", user="bob")
    assert [(s["share_type"], s["share_with"], s["permissions"], s["path"]) for s in mine["data"]] == \
        [(0, "bob", 1, "/Docs")]
    share_id = mine["data"][0]["id"]
    status, changed = ocs(api, "PUT", f"{SHARES}/{share_id}", {"permissions": "31"})
    assert status == 200 and changed["data"]["permissions"] == 15, changed
    status, folders = sync.request("GET", "/sync/v1/folders", user="bob")
    assert [f["access"] for f in folders if f["owner"] == "alice"] == ["rw"]
    status, _ = ocs(api, "DELETE", f"{SHARES}/{share_id}", user="bob")  # not bob's share to end
    assert status == 404
    status, _ = ocs(api, "DELETE", f"{SHARES}/{share_id}")
    assert status == 200
    status, folders = sync.request("GET", "/sync/v1/folders", user="bob")
    assert [f for f in folders if f["owner"] == "alice"] == []


@pytest.mark.parametrize("form, statuscode, reason", [
    ({"path": "/Docs/inbox", "shareType": "0", "shareWith": "bob"}, 403, "top-level folders"),
    ({"path": "/Docs", "shareType": "1", "shareWith": "family"}, 403, "groups"),
    ({"path": "/Docs", "shareType": "0", "shareWith": "nobody"}, 404, "valid user"),
    ({"path": "/Nope/x", "shareType": "3"}, 404, "Wrong path"),
    ({"path": "/Docs", "shareType": "3", "expireDate": "2001-01-01"}, 400, "past"),
])
def test_what_hearth_cannot_do_is_an_ocs_error(daemons, form, statuscode, reason):
    api, _, _ = daemons
    status, document = ocs(api, "POST", SHARES, form)
    assert (status, document["meta"]["statuscode"], document["meta"]["status"]) == (statuscode, statuscode, "failure")
    assert reason in document["meta"]["message"]
    status, document = ocs(api, "POST", SHARES.replace("v2.php", "v1.php"), form, json_format=False)
    assert (status, document["meta"]["statuscode"]) == (200, statuscode)  # v1 keeps HTTP 200
    with open_db(api.home / "var" / "db" / "hearth.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM share_links WHERE revoked_at IS NULL").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM folder_shares").fetchone()[0] == 0
